/* OCSP stapling's reader and checks (tlsctx_ocsp.c) on real responses:
 * ocsp_fixtures.sh makes a test CA and answers for its certificates with
 * `openssl ocsp` as the responder (signed by the CA, by a delegated
 * responder, by ones that may not answer; good, revoked, unknown, another
 * certificate's; with SHA-1 or RSA-PSS); this test checks what
 * tlsocsp_check says of each, at the time they were made and later, and of
 * damaged copies. What `openssl ocsp` cannot write (extensions, a
 * nextUpdate before thisUpdate, a signatureAlgorithm that lies) is made
 * here from its responses, re-encoded and signed again with the same key
 * (remake), so that only the one thing changed is wrong. */
#include "check.h"
#include "tlsctx_ocsp.h"

#include <openssl/bytestring.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef OCSP_FIXTURES
#error "OCSP_FIXTURES: the path of ocsp_fixtures.sh"
#endif

static char dir[] = "/tmp/portier-test-ocsp-XXXXXX";

struct blob {
	uint8_t *p;
	size_t n;
};

static struct blob slurp(const char *name)
{
	char path[256];
	struct blob b = {0};
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "rb")) == NULL)
		return b;
	b.p = malloc(TLSOCSP_MAX_BYTES);
	if (b.p)
		b.n = fread(b.p, 1, TLSOCSP_MAX_BYTES, f);
	fclose(f);
	return b;
}

static X509 *cert(const char *name)
{
	char path[256];
	FILE *f;
	X509 *x;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	return x;
}

