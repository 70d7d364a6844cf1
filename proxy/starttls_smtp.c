#include "starttls.h"

#include <string.h>

/*
 * SMTP (RFC 5321, STARTTLS RFC 3207). With starttls = required portier
 * answers EHLO itself and offers STARTTLS alone: no AUTH, no PIPELINING,
 * no SIZE. With starttls = optional (port 25) a sender may stay in
 * plaintext, and then needs the backend's extensions (SMTPUTF8, 8BITMIME,
 * SIZE...) and the backend's say on its name: the EHLO or HELO goes to
 * the backend first (BACKEND), and the client gets portier's name (with
 * EHLO, the backend's safe extensions and STARTTLS) or the backend's
 * refusal as it came.
 */

#define SMTP_LINE_MAX	512	/* RFC 5321 4.5.3.1.4, CRLF included */

/* Driver state, in bytes of s->state (plain bytes: no aliasing games). */
#define ST_HELO		0	/* EHLO or HELO seen (optional: and taken) */
#define ST_EHLO		1	/* optional: the line asked is an EHLO */
#define ST_SIZE		2

static int smtp_greeting(struct starttls_session *s, struct buf *out)
{
	return buf_appendf(out, "220 %s ESMTP ready\r\n", starttls_hostname(s));
}

#define REPLY(s_) (buf_appendf(out, "%s", s_) == 0 ? STARTTLS_AGAIN : STARTTLS_ERROR)

/* A line for the backend has no control byte: a bare CR that a lenient
 * server reads as a line end would make one line two commands, and the
 * second one's reply would reach the client out of turn (inside TLS,
 * after a STARTTLS). */
static int printable(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] == 0x7f)
			return 0;
	return 1;
}

static enum starttls_verdict smtp_hello(struct starttls_session *s,
    const uint8_t *line, size_t n, size_t arg, int ehlo, struct buf *out)
{
	if (arg == n || (s->params->optional && !printable(line, n)))
		return REPLY(ehlo ? "501 5.5.4 Syntax: EHLO hostname\r\n" :
		    "501 5.5.4 Syntax: HELO hostname\r\n");
	/* Optional: the backend is asked at once, HELO as EHLO, and the
	 * client is greeted only if it takes the name (smtp_query_reply).
	 * A HELO answered here and told the backend later would turn its
	 * refusal (a policy 550, OpenSMTPD's 503 for a second hello) into
	 * a 421 of ours after the client had our 250. */
	if (s->params->optional) {
		if (starttls_keep(s, line, n) == -1)
			return REPLY("500 5.5.2 Line too long\r\n");
		s->state[ST_EHLO] = (uint8_t)ehlo;
		return STARTTLS_BACKEND;
	}
	s->state[ST_HELO] = 1;
	if (ehlo) {
		if (buf_appendf(out, "250-%s\r\n250 STARTTLS\r\n", starttls_hostname(s)))
			return STARTTLS_ERROR;
	} else if (buf_appendf(out, "250 %s\r\n", starttls_hostname(s))) {
		return STARTTLS_ERROR;
	}
	return STARTTLS_AGAIN;
}

static enum starttls_verdict smtp_command(struct starttls_session *s,
    const uint8_t *msg, size_t len, struct buf *out)
{
	size_t n = starttls_line_trim(msg, len), arg;

	if (starttls_word(msg, n, "EHLO", &arg))
		return smtp_hello(s, msg, n, arg, 1, out);
	if (starttls_word(msg, n, "HELO", &arg))
		return smtp_hello(s, msg, n, arg, 0, out);
	if (starttls_word(msg, n, "STARTTLS", &arg)) {
		if (arg != n)
			return REPLY("501 5.5.4 Syntax error (no parameters "
			    "allowed)\r\n");
		if (buf_appendf(out, "220 2.0.0 Ready to start TLS\r\n"))
			return STARTTLS_ERROR;
		return STARTTLS_UPGRADE;
	}
	if (starttls_word(msg, n, "NOOP", &arg) ||
	    starttls_word(msg, n, "RSET", &arg))
		return REPLY("250 2.0.0 OK\r\n");
	if (starttls_word(msg, n, "QUIT", &arg)) {
		s->why = "client quit";
		if (buf_appendf(out, "221 2.0.0 %s closing connection\r\n",
		    starttls_hostname(s)))
			return STARTTLS_ERROR;
		return STARTTLS_REPLY_AND_CLOSE;
	}
	if (starttls_word(msg, n, "AUTH", &arg))
		starttls_note_auth(s, "AUTH");
	if (starttls_word(msg, n, "AUTH", &arg) || !s->params->optional)
		return REPLY("530 5.7.0 Must issue a STARTTLS command first\r\n");
	/* Port 25 with starttls = optional (RFC 3207 section 4): the client
	 * may go on in plaintext, once it has said hello. */
	if (!s->state[ST_HELO])
		return REPLY("503 5.5.1 Send EHLO or HELO first\r\n");
	return STARTTLS_PLAINTEXT;
}

