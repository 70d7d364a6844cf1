#include "filter.h"

#include <stdint.h>
#include <string.h>

/*
 * SMTP after the hand-over. With `xclient = yes` the backend trusts
 * portier's address for XCLIENT (and may for XFORWARD): a client must never
 * reach it with either, nor see them offered. So the client's stream is
 * framed into commands and message content (RFC 5321, BDAT RFC 3030), the
 * two verbs are answered here with 550, and the backend's EHLO replies lose
 * their XCLIENT, XFORWARD and STARTTLS lines.
 *
 * Under pipelining (RFC 2920) replies come in command order, so our own
 * answers must sit between the backend's at the right place: `sent` counts
 * the commands passed on (each owes one reply), `done` the replies that came
 * back, and an answer due while replies are outstanding waits in a small
 * queue, tagged with the number of replies that must come before it.
 *
 * The filter and the backend must agree on where commands are: bytes the
 * filter passes as data that the backend reads as commands would carry an
 * XCLIENT past it. So:
 *   - DATA content starts only on the backend's 354 (the client's bytes
 *     wait for it) and ends at a "." line ending in LF or CRLF, the most a
 *     lenient backend accepts; a backend that ends it later only makes us
 *     read some content as commands, from a line start on both sides;
 *   - a BDAT chunk has no such slack (its end may cut a line), so BDAT
 *     passes only in the one spelling every server reads alike ("BDAT",
 *     one space, a decimal size without leading zeros, optionally one space
 *     and LAST) and only after the backend offered CHUNKING; any other
 *     BDAT is answered here and dropped;
 *   - a line sent while a SASL exchange waits for its response (after 334)
 *     is that response for the backend, never BDAT data;
 *   - a dropped line leaves the backend where it was, and the filter too;
 *   - a 220 other than the backend's greeting means it started TLS (or a
 *     new session) with the client, beyond the filter's sight: the
 *     connection ends.
 */

#define CMD_MAX		1000	/* RFC 5321 4.5.3.1.4: a line with its CRLF */
/* RFC 4954 4: a SASL response line; also an AUTH command's, whose initial
 * response is one (an XOAUTH2 token runs past 1000 bytes, and clients
 * send it so; the backend judges its own limit). */
#define SASL_MAX	12288
#define REPLY_MAX	BUF_CAP	/* a reply held whole (EHLO), or one line */
#define QUEUE_MAX	8	/* answers waiting for earlier replies */
#define SIZE_DIGITS	18	/* longest BDAT size passed */

enum umode { U_CMD, U_DISCARD, U_BODY, U_CHUNK };
/* A command whose reply decides what the client's next bytes are (content
 * after 354, a SASL response after 334, TLS after 220; EHLO: which reply
 * is the one to clean); the client's bytes wait for it (RFC 2920 3.1 and
 * RFC 4954 4 have the client wait as well). */
enum wait { W_NONE, W_DATA, W_EHLO, W_STARTTLS, W_AUTH };
enum answer { A_XCLIENT, A_XFORWARD, A_TOOLONG, A_BDAT, A_NOCHUNKING };
enum kind { K_OTHER, K_XCLIENT, K_XFORWARD, K_DATA, K_EHLO, K_STARTTLS,
	K_AUTH, K_BDAT, K_BADBDAT, K_NOCHUNKING };

static const char *const answers[] = {
	[A_XCLIENT] = "550 5.7.0 XCLIENT is not permitted\r\n",
	[A_XFORWARD] = "550 5.7.0 XFORWARD is not permitted\r\n",
	[A_TOOLONG] = "500 5.5.2 Line too long\r\n",
	[A_BDAT] = "501 5.5.4 Syntax: BDAT size [LAST]\r\n",
	[A_NOCHUNKING] = "502 5.5.1 BDAT without CHUNKING\r\n",
};