static EVP_PKEY *key(const char *name)
{
	char path[256];
	FILE *f;
	EVP_PKEY *k;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

static X509 *leaf, *ca, *ca2, *other, *revoked, *stray;
static EVP_PKEY *ca_key, *resp_key;
static int64_t t0;

/* The response in file name, checked for x (issued by ca) at now: 0 and
 * res, or -1 and a reason containing want. */
static int check_at(const char *name, X509 *x, X509 *iss, int64_t now,
                    struct tlsocsp_result *res, const char *want)
{
	struct blob b = slurp(name);
	char why[256] = "";
	int rc;

	CHECK(b.n > 0);
	rc = tlsocsp_check(b.p, b.n, x, iss, now, res, why, sizeof(why));
	if (want != NULL && strstr(why, want) == NULL) {
		fprintf(stderr, "%s: wanted '%s' in: %s\n", name, want, why);
		CHECK(0);
	}
	if (want == NULL && rc != 0)
		fprintf(stderr, "%s: refused: %s\n", name, why);
	free(b.p);
	return rc;
}

/* The response b (what, for the report) checked for leaf at now: 0 when
 * it is accepted and said is NULL, -1 when it is refused with exactly the
 * sentence said, 1 otherwise. The sentences are the ones portier logs
 * after "ocsp: PATH: ". b is freed. */
static int verdict(struct blob b, const char *what, int64_t now, const char *said)
{
	struct tlsocsp_result r;
	char why[256] = "";
	int rc;

	if (b.n == 0) {
		fprintf(stderr, "%s: not made\n", what);
		free(b.p);
		return 1;
	}
	rc = tlsocsp_check(b.p, b.n, leaf, ca, now, &r, why, sizeof(why));
	free(b.p);
	if (said == NULL && rc == 0)
		return 0;
	if (said != NULL && rc == -1 && strcmp(why, said) == 0)
		return -1;
	fprintf(stderr, "%s: %s: %s; wanted %s\n", what, rc == 0 ? "accepted" : "refused", why,
	        said ? said : "accepted");
	return 1;
}

static void test_accepted(void)
{
	struct tlsocsp_result r;

	CHECK(check_at("good.der", leaf, ca, t0, &r, NULL) == 0);
	CHECK(r.has_next && !r.delegated);
	CHECK(r.this_update >= t0 - 120 && r.this_update <= t0);
	CHECK(r.next_update >= r.this_update + 2 * 86400 - 5 &&
	      r.next_update <= r.this_update + 2 * 86400 + 5);
	CHECK(check_at("good256.der", leaf, ca, t0, &r, NULL) == 0);
	CHECK(check_at("bykey.der", leaf, ca, t0, &r, NULL) == 0);
	CHECK(!r.has_next);
	/* No nextUpdate: no end, a year on it is still good. */
	CHECK(check_at("bykey.der", leaf, ca, t0 + 365 * 86400, &r, NULL) == 0);
	CHECK(check_at("deleg.der", leaf, ca, t0, &r, NULL) == 0);
	CHECK(r.delegated);
	CHECK(check_at("other.der", other, ca, t0, &r, NULL) == 0);
	/* SHA-384 and SHA-512, with RSA (the CA) and ECDSA (the delegated
	 * responder): each digest is the one its algorithm names. */
	CHECK(check_at("sha384.der", leaf, ca, t0, &r, NULL) == 0 && !r.delegated);
	CHECK(check_at("sha512.der", leaf, ca, t0, &r, NULL) == 0 && !r.delegated);
	CHECK(check_at("deleg384.der", leaf, ca, t0, &r, NULL) == 0 && r.delegated);
	CHECK(check_at("deleg512.der", leaf, ca, t0, &r, NULL) == 0 && r.delegated);
}

static void test_refused(void)
{
	struct tlsocsp_result r;

	CHECK(check_at("noeku.der", leaf, ca, t0, &r, "OCSPSigning") == -1);
	CHECK(check_at("stranger.der", leaf, ca, t0, &r, "did not sign") == -1);
	CHECK(check_at("other.der", leaf, ca, t0, &r, "not about this certificate") == -1);
	CHECK(check_at("good.der", leaf, ca2, t0, &r, "not about this certificate") == -1);
	CHECK(check_at("revoked.der", revoked, ca, t0, &r, "revoked on") == -1);
	CHECK(!r.stale);
	/* The same responses at another time: refused for the time alone,
	 * which a start takes as a warning (stale). */
	CHECK(check_at("good.der", leaf, ca, t0 + 3 * 86400, &r, "nextUpdate") == -1);
	CHECK(r.stale);
	CHECK(check_at("good.der", leaf, ca, t0 - 86400, &r, "in the future") == -1);
	CHECK(r.stale);
	CHECK(check_at("deleg.der", leaf, ca, t0 + 3 * 86400, &r, "expired") == -1);
	CHECK(r.stale);
	/* 25 days on, the delegated responder's own certificate (20 days) has
	 * ended too: that is checked first, with the signature. */
	CHECK(check_at("deleg.der", leaf, ca, t0 + 25 * 86400, &r, "not valid now") == -1);
	CHECK(!r.stale);
	/* A delegated responder's response that does not carry its
	 * certificate (-resp_no_certs): nothing to check its signature by. */
	CHECK(verdict(slurp("nocert.der"), "nocert.der", t0,
	              "signed by a responder that is neither the certificate's issuer "
	              "nor a certificate in the response") == -1);
	CHECK(verdict(slurp("sha1.der"), "sha1.der", t0,
	              "signed with SHA-1, which portier does not accept") == -1);
	CHECK(verdict(slurp("pss.der"), "pss.der", t0,
	              "signed with an algorithm portier does not know (RSA PKCS#1, ECDSA or "
	              "Ed25519 with SHA-2 expected)") == -1);
	CHECK(check_at("unknown.der", stray, ca, t0, &r,
	               "the responder does not know the certificate (status unknown)") == -1);
	CHECK(!r.stale);
}

/* ---- responses remade from openssl's ---- */

/* sha256WithRSAEncryption, ecdsa-with-SHA256, md5WithRSAEncryption, Ed25519 */
static const uint8_t oid_rsa256[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b};
static const uint8_t oid_ec256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
static const uint8_t oid_md5rsa[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04};
static const uint8_t oid_ed25519[] = {0x2b, 0x65, 0x70};
static const uint8_t asn1_null[] = {0x05, 0x00};
/* id-pkix-ocsp-basic */
static const uint8_t oid_basic[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01};
/* 1.3.6.1.4.1.32473.1 (an example arc): an extension nobody knows */
static const uint8_t oid_nobody[] = {0x2b, 0x06, 0x01, 0x04, 0x01, 0x81, 0xfd, 0x59, 0x01};

#define TAG_CTX0 (CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 0)
#define TAG_CTX1 (CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 1)

/* A successful OCSPResponse around the ResponseData tbs: signatureAlgorithm
 * oid with params (NULL: none), the signature by k over tbs with SHA-256 or,
 * when k is NULL, the signature of from, and from's certificates. Empty
 * when it cannot be made. */
static struct blob remake(const struct tlsocsp *from, const uint8_t *tbs, size_t tbslen,
                          const uint8_t *oid, size_t oidlen, const uint8_t *params,
                          size_t plen, EVP_PKEY *k)
{
	struct blob b = {0};
	uint8_t *sig = NULL, *der = NULL;
	size_t siglen = 0;
	CBB out, resp, st, w, rb, o, bytes, basic, alg, ao, bits, cw, certs;
	EVP_MD_CTX ctx;
	int ok;

	if (k != NULL) {
		EVP_MD_CTX_init(&ctx);
		ok = EVP_DigestSignInit(&ctx, NULL, EVP_sha256(), NULL, k) &&
		     EVP_DigestSign(&ctx, NULL, &siglen, tbs, tbslen) &&
		     (sig = malloc(siglen)) != NULL &&
		     EVP_DigestSign(&ctx, sig, &siglen, tbs, tbslen);
		EVP_MD_CTX_cleanup(&ctx);
		if (!ok) {
			free(sig);
			return b;
		}
	}
	ok = CBB_init(&out, 0) && CBB_add_asn1(&out, &resp, CBS_ASN1_SEQUENCE) &&
	     CBB_add_asn1(&resp, &st, CBS_ASN1_ENUMERATED) && CBB_add_u8(&st, 0) &&
	     CBB_add_asn1(&resp, &w, TAG_CTX0) && CBB_add_asn1(&w, &rb, CBS_ASN1_SEQUENCE) &&
	     CBB_add_asn1(&rb, &o, CBS_ASN1_OBJECT) &&
	     CBB_add_bytes(&o, oid_basic, sizeof(oid_basic)) &&
	     CBB_add_asn1(&rb, &bytes, CBS_ASN1_OCTETSTRING) &&
	     CBB_add_asn1(&bytes, &basic, CBS_ASN1_SEQUENCE) &&
	     CBB_add_bytes(&basic, tbs, tbslen) &&
	     CBB_add_asn1(&basic, &alg, CBS_ASN1_SEQUENCE) &&
	     CBB_add_asn1(&alg, &ao, CBS_ASN1_OBJECT) && CBB_add_bytes(&ao, oid, oidlen) &&
	     (params == NULL || CBB_add_bytes(&alg, params, plen)) &&
	     CBB_add_asn1(&basic, &bits, CBS_ASN1_BITSTRING) && CBB_add_u8(&bits, 0) &&
	     (k != NULL ? CBB_add_bytes(&bits, sig, siglen)
	                : CBB_add_bytes(&bits, CBS_data(&from->sig), CBS_len(&from->sig)));
	if (ok && from->ncerts > 0) {
		ok = CBB_add_asn1(&basic, &cw, TAG_CTX0) &&
		     CBB_add_asn1(&cw, &certs, CBS_ASN1_SEQUENCE);
		for (size_t i = 0; ok && i < from->ncerts; i++)
			ok = CBB_add_bytes(&certs, CBS_data(&from->certs[i]), CBS_len(&from->certs[i]));
	}
	/* Into malloc's memory, as slurp's, for verdict to free. */
	if (ok && CBB_finish(&out, &der, &b.n) && (b.p = malloc(b.n)) != NULL)
		memcpy(b.p, der, b.n);
	else
		b.n = 0;
	if (!ok)
		CBB_cleanup(&out);
	OPENSSL_free(der);
	free(sig);
	return b;
}

/* Extensions [1] { SEQUENCE { SEQUENCE { nobody's OID, critical?, NULL } } }. */
static int add_ext(CBB *parent, int critical)
{
	CBB w, seq, ext, oid, crit, val;

	return CBB_add_asn1(parent, &w, TAG_CTX1) && CBB_add_asn1(&w, &seq, CBS_ASN1_SEQUENCE) &&
	       CBB_add_asn1(&seq, &ext, CBS_ASN1_SEQUENCE) &&
	       CBB_add_asn1(&ext, &oid, CBS_ASN1_OBJECT) &&
	       CBB_add_bytes(&oid, oid_nobody, sizeof(oid_nobody)) &&
	       (!critical || (CBB_add_asn1(&ext, &crit, CBS_ASN1_BOOLEAN) &&
	                      CBB_add_u8(&crit, 0xff))) &&
	       CBB_add_asn1(&ext, &val, CBS_ASN1_OCTETSTRING) &&
	       CBB_add_bytes(&val, asn1_null, sizeof(asn1_null)) && CBB_flush(parent);
}

/* The ResponseData tbs (which has no extensions) with nobody's extension
 * added to the ResponseData (single 0) or to its first SingleResponse
 * (single 1), in *out (free it). */
static int tbs_with_ext(CBS tbs, int single, int critical, uint8_t **out, size_t *outlen)
{
	CBB cbb, rd, list, sr;
	CBS in, e, l, s;
	unsigned tag;
	int ok, done = 0;

	ok = CBB_init(&cbb, 0) && CBS_get_asn1(&tbs, &in, CBS_ASN1_SEQUENCE) &&
	     CBB_add_asn1(&cbb, &rd, CBS_ASN1_SEQUENCE);
	/* version, responderID, producedAt, then responses: the only SEQUENCE. */
	while (ok && CBS_len(&in) > 0) {
		ok = CBS_get_any_asn1_element(&in, &e, &tag, NULL);
		if (ok && single && tag == CBS_ASN1_SEQUENCE && !done) {
			ok = CBS_get_asn1(&e, &l, CBS_ASN1_SEQUENCE) &&
			     CBS_get_asn1(&l, &s, CBS_ASN1_SEQUENCE) &&
			     CBB_add_asn1(&rd, &list, CBS_ASN1_SEQUENCE) &&
			     CBB_add_asn1(&list, &sr, CBS_ASN1_SEQUENCE) &&
			     CBB_add_bytes(&sr, CBS_data(&s), CBS_len(&s)) && add_ext(&sr, critical) &&
			     CBB_add_bytes(&list, CBS_data(&l), CBS_len(&l)) && CBB_flush(&rd);
			done = 1;
		} else if (ok) {
			ok = CBB_add_bytes(&rd, CBS_data(&e), CBS_len(&e));
		}
	}
	ok = ok && (single ? done : add_ext(&rd, critical)) && CBB_finish(&cbb, out, outlen);
	if (!ok)
		CBB_cleanup(&cbb);
	return ok;
}

/* good.der, parsed: the base of every remade response but the delegated. */
static struct blob good;
static struct tlsocsp good_o;

static struct blob resigned_good(const uint8_t *tbs, size_t tbslen)
{
	return remake(&good_o, tbs, tbslen, oid_rsa256, sizeof(oid_rsa256), asn1_null,
	              sizeof(asn1_null), ca_key);
}

static void test_extensions(void)
{
	/* An extension marked critical is one portier cannot know it
	 * honours: refused, and said so (not "malformed": the flag is a
	 * plain BOOLEAN in the extension, as RFC 5280 4.1 writes it). */
	static const char crit[] = "an extension marked critical that portier does not know";
	const char *where[] = {"responseExtensions", "singleExtensions"};

	for (int single = 0; single <= 1; single++)
		for (int critical = 0; critical <= 1; critical++) {
			uint8_t *tbs = NULL;
			size_t n = 0;
			char what[80];

			snprintf(what, sizeof(what), "%s, %scritical", where[single],
			         critical ? "" : "not ");
			CHECK(tbs_with_ext(good_o.tbs, single, critical, &tbs, &n));
			/* Marked critical it is refused; the same extension not
			 * marked is passed over. */
			CHECK(verdict(resigned_good(tbs, n), what, t0,
			              critical ? crit : NULL) == (critical ? -1 : 0));
			OPENSSL_free(tbs);
		}
}

/* "YYYYMMDDHHMMSSZ", as openssl writes a GeneralizedTime. */
static void gentime(int64_t t, char out[16])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 16, "%Y%m%d%H%M%SZ", &tm);
}

