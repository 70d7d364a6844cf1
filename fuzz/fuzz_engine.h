#ifndef PORTIER_FUZZ_ENGINE_H
#define PORTIER_FUZZ_ENGINE_H
/*
 * The body of every fuzz_starttls_<proto> target. The input is a script:
 *
 *   byte 0   flags: bit 0 optional (SMTP), bits 1-4 max_commands (0 =
 *            default), bit 5 feed one more client chunk after UPGRADE
 *   then     chunks: one length byte L, then L % 64 + 1 bytes
 *
 * Chunks go to the client side until the engine says something other than
 * AGAIN, then (after UPGRADE or PLAINTEXT) to the backend side. After
 * BACKEND (SMTP optional, EHLO or HELO) they go to the backend side until
 * RESUME, whose answer is checked (a merged EHLO reply, portier's name
 * alone for HELO, or the backend's refusal as it came), then to the
 * client side again: the query can come back as often as the client says
 * hello. abort() marks a broken invariant, so libFuzzer reports it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "starttls.h"

static int fz_has(const struct buf *b, const char *s)
{
	size_t k = strlen(s);

	for (size_t i = 0; i + k <= b->len; i++)
		if (memcmp(buf_peek(b) + i, s, k) == 0)
			return 1;
	return 0;
}

/* Never a pre-authenticated session, never an alert, in any reply. */
static void fz_clean(const struct buf *out)
{
	if (fz_has(out, "* PREAUTH") || fz_has(out, "[ALERT"))
		abort();
}

static int fz_chunk(const uint8_t **d, size_t *n, struct buf *to)
{
	size_t c;

	if (*n < 2)
		return 0;
	c = (size_t)((*d)[0] % 64) + 1;
	(*d)++;
	(*n)--;
	if (c > *n)
		c = *n;
	if (buf_append(to, *d, c) == -1)
		abort();	/* bounded by max_msg, so it always fits */
	*d += c;
	*n -= c;
	return 1;
}

static int fz_wiped(const struct starttls_session *s)
{
	for (size_t i = 0; i < sizeof(s->state); i++)
		if (s->state[i])
			return 0;
	return s->keep_len == 0;
}

/* The keyword of line p[0..n) after its "250-" or "250 " is kw. */
static int fz_line_is(const uint8_t *p, size_t n, const char *kw)
{
	size_t k = strlen(kw);

	if (n < 4 + k || strncasecmp((const char *)p + 4, kw, k) != 0)
		return 0;
	return n == 4 + k || p[4 + k] == ' ' || p[4 + k] == '=' ||
	    p[4 + k] == '\r' || p[4 + k] == '\n';
}

/* SMTP's answer to an EHLO that asked the backend: "250-fuzz.example",
 * extension lines, "250 STARTTLS" last; every line "250-" but the last,
 * no control byte but the CRLF; never a line that offers what must not
 * be offered before TLS or to a client. */
static void fz_merged(const struct buf *tc)
{
	static const char head[] = "250-fuzz.example\r\n";
	static const char tail[] = "250 STARTTLS\r\n";
	static const char *const never[] = { "AUTH", "XCLIENT", "XFORWARD",
	    "STARTTLS", "CHUNKING", "BINARYMIME", "REQUIRETLS", "ETRN" };
	const uint8_t *p = buf_peek(tc);
	size_t n = tc->len, off, ll, i;

	if (n < sizeof(head) - 1 + sizeof(tail) - 1 ||
	    memcmp(p, head, sizeof(head) - 1) != 0 ||
	    memcmp(p + n - (sizeof(tail) - 1), tail, sizeof(tail) - 1) != 0)
		abort();
	for (off = 0; off < n; off += ll) {
		const uint8_t *lf = memchr(p + off, '\n', n - off);
		if (lf == NULL)
			abort();
		ll = (size_t)(lf - (p + off)) + 1;
		if (ll < 6 || memcmp(p + off, "250", 3) != 0 ||
		    p[off + ll - 2] != '\r')
			abort();
		if (p[off + 3] != (off + ll == n ? ' ' : '-'))
			abort();
		for (i = 0; i < ll - 2; i++)
			if (p[off + i] < 0x20 || p[off + i] == 0x7f)
				abort();
		if (off + ll == n)
			break;
		for (i = 0; i < sizeof(never) / sizeof(never[0]); i++)
			if (fz_line_is(p + off, ll, never[i]))
				abort();
	}
}

