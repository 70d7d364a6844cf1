/* libFuzzer target for filter_imap, the IMAP stream filter of the relay.
 *
 * The input is a client's byte stream and the choices of a model backend:
 *
 *   byte 0     flags: bit 0 the backend greets first (implicit TLS), bit 1
 *              it ends its side once the client has and it has answered,
 *              bit 2 the client length below counts 16-byte units (lines
 *              and literals past the filter's 1 KiB), bit 3 both sides
 *              read slowly (the filter's outputs all but full: squeeze())
 *   byte 1     how many of the following bytes the client sends
 *   then       the client's bytes, then choices: chunk sizes (1 to 64; the
 *              rest at once when they are spent) for either side, the
 *              slow reader's room, and the backend's answers (a
 *              synchronizing literal taken or refused, where STARTTLS and
 *              COMPRESS=DEFLATE sit in a capability list, a SASL
 *              challenge or the end, a layer's buffer)
 *
 * The model backend reads commands as dovecot does (the tag up to the
 * first space; a line whose tag is not valid gets "* BAD" and is read no
 * further; a literal at a line's end is read as data, a synchronizing one
 * after its "+" or refused with a tagged BAD; after IDLE and each "+" of
 * AUTHENTICATE the next line is no command), written apart from the
 * filter. It answers every command with one tagged response, sends FETCH
 * bodies as literals holding lines that read like responses, and lists
 * STARTTLS and COMPRESS= atoms in CAPABILITY responses and [CAPABILITY]
 * codes. After its tagged OK to a command read liberally as AUTHENTICATE
 * (as the filter reads it), a first byte 0x00 starts a SASL security
 * layer: from there it reads bytes, not lines, and may answer with a
 * buffer whose atoms would be hidden if the filter still read them.
 * abort() marks a broken rule:
 *   - a command line reaches it whose verb, read liberally (blanks before
 *     and after the tag, up to the first non-alphanumeric), is STARTTLS or
 *     COMPRESS;
 *   - the client sees STARTTLS, or an atom that begins with COMPRESS=, in
 *     a capability list outside a literal;
 *   - the client's bytes, without our answers, differ from the backend's
 *     without those atoms of its lists;
 *   - an answer of ours comes inside a line or a literal, or not right
 *     after the tagged responses to the commands passed before the line it
 *     answers;
 *   - after such an OK, where the client's next byte is 0x00, what it
 *     sends from there does not reach the backend byte for byte, or the
 *     backend's layer does not reach the client so.
 */
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "fuzz_relay.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ANSWER " BAD TLS is already active\r\n"
#define ANSWER_COMPRESS " NO [CANNOT] COMPRESS is not available\r\n"
#define BODY "* CAPABILITY IMAP4rev1 STARTTLS\r\na OK done\r\nb STARTTLS\r\n" \
	"+ go\r\nx BAD TLS is already active\r\n {2}\r\n"
#define BODY_LEN "97"
/* A layer's buffer from the backend: 4-byte length, then a capability
 * list. */
#define WRAPPED "\0\0\0\x17* CAPABILITY STARTTLS\r\n"

static int blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' ||
	    c == '\0';
}

/* The command line p[0..n) as the most liberal server might read it: its
 * verb is kw. */
static int liberal_verb(const uint8_t *p, size_t n, const char *kw)
{
	size_t i = 0, v;

	while (i < n && blank(p[i]))
		i++;
	while (i < n && !blank(p[i]) && p[i] != '\n')
		i++;
	while (i < n && blank(p[i]))
		i++;
	for (v = i; v < n && alnum(p[v]); v++)
		continue;
	return word(p + i, v - i, kw);
}

static int liberal_forbidden(const uint8_t *p, size_t n)
{
	return liberal_verb(p, n, "STARTTLS") || liberal_verb(p, n, "COMPRESS");
}

/* The model backend. */
struct server {
	enum { S_LINE, S_LIT, S_CONT } mode;
	int cmd;		/* 0, 'I' IDLE, 'A' AUTHENTICATE: the line's verb */
	uint64_t lit;		/* literal bytes still to read */
	int valid;		/* the line being read has a valid tag */
	struct fz_bytes tag;	/* the command's */
	struct fz_bytes line;	/* the line (or continuation line) being read */
	struct fz_bytes out;	/* its responses, not yet delivered */
	struct fz_bytes clean;	/* the same without the hidden atoms */
	uint64_t commands;	/* counted command lines read */
	/* Their offsets in what reached it: a command line takes at least 2
	 * of the client's at most 255 * 16 bytes ("a\n"). */
	uint64_t starts[2048];
	uint64_t got;		/* bytes that reached it */
	int auth;		/* the command reads as AUTHENTICATE */
	/* Set by the harness before each serve(): the client's bytes the
	 * filter took so far (it takes none past an AUTHENTICATE line or a
	 * SASL response until the answer), and the bytes that reached us. */
	const uint8_t *client;
	size_t nclient, coff, goff;
	int window;		/* after our OK to AUTHENTICATE: a layer may start */
	int window_raw;		/* ...and will: the client's next byte is 0x00 */
	int raw;		/* a layer started: bytes, not lines */
	int expect;		/* the client's next byte was 0x00 */
	size_t raw_coff, raw_goff;	/* where the layer starts in each */
};

