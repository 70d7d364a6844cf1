#include "filter_imap_int.h"

#include <string.h>

/*
 * filter_imap, the backend's side: responses framed into lines and
 * literals; STARTTLS and COMPRESS= taken out of capability lists; the
 * tagged responses counted and the "+" seen that release what the
 * client's side holds.
 */

#define HEAD_MAX	1024	/* bytes of a response line read to know what it is */
#define CAP_MAX		16384	/* a capability response, held whole */

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
	st->ok = 0;
	st->tagged = !st->cont && p[0] != '*' && !filter_blank(p[0]) && p[0] != '\n';
	st->dtag = imap_tag_hash(p, n);
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
		st->ok = st->tagged && s == 0;
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

/* An atom of a capability list the client must not see: STARTTLS, and
 * COMPRESS=DEFLATE or any other COMPRESS= (RFC 4978), after which both
 * streams would be compressed and the filter could read no command. */
static int hidden_atom(const uint8_t *p, size_t n)
{
	return filter_word_is(p, n, "STARTTLS") ||
	    (n > 9 && filter_word_is(p, 9, "COMPRESS="));
}

/* The capability response p[0..len) to out without its hidden atoms.
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
			if (hidden_atom(p + i + 1, j - i - 1))
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
		if (st->wait == W_CONT && st->cmd == K_AUTH && st->ok &&
		    st->done == st->sent)
			st->layer = FL_WINDOW;	/* authenticated: a layer may start */
		st->wait = W_NONE;
		st->umode = U_START;
	}
}

/* Lines and literals, passed as they come. */
static int down_line(struct imap_state *st, struct buf *in, struct buf *out,
    const char **why)
{
	const uint8_t *p = buf_peek(in);
	size_t n = in->len < buf_room(out) ? in->len : buf_room(out);
	int r, lit, eol;

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
	/* A "+" line announces no literal: its text is the server's. */
	r = imap_pass_line(st->cont ? NULL : &st->dl, in, out, &lit, &eol,
	    "backend literal size over 18 digits", why);
	if (r <= 0)
		return r;
	if (lit) {
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

int imap_down(void *vst, struct buf *in, struct buf *out,
    struct buf *back, int eof, const char **why)
{
	struct imap_state *st = vst;
	int r = 1;

	(void)back;
	while (r > 0 && (in->len > 0 || (st->dmode == D_LIT && st->dlit == 0))) {
		if (st->dmode == D_START)
			filter_layer_decide(&st->layer, in);
		if (st->layer == FL_ON) {
			r = filter_pass_all(in, out, why);
			continue;
		}
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

