#include "filter.h"

#include <stdint.h>
#include <string.h>

/*
 * POP3 after TLS (implicit, or after STLS). TLS is portier's, so the
 * backend must neither offer STLS to the client nor ever see one: a
 * backend with TLS of its own would start TLS inside portier's, with its
 * own certificate (RFC 2595 4 has the client upgrade only once, but a
 * client believes the list it is shown). So:
 *   - the backend's CAPA list (RFC 2449 5) loses its STLS line;
 *   - a client's STLS is answered here, "-ERR TLS already active", and
 *     never reaches the backend; a line that reads as STLS is taken out
 *     even where it would be a SASL response (decoded, "STLS" is three
 *     bytes of binary no mechanism sends), so that rule holds however the
 *     filter and the backend frame the session.
 *
 * Everything else passes byte for byte. Responses come in command order
 * (RFC 2449 6.6 PIPELINING), so our answers wait behind those still owed:
 * a ring holds one entry per command passed (popped by its response) or
 * answered here (sent once all before it went). A +OK to CAPA, RETR, TOP,
 * and to LIST, UIDL, LANG (RFC 6856) and AUTH (dovecot's list of
 * mechanisms) without an argument is multi-line, up to a "." line
 * (RFC 1939 3); -ERR and "+ " (a SASL challenge, RFC 5034) are one line. A
 * line where a status is due that starts with neither "+" nor "-" passes
 * and answers nothing (an extension we do not know, a backend's own
 * notice). After AUTH and after each SASL response the client's bytes
 * wait for the backend's answer, which says whether the next line is a
 * command or another SASL response. After a +OK that ends an AUTH, a SASL
 * security layer may wrap both streams: the first byte either side sends
 * then decides whether the filter steps aside (filter.h).
 *
 * Nothing is held whole: a command line is held only until its verb (and
 * whether it has an argument) is known, CMD_MAX at most, then streams on;
 * a line still undecided there (hundreds of blanks before a verb) is
 * answered "-ERR Line too long" and dropped to its end, so an over-long
 * line costs no memory and cannot carry an STLS past the filter. The
 * backend's lines stream too; only a CAPA line's first bytes wait until
 * they are known not to be STLS.
 */

#define CMD_MAX	512	/* a command line held to read its verb (RFC 2449 4: 255) */
#define RING	32	/* responses owed, answers of our own waiting */

/* What a ring entry waits for. */
enum item { I_ONE, I_MULTI, I_CAPA, I_AUTH, I_STLS, I_LONG };
/* What a client line is, from its first bytes. */
enum kind { C_UNDECIDED, C_STLS, C_ONE, C_MULTI, C_CAPA, C_AUTH };
enum umode { U_CMD, U_STREAM, U_DROP };
enum dmode { D_START, D_LINE, D_BODY, D_DROP };

static const char *const answers[] = {
	[I_STLS] = "-ERR TLS already active\r\n",
	[I_LONG] = "-ERR Line too long\r\n",
};

struct pop3_state {
	uint8_t q[RING];	/* enum item, oldest at qhead */
	uint8_t qhead, qlen;
	uint8_t umode;		/* enum umode */
	uint8_t dmode;		/* enum dmode */
	uint8_t body;		/* enum filter_body */
	uint8_t wait;		/* the client's bytes wait for an AUTH's answer */
	uint8_t sasl;		/* the next client line is a SASL response */
	uint8_t greeted;	/* the greeting passed, or the hand-over ate it */
	uint8_t layer;		/* enum filter_layer */
	uint8_t owner;		/* D_LINE/D_BODY: the response answers q[qhead] */
	uint8_t multi;		/* D_LINE: a body follows the status line */
	uint8_t cont;		/* D_LINE: the line is a SASL challenge */
	uint8_t ok;		/* D_LINE: the line is a +OK */
	uint8_t capa;		/* D_BODY: a CAPA list */
};