static void test_next_before_this(void)
{
	const struct tlsocsp_single *s = &good_o.singles[0];
	size_t n = CBS_len(&good_o.tbs);
	uint8_t *tbs = malloc(n);
	char next[16], earlier[16];
	uint8_t *at;

	CHECK(tbs != NULL && s->has_next);
	if (tbs == NULL || !s->has_next) {
		free(tbs);
		return;
	}
	memcpy(tbs, CBS_data(&good_o.tbs), n);
	/* Seen 200 s before thisUpdate (within the skew allowed), it is good
	 * as signed again: the clock is not what is refused below. */
	CHECK(verdict(resigned_good(tbs, n), "good.der signed again", s->this_update - 200,
	              NULL) == 0);
	/* nextUpdate 100 s before thisUpdate: both after that clock. */
	gentime(s->next_update, next);
	gentime(s->this_update - 100, earlier);
	at = memmem(tbs, n, next, 15);
	CHECK(at != NULL);
	if (at != NULL) {
		memcpy(at, earlier, 15);
		CHECK(verdict(resigned_good(tbs, n), "nextUpdate before thisUpdate",
		              s->this_update - 200, "nextUpdate before thisUpdate") == -1);
		/* Wrong whatever the time: not taken for a stale response
		 * once both have passed. */
		CHECK(verdict(resigned_good(tbs, n), "nextUpdate before thisUpdate, later",
		              s->this_update + 30 * 86400, "nextUpdate before thisUpdate") == -1);
	}
	free(tbs);
}

