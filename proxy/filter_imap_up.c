#include "filter_imap_int.h"

#include <string.h>

/*
 * filter_imap, the client's side: commands framed into lines and
 * literals; a STARTTLS or COMPRESS answered here once nothing is owed
 * before it; the bytes that wait for the backend's "+" held in `in`.
 */

#define VERB_MAX	1024	/* bytes of a command line read for tag and verb */
#define TAG_MAX		64	/* longest tag our answer echoes */

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
	if (filter_word_is(p + v, i - v, "COMPRESS"))
		return K_COMPRESS;
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

/* Answer the STARTTLS or COMPRESS line (k) at the front of in, once
 * nothing is owed before it. 1 done, 0 wait, -1 error. */
static int answer(struct imap_state *st, enum kind k, const uint8_t *p,
    size_t tag, size_t taglen, struct buf *back, const char **why)
{
	static const char tls[] = " BAD TLS is already active\r\n";
	/* RFC 4978 3: a server may refuse with NO. The capability was
	 * never shown (filter_imap_down.c). */
	static const char compress[] = " NO [CANNOT] COMPRESS is not available\r\n";
	const char *text = k == K_STARTTLS ? tls : compress;
	size_t tlen = k == K_STARTTLS ? sizeof(tls) - 1 : sizeof(compress) - 1;
	uint8_t a[TAG_MAX + sizeof(compress)];
	size_t n;

	if (!st->ended && (st->done < st->sent || st->dmode != D_START))
		return 0;	/* (no response will come after the end) */
	if (!tag_ok(p + tag, taglen)) {
		p = (const uint8_t *)"*";
		tag = 0;
		taglen = 1;
	}
	memcpy(a, p + tag, taglen);
	memcpy(a + taglen, text, tlen);
	n = taglen + tlen;
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
	if (k == K_STARTTLS || k == K_COMPRESS) {
		if ((r = answer(st, k, p, tag, taglen, back, why)) <= 0)
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
		st->cmd_tag = imap_tag_hash(p, n);
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
	int r, lit, eol;

	/* A line with no valid tag is read no further (see up_start): a
	 * literal at its end is none. */
	r = imap_pass_line(st->counted ? &st->ul : NULL, in, out, &lit, &eol,
	    "client literal size over 18 digits", why);
	if (r <= 0)
		return r;
	if (lit) {
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
 * (DONE, a SASL response), the rest of a STARTTLS or COMPRESS line. */
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

int imap_up(void *vst, struct buf *in, struct buf *out,
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
		if (st->umode == U_START)
			filter_layer_decide(&st->layer, in);
		if (st->layer == FL_ON) {
			r = filter_pass_all(in, out, why);
			continue;
		}
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