/* The line the query sent the backend last (after any XCLIENT exchange
 * of portier's own) is a HELO: 1, an EHLO: 0. Neither: abort. */
static int fz_asked_helo(const struct buf *tb)
{
	const uint8_t *p = buf_peek(tb);
	size_t n = tb->len, i;

	if (n < 6 || p[n - 2] != '\r' || p[n - 1] != '\n')
		abort();
	for (i = n - 2; i > 0 && p[i - 1] != '\n'; i--)
		continue;
	if (n - i < 6)
		abort();
	if (strncasecmp((const char *)p + i, "HELO", 4) == 0)
		return 1;
	if (strncasecmp((const char *)p + i, "EHLO", 4) != 0)
		abort();
	return 0;
}

/* SMTP's answer to a hello the backend refused: the backend's reply as it
 * came (fed[0..nfed) is all the backend sent during the query), one code,
 * a refusal but 421 (the backend closing: the session ends instead). */
static void fz_refusal(const struct buf *tc, const uint8_t *fed, size_t nfed)
{
	const uint8_t *p = buf_peek(tc);
	size_t n = tc->len, off, ll, i;

	if (n < 4 || n > STARTTLS_REPLY_MAX || (p[0] != '4' && p[0] != '5') ||
	    memcmp(p, "421", 3) == 0 || p[n - 1] != '\n')
		abort();
	for (off = 0; off < n; off += ll) {
		const uint8_t *lf = memchr(p + off, '\n', n - off);
		ll = (size_t)(lf - (p + off)) + 1;
		if (ll < 4 || memcmp(p + off, p, 3) != 0)
			abort();
		if (off + ll < n) {
			if (p[off + 3] != '-')
				abort();
			continue;
		}
		/* The last: "453 text", or the code alone, which may have
		 * blanks and a CR after it (as the engine trims a line). */
		if (p[off + 3] == ' ')
			continue;
		for (i = off + 3; i < n - 1 && (p[i] == ' ' || p[i] == '\t'); i++)
			continue;
		if (i < n - 1 && p[i] == '\r')
			i++;
		if (i != n - 1)
			abort();
	}
	for (i = 0; i + n <= nfed; i++)
		if (memcmp(fed + i, p, n) == 0)
			return;
	abort();	/* not what the backend said */
}