/* What the client line p[0..n) is: all of it when complete, else its first
 * bytes. The verb is read liberally (blanks before it skipped, anything
 * not a letter or digit ends it): a backend's own reading of "STLS" or
 * "RETR" can only be narrower. No verb that matters is over 4 letters, so
 * a longer one is decided at once. */
static enum kind classify(const uint8_t *p, size_t n, int complete)
{
	size_t i = 0, v, a;
	int arg;

	if (complete)
		n = filter_unterminated(p, n);
	while (i < n && filter_blank(p[i]))
		i++;
	for (v = i; v < n && filter_alnum(p[v]) && v - i <= 4; v++)
		continue;
	if (v - i > 4)
		return C_ONE;
	if (v == n && !complete)
		return C_UNDECIDED;	/* the verb may go on */
	/* An argument is something not blank after the verb, before a NUL
	 * (dovecot reads "LIST " as LIST alone, and a line as a C string).
	 * Where a backend sees one and the filter does not, its answer is
	 * -ERR (no message has a blank for a number), one line either way. */
	for (a = v; a < n && p[a] != '\0' && filter_blank(p[a]); a++)
		continue;
	if (a == n && !complete)
		return C_UNDECIDED;	/* blanks so far: an argument may come */
	arg = a < n && p[a] != '\0';
	if (filter_word_is(p + i, v - i, "STLS"))
		return C_STLS;
	if (filter_word_is(p + i, v - i, "CAPA"))
		return C_CAPA;
	if (filter_word_is(p + i, v - i, "RETR") ||
	    filter_word_is(p + i, v - i, "TOP"))
		return C_MULTI;
	if (filter_word_is(p + i, v - i, "AUTH"))
		return arg ? C_AUTH : C_MULTI;
	if (filter_word_is(p + i, v - i, "LIST") ||
	    filter_word_is(p + i, v - i, "UIDL") ||
	    filter_word_is(p + i, v - i, "LANG"))
		return arg ? C_ONE : C_MULTI;
	return C_ONE;
}

static void push(struct pop3_state *st, enum item it)
{
	st->q[(st->qhead + st->qlen) % RING] = (uint8_t)it;
	st->qlen++;
}

static enum item pop(struct pop3_state *st)
{
	enum item it = st->q[st->qhead];

	st->qhead = (uint8_t)((st->qhead + 1) % RING);
	st->qlen--;
	return it;
}

/* Answer the client ourselves: at once when nothing is owed before it,
 * else behind what is. 1 done, 0 wait (no room, ring full), -1 error. */
static int answer(struct pop3_state *st, enum item what, struct buf *back,
    const char **why)
{
	if (st->qlen == 0 && st->dmode == D_START && st->greeted)
		return filter_put(back, answers[what], strlen(answers[what]),
		    why);
	if (st->qlen == RING)
		return 0;
	push(st, what);
	return 1;
}

/* Answers at the head of the ring to out; with all (the backend has
 * ended) every answer, as no response will come. 1 done, 0 no room, -1. */
static int release(struct pop3_state *st, struct buf *out, int all,
    const char **why)
{
	int r;

	if (all)
		st->wait = 0;	/* no answer to AUTH will come */
	while (st->qlen > 0 && (st->greeted || all)) {
		enum item it = st->q[st->qhead];
		if (it == I_STLS || it == I_LONG) {
			r = filter_put(out, answers[it], strlen(answers[it]), why);
			if (r <= 0)
				return r;
		} else if (!all) {
			break;
		}
		pop(st);
	}
	return 1;
}

/* One command line at the front of in. */
static int up_command(struct pop3_state *st, struct buf *in, struct buf *out,
    struct buf *back, int eof, const char **why)
{
	const uint8_t *p = buf_peek(in), *lf;
	size_t n = in->len < CMD_MAX ? in->len : CMD_MAX, len;
	enum kind k;
	enum item it;
	int r;

