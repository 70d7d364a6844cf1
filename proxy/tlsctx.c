#include "tlsctx.h"
#include "buf.h"
#include "cfg_lint.h"
#include "sni.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* TLS 1.2 suites of Mozilla's "intermediate": ECDHE key exchange, AEAD
 * only. TLS 1.3 suites are all AEAD and fixed by BoringSSL. */
#define TLS12_SUITES                                                          \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"          \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"          \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

#define EXPIRY_WARN_DAYS 30

/* Problems with a certificate are reported where its line is. */
#define SECTION(l, cc) ((cc)->inherited ? "tls" : (l)->name)

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
};

/* Per-connection flags live in the SSL's ex_data, so that a tlsconn is
 * just the SSL and costs no allocation of its own. */
#define FLAG_HELLO     1u
#define FLAG_PLAINTEXT 2u
static int flags_index = -1;

static SSL *ssl_of(const struct tlsconn *tc)
{
	return (SSL *)tc;
}

static unsigned conn_flags(const SSL *ssl)
{
	return (unsigned)(uintptr_t)SSL_get_ex_data(ssl, flags_index);
}

static void conn_flag(SSL *ssl, unsigned f)
{
	SSL_set_ex_data(ssl, flags_index, (void *)(uintptr_t)(conn_flags(ssl) | f));
}

/* Reads the first error of the queue as "lib: reason" and clears it. */
static const char *drain_errors(char *out, size_t outlen)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(out, outlen, "%s", errno ? strerror(errno) : "unknown error");
	else
		ERR_error_string_n(e, out, outlen);
	ERR_clear_error();
	return out;
}

/* ---- loading and checking certificates ---- */

static int offers_tls13(const SSL_CLIENT_HELLO *ch)
{
	const uint8_t *data;
	size_t len;
	CBS ext, list;
	uint16_t v;

	if (!SSL_early_callback_ctx_extension_get(ch, TLSEXT_TYPE_supported_versions,
	                                          &data, &len))
		return 0;
	CBS_init(&ext, data, len);
	if (!CBS_get_u8_length_prefixed(&ext, &list))
		return 0;
	while (CBS_get_u16(&list, &v))
		if (v == TLS1_3_VERSION)
			return 1;
	return 0;
}

static int offers_ecdsa_suite(const SSL_CLIENT_HELLO *ch)
{
	CBS list;
	uint16_t id;

	CBS_init(&list, ch->cipher_suites, ch->cipher_suites_len);
	while (CBS_get_u16(&list, &id))
		if (id == 0xc02b || id == 0xc02c || id == 0xcca9)
			return 1;   /* ECDHE-ECDSA with AES-GCM or ChaCha20 */
	return 0;
}

/* Whether an ECDSA certificate will do for this client: it must accept
 * ECDSA signatures, and in TLS 1.2 also offer an ECDHE-ECDSA suite (a
 * client may sign-check ECDSA yet offer only ECDHE-RSA suites). */
static int client_takes_ecdsa(const SSL_CLIENT_HELLO *ch)
{
	const uint8_t *data;
	size_t len;
	CBS ext, list;
	uint16_t alg;
	int sigalg = 0;

	if (!SSL_early_callback_ctx_extension_get(ch, TLSEXT_TYPE_signature_algorithms,
	                                          &data, &len))
		return 0;
	CBS_init(&ext, data, len);
	if (!CBS_get_u16_length_prefixed(&ext, &list))
		return 0;
	while (!sigalg && CBS_get_u16(&list, &alg))
		/* ecdsa_secp{256,384,521}r1_sha{256,384,512} */
		sigalg = (alg >> 8) >= 0x04 && (alg >> 8) <= 0x06 && (alg & 0xff) == 0x03;
	return sigalg && (offers_tls13(ch) || offers_ecdsa_suite(ch));
}

static enum ssl_select_cert_result_t select_cert(const SSL_CLIENT_HELLO *ch)
{
	SSL *ssl = ch->ssl;
	struct tlsctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	size_t i;

	conn_flag(ssl, FLAG_HELLO);
	if (t->ncerts > 1) {
		i = sni_select(t->entries, t->ncerts, host, client_takes_ecdsa(ch));
		if (i != 0 && SSL_set_SSL_CTX(ssl, t->certs[i].ctx) == NULL)
			return ssl_select_cert_error;
	}
	return ssl_select_cert_success;
}

