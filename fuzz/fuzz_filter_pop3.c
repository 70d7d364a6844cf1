/* libFuzzer target for filter_pop3, the POP3 stream filter of the relay.
 *
 * The input is a client's byte stream and the choices of a model backend:
 *
 *   byte 0     flags: bit 0 the backend greets first (implicit TLS; else
 *              the filter is told a hand-over took the greeting), bit 1 it
 *              ends its side once the client has and it has answered,
 *              bit 3 both sides read slowly (the filter's outputs all but
 *              full: squeeze())
 *   byte 1     how many of the following bytes the client sends (times 16
 *              with flags bit 2: lines past the filter's 512)
 *   then       the client's bytes, then choices: chunk sizes (1 to 64; the
 *              rest at once when they are spent) for either side, the
 *              slow reader's room, and the backend's answers (+OK or
 *              -ERR, where STLS sits in a CAPA list and in which case, a
 *              SASL challenge or the end, a line said unasked, a layer's
 *              buffer)
 *
 * The model backend reads commands as dovecot does (the verb up to the
 * first space, any case; a NUL ends the line), written apart from the
 * filter, and answers every line it reads with one response; a multi-line
 * one starts "+OK m" ("+OK capa" for CAPA), a one-line one "+OK s" or
 * "-ERR s", a challenge "+ c", a line said unasked "* ". After its +OK to
 * an AUTH or a SASL response, a first byte 0x00 starts a SASL security
 * layer: from there it reads bytes, not lines, and may answer with a
 * buffer whose lines would be changed if the filter still read them.
 * abort() marks a broken rule:
 *   - a line reaches the backend whose verb, read liberally (blanks and
 *     NULs before it skipped, up to the first non-alphanumeric), is STLS;
 *   - the client sees a line of a CAPA list whose first word is STLS;
 *   - the client's bytes, without our answers, differ from the backend's
 *     without the STLS lines of its CAPA lists (nothing else is changed);
 *   - an answer of ours comes inside a response, or not right after the
 *     responses to the lines passed before the line it answers;
 *   - after such a +OK, where the client's next byte is 0x00, what it
 *     sends from there does not reach the backend byte for byte, or the
 *     backend's layer does not reach the client so.
 */
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "fuzz_relay.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOTLS "-ERR TLS already active\r\n"
#define LONG "-ERR Line too long\r\n"
/* A layer's buffer from the backend: 4-byte length, then a CAPA list. */
#define WRAPPED "\0\0\0\x10+OK capa\r\nSTLS\r\n"

/* The verb of line p[0..n) as the most liberal server might read it. */
static int liberal_stls(const uint8_t *p, size_t n)
{
	size_t i = 0, v;

	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' ||
	    p[i] == '\v' || p[i] == '\f' || p[i] == '\0'))
		i++;
	for (v = i; v < n && alnum(p[v]); v++)
		continue;
	return word(p + i, v - i, "STLS");
}

/* The model backend. */
struct server {
	int sasl;		/* the next line is a SASL response */
	struct fz_bytes line;	/* the line being read */
	struct fz_bytes out;	/* its responses, not yet delivered */
	struct fz_bytes clean;	/* its responses without CAPA's STLS lines */
	size_t lines;		/* lines read (each owes one response) */
	/* Set by the harness before each serve(): the client's bytes the
	 * filter took so far (it takes none past an AUTH line or a SASL
	 * response until the answer), and the bytes that reached us. */
	const uint8_t *client;
	size_t nclient, coff, goff;
	int window;		/* after our +OK to AUTH: a layer may start */
	int window_raw;		/* ...and will: the client's next byte is 0x00 */
	int raw;		/* a layer started: bytes, not lines */
	int expect;		/* the client's next byte was 0x00 */
	size_t raw_coff, raw_goff;	/* where the layer starts in each */
};

static void say(struct server *s, const char *text, int stls)
{
	fz_append(&s->out, text, strlen(text));
	if (!stls)
		fz_append(&s->clean, text, strlen(text));
}

/* Authenticated: a layer starts if the client's next byte is 0x00. */
static void logged_in(struct server *s)
{
	say(s, "+OK s logged in\r\n", 0);
	s->window = 1;
	/* The filter decides by the client's next byte, which may not be the
	 * next to reach us (it answers an STLS or STARTTLS itself). */
	s->window_raw = s->coff < s->nclient && s->client[s->coff] == 0x00;
	if (s->window_raw) {
		s->expect = 1;
		s->raw_coff = s->coff;
		s->raw_goff = s->goff;
	}
}

static size_t digits(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] >= '0' && p[i] <= '9')
		i++;
	return i;
}

