#ifndef PORTIER_TLSCTX_INT_H
#define PORTIER_TLSCTX_INT_H

/* Between the files of the TLS module (tlsctx.c: contexts, callbacks and
 * connections; tlsctx_cert.c: loading and checking certificates;
 * tlsctx_bio.c: the socket under a connection); nobody else. */

#include <openssl/ssl.h>

#include <sys/types.h>

#include "cfg.h"
#include "diag.h"
#include "sni.h"
#include "tlsctx.h"

/* A file's bytes, read whole (tlsctx_file.c). */
struct tlsfile {
	uint8_t *p;                  /* len bytes, then a NUL */
	size_t len;
	mode_t mode;                 /* the file's, from fstat */
};

/* Bounds on a certificate file (a chain, perhaps with its key) and a key
 * file: a chain of ten 4096-bit RSA certificates is under 20 KiB. */
#define TLSCERT_FILE_MAX_BYTES (1024 * 1024)

/* tlsctx_file_read(path, max, holds, f, why, whylen): the whole of the
 * regular file at path, at most max bytes, into f, opened without blocking.
 * 0, or -1 with why (f empty): it cannot be opened or read, is not a
 * regular file, or is longer than max ("too long for " holds). */
int tlsctx_file_read(const char *path, size_t max, const char *holds,
                     struct tlsfile *f, char *why, size_t whylen);

/* tlsctx_file_free(f): wipe and release f's bytes; f itself stays. */
void tlsctx_file_free(struct tlsfile *f);

/* Ticket keys of one period (tlsctx_ticket.c). */
struct ticket_keys {
	uint8_t name[16];            /* SSL_TICKET_KEY_NAME_LEN, public */
	uint8_t aes[16];             /* AES-128-CBC */
	uint8_t hmac[32];            /* HMAC-SHA256 */
};

#define TLSTICKET_PERIOD_S 3600

/* A listener's ticket keys: a hash ratchet over wall-clock periods, so that
 * processes forked from one master agree on them. */
struct tlsticket {
	uint8_t secret[32];          /* of `period`; earlier ones are gone */
	uint64_t period;             /* seconds since the epoch / PERIOD */
	struct ticket_keys cur, prev;
	int have_prev;
};

/* One key of a ticket_keys file (tlsctx_ticketfile.c): 80 bytes are the
 * name, a 32-byte HMAC-SHA256 key and an AES-256 key; 48 bytes the name,
 * an AES-128 key and a 16-byte HMAC key (nginx's order for both). */
struct ticket_filekey {
	uint8_t name[16];
	uint8_t hmac[32];
	uint8_t aes[32];
	uint8_t hmac_len, aes_len;   /* 32, 32 or 16, 16 */
};

/* The keys of a ticket_keys file: keys[0] encrypts, all decrypt. */
struct tlsticket_file {
	struct ticket_filekey *keys;
	size_t n;
};

/* Bounds on a key file: it is a handful of lines. */
#define TLSTICKET_FILE_MAX_KEYS 64
#define TLSTICKET_FILE_MAX_BYTES 16384

/* tlsticket_file_parse(name, text, len, out, d): the keys in text (a key
 * file's contents; name for messages): one base64 line per key, blank
 * lines and '#' comments skipped; each problem to d as `name:line:`.
 * 0 with out filled (at least one key), or -1. */
int tlsticket_file_parse(const char *name, const char *text, size_t len,
                         struct tlsticket_file *out, struct diag *d);

/* tlsticket_file_load(path, out, cfgfile, line, section, d): read the key
 * file at path (refused, at cfgfile:line, when it cannot be read, is not
 * a regular file, is readable by everyone, is empty or too long), then
 * parse it. 0 or -1. */
int tlsticket_file_load(const char *path, struct tlsticket_file *out,
                        const char *cfgfile, int line, const char *section,
                        struct diag *d);

/* tlsticket_file_free(f): wipe and release f's keys; f itself stays. */
void tlsticket_file_free(struct tlsticket_file *f);

struct tlscert {
	SSL_CTX *ctx;
	struct sni_entry sni;
	int stapled;                 /* an OCSP response is set on ctx */
	int64_t staple_until;        /* its nextUpdate, or a day after thisUpdate */
	int staple_no_next;          /* the latter: it has no nextUpdate */
	int staple_lapsed;           /* past it, and said so (the master) */
};

