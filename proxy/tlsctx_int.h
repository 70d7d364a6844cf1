#ifndef PORTIER_TLSCTX_INT_H
#define PORTIER_TLSCTX_INT_H

/* Between the files of the TLS module (tlsctx.c: contexts, callbacks and
 * connections; tlsctx_cert.c: loading and checking certificates;
 * tlsctx_bio.c: the socket under a connection); nobody else. */

#include <openssl/ssl.h>

#include "cfg.h"
#include "diag.h"
#include "sni.h"
#include "tlsctx.h"

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

struct tlscert {
	SSL_CTX *ctx;
	struct sni_entry sni;
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
	struct tlsticket ticket;
};


/* tlsctx_configure(ctx, t, tls): versions, suites, groups, tickets and the
 * callbacks, the same on every context of t. 0 or -1. */
int tlsctx_configure(SSL_CTX *ctx, struct tlsctx *t, const struct cfg_tls *tls);

/* tlsctx_x509_describe(x, info): what certificate x says about itself
 * (tlsctx_client.c; for a peer's and our own). The verification fields of
 * info are left as they are. */
void tlsctx_x509_describe(X509 *x, struct tlsctx_cert_info *info);

/* tlsctx_drain_errors(out, outlen): the first queued error as text; the
 * queue is cleared. Returns out. */
const char *tlsctx_drain_errors(char *out, size_t outlen);

/* tlsctx_load_cert(t, tc, c, l, cc, d): a context for certificate cc of
 * listener l, checked (key, chain order, dates, names); problems to d.
 * 0, or -1 when it cannot be used. */
int tlsctx_load_cert(struct tlsctx *t, struct tlscert *tc, const struct cfg *c,
                     const struct cfg_listener *l, const struct cfg_cert *cc,
                     struct diag *d);

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
