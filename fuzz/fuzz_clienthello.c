/*
 * A client's first flight, through the server side of the TLS module as a
 * worker runs it: the socket BIO, BoringSSL's ClientHello parser, then
 * portier's certificate selection (SNI, and ECDSA or RSA for the client)
 * and its ALPN rule. The corpus holds real ClientHellos (openssl, gnutls,
 * curl, Python; TLS 1.2 and 1.3; with and without SNI and ALPN).
 *
 * Two listeners over the same three certificates: an ECDSA P-256 one for
 * a.example and *.w.example, an RSA one for a.example, b.example and
 * c.example, an ECDSA P-384 one for c.example. The first byte of the input
 * picks the listener: protocol http (ALPN http/1.1, which a client offering
 * ALPN must include) or tcp (no ALPN). The rest is what the client sends.
 *
 * Oracles, checked in BoringSSL's certificate callback (after portier chose
 * a certificate) and after the handshake step:
 *   - the certificate is the one the documented rule gives: among those
 *     naming the host best, the first whose key the client can verify (an
 *     ECDSA curve by its TLS 1.3 signature algorithm; in TLS 1.2 by any
 *     ECDSA algorithm, an ECDHE-ECDSA suite and the curve among the
 *     supported_groups if sent), else the RSA one, else the first. That
 *     check needs the ClientHello in one record (for its suites and
 *     groups) when TLS 1.2 was negotiated, and is skipped otherwise;
 *   - whatever the record, an ECDSA certificate only for a client that
 *     offered an ECDSA signature algorithm, or that asked for a name only
 *     an ECDSA certificate carries;
 *   - an agreed ALPN id is the listener's own, and with the http listener
 *     a client that offered ALPN without it does not get a ServerHello.
 */
#include <openssl/bytestring.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "diag.h"
#include "tlsctx_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { C_P256, C_RSA, C_P384, NCERTS };   /* the certificates, in config order */

static struct tlsctx *listeners[2];   /* [0] http, [1] tcp */
static SSL_CTX *cert_ctx[2][NCERTS];  /* the context of each listener's certs */

/* What the current input's ClientHello record offers, for the TLS 1.2
 * oracle: parsed says the record was read whole. */
static struct {
	int parsed, ecdsa_suite, has_groups;
	CBS groups;
} seen;

static int write_pair(const char *dir, const char *name, EVP_PKEY *key,
                      const char *sans)
{
	char path[512];
	X509 *x = X509_new();
	X509_NAME *n;
	X509_EXTENSION *ext;
	FILE *f;
	int ok;

	if (x == NULL)
		return 0;
	n = X509_get_subject_name(x);
	ok = X509_set_version(x, X509_VERSION_3) &&
	     ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
	     X509_gmtime_adj(X509_getm_notBefore(x), -86400) &&
	     X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365) &&
	     X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	                                (const uint8_t *)name, -1, -1, 0) &&
	     X509_set_issuer_name(x, n) && X509_set_pubkey(x, key);
	ext = ok ? X509V3_EXT_nconf_nid(NULL, NULL, NID_subject_alt_name, sans) : NULL;
	ok = ext != NULL && X509_add_ext(x, ext, -1) && X509_sign(x, key, EVP_sha256());
	X509_EXTENSION_free(ext);
	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	if (ok && (f = fopen(path, "w")) != NULL) {
		ok = PEM_write_X509(f, x) &&
		     PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
		ok = fclose(f) == 0 && ok;
	} else {
		ok = 0;
	}
	X509_free(x);
	return ok;
}

static EVP_PKEY *new_key(int curve)   /* NID of an ECDSA curve, or 0: RSA */
{
	EVP_PKEY *k = EVP_PKEY_new();

	if (k == NULL)
		abort();
	if (curve) {
		EC_KEY *ec = EC_KEY_new_by_curve_name(curve);
		if (ec == NULL || !EC_KEY_generate_key(ec) || !EVP_PKEY_assign_EC_KEY(k, ec))
			abort();
	} else {
		RSA *rsa = RSA_new();
		BIGNUM *e = BN_new();
		if (rsa == NULL || e == NULL || !BN_set_word(e, RSA_F4) ||
		    !RSA_generate_key_ex(rsa, 2048, e, NULL) || !EVP_PKEY_assign_RSA(k, rsa))
			abort();
		BN_free(e);
	}
	return k;
}