struct smtp_state {
	uint64_t sent;		/* commands passed on; each owes a reply */
	uint64_t done;		/* replies back (never more than sent) */
	uint64_t wait_seq;	/* `sent` when the awaited command went */
	uint64_t chunk;		/* BDAT bytes still to pass */
	struct {
		uint64_t after;	/* goes once `done` reaches this */
		uint8_t what;	/* enum answer */
	} q[QUEUE_MAX];
	uint8_t qhead, qlen;
	uint8_t umode;		/* enum umode */
	uint8_t wait;		/* enum wait */
	uint8_t body;		/* enum filter_body */
	uint8_t sasl;		/* last reply 334: a SASL response comes */
	uint8_t chunking;	/* the last EHLO reply offered CHUNKING */
	uint8_t mid;		/* down: a reply is partly passed */
	uint8_t replied;	/* down: a whole reply came */
	uint8_t greeting;	/* down: the reply being read is the greeting */
	uint32_t dpos;		/* down: start of the line being read in `in` */
	uint32_t dscan;		/* down: no LF in `in` before this */
};

/* The line p[0..n) (no line end) is BDAT as every server reads it:
 * "BDAT" SP size [SP "LAST"], the size decimal without leading zeros. */
static int bdat_size(const uint8_t *p, size_t n, uint64_t *size)
{
	size_t i = 5, d;

	if (n < 6 || !filter_word_is(p, 4, "BDAT") || p[4] != ' ' ||
	    (p[5] == '0' && n > 6 && p[6] >= '0' && p[6] <= '9'))
		return 0;
	for (*size = 0, d = 0; i < n && p[i] >= '0' && p[i] <= '9'; i++, d++)
		*size = *size * 10 + (uint64_t)(p[i] - '0');
	if (d == 0 || d > SIZE_DIGITS)
		return 0;
	return i == n || (n - i == 5 && p[i] == ' ' &&
	    filter_word_is(p + i + 1, 4, "LAST"));
}

/* What the command line p[0..len) is. The verb is read liberally (leading
 * blanks skipped, any non-alphanumeric ends it): a backend's own reading
 * of "XCLIENT" can only be narrower. */
static enum kind classify(const uint8_t *p, size_t len, uint64_t *size)
{
	size_t n = filter_unterminated(p, len), i = 0, v;

	while (i < n && filter_blank(p[i]))
		i++;
	for (v = i; v < n && filter_alnum(p[v]); v++)
		continue;
	if (filter_word_is(p + i, v - i, "XCLIENT"))
		return K_XCLIENT;
	if (filter_word_is(p + i, v - i, "XFORWARD"))
		return K_XFORWARD;
	if (filter_word_is(p + i, v - i, "DATA"))
		return K_DATA;
	if (filter_word_is(p + i, v - i, "EHLO"))
		return K_EHLO;
	if (filter_word_is(p + i, v - i, "STARTTLS"))
		return K_STARTTLS;
	if (filter_word_is(p + i, v - i, "AUTH"))
		return K_AUTH;
	if (filter_word_is(p + i, v - i, "BDAT"))
		return bdat_size(p, n, size) ? K_BDAT : K_BADBDAT;
	return K_OTHER;
}

/* Answer the client ourselves: at once when no reply is outstanding,
 * else queued behind the replies owed so far. 1 done, 0 wait (no room,
 * queue full), -1 error. */
static int answer(struct smtp_state *st, enum answer what, struct buf *back,
    const char **why)
{
	if (st->qlen == 0 && st->sent == st->done && !st->mid)
		return filter_put(back, answers[what], strlen(answers[what]),
		    why);
	if (st->qlen == QUEUE_MAX)
		return 0;
	st->q[(st->qhead + st->qlen) % QUEUE_MAX].after = st->sent;
	st->q[(st->qhead + st->qlen) % QUEUE_MAX].what = (uint8_t)what;
	st->qlen++;
	return 1;
}

/* Queued answers whose turn has come (all of them at the backend's end)
 * to out. 1 done, 0 no room, -1 error. */
static int release(struct smtp_state *st, struct buf *out, int all,
    const char **why)
{
	int r;

	while (st->qlen > 0 && (all || st->q[st->qhead].after <= st->done)) {
		const char *a = answers[st->q[st->qhead].what];
		if ((r = filter_put(out, a, strlen(a), why)) <= 0)
			return r;
		st->qhead = (uint8_t)((st->qhead + 1) % QUEUE_MAX);
		st->qlen--;
	}
	return 1;
}