static void capa(struct server *s, struct choices *c)
{
	static const char *const stls[] = { "STLS\r\n", "stls\r\n", "StLs \r\n",
	    "STLS\n" };
	unsigned where = pick(c) % 4, how = pick(c) % 4;

	say(s, "+OK capa\r\n", 0);
	if (where == 0)
		say(s, stls[how], 1);
	say(s, "TOP\r\nSTLSX\r\n", 0);
	if (where == 1)
		say(s, stls[how], 1);
	say(s, "SASL PLAIN STLS\r\n..STLS\r\n", 0);
	if (where == 2)
		say(s, stls[how], 1);
	say(s, ".\r\n", 0);
}

static void command(struct server *s, const uint8_t *p, size_t n,
    struct choices *c)
{
	const uint8_t *sp, *nul;
	size_t v;
	int arg, ok = pick(c) & 1;

	if (liberal_stls(p, n))
		abort();	/* an STLS reached the backend */
	s->lines++;
	if (pick(c) % 8 == 0)
		say(s, "* unasked\r\n", 0);
	if (s->sasl) {
		s->sasl = 0;
		switch (pick(c) % 3) {
		case 0: say(s, "+ c\r\n", 0); s->sasl = 1; break;
		case 1: logged_in(s); break;
		default: say(s, "-ERR s auth failed\r\n", 0); break;
		}
		return;
	}
	/* dovecot: the line ends at a NUL, the verb at the first space */
	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	if ((nul = memchr(p, '\0', n)) != NULL)
		n = (size_t)(nul - p);
	sp = memchr(p, ' ', n);
	v = sp ? (size_t)(sp - p) : n;
	arg = sp != NULL && v + 1 < n;
	if (word(p, v, "CAPA")) {
		if (ok)
			capa(s, c);
		else
			say(s, "-ERR s\r\n", 0);
	} else if (word(p, v, "RETR") || word(p, v, "TOP")) {
		/* a message: anything may be in it */
		if (ok)
			say(s, "+OK m\r\n+OK s\r\nSTLS\r\n" NOTLS "..\r\n"
			    ".STLS\r\n-ERR\r\n+ c\r\n.\r\n", 0);
		else
			say(s, "-ERR s\r\n", 0);
	} else if ((word(p, v, "LIST") || word(p, v, "UIDL") ||
	    word(p, v, "AUTH")) && !arg) {
		say(s, ok ? "+OK m\r\n1 30\r\nPLAIN\r\n.\r\n" : "-ERR s\r\n", 0);
	} else if (word(p, v, "AUTH")) {
		if (ok && digits(p + v + 1, n - v - 1) == 0 &&
		    alnum(p[v + 1])) {
			/* with an initial response, done at once or not */
			if (pick(c) % 4 == 0) {
				logged_in(s);
			} else {
				say(s, "+ c\r\n", 0);
				s->sasl = 1;
			}
		} else {
			say(s, "-ERR s\r\n", 0);
		}
	} else if (word(p, v, "LIST") || word(p, v, "UIDL")) {
		/* a message number, or an error */
		say(s, ok && digits(p + v + 1, n - v - 1) == n - v - 1 ?
		    "+OK s\r\n" : "-ERR s\r\n", 0);
	} else if (word(p, v, "NOOP") || word(p, v, "USER") ||
	    word(p, v, "PASS") || word(p, v, "STAT") || word(p, v, "DELE") ||
	    word(p, v, "RSET")) {
		say(s, ok ? "+OK s\r\n" : "-ERR s\r\n", 0);
	} else {
		say(s, "-ERR s unknown command\r\n", 0);
	}
}

/* Read what reached the backend: all of it, then drop it at once. */
static void serve(struct server *s, struct buf *from, struct choices *c)
{
	const uint8_t *p = buf_peek(from);
	size_t i = 0;

	if (s->window && from->len > 0 && s->line.len == 0) {
		s->window = 0;
		s->raw = s->window_raw;
	}
	if (s->raw) {
		if (from->len > 0 && pick(c) % 2 == 0) {
			fz_append(&s->out, WRAPPED, sizeof(WRAPPED) - 1);
			fz_append(&s->clean, WRAPPED, sizeof(WRAPPED) - 1);
		}
		drain(from);
		return;
	}
	while (i < from->len && fz_next_line(&s->line, p, from->len, &i)) {
		command(s, fz_peek(&s->line), s->line.len, c);
		fz_reset(&s->line);
	}
	drain(from);
}

