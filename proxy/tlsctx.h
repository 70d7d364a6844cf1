#ifndef PORTIER_TLSCTX_H
#define PORTIER_TLSCTX_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cfg.h"
#include "diag.h"

/*
 * The TLS module: every BoringSSL call of portier lives in tlsctx.c.
 * A struct tlsctx is the server side of one listener (its certificates,
 * policy, ALPN and ticket keys); a struct tlsconn is one connection's TLS
 * state, reading and writing the socket it was given.
 */

struct tlsctx;
struct tlsconn;

/* Outcome of a TLS operation on a non-blocking socket. */
enum tlsctx_io {
	TLSCTX_OK,
	TLSCTX_WANT_READ,    /* call again when the socket is readable */
	TLSCTX_WANT_WRITE,   /* call again when the socket is writable */
	TLSCTX_CLOSED,       /* the peer sent close_notify */
	TLSCTX_EOF,          /* the transport ended without close_notify */
	TLSCTX_ERROR         /* fatal; tlsctx_error() says why */
};

/* Why a handshake failed, for counting (tlsctx_failure); the log line has
 * the words. */
enum tlsctx_fail {
	TLSCTX_FAIL_OTHER,
	TLSCTX_FAIL_VERSION,     /* the client's version is too old */
	TLSCTX_FAIL_CIPHER,      /* no shared cipher suite */
	TLSCTX_FAIL_GROUP,       /* no shared key-exchange group */
	TLSCTX_FAIL_ALPN,        /* only foreign ALPN protocol ids */
	TLSCTX_FAIL_PLAINTEXT,   /* not TLS at all: plaintext on a TLS port */
	TLSCTX_FAIL_MALFORMED,
	TLSCTX_FAIL_ALERT,       /* the client sent an alert */
	TLSCTX_FAIL_RESET        /* the client's transport broke */
};

/* What the close log line reports about a connection. */
struct tlsctx_info {
	const char *version;    /* "TLSv1.3" */
	uint16_t version_id;    /* 0x0304 */
	const char *cipher;     /* IETF name */
	const char *sni;        /* NULL when none was sent */
	int resumed;
};

/* tlsctx_new_server(c, l, reload, d): build the server context of
 * listener l: load and check every certificate (key matches, chain order,
 * names, expiry) and its OCSP response, apply the policy. Problems go to d.
 * NULL on any error. With reload 1 an OCSP response that cannot be
 * stapled is a warning (that certificate goes without), not an error: a
 * reload that brings new certificates must not fail on an old response. */
struct tlsctx *tlsctx_new_server(const struct cfg *c, const struct cfg_listener *l,
                                 int reload, struct diag *d);

/* tlsctx_free(t): release t; NULL is a no-op. Connections made from t hold
 * their own references, so t may go while they finish (reload). */
void tlsctx_free(struct tlsctx *t);

/* tlsctx_tick(t, now): move t's session-ticket keys to the period of now
 * (seconds since the epoch), forgetting keys too old to accept. Serving
 * does this by itself; a process that only holds t (the master) calls it
 * so that old keys do not outlive their use in its memory. NULL no-op. */
void tlsctx_tick(struct tlsctx *t, time_t now);

/* tlsctx_keep_tickets(to, from): to takes over from's ticket keys, so that
 * sessions of from resume on to (a reload). Either may be NULL: no-op. */
void tlsctx_keep_tickets(struct tlsctx *to, const struct tlsctx *from);

/* tlsctx_accept(t, fd): TLS server state for an accepted socket. NULL on
 * ENOMEM. */
struct tlsconn *tlsctx_accept(struct tlsctx *t, int fd);

/* tlsctx_bind_session(tc, id, n): before the handshake, tie the sessions
 * tc makes and resumes to id (at most 32 bytes): a session resumes only on
 * a connection bound to the same id. An FTP control connection and its data
 * connections share one, so that "resumed" on a data connection means "the
 * control connection's client". 0, or -1. */
int tlsctx_bind_session(struct tlsconn *tc, const uint8_t *id, size_t n);

/* tlsctx_conn_free(tc): release tc without sending anything; NULL no-op. */
void tlsctx_conn_free(struct tlsconn *tc);

/* tlsctx_handshake(tc): drive the handshake. TLSCTX_OK once done. */
enum tlsctx_io tlsctx_handshake(struct tlsconn *tc);

/* tlsctx_read(tc, p, n, got): decrypt up to n bytes into p. */
enum tlsctx_io tlsctx_read(struct tlsconn *tc, uint8_t *p, size_t n, size_t *got);