static void say2(struct server *s, const char *text, const char *clean)
{
	fz_append(&s->out, text, strlen(text));
	fz_append(&s->clean, clean, strlen(clean));
}

static void say(struct server *s, const char *text)
{
	say2(s, text, text);
}

static void tagged2(struct server *s, const char *rest, const char *clean)
{
	fz_append(&s->out, fz_peek(&s->tag), s->tag.len);
	fz_append(&s->clean, fz_peek(&s->tag), s->tag.len);
	say2(s, rest, clean);
}

static void tagged(struct server *s, const char *rest)
{
	tagged2(s, rest, rest);
}

/* A tagged OK: after an AUTHENTICATE a layer starts if the client's next
 * byte is 0x00. */
static void tagged_ok(struct server *s, const char *rest, const char *clean)
{
	tagged2(s, rest, clean);
	if (!s->auth)
		return;
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

static void capability(struct server *s, struct choices *c)
{
	switch (pick(c) % 7) {
	case 0:
		say2(s, "* CAPABILITY STARTTLS IMAP4rev1 IDLE\r\n",
		    "* CAPABILITY IMAP4rev1 IDLE\r\n");
		break;
	case 1:
		say2(s, "* CAPABILITY IMAP4rev1 starttls XSTARTTLSX IDLE\r\n",
		    "* CAPABILITY IMAP4rev1 XSTARTTLSX IDLE\r\n");
		break;
	case 2:
		say2(s, "* CAPABILITY IMAP4rev1 IDLE StartTLS\r\n",
		    "* CAPABILITY IMAP4rev1 IDLE\r\n");
		break;
	case 3:
		say2(s, "* OK [CAPABILITY IMAP4rev1 STARTTLS STARTTLS=X] x\r\n",
		    "* OK [CAPABILITY IMAP4rev1 STARTTLS=X] x\r\n");
		break;
	case 4:
		/* dovecot's imap_zlib after login */
		say2(s, "* CAPABILITY IMAP4rev1 IDLE MOVE COMPRESS=DEFLATE\r\n",
		    "* CAPABILITY IMAP4rev1 IDLE MOVE\r\n");
		break;
	case 5:
		say2(s, "* OK [CAPABILITY compress=deflate COMPRESS XCOMPRESS=X "
		    "STARTTLS COMPRESS=] x\r\n",
		    "* OK [CAPABILITY COMPRESS XCOMPRESS=X COMPRESS=] x\r\n");
		break;
	default:
		say2(s, "* CAPABILITY STARTTLS\r\n", "* CAPABILITY\r\n");
		break;
	}
}

static int valid_tag(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && p[i] != ' ' && p[i] != '\r' && p[i] != '\n'; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f ||
		    strchr("(){%*\"\\+", p[i]) != NULL)
			return 0;
	return i > 0;
}

/* A literal's size announced at the end of the line p[0..n): -1 if none. */
static long long literal(const uint8_t *p, size_t n, int *plus)
{
	size_t e = n, d;
	long long v = 0;

	if (e > 0 && p[e - 1] == '\n')
		e--;
	if (e > 0 && p[e - 1] == '\r')
		e--;
	if (e < 3 || p[e - 1] != '}')
		return -1;
	e--;
	*plus = p[e - 1] == '+';
	if (*plus)
		e--;
	for (d = e; d > 0 && p[d - 1] >= '0' && p[d - 1] <= '9'; d--)
		continue;
	if (d == e || d == 0 || p[d - 1] != '{' || e - d > 18)
		return -1;
	for (; d < e; d++)
		v = v * 10 + (p[d] - '0');
	return v;
}