/* The client's view: responses framed by the model's markers. */
struct viewer {
	enum { V_START, V_BODY, V_CAPA } mode;
	int greeting;		/* the first line is the greeting */
	int raw;		/* a layer started: bytes, not lines */
	size_t responses;	/* whole responses to lines the backend read */
	size_t nans;		/* answers of ours seen */
	size_t at[256];		/* responses seen before each */
	struct fz_bytes line;
	struct fz_bytes clean;	/* all but our answers */
};

static void view_line(struct viewer *v, const uint8_t *p, size_t n)
{
	size_t w;

	if (v->mode == V_START && ((n == strlen(NOTLS) &&
	    memcmp(p, NOTLS, n) == 0) || (n == strlen(LONG) &&
	    memcmp(p, LONG, n) == 0))) {
		if (v->nans < 256)
			v->at[v->nans] = v->responses;
		v->nans++;
		return;
	}
	fz_append(&v->clean, p, n);
	if (v->mode != V_START) {
		if ((n == 2 && p[0] == '.') || (n == 3 && p[0] == '.' &&
		    p[1] == '\r')) {
			v->mode = V_START;
			v->responses++;
			return;
		}
		for (w = 0; w < n && p[w] != ' ' && p[w] != '\r' &&
		    p[w] != '\n'; w++)
			continue;
		if (v->mode == V_CAPA && word(p, w, "STLS"))
			abort();	/* offered to the client */
		return;
	}
	if (v->greeting) {
		v->greeting = 0;
		return;
	}
	if (n >= 2 && p[0] == '*')
		return;
	if (n >= 8 && memcmp(p, "+OK capa", 8) == 0)
		v->mode = V_CAPA;
	else if (n >= 5 && memcmp(p, "+OK m", 5) == 0)
		v->mode = V_BODY;
	else
		v->responses++;
}

static void view(struct viewer *v, const struct buf *b)
{
	const uint8_t *p = buf_peek(b);
	size_t i = 0;

	if (v->raw) {
		fz_append(&v->clean, p, b->len);
		return;
	}
	while (i < b->len && fz_next_line(&v->line, p, b->len, &i)) {
		view_line(v, fz_peek(&v->line), v->line.len);
		fz_reset(&v->line);
	}
}

/* Which of the client's whole lines the filter took out, from what reached
 * the backend (every line passes whole or not at all); each answered one
 * must have come right after the responses to those passed before it. */