/* ALPACA defence: a client that offers ALPN must offer ours. */
static int select_alpn(SSL *ssl, const uint8_t **out, uint8_t *outlen,
                       const uint8_t *in, unsigned inlen, void *arg)
{
	struct tlsctx *t = arg;
	CBS list, id;

	if (t->alpn_len == 0)
		return SSL_TLSEXT_ERR_NOACK;
	CBS_init(&list, in, inlen);
	while (CBS_get_u8_length_prefixed(&list, &id)) {
		if (CBS_len(&id) == t->alpn_len - 1 &&
		    memcmp(CBS_data(&id), t->alpn + 1, CBS_len(&id)) == 0) {
			*out = t->alpn + 1;
			*outlen = (uint8_t)(t->alpn_len - 1);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int configure(SSL_CTX *ctx, struct tlsctx *t, const struct cfg_tls *tls)
{
	uint16_t min = tls->policy == CFG_POLICY_MODERN ? TLS1_3_VERSION
	                                                  : (uint16_t)tls->min_version;

	SSL_CTX_set_app_data(ctx, t);
	if (!SSL_CTX_set_min_proto_version(ctx, min) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_strict_cipher_list(ctx, TLS12_SUITES) ||
	    !SSL_CTX_set1_curves_list(ctx, tls->curves))
		return -1;
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Stateless resumption only: tickets (TLS 1.2 and 1.3) with keys
	 * BoringSSL keeps in memory and rotates; no server-side cache to
	 * grow with clients. No 0-RTT: early data is off by default. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* One TLS 1.3 ticket per handshake, not two: each costs a sealing
	 * and bytes on the wire, and a resuming client gets a fresh one. */
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_select_certificate_cb(ctx, select_cert);
	SSL_CTX_set_alpn_select_cb(ctx, select_alpn, t);
	return 0;
}

static int add_name(struct sni_entry *e, const char *name, size_t len)
{
	char **names;

	if (memchr(name, '\0', len) != NULL)
		return 0;   /* embedded NUL: not a name we will ever match */
	if ((names = realloc(e->names, (e->nnames + 1) * sizeof(*names))) == NULL)
		return -1;
	e->names = names;
	if ((names[e->nnames] = strndup(name, len)) == NULL)
		return -1;
	e->nnames++;
	return 0;
}

static int collect_names(X509 *x, struct sni_entry *e)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int rc = 0;

	if (gens != NULL) {
		for (size_t i = 0; i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
			if (g->type == GEN_DNS)
				rc = add_name(e, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
				              (size_t)ASN1_STRING_length(g->d.dNSName));
		}
		GENERAL_NAMES_free(gens);
		return rc;
	}
	/* No SAN at all: fall back to the subject CN, as clients used to. */
	int idx = X509_NAME_get_index_by_NID(X509_get_subject_name(x), NID_commonName, -1);
	if (idx >= 0) {
		ASN1_STRING *cn = X509_NAME_ENTRY_get_data(
			X509_NAME_get_entry(X509_get_subject_name(x), idx));
		rc = add_name(e, (const char *)ASN1_STRING_get0_data(cn),
		              (size_t)ASN1_STRING_length(cn));
	}
	return rc;
}

/* Reads every certificate of a PEM file, leaf first. */
static STACK_OF(X509) *read_chain(const char *path)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	BIO *bio = BIO_new_file(path, "r");
	X509 *x;

	if (chain == NULL || bio == NULL) {
		BIO_free(bio);
		sk_X509_free(chain);
		return NULL;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(chain, x)) {
			X509_free(x);
			break;
		}
	ERR_clear_error();   /* the loop ends on "no start line" */
	BIO_free(bio);
	return chain;
}

static void check_chain(STACK_OF(X509) *chain, const struct cfg *c,
                        const struct cfg_listener *l, const struct cfg_cert *cc,
                        struct diag *d)
{
	for (size_t i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		int days, secs;
		const char *what = i == 0 ? "certificate" : "chain certificate";

		if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
			diag_add(d, 0, c->file, cc->line, SECTION(l, cc), "cert", "%s: %s %zu is "
			         "not valid yet; check the clock or the certificate",
			         cc->cert, what, i + 1);
		if (!ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)))
			continue;
		if (days < 0 || (days == 0 && secs <= 0))
			diag_add(d, 0, c->file, cc->line, SECTION(l, cc), "cert", "%s: %s %zu "
			         "expired %d days ago; renew it", cc->cert, what, i + 1, -days);
		else if (days < EXPIRY_WARN_DAYS)
			diag_add(d, 1, c->file, cc->line, SECTION(l, cc), "cert", "%s: %s %zu "
			         "expires in %d days (%s); renew it soon", cc->cert, what,
			         i + 1, days, days < 7 ? "under 7" : days < 14 ? "under 14"
			                                                     : "under 30");
		if (i + 1 < sk_X509_num(chain)) {
			X509 *issuer = sk_X509_value(chain, i + 1);
			EVP_PKEY *pk = X509_get_pubkey(issuer);
			int ok = X509_check_issued(issuer, x) == X509_V_OK &&
			         pk != NULL && X509_verify(x, pk) == 1;
			EVP_PKEY_free(pk);
			ERR_clear_error();
			if (!ok)
				diag_add(d, 0, c->file, cc->line, SECTION(l, cc), "cert", "%s: "
				         "certificate %zu is not signed by certificate %zu; "
				         "put the leaf first, then each issuer in order",
				         cc->cert, i + 1, i + 2);
		}
	}
}