/* The end of a command: its one tagged response. */
static void complete(struct server *s, struct choices *c)
{
	switch (s->cmd) {
	case 'C':
		capability(s, c);
		tagged(s, " OK done\r\n");
		break;
	case 'F':
		/* a message: lines inside it read like responses */
		say(s, "* 1 FETCH (BODY[] {" BODY_LEN "}\r\n" BODY ")\r\n");
		tagged(s, " OK fetched\r\n");
		break;
	case 'L':
		if (pick(c) & 1)
			say2(s, "* OK [CAPABILITY IMAP4rev1 STARTTLS IDLE "
			    "COMPRESS=DEFLATE] x\r\n",
			    "* OK [CAPABILITY IMAP4rev1 IDLE] x\r\n");
		switch (pick(c) % 3) {
		case 0:
			tagged_ok(s, " OK done\r\n", " OK done\r\n");
			break;
		case 1:
			/* dovecot after a login */
			tagged_ok(s, " OK [CAPABILITY IMAP4rev1 STARTTLS] in\r\n",
			    " OK [CAPABILITY IMAP4rev1] in\r\n");
			break;
		default:
			tagged2(s, " NO [CAPABILITY STARTTLS] no\r\n",
			    " NO [CAPABILITY] no\r\n");
			break;
		}
		break;
	default:
		if (pick(c) & 1)
			tagged_ok(s, " OK done\r\n", " OK done\r\n");
		else
			tagged(s, " BAD unknown\r\n");
		break;
	}
	if (s->tag.len == 0)
		abort();
	fz_reset(&s->tag);
	s->cmd = 0;
	s->auth = 0;
}

/* A whole line (up to its LF) of a command, or a continuation line. */
static void line(struct server *s, struct choices *c)
{
	const uint8_t *p = fz_peek(&s->line);
	size_t n = s->line.len, t, v;
	long long lit;
	int plus = 0;

	if (s->mode == S_CONT) {
		/* DONE after IDLE, a SASL response after "+" */
		if (s->cmd == 'A' && pick(c) % 3 == 0) {
			say(s, "+ more\r\n");
			return;
		}
		s->mode = S_LINE;
		if (s->cmd == 'A')
			s->cmd = 'L';
		complete(s, c);
		return;
	}
	if (s->tag.len == 0) {
		/* the first line of a command */
		if (liberal_forbidden(p, n))
			abort();	/* a STARTTLS or COMPRESS reached the backend */
		if (!valid_tag(p, n)) {
			say(s, "* BAD Error in IMAP command: invalid tag\r\n");
			return;	/* read no further, its literal too */
		}
		for (t = 0; p[t] != ' ' && p[t] != '\r' && p[t] != '\n'; t++)
			continue;
		fz_append(&s->tag, p, t);
		s->auth = liberal_verb(p, n, "AUTHENTICATE");
		if (s->commands == sizeof(s->starts) / sizeof(s->starts[0]))
			abort();	/* see starts */
		s->starts[s->commands++] = s->got - n;	/* where it began */
		for (v = t + 1; v < n && alnum(p[v]); v++)
			continue;
		if (t < n && p[t] == ' ') {
			if (word(p + t + 1, v - t - 1, "CAPABILITY"))
				s->cmd = 'C';
			else if (word(p + t + 1, v - t - 1, "FETCH"))
				s->cmd = 'F';
			else if (word(p + t + 1, v - t - 1, "LOGIN"))
				s->cmd = 'L';
			else if (word(p + t + 1, v - t - 1, "IDLE"))
				s->cmd = 'I';
			else if (word(p + t + 1, v - t - 1, "AUTHENTICATE"))
				s->cmd = 'A';
		}
	}
	if ((lit = literal(p, n, &plus)) >= 0) {
		if (!plus && pick(c) % 4 == 0) {
			tagged(s, " BAD literal refused\r\n");
			fz_reset(&s->tag);
			s->cmd = 0;
			s->auth = 0;
			return;
		}
		if (!plus)
			say(s, "+ go ahead\r\n");
		s->lit = (uint64_t)lit;
		s->mode = S_LIT;
		return;
	}
	if (s->cmd == 'I') {
		say(s, "+ idling\r\n");
		s->mode = S_CONT;
		return;
	}
	if (s->cmd == 'A') {
		if (pick(c) % 4 != 0) {
			say(s, "+ \r\n");
			s->mode = S_CONT;
			return;
		}
		s->cmd = 'L';
	}
	complete(s, c);
}