static void check_answers(const uint8_t *client, size_t nclient,
    const struct fz_bytes *got, const struct viewer *v)
{
	const uint8_t *g = fz_peek(got), *lf;
	size_t off = 0, goff = 0, passed = 0, nans = 0, len;

	while (off < nclient &&
	    (lf = memchr(client + off, '\n', nclient - off)) != NULL) {
		len = (size_t)(lf - (client + off)) + 1;
		if (goff + len <= got->len && memcmp(g + goff, client + off,
		    len) == 0) {
			goff += len;
			passed++;
		} else {
			/* Taken out: answered once its turn came. */
			if (nans < v->nans && nans < 256 && v->at[nans] != passed)
				abort();
			nans++;
		}
		off += len;
	}
	/* A long line streams: the start of a last one without its end may
	 * have gone. */
	if (goff < got->len && (off + got->len - goff > nclient ||
	    memcmp(g + goff, client + off, got->len - goff) != 0))
		abort();	/* bytes invented */
	/* A last line without its end is answered only when it is long
	 * (over the filter's 512 bytes) and none of it went. */
	if (goff == got->len && nclient - off >= 512 && v->nans == nans + 1) {
		if (nans < 256 && v->at[nans] != passed)
			abort();
		nans++;
	}
	if (nans != v->nans)
		abort();	/* answers unaccounted */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static _Alignas(16) uint8_t st[1024];
	static struct server s;
	static struct viewer v;
	static struct fz_bytes got;
	struct buf cin = {0}, bin = {0}, tob = {0}, toc = {0};
	/* The filter's outputs: tob and toc, or with a slow reader these,
	 * from which what it wrote goes on to tob and toc. */
	struct buf ftob = {0}, ftoc = {0};
	struct buf *otob = &tob, *otoc = &toc;
	size_t room = BUF_CAP, utob = 0, utoc = 0;
	struct choices c;
	const uint8_t *client;
	size_t nclient, fed = 0;
	const char *why = NULL;
	int ceof = 0, beof = 0, rc = 0, round;
	uint8_t flags;

	if (size < 2 || filter_pop3.state_size > sizeof(st))
		return 0;
	flags = data[0];
	nclient = (size_t)data[1] * (flags & 4 ? 16 : 1);
	if (nclient > size - 2)
		nclient = size - 2;
	client = data + 2;
	c.p = data + 2 + nclient;
	c.n = size - 2 - nclient;
	memset(st, 0, sizeof(st));
	/* Field by field: a memset would clear the stores' arrays too. */
	s.sasl = 0;
	s.lines = 0;
	s.client = client;
	s.nclient = nclient;
	s.window = s.raw = s.expect = 0;
	fz_reset(&s.line);
	fz_reset(&s.out);
	fz_reset(&s.clean);
	v.mode = V_START;
	v.greeting = v.raw = 0;
	v.responses = v.nans = 0;
	fz_reset(&v.line);
	fz_reset(&v.clean);
	fz_reset(&got);
	if (flags & 1) {
		say(&s, "+OK greeting\r\n", 0);
		v.greeting = 1;
	} else {
		filter_pop3_greeted(st);   /* conn_relay_start() after STLS */
	}

	if (flags & 8) {
		otob = &ftob;
		otoc = &ftoc;
		room = 1;
	}
	/* A slow reader takes a round per few bytes. */
	for (round = 0; round < (flags & 8 ? 65536 : 4096) && rc == 0;
	    round++) {
		size_t before_c, before_b, k;
		int moved = 0;

		if (fed < nclient) {
			k = pick_chunk(&c);
			if (k > nclient - fed)
				k = nclient - fed;
			if (k > BUF_CAP - cin.len)
				k = BUF_CAP - cin.len;
			buf_append(&cin, client + fed, k);
			fed += k;
			moved = 1;
		}
		ceof = fed == nclient;
		before_c = cin.len;
		if (flags & 8) {
			utob = squeeze(&ftob, room, &tob);
			utoc = squeeze(&ftoc, room, &toc);
		}
		rc = filter_pop3.up(st, &cin, otob, otoc, ceof, &why);
		if (flags & 8) {
			pass_on(&ftob, utob, &tob);
			pass_on(&ftoc, utoc, &toc);
		}
		if (rc < 0)
			break;
		moved |= tob.len > 0 || before_c != cin.len;
		if (tob.len > 0)
			fz_append(&got, buf_peek(&tob), tob.len);
		s.coff = fed - cin.len;
		s.goff = got.len;
		serve(&s, &tob, &c);
		if (s.raw && !v.raw) {
			/* Our +OK went whole, and nothing after it. */
			if (v.line.len != 0 || v.mode != V_START)
				abort();
			v.raw = 1;
		}

		if (s.out.len > 0) {
			k = pick_chunk(&c);
			if (k > s.out.len)
				k = s.out.len;
			if (k > BUF_CAP - bin.len)
				k = BUF_CAP - bin.len;
			buf_append(&bin, fz_peek(&s.out), k);
			fz_consume(&s.out, k);
			moved = 1;
		}
		beof = (flags & 2) && ceof && s.out.len == 0 && cin.len == 0;
		before_b = bin.len;
		if (flags & 8) {
			utob = squeeze(&ftob, room, &tob);
			utoc = squeeze(&ftoc, room, &toc);
		}
		rc = filter_pop3.down(st, &bin, otoc, otob, beof, &why);
		if (flags & 8) {
			pass_on(&ftob, utob, &tob);
			pass_on(&ftoc, utoc, &toc);
		}
		moved |= before_b != bin.len || toc.len > 0;

		view(&v, &toc);
		drain(&toc);
		if (!moved && ceof && s.out.len == 0 && room == BUF_CAP)
			break;
		if (flags & 8)
			room = next_room(room, moved, &c);
	}
	if (rc != 0)
		abort();	/* the filter fails no session */
	/* Every byte the backend sent reached the client but the STLS lines
	 * of its lists, once the backend was done. */
	if (s.out.len == 0 && bin.len == 0 && v.line.len == 0 &&
	    (v.clean.len != s.clean.len || (v.clean.len > 0 &&
	    memcmp(fz_peek(&v.clean), fz_peek(&s.clean), v.clean.len) != 0)))
		abort();
	if (s.out.len == 0 && bin.len == 0 && cin.len == 0)
		check_answers(client, nclient, &got, &v);
	/* A layer the client started passed both ways untouched (the down
	 * side: v.clean above). */
	if (s.expect && fed == nclient && cin.len == 0 &&
	    (got.len - s.raw_goff != nclient - s.raw_coff ||
	    memcmp(fz_peek(&got) + s.raw_goff, client + s.raw_coff,
	    nclient - s.raw_coff) != 0))
		abort();
	buf_reset(&cin);
	buf_reset(&bin);
	buf_reset(&tob);
	buf_reset(&toc);
	buf_reset(&ftob);
	buf_reset(&ftoc);
	return 0;
}