	if (st->wait || st->qlen == RING)
		return 0;
	lf = memchr(p, '\n', n);
	if (lf == NULL && in->len < CMD_MAX) {
		/* A command is complete only with its line end; a client
		 * that ends without one sent none. */
		if (eof)
			buf_consume(in, in->len);
		return 0;
	}
	len = lf ? (size_t)(lf - p) + 1 : n;
	k = classify(p, len, lf != NULL);
	if (k == C_STLS || k == C_UNDECIDED) {
		if ((r = answer(st, k == C_STLS ? I_STLS : I_LONG, back, why)) <= 0)
			return r;
		buf_consume(in, len);
		if (lf == NULL)
			st->umode = U_DROP;
		return 1;
	}
	if ((r = filter_put(out, p, len, why)) <= 0)
		return r;
	buf_consume(in, len);
	if (lf == NULL)
		st->umode = U_STREAM;
	/* A SASL response is answered by "+ " again or by the end. */
	it = st->sasl || k == C_AUTH ? I_AUTH : k == C_CAPA ? I_CAPA :
	    k == C_MULTI ? I_MULTI : I_ONE;
	push(st, it);
	st->sasl = 0;
	st->wait = it == I_AUTH;
	return 1;
}

/* The rest of a line: passed (stream) or dropped. */
static int up_rest(struct pop3_state *st, struct buf *in, struct buf *out,
    const char **why)
{
	const uint8_t *lf;
	int r, eol;

	if (st->umode == U_STREAM) {
		if ((r = filter_pass_line(in, out, &eol, why)) <= 0)
			return r;
	} else {
		lf = memchr(buf_peek(in), '\n', in->len);
		eol = lf != NULL;
		buf_consume(in, lf ? (size_t)(lf - buf_peek(in)) + 1 : in->len);
	}
	if (eol)
		st->umode = U_CMD;
	return 1;
}

static int pop3_up(void *vst, struct buf *in, struct buf *out,
    struct buf *back, int eof, const char **why)
{
	struct pop3_state *st = vst;
	int r = 1;

	while (r > 0 && in->len > 0) {
		if (st->umode == U_CMD && !st->wait)
			filter_layer_decide(&st->layer, in);
		if (st->layer == FL_ON)
			r = filter_pass_all(in, out, why);
		else if (st->umode == U_CMD)
			r = up_command(st, in, out, back, eof, why);
		else
			r = up_rest(st, in, out, why);
	}
	return r < 0 ? -1 : 0;
}

/* A whole response went to the client: cont a SASL challenge, ok a +OK
 * status line. */
static void response_done(struct pop3_state *st, int cont, int ok)
{
	st->dmode = D_START;
	if (!st->owner)
		return;
	if (pop(st) == I_AUTH) {
		st->wait = 0;
		st->sasl = (uint8_t)cont;
		/* The authentication succeeded; nothing else is owed (the
		 * client's bytes waited for this answer). */
		if (!cont && ok && st->qlen == 0)
			st->layer = FL_WINDOW;
	}
}

/* The status at the front of in: read what the response is. 1 decided,
 * 0 more bytes needed. */
static int down_status(struct pop3_state *st, struct buf *in, int eof)
{
	const uint8_t *p = buf_peek(in);
	size_t n = in->len;
	int ok = 0, cont = 0, decided = 1;
	enum item it;

	if (p[0] == '+') {
		if (n >= 2 && filter_upper(p[1]) != 'O')
			cont = 1;
		else if (n >= 3 && filter_upper(p[2]) != 'K')
			cont = 1;
		else if (n >= 3)
			ok = 1;
		else
			decided = 0;
	}
	if (!decided && !eof)
		return 0;
	/* No response is owed: the greeting (where no hand-over ate it), or
	 * something the backend says unasked. One line, answering nothing. */
	st->owner = st->greeted && st->qlen > 0 && (p[0] == '+' || p[0] == '-');
	if (!st->greeted)
		st->greeted = 1;
	it = st->owner ? (enum item)st->q[st->qhead] : I_ONE;
	st->multi = ok && (it == I_MULTI || it == I_CAPA);
	st->capa = it == I_CAPA;
	st->cont = (uint8_t)cont;
	st->ok = (uint8_t)ok;
	st->dmode = D_LINE;
	return 1;
}

