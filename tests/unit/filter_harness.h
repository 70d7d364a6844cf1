#ifndef PORTIER_FILTER_HARNESS_H
#define PORTIER_FILTER_HARNESS_H
/*
 * Shared by the test_filter_*.c unit tests. Define FILTER_UNDER_TEST (the
 * filter_ops) and, if its state needs it, FILTER_SETUP(st) before
 * including this.
 */
#include "check.h"
#include "filter.h"

#include <stdlib.h>

#ifndef FILTER_SETUP
#define FILTER_SETUP(st) ((void)(st))
#endif

/*
 * A filter driven the way the relay drives it: a script of client and
 * backend turns, each fed whole, split at every byte, or one byte at a time,
 * with both directions called until nothing moves; and whole again with
 * outputs a slow reader keeps nearly full. Every way must give the
 * client and the backend the same bytes.
 */

#define REC_MAX 65536

struct turn {
	char who;		/* 'c' client, 'b' backend */
	const char *bytes;
	int eof;		/* the sender ends after these bytes */
	size_t len;		/* bytes' length when it holds a NUL, else 0 */
};

static size_t turn_len(const struct turn *t)
{
	return t->len ? t->len : strlen(t->bytes);
}

struct result {
	char client[REC_MAX];	/* what reached the client */
	size_t client_len;
	char backend[REC_MAX];	/* what reached the backend */
	size_t backend_len;
	size_t left_up, left_down;	/* held by the filter at the end */
	int rc;
	const char *why;
};

static void drain(struct buf *b, char *rec, size_t *len)
{
	size_t n = b->len;

	if (n > REC_MAX - *len)
		n = REC_MAX - *len;
	if (n)
		memcpy(rec + *len, buf_peek(b), n);
	*len += n;
	buf_consume(b, b->len);
}

struct relay {
	_Alignas(16) uint8_t st[1024];
	struct buf cin, bin, tob, toc;
	int ceof, beof;
	int tight;		/* the outputs have little room: see squeeze() */
};

/* Call both directions until nothing moves, as the relay does. */
static void pump(struct relay *r, struct result *res)
{
	for (int round = 0; round < 1000 && res->rc == 0; round++) {
		uint32_t before = r->cin.len + r->bin.len;
		int moved;

		res->rc = FILTER_UNDER_TEST.up(r->st, &r->cin, &r->tob, &r->toc,
		    r->ceof, &res->why);
		if (res->rc == 0)
			res->rc = FILTER_UNDER_TEST.down(r->st, &r->bin, &r->toc,
			    &r->tob, r->beof, &res->why);
		moved = r->tob.len || r->toc.len || r->cin.len + r->bin.len != before;
		drain(&r->tob, res->backend, &res->backend_len);
		drain(&r->toc, res->client, &res->client_len);
		if (!moved)
			break;
	}
}

/*
 * A slow reader: each output holds `BUF_CAP - room` bytes the client or
 * backend has not read yet (zeros the harness put there), so the filter
 * has `room` bytes to write into. What it writes is recorded and taken
 * out after each call, the unread bytes stay. A round in which nothing
 * moved doubles the room (the reader read some), one in which something
 * did starts again from a single byte. So every line, response and answer
 * meets a full buffer, and must wait for room without a byte lost,
 * duplicated or reordered: the bytes each side gets, and the end, must be
 * those of a reader that keeps up.
 */
static void squeeze(struct buf *b, size_t room)
{
	static const uint8_t unread[4096];
	size_t want = BUF_CAP - room, k;

	if (b->len > want)
		buf_consume(b, b->len - want);
	while (b->len < want) {
		k = want - b->len < sizeof(unread) ? want - b->len : sizeof(unread);
		buf_append(b, unread, k);
	}
}

/* Record what a call wrote past the `unread` bytes, and take it out. */
static size_t take(struct buf *b, size_t unread, char *rec, size_t *len)
{
	size_t n = b->len - unread, c = n;

	if (c > REC_MAX - *len)
		c = REC_MAX - *len;
	if (c)
		memcpy(rec + *len, buf_peek(b) + unread, c);
	*len += c;
	buf_truncate(b, unread);
	return n;
}

/* pump() with a slow reader on both outputs (squeeze()). */
static void pump_tight(struct relay *r, struct result *res)
{
	size_t room = 1, wrote;
	long round;

	for (round = 0; round < 1000000 && res->rc == 0; round++) {
		uint32_t before = r->cin.len + r->bin.len;

		squeeze(&r->tob, room);
		squeeze(&r->toc, room);
		res->rc = FILTER_UNDER_TEST.up(r->st, &r->cin, &r->tob, &r->toc,
		    r->ceof, &res->why);
		wrote = take(&r->tob, BUF_CAP - room, res->backend,
		    &res->backend_len);
		wrote += take(&r->toc, BUF_CAP - room, res->client,
		    &res->client_len);
		if (res->rc == 0) {
			res->rc = FILTER_UNDER_TEST.down(r->st, &r->bin, &r->toc,
			    &r->tob, r->beof, &res->why);
			wrote += take(&r->tob, BUF_CAP - room, res->backend,
			    &res->backend_len);
			wrote += take(&r->toc, BUF_CAP - room, res->client,
			    &res->client_len);
		}
		if (wrote > 0 || r->cin.len + r->bin.len != before)
			room = 1;
		else if (room == BUF_CAP)
			break;	/* all the room there is, and nothing moves */
		else
			room = room * 2 < BUF_CAP ? room * 2 : BUF_CAP;
	}
	CHECK(round < 1000000);
	squeeze(&r->tob, BUF_CAP);
	squeeze(&r->toc, BUF_CAP);
}

