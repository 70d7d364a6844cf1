#ifndef PORTIER_STARTTLS_H
#define PORTIER_STARTTLS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/*
 * STARTTLS on behalf of plaintext backends: pure functions over byte
 * buffers, no fds, no event loop, no TLS objects. The connection state
 * machine owns the buffers and the sockets and calls, in this order:
 *
 *   starttls_init()            once, on accept
 *   starttls_greeting()        portier's own greeting, sent at once
 *   starttls_client_input()    on every read from the client before TLS,
 *                              until it says something other than AGAIN
 *   -- UPGRADE: flush, TLS handshake, connect the backend --
 *   -- PLAINTEXT (SMTP, starttls = optional): connect the backend --
 *   -- BACKEND (SMTP optional, on EHLO): connect the backend (if it is not
 *      yet), call starttls_backend_input() until it says RESUME, then
 *      starttls_client_input() again; the backend stays connected: a
 *      later PLAINTEXT relays on it at once, but UPGRADE wants it closed
 *      (and a new one connected after the handshake) --
 *   starttls_backend_input()   on connect and on every read from the backend,
 *                              until it says RELAY; no client byte goes to
 *                              the backend before that (SMTP: after it,
 *                              they pass filter_smtp)
 *   starttls_bye()             a protocol-correct goodbye for the client when
 *                              the backend is down or late, or the pre-TLS
 *                              deadline passes
 *
 * The engine, not each driver, enforces the rules of issue 10: a cap on
 * pre-TLS commands, bytes after STARTTLS are an injection attempt, and
 * nothing from before TLS survives the upgrade.
 */

enum starttls_verdict {
	STARTTLS_AGAIN,		/* need more bytes; send out, call again */
	STARTTLS_UPGRADE,	/* send out, then start the TLS handshake */
	STARTTLS_PLAINTEXT,	/* SMTP optional: the client goes on without
				   TLS; its bytes stay in `in` for the backend */
	STARTTLS_RELAY,		/* hand-over done: relay raw bytes both ways */
	STARTTLS_REPLY_AND_CLOSE, /* send out, then close; see starttls_why() */
	STARTTLS_INJECTION,	/* bytes after STARTTLS: close at once and log
				   "command injection attempt"; out may be
				   dropped */
	STARTTLS_ERROR,		/* close at once; see starttls_why() */
	STARTTLS_BACKEND,	/* SMTP optional, EHLO or HELO: connect the
				   backend if it is not yet, then feed it
				   through starttls_backend_input(); the
				   client's later bytes stay in `in` */
	STARTTLS_RESUME,	/* from starttls_backend_input(): the backend
				   answered; send out (the client's answer),
				   keep the backend connected, and go back to
				   starttls_client_input() */
};

/* Why the session ends, for starttls_bye(). */
enum starttls_bye {
	STARTTLS_BYE_UNAVAILABLE, /* backend down, refusing or late */
	STARTTLS_BYE_LIMITED,	/* the client is over a per-client limit */
	STARTTLS_BYE_TIMEOUT,	/* the pre-TLS deadline passed */
	STARTTLS_BYE_LIMIT,	/* line too long or too many commands */
	STARTTLS_BYE_PROTOCOL	/* malformed input (LDAP: protocolError) */
};

#define STARTTLS_MAX_COMMANDS	10	/* default pre-TLS command cap */
#define STARTTLS_REPLY_MAX	4096	/* longest backend greeting/EHLO reply */
#define STARTTLS_KEEP_MAX	516	/* longest line for a query */
#define STARTTLS_STATE_MAX	32	/* largest driver state */
#define STARTTLS_HOST_MAX	253	/* longest hostname */

/* Per-listener settings; the session keeps a pointer, not a copy. */
struct starttls_params {
	const char *hostname;	/* SMTP greeting and EHLO name */
	int optional;		/* SMTP only: clients may go on without TLS */
	unsigned max_commands;	/* pre-TLS command cap; 0 for the default */
	const char *xclient;	/* SMTP only: "ADDR=... PORT=..." to send as
				   XCLIENT before the client's first command,
				   or NULL */
};

struct starttls_session;

/* A line protocol's goodbye, for starttls_bye_line(): the prefix, a space,
 * the text for the reason and CRLF. The words are the driver's. */
struct starttls_bye_words {
	const char *prefix;	/* "* BYE", "-ERR", "421" */
	const char *text[STARTTLS_BYE_PROTOCOL + 1]; /* by enum starttls_bye */
};