/* Read what reached the backend: all of it, then drop it at once. */
static void serve(struct server *s, struct buf *from, struct choices *c)
{
	const uint8_t *p = buf_peek(from);
	size_t n = from->len, i = 0, k;
	int whole;

	if (s->window && n > 0 && s->line.len == 0) {
		s->window = 0;
		s->raw = s->window_raw;
	}
	if (s->raw) {
		if (n > 0 && pick(c) % 2 == 0) {
			fz_append(&s->out, WRAPPED, sizeof(WRAPPED) - 1);
			fz_append(&s->clean, WRAPPED, sizeof(WRAPPED) - 1);
		}
		s->got += n;
		drain(from);
		return;
	}
	while (i < n) {
		if (s->mode == S_LIT && s->lit > 0) {
			k = n - i < s->lit ? n - i : (size_t)s->lit;
			i += k;
			s->got += k;
			s->lit -= k;
			continue;
		}
		if (s->mode == S_LIT)
			s->mode = S_LINE;	/* the line goes on */
		k = i;
		whole = fz_next_line(&s->line, p, n, &i);
		s->got += i - k;
		if (!whole)
			break;
		line(s, c);
		fz_reset(&s->line);
	}
	drain(from);
	if (s->mode == S_LIT && s->lit == 0)
		s->mode = S_LINE;
}

/* The client's view: lines and literals. */
struct viewer {
	uint64_t lit;		/* literal bytes still to come */
	size_t tagged;		/* tagged responses seen */
	size_t nans;
	size_t at[256];		/* tagged responses seen before each answer */
	int mid;		/* a line or a literal is under way */
	int raw;		/* a layer started: bytes, not lines */
	struct fz_bytes line;
	struct fz_bytes clean;	/* all but our answers */
};

/* p[0..n) is an answer of ours, text after a tag we echo (or "*"). */
static int our_answer(const uint8_t *p, size_t n, const char *text)
{
	size_t k = strlen(text);

	return n > k && memcmp(p + n - k, text, k) == 0 &&
	    ((n - k == 1 && p[0] == '*') || (memchr(p, ' ', n - k) == NULL &&
	    memchr(p, '*', n - k) == NULL));
}

static void view_line(struct viewer *v, const uint8_t *p, size_t n)
{
	const uint8_t *b;
	size_t i, j;
	int plus, cap = 0;
	long long lit;

	if (!v->mid && (our_answer(p, n, ANSWER) || our_answer(p, n, ANSWER_COMPRESS))) {
		if (v->nans < 256)
			v->at[v->nans] = v->tagged;
		v->nans++;
		return;
	}
	fz_append(&v->clean, p, n);
	if (!v->mid) {
		if (n > 13 && memcmp(p, "* CAPABILITY ", 13) == 0)
			cap = 13;
		/* The last "[CAPABILITY " code, found by its bracket: a
		 * memcmp at every byte was most of the target's time. */
		for (i = 0; i + 12 < n && (b = memchr(p + i, '[', n - 12 - i)) != NULL;
		    i = (size_t)(b - p) + 1)
			if (memcmp(b, "[CAPABILITY ", 12) == 0)
				cap = (int)(b - p) + 12;
		if (n > 0 && p[0] != '*' && p[0] != '+')
			v->tagged++;
	}
	if (cap) {
		for (i = (size_t)cap; i < n; i = j + 1) {
			for (j = i; j < n && p[j] != ' ' && p[j] != ']' &&
			    p[j] != '\r' && p[j] != '\n'; j++)
				continue;
			if (word(p + i, j - i, "STARTTLS") ||
			    (j - i > 9 && word(p + i, 9, "COMPRESS=")))
				abort();	/* offered to the client */
			if (j < n && p[j] == ']')
				break;
		}
	}
	lit = literal(p, n, &plus);
	v->mid = lit >= 0;
	v->lit = lit >= 0 ? (uint64_t)lit : 0;
}

static void view(struct viewer *v, const struct buf *b)
{
	const uint8_t *p = buf_peek(b);
	size_t i = 0, k;

	if (v->raw) {
		fz_append(&v->clean, p, b->len);
		return;
	}
	while (i < b->len) {
		if (v->lit > 0) {
			k = b->len - i < v->lit ? b->len - i : (size_t)v->lit;
			fz_append(&v->clean, p + i, k);
			v->lit -= k;
			i += k;
			continue;
		}
		if (!fz_next_line(&v->line, p, b->len, &i))
			break;
		view_line(v, fz_peek(&v->line), v->line.len);
		fz_reset(&v->line);
	}
}

/* Which of the client's whole lines the filter took out, from what reached
 * the backend (a line goes whole or not at all): each answered one must
 * come right after the tagged responses to the commands that reached the
 * backend before it. */
