#include "tlsctx_int.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* The client role of the TLS module (`portier probe`, ACME, TLS towards
 * backends). A client tlsctx is the same struct as a server one, holding a
 * single SSL_CTX in certs[0] and no certificate, and every context points
 * back at it through its app data: so tlsctx_free(), tlsctx_conn_free() and
 * the connection I/O of tlsctx.c serve both roles as they are. */

#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

/* With TLS 1.2 as the floor, the client holds itself to the suites the
 * server side offers (ECDHE, AEAD only); a probe of old servers takes all
 * this BoringSSL still speaks, so that it can say what the server chose. */
#define CLIENT_SUITES_12                                                      \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"          \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"          \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define CLIENT_SUITES_OLD "ALL"

/* What diagnostics about a client context are filed under: it has no
 * config line of its own. */
#define WHERE "TLS client"

static SSL *ssl_of(const struct tlsconn *tc)
{
	return (SSL *)tc;
}

/* "h2,http/1.1" to ALPN's wire form (each id prefixed by its length).
 * 0, or -1 for an empty id, one over 255 bytes, or a list over outlen. */
static int alpn_wire(const char *list, uint8_t *out, size_t outlen, size_t *len)
{
	const char *p = list, *comma;
	size_t n;

	*len = 0;
	for (;;) {
		comma = strchr(p, ',');
		n = comma ? (size_t)(comma - p) : strlen(p);
		if (n == 0 || n > 255 || *len + 1 + n > outlen)
			return -1;
		out[(*len)++] = (uint8_t)n;
		memcpy(out + *len, p, n);
		*len += n;
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

/* The lowest version this build agrees to, from TLS 1.0 up. */
static int set_floor(SSL_CTX *ctx, int min_version_12)
{
	static const uint16_t floors[] = { TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION };

	for (size_t i = min_version_12 ? 2 : 0; i < sizeof(floors) / sizeof(floors[0]); i++)
		if (SSL_CTX_set_min_proto_version(ctx, floors[i])) {
			ERR_clear_error();
			return 0;
		}
	return -1;
}

static int load_cas(SSL_CTX *ctx, const struct tlsctx_client_opts *o, struct diag *d)
{
	const char *path = o->cafile ? o->cafile : SYSTEM_CA_BUNDLE;
	unsigned long e;

	if (SSL_CTX_load_verify_locations(ctx, path, NULL))
		return 0;
	e = ERR_peek_error();
	ERR_clear_error();
	/* Without verification a probe still reports on the chain (it will
	 * say the issuer is unknown); it is no reason to refuse to look. */
	if (!o->verify && o->cafile == NULL)
		return 0;
	diag_add(d, 0, path, 0, NULL, NULL, "%s",
	         ERR_GET_LIB(e) == ERR_LIB_SYS ? strerror(ERR_GET_REASON(e))
	         : "no PEM certificate in it; expected -----BEGIN CERTIFICATE-----");
	return -1;
}

struct tlsctx *tlsctx_new_client(const struct tlsctx_client_opts *o, struct diag *d)
{
	struct tlsctx *t;
	SSL_CTX *ctx;
	uint8_t alpn[256];
	size_t alen = 0;
	char err[256];

	if (o->alpn != NULL && alpn_wire(o->alpn, alpn, sizeof(alpn), &alen) < 0) {
		diag_add(d, 0, WHERE, 0, NULL, "alpn", "'%s': expected protocol ids "
		         "separated by commas, each of 1 to 255 bytes", o->alpn);
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto enomem;
	t->refs = 1;
	if ((t->certs = calloc(1, sizeof(*t->certs))) == NULL)
		goto enomem;
	t->ncerts = 1;
	if ((ctx = t->certs[0].ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto enomem;
	SSL_CTX_set_app_data(ctx, t);
	if (set_floor(ctx, o->min_version_12) < 0 ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_strict_cipher_list(ctx, o->min_version_12 ? CLIENT_SUITES_12
	                                                           : CLIENT_SUITES_OLD) ||
	    (alen > 0 && SSL_CTX_set_alpn_protos(ctx, alpn, alen) != 0)) {   /* 0 is success */
		diag_add(d, 0, WHERE, 0, NULL, NULL, "%s",
		         tlsctx_drain_errors(err, sizeof(err)));
		goto err;
	}
	/* The same write contract as the server side (tlsctx_write). */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (load_cas(ctx, o, d) < 0)
		goto err;
	/* SSL_VERIFY_NONE still verifies and keeps the result, which
	 * tlsctx_peer_cert() reports; PEER makes a failure end the handshake. */
	SSL_CTX_set_verify(ctx, o->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	/* Asking costs the server nothing; a probe reports whether it did. */
	SSL_CTX_enable_ocsp_stapling(ctx);
	t->name_apart = o->name_apart;
	return t;

enomem:
	diag_add(d, 0, WHERE, 0, NULL, NULL, "out of memory");
err:
	tlsctx_free(t);
	return NULL;
}

struct tlsconn *tlsctx_connect(struct tlsctx *t, int fd, const char *sni)
{
	SSL *ssl = SSL_new(t->certs[0].ctx);
	X509_VERIFY_PARAM *vp;
	uint8_t addr[sizeof(struct in6_addr)];
	BIO *bio;
	int ok;

	if (ssl == NULL)
		return NULL;
	if ((bio = tlsctx_bio_new(fd)) == NULL)
		goto err;
	SSL_set_bio(ssl, bio, bio);   /* one BIO both ways; the SSL owns it */
	SSL_set_connect_state(ssl);
	if (sni != NULL && t->name_apart) {
		if (inet_pton(AF_INET, sni, addr) != 1 && inet_pton(AF_INET6, sni, addr) != 1 &&
		    !SSL_set_tlsext_host_name(ssl, sni))
			goto err;
	} else if (sni != NULL) {
		vp = SSL_get0_param(ssl);
		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		/* An address is checked against the certificate's IP names but
		 * never sent as SNI, which carries host names only (RFC 6066). */
		if (inet_pton(AF_INET, sni, addr) == 1 || inet_pton(AF_INET6, sni, addr) == 1)
			ok = X509_VERIFY_PARAM_set1_ip_asc(vp, sni);
		else
			ok = SSL_set_tlsext_host_name(ssl, sni) &&
			     X509_VERIFY_PARAM_set1_host(vp, sni, strlen(sni));
		if (!ok)
			goto err;
	}
	t->refs++;
	return (struct tlsconn *)ssl;

err:
	SSL_free(ssl);
	ERR_clear_error();
	return NULL;
}

/* Copies at most outlen - 1 bytes of s, replacing control characters: a
 * certificate's names end up on a terminal. A name cut short is cut where
 * a UTF-8 character starts (backing off at most 3 bytes, the most a
 * character has after its first): half a character at the end is invalid
 * UTF-8, for which a Prometheus scrape that carries the name as a label
 * is refused whole. */
static void copy_clean(char *out, size_t outlen, const uint8_t *s, size_t n)
{
	size_t i;

	if (outlen == 0)
		return;
	if (n > outlen - 1) {
		n = outlen - 1;
		for (int k = 0; k < 3 && n > 0 && (s[n] & 0xc0) == 0x80; k++)
			n--;
	}
	for (i = 0; i < n; i++)
		out[i] = s[i] < 0x20 || s[i] == 0x7f ? '?' : (char)s[i];
	out[i] = '\0';
}

static void subject_cn(X509 *x, char *out, size_t outlen)
{
	X509_NAME *name = X509_get_subject_name(x);
	int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	unsigned char *utf8 = NULL;
	int n;

	if (idx < 0)
		return;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
	if (n >= 0)
		copy_clean(out, outlen, utf8, (size_t)n);
	OPENSSL_free(utf8);
}

static void issuer_line(X509 *x, char *out, size_t outlen)
{
	BIO *mem = BIO_new(BIO_s_mem());
	const uint8_t *p;
	size_t n;

	if (mem != NULL && X509_NAME_print_ex(mem, X509_get_issuer_name(x), 0,
	                                      XN_FLAG_RFC2253) >= 0 &&
	    BIO_mem_contents(mem, &p, &n))
		copy_clean(out, outlen, p, n);
	BIO_free(mem);
}

/* DNS and IP names, as text; every one is counted, the first kept. */
static void alt_names(X509 *x, struct tlsctx_cert_info *info)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	for (size_t i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_STRING *s;
		char *slot;
		int af;

		if (g->type != GEN_DNS && g->type != GEN_IPADD)
			continue;
		if (info->nsans_total++ >= TLSCTX_CERT_MAX_SANS)
			continue;
		slot = info->sans[info->nsans];
		if (g->type == GEN_DNS) {
			s = g->d.dNSName;
			copy_clean(slot, TLSCTX_CERT_NAME_MAX, ASN1_STRING_get0_data(s),
			           (size_t)ASN1_STRING_length(s));
		} else {
			s = g->d.iPAddress;
			af = ASN1_STRING_length(s) == 4 ? AF_INET
			     : ASN1_STRING_length(s) == 16 ? AF_INET6 : AF_UNSPEC;
			if (af == AF_UNSPEC ||
			    inet_ntop(af, ASN1_STRING_get0_data(s), slot, TLSCTX_CERT_NAME_MAX) == NULL)
				snprintf(slot, TLSCTX_CERT_NAME_MAX, "(malformed address)");
		}
		info->nsans++;
	}
	GENERAL_NAMES_free(gens);
}

static void serial_hex(X509 *x, char *out, size_t outlen)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	if (hex != NULL)
		copy_clean(out, outlen, (const uint8_t *)hex, strlen(hex));
	OPENSSL_free(hex);
	BN_free(bn);
}

/* This BoringSSL has no ASN1_TIME_to_posix: the distance from the epoch. */
static time_t posix_time(const ASN1_TIME *t)
{
	ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
	int days = 0, secs = 0;

	if (epoch == NULL || !ASN1_TIME_diff(&days, &secs, epoch, t))
		days = secs = 0;
	ASN1_TIME_free(epoch);
	return (time_t)days * 86400 + secs;
}

static void key_of(X509 *x, struct tlsctx_cert_info *info)
{
	EVP_PKEY *pk = X509_get_pubkey(x);
	const char *type;

	switch (pk ? EVP_PKEY_id(pk) : EVP_PKEY_NONE) {
	case EVP_PKEY_RSA:     type = "RSA"; break;
	case EVP_PKEY_EC:      type = "EC"; break;
	case EVP_PKEY_ED25519: type = "Ed25519"; break;
	case EVP_PKEY_NONE:    type = "unreadable"; break;
	default:               type = "other"; break;
	}
	snprintf(info->key_type, sizeof(info->key_type), "%s", type);
	info->key_bits = pk ? EVP_PKEY_bits(pk) : 0;
	EVP_PKEY_free(pk);
}

/* What x says about itself; the verification fields are left alone. */
void tlsctx_x509_describe(X509 *x, struct tlsctx_cert_info *info)
{
	subject_cn(x, info->subject_cn, sizeof(info->subject_cn));
	alt_names(x, info);
	issuer_line(x, info->issuer, sizeof(info->issuer));
	serial_hex(x, info->serial, sizeof(info->serial));
	info->not_before = posix_time(X509_get0_notBefore(x));
	info->not_after = posix_time(X509_get0_notAfter(x));
	key_of(x, info);
}

int tlsctx_file_cert(const char *path, struct tlsctx_cert_info *info)
{
	struct tlsfile f;
	char why[128];
	BIO *bio = NULL;
	X509 *x = NULL;

	memset(info, 0, sizeof(*info));
	if (tlsctx_file_read(path, TLSCERT_FILE_MAX_BYTES, "a certificate chain", &f, why,
	                     sizeof(why)) < 0)
		return -1;
	if ((bio = BIO_new_mem_buf(f.p, f.len)) != NULL)
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	tlsctx_file_free(&f);
	ERR_clear_error();
	if (x == NULL)
		return -1;
	tlsctx_x509_describe(x, info);
	X509_free(x);
	return 0;
}

int tlsctx_peer_cert(const struct tlsconn *tc, struct tlsctx_cert_info *info)
{
	const SSL *ssl = ssl_of(tc);
	X509 *x = SSL_get_peer_certificate(ssl);
	long v;

	memset(info, 0, sizeof(*info));
	if (x == NULL)
		return -1;
	tlsctx_x509_describe(x, info);
	v = SSL_get_verify_result(ssl);
	info->verified = v == X509_V_OK;
	/* Verification stops at its first error, and a leaf's dates are
	 * checked after the chain and its signatures. */
	info->verify_dates_only = v == X509_V_ERR_CERT_HAS_EXPIRED ||
	                          v == X509_V_ERR_CERT_NOT_YET_VALID;
	if (!info->verified)
		snprintf(info->verify_error, sizeof(info->verify_error), "%s",
		         X509_verify_cert_error_string(v));
	X509_free(x);
	ERR_clear_error();
	return 0;
}

const char *tlsctx_alpn_selected(const struct tlsconn *tc, char *out, size_t outlen)
{
	const uint8_t *id;
	unsigned len;

	SSL_get0_alpn_selected(ssl_of(tc), &id, &len);
	copy_clean(out, outlen, id, id ? len : 0);
	return out;
}

const char *tlsctx_client_reason(const struct tlsconn *tc, char *out, size_t outlen)
{
	SSL *ssl = ssl_of(tc);
	unsigned long e = ERR_peek_error();
	int r = ERR_GET_REASON(e);
	long v;

	if (tc == NULL || SSL_is_server(ssl) || ERR_GET_LIB(e) != ERR_LIB_SSL)
		return NULL;
	switch (r) {
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
		v = SSL_get_verify_result(ssl);
		snprintf(out, outlen, "server certificate did not verify: %s",
		         X509_verify_cert_error_string(v));
		break;
	case SSL_R_WRONG_VERSION_NUMBER:
		snprintf(out, outlen, "the server did not answer with TLS (a plaintext "
		         "service, or one that wants STARTTLS first?)");
		break;
	case SSL_R_UNSUPPORTED_PROTOCOL:
		snprintf(out, outlen, "the server chose a TLS version below the "
		         "client's minimum");
		break;
	case SSL_R_DECODE_ERROR:
	case SSL_R_UNEXPECTED_RECORD:
	case SSL_R_EXCESSIVE_MESSAGE_SIZE:
		snprintf(out, outlen, "malformed TLS message from the server");
		break;
	default:
		if (r < SSL_AD_REASON_OFFSET)
			return NULL;
		snprintf(out, outlen, "server sent alert: %s",
		         SSL_alert_desc_string_long(r - SSL_AD_REASON_OFFSET));
		break;
	}
	ERR_clear_error();
	return out;
}

int tlsctx_pin_version(struct tlsconn *tc, uint16_t v)
{
	SSL *ssl = ssl_of(tc);

	if (v < TLS1_VERSION || v > TLS1_3_VERSION ||
	    !SSL_set_min_proto_version(ssl, v) || !SSL_set_max_proto_version(ssl, v)) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

void tlsctx_session(const struct tlsconn *tc, struct tlsctx_session *s)
{
	const SSL *ssl = ssl_of(tc);
	const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
	const char *group = SSL_get_curve_name(SSL_get_curve_id(ssl));
	const uint8_t *ocsp;
	size_t ocsp_len = 0;

	s->version = SSL_get_version(ssl);
	s->version_id = (uint16_t)SSL_version(ssl);
	s->cipher = cipher ? SSL_CIPHER_standard_name(cipher) : "";
	s->group = group ? group : "";
	SSL_get0_ocsp_response(ssl, &ocsp, &ocsp_len);
	s->ocsp_stapled = ocsp_len > 0;
}

int tlsctx_peer_name_matches(const struct tlsconn *tc, const char *name)
{
	X509 *x = SSL_get_peer_certificate(ssl_of(tc));
	uint8_t addr[sizeof(struct in6_addr)];
	int ok;

	if (x == NULL)
		return -1;
	if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1)
		ok = X509_check_ip_asc(x, name, 0) == 1;
	else if (X509_check_host(x, name, strlen(name), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS |
	                         X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) == 1)
		ok = 1;
	else
		/* The library looks at the CN only when the certificate has no
		 * subjectAltName: a match now is a match by the CN alone. */
		ok = X509_check_host(x, name, strlen(name),
		                     X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1 ? 2 : 0;
	X509_free(x);
	ERR_clear_error();
	return ok;
}

const char *tlsctx_client_failure(struct tlsconn *tc, char *out, size_t outlen, int *not_tls)
{
	unsigned long e = ERR_peek_error();
	int r = ERR_GET_REASON(e);

	*not_tls = ERR_GET_LIB(e) == ERR_LIB_SSL &&
	           (r == SSL_R_WRONG_VERSION_NUMBER || r == SSL_R_HTTP_REQUEST ||
	            r == SSL_R_HTTPS_PROXY_REQUEST);
	return tlsctx_error(tc, out, outlen);
}

int tlsctx_client_name_refused(const struct tlsconn *tc)
{
	unsigned long e = ERR_peek_error();

	return tc != NULL && !SSL_is_server(ssl_of(tc)) && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	       ERR_GET_REASON(e) == SSL_AD_REASON_OFFSET + SSL_AD_UNRECOGNIZED_NAME;
}