static int load_cert(struct tlsctx *t, struct tlscert *tc, const struct cfg *c,
                     const struct cfg_listener *l, const struct cfg_cert *cc,
                     struct diag *d)
{
	const char *keyfile = cc->key ? cc->key : cc->cert;
	char err[256];
	STACK_OF(X509) *chain;
	int ktype;

	if ((tc->ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    configure(tc->ctx, t, &l->tls) < 0) {
		diag_add(d, 0, c->file, cc->line, SECTION(l, cc), "curves", "%s",
		         drain_errors(err, sizeof(err)));
		return -1;
	}
	if ((chain = read_chain(cc->cert)) == NULL || sk_X509_num(chain) == 0) {
		diag_add(d, 0, c->file, cc->line, SECTION(l, cc), "cert", "%s: %s", cc->cert,
		         errno == ENOENT || errno == EACCES ? strerror(errno)
		         : "no PEM certificate in it; expected -----BEGIN CERTIFICATE-----");
		sk_X509_pop_free(chain, X509_free);
		return -1;
	}
	if (!SSL_CTX_use_certificate_chain_file(tc->ctx, cc->cert)) {
		diag_add(d, 0, c->file, cc->line, SECTION(l, cc), "cert", "%s: %s", cc->cert,
		         drain_errors(err, sizeof(err)));
		sk_X509_pop_free(chain, X509_free);
		return -1;
	}
	if (!SSL_CTX_use_PrivateKey_file(tc->ctx, keyfile, SSL_FILETYPE_PEM)) {
		diag_add(d, 0, c->file, cc->key ? cc->key_line : cc->line, SECTION(l, cc),
		         "key", "%s: %s", keyfile,
		         ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH
		         ? "private key does not match the certificate"
		         : cc->key ? "cannot read a PEM private key"
		                   : "no private key in the cert file; add 'key = /path'");
		ERR_clear_error();
		sk_X509_pop_free(chain, X509_free);
		return -1;
	}
	check_chain(chain, c, l, cc, d);
	if (collect_names(sk_X509_value(chain, 0), &tc->sni) < 0 || tc->sni.nnames == 0)
		diag_add(d, 0, c->file, cc->line, SECTION(l, cc), "cert", "%s: the certificate "
		         "names no DNS host (no subjectAltName, no CN); clients cannot "
		         "verify it", cc->cert);
	{
		EVP_PKEY *pk = X509_get_pubkey(sk_X509_value(chain, 0));
		ktype = pk ? EVP_PKEY_id(pk) : EVP_PKEY_NONE;
		EVP_PKEY_free(pk);
	}
	tc->sni.ecdsa = ktype == EVP_PKEY_EC;
	sk_X509_pop_free(chain, X509_free);
	return 0;
}

struct tlsctx *tlsctx_new_server(const struct cfg *c, const struct cfg_listener *l,
                                 struct diag *d)
{
	struct tlsctx *t;
	int errors = d->errors;
	size_t alen = strlen(l->alpn ? l->alpn : "");