/* A protocol driver. The core never calls these directly. */
struct starttls_driver {
	const char *name;	/* "smtp", ...; also its ALPN protocol id */
	size_t state_size;	/* at most STARTTLS_STATE_MAX */
	size_t max_msg;		/* longest pre-TLS command, terminator included */
	int optional_ok;	/* may run with params->optional set */
	int xclient_ok;		/* may run with params->xclient set (SMTP) */
	/* Length of the first complete command in p[0..n): 1 and *len set,
	 * 0 need more, -1 too long, -2 malformed (*why set for both). */
	int (*frame)(const uint8_t *p, size_t n, size_t max, size_t *len,
	    const char **why);
	/* Append the pre-TLS greeting (may be nothing). 0, or -1 if full. */
	int (*greeting)(struct starttls_session *s, struct buf *out);
	/* Handle one framed command: append replies, return AGAIN (done,
	 * go on), UPGRADE, PLAINTEXT (msg not consumed), REPLY_AND_CLOSE or
	 * ERROR, setting s->why for the last two. */
	enum starttls_verdict (*command)(struct starttls_session *s,
	    const uint8_t *msg, size_t len, struct buf *out);
	/* Append a goodbye for reason why. 0, or -1 if full. A line
	 * protocol's is starttls_bye_line, over bye_words. */
	int (*bye)(const struct starttls_session *s, enum starttls_bye why,
	    struct buf *out);
	const struct starttls_bye_words *bye_words;
	/* Check the backend's greeting at the start of p[0..n): 1 positive,
	 * 0 need more, -1 refused (*why set); *len is its length. NULL: the
	 * protocol has no greeting. */
	int (*backend_greeting)(const uint8_t *p, size_t n, size_t *len,
	    const char **why);
	/* XCLIENT: check the backend's reply to portier's own EHLO: 1
	 * positive, 0 need more, -1 refused (*why set); *len is its length.
	 * NULL unless xclient_ok. */
	int (*ehlo_reply)(const uint8_t *p, size_t n, size_t *len,
	    const char **why);
	/* Optional mode, after BACKEND: the backend's reply to the client's
	 * line at the start of p[0..n), *len its length. 1 the client's
	 * answer is in out (drawn from a positive reply, or the backend's
	 * refusal as it came: what the client would have had from the
	 * backend alone), 0 need more, -1 the session ends (*why set:
	 * malformed, oversized, the backend closing, out full). NULL unless a
	 * command may say BACKEND. */
	int (*query_reply)(struct starttls_session *s, const uint8_t *p,
	    size_t n, size_t *len, struct buf *out, const char **why);
};

/* One client's STARTTLS session. Treat as opaque outside starttls*.c. */
struct starttls_session {
	const struct starttls_driver *drv;
	const struct starttls_params *params;
	const char *why;	/* reason for the last closing verdict */
	const char *auth;	/* the first credentials refused before TLS
				   ("AUTH", "LOGIN", "bind"...), or NULL;
				   kept over the wipe: it is about the
				   client, for the log, not what it said */
	unsigned ncommands;	/* pre-TLS commands seen */
	unsigned max_commands;
	int phase;		/* private to starttls.c */
	int xc_return;		/* private: phase to resume after XCLIENT */
	unsigned greeted : 1;	/* private: the backend's greeting is eaten */
	unsigned xc_done : 1;	/* private: XCLIENT accepted, or not asked */
	size_t keep_len;	/* the client's line for a query (BACKEND) */
	uint8_t keep[STARTTLS_KEEP_MAX];
	_Alignas(16) uint8_t state[STARTTLS_STATE_MAX];
};

/* starttls_hostname_ok(h): 1 if h may be the name in a greeting: 1 to
 * STARTTLS_HOST_MAX ASCII letters, digits, '.' and '-' (nothing a client
 * could read as the end of a line or a second reply), else 0. */
int starttls_hostname_ok(const char *h);

/* starttls_init(s, drv, params): start a session. -1 if the hostname is
 * empty, too long or not [A-Za-z0-9.-], or params->optional is set for a
 * protocol other than SMTP. s holds no memory: nothing to free. */
int starttls_init(struct starttls_session *s, const struct starttls_driver *drv,
    const struct starttls_params *params);

/* starttls_greeting(s, out): append portier's pre-TLS greeting. 0, or -1 if
 * out is full. */
int starttls_greeting(struct starttls_session *s, struct buf *out);

/* starttls_client_input(s, in, out): consume the client's pre-TLS commands
 * from in and append replies to out. Returns AGAIN (a partial command may
 * stay in in), UPGRADE (in is empty and the session wiped; a backend
 * connected for BACKEND must be closed: the hand-over expects a new
 * one's greeting), PLAINTEXT,
 * BACKEND (the command is consumed, later bytes stay in in),
 * REPLY_AND_CLOSE, INJECTION (bytes followed STARTTLS, also when this is
 * called with bytes after UPGRADE) or ERROR. */
enum starttls_verdict starttls_client_input(struct starttls_session *s,
    struct buf *in, struct buf *out);

/* starttls_looks_like_tls(p, n): after UPGRADE, whether the first bytes from
 * the client open a TLS handshake record: 1 yes, 0 no (plaintext after
 * STARTTLS: an injection attempt), -1 too few bytes to tell. */
int starttls_looks_like_tls(const uint8_t *p, size_t n);

