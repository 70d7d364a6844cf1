#ifndef PORTIER_STARTTLS_HARNESS_H
#define PORTIER_STARTTLS_HARNESS_H
/*
 * Shared by the test_starttls_*.c unit tests: feed a scripted client (or
 * backend) byte stream to the engine whole, split at every byte boundary and
 * one byte at a time, and check that every way gives the same output and
 * verdict as expected.
 */
#include "check.h"
#include "starttls.h"

#include <stdlib.h>

#define H_OUT_MAX 8192

struct h_run {
	enum starttls_verdict v;
	uint8_t out[H_OUT_MAX];
	size_t out_len;
	size_t left;		/* input bytes not consumed (PLAINTEXT ...) */
	struct starttls_session s;
};

static inline const char *h_vname(enum starttls_verdict v)
{
	static const char *const names[] = { "AGAIN", "UPGRADE", "PLAINTEXT",
	    "RELAY", "REPLY_AND_CLOSE", "INJECTION", "ERROR", "BACKEND",
	    "RESUME" };
	return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}

static inline void h_take(struct buf *b, struct h_run *r)
{
	size_t n = b->len;

	if (n > H_OUT_MAX - r->out_len)
		n = H_OUT_MAX - r->out_len;
	if (n)
		memcpy(r->out + r->out_len, buf_peek(b), n);
	r->out_len += n;
	buf_consume(b, b->len);
}

/* Feed client bytes in[0..n) in chunks: every chunk is `step` bytes, except
 * that step == 0 means two chunks cut at `cut`. Stops at the first verdict
 * other than AGAIN, except that after UPGRADE further chunks are still fed
 * (that is how bytes after STARTTLS show up when split). A new session
 * (greeting included) unless `start` gives one to go on from (after
 * RESUME). */
static inline void h_client_from(const struct starttls_driver *d,
    const struct starttls_params *p, const struct starttls_session *start,
    const void *in, size_t n, size_t step, size_t cut, struct h_run *r)
{
	const uint8_t *src = in;
	struct buf ib = {0}, ob = {0};
	size_t pos = 0, c;

	memset(r, 0, sizeof(*r));
	if (start != NULL)
		r->s = *start;
	else if (starttls_init(&r->s, d, p) != 0 || starttls_greeting(&r->s, &ob)) {
		r->v = STARTTLS_ERROR;
		return;
	}
	h_take(&ob, r);
	r->v = STARTTLS_AGAIN;
	while (pos < n) {
		c = step ? step : (pos < cut ? cut : n - pos);
		if (c > n - pos)
			c = n - pos;
		buf_append(&ib, src + pos, c);
		pos += c;
		r->v = starttls_client_input(&r->s, &ib, &ob);
		h_take(&ob, r);
		if (r->v != STARTTLS_AGAIN && r->v != STARTTLS_UPGRADE)
			break;
	}
	r->left = ib.len + (n - pos);
	buf_reset(&ib);
	buf_reset(&ob);
}

static inline void h_client(const struct starttls_driver *d,
    const struct starttls_params *p, const void *in, size_t n, size_t step,
    size_t cut, struct h_run *r)
{
	h_client_from(d, p, NULL, in, n, step, cut, r);
}

static inline int h_same(const struct h_run *a, const struct h_run *b)
{
	return a->v == b->v && a->left == b->left && a->out_len == b->out_len &&
	    memcmp(a->out, b->out, a->out_len) == 0;
}