static void check_answers(const uint8_t *client, size_t nclient,
    const struct fz_bytes *got, const struct server *s, const struct viewer *v)
{
	const uint8_t *g = fz_peek(got), *lf;
	const uint64_t *starts = s->starts;
	size_t off = 0, goff = 0, nans = 0, len, before = 0;

	while (off < nclient &&
	    (lf = memchr(client + off, '\n', nclient - off)) != NULL) {
		len = (size_t)(lf - (client + off)) + 1;
		if (goff + len <= got->len && memcmp(g + goff, client + off,
		    len) == 0) {
			goff += len;
		} else {
			/* starts[] rises, and so does goff */
			while (before < s->commands && starts[before] < goff)
				before++;
			if (nans < v->nans && nans < 256 && v->at[nans] != before)
				abort();	/* out of its place */
			nans++;
		}
		off += len;
	}
	if (goff < got->len && (off + got->len - goff > nclient ||
	    memcmp(g + goff, client + off, got->len - goff) != 0))
		abort();	/* bytes invented */
	/* A last line without its end may be a STARTTLS or COMPRESS answered
	 * as soon as its verb was known. */
	if (goff == got->len && off < nclient && v->nans == nans + 1) {
		while (before < s->commands && starts[before] < goff)
			before++;
		if (nans < 256 && v->at[nans] != before)
			abort();
		nans++;
	}
	if (nans != v->nans)
		abort();	/* answers unaccounted */
}

/* p[0..n) holds a literal's announcement at a line's end, "{" 19 digits
 * or more, "+" or not, "}", CR or not, LF: a size the filter may refuse. */
static int long_announcement(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t j = i + 1, d;

		if (p[i] != '{')
			continue;
		for (d = 0; j < n && p[j] >= '0' && p[j] <= '9'; j++)
			d++;
		if (j < n && p[j] == '+')
			j++;
		if (d < 19 || j >= n || p[j++] != '}')
			continue;
		if (j < n && p[j] == '\r')
			j++;
		if (j < n && p[j] == '\n')
			return 1;
	}
	return 0;
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

	if (size < 2 || filter_imap.state_size > sizeof(st))
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
	s.mode = S_LINE;
	s.cmd = 0;
	s.lit = 0;
	s.valid = 0;
	s.commands = s.got = 0;
	s.auth = 0;
	s.client = client;
	s.nclient = nclient;
	s.window = s.raw = s.expect = 0;
	fz_reset(&s.tag);
	fz_reset(&s.line);
	fz_reset(&s.out);
	fz_reset(&s.clean);
	v.lit = 0;
	v.tagged = v.nans = 0;
	v.mid = v.raw = 0;
	fz_reset(&v.line);
	fz_reset(&v.clean);
	fz_reset(&got);
	if (flags & 1)
		say2(&s, "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n",
		    "* OK [CAPABILITY IMAP4rev1 LOGINDISABLED] ready\r\n");

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
		rc = filter_imap.up(st, &cin, otob, otoc, ceof, &why);
		if (flags & 8) {
			pass_on(&ftob, utob, &tob);
			pass_on(&ftoc, utoc, &toc);
		}
		if (rc < 0)
			break;
		moved |= tob.len > 0 || before_c != cin.len;
		fz_append(&got, buf_peek(&tob), tob.len);
		s.coff = fed - cin.len;
		s.goff = got.len;
		serve(&s, &tob, &c);
		if (s.raw && !v.raw) {
			/* Our OK went whole, and nothing after it. */
			if (v.line.len != 0 || v.lit != 0 || v.mid)
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
		rc = filter_imap.down(st, &bin, otoc, otob, beof, &why);
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
	/* The filter ends a session only for a line with no verb in its
	 * first 1024 bytes or a literal announced with a size over 18
	 * digits, by the side that sent it: braces elsewhere are text. */
	if (rc != 0 && !(why && (strstr(why, "no verb") ||
	    (strstr(why, "client literal size over 18 digits") &&
	    long_announcement(client, nclient)) ||
	    (strstr(why, "backend literal size over 18 digits") &&
	    long_announcement(fz_peek(&s.clean), s.clean.len)))))
		abort();
	if (rc == 0 && s.out.len == 0 && bin.len == 0 && v.line.len == 0 &&
	    v.lit == 0 && (v.clean.len != s.clean.len || (v.clean.len > 0 &&
	    memcmp(fz_peek(&v.clean), fz_peek(&s.clean), v.clean.len) != 0)))
		abort();	/* changed beyond the hidden atoms */
	if (rc == 0 && s.out.len == 0 && bin.len == 0 && cin.len == 0)
		check_answers(client, nclient, &got, &s, &v);
	/* A layer the client started passed both ways untouched (the down
	 * side: v.clean above). */
	if (rc == 0 && s.expect && fed == nclient && cin.len == 0 &&
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