/* thisUpdate's (and producedAt's) GeneralizedTime read field by field: each bound of month,
 * day, hour, minute and second, and February 29th in the years that have
 * one (2000, 2024) and those that do not (2100, 2023); what is read is
 * the second timegm() gives. */
static void test_dates(void)
{
	static const struct {
		const char *t;
		int ok;
	} dates[] = {
		{"20000229120000Z", 1}, {"20240229000000Z", 1}, {"21000229000000Z", 0},
		{"20230229000000Z", 0}, {"19000229000000Z", 0}, {"20241231235959Z", 1},
		{"20240101000000Z", 1}, {"20240001000000Z", 0}, {"20241301000000Z", 0},
		{"20240100000000Z", 0}, {"20240132000000Z", 0}, {"20240431000000Z", 0},
		{"20240430000000Z", 1}, {"20240101240000Z", 0}, {"20240101006000Z", 0},
		{"20240101000060Z", 0}, {"2024010100000aZ", 0}, {"20240101000000X", 0},
	};
	const struct tlsocsp_single *s = &good_o.singles[0];
	size_t n = CBS_len(&good_o.tbs);
	uint8_t *tbs = malloc(n), *at;
	char this_[16];

	CHECK(tbs != NULL);
	if (tbs == NULL)
		return;
	gentime(s->this_update, this_);
	for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
		struct blob b;
		struct tlsocsp o;
		const char *w = NULL;
		int rc;

		/* producedAt is written the same as thisUpdate: both change. */
		memcpy(tbs, CBS_data(&good_o.tbs), n);
		at = memmem(tbs, n, this_, 15);
		CHECK(at != NULL);
		if (at == NULL)
			break;
		for (; at != NULL; at = memmem(at, n - (size_t)(at - tbs), this_, 15))
			memcpy(at, dates[i].t, 15);
		b = resigned_good(tbs, n);
		rc = b.n ? tlsocsp_parse(b.p, b.n, &o, &w) : -2;
		if (dates[i].ok) {
			struct tm tm = {0};
			CHECK(sscanf(dates[i].t, "%4d%2d%2d%2d%2d%2d", &tm.tm_year, &tm.tm_mon,
			             &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) == 6);
			tm.tm_year -= 1900;
			tm.tm_mon -= 1;
			CHECK(rc == 0 && o.nsingles >= 1 &&
			      o.singles[0].this_update == (int64_t)timegm(&tm));
		} else {
			CHECK(rc == -1);
		}
		if ((rc == 0) != dates[i].ok)
			fprintf(stderr, "thisUpdate %s: %s\n", dates[i].t, rc == 0 ? "read" : w);
		free(b.p);
	}
	free(tbs);
}