	if (flags_index < 0)
		flags_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->refs = 1;
	t->port = cfg_listener_port(l);
	t->proto = l->proto;
	if (alen > 0 && alen < sizeof(t->alpn)) {
		t->alpn[0] = (uint8_t)alen;
		memcpy(t->alpn + 1, l->alpn, alen);
		t->alpn_len = alen + 1;
	}
	t->certs = calloc(l->tls.ncerts ? l->tls.ncerts : 1, sizeof(*t->certs));
	t->entries = calloc(l->tls.ncerts ? l->tls.ncerts : 1, sizeof(*t->entries));
	if (t->certs == NULL || t->entries == NULL) {
		tlsctx_free(t);
		return NULL;
	}
	for (size_t i = 0; i < l->tls.ncerts; i++) {
		t->ncerts++;
		load_cert(t, &t->certs[i], c, l, &l->tls.certs[i], d);
		t->entries[i] = t->certs[i].sni;
	}
	if (d->errors > errors || t->ncerts == 0) {
		tlsctx_free(t);
		return NULL;
	}
	return t;
}

static void tlsctx_unref(struct tlsctx *t)
{
	if (t == NULL || --t->refs > 0)
		return;
	for (size_t i = 0; i < t->ncerts; i++) {
		SSL_CTX_free(t->certs[i].ctx);
		for (size_t j = 0; j < t->certs[i].sni.nnames; j++)
			free(t->certs[i].sni.names[j]);
		free(t->certs[i].sni.names);
	}
	free(t->certs);
	free(t->entries);
	free(t);
}

void tlsctx_free(struct tlsctx *t)
{
	tlsctx_unref(t);
}

/* ---- the socket under a connection ---- */

/* BoringSSL reads a record's 5-byte header, then its body: two read(2)s
 * per record on a plain socket BIO. This one reads up to a whole record at
 * once and keeps what BoringSSL did not ask for yet, in memory held only
 * while there is some. */
#define READ_AHEAD BUF_CAP    /* what is kept must fit one buf */

struct sockbio {
	int fd;
	int drained;         /* the last read(2) got less than it asked for,
	                        and no readable event came since */
	struct buf ahead;
};

static BIO_METHOD *sockbio_method;

static int sockbio_read(BIO *b, char *out, int len)
{
	struct sockbio *s = BIO_get_data(b);
	uint8_t tmp[READ_AHEAD + 1];
	ssize_t r;
	size_t n;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (s->ahead.len) {
		n = s->ahead.len < (size_t)len ? s->ahead.len : (size_t)len;
		memcpy(out, buf_peek(&s->ahead), n);
		buf_consume(&s->ahead, n);
		return (int)n;
	}
	/* Known empty: answer "try later" without asking the kernel (after a
	 * flight, BoringSSL reads at once for the peer's reply). */
	if (s->drained) {
		BIO_set_retry_read(b);
		return -1;
	}
	if ((size_t)len >= sizeof(tmp)) {
		r = read(s->fd, out, (size_t)len);
		s->drained = r < len;
	} else {
		/* At most READ_AHEAD bytes are left over to keep. */
		size_t want = (size_t)len + READ_AHEAD < sizeof(tmp)
		              ? (size_t)len + READ_AHEAD : sizeof(tmp);
		r = read(s->fd, tmp, want);
		s->drained = r < (ssize_t)want;
		if (r > len && buf_append(&s->ahead, tmp + len, (size_t)r - (size_t)len) < 0)
			return -1;
		if (r > 0)
			memcpy(out, tmp, r > len ? (size_t)len : (size_t)r);
		if (r > len)
			r = len;
	}
	if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
		s->drained = 1;
		BIO_set_retry_read(b);
	}
	return (int)r;
}

static int sockbio_write(BIO *b, const char *in, int len)
{
	struct sockbio *s = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	r = send(s->fd, in, (size_t)len, MSG_NOSIGNAL);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)r;
}