static inline void h_show(const char *what, const struct h_run *r)
{
	fprintf(stderr, "  %s: %s left=%zu out=\"", what, h_vname(r->v), r->left);
	for (size_t i = 0; i < r->out_len; i++) {
		uint8_t c = r->out[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			fputc(c, stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
	fprintf(stderr, "\"\n");
}

/* Run the client script every way and compare with the expectation. The
 * whole-input run is left in *whole for further checks. */
static inline void h_script_from(const struct starttls_driver *d,
    const struct starttls_params *p, const struct starttls_session *start,
    const void *in, size_t n, const void *want, size_t want_len,
    enum starttls_verdict want_v, struct h_run *whole)
{
	static struct h_run other;
	int bad = 0;

	h_client_from(d, p, start, in, n, 0, n, whole);
	CHECK(whole->v == want_v);
	CHECK(whole->out_len == want_len &&
	    memcmp(whole->out, want, want_len) == 0);
	if (whole->v != want_v || whole->out_len != want_len ||
	    memcmp(whole->out, want, want_len) != 0) {
		fprintf(stderr, "  want: %s \"%.*s\"\n", h_vname(want_v),
		    (int)want_len, (const char *)want);
		h_show("got", whole);
	}
	for (size_t cut = 1; cut < n; cut++) {
		h_client_from(d, p, start, in, n, 0, cut, &other);
		if (!h_same(whole, &other) && bad++ == 0) {
			fprintf(stderr, "  split at %zu differs:\n", cut);
			h_show("whole", whole);
			h_show("split", &other);
		}
	}
	CHECK(bad == 0);
	h_client_from(d, p, start, in, n, 1, 0, &other);
	CHECK(h_same(whole, &other));
	if (!h_same(whole, &other))
		h_show("bytewise", &other);
}

static inline void h_script(const struct starttls_driver *d,
    const struct starttls_params *p, const void *in, size_t n,
    const void *want, size_t want_len, enum starttls_verdict want_v,
    struct h_run *whole)
{
	h_script_from(d, p, NULL, in, n, want, want_len, want_v, whole);
}

#define H_SCRIPT(d, p, in, want, v, r) \
	h_script_from(d, p, NULL, in, strlen(in), want, strlen(want), v, r)
/* The same, going on from session *start (its greeting long sent). */
#define H_SCRIPT_FROM(start, in, want, v, r) \
	h_script_from((start)->drv, (start)->params, start, in, strlen(in), \
	    want, strlen(want), v, r)

/* The backend side of the hand-over, on a session that said UPGRADE or
 * PLAINTEXT: feed backend bytes like h_client feeds client bytes. */
struct h_back {
	enum starttls_verdict v;
	struct h_run client, server;	/* to_client, to_backend */
	size_t left;			/* left in from_backend */
	int flow;			/* starttls_client_may_flow at the end */
	const char *why;		/* starttls_why at the end */
	struct starttls_session s;	/* the session at the end (RESUME) */
};

static inline void h_backend(const struct starttls_session *start, const void *in,
    size_t n, size_t step, size_t cut, struct h_back *r)
{
	const uint8_t *src = in;
	struct starttls_session s = *start;
	struct buf fb = {0}, tb = {0}, tc = {0};
	size_t pos = 0, c;

	memset(r, 0, sizeof(*r));
	/* Called once on connect, before any byte. */
	r->v = starttls_backend_input(&s, &fb, &tb, &tc);
	while (r->v == STARTTLS_AGAIN && pos < n) {
		c = step ? step : (pos < cut ? cut : n - pos);
		if (c > n - pos)
			c = n - pos;
		buf_append(&fb, src + pos, c);
		pos += c;
		r->v = starttls_backend_input(&s, &fb, &tb, &tc);
	}
	h_take(&tc, &r->client);
	h_take(&tb, &r->server);
	r->left = fb.len + (n - pos);
	r->flow = starttls_client_may_flow(&s);
	r->why = starttls_why(&s);
	r->s = s;
	buf_reset(&fb);
	buf_reset(&tb);
	buf_reset(&tc);
}

static inline int h_back_same(const struct h_back *a, const struct h_back *b)
{
	return a->v == b->v && a->left == b->left && a->flow == b->flow &&
	    h_same(&a->client, &b->client) && h_same(&a->server, &b->server);
}

/* Run backend bytes every way; check the verdict and what the client gets;
 * the whole run is left in *whole. */
static inline void h_back_script(const struct starttls_session *start,
    const char *in, const char *want_client, enum starttls_verdict want_v,
    struct h_back *whole)
{
	static struct h_back other;
	size_t n = strlen(in);
	int bad = 0;

	h_backend(start, in, n, 0, n, whole);
	CHECK(whole->v == want_v);
	CHECK(whole->client.out_len == strlen(want_client) &&
	    memcmp(whole->client.out, want_client, strlen(want_client)) == 0);
	if (whole->v != want_v || whole->client.out_len != strlen(want_client))
		h_show("backend got", &whole->client);
	for (size_t cut = 1; cut < n; cut++) {
		h_backend(start, in, n, 0, cut, &other);
		if (!h_back_same(whole, &other))
			bad++;
	}
	h_backend(start, in, n, 1, 0, &other);
	if (!h_back_same(whole, &other))
		bad++;
	CHECK(bad == 0);
}

/* Does out[0..n) contain the C string s? */
static inline int h_has(const uint8_t *out, size_t n, const char *s)
{
	size_t k = strlen(s);

	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(out + i, s, k) == 0)
			return 1;
	return 0;
}

#endif