/* tlsctx_ready(tc): a read would return bytes without the socket:
 * BoringSSL holds decrypted bytes, or a whole record was read ahead. Such
 * bytes never make the socket readable again, so the caller must come back
 * for them by itself (and only then: a partial record waits for the
 * socket). */
int tlsctx_ready(const struct tlsconn *tc);

/* tlsctx_readable(tc): the socket became readable (a poller's event);
 * until then, after a short read, reads answer WANT_READ without a
 * syscall. The poller must be level-triggered. */
void tlsctx_readable(struct tlsconn *tc);

/* tlsctx_drained(tc): nothing is buffered and the last read of the socket
 * came back short, so another read would find nothing (until the next
 * readable event): the caller may skip it. */
int tlsctx_drained(const struct tlsconn *tc);

/* tlsctx_write(tc, p, n, put): encrypt and send up to n bytes. After
 * WANT_*, call again with at least the same bytes (they may have moved). */
enum tlsctx_io tlsctx_write(struct tlsconn *tc, const uint8_t *p, size_t n, size_t *put);

/* tlsctx_close_notify(tc): send close_notify (our half-close). */
enum tlsctx_io tlsctx_close_notify(struct tlsconn *tc);

/* tlsctx_error(tc, out, outlen): a reason a person understands for the
 * last failure (handshake or I/O), draining BoringSSL's error queue.
 * For a client that spoke plaintext it says which port or scheme to use. */
const char *tlsctx_error(struct tlsconn *tc, char *out, size_t outlen);

/* tlsctx_failure(tc, out, outlen, why): tlsctx_error(), and which kind of
 * failure it was in *why. */
const char *tlsctx_failure(struct tlsconn *tc, char *out, size_t outlen,
                           enum tlsctx_fail *why);

/* tlsctx_spoke_plaintext(tc): the last failure was a non-TLS first record. */
int tlsctx_spoke_plaintext(const struct tlsconn *tc);

/* tlsctx_client_spoke(tc): any byte arrived from the peer (a partial
 * ClientHello is not a silent plaintext client; timeout messages). */
int tlsctx_client_spoke(const struct tlsconn *tc);

/* tlsctx_hello_seen(tc): a ClientHello arrived (for timeout messages). */
int tlsctx_hello_seen(const struct tlsconn *tc);

/* tlsctx_describe(tc, info): version, cipher, SNI, resumption. */
void tlsctx_describe(const struct tlsconn *tc, struct tlsctx_info *info);

/* tlsctx_library(): which BoringSSL build portier runs on. */
const char *tlsctx_library(void);

/* ---- the client role: `portier probe`, ACME, TLS towards backends ---- */

struct tlsctx_client_opts {
	const char *cafile;   /* PEM bundle; NULL: the system store
	                         (/etc/ssl/certs/ca-certificates.crt) */
	int verify;           /* 0: accept any certificate (a probe reports
	                         instead: tlsctx_peer_cert) */
	int min_version_12;   /* 1: TLS 1.2 and 1.3 with the server's AEAD
	                         suites; 0: down to TLS 1.0 and every suite this
	                         BoringSSL speaks, for probing old servers */
	const char *alpn;     /* "h2,http/1.1" offered in that order, or NULL */
	int name_apart;       /* 1: the sni of tlsctx_connect() is sent but
	                         left out of the chain's verification, so a
	                         probe reports chain and name apart
	                         (tlsctx_peer_name_matches) */
};

/* tlsctx_new_client(o, d): a client context. Certificates are verified
 * against o->cafile, fatally with o->verify; without it a missing system
 * store is no error. Problems go to d; NULL on any. Free with
 * tlsctx_free(); connections hold references as on the server side. */
struct tlsctx *tlsctx_new_client(const struct tlsctx_client_opts *o, struct diag *d);

/* tlsctx_connect(t, fd, sni): TLS client state over connected socket fd,
 * for client context t. A host name sni is sent as SNI and is the name the
 * certificate must carry; an IP address is only checked against the
 * certificate's IP names; NULL sends none and checks the chain only.
 * Drive it with tlsctx_handshake(). NULL on ENOMEM or an unusable sni. */
struct tlsconn *tlsctx_connect(struct tlsctx *t, int fd, const char *sni);

/* tlsctx_pin_version(tc, v): client connection tc offers exactly TLS
 * version v (0x0301 TLS 1.0 .. 0x0304 TLS 1.3), to learn whether a server
 * accepts it. Before the handshake. 0, or -1 for a version this build
 * cannot speak. */
int tlsctx_pin_version(struct tlsconn *tc, uint16_t v);

