#include "starttls.h"

#include <string.h>

/*
 * SMTP (RFC 5321, STARTTLS RFC 3207). Before TLS portier offers nothing
 * that needs the backend: no AUTH, no PIPELINING, no SIZE.
 */

#define SMTP_LINE_MAX	512	/* RFC 5321 4.5.3.1.4, CRLF included */

/* Driver state, in bytes of s->state (plain bytes: no aliasing games). */
#define ST_HELO		0	/* EHLO or HELO seen */
#define ST_SIZE		1

static int smtp_greeting(struct starttls_session *s, struct buf *out)
{
	return buf_appendf(out, "220 %s ESMTP ready\r\n", starttls_hostname(s));
}

#define REPLY(s_) (buf_appendf(out, "%s", s_) == 0 ? STARTTLS_AGAIN : STARTTLS_ERROR)

static enum starttls_verdict smtp_hello(struct starttls_session *s,
    const uint8_t *line, size_t n, size_t arg, int ehlo, struct buf *out)
{
	if (arg == n)
		return REPLY(ehlo ? "501 5.5.4 Syntax: EHLO hostname\r\n" :
		    "501 5.5.4 Syntax: HELO hostname\r\n");
	/* Kept only for replay on the optional plaintext path; the STARTTLS
	 * path wipes it. */
	if (s->params->optional && starttls_keep(s, line, n) == -1)
		return REPLY("500 5.5.2 Line too long\r\n");
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

static int smtp_replay_reply(const uint8_t *p, size_t n, size_t *len,
    const char **why)
{
	unsigned code = 0;
	int r = smtp_reply(p, n, STARTTLS_REPLY_MAX, len, &code);

	if (r < 0)
		*why = "malformed or oversized backend reply to EHLO/HELO";
	else if (r == 1 && code != 250) {
		*why = "backend refused the replayed EHLO/HELO";
		return -1;
	}
	return r;
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
	.replay_reply = smtp_replay_reply,
};