/* The offsets of every tag in der, from base, descending into
 * constructed elements (not into strings: an extension's value is the
 * extension's own); k of max used so far. */
static size_t tag_offsets(const uint8_t *base, CBS der, size_t *offs, size_t max, size_t k)
{
	while (CBS_len(&der) > 0 && k < max) {
		const uint8_t *at = CBS_data(&der);
		CBS el;
		unsigned tag;
		size_t hl;

		if (!CBS_get_any_asn1_element(&der, &el, &tag, &hl))
			break;
		offs[k++] = (size_t)(at - base);
		if ((tag & CBS_ASN1_CONSTRUCTED) && CBS_skip(&el, hl))
			k = tag_offsets(base, el, offs, max, k);
	}
	return k;
}

/* Every element of ResponseData in turn under a tag none of them may have
 * (PrintableString): each such response is refused by the reader, signed
 * as it is. The responder's Name is the exception: the reader keeps it
 * whole, for the check to compare with the signer's (its own SEQUENCE tag
 * is read). */
static void test_every_tag(void)
{
	size_t n = CBS_len(&good_o.tbs), offs[128], k;
	size_t name_at = (size_t)(CBS_data(&good_o.responder) - CBS_data(&good_o.tbs));
	size_t name_end = name_at + CBS_len(&good_o.responder);
	uint8_t *tbs = malloc(n);
	CBS all;

	CHECK(tbs != NULL);
	if (tbs == NULL)
		return;
	CBS_init(&all, CBS_data(&good_o.tbs), n);
	k = tag_offsets(CBS_data(&good_o.tbs), all, offs, 128, 0);
	CHECK(k >= 15 && k < 128);   /* version, ids, times, a CertID's parts... */
	CHECK(!good_o.responder_by_key && name_at < n && name_end <= n);
	for (size_t i = 0; i < k; i++) {
		struct blob b;
		struct tlsocsp o;
		const char *w = NULL;
		int rc;

		if (offs[i] > name_at && offs[i] < name_end)
			continue;
		memcpy(tbs, CBS_data(&good_o.tbs), n);
		tbs[offs[i]] = 0x13;
		b = resigned_good(tbs, n);
		rc = b.n ? tlsocsp_parse(b.p, b.n, &o, &w) : -2;
		CHECK(rc == -1 && w != NULL);
		if (rc != -1)
			fprintf(stderr, "tag at %zu (0x%02x) as PrintableString: read\n", offs[i],
			        CBS_data(&good_o.tbs)[offs[i]]);
		free(b.p);
	}
	free(tbs);
}