/* What a client learns of the session, beyond tlsctx_describe(). */
struct tlsctx_session {
	const char *version;    /* "TLSv1.3" */
	uint16_t version_id;    /* 0x0304 */
	const char *cipher;     /* IETF name, "" when none */
	const char *group;      /* key exchange group, "X25519"; "" when none */
	int ocsp_stapled;       /* the server stapled an OCSP response */
};

/* tlsctx_session(tc, s): after a successful handshake of client tc. */
void tlsctx_session(const struct tlsconn *tc, struct tlsctx_session *s);

/* tlsctx_peer_name_matches(tc, name): 1 when the peer's leaf certificate
 * carries host name or IP address name in its subjectAltName (wildcards
 * per RFC 6125, not partial), 2 when only its subject CN names the host,
 * the certificate having no subjectAltName at all (what OpenSSL's clients
 * still take and browsers refuse; BoringSSL reads no CN beside one of
 * addresses only), 0 when neither, -1 when the peer sent no certificate. */
int tlsctx_peer_name_matches(const struct tlsconn *tc, const char *name);

/* tlsctx_client_failure(tc, out, outlen, not_tls): tlsctx_error() for a
 * client connection whose handshake failed, and whether the server
 * answered with something that is not TLS at all (*not_tls = 1). */
const char *tlsctx_client_failure(struct tlsconn *tc, char *out, size_t outlen, int *not_tls);

/* tlsctx_client_name_refused(tc): 1 when the failure tlsctx_client_failure()
 * is about to describe is the server's unrecognized_name alert (it has no
 * certificate for the name sent, or for a ClientHello without one), else 0.
 * Call it first: tlsctx_client_failure() drains the error queue it reads. */
int tlsctx_client_name_refused(const struct tlsconn *tc);

#define TLSCTX_CERT_MAX_SANS 16
#define TLSCTX_CERT_NAME_MAX 256

/* The peer's leaf certificate, as `portier probe` prints it. Text fields
 * are NUL-terminated, cut to fit, control characters replaced by '?'. */
struct tlsctx_cert_info {
	char subject_cn[TLSCTX_CERT_NAME_MAX];   /* "" when it has no CN */
	char sans[TLSCTX_CERT_MAX_SANS][TLSCTX_CERT_NAME_MAX];   /* DNS and IP */
	size_t nsans;         /* kept in sans */
	size_t nsans_total;   /* in the certificate; more than nsans: cut */
	char issuer[512];     /* RFC 2253: "CN=R3,O=Let's Encrypt,C=US" */
	char serial[80];      /* hex */
	time_t not_before, not_after;
	char key_type[16];    /* "RSA", "EC", "Ed25519", "other" */
	int key_bits;
	int verified;         /* chain and name verified against the CA file */
	char verify_error[128];   /* why not, when !verified */
	int verify_dates_only;    /* !verified only for the leaf's dates
	                             (expired, not yet valid): chain and
	                             signatures are fine */
};

/* tlsctx_peer_cert(tc, info): fill info from the certificate the peer
 * sent; also after a handshake that failed on it (to say why). -1 when the
 * peer sent none (yet). */
int tlsctx_peer_cert(const struct tlsconn *tc, struct tlsctx_cert_info *info);

/* tlsctx_own_cert(t, i, info): the same for the i-th certificate server
 * context t serves, in the order of the listener's cert lines (expiry
 * warnings, metrics); verified is 0 (nothing checked here). -1 when there
 * is no such certificate. */
int tlsctx_own_cert(const struct tlsctx *t, size_t i, struct tlsctx_cert_info *info);

/* tlsctx_staple_lapsed(t, i, now, until): 1 the first time the OCSP
 * response stapled to the i-th certificate of server context t is found
 * past its nextUpdate at now (*until set to it): handshakes no longer get
 * it, and the caller says so once; 2 the same for a response without
 * nextUpdate, a day past its thisUpdate (*until). 0 otherwise (none
 * stapled, still good, or said before), -1 when there is no such
 * certificate. */
int tlsctx_staple_lapsed(struct tlsctx *t, size_t i, time_t now, time_t *until);

/* tlsctx_file_cert(path, info): fill info (but for the verification
 * fields, left 0) from the first certificate of PEM file path: what a
 * config's cert file serves, to compare with what a server sent. -1 when
 * there is none to read. */
int tlsctx_file_cert(const char *path, struct tlsctx_cert_info *info);

/* tlsctx_alpn_selected(tc, out, outlen): the protocol id both sides
 * agreed on, "" when none; either role. Returns out. */
const char *tlsctx_alpn_selected(const struct tlsconn *tc, char *out, size_t outlen);

#endif
