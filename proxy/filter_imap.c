#include "filter.h"

#include <stdint.h>
#include <string.h>

/*
 * IMAP after TLS (implicit, or after STARTTLS). TLS is portier's: the
 * backend must neither offer STARTTLS to the client nor ever see one (a
 * backend with TLS of its own would start it inside portier's, with its
 * own certificate). So:
 *   - the STARTTLS atom (any case, a whole atom) is taken out of
 *     `* CAPABILITY` responses and of `[CAPABILITY ...]` response codes in
 *     OK, NO, BAD, PREAUTH and BYE responses, tagged or not;
 *   - a client's `tag STARTTLS` is answered here, `tag BAD TLS is already
 *     active` (RFC 9051 6.2.1: STARTTLS after TLS is a BAD), and never
 *     reaches the backend.
 * Everything else passes byte for byte.
 *
 * Both directions are framed into lines and literals ({n}, {n+} and ~{n}
 * at a line's end, then n bytes, then the line goes on, RFC 9051 4.3,
 * RFC 7888): literal bytes pass untouched and are never read as lines.
 * The filter and the backend must agree on where the client's commands
 * are, or a STARTTLS inside what the filter took for a literal would
 * reach the backend as a command. So the bytes of a synchronizing literal
 * wait, like the client, for the backend's "+" (a tagged response instead
 * refused the literal, and what follows is a command again); a
 * non-synchronizing one passes at once (the backend takes it, as dovecot
 * does; one that refused it and read on would read its bytes as commands
 * beyond the filter's sight). After
 * IDLE and AUTHENTICATE the client's bytes wait for the "+" too, and the
 * line after it (DONE, a SASL response) is no command.
 *
 * Our answer goes where no response is under way and after the tagged
 * responses to every command passed before it (pipelining, RFC 9051
 * 5.5): `sent` counts the commands passed, `done` the tagged responses
 * back. (Which response ends a wait for "+" is known by count and tag.) Until then the STARTTLS line waits in `in`, with what follows it,
 * so no answer is ever held by the filter; the tag is read from `in` when
 * the answer goes.
 *
 * Nothing is held whole but a capability response (up to CAP_MAX, else
 * the connection ends): a command line is held only until its tag and
 * verb are known, VERB_MAX at most, then streams, however long; a line
 * with no verb by then ends the connection (no client sends one, and its
 * rest could not be judged). A response line is held until it is known
 * whether it carries capabilities (HEAD_MAX at most: a tag is the
 * client's, of any length), then streams.
 */

#define VERB_MAX	1024	/* bytes of a command line read for tag and verb */
#define HEAD_MAX	1024	/* bytes of a response line read to know what it is */
#define CAP_MAX		16384	/* a capability response, held whole */
#define TAG_MAX		64	/* longest tag our answer echoes */
#define LIT_DIGITS	18	/* longest literal size read */

enum kind { K_UNDECIDED, K_STARTTLS, K_IDLE, K_AUTH, K_OTHER };
enum umode { U_START, U_LINE, U_LIT, U_CONT, U_DROP };
enum dmode { D_START, D_LINE, D_LIT, D_CAP };
/* What the client's bytes wait for: the backend's "+" (or the end of the
 * command: its tagged response, by count and tag). */
enum wait { W_NONE, W_LIT, W_CONT };
enum cap { CAP_LIST, CAP_CODE };

/* Where a line stands on the way to a literal's announcement. */
struct lit {
	uint64_t n;		/* the size read so far */
	uint8_t st;		/* 0 none, 1 in braces, 2 after +, 3 after }, 4 after CR */
	uint8_t digits;
	uint8_t plus;		/* non-synchronizing */
};

struct imap_state {
	uint64_t sent;		/* commands passed; each owes a tagged response */
	uint64_t done;		/* tagged responses back (never more than sent) */
	uint64_t cmd_tag;	/* tag_hash() of the command being passed */
	uint64_t wait_tag;	/* ...of the one whose "+" or end is awaited */
	uint64_t wait_seq;	/* `sent` when that one went */
	uint64_t dtag;		/* ...of the tagged response being read */
	uint64_t ulit, dlit;	/* literal bytes still to pass, each way */
	struct lit ul, dl;
	uint16_t cap_off;	/* D_CAP: where the capability atoms start */
	uint8_t umode, dmode;	/* enum umode, enum dmode */
	uint8_t wait;		/* enum wait */
	uint8_t cmd;		/* enum kind of the command being passed */
	uint8_t cap;		/* enum cap */
	uint8_t tagged;		/* down: the line is a tagged response */
	uint8_t cont;		/* down: the line is a "+" continuation */
	uint8_t ended;		/* the backend ended, all it sent passed */
	uint8_t counted;	/* up: the command has a valid tag */
};