/* One command line at the front of in. */
static int up_command(struct smtp_state *st, struct buf *in, struct buf *out,
    struct buf *back, int eof, const char **why)
{
	const uint8_t *p = buf_peek(in), *lf;
	size_t max = st->sasl || (in->len >= 5 && filter_word_is(p, 4, "AUTH") &&
	    p[4] == ' ') ? SASL_MAX : CMD_MAX, len;
	uint64_t size = 0;
	enum kind k;
	int r;

	if (st->wait != W_NONE)
		return 0;
	lf = memchr(p, '\n', in->len < max ? in->len : max);
	if (lf == NULL) {
		if (in->len >= max) {
			/* Answered and dropped: the backend never sees a
			 * piece of it, so none of it can run as a command. */
			if ((r = answer(st, A_TOOLONG, back, why)) <= 0)
				return r;
			buf_consume(in, max);
			st->umode = U_DISCARD;
			return 1;
		}
		/* A command is complete only with its line end (RFC 5321
		 * 2.3.8); a client that ends without one sent none. */
		if (eof)
			buf_consume(in, in->len);
		return 0;
	}
	len = (size_t)(lf - p) + 1;
	k = classify(p, len, &size);
	/* A SASL response is no command for the backend: no BDAT either. */
	if (k == K_BDAT && (st->sasl || !st->chunking))
		k = st->sasl ? K_BADBDAT : K_NOCHUNKING;
	if (k == K_XCLIENT || k == K_XFORWARD || k == K_BADBDAT ||
	    k == K_NOCHUNKING) {
		r = answer(st, k == K_XCLIENT ? A_XCLIENT : k == K_XFORWARD ?
		    A_XFORWARD : k == K_BADBDAT ? A_BDAT : A_NOCHUNKING, back, why);
		if (r <= 0)
			return r;
		buf_consume(in, len);
		return 1;
	}
	if ((r = filter_put(out, p, len, why)) <= 0)
		return r;
	buf_consume(in, len);
	st->sent++;
	if (st->sasl)
		k = K_AUTH;	/* a response: a 334 may ask for another */
	st->sasl = 0;
	switch (k) {
	case K_DATA:
	case K_EHLO:
	case K_STARTTLS:
	case K_AUTH:
		st->wait = k == K_DATA ? W_DATA : k == K_EHLO ? W_EHLO :
		    k == K_STARTTLS ? W_STARTTLS : W_AUTH;
		st->wait_seq = st->sent;
		break;
	case K_BDAT:
		if (size > 0) {
			st->chunk = size;
			st->umode = U_CHUNK;
		}
		break;
	default:
		break;
	}
	return 1;
}

/* Message content (DATA or a BDAT chunk) passes as it is. */
static int up_content(struct smtp_state *st, struct buf *in, struct buf *out,
    const char **why)
{
	size_t n = in->len < buf_room(out) ? in->len : buf_room(out);
	int end = 0;

	if (n == 0)
		return 0;
	if (st->umode == U_CHUNK) {
		if (n > st->chunk)
			n = (size_t)st->chunk;
		st->chunk -= n;
		end = st->chunk == 0;
	} else {
		n = filter_dot_scan(&st->body, buf_peek(in), n, 0, &end);
	}
	if (filter_put(out, buf_peek(in), n, why) < 0)
		return -1;
	buf_consume(in, n);
	if (end) {
		if (st->umode == U_BODY)
			st->sent++;	/* the "." line is answered */
		st->umode = U_CMD;
	}
	return 1;
}

static int smtp_up(void *vst, struct buf *in, struct buf *out,
    struct buf *back, int eof, const char **why)
{
	struct smtp_state *st = vst;
	const uint8_t *lf;
	int r = 1;