struct tlsctx {
	struct tlscert *certs;       /* certs[0].ctx is the session context */
	size_t ncerts;
	struct sni_entry *entries;   /* sni view of certs, for sni_select() */
	uint8_t alpn[64];            /* wire form: length-prefixed id */
	size_t alpn_len;
	int port;
	enum cfg_proto proto;
	unsigned refs;               /* the owner plus every live tlsconn */
	int name_apart;              /* client: tlsctx_client_opts.name_apart */
	struct tlsticket ticket;     /* the ratchet, when tkfile.n == 0 */
	struct tlsticket_file tkfile;   /* ticket_keys = FILE */
};


/* tlsctx_configure(ctx, t, tls, listener): versions, suites, groups,
 * tickets and the callbacks, the same on every context of t, and the
 * session context of the listener named listener. 0 or -1. */
int tlsctx_configure(SSL_CTX *ctx, struct tlsctx *t, const struct cfg_tls *tls,
                     const char *listener);

/* tlsctx_x509_describe(x, info): what certificate x says about itself
 * (tlsctx_client.c; for a peer's and our own). The verification fields of
 * info are left as they are. */
void tlsctx_x509_describe(X509 *x, struct tlsctx_cert_info *info);

/* tlsctx_drain_errors(out, outlen): the first queued error as text; the
 * queue is cleared. Returns out. */
const char *tlsctx_drain_errors(char *out, size_t outlen);

/* tlsctx_load_cert(t, tc, c, l, cc, reload, d): a context for
 * certificate cc of listener l, checked (key, chain order, dates, names),
 * with its OCSP response (tlsctx_staple_load); problems to d. 0, or -1
 * when it cannot be used. */
int tlsctx_load_cert(struct tlsctx *t, struct tlscert *tc, const struct cfg *c,
                     const struct cfg_listener *l, const struct cfg_cert *cc,
                     int reload, struct diag *d);

/* tlsctx_staple_load(tc, chain, c, l, cc, reload, d): read cc->ocsp (a
 * DER OCSP response), check it against chain's leaf and its issuer (the
 * certificate after it) and staple it on tc->ctx (tlsctx_staple.c). A
 * problem is an error in d; with reload, or when the response is only out
 * of date, a warning and no staple.
 * 0, or -1 when not stapled. */
int tlsctx_staple_load(struct tlscert *tc, STACK_OF(X509) *chain, const struct cfg *c,
                       const struct cfg_listener *l, const struct cfg_cert *cc,
                       int reload, struct diag *d);

/* tlsctx_bio_new(fd): a BIO over socket fd that reads a whole record at a
 * time; NULL on ENOMEM. The SSL that gets it frees it. */
BIO *tlsctx_bio_new(int fd);
/* tlsctx_bio_fd(b): the socket under b. */
int tlsctx_bio_fd(BIO *b);
/* tlsctx_bio_readable(b): the poller says the socket is readable. */
void tlsctx_bio_readable(BIO *b);
/* tlsctx_bio_record_ready(b): a whole TLS record is read ahead. */
int tlsctx_bio_record_ready(BIO *b);
/* tlsctx_bio_spoke(b): the socket ever gave bytes. */
int tlsctx_bio_spoke(BIO *b);
/* tlsctx_bio_drained(b): the last read came back short or empty, and no
 * readable event came since. */
int tlsctx_bio_drained(BIO *b);

/* tlsticket_init(tk, now): a fresh random secret for the period of now
 * (seconds since the epoch). 0 or -1. */
int tlsticket_init(struct tlsticket *tk, uint64_t now);

/* tlsticket_advance(tk, now): move to now's period if it is later, keeping
 * the previous period's keys for decryption. */
void tlsticket_advance(struct tlsticket *tk, uint64_t now);

/* tlsticket_wipe(tk): forget every secret. */
void tlsticket_wipe(struct tlsticket *tk);

/* tlsticket_cb: BoringSSL's ticket key callback, for every context of t. */
int tlsticket_cb(SSL *ssl, uint8_t *name, uint8_t *iv, EVP_CIPHER_CTX *cctx,
                 HMAC_CTX *hctx, int encrypt);

/* tlsctx_client_reason(tc, out, outlen): the last failure of client
 * connection tc in a client's words (the server's certificate, version or
 * alert) into out, clearing the error queue; NULL, the queue untouched,
 * when tc is a server connection or the general wording of tlsctx_error()
 * fits. tlsctx_error() is meant to try it first (tlsctx_client.c). */
const char *tlsctx_client_reason(const struct tlsconn *tc, char *out, size_t outlen);

#endif