static int is_ecdsa_alg(uint16_t alg)
{
	return alg == SSL_SIGN_ECDSA_SECP256R1_SHA256 ||
	       alg == SSL_SIGN_ECDSA_SECP384R1_SHA384 ||
	       alg == SSL_SIGN_ECDSA_SECP521R1_SHA512;
}

static int under_w(const char *host)
{
	const char *dot = strchr(host, '.');

	return dot != NULL && dot != host && strcasecmp(dot, ".w.example") == 0;
}

static int has_u16(CBS list, uint16_t v)
{
	uint16_t x;

	while (CBS_get_u16(&list, &x))
		if (x == v)
			return 1;
	return 0;
}

/* Whether the client can verify certificate k's key (RSA: always, as the
 * rule has it); -1 when that cannot be told from what was seen. */
static int client_takes(SSL *ssl, int k)
{
	static const uint16_t sigalg[NCERTS] = {
		[C_P256] = SSL_SIGN_ECDSA_SECP256R1_SHA256,
		[C_P384] = SSL_SIGN_ECDSA_SECP384R1_SHA384,
	};
	static const uint16_t group[NCERTS] = {
		[C_P256] = SSL_CURVE_SECP256R1, [C_P384] = SSL_CURVE_SECP384R1,
	};
	const uint16_t *algs;
	size_t n = SSL_get0_peer_verify_algorithms(ssl, &algs);
	int any = 0, exact = 0;

	if (k == C_RSA)
		return 1;
	for (size_t i = 0; i < n; i++) {
		any |= is_ecdsa_alg(algs[i]);
		exact |= algs[i] == sigalg[k];
	}
	if (SSL_version(ssl) == TLS1_3_VERSION)
		return exact;
	if (!seen.parsed)
		return -1;
	return any && seen.ecdsa_suite && (!seen.has_groups || has_u16(seen.groups, group[k]));
}

static const char *const cert_names[NCERTS][4] = {
	[C_P256] = {"a.example", "*.w.example"},
	[C_RSA] = {"a.example", "b.example", "c.example"},
	[C_P384] = {"c.example"},
};

/* The certificate the rule gives; -1 when it cannot be told. */
static int expected(SSL *ssl, const char *host)
{
	int score[NCERTS] = {0}, top = 0, rsa = -1, first = -1;

	for (int k = 0; k < NCERTS; k++) {
		for (int j = 0; host != NULL && j < 4 && cert_names[k][j] != NULL; j++) {
			int s = sni_match(cert_names[k][j], host);
			if (s > score[k])
				score[k] = s;
		}
		if (score[k] > top)
			top = score[k];
	}
	for (int k = 0; k < NCERTS; k++) {
		if (score[k] != top)
			continue;
		if (first < 0)
			first = k;
		if (k == C_RSA) {
			if (rsa < 0)
				rsa = k;
			continue;
		}
		switch (client_takes(ssl, k)) {
		case 1:
			return k;
		case -1:
			return -1;
		}
	}
	return rsa >= 0 ? rsa : first;
}

/* Runs after portier's select_cert callback put the chosen context in
 * place, before any byte of the server's reply. */
static int check_choice(SSL *ssl, void *arg)
{
	int which = (int)(intptr_t)arg;
	const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
	int chosen = -1, want = expected(ssl, host), ecdsa;
	const uint16_t *algs;
	size_t n = SSL_get0_peer_verify_algorithms(ssl, &algs);
	int takes = 0;

	for (int k = 0; k < NCERTS; k++)
		if (cert_ctx[which][k] == ctx)
			chosen = k;
	if (chosen < 0 || (want >= 0 && chosen != want))
		abort();
	ecdsa = chosen != C_RSA;
	for (size_t i = 0; i < n; i++)
		takes |= is_ecdsa_alg(algs[i]);
	/* Only ECDSA certificates carry *.w.example: a client asking for such
	 * a name gets one whatever it takes (and fails on it). */
	if (ecdsa && !takes && !(host != NULL && under_w(host)))
		abort();
	if (host != NULL && strcasecmp(host, "b.example") == 0 && ecdsa)
		abort();
	return 1;
}