/* in re-encoded into out, a stray NULL added at the end of the contents
 * of constructed element number target (pre-order, counted in *at) and,
 * when version is 1 (v1) or 2 (v2), the field [0] { INTEGER version - 1 }
 * put first inside the outermost element (0: none). 1, or 0 if CBB
 * failed. */
static int rebuild(CBS in, CBB *out, size_t target, size_t *at, int version)
{
	while (CBS_len(&in) > 0) {
		CBS el;
		CBB child, v;
		unsigned tag;
		size_t hl, me = (*at)++;

		if (!CBS_get_any_asn1_element(&in, &el, &tag, &hl) || !CBS_skip(&el, hl) ||
		    !CBB_add_asn1(out, &child, tag))
			return 0;
		if (version > 0 && me == 0 &&
		    (!CBB_add_asn1(&child, &v, CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 0) ||
		     !CBB_add_asn1_uint64(&v, (uint64_t)version - 1)))
			return 0;
		if (tag & CBS_ASN1_CONSTRUCTED) {
			if (!rebuild(el, &child, target, at, 0))
				return 0;
		} else if (!CBB_add_bytes(&child, CBS_data(&el), CBS_len(&el))) {
			return 0;
		}
		if (me == target && !CBB_add_bytes(&child, (const uint8_t *)"\x05\x00", 2))
			return 0;
		if (!CBB_flush(out))
			return 0;
	}
	return 1;
}

/* tbs rebuilt as rebuild() does, signed; tlsocsp_parse's verdict. */
static int parse_rebuilt(size_t target, int version, const char **w)
{
	CBB cbb;
	uint8_t *tbs = NULL;
	size_t n = 0, at = 0;
	struct blob b = {0};
	struct tlsocsp o;
	int rc = -2;

	if (CBB_init(&cbb, 0) && rebuild(good_o.tbs, &cbb, target, &at, version) &&
	    CBB_finish(&cbb, &tbs, &n))
		b = resigned_good(tbs, n);
	else
		CBB_cleanup(&cbb);
	if (b.n)
		rc = tlsocsp_parse(b.p, b.n, &o, w);
	OPENSSL_free(tbs);
	free(b.p);
	return rc;
}

