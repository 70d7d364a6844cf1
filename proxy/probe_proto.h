#ifndef PORTIER_PROBE_PROTO_H
#define PORTIER_PROBE_PROTO_H

#include <stddef.h>
#include <stdint.h>

/*
 * The client side of each protocol's greeting and STARTTLS exchange, for
 * `portier probe`, as pure functions over bytes (no sockets): a resumable
 * reader of one server reply, what a reply says (capabilities, STARTTLS,
 * whether a login in clear is allowed), what a banner names, and the few
 * LDAP messages a probe sends. Everything here reads hostile bytes:
 * lengths are capped and a reply over its cap is invalid, never cut.
 */

#define PROBE_LINE_MAX 1024     /* one reply line, CRLF included */
#define PROBE_TEXT_MAX 4096     /* a whole reply, as kept */
#define PROBE_LINES_MAX 64      /* lines of one reply */

/* How a reply ends. */
enum probe_rk {
	PROBE_RK_LINE,          /* one line: a greeting, POP3's +OK/-ERR */
	PROBE_RK_SMTP,          /* "250-..." lines until "250 ..." */
	PROBE_RK_IMAP,          /* untagged lines until the tagged one */
	PROBE_RK_POP3_MULTI,    /* "+OK" then lines until "."; -ERR alone */
	PROBE_RK_HTTP,          /* a response head, until the empty line */
	PROBE_RK_FTP            /* "211-..." then any lines until "211 ..." */
};

/* One reply being read. text holds its lines without line ends, joined
 * by '\n', NUL-terminated; the bytes are the server's (escape them before
 * printing). */
struct probe_reply {
	enum probe_rk kind;
	char tag[8];              /* PROBE_RK_IMAP: the command's tag */
	char text[PROBE_TEXT_MAX];
	size_t len;               /* of text */
	size_t nlines;
	size_t linelen;           /* bytes of the line being read */
	size_t line_start;        /* where it begins in text */
	int code;                 /* SMTP, FTP: the reply code; HTTP: the status;
	                             else 1 for +OK / OK, 0 otherwise */
	int done;
};

/* probe_reply_init(r, kind, tag): an empty reply of kind; tag only for
 * PROBE_RK_IMAP (at most 7 bytes). */
void probe_reply_init(struct probe_reply *r, enum probe_rk kind, const char *tag);

/* probe_reply_feed(r, p, n, used): read bytes p[0..n) into r, stopping
 * right after the reply's last line (*used says how many were taken; the
 * rest belongs to what follows). Returns 1 when the reply is whole, 0 when
 * it needs more bytes, -1 when the bytes are not such a reply (a line over
 * PROBE_LINE_MAX, too many lines or too much text, a malformed SMTP line, a
 * NUL byte). */
int probe_reply_feed(struct probe_reply *r, const uint8_t *p, size_t n, size_t *used);

/* What the server says it can do before TLS. */
struct probe_caps {
	int starttls;           /* STARTTLS / STLS / StartTLS offered */
	int login_in_clear;     /* 1: a login is accepted before TLS (AUTH,
	                           USER, no LOGINDISABLED); 0: refused; -1:
	                           cannot tell */
	int have_caps;          /* a capability list was seen at all */
};

/* probe_caps_smtp(text, c): from an EHLO reply's text. */
void probe_caps_smtp(const char *text, struct probe_caps *c);
/* probe_caps_imap(text, c): from a greeting with [CAPABILITY ...] or a
 * CAPABILITY response; c->have_caps 0 when text holds neither. */
void probe_caps_imap(const char *text, struct probe_caps *c);
/* probe_caps_pop3(text, c): from a CAPA reply (its +OK line first). */
void probe_caps_pop3(const char *text, struct probe_caps *c);
/* probe_caps_ftp(text, c): from a FEAT reply (RFC 2389): AUTH TLS
 * (RFC 4217). Whether a login needs TLS first, FEAT does not say. */
void probe_caps_ftp(const char *text, struct probe_caps *c);

/* probe_banner(p, n): the protocol a server-first banner names ("ssh",
 * "smtp", "ftp", "imap", "pop3", "mysql", "vnc", "http"), or NULL. */
const char *probe_banner(const uint8_t *p, size_t n);

/* probe_has_word(p, n, word): whether p[0..n) holds word anywhere, in any
 * case ("vsFTPd" holds FTP). */
int probe_has_word(const uint8_t *p, size_t n, const char *word);

/* The LDAP requests of a probe (RFC 4511): a search of the root DSE for
 * supportedExtension with messageID 1, and StartTLS with messageID 2. */
extern const uint8_t probe_ldap_rootdse[];
extern const size_t probe_ldap_rootdse_len;
extern const uint8_t probe_ldap_starttls[];
extern const size_t probe_ldap_starttls_len;

/* What the LDAP answers of a probe said, collected message by message. */
struct probe_ldap {
	int done;               /* the response to the request came */
	unsigned code;          /* its resultCode */
	int starttls_listed;    /* the root DSE lists the StartTLS OID */
	int entries;            /* SearchResultEntry messages seen */
};

/* probe_ldap_feed(l, p, n, used, msgid): read the LDAP messages at the
 * start of p[0..n) that answer msgid (search entries, then the done or
 * extended response), stopping after the final one. 1 when it came, 0 for
 * more bytes, -1 when the bytes are not LDAP (a TLS alert, an HTTP page)
 * or the answer is another's. */
int probe_ldap_feed(struct probe_ldap *l, const uint8_t *p, size_t n, size_t *used,
                    uint32_t msgid);

#endif