/* A tag's fingerprint (FNV-1a), to know the waiting command's end. */
static uint64_t tag_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < n && p[i] != ' ' && p[i] != '\r' && p[i] != '\n';
	    i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

/* Feed one byte of a line (not of a literal): 1 when c is the LF that ends
 * a literal's announcement, its size in l->n; -1 for a size too large. */
static int lit_feed(struct lit *l, uint8_t c)
{
	switch (l->st) {
	case 1:
		if (c >= '0' && c <= '9') {
			if (++l->digits > LIT_DIGITS)
				return -1;
			l->n = l->n * 10 + (uint64_t)(c - '0');
			return 0;
		}
		if (l->digits > 0 && c == '+') {
			l->st = 2;
			l->plus = 1;
			return 0;
		}
		if (l->digits > 0 && c == '}') {
			l->st = 3;
			return 0;
		}
		break;
	case 2:
		if (c == '}') {
			l->st = 3;
			return 0;
		}
		break;
	case 3:
	case 4:
		if (c == '\r' && l->st == 3) {
			l->st = 4;
			return 0;
		}
		if (c == '\n') {
			l->st = 0;
			return 1;
		}
		break;
	default:
		break;
	}
	l->st = c == '{' ? 1 : 0;
	l->n = 0;
	l->digits = 0;
	l->plus = 0;
	return 0;
}

/* What the command line p[0..n) is (complete: the whole line without its
 * end, else its first bytes), and where its tag is. Read liberally
 * (blanks before and after the tag, any non-alphanumeric ends the verb):
 * a backend's own reading of "STARTTLS" can only be narrower. */
static enum kind classify(const uint8_t *p, size_t n, int complete,
    size_t *tag, size_t *taglen)
{
	size_t i = 0, v;

	while (i < n && filter_blank(p[i]))
		i++;
	for (*tag = i; i < n && !filter_blank(p[i]); i++)
		continue;
	*taglen = i - *tag;
	if (i == n)
		return complete ? K_OTHER : K_UNDECIDED;
	while (i < n && filter_blank(p[i]))
		i++;
	for (v = i; i < n && filter_alnum(p[i]) && i - v <= 12; i++)
		continue;
	if (i - v > 12)
		return K_OTHER;	/* longer than any verb that matters */
	if (i == n && !complete)
		return K_UNDECIDED;
	if (filter_word_is(p + v, i - v, "STARTTLS"))
		return K_STARTTLS;
	if (filter_word_is(p + v, i - v, "IDLE"))
		return K_IDLE;
	if (filter_word_is(p + v, i - v, "AUTHENTICATE"))
		return K_AUTH;
	return K_OTHER;
}

/* A tag we echo: RFC 9051's tag characters, no brackets (so no answer of
 * ours carries a response code), and short. */
static int tag_ok(const uint8_t *p, size_t n)
{
	if (n == 0 || n > TAG_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f ||
		    strchr("(){%*\"\\+[]", p[i]) != NULL)
			return 0;
	return 1;
}

/* The line p[0..n) (complete: up to its LF) starts with a tag a server
 * takes (RFC 9051: ASTRING-CHARs but "+"), ended by a space or the
 * line's end. */
static int valid_tag(const uint8_t *p, size_t n, int complete)
{
	size_t i;

	for (i = 0; i < n && p[i] != ' ' && p[i] != '\r' && p[i] != '\n'; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f ||
		    strchr("(){%*\"\\+", p[i]) != NULL)
			return 0;
	return i > 0 && (i < n || complete);
}

/* Answer a STARTTLS line at the front of in, once nothing is owed before
 * it. 1 done, 0 wait, -1 error. */
static int answer(struct imap_state *st, const uint8_t *p, size_t tag,
    size_t taglen, struct buf *back, const char **why)
{
	static const char text[] = " BAD TLS is already active\r\n";
	uint8_t a[TAG_MAX + sizeof(text)];
	size_t n;

	if (!st->ended && (st->done < st->sent || st->dmode != D_START))
		return 0;	/* (no response will come after the end) */
	if (!tag_ok(p + tag, taglen)) {
		p = (const uint8_t *)"*";
		tag = 0;
		taglen = 1;
	}
	memcpy(a, p + tag, taglen);
	memcpy(a + taglen, text, sizeof(text) - 1);
	n = taglen + sizeof(text) - 1;
	return filter_put(back, a, n, why);
}