static long sockbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int sockbio_destroy(BIO *b)
{
	struct sockbio *s = BIO_get_data(b);

	if (s != NULL) {
		buf_reset(&s->ahead);
		free(s);
	}
	BIO_set_data(b, NULL);
	return 1;
}

static BIO *sockbio_new(int fd)
{
	struct sockbio *s;
	BIO *b;

	if (sockbio_method == NULL) {
		BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOCKET, "portier socket");
		if (m == NULL || !BIO_meth_set_read(m, sockbio_read) ||
		    !BIO_meth_set_write(m, sockbio_write) ||
		    !BIO_meth_set_ctrl(m, sockbio_ctrl) ||
		    !BIO_meth_set_destroy(m, sockbio_destroy)) {
			BIO_meth_free(m);
			return NULL;
		}
		sockbio_method = m;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((b = BIO_new(sockbio_method)) == NULL) {
		free(s);
		return NULL;
	}
	s->fd = fd;
	BIO_set_data(b, s);
	BIO_set_init(b, 1);
	return b;
}

/* ---- connections ---- */

struct tlsconn *tlsctx_accept(struct tlsctx *t, int fd)
{
	SSL *ssl = SSL_new(t->certs[0].ctx);

	BIO *bio;

	if (ssl == NULL)
		return NULL;
	if ((bio = sockbio_new(fd)) == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_bio(ssl, bio, bio);   /* one BIO both ways; the SSL owns it */
	SSL_set_accept_state(ssl);
	/* Free the handshake configuration once it is done: an idle
	 * connection should hold keys and buffers, nothing else. */
	SSL_set_shed_handshake_config(ssl, 1);
	t->refs++;
	return (struct tlsconn *)ssl;
}

void tlsctx_conn_free(struct tlsconn *tc)
{
	SSL *ssl = ssl_of(tc);
	struct tlsctx *t;

	if (ssl == NULL)
		return;
	/* Every context of one tlsctx points back at it. */
	t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	SSL_free(ssl);
	tlsctx_unref(t);
}

static enum tlsctx_io map_result(SSL *ssl, int rc)
{
	switch (SSL_get_error(ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		return TLSCTX_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLSCTX_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return TLSCTX_CLOSED;
	case SSL_ERROR_SYSCALL:
		/* A reset is no EOF: nothing can reach that peer any more. */
		if (ERR_peek_error() == 0 && (rc == 0 || errno == 0))
			return TLSCTX_EOF;
		return TLSCTX_ERROR;
	default: {
		unsigned long e = ERR_peek_error();
		int r = ERR_GET_REASON(e);
		if (ERR_GET_LIB(e) == ERR_LIB_SSL && (r == SSL_R_WRONG_VERSION_NUMBER ||
		    r == SSL_R_HTTP_REQUEST || r == SSL_R_HTTPS_PROXY_REQUEST))
			conn_flag(ssl, FLAG_PLAINTEXT);
		return TLSCTX_ERROR;
	}
	}
}

enum tlsctx_io tlsctx_handshake(struct tlsconn *tc)
{
	SSL *ssl = ssl_of(tc);
	int rc;

	errno = 0;
	if ((rc = SSL_do_handshake(ssl)) == 1)
		return TLSCTX_OK;
	return map_result(ssl, rc);
}

enum tlsctx_io tlsctx_read(struct tlsconn *tc, uint8_t *p, size_t n, size_t *got)
{
	SSL *ssl = ssl_of(tc);
	int rc;

	*got = 0;
	errno = 0;
	rc = SSL_read(ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
	if (rc > 0) {
		*got = (size_t)rc;
		return TLSCTX_OK;
	}
	return map_result(ssl, rc);
}

size_t tlsctx_pending(const struct tlsconn *tc)
{
	const struct sockbio *s = BIO_get_data(SSL_get_rbio(ssl_of(tc)));

	/* Decrypted bytes, a record read but not opened, or bytes read ahead. */
	return SSL_pending(ssl_of(tc)) > 0 || SSL_has_pending(ssl_of(tc)) ||
	       (s != NULL && s->ahead.len > 0);
}

enum tlsctx_io tlsctx_write(struct tlsconn *tc, const uint8_t *p, size_t n, size_t *put)
{
	SSL *ssl = ssl_of(tc);
	int rc;

