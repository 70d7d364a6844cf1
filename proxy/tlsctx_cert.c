#include "tlsctx_int.h"

#include "expiry.h"
#include "log.h"

#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loading and checking certificates, once per listener at start or -t. */


/* Problems with a certificate are reported where its line is. */
#define SECTION(l, cc) ((cc)->inherited ? "tls" : (l)->name)

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

/* The names of x into e: its subjectAltName's DNS entries, or its subject
 * CN when it has no subjectAltName (*has_san says which). */
static int collect_names(X509 *x, struct sni_entry *e, int *has_san)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int rc = 0;

	*has_san = gens != NULL;
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

/* Every certificate of a PEM file's bytes, leaf first. NULL, with why,
 * when they hold no certificate or a broken one. */
static STACK_OF(X509) *read_chain(const struct tlsfile *f, char *why, size_t len)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	BIO *bio = NULL;
	X509 *x = NULL;
	unsigned long e;

	ERR_clear_error();
	if (chain == NULL || (bio = BIO_new_mem_buf(f->p, f->len)) == NULL) {
		snprintf(why, len, "out of memory");
		sk_X509_free(chain);
		return NULL;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(chain, x)) {
			X509_free(x);
			break;
		}
	BIO_free(bio);
	/* The loop ends on "no start line" at the end of the file; any
	 * other error is a block that does not parse. */
	e = ERR_peek_last_error();
	if (x == NULL && ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
		ERR_clear_error();
		if (sk_X509_num(chain) > 0)
			return chain;
		snprintf(why, len, "no PEM certificate in it; expected -----BEGIN "
		         "CERTIFICATE-----");
	} else {
		tlsctx_drain_errors(why, len);
	}
	sk_X509_pop_free(chain, X509_free);
	return NULL;
}

/* The first private key in a PEM file's bytes, or NULL. */
static EVP_PKEY *read_key(const struct tlsfile *f)
{
	BIO *bio = BIO_new_mem_buf(f->p, f->len);
	EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return pk;
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

/* The key of x as certificate selection tells keys apart: an ECDSA key by
 * its curve, which a TLS 1.3 client's signature algorithms name. */
static enum sni_key key_of(X509 *x)
{
	EVP_PKEY *pub = X509_get_pubkey(x);
	enum sni_key k = SNI_KEY_OTHER;

	switch (pub ? EVP_PKEY_id(pub) : EVP_PKEY_NONE) {
	case EVP_PKEY_RSA:
		k = SNI_KEY_RSA;
		break;
	case EVP_PKEY_ED25519:
		k = SNI_KEY_ED25519;
		break;
	case EVP_PKEY_EC:
		switch (EC_GROUP_get_curve_name(EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(pub)))) {
		case NID_X9_62_prime256v1:
			k = SNI_KEY_P256;
			break;
		case NID_secp384r1:
			k = SNI_KEY_P384;
			break;
		case NID_secp521r1:
			k = SNI_KEY_P521;
			break;
		}
		break;
	}
	EVP_PKEY_free(pub);
	ERR_clear_error();
	return k;
}

