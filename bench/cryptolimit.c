/*
 * cryptolimit: what the proxy's core could do if it did nothing but the
 * server's public-key and record crypto, timed with the same BoringSSL build
 * portier links, on one core (run it under taskset).
 *
 *   full handshake (ECDSA)  = 1 / (ECDSA P-256 sign + X25519 keygen + X25519 shared)
 *   full handshake (RSA)    = 1 / (RSA-2048 sign + X25519 keygen + X25519 shared)
 *   resumed handshake       = 1 / (X25519 keygen + X25519 shared)
 *   bulk                    = AES-128-GCM seal of 16 KiB records, MiB/s
 *
 * usage: cryptolimit [SECONDS-PER-ITEM]   (default 1)
 * Prints key=value lines.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/aead.h>
#include <openssl/bn.h>
#include <openssl/curve25519.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/nid.h>
#include <openssl/rsa.h>
#include <openssl/digest.h>

static double budget = 1.0;

static double
now(void)
{
	struct timespec ts;

	/* CPU time, not wall clock: the limit is per core-second like the
	 * proxies' figures, and other jobs on the core do not lower it. */
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs fn in batches until the budget is spent; returns operations/second. */
static double
rate(int (*fn)(void *), void *arg)
{
	double t0 = now(), t;
	long ops = 0;

	do {
		for (int i = 0; i < 16; i++) {
			if (!fn(arg)) {
				fprintf(stderr, "cryptolimit: operation failed\n");
				exit(1);
			}
		}
		ops += 16;
		t = now();
	} while (t - t0 < budget);
	return (double)ops / (t - t0);
}

static int
ecdsa_sign(void *arg)
{
	uint8_t digest[32] = { 1 }, sig[80];
	unsigned siglen;

	return ECDSA_sign(0, digest, sizeof(digest), sig, &siglen, arg);
}

static int
rsa_sign(void *arg)
{
	uint8_t digest[32] = { 1 }, sig[512];
	size_t siglen;

	/* TLS 1.3 signs with RSA-PSS. */
	return RSA_sign_pss_mgf1(arg, &siglen, sig, sizeof(sig), digest, sizeof(digest),
	    EVP_sha256(), NULL, -1);
}

static int
x25519_exchange(void *arg)
{
	uint8_t pub[32], priv[32], peer[32], shared[32];

	(void)arg;
	X25519_keypair(pub, priv);
	memcpy(peer, pub, sizeof(peer));	/* any valid point will do */
	return X25519(shared, priv, peer);
}

struct seal {
	EVP_AEAD_CTX *ctx;
	uint8_t *in, *out;
	size_t len;
	uint64_t seq;
};

static int
aead_seal(void *arg)
{
	struct seal *s = arg;
	uint8_t nonce[12] = { 0 };
	size_t outlen;

	memcpy(nonce + 4, &s->seq, 8);
	s->seq++;
	return EVP_AEAD_CTX_seal(s->ctx, s->out, &outlen, s->len + 16, nonce, sizeof(nonce),
	    s->in, s->len, NULL, 0);
}

static double
aead_mibps(const EVP_AEAD *aead)
{
	uint8_t key[32] = { 7 };
	struct seal s = { .len = 16384 };
	double r;

	s.ctx = EVP_AEAD_CTX_new(aead, key, EVP_AEAD_key_length(aead), 16);
	s.in = calloc(1, s.len);
	s.out = calloc(1, s.len + 16);
	r = rate(aead_seal, &s) * (double)s.len / 1048576.0;
	EVP_AEAD_CTX_free(s.ctx);
	free(s.in);
	free(s.out);
	return r;
}

int
main(int argc, char **argv)
{
	EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
	RSA *rsa = RSA_new();
	BIGNUM *e = BN_new();
	double ecdsa, rsas, x25519, gcm128, gcm256, chacha;

	if (argc > 1)
		budget = atof(argv[1]);
	if (ec == NULL || !EC_KEY_generate_key(ec) || rsa == NULL || e == NULL ||
	    !BN_set_word(e, RSA_F4) || !RSA_generate_key_ex(rsa, 2048, e, NULL)) {
		fprintf(stderr, "cryptolimit: key generation failed\n");
		return 1;
	}
	ecdsa = rate(ecdsa_sign, ec);
	rsas = rate(rsa_sign, rsa);
	x25519 = rate(x25519_exchange, NULL);
	gcm128 = aead_mibps(EVP_aead_aes_128_gcm());
	gcm256 = aead_mibps(EVP_aead_aes_256_gcm());
	chacha = aead_mibps(EVP_aead_chacha20_poly1305());

	printf("ecdsa_p256_sign_per_s=%.0f\n", ecdsa);
	printf("rsa2048_pss_sign_per_s=%.0f\n", rsas);
	printf("x25519_keygen_shared_per_s=%.0f\n", x25519);
	printf("aes128gcm_seal_16k_mibps=%.0f\n", gcm128);
	printf("aes256gcm_seal_16k_mibps=%.0f\n", gcm256);
	printf("chacha20poly1305_seal_16k_mibps=%.0f\n", chacha);
	printf("limit_full_ecdsa=%.0f\n", 1.0 / (1.0 / ecdsa + 1.0 / x25519));
	printf("limit_full_rsa=%.0f\n", 1.0 / (1.0 / rsas + 1.0 / x25519));
	printf("limit_resumed=%.0f\n", x25519);
	printf("limit_bulk_mibps=%.0f\n", gcm128);
	EC_KEY_free(ec);
	RSA_free(rsa);
	BN_free(e);
	return 0;
}