static int smtp_bye(const struct starttls_session *s, enum starttls_bye why,
    struct buf *out)
{
	switch (why) {
	case STARTTLS_BYE_UNAVAILABLE:
		return buf_appendf(out, "421 4.3.0 %s service not available"
		    "\r\n", starttls_hostname(s));
	case STARTTLS_BYE_LIMITED:
		/* RFC 3463 4.7.0: refused by policy, for now. */
		return buf_appendf(out, "421 4.7.0 %s too many connections from your "
		    "address, try again later\r\n", starttls_hostname(s));
	case STARTTLS_BYE_TIMEOUT:
		return buf_appendf(out, "421 4.4.2 %s timeout, closing "
		    "connection\r\n", starttls_hostname(s));
	case STARTTLS_BYE_LIMIT:
		return buf_appendf(out, "421 4.7.0 %s too much input, closing "
		    "connection\r\n", starttls_hostname(s));
	case STARTTLS_BYE_PROTOCOL:
		break;
	}
	return buf_appendf(out, "421 4.5.0 %s protocol error, closing "
	    "connection\r\n", starttls_hostname(s));
}

static int digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* Frame one whole reply of at most max bytes: all lines "ddd-text", the
 * last "ddd text" or "ddd", one code throughout. 1, 0 need more, -1 bad. */
static int smtp_reply(const uint8_t *p, size_t n, size_t max, size_t *len,
    unsigned *code)
{
	size_t off = 0, ll, cl;
	const char *why;
	unsigned c;
	int r;

	for (;;) {
		if (off >= max)
			return -1;
		r = starttls_line(p + off, n - off, max - off, &ll, &why);
		if (r <= 0)
			return r;
		cl = starttls_line_trim(p + off, ll);
		if (cl < 3 || !digit(p[off]) || !digit(p[off + 1]) ||
		    !digit(p[off + 2]) || p[off] < '2' || p[off] > '5')
			return -1;
		c = (unsigned)(p[off] - '0') * 100 +
		    (unsigned)(p[off + 1] - '0') * 10 + (unsigned)(p[off + 2] - '0');
		if (off > 0 && c != *code)
			return -1;
		*code = c;
		if (cl > 3 && p[off + 3] != '-' && p[off + 3] != ' ')
			return -1;
		if (cl == 3 || p[off + 3] == ' ') {
			*len = off + ll;
			return 1;
		}
		off += ll;
	}
}

static int smtp_backend_greeting(const uint8_t *p, size_t n, size_t *len,
    const char **why)
{
	unsigned code = 0;
	int r = smtp_reply(p, n, STARTTLS_REPLY_MAX, len, &code);

	if (r < 0)
		*why = "malformed or oversized backend greeting";
	else if (r == 1 && code != 220) {
		*why = "backend greeting not 220";
		return -1;
	}
	return r;
}

static int smtp_ehlo_reply(const uint8_t *p, size_t n, size_t *len,
    const char **why)
{
	unsigned code = 0;
	int r = smtp_reply(p, n, STARTTLS_REPLY_MAX, len, &code);

	if (r < 0)
		*why = "malformed or oversized backend reply to portier's EHLO "
		    "before XCLIENT";
	else if (r == 1 && code != 250) {
		*why = "backend refused portier's EHLO before XCLIENT";
		return -1;
	}
	return r;
}

/*
 * The backend's extensions a client may see before TLS. An allowlist, not
 * a denylist: a denylist passes whatever a backend grows next, and the
 * dangerous ones come in more spellings than one ("AUTH=LOGIN" of old
 * Outlook, XEXCH50, X-LINK2STATE, a vendor's X-*), where one miss offers
 * credentials in clear or a trust meant for portier. Not passed, on
 * purpose:
 *   STARTTLS             portier's own, added last;
 *   AUTH, AUTH=...       refused before TLS (530);
 *   XCLIENT, XFORWARD    granted to portier's address, never a client's;
 *   REQUIRETLS           RFC 8689 3: offered only over TLS;
 *   CHUNKING, BINARYMIME filter_smtp passes BDAT only after an EHLO reply
 *                        it saw offer CHUNKING, and this one it never sees:
 *                        BDAT would get its 502;
 *   ETRN, VRFY, EXPN...  queue and address probing are no sender's need.
 * All of these are plain keywords of message transfer the backend carries
 * out itself, on the bytes the relay passes as they are.
 */