/* A stray element at the end of any constructed element of ResponseData
 * is refused (the responder's Name, kept whole, aside); so is a version
 * field other than v1, which is read when it is there. */
static void test_every_stray(void)
{
	size_t offs[128], k, name_at, name_end, strays = 0;
	CBS all = good_o.tbs;
	const char *w = NULL;

	name_at = (size_t)(CBS_data(&good_o.responder) - CBS_data(&good_o.tbs));
	name_end = name_at + CBS_len(&good_o.responder);
	k = tag_offsets(CBS_data(&good_o.tbs), all, offs, 128, 0);
	CHECK(parse_rebuilt(SIZE_MAX, 0, &w) == 0);   /* rebuilt as it was: read */
	for (size_t i = 0; i < k; i++) {
		const uint8_t t = CBS_data(&good_o.tbs)[offs[i]];

		/* 0x20 in the identifier octet: constructed. */
		if (!(t & 0x20) || (offs[i] >= name_at && offs[i] < name_end))
			continue;
		strays++;
		w = NULL;
		CHECK(parse_rebuilt(i, 0, &w) == -1 && w != NULL);
		if (w == NULL)
			fprintf(stderr, "a NULL at the end of element %zu (0x%02x): read\n", i, t);
	}
	/* ResponseData, responderID, responses, SingleResponse, CertID, its
	 * AlgorithmIdentifier, nextUpdate. */
	CHECK(strays >= 7);
	CHECK(parse_rebuilt(SIZE_MAX, 1, &w) == 0);
	CHECK(parse_rebuilt(SIZE_MAX, 2, &w) == -1 && strcmp(w, "not an OCSP response of "
	                                                       "version 1") == 0);
}

static void test_algorithm_mismatch(void)
{
	static const char misfit[] = "the signature's algorithm does not fit the signer's key";
	static const char unknown[] = "signed with an algorithm portier does not know "
	                              "(RSA PKCS#1, ECDSA or Ed25519 with SHA-2 expected)";
	struct blob d = slurp("deleg.der");
	struct tlsocsp o;
	const char *w;
	const uint8_t *tbs = CBS_data(&good_o.tbs);
	size_t tbslen = CBS_len(&good_o.tbs);

	/* The CA's RSA signature said to be ECDSA or Ed25519, MD5 with RSA. */
	CHECK(verdict(remake(&good_o, tbs, tbslen, oid_ec256, sizeof(oid_ec256), NULL, 0, NULL),
	              "RSA said ECDSA", t0, misfit) == -1);
	CHECK(verdict(remake(&good_o, tbs, tbslen, oid_ed25519, sizeof(oid_ed25519), NULL, 0,
	                     NULL), "RSA said Ed25519", t0, misfit) == -1);
	CHECK(verdict(remake(&good_o, tbs, tbslen, oid_md5rsa, sizeof(oid_md5rsa), asn1_null,
	                     sizeof(asn1_null), NULL), "MD5 with RSA", t0, unknown) == -1);
	/* The delegated responder's ECDSA signature said to be RSA; and the
	 * same response remade honestly, to show remake keeps it whole. */
	CHECK(d.n > 0 && tlsocsp_parse(d.p, d.n, &o, &w) == 0);
	if (d.n > 0 && tlsocsp_parse(d.p, d.n, &o, &w) == 0) {
		tbs = CBS_data(&o.tbs);
		tbslen = CBS_len(&o.tbs);
		CHECK(verdict(remake(&o, tbs, tbslen, oid_ec256, sizeof(oid_ec256), NULL, 0,
		                     resp_key), "deleg.der signed again", t0, NULL) == 0);
		CHECK(verdict(remake(&o, tbs, tbslen, oid_rsa256, sizeof(oid_rsa256), asn1_null,
		                     sizeof(asn1_null), NULL), "ECDSA said RSA", t0, misfit) == -1);
	}
	free(d.p);
}

