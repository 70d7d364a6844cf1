#include "starttls.h"

#include <string.h>

/*
 * IMAP (RFC 3501, STARTTLS section 6.2.1). LOGINDISABLED tells clients not
 * to try; PRIVACYREQUIRED (RFC 5530) says why a LOGIN is refused anyway.
 */

#define IMAP_LINE_MAX	1024

#define IMAP_CAPS	"IMAP4rev1 STARTTLS LOGINDISABLED"

static int imap_greeting(struct starttls_session *s, struct buf *out)
{
	return buf_appendf(out, "* OK [CAPABILITY " IMAP_CAPS "] ready\r\n");
}

/* A tag is echoed back, so accept only printable atom characters, and no
 * brackets either (stricter than RFC 3501) so that no reply can carry
 * anything that looks like a response code such as [ALERT]. */
static int tag_char(uint8_t c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\[]+", c) == NULL;
}

/* Whether the line ends in a literal, "{n}" or "{n+}" (also "~{n}"): 1
 * synchronizing, 2 non-synchronizing, 0 none. */
static int literal(const uint8_t *p, size_t n)
{
	size_t i;
	int plus = 0;

	if (n < 3 || p[n - 1] != '}')
		return 0;
	i = n - 1;
	if (p[i - 1] == '+') {
		plus = 1;
		i--;
	}
	if (i == 0 || p[i - 1] < '0' || p[i - 1] > '9')
		return 0;
	while (i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9')
		i--;
	return (i > 0 && p[i - 1] == '{') ? 1 + plus : 0;
}

static enum starttls_verdict tagged(const uint8_t *tag, size_t tl,
    const char *text, enum starttls_verdict v, struct buf *out)
{
	if (buf_append(out, tag, tl) || buf_appendf(out, " %s\r\n", text))
		return STARTTLS_ERROR;
	return v;
}

static enum starttls_verdict imap_command(struct starttls_session *s,
    const uint8_t *msg, size_t len, struct buf *out)
{
	size_t n = starttls_line_trim(msg, len), tl = 0, arg;
	const uint8_t *cmd;
	size_t cn;
	int lit;

	while (tl < n && tag_char(msg[tl]))
		tl++;
	if (tl == 0 || tl == n || msg[tl] != ' ')
		return starttls_say("* BAD Invalid tag or missing command",
		    STARTTLS_AGAIN, out);
	cmd = msg + tl + 1;
	cn = n - tl - 1;

	/* Never send the "+" continuation: a synchronizing literal is then
	 * never sent. A non-synchronizing one is already on its way and its
	 * bytes would be read as commands, so that ends the session. */
	if ((lit = literal(msg, n)) == 2) {
		s->why = "IMAP non-synchronizing literal before TLS";
		return tagged(msg, tl, "BAD Literals not allowed before "
		    "STARTTLS", STARTTLS_REPLY_AND_CLOSE, out);
	}
	if (lit == 1)
		return tagged(msg, tl, "BAD Literals not allowed before STARTTLS",
		    STARTTLS_AGAIN, out);

	if (starttls_word(cmd, cn, "LOGIN", &arg))
		starttls_note_auth(s, "LOGIN");
	if (starttls_word(cmd, cn, "AUTHENTICATE", &arg))
		starttls_note_auth(s, "AUTHENTICATE");
	if (starttls_word(cmd, cn, "LOGIN", &arg) ||
	    starttls_word(cmd, cn, "AUTHENTICATE", &arg))
		return tagged(msg, tl, "NO [PRIVACYREQUIRED] Use STARTTLS first",
		    STARTTLS_AGAIN, out);
	if (starttls_word(cmd, cn, "CAPABILITY", &arg) && arg == cn) {
		if (buf_appendf(out, "* CAPABILITY " IMAP_CAPS "\r\n"))
			return STARTTLS_ERROR;
		return tagged(msg, tl, "OK CAPABILITY completed", STARTTLS_AGAIN,
		    out);
	}
	if (starttls_word(cmd, cn, "NOOP", &arg) && arg == cn)
		return tagged(msg, tl, "OK NOOP completed", STARTTLS_AGAIN, out);
	if (starttls_word(cmd, cn, "LOGOUT", &arg) && arg == cn) {
		s->why = "client logout";
		if (buf_appendf(out, "* BYE Logging out\r\n"))
			return STARTTLS_ERROR;
		return tagged(msg, tl, "OK LOGOUT completed",
		    STARTTLS_REPLY_AND_CLOSE, out);
	}
	if (starttls_word(cmd, cn, "STARTTLS", &arg) && arg == cn)
		return tagged(msg, tl, "OK Begin TLS negotiation now",
		    STARTTLS_UPGRADE, out);
	return tagged(msg, tl, "BAD Command not allowed before STARTTLS",
	    STARTTLS_AGAIN, out);
}

/* [UNAVAILABLE] (RFC 5530): a temporary failure, try later. */
static const struct starttls_bye_words imap_bye = {
	.prefix = "* BYE",
	.text = {
		[STARTTLS_BYE_UNAVAILABLE] =
		    "[UNAVAILABLE] Service not available",
		[STARTTLS_BYE_LIMITED] = "[UNAVAILABLE] Service not available",
		[STARTTLS_BYE_TIMEOUT] = "Autologout; idle for too long",
		[STARTTLS_BYE_LIMIT] = "Too much input",
		[STARTTLS_BYE_PROTOCOL] = "Protocol error",
	},
};

/* "* OK" opens the relay; "* PREAUTH" would hand the client a session
 * nobody authenticated, so it is refused like "* BYE". */
static int imap_backend_greeting(const uint8_t *p, size_t n, size_t *len,
    const char **why)
{
	size_t cl, arg;
	int r;

	if ((r = starttls_greeting_line(p, n, len, &cl, why)) <= 0)
		return r;
	if (!starttls_word(p, cl, "*", &arg) || arg != 2) {
		*why = "malformed backend greeting";
		return -1;
	}
	if (starttls_word(p + 2, cl - 2, "OK", &arg))
		return 1;
	if (starttls_word(p + 2, cl - 2, "PREAUTH", &arg))
		*why = "backend greeted with PREAUTH";
	else if (starttls_word(p + 2, cl - 2, "BYE", &arg))
		*why = "backend greeted with BYE";
	else
		*why = "malformed backend greeting";
	return -1;
}

const struct starttls_driver starttls_imap = {
	.name = "imap",
	.state_size = 0,
	.max_msg = IMAP_LINE_MAX,
	.frame = starttls_line,
	.greeting = imap_greeting,
	.command = imap_command,
	.bye = starttls_bye_line,
	.bye_words = &imap_bye,
	.backend_greeting = imap_backend_greeting,
};