/* starttls_backend_input(s, from_backend, to_backend, to_client): the
 * hand-over after UPGRADE (client in TLS) or PLAINTEXT, and the query
 * after BACKEND. Call it when the backend connects (or, connected before,
 * when the phase starts), even with no bytes, and on every read from it.
 * It consumes the backend's greeting once (never forwarded), with
 * params->xclient sends EHLO and XCLIENT once and consumes their replies
 * (the backend must offer XCLIENT), and after BACKEND sends the client's
 * line (SMTP: its EHLO or HELO) and writes the driver's answer from the
 * reply to to_client. It needs no client byte: after TLS the client speaks first,
 * so RELAY comes as soon as the backend is ready.
 * Returns AGAIN, RESUME (after BACKEND; bytes left in from_backend wait
 * for the next call), RELAY (bytes left in from_backend go to the client
 * the way the relay's own do, through the protocol's filter) or
 * REPLY_AND_CLOSE (to_client holds the refusal). */
enum starttls_verdict starttls_backend_input(struct starttls_session *s,
    struct buf *from_backend, struct buf *to_backend, struct buf *to_client);

/* starttls_backend_awaited(s): what the hand-over or query waits for from
 * the backend, for a deadline's log line: "greeting", "reply to the
 * client's EHLO", ... */
const char *starttls_backend_awaited(const struct starttls_session *s);

/* starttls_client_may_flow(s): 1 once RELAY was said, else 0: client
 * bytes wait for the relay (and its filter), never pass during the
 * hand-over. The same as the verdict; to go once conn_starttls.c no longer
 * asks. */
int starttls_client_may_flow(const struct starttls_session *s);

/* starttls_bye(s, why, out): append the protocol's goodbye for why: SMTP
 * 421, IMAP * BYE, POP3 -ERR, LDAP Notice of Disconnection. 0, or -1. */
int starttls_bye(const struct starttls_session *s, enum starttls_bye why,
    struct buf *out);

/* starttls_why(s): a short reason for the last closing verdict, for the
 * log; never NULL. */
const char *starttls_why(const struct starttls_session *s);

/* starttls_cleartext_auth(s): the verb of the first command that tried to
 * send credentials before TLS (and was refused), or NULL: an admin's
 * fail2ban bans on it (issue 17). */
const char *starttls_cleartext_auth(const struct starttls_session *s);

/* --- for drivers --- */

/* starttls_hostname(s): the name portier greets with (hostname =), else
 * "localhost". */
const char *starttls_hostname(const struct starttls_session *s);

/* starttls_note_auth(s, verb): a driver refused credentials before TLS;
 * verb is a static string. Only the first is kept. */
void starttls_note_auth(struct starttls_session *s, const char *verb);

/* starttls_line(p, n, max, len, why): frame one line ending in LF (CRLF or
 * bare LF) of at most max bytes, terminator included: 1 and *len, 0 need
 * more, -1 too long. A line driver's frame. */
int starttls_line(const uint8_t *p, size_t n, size_t max, size_t *len,
    const char **why);

/* starttls_line_trim(p, len): length of line p[0..len) without its line
 * ending and trailing blanks. */
size_t starttls_line_trim(const uint8_t *p, size_t len);

/* starttls_say(text, v, out): append the reply text and CRLF; v, or ERROR
 * if out is full. A line driver's reply. */
enum starttls_verdict starttls_say(const char *text, enum starttls_verdict v,
    struct buf *out);

/* starttls_bye_line(s, why, out): the goodbye of s->drv->bye_words for
 * why (the PROTOCOL text for a reason it has none for). 0, or -1 if full. A
 * line driver's bye. */
int starttls_bye_line(const struct starttls_session *s, enum starttls_bye why,
    struct buf *out);

/* starttls_greeting_line(p, n, len, cl, why): frame a backend's one-line
 * greeting at the front of p[0..n): 1 with *len its length and *cl that
 * without the line ending and trailing blanks, 0 need more, -1 longer than
 * STARTTLS_REPLY_MAX (*why set). For a line driver's backend_greeting. */
int starttls_greeting_line(const uint8_t *p, size_t n, size_t *len,
    size_t *cl, const char **why);

/* starttls_word(p, n, kw, arg): 1 if p[0..n) starts with keyword kw
 * (ASCII case-insensitive) followed by the end or a space; *arg is then the
 * offset of the first non-space byte after it (n if none). 0 otherwise. */
int starttls_word(const uint8_t *p, size_t n, const char *kw, size_t *arg);

/* starttls_keep(s, p, n): remember line p[0..n) (no line ending), with
 * CRLF, for the backend to answer (a driver's BACKEND). -1 if it is too
 * long. */
int starttls_keep(struct starttls_session *s, const uint8_t *p, size_t n);

/* The drivers: each protocol's row in proto.c names its own (and tests
 * and fuzz targets drive them directly). */
extern const struct starttls_driver starttls_smtp;
extern const struct starttls_driver starttls_imap;
extern const struct starttls_driver starttls_pop3;
extern const struct starttls_driver starttls_ldap;
extern const struct starttls_driver starttls_ftp;

#endif
