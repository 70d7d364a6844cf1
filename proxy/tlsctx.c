#include "tlsctx_int.h"
#include "cfg_lint.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* TLS 1.2 suites of Mozilla's "intermediate": ECDHE key exchange, AEAD
 * only. TLS 1.3 suites are all AEAD and fixed by BoringSSL. */
#define TLS12_SUITES                                                          \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"          \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"          \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Per-connection flags live in the SSL's ex_data, so that a tlsconn is
 * just the SSL and costs no allocation of its own. */
#define FLAG_HELLO       1u
#define FLAG_PLAINTEXT   2u
#define FLAG_PLAIN_ALERT 4u   /* a plaintext alert record in a TLS 1.3 handshake */
static int flags_index = -1;

static SSL *ssl_of(const struct tlsconn *tc)
{
	return (SSL *)tc;
}

/* The index exists once a server context was made; a process with only
 * client contexts (portier probe) has no flags to keep. */
static unsigned conn_flags(const SSL *ssl)
{
	if (flags_index < 0)
		return 0;
	return (unsigned)(uintptr_t)SSL_get_ex_data(ssl, flags_index);
}

static void conn_flag(SSL *ssl, unsigned f)
{
	if (flags_index >= 0)
		SSL_set_ex_data(ssl, flags_index, (void *)(uintptr_t)(conn_flags(ssl) | f));
}

/* Reads the first error of the queue as "lib: reason" and clears it. */
const char *tlsctx_drain_errors(char *out, size_t outlen)
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

/* The u16 list of a ClientHello extension with a u16 length prefix (as
 * signature_algorithms and supported_groups are). 0 if absent or broken. */
static int ext_list(const SSL_CLIENT_HELLO *ch, uint16_t type, CBS *list)
{
	const uint8_t *data;
	size_t len;
	CBS ext;

	if (!SSL_early_callback_ctx_extension_get(ch, type, &data, &len))
		return 0;
	CBS_init(&ext, data, len);
	return CBS_get_u16_length_prefixed(&ext, list);
}

static int has_u16(CBS list, uint16_t v)
{
	uint16_t x;

	while (CBS_get_u16(&list, &x))
		if (x == v)
			return 1;
	return 0;
}

/* The keys other than RSA the client can verify a handshake signed with,
 * as SNI_TAKES bits for sni_select. A client offering TLS 1.3 gets it
 * (portier's maximum), and there each ECDSA signature algorithm names its
 * curve. In TLS 1.2 an ECDSA algorithm is good for any curve, but the
 * client must also offer an ECDHE-ECDSA suite (which Ed25519 signs too)
 * and, if it lists supported_groups, the curve of the key. */
static unsigned client_takes(const SSL_CLIENT_HELLO *ch)
{
	static const struct {
		uint16_t sigalg, group;
		enum sni_key key;
	} ec[] = {
		{SSL_SIGN_ECDSA_SECP256R1_SHA256, SSL_CURVE_SECP256R1, SNI_KEY_P256},
		{SSL_SIGN_ECDSA_SECP384R1_SHA384, SSL_CURVE_SECP384R1, SNI_KEY_P384},
		{SSL_SIGN_ECDSA_SECP521R1_SHA512, SSL_CURVE_SECP521R1, SNI_KEY_P521},
	};
	CBS algs, groups;
	unsigned takes = 0;
	int any_ecdsa = 0, has_groups;

	if (!ext_list(ch, TLSEXT_TYPE_signature_algorithms, &algs))
		return 0;
	if (offers_tls13(ch)) {
		for (size_t i = 0; i < sizeof(ec) / sizeof(ec[0]); i++)
			if (has_u16(algs, ec[i].sigalg))
				takes |= SNI_TAKES(ec[i].key);
		if (has_u16(algs, SSL_SIGN_ED25519))
			takes |= SNI_TAKES(SNI_KEY_ED25519);
		return takes;
	}
	if (!offers_ecdsa_suite(ch))
		return 0;
	for (size_t i = 0; i < sizeof(ec) / sizeof(ec[0]); i++)
		any_ecdsa |= has_u16(algs, ec[i].sigalg);
	has_groups = ext_list(ch, TLSEXT_TYPE_supported_groups, &groups);
	for (size_t i = 0; any_ecdsa && i < sizeof(ec) / sizeof(ec[0]); i++)
		if (!has_groups || has_u16(groups, ec[i].group))
			takes |= SNI_TAKES(ec[i].key);
	if (has_u16(algs, SSL_SIGN_ED25519))
		takes |= SNI_TAKES(SNI_KEY_ED25519);
	return takes;
}

