#include "filter_imap_int.h"

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
 * And the filter must go on reading the commands, which it could not once
 * both streams were compressed (COMPRESS=DEFLATE, RFC 4978: dovecot's
 * imap_zlib, Cyrus; clients such as Thunderbird use it). So COMPRESS=
 * atoms are taken out of the same lists, and a client's `tag COMPRESS` is
 * answered `tag NO [CANNOT] COMPRESS is not available`, as a STARTTLS is.
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
 * line after it (DONE, a SASL response) is no command. After the tagged OK
 * that ends an AUTHENTICATE, a SASL security layer may wrap both streams:
 * the first byte either side sends then decides whether the filter steps
 * aside (filter.h).
 *
 * Our answer goes where no response is under way and after the tagged
 * responses to every command passed before it (pipelining, RFC 9051
 * 5.5): `sent` counts the commands passed, `done` the tagged responses
 * back. (Which response ends a wait for "+" is known by count and tag.)
 * Until then the STARTTLS (or COMPRESS) line waits in `in`, with what
 * follows it, so no answer is ever held by the filter; the tag is read
 * from `in` when the answer goes.
 *
 * Nothing is held whole but a capability response (up to CAP_MAX, else
 * the connection ends): a command line is held only until its tag and
 * verb are known, VERB_MAX at most, then streams, however long; a line
 * with no verb by then ends the connection (no client sends one, and its
 * rest could not be judged). A response line is held until it is known
 * whether it carries capabilities (HEAD_MAX at most: a tag is the
 * client's, of any length), then streams.
 */

#define LIT_DIGITS	18	/* longest literal size read (no overflow) */

/* A tag's fingerprint (FNV-1a), to know the waiting command's end. */
uint64_t imap_tag_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < n && p[i] != ' ' && p[i] != '\r' && p[i] != '\n';
	    i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

/* Feed one byte of a line (not of a literal): 1 when c is the LF that ends
 * a literal's announcement, its size in l->n; -1 when that announcement's
 * size has more than LIT_DIGITS digits. Braces with more digits elsewhere
 * in a line are text, not a size: a quoted string (a subject in an
 * ENVELOPE, a password) may hold "{1234567890123456789}", and whoever
 * writes a message's subject must not end the reader's session. */
static int lit_feed(struct lit *l, uint8_t c)
{
	switch (l->st) {
	case 1:
		if (c >= '0' && c <= '9') {
			if (l->digits <= LIT_DIGITS && ++l->digits <= LIT_DIGITS)
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
			return l->digits > LIT_DIGITS ? -1 : 1;
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

int imap_pass_line(struct lit *l, struct buf *in, struct buf *out, int *lit,
    int *eol, const char *toobig, const char **why)
{
	const uint8_t *p = buf_peek(in);
	size_t n = in->len < buf_room(out) ? in->len : buf_room(out), i;
	int r = 0;

	*lit = *eol = 0;
	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (l != NULL && (r = lit_feed(l, p[i])) != 0)
			break;
		if (p[i] == '\n')
			break;
	}
	if (r < 0) {
		*why = toobig;
		return -1;
	}
	if (i < n)
		i++;	/* the LF */
	*lit = r == 1;
	*eol = p[i - 1] == '\n';
	if (filter_put(out, p, i, why) < 0)
		return -1;
	buf_consume(in, i);	/* may free what p points to */
	return 1;
}

const struct filter_ops filter_imap = {
	.name = "imap",
	.state_size = sizeof(struct imap_state),
	.up = imap_up,
	.down = imap_down,
};
