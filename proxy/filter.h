#ifndef PORTIER_FILTER_H
#define PORTIER_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/*
 * Stream filters: the protocol knowledge that rides on the relay once the
 * connection is handed over (LDAP, IMAP, POP3: a second StartTLS; SMTP:
 * XCLIENT and XFORWARD; FTP: PBSZ/PROT, PASV/EPSV/PORT/EPRT), kept out of the
 * relay itself. Pure: bytes in, bytes out, no fds, no loop, no TLS.
 *
 * One filter instance sees both directions of one connection through one
 * state, so a reply seen going down may release a command held going up.
 *
 *   up:    in  = the client's bytes as read      out  = bytes for the backend
 *          back = the client-bound buffer (answers the filter gives the
 *                 client itself go there, after what the backend said so far)
 *   down:  in  = the backend's bytes as read     out  = bytes for the client
 *          back = the backend-bound buffer
 *
 * The rules the relay depends on:
 *   - A filter moves what it can from in to out (and back) and returns; it
 *     is called again whenever either direction moved. It never waits for
 *     room: with out full it stops and is called again later.
 *   - What it leaves in `in` is what it needs to decide (a partial line, a
 *     partial message header) or what waits for the other direction (a
 *     command held until the reply to the one before it came back). The
 *     relay keeps reading into `in` while it has room, so a filter that
 *     holds bytes never makes the relay wait on a socket; a filter that
 *     cannot decide with `in` full must fail (a line too long).
 *   - With eof set the sender has ended: no more bytes will come. The
 *     filter must pass or drop what it holds, except bytes that wait for the
 *     other direction (it is called again when that one moves).
 *   - It returns 0, or -1 with *why set (a static string for the log): the
 *     connection closes.
 */

struct filter_ops {
	const char *name;
	size_t state_size;   /* zeroed state, allocated by the relay */
	int (*up)(void *st, struct buf *in, struct buf *out, struct buf *back,
	    int eof, const char **why);
	int (*down)(void *st, struct buf *in, struct buf *out, struct buf *back,
	    int eof, const char **why);
	/* up or down may be NULL: that direction passes untouched, with no
	 * copy. */
	void (*cleanup)(void *st);
	/* cleanup(st): give back what the state holds (memory of its own), when
	 * the connection ends; NULL when it holds none. */
};

/* --- for filters: the framing helpers the text filters share --- */

/* filter_put(b, p, n, why): append p[0..n) whole or not at all: 1
 * appended, 0 no room (called again once b drains), -1 out of memory
 * (*why set). */
int filter_put(struct buf *b, const void *p, size_t n, const char **why);

/* filter_upper(c): c in ASCII upper case; not toupper(), which follows
 * the locale. */
static inline int filter_upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c;
}

/* filter_alnum(c): c is an ASCII letter or digit (not isalnum(): the
 * locale). */
static inline int filter_alnum(uint8_t c)
{
	return (c >= '0' && c <= '9') ||
	    (filter_upper(c) >= 'A' && filter_upper(c) <= 'Z');
}

/* filter_blank(c): what the most liberal server might skip before a verb
 * or around a tag; NUL too, as a C string's end. */
static inline int filter_blank(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' ||
	    c == '\0';
}

/* filter_word_is(p, n, kw): 1 if p[0..n) is the upper-case keyword kw,
 * ignoring ASCII case, else 0. */
int filter_word_is(const uint8_t *p, size_t n, const char *kw);

/* filter_unterminated(p, n): length of the line p[0..n) without its LF or
 * CRLF. */
size_t filter_unterminated(const uint8_t *p, size_t n);

/* filter_pass_line(in, out, eol, why): pass the front of in up to and
 * including its first LF, as much of it as out takes; *eol set when the
 * LF went. 1 moved, 0 nothing to move (in empty or out full), -1 out of
 * memory (*why set). */
int filter_pass_line(struct buf *in, struct buf *out, int *eol,
    const char **why);

/* filter_pass_all(in, out, why): move the front of in to out, as much as
 * out takes. 1 moved, 0 nothing to move, -1 out of memory (*why set). */
int filter_pass_all(struct buf *in, struct buf *out, const char **why);

/*
 * A SASL security layer (DIGEST-MD5 or GSSAPI with integrity or
 * confidentiality) wraps everything after the success that ends the
 * authentication in buffers, each a 4-byte length in network order then
 * its data (RFC 4422 3.7), from right after the CRLF of that success
 * (RFC 9051 6.2.2, RFC 5034 4). Those bytes are no commands and no
 * responses: a filter that read them as such would stall or break the
 * session. No buffer under 16 MiB starts with anything but 0x00, and no
 * command or response starts with 0x00. So after a success to an
 * authentication the filter opens a window; the first byte either side
 * sends where a command or a response would start decides: 0x00 turns the
 * filter off for good (what it protects is inside the layer, beyond the
 * reach of anyone but the two ends), anything else closes the window.
 */
enum filter_layer { FL_NONE, FL_WINDOW, FL_ON };

/* filter_layer_decide(layer, in): with the window open and a byte in `in`
 * where a command or response starts, decide it (see above). */
static inline void filter_layer_decide(uint8_t *layer, const struct buf *in)
{
	if (*layer == FL_WINDOW && in->len > 0)
		*layer = buf_peek(in)[0] == 0x00 ? FL_ON : FL_NONE;
}

/* Where a dot-terminated body (SMTP DATA, a POP3 multi-line response)
 * stands: a line that is "." alone ends it. */
enum filter_body { FB_BOL, FB_DOT, FB_DOTCR, FB_MID };

/* filter_dot_scan(body, p, n, per_line, end): how much of p[0..n) is body
 * up to and including the "." line (*end set then), carrying *body (an
 * enum filter_body, FB_BOL at the body's start) from call to call; with
 * per_line it stops after the end of each line. */
size_t filter_dot_scan(uint8_t *body, const uint8_t *p, size_t n,
    int per_line, int *end);

/* The filters, for the protocol table and the tests. */
extern const struct filter_ops filter_ldap;
extern const struct filter_ops filter_smtp;
extern const struct filter_ops filter_ftp;
extern const struct filter_ops filter_pop3;
extern const struct filter_ops filter_imap;

/* filter_smtp_greeted(st): tell a zeroed filter_smtp state that the
 * STARTTLS hand-over consumed the backend's greeting, so no later 220 is
 * one. */
void filter_smtp_greeted(void *st);

/* filter_pop3_greeted(st): tell a zeroed filter_pop3 state that the STLS
 * hand-over consumed the backend's greeting; without it the first line
 * from the backend is taken for the greeting (implicit TLS). */
void filter_pop3_greeted(void *st);

#endif