/* A command line starts at the front of in. */
static int up_start(struct imap_state *st, struct buf *in, struct buf *back,
    int eof, const char **why)
{
	const uint8_t *p = buf_peek(in), *lf;
	size_t n = in->len < VERB_MAX ? in->len : VERB_MAX, tag, taglen;
	enum kind k;
	int r;

	lf = memchr(p, '\n', n);
	if (lf == NULL && in->len < VERB_MAX && eof) {
		/* A command is complete only with its line end; a client
		 * that ends without one sent none. */
		buf_consume(in, in->len);
		return 0;
	}
	k = lf ? classify(p, filter_unterminated(p, (size_t)(lf - p) + 1), 1,
	    &tag, &taglen) : classify(p, n, 0, &tag, &taglen);
	if (k == K_UNDECIDED) {
		if (n < VERB_MAX)
			return 0;
		*why = "client command with no verb in its first 1024 bytes";
		return -1;
	}
	if (k == K_STARTTLS) {
		if ((r = answer(st, p, tag, taglen, back, why)) <= 0)
			return r;
		st->umode = U_DROP;
		return 1;
	}
	/* Only a line with a valid tag gets a tagged response; any other
	 * gets "* BAD" and is read no further (dovecot 2.3: "Invalid tag",
	 * and a literal at its end is none), so it owes nothing, waits for
	 * nothing, and what follows it is a new line. */
	st->counted = (uint8_t)(tag == 0 && valid_tag(p, n, lf != NULL));
	if (st->counted) {
		st->sent++;
		st->cmd_tag = tag_hash(p, n);
	}
	st->cmd = st->counted ? (uint8_t)k : K_OTHER;
	st->umode = U_LINE;
	memset(&st->ul, 0, sizeof(st->ul));
	return 1;
}

/* The line of a command, up to its end or a literal. */
static int up_line(struct imap_state *st, struct buf *in, struct buf *out,
    const char **why)
{
	const uint8_t *p = buf_peek(in);
	size_t n = in->len < buf_room(out) ? in->len : buf_room(out), i;
	int r = 0, eol;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (st->counted && (r = lit_feed(&st->ul, p[i])) != 0)
			break;
		if (p[i] == '\n')
			break;
	}
	if (r < 0) {
		*why = "client literal size over 18 digits";
		return -1;
	}
	if (i < n)
		i++;	/* the LF */
	eol = p[i - 1] == '\n';
	if (filter_put(out, p, i, why) < 0)
		return -1;
	buf_consume(in, i);	/* may free what p points to */
	if (r == 1) {
		st->ulit = st->ul.n;
		st->umode = U_LIT;
		if (!st->ul.plus) {
			/* Synchronizing: the backend's "+" first. */
			st->wait = W_LIT;
			st->wait_tag = st->cmd_tag;
			st->wait_seq = st->sent;
		}
	} else if (eol) {
		st->umode = U_START;
		if (st->cmd == K_IDLE || st->cmd == K_AUTH) {
			st->wait = W_CONT;
			st->wait_tag = st->cmd_tag;
			st->wait_seq = st->sent;
		}
	}
	return 1;
}

/* Bytes passed or dropped as they are: a literal, a continuation line
 * (DONE, a SASL response), the rest of a STARTTLS line. */
static int up_pass(struct imap_state *st, struct buf *in, struct buf *out,
    const char **why)
{
	const uint8_t *p = buf_peek(in), *lf = NULL;
	size_t n = in->len;

	if (st->umode == U_LIT) {
		if (n > st->ulit)
			n = (size_t)st->ulit;
	} else if ((lf = memchr(p, '\n', n)) != NULL) {
		n = (size_t)(lf - p) + 1;
	}
	if (st->umode != U_DROP) {
		if (n > buf_room(out)) {
			n = buf_room(out);
			lf = NULL;
		}
		if (st->umode == U_LIT)
			st->ulit -= n;
		if (n == 0 && (st->umode != U_LIT || st->ulit > 0))
			return 0;
		if (n > 0 && filter_put(out, p, n, why) < 0)
			return -1;
	}
	buf_consume(in, n);
	if (st->umode == U_LIT && st->ulit == 0) {
		st->umode = U_LINE;	/* the line goes on */
		memset(&st->ul, 0, sizeof(st->ul));
	} else if (lf != NULL) {
		if (st->umode == U_CONT && st->cmd == K_AUTH) {
			/* A SASL response: another "+" or the end. */
			st->wait = W_CONT;
			st->wait_tag = st->cmd_tag;
			st->wait_seq = st->sent;
		}
		st->umode = U_START;
	}
	return 1;
}