	while (r > 0 && in->len > 0) {
		switch (st->umode) {
		case U_BODY:
		case U_CHUNK:
			r = up_content(st, in, out, why);
			break;
		case U_DISCARD:
			/* The rest of an over-long line. */
			lf = memchr(buf_peek(in), '\n', in->len);
			buf_consume(in, lf ? (size_t)(lf - buf_peek(in)) + 1 :
			    in->len);
			if (lf)
				st->umode = U_CMD;
			break;
		default:
			r = up_command(st, in, out, back, eof, why);
			break;
		}
	}
	return r < 0 ? -1 : 0;
}

/* Is p[0..len) a reply line: three digits, then '-', ' ' or its end? */
static int reply_line(const uint8_t *p, size_t len)
{
	return len >= 4 && p[0] >= '2' && p[0] <= '5' && p[1] >= '0' &&
	    p[1] <= '9' && p[2] >= '0' && p[2] <= '9' && (p[3] == '-' ||
	    p[3] == ' ' || p[3] == '\r' || p[3] == '\n');
}

static unsigned reply_code(const uint8_t *p)
{
	return (unsigned)(p[0] - '0') * 100 + (unsigned)(p[1] - '0') * 10 +
	    (unsigned)(p[2] - '0');
}

/* The EHLO keyword of reply line p[0..len) is kw. */
static int ext_is(const uint8_t *p, size_t len, const char *kw)
{
	size_t i = 4, v;

	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	for (v = i; v < len && (filter_alnum(p[v]) || p[v] == '-'); v++)
		continue;
	return i < len && filter_word_is(p + i, v - i, kw);
}

static int ext_hidden(const uint8_t *p, size_t len)
{
	return ext_is(p, len, "XCLIENT") || ext_is(p, len, "XFORWARD") ||
	    ext_is(p, len, "STARTTLS");
}

static size_t line_len(const uint8_t *p, size_t n)
{
	const uint8_t *lf = memchr(p, '\n', n);

	return lf ? (size_t)(lf - p) + 1 : n;
}

/* The whole EHLO reply p[0..len) to out without the hidden extensions;
 * the first line names the server and stays, and the last line left
 * keeps the space (RFC 5321 4.2.1). 1, 0 no room, -1 error. */
static int pass_ehlo(struct smtp_state *st, const uint8_t *p, size_t len,
    struct buf *out, const char **why)
{
	size_t off, ll, last = 0;
	uint8_t sep;
	int r;

	if (buf_room(out) < len)
		return 0;
	if (reply_code(p) != 250)
		return filter_put(out, p, len, why);
	st->chunking = 0;
	for (off = 0; off < len; off += ll) {
		ll = line_len(p + off, len - off);
		if (off == 0 || !ext_hidden(p + off, ll))
			last = off;
		if (off > 0 && ext_is(p + off, ll, "CHUNKING"))
			st->chunking = 1;
	}
	for (off = 0; off < len; off += ll) {
		ll = line_len(p + off, len - off);
		if (off > 0 && ext_hidden(p + off, ll))
			continue;
		if (p[off + 3] != '-' && p[off + 3] != ' ') {
			/* A bare "250". */
			r = filter_put(out, p + off, ll, why);
		} else {
			sep = off == last ? ' ' : '-';
			r = filter_put(out, p + off, 3, why);
			if (r > 0)
				r = filter_put(out, &sep, 1, why);
			if (r > 0)
				r = filter_put(out, p + off + 4, ll - 4, why);
		}
		if (r <= 0)
			return -1;	/* room was checked: out of memory */
	}
	return 1;
}

/* A whole reply came back: count it, and settle what waited for it. */
static int reply_done(struct smtp_state *st, unsigned code, const char **why)
{
	st->replied = 1;
	if (st->done < st->sent)
		st->done++;
	st->sasl = code == 334 && st->done == st->sent;
	if (st->wait == W_NONE || st->done != st->wait_seq)
		return 0;
	if (st->wait == W_DATA && code == 354) {
		st->umode = U_BODY;
		st->body = FB_BOL;
	}
	st->wait = W_NONE;
	return 0;
}

