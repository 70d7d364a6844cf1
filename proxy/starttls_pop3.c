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

/* Commands that carry credentials: refused before TLS, and noted. */
static const char *const creds[] = { "USER", "PASS", "APOP", "AUTH" };

static enum starttls_verdict pop3_command(struct starttls_session *s,
    const uint8_t *msg, size_t len, struct buf *out)
{
	size_t n = starttls_line_trim(msg, len), arg;

	if (starttls_word(msg, n, "CAPA", &arg) && arg == n)
		return starttls_say("+OK Capability list follows\r\nSTLS\r\n.",
		    STARTTLS_AGAIN, out);
	if (starttls_word(msg, n, "STLS", &arg))
		return arg == n ? starttls_say("+OK Begin TLS negotiation",
		    STARTTLS_UPGRADE, out) : starttls_say("-ERR Syntax error",
		    STARTTLS_AGAIN, out);
	for (size_t i = 0; i < sizeof(creds) / sizeof(creds[0]); i++)
		if (starttls_word(msg, n, creds[i], &arg)) {
			starttls_note_auth(s, creds[i]);
			return starttls_say("-ERR Must issue STLS first",
			    STARTTLS_AGAIN, out);
		}
	if (starttls_word(msg, n, "QUIT", &arg)) {
		s->why = "client quit";
		return starttls_say("+OK Bye", STARTTLS_REPLY_AND_CLOSE, out);
	}
	return starttls_say("-ERR Unknown command; issue STLS first",
	    STARTTLS_AGAIN, out);
}

/* [SYS/TEMP] (RFC 3206): a temporary server-side failure. */
static const struct starttls_bye_words pop3_bye = {
	.prefix = "-ERR",
	.text = {
		[STARTTLS_BYE_UNAVAILABLE] = "[SYS/TEMP] Service not available",
		[STARTTLS_BYE_LIMITED] = "[SYS/TEMP] Service not available",
		[STARTTLS_BYE_TIMEOUT] = "Timeout",
		[STARTTLS_BYE_LIMIT] = "Too much input",
		[STARTTLS_BYE_PROTOCOL] = "Protocol error",
	},
};

static int pop3_backend_greeting(const uint8_t *p, size_t n, size_t *len,
    const char **why)
{
	size_t cl, arg;
	int r;

	if ((r = starttls_greeting_line(p, n, len, &cl, why)) <= 0)
		return r;
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
	.bye = starttls_bye_line,
	.bye_words = &pop3_bye,
	.backend_greeting = pop3_backend_greeting,
};