int tlsctx_load_cert(struct tlsctx *t, struct tlscert *tc, const struct cfg *c,
                     const struct cfg_listener *l, const struct cfg_cert *cc,
                     int reload, struct diag *d)
{
	const char *keyfile = cc->key ? cc->key : cc->cert;
	int keyline = cc->key ? cc->key_line : cc->line;
	struct tlsfile cf = {0}, kf = {0};
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *pk = NULL;
	char err[256];
	int ok, has_san, rc = -1;

	if ((tc->ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    tlsctx_configure(tc->ctx, t, &l->tls, l->name) < 0) {
		diag_add(d, 0, c->file, cc->line, SECTION(l, cc), "curves", "%s",
		         tlsctx_drain_errors(err, sizeof(err)));
		return -1;
	}
	/* Each file is read once: the certificate and key checked are the
	 * ones served, even if a renewal replaces the files meanwhile. */
	if (tlsctx_file_read(cc->cert, TLSCERT_FILE_MAX_BYTES, "a certificate chain", &cf,
	                     err, sizeof(err)) < 0 ||
	    (chain = read_chain(&cf, err, sizeof(err))) == NULL) {
		diag_add(d, 0, c->file, cc->line, SECTION(l, cc), "cert", "%s: %s", cc->cert,
		         err);
		goto out;
	}
	ok = SSL_CTX_use_certificate(tc->ctx, sk_X509_value(chain, 0));
	for (size_t i = 1; ok && i < sk_X509_num(chain); i++)
		ok = SSL_CTX_add1_chain_cert(tc->ctx, sk_X509_value(chain, i));
	if (!ok) {
		diag_add(d, 0, c->file, cc->line, SECTION(l, cc), "cert", "%s: %s", cc->cert,
		         tlsctx_drain_errors(err, sizeof(err)));
		goto out;
	}
	if (cc->key != NULL &&
	    tlsctx_file_read(cc->key, TLSCERT_FILE_MAX_BYTES, "a private key", &kf, err,
	                     sizeof(err)) < 0) {
		diag_add(d, 0, c->file, keyline, SECTION(l, cc), "key", "%s: %s", keyfile, err);
		goto out;
	}
	if ((pk = read_key(cc->key ? &kf : &cf)) == NULL) {
		diag_add(d, 0, c->file, keyline, SECTION(l, cc), "key", "%s: %s", keyfile,
		         cc->key ? "cannot read a PEM private key"
		                 : "no private key in the cert file; add 'key = /path'");
		ERR_clear_error();
		goto out;
	}
	if (!SSL_CTX_use_PrivateKey(tc->ctx, pk)) {
		unsigned long e = ERR_peek_error();
		/* An RSA key for an ECDSA certificate is a mismatch too. */
		int mismatch = ERR_GET_LIB(e) == ERR_LIB_X509 &&
		               (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
		                ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);

		diag_add(d, 0, c->file, keyline, SECTION(l, cc), "key", "%s: %s", keyfile,
		         mismatch ? "private key does not match the certificate"
		                  : tlsctx_drain_errors(err, sizeof(err)));
		ERR_clear_error();
		goto out;
	}
	check_chain(chain, c, l, cc, d);
	/* A subjectAltName of addresses only is not "no subjectAltName": say
	 * why its CN was not taken instead. */
	if (collect_names(sk_X509_value(chain, 0), &tc->sni, &has_san) < 0 ||
	    tc->sni.nnames == 0)
		diag_add(d, 0, c->file, cc->line, SECTION(l, cc), "cert", "%s: the certificate "
		         "names no DNS host%s", cc->cert,
		         has_san ? ": its subjectAltName has no DNS entry, and a CN does not "
		                   "count beside one"
		                 : " (no subjectAltName, no CN); clients cannot verify it");
	else if (!has_san) {
		/* Served as asked, but the admin should know who refuses it:
		 * browsers have ignored the CN since 2017, and RFC 9525 took
		 * out the fallback RFC 6125 6.4.4 allowed. */
		char name[128];

		diag_add(d, 1, c->file, cc->line, SECTION(l, cc), "cert", "%s: the certificate "
		         "names %s by its subject CN alone (no subjectAltName): browsers "
		         "refuse it, clients built on OpenSSL still accept it; reissue it "
		         "with a subjectAltName", cc->cert,
		         log_escape_str(tc->sni.names[0], name, sizeof(name)));
	}
	tc->sni.key = key_of(sk_X509_value(chain, 0));
	if (cc->ocsp != NULL)
		(void)tlsctx_staple_load(tc, chain, c, l, cc, reload, d);
	rc = 0;
out:
	EVP_PKEY_free(pk);
	sk_X509_pop_free(chain, X509_free);
	tlsctx_file_free(&kf);
	tlsctx_file_free(&cf);
	return rc;
}

int tlsctx_own_cert(const struct tlsctx *t, size_t i, struct tlsctx_cert_info *info)
{
	X509 *x;

	memset(info, 0, sizeof(*info));
	if (t == NULL || i >= t->ncerts || t->certs[i].ctx == NULL ||
	    (x = SSL_CTX_get0_certificate(t->certs[i].ctx)) == NULL)
		return -1;
	tlsctx_x509_describe(x, info);
	ERR_clear_error();
	return 0;
}
