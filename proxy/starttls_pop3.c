#include "starttls.h"

/*
 * POP3 (RFC 1939, STLS RFC 2595 section 4, CAPA RFC 2449). No APOP
 * timestamp in the greeting: APOP is not on offer before TLS.
 */

#define POP3_LINE_MAX	255	/* RFC 2449 section 4, CRLF included */

static int pop3_greeting(struct starttls_session *s, struct buf *out)
{
	return buf_appendf(out, "+OK POP3 ready\r\n");
}

static enum starttls_verdict say(const char *text, enum starttls_verdict v,
    struct buf *out)
{
	return buf_appendf(out, "%s\r\n", text) ? STARTTLS_ERROR : v;
}

/* Commands that carry credentials: refused before TLS, and noted. */
static const char *const creds[] = { "USER", "PASS", "APOP", "AUTH" };

static enum starttls_verdict pop3_command(struct starttls_session *s,
    const uint8_t *msg, size_t len, struct buf *out)
{
	size_t n = starttls_line_trim(msg, len), arg;

	if (starttls_word(msg, n, "CAPA", &arg) && arg == n)
		return say("+OK Capability list follows\r\nSTLS\r\n.",
		    STARTTLS_AGAIN, out);
	if (starttls_word(msg, n, "STLS", &arg))
		return arg == n ? say("+OK Begin TLS negotiation",
		    STARTTLS_UPGRADE, out) : say("-ERR Syntax error",
		    STARTTLS_AGAIN, out);
	for (size_t i = 0; i < sizeof(creds) / sizeof(creds[0]); i++)
		if (starttls_word(msg, n, creds[i], &arg)) {
			starttls_note_auth(s, creds[i]);
			return say("-ERR Must issue STLS first", STARTTLS_AGAIN,
			    out);
		}
	if (starttls_word(msg, n, "QUIT", &arg)) {
		s->why = "client quit";
		return say("+OK Bye", STARTTLS_REPLY_AND_CLOSE, out);
	}
	return say("-ERR Unknown command; issue STLS first", STARTTLS_AGAIN,
	    out);
}

static int pop3_bye(const struct starttls_session *s, enum starttls_bye why,
    struct buf *out)
{
	const char *text = "Protocol error";

	switch (why) {
	case STARTTLS_BYE_UNAVAILABLE:
	case STARTTLS_BYE_LIMITED:
		/* RFC 3206 response code: a temporary server-side failure. */
		text = "[SYS/TEMP] Service not available";
		break;
	case STARTTLS_BYE_TIMEOUT:
		text = "Timeout";
		break;
	case STARTTLS_BYE_LIMIT:
		text = "Too much input";
		break;
	case STARTTLS_BYE_PROTOCOL:
		break;
	}
	return buf_appendf(out, "-ERR %s\r\n", text);
}

static int pop3_backend_greeting(const uint8_t *p, size_t n, size_t *len,
    const char **why)
{
	size_t ll, cl, arg;
	int r;

	if ((r = starttls_line(p, n, STARTTLS_REPLY_MAX, &ll, why)) <= 0) {
		if (r < 0)
			*why = "oversized backend greeting";
		return r;
	}
	*len = ll;
	cl = starttls_line_trim(p, ll);
	if (starttls_word(p, cl, "+OK", &arg))
		return 1;
	*why = starttls_word(p, cl, "-ERR", &arg) ?
	    "backend greeted with -ERR" : "malformed backend greeting";
	return -1;
}

const struct starttls_driver starttls_pop3 = {
	.name = "pop3",
	.state_size = 0,
	.max_msg = POP3_LINE_MAX,
	.frame = starttls_line,
	.greeting = pop3_greeting,
	.command = pop3_command,
	.bye = pop3_bye,
	.backend_greeting = pop3_backend_greeting,
};