static void test_remade(void)
{
	const char *w;

	good = slurp("good.der");
	CHECK(good.n > 0 && tlsocsp_parse(good.p, good.n, &good_o, &w) == 0);
	CHECK(ca_key != NULL && resp_key != NULL);
	if (good.n > 0 && tlsocsp_parse(good.p, good.n, &good_o, &w) == 0 && ca_key != NULL &&
	    resp_key != NULL) {
		test_extensions();
		test_next_before_this();
		test_dates();
		test_every_tag();
		test_every_stray();
		test_algorithm_mismatch();
	}
	free(good.p);
}

static void test_damaged(void)
{
	struct blob b = slurp("good.der");
	struct tlsocsp o;
	struct tlsocsp_result r;
	const char *w;
	char why[256];
	uint8_t *copy = malloc(b.n + 1);
	size_t off;
	int all_refused = 1;

	CHECK(b.n > 0 && copy != NULL);
	if (b.n == 0 || copy == NULL)
		goto out;
	/* One bit of the signature changed. */
	CHECK(tlsocsp_parse(b.p, b.n, &o, &w) == 0);
	off = (size_t)(CBS_data(&o.sig) - b.p) + CBS_len(&o.sig) / 2;
	memcpy(copy, b.p, b.n);
	copy[off] ^= 0x01;
	CHECK(tlsocsp_check(copy, b.n, leaf, ca, t0, &r, why, sizeof(why)) == -1);
	CHECK(strstr(why, "does not verify") != NULL);
	/* One bit of the signed data changed (the serial: last CertID byte). */
	memcpy(copy, b.p, b.n);
	off = (size_t)(CBS_data(&o.singles[0].serial) - b.p) + CBS_len(&o.singles[0].serial) - 1;
	copy[off] ^= 0x01;
	CHECK(tlsocsp_check(copy, b.n, leaf, ca, t0, &r, why, sizeof(why)) == -1);
	/* Every prefix is refused, and a byte more too. */
	for (size_t n = 0; n < b.n; n++) {
		memcpy(copy, b.p, n);
		if (tlsocsp_parse(copy, n, &o, &w) != -1)
			all_refused = 0;
	}
	CHECK(all_refused);
	memcpy(copy, b.p, b.n);
	copy[b.n] = 0;
	CHECK(tlsocsp_parse(copy, b.n + 1, &o, &w) == -1);
	/* A responder's refusal: OCSPResponse { tryLater }. */
	{
		static const uint8_t later[] = {0x30, 0x03, 0x0a, 0x01, 0x03};
		CHECK(tlsocsp_parse(later, sizeof(later), &o, &w) == -1);
		CHECK(strstr(w, "tryLater") != NULL);
	}
	/* A PEM file is no DER response. */
	{
		struct blob pem = slurp("ca.crt");
		CHECK(tlsocsp_check(pem.p, pem.n, leaf, ca, t0, &r, why, sizeof(why)) == -1);
		CHECK(strstr(why, "not a DER OCSP response") != NULL);
		free(pem.p);
	}
out:
	free(copy);
	free(b.p);
}

static void test_utc(void)
{
	char out[40];

	CHECK_STR(tlsocsp_utc(0, out, sizeof(out)), "1970-01-01 00:00 UTC");
	CHECK_STR(tlsocsp_utc(1795000000, out, sizeof(out)), "2026-11-18 11:06 UTC");
}

int main(void)
{
	char cmd[512];
	int rc;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(cmd, sizeof(cmd), "sh %s %s", OCSP_FIXTURES, dir);
	rc = system(cmd);
	t0 = (int64_t)time(NULL);   /* after every certificate's notBefore */
	if (rc != 0) {
		snprintf(cmd, sizeof(cmd), "cat %s/log >&2", dir);
		(void)system(cmd);
		CHECK(0);
	} else {
		leaf = cert("leaf.crt");
		ca = cert("ca.crt");
		ca2 = cert("ca2.crt");
		other = cert("other.crt");
		revoked = cert("revoked.crt");
		stray = cert("stray.crt");
		ca_key = key("ca.key");
		resp_key = key("resp.key");
		CHECK(leaf && ca && ca2 && other && revoked && stray);
		test_accepted();
		test_refused();
		test_remade();
		test_damaged();
	}
	test_utc();
	X509_free(leaf);
	X509_free(ca);
	X509_free(ca2);
	X509_free(other);
	X509_free(revoked);
	X509_free(stray);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(resp_key);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	rc = system(cmd);
	(void)rc;
	return CHECK_DONE();
}