static void setup(void)
{
	char dir[] = "/tmp/portier-fuzz-XXXXXX", text[2048];
	struct diag d = {0};
	EVP_PKEY *ec = new_key(NID_X9_62_prime256v1), *rsa = new_key(0);
	EVP_PKEY *ec384 = new_key(NID_secp384r1);
	struct cfg *c;

	if (mkdtemp(dir) == NULL ||
	    !write_pair(dir, "ecdsa", ec, "DNS:a.example,DNS:*.w.example") ||
	    !write_pair(dir, "rsa", rsa, "DNS:a.example,DNS:b.example,DNS:c.example") ||
	    !write_pair(dir, "p384", ec384, "DNS:c.example"))
		abort();
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec384);
	snprintf(text, sizeof(text),
	         "[tls]\ncert = %s/ecdsa.pem\ncert = %s/rsa.pem\ncert = %s/p384.pem\n"
	         "[h]\nlisten = 127.0.0.1:1\nmode = tls\nprotocol = http\n"
	         "backend = 127.0.0.1:2\n"
	         "[t]\nlisten = 127.0.0.1:3\nmode = tls\nprotocol = tcp\n"
	         "backend = 127.0.0.1:2\n", dir, dir, dir);
	if ((c = cfg_load_string("fuzz.ini", text, &d)) == NULL || c->nlisteners != 2)
		abort();
	for (int i = 0; i < 2; i++) {
		struct tlsctx *t = tlsctx_new_server(c, &c->listeners[i], 0, &d);

		if (t == NULL || t->ncerts != NCERTS || t->certs[C_P256].sni.key != SNI_KEY_P256 ||
		    t->certs[C_RSA].sni.key != SNI_KEY_RSA || t->certs[C_P384].sni.key != SNI_KEY_P384)
			abort();
		for (size_t k = 0; k < t->ncerts; k++) {
			SSL_CTX_set_cert_cb(t->certs[k].ctx, check_choice, (void *)(intptr_t)i);
			cert_ctx[i][k] = t->certs[k].ctx;
		}
		listeners[i] = t;
	}
	cfg_free(c);
	for (size_t i = 0; i < 3; i++) {
		const char *f = i == 0 ? "ecdsa" : i == 1 ? "rsa" : "p384";
		char path[512];
		snprintf(path, sizeof(path), "%s/%s.pem", dir, f);
		unlink(path);
	}
	rmdir(dir);
}

/* The ALPN ids the client offered, as the wire list, from its ClientHello
 * record (one record; a ClientHello split over records is not looked at). */
static int offered_alpn(const uint8_t *d, size_t n, CBS *list)
{
	CBS rec, body, hello, sid, suites, comp, exts, ext;
	uint16_t version, type;
	uint8_t ht;

	CBS_init(&rec, d, n);
	if (!CBS_skip(&rec, 3) || !CBS_get_u16_length_prefixed(&rec, &body) ||
	    !CBS_get_u8(&body, &ht) || ht != 1 ||
	    !CBS_get_u24_length_prefixed(&body, &hello) ||
	    !CBS_get_u16(&hello, &version) || !CBS_skip(&hello, 32) ||
	    !CBS_get_u8_length_prefixed(&hello, &sid) ||
	    !CBS_get_u16_length_prefixed(&hello, &suites) ||
	    !CBS_get_u8_length_prefixed(&hello, &comp) ||
	    !CBS_get_u16_length_prefixed(&hello, &exts))
		return 0;
	while (CBS_get_u16(&exts, &type) && CBS_get_u16_length_prefixed(&exts, &ext))
		if (type == TLSEXT_TYPE_application_layer_protocol_negotiation)
			return CBS_get_u16_length_prefixed(&ext, list);
	return 0;
}