/* Play the script; turn `split` goes in two pieces cut at `cut`, every
 * turn one byte at a time when bytewise, against a slow reader when
 * tight. */
static void play_mode(const struct turn *t, size_t nt, size_t split,
    size_t cut, int bytewise, int tight, struct result *res)
{
	static struct relay r;

	memset(&r, 0, sizeof(r));
	r.tight = tight;
	memset(res, 0, sizeof(*res));
	CHECK(FILTER_UNDER_TEST.state_size <= sizeof(r.st));
	FILTER_SETUP(r.st);
	for (size_t i = 0; i < nt && res->rc == 0; i++) {
		size_t n = turn_len(&t[i]), pos = 0, c;
		struct buf *to = t[i].who == 'c' ? &r.cin : &r.bin;

		do {
			c = bytewise ? 1 : i == split && pos < cut ? cut : n - pos;
			if (c > n - pos)
				c = n - pos;
			if (c > BUF_CAP - to->len)
				c = BUF_CAP - to->len;
			if (c == 0)
				break;	/* the filter holds a full buffer */
			buf_append(to, t[i].bytes + pos, c);
			pos += c;
			if (pos == n && t[i].eof)
				*(t[i].who == 'c' ? &r.ceof : &r.beof) = 1;
			if (r.tight)
				pump_tight(&r, res);
			else
				pump(&r, res);
		} while (pos < n && res->rc == 0);
	}
	res->left_up = r.cin.len;
	res->left_down = r.bin.len;
	buf_reset(&r.cin);
	buf_reset(&r.bin);
	buf_reset(&r.tob);
	buf_reset(&r.toc);
}

static void play(const struct turn *t, size_t nt, size_t split, size_t cut,
    int bytewise, struct result *res)
{
	play_mode(t, nt, split, cut, bytewise, 0, res);
}

static int same(const struct result *a, const struct result *b)
{
	/* After a failure what is left unread does not matter. */
	return a->rc == b->rc && a->client_len == b->client_len &&
	    a->backend_len == b->backend_len && (a->rc != 0 ||
	    (a->left_up == b->left_up && a->left_down == b->left_down)) &&
	    memcmp(a->client, b->client, a->client_len) == 0 &&
	    memcmp(a->backend, b->backend, a->backend_len) == 0;
}

static void show(const char *what, const char *p, size_t n)
{
	fprintf(stderr, "  %s: \"", what);
	for (size_t i = 0; i < n && i < 400; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			fputc(c, stderr);
		else
			fprintf(stderr, "\\x%02x", c);
	}
	fprintf(stderr, "%s\"\n", n > 400 ? "..." : "");
}

/* Run the script every way; the whole run must give the client and the
 * backend exactly what is expected (wc[0..wcn), wb[0..wbn)), and every
 * split the same. *out keeps the whole run. */
static void script_n(const struct turn *t, size_t nt, const char *wc,
    size_t wcn, const char *wb, size_t wbn, int want_rc, struct result *out)
{
	static struct result other;
	int bad = 0, ok;

	play(t, nt, nt, 0, 0, out);
	ok = out->rc == want_rc && out->client_len == wcn &&
	    memcmp(out->client, wc, wcn) == 0 && out->backend_len == wbn &&
	    memcmp(out->backend, wb, wbn) == 0;
	CHECK(ok);
	if (!ok) {
		fprintf(stderr, "  rc %d (want %d) why %s\n", out->rc, want_rc,
		    out->why ? out->why : "-");
		show("client got ", out->client, out->client_len);
		show("client want", wc, wcn);
		show("backend got ", out->backend, out->backend_len);
		show("backend want", wb, wbn);
	}
	for (size_t i = 0; i < nt; i++)
		for (size_t cut = 1; cut < turn_len(&t[i]); cut++) {
			play(t, nt, i, cut, 0, &other);
			if (!same(out, &other) && bad++ == 0) {
				fprintf(stderr, "  turn %zu split at %zu differs\n",
				    i, cut);
				show("client", other.client, other.client_len);
				show("backend", other.backend, other.backend_len);
			}
		}
	play(t, nt, nt, 0, 1, &other);
	if (!same(out, &other) && bad++ == 0) {
		fprintf(stderr, "  bytewise differs\n");
		show("client", other.client, other.client_len);
		show("backend", other.backend, other.backend_len);
	}
	play_mode(t, nt, nt, 0, 0, 1, &other);
	if (!same(out, &other) && bad++ == 0) {
		fprintf(stderr, "  with little room differs: rc %d why %s\n",
		    other.rc, other.why ? other.why : "-");
		show("client", other.client, other.client_len);
		show("backend", other.backend, other.backend_len);
	}
	CHECK(bad == 0);
}

#define SCRIPT(t, wc, wb, rc, out) \
	script_n(t, sizeof(t) / sizeof(t[0]), wc, strlen(wc), wb, strlen(wb), \
	    rc, out)
/* The same with expected bytes that hold NULs: string literals only. */
#define SCRIPT_BIN(t, wc, wb, rc, out) \
	script_n(t, sizeof(t) / sizeof(t[0]), wc, sizeof(wc) - 1, wb, \
	    sizeof(wb) - 1, rc, out)

#endif