static enum ssl_select_cert_result_t select_cert(const SSL_CLIENT_HELLO *ch)
{
	SSL *ssl = ch->ssl;
	struct tlsctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	size_t i;

	conn_flag(ssl, FLAG_HELLO);
	if (t->ncerts > 1) {
		i = sni_select(t->entries, t->ncerts, host, client_takes(ch));
		if (i != 0) {
			/* Switching contexts resets the session context: an
			 * FTP data connection's (tlsctx_bind_session) stays. */
			uint8_t sid[SSL_MAX_SID_CTX_LENGTH];
			size_t n = 0;
			const uint8_t *cur = SSL_get0_session_id_context(ssl, &n);
			if (n > sizeof(sid))
				return ssl_select_cert_error;
			memcpy(sid, cur, n);
			if (SSL_set_SSL_CTX(ssl, t->certs[i].ctx) == NULL ||
			    !SSL_set_session_id_context(ssl, sid, n))
				return ssl_select_cert_error;
		}
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

int tlsctx_configure(SSL_CTX *ctx, struct tlsctx *t, const struct cfg_tls *tls,
                     const char *listener)
{
	uint16_t min = tls->policy == CFG_POLICY_MODERN ? TLS1_3_VERSION
	                                                  : (uint16_t)tls->min_version;
	uint8_t sid[SHA256_DIGEST_LENGTH];

	SSL_CTX_set_app_data(ctx, t);
	if (!SSL_CTX_set_min_proto_version(ctx, min) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_strict_cipher_list(ctx, TLS12_SUITES) ||
	    !SSL_CTX_set1_curves_list(ctx, tls->curves))
		return -1;
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Stateless resumption only: tickets (TLS 1.2 and 1.3), no
	 * server-side cache to grow with clients. The keys come from
	 * tlsctx_ticket.c, the same in every worker; a ticket lives as long
	 * as its keys are sure to. No 0-RTT: early data is off by default. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (!SSL_CTX_set_tlsext_ticket_key_cb(ctx, tlsticket_cb))
		return -1;
	SSL_CTX_set_timeout(ctx, TLSTICKET_PERIOD_S);
	SSL_CTX_set_session_psk_dhe_timeout(ctx, TLSTICKET_PERIOD_S);
	/* One TLS 1.3 ticket per handshake, not two: each costs a sealing
	 * and bytes on the wire, and a resuming client gets a fresh one. */
	SSL_CTX_set_num_tickets(ctx, 1);
	/* A session resumes only on the listener that made it. Listeners
	 * that share ticket keys ([tls] ticket_keys, or nodes sharing a
	 * file) could otherwise open each other's tickets: a client that
	 * made a session with one name's listener, sent by someone on the
	 * path to another, would resume there without a certificate, its
	 * bytes going to that listener's backend. By the name, not the
	 * certificates: a renewal, and a node whose listener has the same
	 * name, keep resumption. */
	SHA256((const uint8_t *)listener, strlen(listener), sid);
	if (!SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid)))
		return -1;
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_select_certificate_cb(ctx, select_cert);
	SSL_CTX_set_alpn_select_cb(ctx, select_alpn, t);
	return 0;
}


struct tlsctx *tlsctx_new_server(const struct cfg *c, const struct cfg_listener *l,
                                 int reload, struct diag *d)
{
	struct tlsctx *t;
	int errors = d->errors;
	size_t alen = strlen(l->alpn ? l->alpn : "");

	if (flags_index < 0)
		flags_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->refs = 1;
	if (tlsticket_init(&t->ticket, (uint64_t)time(NULL)) < 0) {
		free(t);
		return NULL;
	}
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
		tlsctx_load_cert(t, &t->certs[i], c, l, &l->tls.certs[i], reload, d);
		t->entries[i] = t->certs[i].sni;
	}
	/* Read here, by the master, before any privilege is dropped; a
	 * reload builds new contexts and so reads the file again. */
	if (l->tls.ticket_keys != NULL)
		(void)tlsticket_file_load(l->tls.ticket_keys, &t->tkfile, c->file,
		                          l->tls.ticket_keys_line,
		                          l->tls.ticket_keys_inherited ? "tls" : l->name, d);
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
	tlsticket_wipe(&t->ticket);
	tlsticket_file_free(&t->tkfile);
	free(t);
}

