#include "starttls.h"
#include "ftp.h"

/*
 * FTP (RFC 959, AUTH TLS RFC 4217, FEAT RFC 2389). Before TLS portier
 * offers only the upgrade: FEAT lists AUTH TLS, PBSZ and PROT (the
 * backend's own features come through the relay once the client is in
 * TLS), and nothing that logs in or touches files is accepted.
 */

#define FTP_LINE_MAX	512	/* RFC 959 sets none; as SMTP's, CRLF included */

static int ftp_greeting(struct starttls_session *s, struct buf *out)
{
	return buf_appendf(out, "220 %s FTP ready (AUTH TLS required)\r\n",
	    starttls_hostname(s));
}

/* Commands of RFC 959, 2228, 2389, 2428, 3659 and 4217 that a client
 * sends to a server it has not logged in to: 530 (RFC 4217 section 11:
 * the server requires a protected session first). Anything else is not
 * a command portier implements before TLS: 502. */
static const char *const known[] = {
	"USER", "PASS", "ACCT", "CWD", "CDUP", "SMNT", "REIN", "PORT", "PASV",
	"TYPE", "STRU", "MODE", "RETR", "STOR", "STOU", "APPE", "ALLO", "REST",
	"RNFR", "RNTO", "ABOR", "DELE", "RMD", "MKD", "PWD", "LIST", "NLST",
	"SITE", "SYST", "STAT", "HELP", "EPRT", "EPSV", "MLSD", "MLST", "SIZE",
	"MDTM", "OPTS", "LANG", "CCC", "ADAT", "MIC", "CONF", "ENC", "XCWD",
	"XCUP", "XMKD", "XRMD", "XPWD", "HOST", "CLNT",
};

static int is_known(const uint8_t *msg, size_t n)
{
	size_t arg;

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (starttls_word(msg, n, known[i], &arg))
			return 1;
	return 0;
}

/* AUTH's mechanism: RFC 4217 section 4 names TLS; SSL and TLS-C are what
 * older clients send for the same thing, TLS-P the same with PROT P, which
 * portier requires anyway. */
static int auth_tls(const uint8_t *p, size_t n)
{
	size_t arg;

	return (starttls_word(p, n, "TLS", &arg) && arg == n) ||
	    (starttls_word(p, n, "TLS-C", &arg) && arg == n) ||
	    (starttls_word(p, n, "TLS-P", &arg) && arg == n) ||
	    (starttls_word(p, n, "SSL", &arg) && arg == n);
}

static enum starttls_verdict ftp_command(struct starttls_session *s,
    const uint8_t *msg, size_t len, struct buf *out)
{
	size_t n = starttls_line_trim(msg, len), arg;

	if (starttls_word(msg, n, "AUTH", &arg)) {
		if (arg == n)
			return starttls_say("501 Syntax error: AUTH TLS",
			    STARTTLS_AGAIN, out);
		if (!auth_tls(msg + arg, n - arg))
			return starttls_say("504 Security mechanism not "
			    "understood; use AUTH TLS", STARTTLS_AGAIN, out);
		return starttls_say("234 AUTH TLS successful", STARTTLS_UPGRADE,
		    out);
	}
	if (starttls_word(msg, n, "FEAT", &arg))
		return arg == n ? starttls_say("211-Features:\r\n AUTH TLS\r\n"
		    " PBSZ\r\n PROT\r\n211 End", STARTTLS_AGAIN, out) :
		    starttls_say("501 No arguments allowed", STARTTLS_AGAIN,
		    out);
	if (starttls_word(msg, n, "PBSZ", &arg) ||
	    starttls_word(msg, n, "PROT", &arg))
		/* RFC 2228: PBSZ and PROT come after the security exchange. */
		return starttls_say("503 Issue AUTH TLS first", STARTTLS_AGAIN,
		    out);
	if (starttls_word(msg, n, "NOOP", &arg))
		return starttls_say("200 NOOP ok", STARTTLS_AGAIN, out);
	if (starttls_word(msg, n, "QUIT", &arg)) {
		s->why = "client quit";
		return starttls_say("221 Goodbye", STARTTLS_REPLY_AND_CLOSE,
		    out);
	}
	if (starttls_word(msg, n, "USER", &arg))
		starttls_note_auth(s, "USER");
	if (starttls_word(msg, n, "PASS", &arg))
		starttls_note_auth(s, "PASS");
	if (is_known(msg, n))
		return starttls_say("530 Issue AUTH TLS first", STARTTLS_AGAIN,
		    out);
	return starttls_say("502 Command not implemented; issue AUTH TLS first",
	    STARTTLS_AGAIN, out);
}

static const struct starttls_bye_words ftp_bye = {
	.prefix = "421",
	.text = {
		[STARTTLS_BYE_UNAVAILABLE] = "Service not available, closing "
		    "control connection",
		[STARTTLS_BYE_LIMITED] = "Service not available, closing "
		    "control connection",
		[STARTTLS_BYE_TIMEOUT] = "Timeout",
		[STARTTLS_BYE_LIMIT] = "Too much input",
		[STARTTLS_BYE_PROTOCOL] = "Protocol error",
	},
};

/* 220, possibly after a 120 "ready in nnn minutes" (RFC 959 5.4). */
static int ftp_backend_greeting(const uint8_t *p, size_t n, size_t *len,
    const char **why)
{
	size_t pos = 0, l;
	int r, code;

	for (int i = 0; i < 2; i++) {
		r = ftp_reply(p + pos, n - pos, STARTTLS_REPLY_MAX, &l, &code);
		if (r == 0)
			return 0;
		if (r < 0) {
			*why = r == -1 ? "oversized backend greeting" :
			    "malformed backend greeting";
			return -1;
		}
		pos += l;
		if (code == 220) {
			*len = pos;
			return 1;
		}
		if (code != 120 || i == 1)
			break;
	}
	*why = "backend greeted with a refusal";
	return -1;
}

const struct starttls_driver starttls_ftp = {
	.name = "ftp",
	.state_size = 0,
	.max_msg = FTP_LINE_MAX,
	.frame = starttls_line,
	.greeting = ftp_greeting,
	.command = ftp_command,
	.bye = starttls_bye_line,
	.bye_words = &ftp_bye,
	.backend_greeting = ftp_backend_greeting,
};