	*put = 0;
	errno = 0;
	rc = SSL_write(ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
	if (rc > 0) {
		*put = (size_t)rc;
		return TLSCTX_OK;
	}
	return map_result(ssl, rc);
}

enum tlsctx_io tlsctx_close_notify(struct tlsconn *tc)
{
	SSL *ssl = ssl_of(tc);
	int rc;

	errno = 0;
	if ((rc = SSL_shutdown(ssl)) >= 0)
		return TLSCTX_OK;
	return map_result(ssl, rc);
}

void tlsctx_readable(struct tlsconn *tc)
{
	struct sockbio *s = BIO_get_data(SSL_get_rbio(ssl_of(tc)));

	if (s != NULL)
		s->drained = 0;
}

int tlsctx_drained(const struct tlsconn *tc)
{
	const struct sockbio *s = BIO_get_data(SSL_get_rbio(ssl_of(tc)));

	return s != NULL && s->drained && tlsctx_pending(tc) == 0;
}

int tlsctx_spoke_plaintext(const struct tlsconn *tc)
{
	return (conn_flags(ssl_of(tc)) & FLAG_PLAINTEXT) != 0;
}

int tlsctx_hello_seen(const struct tlsconn *tc)
{
	return (conn_flags(ssl_of(tc)) & FLAG_HELLO) != 0;
}

const char *tlsctx_error(struct tlsconn *tc, char *out, size_t outlen)
{
	unsigned long e = ERR_peek_error();
	int r = ERR_GET_REASON(e);
	const char *what = NULL;
	char raw[256];

	if (tc != NULL && tlsctx_spoke_plaintext(tc)) {
		const struct tlsctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl_of(tc)));
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int port = t->port;

		/* The port the client dialled, which differs from the
		 * configured one for "listen = 0". */
		const struct sockbio *sb = BIO_get_data(SSL_get_rbio(ssl_of(tc)));
		if (getsockname(sb->fd, (struct sockaddr *)&ss, &len) == 0)
			port = ss.ss_family == AF_INET6
			       ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
			       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
		ERR_clear_error();
		return cfg_lint_plaintext_hint(port, t->proto, out, outlen);
	}
	if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
		switch (r) {
		case SSL_R_UNSUPPORTED_PROTOCOL:
			what = "client's TLS version is too old (portier accepts TLS 1.2 and 1.3 only)";
			break;
		case SSL_R_NO_SHARED_CIPHER:
			what = "no shared cipher suite (portier offers ECDHE with AES-GCM or ChaCha20-Poly1305 only)";
			break;
		case SSL_R_NO_SHARED_GROUP:
			what = "no shared key-exchange group (see 'curves')";
			break;
		case SSL_R_NO_APPLICATION_PROTOCOL:
			what = "client offered only foreign ALPN protocols (cross-protocol attack defence)";
			break;
		case SSL_R_DECODE_ERROR:
		case SSL_R_UNEXPECTED_RECORD:
		case SSL_R_EXCESSIVE_MESSAGE_SIZE:
			what = "malformed TLS message from the client";
			break;
		default:
			break;
		}
	}
	if (what == NULL && ERR_GET_LIB(e) == ERR_LIB_SSL && r >= SSL_AD_REASON_OFFSET) {
		snprintf(out, outlen, "client sent alert: %s (did it reject the certificate?)",
		         SSL_alert_desc_string_long(r - SSL_AD_REASON_OFFSET));
		ERR_clear_error();
		return out;
	}
	if (what) {
		snprintf(out, outlen, "%s", what);
		ERR_clear_error();
		return out;
	}
	snprintf(out, outlen, "%s", drain_errors(raw, sizeof(raw)));
	return out;
}

void tlsctx_describe(const struct tlsconn *tc, struct tlsctx_info *info)
{
	const SSL *ssl = ssl_of(tc);
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);

	info->version = SSL_get_version(ssl);
	info->cipher = cipher ? SSL_CIPHER_standard_name(cipher) : "-";
	info->sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	info->resumed = SSL_session_reused(ssl);
}

const char *tlsctx_library(void)
{
	return PORTIER_BORINGSSL_DESC;
}