static int imap_up(void *vst, struct buf *in, struct buf *out,
    struct buf *back, int eof, const char **why)
{
	struct imap_state *st = vst;
	int r = 1;

	while (r > 0) {
		if (st->wait != W_NONE)
			break;	/* for the backend's "+" or the end */
		/* An empty literal ends without a byte. */
		if (in->len == 0 && !(st->umode == U_LIT && st->ulit == 0))
			break;
		switch (st->umode) {
		case U_START:
			r = up_start(st, in, back, eof, why);
			break;
		case U_LINE:
			r = up_line(st, in, out, why);
			break;
		default:
			r = up_pass(st, in, out, why);
			break;
		}
	}
	return r < 0 ? -1 : 0;
}

/* p[0..n) starts with the word kw, any case, then one of the ends. */
static int starts(const uint8_t *p, size_t n, const char *kw, const char *ends)
{
	size_t k = strlen(kw);

	return n > k && filter_word_is(p, k, kw) && strchr(ends, p[k]) != NULL &&
	    p[k] != '\0';
}

/* What the response line starting at p[0..n) is; 0 when not known yet
 * (sure: no more of it will come into view). */
static int down_head(struct imap_state *st, const uint8_t *p, size_t n,
    int sure)
{
	static const char *const status[] = { "OK", "NO", "BAD", "PREAUTH",
	    "BYE" };
	const uint8_t *sp;
	size_t i, s;

	sure = sure || memchr(p, '\n', n) != NULL;
	st->cont = p[0] == '+';
	st->tagged = !st->cont && p[0] != '*' && !filter_blank(p[0]) && p[0] != '\n';
	st->dtag = tag_hash(p, n);
	st->dmode = D_LINE;
	if (st->cont)
		return 1;
	if ((sp = memchr(p, ' ', n)) == NULL)
		return sure;	/* a tag (the client's: any length), no more yet */
	i = (size_t)(sp - p) + 1;
	if (n - i < 21 && !sure)
		return 0;	/* "PREAUTH [CAPABILITY " not all there yet */
	if (!st->tagged && starts(p + i, n - i, "CAPABILITY", " \r\n")) {
		st->cap = CAP_LIST;
		st->cap_off = (uint16_t)(i + 10);
		st->dmode = D_CAP;
		return 1;
	}
	for (s = 0; s < sizeof(status) / sizeof(status[0]); s++) {
		if (!starts(p + i, n - i, status[s], " "))
			continue;
		i += strlen(status[s]) + 1;
		if (i < n && p[i] == '[' && starts(p + i + 1, n - i - 1,
		    "CAPABILITY", " ]")) {
			st->cap = CAP_CODE;
			st->cap_off = (uint16_t)(i + 11);
			st->dmode = D_CAP;
		}
		break;
	}
	return 1;
}

/* The capability response p[0..len) to out without its STARTTLS atoms.
 * 1 done, 0 no room, -1 error. */
static int pass_cap(struct imap_state *st, const uint8_t *p, size_t len,
    struct buf *out, const char **why)
{
	size_t e = filter_unterminated(p, len), r = e, i, j;
	const uint8_t *b;

	if (buf_room(out) < len)
		return 0;
	if (st->cap == CAP_CODE && (b = memchr(p + st->cap_off, ']',
	    e - st->cap_off)) != NULL)
		r = (size_t)(b - p);
	if (filter_put(out, p, st->cap_off, why) < 0)
		return -1;
	for (i = st->cap_off; i < r; i = j) {
		j = i + 1;
		if (p[i] == ' ') {
			while (j < r && p[j] != ' ')
				j++;
			if (filter_word_is(p + i + 1, j - i - 1, "STARTTLS"))
				continue;	/* the atom and the space before it */
		}
		if (filter_put(out, p + i, j - i, why) < 0)
			return -1;
	}
	if (filter_put(out, p + r, len - r, why) < 0)
		return -1;
	return 1;
}

