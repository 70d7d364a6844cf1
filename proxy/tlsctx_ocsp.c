/*
 * OCSP responses for stapling: a strict CBS reader of the DER (RFC 6960,
 * section 4.2.1) and the checks that make one fit to staple. Everything
 * here reads bytes from a file an admin fetched from a CA's responder, so
 * it is bounded and trusts nothing: the file may be truncated, another
 * certificate's, forged or stale.
 */

#include "tlsctx_ocsp.h"

#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#define CTX0 (CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 0)
#define CTX1 (CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 1)
#define CTX2 (CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 2)

/* 1.3.6.1.5.5.7.48.1.1 id-pkix-ocsp-basic */
static const uint8_t oid_basic[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01};
/* CertID hashes: 1.3.14.3.2.26 SHA-1, 2.16.840.1.101.3.4.2.1 SHA-256 */
static const uint8_t oid_sha1[] = {0x2b, 0x0e, 0x03, 0x02, 0x1a};
static const uint8_t oid_sha256[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01};

static int oid_is(const CBS *oid, const uint8_t *want, size_t n)
{
	return CBS_len(oid) == n && memcmp(CBS_data(oid), want, n) == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Hinnant's method). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const uint8_t *p, size_t n, unsigned *out)
{
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	*out = v;
	return 1;
}

/* A GeneralizedTime, "YYYYMMDDHHMMSS[.f...]Z" (UTC, as DER has it). */
static int get_time(CBS *cbs, int64_t *out)
{
	static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	CBS t;
	const uint8_t *p;
	size_t n;
	unsigned y, mo, d, h, mi, s;

	if (!CBS_get_asn1(cbs, &t, CBS_ASN1_GENERALIZEDTIME))
		return 0;
	p = CBS_data(&t);
	n = CBS_len(&t);
	if (n < 15 || p[n - 1] != 'Z' || !digits(p, 4, &y) || !digits(p + 4, 2, &mo) ||
	    !digits(p + 6, 2, &d) || !digits(p + 8, 2, &h) || !digits(p + 10, 2, &mi) ||
	    !digits(p + 12, 2, &s))
		return 0;
	if (n > 15) {   /* fractional seconds: ".", at least one digit */
		unsigned f;
		if (p[14] != '.' || n < 17 || n > 15 + 10 || !digits(p + 15, n - 16, &f))
			return 0;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || s > 59 ||
	    (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
		return 0;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
	return 1;
}

/* Extensions: understood or not, none may be critical. */
static int extensions_ok(CBS *exts, const char **why)
{
	CBS seq, ext, oid, val;
	int crit;

	if (!CBS_get_asn1(exts, &seq, CBS_ASN1_SEQUENCE) || CBS_len(exts) != 0)
		return *why = "malformed extensions", 0;
	while (CBS_len(&seq) > 0) {
		/* critical BOOLEAN DEFAULT FALSE sits in the extension itself,
		 * untagged (CBS_get_optional_asn1_bool would want it inside an
		 * explicit tag). */
		crit = 0;
		if (!CBS_get_asn1(&seq, &ext, CBS_ASN1_SEQUENCE) ||
		    !CBS_get_asn1(&ext, &oid, CBS_ASN1_OBJECT) ||
		    (CBS_peek_asn1_tag(&ext, CBS_ASN1_BOOLEAN) && !CBS_get_asn1_bool(&ext, &crit)) ||
		    !CBS_get_asn1(&ext, &val, CBS_ASN1_OCTETSTRING) || CBS_len(&ext) != 0)
			return *why = "malformed extension", 0;
		if (crit)
			return *why = "an extension marked critical that portier does not know", 0;
	}
	return 1;
}

static int get_single(CBS *list, struct tlsocsp_single *s, const char **why)
{
	CBS sr, id, alg, cs, next;
	unsigned tag;
	int present;

	memset(s, 0, sizeof(*s));
	if (!CBS_get_asn1(list, &sr, CBS_ASN1_SEQUENCE) ||
	    !CBS_get_asn1(&sr, &id, CBS_ASN1_SEQUENCE) ||
	    !CBS_get_asn1(&id, &alg, CBS_ASN1_SEQUENCE) ||
	    !CBS_get_asn1(&alg, &s->hash_oid, CBS_ASN1_OBJECT) ||
	    !CBS_get_asn1(&id, &s->name_hash, CBS_ASN1_OCTETSTRING) ||
	    !CBS_get_asn1(&id, &s->key_hash, CBS_ASN1_OCTETSTRING) ||
	    !CBS_get_asn1_element(&id, &s->serial, CBS_ASN1_INTEGER) || CBS_len(&id) != 0)
		return *why = "malformed CertID", 0;
	/* The hash's parameters: absent or NULL. */
	if (CBS_len(&alg) != 0 && !(CBS_len(&alg) == 2 && CBS_data(&alg)[0] == 0x05 &&
	                            CBS_data(&alg)[1] == 0x00))
		return *why = "malformed CertID", 0;
	{
		CBS v = s->serial, n;
		if (!CBS_get_asn1(&v, &n, CBS_ASN1_INTEGER) || !CBS_is_valid_asn1_integer(&n, NULL))
			return *why = "malformed CertID serial number", 0;
	}
	if (!CBS_get_any_asn1(&sr, &cs, &tag))
		return *why = "malformed certStatus", 0;
	if (tag == (CBS_ASN1_CONTEXT_SPECIFIC | 0) && CBS_len(&cs) == 0) {
		s->status = TLSOCSP_GOOD;
	} else if (tag == CTX1) {
		CBS reason;
		s->status = TLSOCSP_REVOKED;
		if (!get_time(&cs, &s->revoked_at) ||
		    !CBS_get_optional_asn1(&cs, &reason, &present, CTX0) || CBS_len(&cs) != 0)
			return *why = "malformed revokedInfo", 0;
	} else if (tag == (CBS_ASN1_CONTEXT_SPECIFIC | 2) && CBS_len(&cs) == 0) {
		s->status = TLSOCSP_UNKNOWN;
	} else {
		return *why = "malformed certStatus", 0;
	}
	if (!get_time(&sr, &s->this_update))
		return *why = "malformed thisUpdate", 0;
	if (!CBS_get_optional_asn1(&sr, &next, &s->has_next, CTX0) ||
	    (s->has_next && (!get_time(&next, &s->next_update) || CBS_len(&next) != 0)))
		return *why = "malformed nextUpdate", 0;
	if (CBS_peek_asn1_tag(&sr, CTX1)) {
		CBS exts;
		if (!CBS_get_asn1(&sr, &exts, CTX1) || !extensions_ok(&exts, why))
			return 0;
	}
	if (CBS_len(&sr) != 0)
		return *why = "malformed SingleResponse", 0;
	return 1;
}

static int get_tbs(struct tlsocsp *o, const char **why)
{
	CBS td = o->tbs, rd, rid, list;
	unsigned tag;
	uint64_t version = 0;

	if (!CBS_get_asn1(&td, &rd, CBS_ASN1_SEQUENCE) || CBS_len(&td) != 0)
		return *why = "malformed ResponseData", 0;
	if (CBS_peek_asn1_tag(&rd, CTX0)) {
		CBS v;
		if (!CBS_get_asn1(&rd, &v, CTX0) || !CBS_get_asn1_uint64(&v, &version) ||
		    CBS_len(&v) != 0 || version != 0)
			return *why = "not an OCSP response of version 1", 0;
	}
	if (!CBS_get_any_asn1(&rd, &rid, &tag))
		return *why = "malformed ResponderID", 0;
	if (tag == CTX1) {
		o->responder_by_key = 0;
		if (!CBS_get_asn1_element(&rid, &o->responder, CBS_ASN1_SEQUENCE) ||
		    CBS_len(&rid) != 0)
			return *why = "malformed ResponderID", 0;
	} else if (tag == CTX2) {
		o->responder_by_key = 1;
		if (!CBS_get_asn1(&rid, &o->responder, CBS_ASN1_OCTETSTRING) ||
		    CBS_len(&o->responder) != SHA_DIGEST_LENGTH || CBS_len(&rid) != 0)
			return *why = "malformed ResponderID", 0;
	} else {
		return *why = "malformed ResponderID", 0;
	}
	if (!get_time(&rd, &o->produced_at))
		return *why = "malformed producedAt", 0;
	if (!CBS_get_asn1(&rd, &list, CBS_ASN1_SEQUENCE))
		return *why = "malformed responses", 0;
	while (CBS_len(&list) > 0) {
		if (o->nsingles == TLSOCSP_MAX_SINGLES)
			return *why = "more than 16 SingleResponses", 0;
		if (!get_single(&list, &o->singles[o->nsingles++], why))
			return 0;
	}
	if (o->nsingles == 0)
		return *why = "no SingleResponse in it", 0;
	if (CBS_peek_asn1_tag(&rd, CTX1)) {
		CBS exts;
		if (!CBS_get_asn1(&rd, &exts, CTX1) || !extensions_ok(&exts, why))
			return 0;
	}
	if (CBS_len(&rd) != 0)
		return *why = "malformed ResponseData", 0;
	return 1;
}

/* responseStatus names, RFC 6960 4.2.1 (4 is not used). */
static const char *status_words(uint8_t st)
{
	switch (st) {
	case 1: return "the responder answered malformedRequest, not successful";
	case 2: return "the responder answered internalError, not successful";
	case 3: return "the responder answered tryLater, not successful";
	case 5: return "the responder answered sigRequired, not successful";
	case 6: return "the responder answered unauthorized (it does not answer for "
	               "this CA), not successful";
	default: return "the responder's status is not successful";
	}
}

int tlsocsp_parse(const uint8_t *der, size_t len, struct tlsocsp *out, const char **why)
{
	CBS in, resp, st, rbw, rb, oid, bytes, basic, alg, bits;
	int present;
	uint8_t unused;

	memset(out, 0, sizeof(*out));
	*why = "not a DER OCSP response (as 'openssl ocsp -respout' writes)";
	if (len > TLSOCSP_MAX_BYTES)
		return *why = "longer than 64 KiB: not an OCSP response", -1;
	CBS_init(&in, der, len);
	if (!CBS_get_asn1(&in, &resp, CBS_ASN1_SEQUENCE) || CBS_len(&in) != 0 ||
	    !CBS_get_asn1(&resp, &st, CBS_ASN1_ENUMERATED) || CBS_len(&st) != 1)
		return -1;
	if (CBS_data(&st)[0] != 0)
		return *why = status_words(CBS_data(&st)[0]), -1;
	if (!CBS_get_optional_asn1(&resp, &rbw, &present, CTX0) || !present ||
	    CBS_len(&resp) != 0 || !CBS_get_asn1(&rbw, &rb, CBS_ASN1_SEQUENCE) ||
	    CBS_len(&rbw) != 0 || !CBS_get_asn1(&rb, &oid, CBS_ASN1_OBJECT) ||
	    !CBS_get_asn1(&rb, &bytes, CBS_ASN1_OCTETSTRING) || CBS_len(&rb) != 0)
		return -1;
	if (!oid_is(&oid, oid_basic, sizeof(oid_basic)))
		return *why = "not a BasicOCSPResponse", -1;
	if (!CBS_get_asn1(&bytes, &basic, CBS_ASN1_SEQUENCE) || CBS_len(&bytes) != 0 ||
	    !CBS_get_asn1_element(&basic, &out->tbs, CBS_ASN1_SEQUENCE) ||
	    !CBS_get_asn1(&basic, &alg, CBS_ASN1_SEQUENCE) ||
	    !CBS_get_asn1(&alg, &out->sig_oid, CBS_ASN1_OBJECT))
		return *why = "malformed BasicOCSPResponse", -1;
	out->sig_params = alg;   /* what follows the OID: nothing, or one element */
	if (CBS_len(&alg) > 0) {
		CBS p;
		if (!CBS_get_any_asn1_element(&alg, &p, NULL, NULL) || CBS_len(&alg) != 0)
			return *why = "malformed signatureAlgorithm", -1;
	}
	if (!CBS_get_asn1(&basic, &bits, CBS_ASN1_BITSTRING) ||
	    !CBS_get_u8(&bits, &unused) || unused != 0 || CBS_len(&bits) == 0)
		return *why = "malformed signature", -1;
	out->sig = bits;
	if (CBS_peek_asn1_tag(&basic, CTX0)) {
		CBS w, seq;
		if (!CBS_get_asn1(&basic, &w, CTX0) || !CBS_get_asn1(&w, &seq, CBS_ASN1_SEQUENCE) ||
		    CBS_len(&w) != 0)
			return *why = "malformed certs", -1;
		while (CBS_len(&seq) > 0) {
			if (out->ncerts == TLSOCSP_MAX_CERTS)
				return *why = "more than 4 certificates in it", -1;
			if (!CBS_get_asn1_element(&seq, &out->certs[out->ncerts++],
			                          CBS_ASN1_SEQUENCE))
				return *why = "malformed certs", -1;
		}
	}
	if (CBS_len(&basic) != 0)
		return *why = "malformed BasicOCSPResponse", -1;
	return get_tbs(out, why) ? 0 : -1;
}

/* ---- the checks ---- */

const char *tlsocsp_utc(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, len, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(out, len, "%lld", (long long)t);
	return out;
}

/* SHA-1 of a certificate's subjectPublicKey bits: the key hash of CertID
 * and of a ResponderID byKey. */
static int key_hash(X509 *x, const EVP_MD *md, uint8_t *out, unsigned *outlen)
{
	const ASN1_BIT_STRING *k = X509_get0_pubkey_bitstr(x);

	return k != NULL && EVP_Digest(ASN1_STRING_get0_data(k), (size_t)ASN1_STRING_length(k),
	                               out, outlen, md, NULL);
}

/* Whether single is about leaf, issued by issuer. */
static int is_for(const struct tlsocsp_single *s, X509 *leaf, X509 *issuer)
{
	const EVP_MD *md;
	uint8_t h[EVP_MAX_MD_SIZE], *name = NULL, *serial = NULL;
	unsigned hl;
	int nl, sl, ok = 0;

	if (oid_is(&s->hash_oid, oid_sha1, sizeof(oid_sha1)))
		md = EVP_sha1();
	else if (oid_is(&s->hash_oid, oid_sha256, sizeof(oid_sha256)))
		md = EVP_sha256();
	else
		return 0;
	if ((sl = i2d_ASN1_INTEGER(X509_get0_serialNumber(leaf), &serial)) <= 0 ||
	    !CBS_mem_equal(&s->serial, serial, (size_t)sl))
		goto out;
	if ((nl = i2d_X509_NAME(X509_get_subject_name(issuer), &name)) <= 0 ||
	    !EVP_Digest(name, (size_t)nl, h, &hl, md, NULL) || !CBS_mem_equal(&s->name_hash, h, hl))
		goto out;
	ok = key_hash(issuer, md, h, &hl) && CBS_mem_equal(&s->key_hash, h, hl);
out:
	OPENSSL_free(name);
	OPENSSL_free(serial);
	return ok;
}

/* Whether the ResponderID names certificate x. */
static int names(const struct tlsocsp *o, X509 *x)
{
	uint8_t h[EVP_MAX_MD_SIZE], *name = NULL;
	unsigned hl;
	int nl, ok;

	if (o->responder_by_key)
		return key_hash(x, EVP_sha1(), h, &hl) && CBS_mem_equal(&o->responder, h, hl);
	if ((nl = i2d_X509_NAME(X509_get_subject_name(x), &name)) <= 0)
		return 0;
	ok = CBS_mem_equal(&o->responder, name, (size_t)nl);
	OPENSSL_free(name);
	return ok;
}

/* The signature over tbsResponseData, by key pk. */
static int signature_ok(const struct tlsocsp *o, EVP_PKEY *pk, const char **why)
{
	/* sha{256,384,512}WithRSAEncryption, ecdsa-with-SHA{256,384,512},
	 * Ed25519; the last byte of the OID picks the hash. */
	static const uint8_t rsa[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01};
	static const uint8_t ecdsa[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03};
	static const uint8_t ed25519[] = {0x2b, 0x65, 0x70};
	const uint8_t *oid = CBS_data(&o->sig_oid);
	size_t n = CBS_len(&o->sig_oid);
	const EVP_MD *md = NULL;
	int type, ok;
	EVP_MD_CTX ctx;

	if (n == sizeof(rsa) + 1 && memcmp(oid, rsa, sizeof(rsa)) == 0) {
		type = EVP_PKEY_RSA;
		md = oid[n - 1] == 11 ? EVP_sha256() : oid[n - 1] == 12 ? EVP_sha384()
		   : oid[n - 1] == 13 ? EVP_sha512() : NULL;
		if (oid[n - 1] == 5)
			return *why = "signed with SHA-1, which portier does not accept", 0;
		/* parameters: NULL or absent */
		if (CBS_len(&o->sig_params) != 0 &&
		    !(CBS_len(&o->sig_params) == 2 && CBS_data(&o->sig_params)[0] == 0x05 &&
		      CBS_data(&o->sig_params)[1] == 0x00))
			md = NULL;
	} else if (n == sizeof(ecdsa) + 1 && memcmp(oid, ecdsa, sizeof(ecdsa)) == 0) {
		type = EVP_PKEY_EC;
		md = oid[n - 1] == 2 ? EVP_sha256() : oid[n - 1] == 3 ? EVP_sha384()
		   : oid[n - 1] == 4 ? EVP_sha512() : NULL;
		if (CBS_len(&o->sig_params) != 0)
			md = NULL;
	} else if (oid_is(&o->sig_oid, ed25519, sizeof(ed25519)) &&
	           CBS_len(&o->sig_params) == 0) {
		type = EVP_PKEY_ED25519;
	} else {
		type = EVP_PKEY_NONE;
	}
	if (type == EVP_PKEY_NONE || (type != EVP_PKEY_ED25519 && md == NULL))
		return *why = "signed with an algorithm portier does not know "
		              "(RSA PKCS#1, ECDSA or Ed25519 with SHA-2 expected)", 0;
	if (EVP_PKEY_id(pk) != type)
		return *why = "the signature's algorithm does not fit the signer's key", 0;
	EVP_MD_CTX_init(&ctx);
	ok = EVP_DigestVerifyInit(&ctx, NULL, md, NULL, pk) &&
	     EVP_DigestVerify(&ctx, CBS_data(&o->sig), CBS_len(&o->sig),
	                      CBS_data(&o->tbs), CBS_len(&o->tbs));
	EVP_MD_CTX_cleanup(&ctx);
	ERR_clear_error();
	if (!ok)
		*why = "the signature does not verify (corrupted, or not this responder's)";
	return ok;
}

/* Whether x may answer for issuer: issued (and signed) by it, for
 * OCSPSigning, and valid now. */
static int delegate_ok(X509 *x, X509 *issuer, int64_t now, const char **why)
{
	EVP_PKEY *ik = X509_get_pubkey(issuer);
	time_t t = (time_t)now;
	int signed_ok = X509_check_issued(issuer, x) == X509_V_OK && ik != NULL &&
	                X509_verify(x, ik) == 1;

	EVP_PKEY_free(ik);
	if (!signed_ok)
		return *why = "signed by a responder certificate the certificate's issuer "
		              "did not sign", 0;
	if (X509_get_ext_by_NID(x, NID_ext_key_usage, -1) < 0 ||
	    !(X509_get_extended_key_usage(x) & XKU_OCSP_SIGN))
		return *why = "signed by a responder certificate without the OCSPSigning "
		              "extended key usage", 0;
	/* X509_cmp_time: negative when the time is at or before t, positive
	 * after, 0 when it cannot tell. */
	if (X509_cmp_time(X509_get0_notBefore(x), &t) >= 0 ||
	    X509_cmp_time(X509_get0_notAfter(x), &t) <= 0)
		return *why = "signed by a responder certificate that is not valid now", 0;
	return 1;
}

int tlsocsp_check(const uint8_t *der, size_t len, X509 *leaf, X509 *issuer, int64_t now,
                  struct tlsocsp_result *res, char *why, size_t whylen)
{
	struct tlsocsp o;
	const struct tlsocsp_single *s = NULL;
	const char *w = NULL;
	X509 *signer = NULL, *delegate = NULL;
	EVP_PKEY *pk = NULL;
	char when[40];
	int ok = 0;

	memset(res, 0, sizeof(*res));
	if (tlsocsp_parse(der, len, &o, &w) < 0) {
		snprintf(why, whylen, "%s", w);
		return -1;
	}
	for (size_t i = 0; i < o.nsingles && s == NULL; i++)
		if (is_for(&o.singles[i], leaf, issuer))
			s = &o.singles[i];
	ERR_clear_error();
	if (s == NULL) {
		snprintf(why, whylen, "the response is not about this certificate (no "
		         "CertID with its serial and issuer); fetch it with -cert and -issuer "
		         "of this certificate");
		return -1;
	}
	if (names(&o, issuer)) {
		signer = issuer;
	} else {
		for (size_t i = 0; i < o.ncerts && signer == NULL; i++) {
			const uint8_t *p = CBS_data(&o.certs[i]);
			X509 *x = d2i_X509(NULL, &p, (long)CBS_len(&o.certs[i]));
			if (x != NULL && p == CBS_data(&o.certs[i]) + CBS_len(&o.certs[i]) &&
			    names(&o, x))
				signer = delegate = x;
			else
				X509_free(x);
		}
		ERR_clear_error();
		if (signer == NULL) {
			snprintf(why, whylen, "signed by a responder that is neither the "
			         "certificate's issuer nor a certificate in the response");
			return -1;
		}
		if (!delegate_ok(delegate, issuer, now, &w))
			goto out;
	}
	if ((pk = X509_get_pubkey(signer)) == NULL) {
		w = "the signer's key cannot be read";
		goto out;
	}
	if (!signature_ok(&o, pk, &w))
		goto out;
	if (s->status == TLSOCSP_REVOKED) {
		snprintf(why, whylen, "the CA says the certificate was revoked on %s",
		         tlsocsp_utc(s->revoked_at, when, sizeof(when)));
		goto out_said;
	}
	if (s->status != TLSOCSP_GOOD) {
		w = "the responder does not know the certificate (status unknown)";
		goto out;
	}
	if (s->has_next && s->next_update < s->this_update) {
		w = "nextUpdate before thisUpdate";
		goto out;
	}
	/* Last, so that a stale response is one that fits but for the time. */
	if (s->this_update > now + TLSOCSP_SKEW_S) {
		snprintf(why, whylen, "thisUpdate %s is in the future; check the clock",
		         tlsocsp_utc(s->this_update, when, sizeof(when)));
		res->stale = 1;
		goto out_said;
	}
	if (s->has_next && s->next_update <= now) {
		snprintf(why, whylen, "expired: its nextUpdate %s has passed; fetch a new one",
		         tlsocsp_utc(s->next_update, when, sizeof(when)));
		res->stale = 1;
		goto out_said;
	}
	res->this_update = s->this_update;
	res->next_update = s->next_update;
	res->has_next = s->has_next;
	res->delegated = delegate != NULL;
	ok = 1;
out:
	if (!ok)
		snprintf(why, whylen, "%s", w ? w : "not acceptable");
out_said:
	EVP_PKEY_free(pk);
	X509_free(delegate);
	ERR_clear_error();
	return ok ? 0 : -1;
}