static const char *const plain_ext[] = {
	"SIZE", "8BITMIME", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES",
	"PIPELINING", "DELIVERBY", "MT-PRIORITY", "FUTURERELEASE", "LIMITS",
	"NO-SOLICITING", "MTRK",
};

static int plain_ext_ok(const uint8_t *p, size_t n)
{
	size_t arg;

	if (!printable(p, n))
		return 0;	/* nothing a client could read as a line end */
	for (size_t i = 0; i < sizeof(plain_ext) / sizeof(plain_ext[0]); i++)
		if (starttls_word(p, n, plain_ext[i], &arg))
			return 1;
	return 0;
}

/* The answer to the client's EHLO from the backend's positive reply
 * p[0..len): portier's name, the backend's allowed extension lines (their
 * parameters as they are: "SIZE 10240000") and STARTTLS last. The
 * backend's own first line (its name) stays with it. */
static int merged_reply(struct starttls_session *s, const uint8_t *p,
    size_t len, struct buf *out)
{
	size_t off, ll, cl;

	if (buf_appendf(out, "250-%s\r\n", starttls_hostname(s)))
		return -1;
	/* smtp_reply framed it: every line ends in LF, is at least "250". */
	for (off = 0; off < len; off += ll) {
		const uint8_t *lf = memchr(p + off, '\n', len - off);
		ll = lf ? (size_t)(lf - (p + off)) + 1 : len - off;
		cl = starttls_line_trim(p + off, ll);
		if (off == 0 || cl <= 4 || !plain_ext_ok(p + off + 4, cl - 4))
			continue;
		if (buf_append(out, "250-", 4) || buf_append(out, p + off + 4, cl - 4) ||
		    buf_append(out, "\r\n", 2))
			return -1;
	}
	return buf_appendf(out, "250 STARTTLS\r\n");
}

/* The backend's reply to the client's EHLO or HELO. Taken: portier's
 * name (for EHLO with the merged extensions). A refusal goes to the
 * client as the backend gave it, and the client is greeted or not as
 * before: a 550 for a name the backend will not take is the backend's
 * policy, a permanent answer the client's MTA acts on (a 421 of ours
 * would make it queue and retry for days), and a second hello that the
 * backend refuses (OpenSMTPD: "503 Already identified") leaves the first
 * in force, as it would without portier. Its 421 alone ends the session:
 * the backend is closing it. */
static int smtp_query_reply(struct starttls_session *s, const uint8_t *p,
    size_t n, size_t *len, struct buf *out, const char **why)
{
	int ehlo = s->state[ST_EHLO];
	unsigned code = 0;
	int r = smtp_reply(p, n, STARTTLS_REPLY_MAX, len, &code), w;

	if (r < 0)
		*why = ehlo ? "malformed or oversized backend reply to the "
		    "client's EHLO" : "malformed or oversized backend reply to "
		    "the client's HELO";
	if (r <= 0)
		return r;
	if (code == 421) {
		*why = ehlo ? "backend closing at the client's EHLO (421)" :
		    "backend closing at the client's HELO (421)";
		return -1;
	}
	if (code != 250 && code < 400) {
		*why = ehlo ? "backend reply to the client's EHLO neither 250 "
		    "nor a refusal" : "backend reply to the client's HELO "
		    "neither 250 nor a refusal";
		return -1;
	}
	if (code == 250) {
		s->state[ST_HELO] = 1;
		w = ehlo ? merged_reply(s, p, *len, out) :
		    buf_appendf(out, "250 %s\r\n", starttls_hostname(s));
	} else {
		w = buf_append(out, p, *len);
	}
	if (w < 0) {
		*why = "output buffer full";
		return -1;
	}
	return 1;
}

const struct starttls_driver starttls_smtp = {
	.name = "smtp",
	.state_size = ST_SIZE,
	.max_msg = SMTP_LINE_MAX,
	.optional_ok = 1,
	.xclient_ok = 1,
	.frame = starttls_line,
	.greeting = smtp_greeting,
	.command = smtp_command,
	.bye = smtp_bye,
	.backend_greeting = smtp_backend_greeting,
	.ehlo_reply = smtp_ehlo_reply,
	.query_reply = smtp_query_reply,
};
