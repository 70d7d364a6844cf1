#include "filter.h"
#include "ldap_guard.h"

#include <string.h>

/*
 * LDAP after TLS (LDAPS, or after StartTLS): the client's messages pass
 * through ldap_guard, which frames them and takes out a second StartTLS
 * (answered with operationsError, RFC 4511 4.14.1).
 *
 * Those answers go into the client's stream between the backend's
 * LDAPMessages, never inside one: the backend's bytes come in arbitrary
 * pieces, so the down side frames them (SEQUENCE tag, definite length)
 * without holding more than a header, and the answers wait in `answers`
 * until the bytes passed to the client end on a message boundary, and
 * until the client-bound buffer has room for them whole.
 */

/* One answer: the guard builds it in 128 bytes (ldap_guard.c). */
#define ANSWER_MAX	128
/*
 * The answers held at most (16 of them). A client that sends
 * StartTLS after StartTLS while the backend is in the middle of a long
 * message would grow `answers` without end; past this cap the client's
 * stream is held instead (left in `in`, where the relay's own
 * backpressure bounds it) until the backend's message ends and the
 * answers go. That wait is short and always ends, since a server writes
 * a message whole without waiting for its client, and it keeps a client
 * that pipelines a few requests working, where failing the connection
 * would not.
 */
#define ANSWERS_MAX	1024

struct ldap_state {
	struct ldap_guard guard;	/* up: the client's messages */
	struct buf answers;	/* ours, waiting for a boundary; memory only
				 * while some wait */
	uint64_t left;		/* down: bytes of the backend's current
				 * message not yet passed (0: at a boundary) */
	uint8_t off;		/* down: not LDAP framing; passes untouched */
};

/* Copies up to ok cleared bytes from in to out; how many it moved. */
static size_t pass(struct ldap_guard *g, struct buf *in, struct buf *out, size_t ok,
                   const char **why)
{
	size_t moved = 0, room;
	uint8_t *p;

	while (ok > 0) {
		if ((p = buf_space(out, &room)) == NULL) {
			*why = "out of memory";
			return (size_t)-1;
		}
		if (room == 0)
			break;
		if (room > ok)
			room = ok;
		memcpy(p, buf_peek(in), room);
		buf_commit(out, room);
		buf_consume(in, room);
		ldap_guard_sent(g, room);
		ok -= room;
		moved += room;
	}
	return moved;
}

/*
 * Our answers to the client-bound buffer `to`, whole, once what went there
 * ends on a boundary of the backend's messages. With the framing off there
 * is no boundary to wait for: they go at once (as they did before the down
 * side was framed; the stream is not LDAP anyway). With the backend's
 * stream ended (`ended`) and nothing left of it to pass, they go too: a
 * message the backend cut will never end, and a client that gets its
 * answer after a truncated message is no worse off than one that gets
 * none. 1 nothing waits, 0 they wait, -1 error.
 */
static int release(struct ldap_state *st, struct buf *to, int ended, const char **why)
{
	int r;

	if (st->answers.len == 0)
		return 1;
	if (st->left > 0 && !st->off && !ended)
		return 0;
	if ((r = filter_put(to, buf_peek(&st->answers), st->answers.len, why)) <= 0)
		return r;
	buf_reset(&st->answers);
	return 1;
}

static int ldap_up(void *vst, struct buf *in, struct buf *out, struct buf *back,
                   int eof, const char **why)
{
	struct ldap_state *st = vst;
	struct ldap_guard *g = &st->guard;
	size_t ok, drop, moved;
	int held = 0;

	/* Until nothing moves: a StartTLS behind other messages reaches
	 * the front only once those have gone. */
	for (;;) {
		uint32_t had;
		int fresh = g->discard == 0;

		/* At once if the client's stream is at a boundary; else the
		 * down side releases them. */
		if (release(st, back, 0, why) < 0)
			return -1;
		if (st->answers.len > ANSWERS_MAX - ANSWER_MAX) {
			held = 1;	/* see ANSWERS_MAX */
			break;
		}
		had = st->answers.len;
		ok = ldap_guard_scan(g, buf_peek(in), in->len, &drop, &st->answers);
		if (drop > 0) {
			/* A StartTLS it has just found and taken out owes an
			 * answer; the guard does not say when it could not
			 * append one (no memory), so look. */
			if (fresh && st->answers.len == had) {
				*why = "out of memory";
				return -1;
			}
			buf_consume(in, drop);
			continue;
		}
		if (ok == 0)
			break;
		if ((moved = pass(g, in, out, ok, why)) == (size_t)-1)
			return -1;
		if (moved < ok)
			break;   /* out is full: called again */
	}
	if (release(st, back, 0, why) < 0)
		return -1;
	/* At the end, a partial message goes on as it is: the backend
	 * judges it, and sees the end of the stream after it. Not what the
	 * cap holds: that waits for the backend's side to move. */
	if (eof && !held && in->len && pass(g, in, out, in->len, why) == (size_t)-1)
		return -1;
	return 0;
}