/* A yes to STARTTLS: whatever the filter took the command for, a 220 is
 * only ever a greeting, so one after the greeting starts TLS (or a new
 * session) beyond the filter's sight. */
static int new_session(const struct smtp_state *st, unsigned code)
{
	return code == 220 || (st->wait == W_STARTTLS &&
	    st->done + 1 == st->wait_seq && code / 100 == 2);
}

/* A reply starting with code is the backend's greeting: a 220 before any
 * other reply that does not answer a STARTTLS. It is there where no
 * hand-over took it (implicit TLS), perhaps after an early command. */
static int is_greeting(const struct smtp_state *st, unsigned code)
{
	return code == 220 && !st->replied && !(st->wait == W_STARTTLS &&
	    st->done + 1 == st->wait_seq);
}

/* The reply at the front of the backend's bytes answers an EHLO. */
static int ehlo_reply(const struct smtp_state *st)
{
	return !st->mid && st->wait == W_EHLO && st->done + 1 == st->wait_seq;
}

/* Whatever the backend left when it ended: a partial EHLO reply is dropped
 * (it may list what the client must not see), anything else passes. */
static int down_end(struct smtp_state *st, struct buf *in, struct buf *out,
    const char **why)
{
	int r;

	if (in->len > 0 && !ehlo_reply(st) &&
	    (r = filter_put(out, buf_peek(in), in->len, why)) <= 0)
		return r;
	buf_consume(in, in->len);
	st->dpos = st->dscan = 0;
	st->mid = 0;
	/* No more replies will come to make room for the answers. */
	return release(st, out, 1, why);
}

static int smtp_down(void *vst, struct buf *in, struct buf *out,
    struct buf *back, int eof, const char **why)
{
	struct smtp_state *st = vst;
	const uint8_t *p, *lf, *line;
	unsigned code;
	size_t end;
	int r, last;

	for (;;) {
		if (!st->mid && (r = release(st, out, 0, why)) <= 0)
			return r;
		if (in->len == 0)
			break;
		p = buf_peek(in);
		lf = memchr(p + st->dscan, '\n', in->len - st->dscan);
		if (lf == NULL) {
			st->dscan = in->len;
			if (in->len >= REPLY_MAX) {
				*why = "backend reply too long for the SMTP filter";
				return -1;
			}
			break;
		}
		end = (size_t)(lf - p) + 1;
		line = p + st->dpos;
		if (!reply_line(line, end - st->dpos)) {
			*why = "malformed SMTP reply from the backend";
			return -1;
		}
		last = line[3] != '-';
		code = reply_code(line);
		if (!st->mid && st->dpos == 0)
			st->greeting = (uint8_t)is_greeting(st, code);
		if (!st->greeting && new_session(st, code)) {
			*why = "backend accepted STARTTLS or began a new session: "
			    "the SMTP filter would lose sight of the commands";
			return -1;
		}
		if (!st->greeting && ehlo_reply(st)) {
			/* Held whole: a dropped last line changes the one
			 * before it. */
			if (!last) {
				st->dpos = st->dscan = (uint32_t)end;
				continue;
			}
			if ((r = pass_ehlo(st, p, end, out, why)) <= 0) {
				st->dscan = st->dpos;
				return r;
			}
		} else if ((r = filter_put(out, p, end, why)) <= 0) {
			st->dscan = 0;
			return r;
		}
		buf_consume(in, end);	/* may free what line points to */
		st->dpos = st->dscan = 0;
		st->mid = !last;
		if (last && st->greeting) {
			st->greeting = 0;	/* answers no command */
			st->replied = 1;
		} else if (last && reply_done(st, code, why) < 0) {
			return -1;
		}
	}
	if (eof && down_end(st, in, out, why) < 0)
		return -1;
	return 0;
}

void filter_smtp_greeted(void *vst)
{
	struct smtp_state *st = vst;

	/* A 220 is then TLS or a new session, even as the first reply. */
	st->replied = 1;
}

const struct filter_ops filter_smtp = {
	.name = "smtp",
	.state_size = sizeof(struct smtp_state),
	.up = smtp_up,
	.down = smtp_down,
};
