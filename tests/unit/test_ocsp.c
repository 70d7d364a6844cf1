/* OCSP stapling's reader and checks (tlsctx_ocsp.c) on real responses:
 * ocsp_fixtures.sh makes a test CA and answers for its certificates with
 * `openssl ocsp` as the responder (signed by the CA, by a delegated
 * responder, by ones that may not answer; good, revoked, another
 * certificate's); this test checks what tlsocsp_check says of each, at
 * the time they were made and later, and of damaged copies. */
#include "check.h"
#include "tlsctx_ocsp.h"

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

static X509 *leaf, *ca, *ca2, *other, *revoked;
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
}

static void test_refused(void)
{
	struct tlsocsp_result r;

	CHECK(check_at("noeku.der", leaf, ca, t0, &r, "OCSPSigning") == -1);
	CHECK(check_at("stranger.der", leaf, ca, t0, &r, "did not sign") == -1);
	CHECK(check_at("other.der", leaf, ca, t0, &r, "not about this certificate") == -1);
	CHECK(check_at("good.der", leaf, ca2, t0, &r, "not about this certificate") == -1);
	CHECK(check_at("revoked.der", revoked, ca, t0, &r, "revoked on") == -1);
	/* The same responses at another time. */
	CHECK(check_at("good.der", leaf, ca, t0 + 3 * 86400, &r, "nextUpdate") == -1);
	CHECK(check_at("good.der", leaf, ca, t0 - 86400, &r, "in the future") == -1);
	CHECK(check_at("deleg.der", leaf, ca, t0 + 3 * 86400, &r, "expired") == -1);
	/* 25 days on, the delegated responder's own certificate (20 days) has
	 * ended too: that is checked first, with the signature. */
	CHECK(check_at("deleg.der", leaf, ca, t0 + 25 * 86400, &r, "not valid now") == -1);
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
		CHECK(leaf && ca && ca2 && other && revoked);
		test_accepted();
		test_refused();
		test_damaged();
	}
	test_utc();
	X509_free(leaf);
	X509_free(ca);
	X509_free(ca2);
	X509_free(other);
	X509_free(revoked);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	rc = system(cmd);
	(void)rc;
	return CHECK_DONE();
}
