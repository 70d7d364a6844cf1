#include "tlsctx_int.h"

#include "expiry.h"

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

/* Reads every certificate of a PEM file, leaf first, in one open of it:
 * the chain checked is the chain served, even if the file is replaced
 * meanwhile. NULL, with why, when it cannot be read, holds no certificate
 * or a broken one. */
static STACK_OF(X509) *read_chain(const char *path, char *why, size_t len)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	BIO *bio = NULL;
	X509 *x;
	unsigned long e;

	ERR_clear_error();
	errno = 0;
	if (chain == NULL || (bio = BIO_new_file(path, "r")) == NULL) {
		if (errno == ENOENT || errno == EACCES)
			snprintf(why, len, "%s", strerror(errno));
		else
			tlsctx_drain_errors(why, len);
		ERR_clear_error();
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

int tlsctx_load_cert(struct tlsctx *t, struct tlscert *tc, const struct cfg *c,
                     const struct cfg_listener *l, const struct cfg_cert *cc,
                     int reload, struct diag *d)
{
	const char *keyfile = cc->key ? cc->key : cc->cert;
	char err[256];
	STACK_OF(X509) *chain;
	int ktype, ok;

	if ((tc->ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    tlsctx_configure(tc->ctx, t, &l->tls) < 0) {
		diag_add(d, 0, c->file, cc->line, SECTION(l, cc), "curves", "%s",
		         tlsctx_drain_errors(err, sizeof(err)));
		return -1;
	}
	if ((chain = read_chain(cc->cert, err, sizeof(err))) == NULL) {
		diag_add(d, 0, c->file, cc->line, SECTION(l, cc), "cert", "%s: %s", cc->cert,
		         err);
		return -1;
	}
	ok = SSL_CTX_use_certificate(tc->ctx, sk_X509_value(chain, 0));
	for (size_t i = 1; ok && i < sk_X509_num(chain); i++)
		ok = SSL_CTX_add1_chain_cert(tc->ctx, sk_X509_value(chain, i));
	if (!ok) {
		diag_add(d, 0, c->file, cc->line, SECTION(l, cc), "cert", "%s: %s", cc->cert,
		         tlsctx_drain_errors(err, sizeof(err)));
		sk_X509_pop_free(chain, X509_free);
		return -1;
	}
	if (!SSL_CTX_use_PrivateKey_file(tc->ctx, keyfile, SSL_FILETYPE_PEM)) {
		unsigned long e = ERR_peek_error();
		/* An RSA key for an ECDSA certificate is a mismatch too. */
		int mismatch = ERR_GET_LIB(e) == ERR_LIB_X509 &&
		               (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
		                ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH);

		diag_add(d, 0, c->file, cc->key ? cc->key_line : cc->line, SECTION(l, cc),
		         "key", "%s: %s", keyfile, mismatch
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
	if (cc->ocsp != NULL)
		(void)tlsctx_staple_load(tc, chain, c, l, cc, reload, d);
	sk_X509_pop_free(chain, X509_free);
	return 0;
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