/* A whole response line went to the client. */
static void line_done(struct imap_state *st)
{
	st->dmode = D_START;
	if (st->cont && st->wait != W_NONE) {
		/* The "+" the client waited for: a literal's bytes, or the
		 * line after IDLE or AUTHENTICATE. */
		if (st->wait == W_CONT)
			st->umode = U_CONT;
		st->wait = W_NONE;
	}
	if (!st->tagged)
		return;
	if (st->done < st->sent)
		st->done++;
	if (st->wait != W_NONE && st->done >= st->wait_seq &&
	    st->dtag == st->wait_tag) {
		/* The command ended without its "+": no literal, no
		 * continuation line comes. Known by the count and its tag: a
		 * backend that answers a line the filter did not count (a tag
		 * it takes and RFC 9051 does not), or a client that uses a
		 * tag twice, must not end the wait early and turn literal
		 * bytes into commands. */
		st->wait = W_NONE;
		st->umode = U_START;
	}
}

/* Lines and literals, passed as they come. */
static int down_line(struct imap_state *st, struct buf *in, struct buf *out,
    const char **why)
{
	const uint8_t *p = buf_peek(in);
	size_t n = in->len < buf_room(out) ? in->len : buf_room(out), i;
	int r = 0, eol;

	if (st->dmode == D_LIT) {
		if (n > st->dlit)
			n = (size_t)st->dlit;
		if (n > 0 && filter_put(out, p, n, why) < 0)
			return -1;
		buf_consume(in, n);
		if ((st->dlit -= n) == 0) {
			st->dmode = D_LINE;	/* the line goes on */
			memset(&st->dl, 0, sizeof(st->dl));
			return 1;
		}
		return n > 0;
	}
	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (!st->cont && (r = lit_feed(&st->dl, p[i])) != 0)
			break;
		if (p[i] == '\n')
			break;
	}
	if (r < 0) {
		*why = "backend literal size over 18 digits";
		return -1;
	}
	if (i < n)
		i++;
	eol = p[i - 1] == '\n';
	if (filter_put(out, p, i, why) < 0)
		return -1;
	buf_consume(in, i);	/* may free what p points to */
	if (r == 1) {
		st->dlit = st->dl.n;
		st->dmode = D_LIT;
	} else if (eol) {
		line_done(st);
	}
	return 1;
}

static int down_start(struct imap_state *st, struct buf *in, int eof)
{
	size_t n = in->len < HEAD_MAX ? in->len : HEAD_MAX;

	if (!down_head(st, buf_peek(in), n, eof || n == HEAD_MAX)) {
		st->dmode = D_START;
		return 0;
	}
	memset(&st->dl, 0, sizeof(st->dl));
	return 1;
}

static int down_cap(struct imap_state *st, struct buf *in, struct buf *out,
    int eof, const char **why)
{
	const uint8_t *p = buf_peek(in), *lf;
	size_t len;
	int r;

	lf = memchr(p, '\n', in->len < CAP_MAX ? in->len : CAP_MAX);
	if (lf == NULL && !eof) {
		if (in->len < CAP_MAX)
			return 0;
		*why = "backend CAPABILITY response over 16 KiB";
		return -1;
	}
	len = lf ? (size_t)(lf - p) + 1 : in->len;
	if ((r = pass_cap(st, p, len, out, why)) <= 0)
		return r;
	buf_consume(in, len);
	line_done(st);
	return 1;
}

static int imap_down(void *vst, struct buf *in, struct buf *out,
    struct buf *back, int eof, const char **why)
{
	struct imap_state *st = vst;
	int r = 1;

	(void)back;
	while (r > 0 && (in->len > 0 || (st->dmode == D_LIT && st->dlit == 0))) {
		switch (st->dmode) {
		case D_START:
			r = down_start(st, in, eof);
			break;
		case D_CAP:
			r = down_cap(st, in, out, eof, why);
			break;
		default:
			r = down_line(st, in, out, why);
			break;
		}
	}
	if (r < 0)
		return -1;
	if (eof && in->len == 0) {
		/* No "+" will come: what waited for it is a command, and
		 * answers need no response before them. */
		st->ended = 1;
		if (st->wait != W_NONE) {
			st->wait = W_NONE;
			st->umode = U_START;
		}
	}
	return 0;
}

const struct filter_ops filter_imap = {
	.name = "imap",
	.state_size = sizeof(struct imap_state),
	.up = imap_up,
	.down = imap_down,
};