void tlsctx_keep_tickets(struct tlsctx *to, const struct tlsctx *from)
{
	if (to != NULL && from != NULL)
		to->ticket = from->ticket;
}

void tlsctx_tick(struct tlsctx *t, time_t now)
{
	if (t != NULL)
		tlsticket_advance(&t->ticket, (uint64_t)now);
}

void tlsctx_free(struct tlsctx *t)
{
	tlsctx_unref(t);
}


/* ---- connections ---- */

/* Watches the record headers of a handshake (only: it is unset once the
 * handshake is done). An OpenSSL client that rejects the certificate in
 * TLS 1.3 sends its alert in plaintext, before its handshake keys, and
 * BoringSSL, expecting an encrypted record, can only say BAD_PACKET_LENGTH:
 * noted here, so that the log can say what happened. */
static void on_record(int write_p, int version, int content_type, const void *buf,
                      size_t len, SSL *ssl, void *arg)
{
	const uint8_t *h = buf;

	if (!write_p && content_type == SSL3_RT_HEADER && len == SSL3_RT_HEADER_LENGTH &&
	    h[0] == SSL3_RT_ALERT && SSL_version(ssl) == TLS1_3_VERSION)
		conn_flag(ssl, FLAG_PLAIN_ALERT);
}

struct tlsconn *tlsctx_accept(struct tlsctx *t, int fd)
{
	SSL *ssl = SSL_new(t->certs[0].ctx);

	BIO *bio;