/* The header of a BER SEQUENCE at p[0..n): tag 0x30 and a definite length
 * (short form, or long form in at most four octets, as ber.h reads LDAP).
 * 1 with *total the bytes of the whole element, 0 need more, -1 not an
 * LDAPMessage's framing. */
static int seq_header(const uint8_t *p, size_t n, uint64_t *total)
{
	uint64_t len = 0;
	size_t k;

	if (n < 1)
		return 0;
	if (p[0] != 0x30)
		return -1;
	if (n < 2)
		return 0;
	if (p[1] < 0x80) {
		*total = 2 + (uint64_t)p[1];
		return 1;
	}
	k = p[1] & 0x7f;
	if (k == 0 || k > 4)
		return -1;	/* indefinite (RFC 4511 5.1 forbids it), or > 4 GiB */
	if (n < 2 + k)
		return 0;
	for (size_t j = 0; j < k; j++)
		len = len << 8 | p[2 + j];
	*total = 2 + k + len;
	return 1;
}

/* How many leading bytes of the backend's p[0..n) go now, at most room:
 * up to a boundary where answers wait, or short of a partial header.
 * Advances the framing over them. */
static size_t frame(struct ldap_state *st, const uint8_t *p, size_t n, size_t room,
                    int eof)
{
	size_t lim = n < room ? n : room, pos = 0;

	while (pos < lim) {
		int r;

		if (st->off)
			return lim;
		if (st->left > 0) {
			size_t k = st->left < lim - pos ? (size_t)st->left : lim - pos;
			st->left -= k;
			pos += k;
			continue;
		}
		if (st->answers.len > 0)
			break;	/* they go here, before the next message */
		r = seq_header(p + pos, n - pos, &st->left);
		/* Not LDAP (or a header the end of the stream cut): pass the
		 * rest untouched, as the guard does with the client's. */
		if (r < 0 || (r == 0 && eof))
			st->off = 1;
		else if (r == 0)
			break;	/* hold the partial header */
	}
	return pos;
}

/* n bytes from the front of in to the end of out, which has room. When
 * they are all of in and out is empty, the buffers trade places: no copy,
 * as on a connection without a filter (the common case when the client
 * reads as fast as the backend writes). */
static int move(struct buf *in, struct buf *out, size_t n, const char **why)
{
	if (out->len == 0 && n == in->len) {
		struct buf t = *out;
		*out = *in;
		*in = t;
		buf_reset(in);	/* an empty buffer holds no memory */
		return 0;
	}
	if (buf_append(out, buf_peek(in), n) < 0) {
		*why = "out of memory";
		return -1;
	}
	buf_consume(in, n);
	return 0;
}

static int ldap_down(void *vst, struct buf *in, struct buf *out, struct buf *back,
                     int eof, const char **why)
{
	struct ldap_state *st = vst;
	size_t n;
	int r;

	(void)back;
	for (;;) {
		if ((r = release(st, out, eof && in->len == 0, why)) < 0)
			return -1;
		if (r == 0 && (st->left == 0 || st->off))
			return 0;	/* at their place, waiting for room */
		if (in->len == 0 ||
		    (n = frame(st, buf_peek(in), in->len, buf_room(out), eof)) == 0)
			return 0;
		if (move(in, out, n, why) < 0)
			return -1;
	}
}

static void ldap_cleanup(void *vst)
{
	struct ldap_state *st = vst;

	buf_reset(&st->answers);
}

const struct filter_ops filter_ldap = {
	.name = "ldap",
	.state_size = sizeof(struct ldap_state),
	.up = ldap_up,
	.down = ldap_down,
	.cleanup = ldap_cleanup,
};