/* The rest of a status line, passed as it comes. */
static int down_line(struct pop3_state *st, struct buf *in, struct buf *out,
    const char **why)
{
	int r, eol;

	if ((r = filter_pass_line(in, out, &eol, why)) <= 0)
		return r;
	if (!eol)
		return 1;
	if (st->multi) {
		st->dmode = D_BODY;
		st->body = FB_BOL;
	} else {
		response_done(st, st->cont, st->ok);
	}
	return 1;
}

/* A CAPA line starting at the front of in: 1 it is STLS, 0 it is not,
 * -1 not known yet. */
static int capa_stls(const struct buf *in, int eof)
{
	static const char kw[] = "STLS";
	const uint8_t *p = buf_peek(in);
	size_t i;

	for (i = 0; i < 4 && i < in->len; i++)
		if (filter_upper(p[i]) != kw[i])
			return 0;
	if (i < 4 || in->len == 4)
		return eof ? 1 : -1;	/* at the end a piece is dropped */
	return p[4] == ' ' || p[4] == '\r' || p[4] == '\n' || p[4] == '\t';
}

/* Multi-line body, passed as it comes; a CAPA list loses its STLS line. */
static int down_body(struct pop3_state *st, struct buf *in, struct buf *out,
    int eof, const char **why)
{
	size_t n = in->len < buf_room(out) ? in->len : buf_room(out);
	int end, s;

	if (st->capa && st->body == FB_BOL) {
		if ((s = capa_stls(in, eof)) < 0)
			return 0;
		if (s) {
			st->dmode = D_DROP;
			return 1;
		}
	}
	if (n == 0)
		return 0;
	n = filter_dot_scan(&st->body, buf_peek(in), n, st->capa, &end);
	if (filter_put(out, buf_peek(in), n, why) < 0)
		return -1;
	buf_consume(in, n);
	if (end)
		response_done(st, 0, 0);
	return 1;
}

static int pop3_down(void *vst, struct buf *in, struct buf *out,
    struct buf *back, int eof, const char **why)
{
	struct pop3_state *st = vst;
	const uint8_t *lf;
	int r = 1;

	(void)back;
	for (;;) {
		if (st->dmode == D_START && (r = release(st, out, 0, why)) <= 0)
			return r;
		if (in->len == 0)
			break;
		if (st->dmode == D_START)
			filter_layer_decide(&st->layer, in);
		if (st->layer == FL_ON) {
			r = filter_pass_all(in, out, why);
			if (r <= 0)
				return r;
			continue;
		}
		switch (st->dmode) {
		case D_START:
			r = down_status(st, in, eof);
			break;
		case D_LINE:
			r = down_line(st, in, out, why);
			break;
		case D_BODY:
			r = down_body(st, in, out, eof, why);
			break;
		default:
			/* The rest of a CAPA list's STLS line. */
			lf = memchr(buf_peek(in), '\n', in->len);
			buf_consume(in, lf ? (size_t)(lf - buf_peek(in)) + 1 :
			    in->len);
			if (lf) {
				st->dmode = D_BODY;
				st->body = FB_BOL;
			}
			break;
		}
		if (r <= 0)
			return r;
	}
	/* The backend ended: no response will come to make room for the
	 * answers still waiting. */
	if (eof)
		return release(st, out, 1, why) < 0 ? -1 : 0;
	return 0;
}

void filter_pop3_greeted(void *vst)
{
	struct pop3_state *st = vst;

	st->greeted = 1;
}

const struct filter_ops filter_pop3 = {
	.name = "pop3",
	.state_size = sizeof(struct pop3_state),
	.up = pop3_up,
	.down = pop3_down,
};