static void fz_run(const struct starttls_driver *drv, const uint8_t *d,
    size_t n)
{
	struct starttls_params p = { "fuzz.example", 0, 0, NULL };
	struct starttls_session s;
	struct buf in = {0}, out = {0}, fb = {0}, tb = {0}, tc = {0};
	enum starttls_verdict v = STARTTLS_AGAIN;
	/* the input's bytes (64 KiB at most: libFuzzer's -max_len here is
	 * 4096) and what the backend had left over */
	static uint8_t fed[65536 + 2 * STARTTLS_REPLY_MAX + 64];
	size_t nfed;
	int queried = 0;
	uint8_t flags;

	if (n < 1)
		return;
	flags = d[0];
	d++;
	n--;
	p.optional = drv == &starttls_smtp && (flags & 1);
	p.max_commands = (flags >> 1) & 15;
	/* SMTP: half the runs also take the XCLIENT path at hand-over. */
	if (drv == &starttls_smtp && (flags & 32))
		p.xclient = "ADDR=192.0.2.1 PORT=25";
	if (starttls_init(&s, drv, &p) || starttls_greeting(&s, &out))
		abort();

	for (;;) {
		while (v == STARTTLS_AGAIN && fz_chunk(&d, &n, &in)) {
			v = starttls_client_input(&s, &in, &out);
			fz_clean(&out);
			if (v == STARTTLS_AGAIN && in.len >= drv->max_msg)
				abort();	/* unbounded buffering */
			buf_consume(&out, out.len);
		}
		if (v != STARTTLS_BACKEND)
			break;
		/* The query: only SMTP's optional mode asks the backend, and
		 * the client hears nothing until the answer. */
		if (!p.optional || out.len != 0)
			abort();
		queried = 1;
		/* What the backend says during the query, from what it
		 * had said already: a refusal must be among it as it came. */
		if ((nfed = fb.len) > 0)
			memcpy(fed, buf_peek(&fb), nfed);
		v = starttls_backend_input(&s, &fb, &tb, &tc);
		for (;;) {
			size_t before = fb.len;

			if (v != STARTTLS_AGAIN || !fz_chunk(&d, &n, &fb))
				break;
			if (nfed + (fb.len - before) > sizeof(fed))
				abort();	/* the input is shorter */
			memcpy(fed + nfed, buf_peek(&fb) + before, fb.len - before);
			nfed += fb.len - before;
			v = starttls_backend_input(&s, &fb, &tb, &tc);
			if (fb.len > 2 * STARTTLS_REPLY_MAX + 64)
				abort();
			if (v == STARTTLS_AGAIN && (tc.len != 0 ||
			    starttls_client_may_flow(&s)))
				abort();
		}
		if (v == STARTTLS_REPLY_AND_CLOSE)
			fz_clean(&tc);
		if (v != STARTTLS_RESUME)
			goto done;	/* refused, or the input ran out */
		if (tc.len >= 3 && memcmp(buf_peek(&tc), "250", 3) == 0) {
			if (!fz_asked_helo(&tb))
				fz_merged(&tc);
			else if (!fz_has(&tc, "250 fuzz.example\r\n") ||
			    tc.len != strlen("250 fuzz.example\r\n"))
				abort();
		} else
			fz_refusal(&tc, fed, nfed);
		buf_consume(&tc, tc.len);
		buf_consume(&tb, tb.len);
		/* Commands pipelined behind the EHLO come next. */
		v = starttls_client_input(&s, &in, &out);
		fz_clean(&out);
		buf_consume(&out, out.len);
	}
	if (v == STARTTLS_UPGRADE && queried) {
		/* The connection layer closes the queried backend: the
		 * hand-over after TLS starts on a new one. */
		buf_reset(&fb);
		buf_reset(&tb);
	}
	if (v == STARTTLS_UPGRADE) {
		if (in.len != 0 || !fz_wiped(&s))
			abort();
		if ((flags & 32) && fz_chunk(&d, &n, &in) &&
		    starttls_client_input(&s, &in, &out) != STARTTLS_INJECTION)
			abort();
	}
	if (v == STARTTLS_PLAINTEXT && (in.len == 0 || !p.optional))
		abort();
	if (v != STARTTLS_UPGRADE && v != STARTTLS_PLAINTEXT)
		goto done;
	if ((flags & 32) && v == STARTTLS_UPGRADE)
		goto done;	/* the session ended with the injection */

	v = starttls_backend_input(&s, &fb, &tb, &tc);
	while (v == STARTTLS_AGAIN && fz_chunk(&d, &n, &fb)) {
		v = starttls_backend_input(&s, &fb, &tb, &tc);
		if (fb.len > 2 * STARTTLS_REPLY_MAX + 64)
			abort();
		/* The client never sees the backend offer STARTTLS (the
		 * first line of a reply is a name, not an extension). */
		if (fz_has(&tc, "\n250-STARTTLS\r\n") ||
		    fz_has(&tc, "\n250 STARTTLS\r\n"))
			abort();
		buf_consume(&tc, tc.len);
	}
	if (v == STARTTLS_RELAY && !starttls_client_may_flow(&s))
		abort();
	if (v == STARTTLS_REPLY_AND_CLOSE)
		fz_clean(&tc);
done:
	buf_reset(&in);
	buf_reset(&out);
	buf_reset(&fb);
	buf_reset(&tb);
	buf_reset(&tc);
}

#endif