/* Fills hello from the ClientHello record: whether it offers an
 * ECDHE-ECDSA suite of portier's, and its supported_groups. */
static void read_hello(const uint8_t *d, size_t n)
{
	CBS rec, body, h, sid, suites, comp, exts, ext;
	uint16_t version, type, id;
	uint8_t ht;

	memset(&seen, 0, sizeof(seen));
	CBS_init(&rec, d, n);
	if (!CBS_skip(&rec, 3) || !CBS_get_u16_length_prefixed(&rec, &body) ||
	    !CBS_get_u8(&body, &ht) || ht != 1 ||
	    !CBS_get_u24_length_prefixed(&body, &h) ||
	    !CBS_get_u16(&h, &version) || !CBS_skip(&h, 32) ||
	    !CBS_get_u8_length_prefixed(&h, &sid) ||
	    !CBS_get_u16_length_prefixed(&h, &suites) ||
	    !CBS_get_u8_length_prefixed(&h, &comp))
		return;
	while (CBS_get_u16(&suites, &id))
		seen.ecdsa_suite |= id == 0xc02b || id == 0xc02c || id == 0xcca9;
	/* No extensions at all is a whole hello too. */
	if (CBS_len(&h) != 0) {
		if (!CBS_get_u16_length_prefixed(&h, &exts))
			return;
		while (CBS_get_u16(&exts, &type) && CBS_get_u16_length_prefixed(&exts, &ext))
			if (type == TLSEXT_TYPE_supported_groups &&
			    CBS_get_u16_length_prefixed(&ext, &seen.groups))
				seen.has_groups = 1;
	}
	seen.parsed = 1;
}

static int list_has(CBS list, const char *id)
{
	CBS one;

	while (CBS_get_u8_length_prefixed(&list, &one))
		if (CBS_len(&one) == strlen(id) && memcmp(CBS_data(&one), id, CBS_len(&one)) == 0)
			return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct tlsconn *tc;
	int which, sv[2];
	enum tlsctx_io r = TLSCTX_WANT_READ;
	const uint8_t *id;
	unsigned idlen;
	char why[256];
	CBS alpn;

	if (!ready) {
		setup();
		ready = 1;
	}
	if (size < 1)
		return 0;
	which = data[0] & 1;
	data++;
	size--;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 ||
	    fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0)
		abort();
	/* The whole flight, then EOF: what a client that sent it and stopped
	 * looks like to a worker. It fits the socket buffer (max_len). */
	if (size > 0 && write(sv[1], data, size) != (ssize_t)size)
		abort();
	shutdown(sv[1], SHUT_WR);
	read_hello(data, size);
	if ((tc = tlsctx_accept(listeners[which], sv[0])) == NULL)
		abort();
	for (int i = 0; i < 8 && (r == TLSCTX_WANT_READ || r == TLSCTX_WANT_WRITE); i++) {
		tlsctx_readable(tc);
		r = tlsctx_handshake(tc);
	}
	if (r == TLSCTX_ERROR)
		tlsctx_error(tc, why, sizeof(why));   /* must not trip on any failure */

	SSL_get0_alpn_selected((SSL *)tc, &id, &idlen);
	if (idlen != 0 && (which != 0 || idlen != 8 || memcmp(id, "http/1.1", 8) != 0))
		abort();
	/* The http listener refuses a client whose ALPN list lacks its id. A
	 * ServerHello went out iff the server's write side holds bytes that
	 * start with a handshake record; an alert record is 21. */
	if (which == 0 && offered_alpn(data, size, &alpn) && CBS_len(&alpn) > 0 &&
	    !list_has(alpn, "http/1.1")) {
		uint8_t first;
		if (recv(sv[1], &first, 1, MSG_DONTWAIT | MSG_PEEK) == 1 && first == 22)
			abort();
	}
	tlsctx_conn_free(tc);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