	if (ssl == NULL)
		return NULL;
	if ((bio = tlsctx_bio_new(fd)) == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_bio(ssl, bio, bio);   /* one BIO both ways; the SSL owns it */
	SSL_set_msg_callback(ssl, on_record);
	SSL_set_accept_state(ssl);
	/* Free the handshake configuration once it is done: an idle
	 * connection should hold keys and buffers, nothing else. */
	SSL_set_shed_handshake_config(ssl, 1);
	t->refs++;
	return (struct tlsconn *)ssl;
}

int tlsctx_bind_session(struct tlsconn *tc, const uint8_t *id, size_t n)
{
	return SSL_set_session_id_context(ssl_of(tc), id, n) ? 0 : -1;
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
	if ((rc = SSL_do_handshake(ssl)) == 1) {
		SSL_set_msg_callback(ssl, NULL);   /* not on the relay's path */
		return TLSCTX_OK;
	}
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

int tlsctx_ready(const struct tlsconn *tc)
{
	/* Decrypted bytes, or a whole record read ahead. A partial record
	 * (SSL_has_pending() alone) needs the socket: its readable event
	 * will come, and serving it before would spin. */
	return SSL_pending(ssl_of(tc)) > 0 ||
	       tlsctx_bio_record_ready(SSL_get_rbio(ssl_of(tc)));
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
	tlsctx_bio_readable(SSL_get_rbio(ssl_of(tc)));
}

int tlsctx_drained(const struct tlsconn *tc)
{
	return tlsctx_bio_drained(SSL_get_rbio(ssl_of(tc))) && !tlsctx_ready(tc);
}

int tlsctx_spoke_plaintext(const struct tlsconn *tc)
{
	return (conn_flags(ssl_of(tc)) & FLAG_PLAINTEXT) != 0;
}

int tlsctx_client_spoke(const struct tlsconn *tc)
{
	return tlsctx_bio_spoke(SSL_get_rbio(ssl_of(tc)));
}

int tlsctx_hello_seen(const struct tlsconn *tc)
{
	return (conn_flags(ssl_of(tc)) & FLAG_HELLO) != 0;
}

const char *tlsctx_error(struct tlsconn *tc, char *out, size_t outlen)
{
	return tlsctx_failure(tc, out, outlen, NULL);
}

const char *tlsctx_failure(struct tlsconn *tc, char *out, size_t outlen,
                           enum tlsctx_fail *why)
{
	unsigned long e = ERR_peek_error();
	int r = ERR_GET_REASON(e);
	int err = errno;
	const char *what = NULL;
	enum tlsctx_fail kind = TLSCTX_FAIL_OTHER, dummy;
	char raw[256];

	if (why == NULL)
		why = &dummy;
	*why = TLSCTX_FAIL_OTHER;

	/* A client connection (probe, ACME) has its own words. */
	if (tc != NULL && tlsctx_client_reason(tc, out, outlen) != NULL)
		return out;
	if (tc != NULL && tlsctx_spoke_plaintext(tc)) {
		const struct tlsctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl_of(tc)));
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int port = t->port;

		/* The port the client dialled, which differs from the
		 * configured one for "listen = 0". */
		if (getsockname(tlsctx_bio_fd(SSL_get_rbio(ssl_of(tc))),
		                (struct sockaddr *)&ss, &len) == 0)
			port = ss.ss_family == AF_INET6
			       ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
			       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
		ERR_clear_error();
		*why = TLSCTX_FAIL_PLAINTEXT;
		return cfg_lint_plaintext_hint(port, t->proto, out, outlen);
	}
	if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
		switch (r) {
		case SSL_R_UNSUPPORTED_PROTOCOL:
			what = "client's TLS version is too old (portier accepts TLS 1.2 and 1.3 only)";
			kind = TLSCTX_FAIL_VERSION;
			break;
		case SSL_R_NO_SHARED_CIPHER:
			what = "no shared cipher suite (portier offers ECDHE with AES-GCM or ChaCha20-Poly1305 only)";
			kind = TLSCTX_FAIL_CIPHER;
			break;
		case SSL_R_NO_SHARED_GROUP:
			what = "no shared key-exchange group (see 'curves')";
			kind = TLSCTX_FAIL_GROUP;
			break;
		case SSL_R_NO_APPLICATION_PROTOCOL:
			what = "client offered only foreign ALPN protocols (cross-protocol attack defence)";
			kind = TLSCTX_FAIL_ALPN;
			break;
		case SSL_R_DECODE_ERROR:
		case SSL_R_UNEXPECTED_RECORD:
		case SSL_R_EXCESSIVE_MESSAGE_SIZE:
			what = "malformed TLS message from the client";
			kind = TLSCTX_FAIL_MALFORMED;
			break;
		default:
			break;
		}
	}
	if (what == NULL && tc != NULL && (conn_flags(ssl_of(tc)) & FLAG_PLAIN_ALERT) &&
	    !(ERR_GET_LIB(e) == ERR_LIB_SSL && r >= SSL_AD_REASON_OFFSET)) {
		what = "client sent an alert in plaintext during the TLS 1.3 handshake, as an "
		       "OpenSSL client does when it rejects the certificate (did it?)";
		kind = TLSCTX_FAIL_ALERT;
	}
	if (what == NULL && ERR_GET_LIB(e) == ERR_LIB_SSL && r >= SSL_AD_REASON_OFFSET) {
		snprintf(out, outlen, "client sent alert: %s (did it reject the certificate?)",
		         SSL_alert_desc_string_long(r - SSL_AD_REASON_OFFSET));
		ERR_clear_error();
		*why = TLSCTX_FAIL_ALERT;
		return out;
	}
	if (what) {
		snprintf(out, outlen, "%s", what);
		ERR_clear_error();
		*why = kind;
		return out;
	}
	if (e == 0 && (err == ECONNRESET || err == EPIPE))
		*why = TLSCTX_FAIL_RESET;
	errno = err;
	snprintf(out, outlen, "%s", tlsctx_drain_errors(raw, sizeof(raw)));
	return out;
}

void tlsctx_describe(const struct tlsconn *tc, struct tlsctx_info *info)
{
	const SSL *ssl = ssl_of(tc);
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);

	info->version = SSL_get_version(ssl);
	info->version_id = (uint16_t)SSL_version(ssl);
	info->cipher = cipher ? SSL_CIPHER_standard_name(cipher) : "-";
	info->sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	info->resumed = SSL_session_reused(ssl);
}

const char *tlsctx_library(void)
{
	return PORTIER_BORINGSSL_DESC;
}
