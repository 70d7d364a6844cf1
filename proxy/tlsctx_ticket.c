/*
 * Session-ticket keys that every worker agrees on without talking to the
 * others, and that are forgotten an hour or two after use.
 *
 * Each listener has a 32-byte secret made at start. Time is cut into
 * periods of TLSTICKET_PERIOD_S; at each new period the secret is replaced
 * by a one-way function of itself (a hash ratchet), and the period's ticket
 * keys are derived from it. Workers forked from the master hold the same
 * secret, advance it the same way by the wall clock, and so derive the same
 * keys: a ticket from one worker resumes on any other. Because the ratchet
 * only goes forward, keys of past periods cannot be rebuilt from a secret
 * read out of memory later: tickets keep forward secrecy beyond two periods.
 * A ticket is accepted during the period it was issued in and the next.
 *
 * With ticket_keys = FILE (tlsctx_ticketfile.c) the keys come from the file
 * instead, the same on every node that has it, and the ratchet is unused.
 */

#include "tlsctx_int.h"

#include <openssl/cipher.h>
#include <openssl/digest.h>
#include <openssl/hkdf.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rand.h>

#include <string.h>
#include <time.h>

/* Past this many periods (a year of hours), stepping one by one would stall
 * the loop; the secret then jumps straight to the new period, still one-way
 * and still the same in every worker, only without the previous keys. */
#define MAX_STEPS 8784

static int expand(uint8_t *out, size_t len, const uint8_t secret[32],
                  const char *label, uint64_t period)
{
	uint8_t info[40];
	size_t n = strlen(label);

	memcpy(info, label, n);
	for (int i = 0; i < 8; i++)
		info[n + (size_t)i] = (uint8_t)(period >> (56 - 8 * i));
	return HKDF_expand(out, len, EVP_sha256(), secret, 32, info, n + 8);
}

static int derive(const uint8_t secret[32], uint64_t period, struct ticket_keys *k)
{
	uint8_t out[sizeof(k->name) + sizeof(k->aes) + sizeof(k->hmac)];
	int ok = expand(out, sizeof(out), secret, "portier ticket keys", period);

	memcpy(k->name, out, sizeof(k->name));
	memcpy(k->aes, out + sizeof(k->name), sizeof(k->aes));
	memcpy(k->hmac, out + sizeof(k->name) + sizeof(k->aes), sizeof(k->hmac));
	OPENSSL_cleanse(out, sizeof(out));
	return ok;
}

static void step(uint8_t secret[32], const char *label, uint64_t period)
{
	uint8_t next[32];

	expand(next, sizeof(next), secret, label, period);
	memcpy(secret, next, sizeof(next));
	OPENSSL_cleanse(next, sizeof(next));
}

int tlsticket_init(struct tlsticket *tk, uint64_t now)
{
	memset(tk, 0, sizeof(*tk));
	tk->period = now / TLSTICKET_PERIOD_S;
	if (!RAND_bytes(tk->secret, sizeof(tk->secret)))
		return -1;
	return derive(tk->secret, tk->period, &tk->cur) ? 0 : -1;
}

void tlsticket_advance(struct tlsticket *tk, uint64_t now)
{
	uint64_t p = now / TLSTICKET_PERIOD_S;

	if (p <= tk->period)
		return;            /* same period, or the clock went back */
	if (p - tk->period > MAX_STEPS) {
		step(tk->secret, "portier ticket jump", p);
		tk->have_prev = 0;
	} else {
		if (tk->period + 1 < p) {
			while (tk->period + 1 < p)
				step(tk->secret, "portier ticket ratchet", ++tk->period);
			derive(tk->secret, tk->period, &tk->cur);
		}
		tk->prev = tk->cur;
		tk->have_prev = 1;
		step(tk->secret, "portier ticket ratchet", p);
	}
	tk->period = p;
	derive(tk->secret, p, &tk->cur);
}

void tlsticket_wipe(struct tlsticket *tk)
{
	OPENSSL_cleanse(tk, sizeof(*tk));
}

/* ticket_keys = FILE: the first key encrypts, any key decrypts; a ticket
 * under an older key is renewed under the first. Not the ratchet's
 * AES-128: an 80-byte key is AES-256-CBC with HMAC-SHA256 over a 32-byte
 * key, as HAProxy and nginx use the same file. */
static int file_cb(const struct tlsticket_file *f, uint8_t *name, uint8_t *iv,
                   EVP_CIPHER_CTX *cctx, HMAC_CTX *hctx, int encrypt)
{
	const struct ticket_filekey *k = NULL;

	if (encrypt) {
		k = &f->keys[0];
		if (!RAND_bytes(iv, 16))
			return -1;
		memcpy(name, k->name, SSL_TICKET_KEY_NAME_LEN);
	} else {
		for (size_t i = 0; i < f->n && k == NULL; i++)
			if (memcmp(name, f->keys[i].name, SSL_TICKET_KEY_NAME_LEN) == 0)
				k = &f->keys[i];
		if (k == NULL)
			return 0;      /* not in the file: a full handshake */
	}
	if (!EVP_CipherInit_ex(cctx, k->aes_len == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc(),
	                       NULL, k->aes, iv, encrypt) ||
	    !HMAC_Init_ex(hctx, k->hmac, k->hmac_len, EVP_sha256(), NULL))
		return -1;
	return !encrypt && k != &f->keys[0] ? 2 : 1;
}

int tlsticket_cb(SSL *ssl, uint8_t *name, uint8_t *iv, EVP_CIPHER_CTX *cctx,
                 HMAC_CTX *hctx, int encrypt)
{
	struct tlsctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	struct tlsticket *tk = &t->ticket;
	const struct ticket_keys *k;

	if (t->tkfile.n > 0)
		return file_cb(&t->tkfile, name, iv, cctx, hctx, encrypt);
	tlsticket_advance(tk, (uint64_t)time(NULL));
	if (encrypt) {
		if (!RAND_bytes(iv, EVP_CIPHER_iv_length(EVP_aes_128_cbc())))
			return -1;
		memcpy(name, tk->cur.name, SSL_TICKET_KEY_NAME_LEN);
		k = &tk->cur;
	} else if (memcmp(name, tk->cur.name, SSL_TICKET_KEY_NAME_LEN) == 0) {
		k = &tk->cur;
	} else if (tk->have_prev &&
	           memcmp(name, tk->prev.name, SSL_TICKET_KEY_NAME_LEN) == 0) {
		k = &tk->prev;
	} else {
		return 0;          /* too old, or not ours: a full handshake */
	}
	if (!EVP_CipherInit_ex(cctx, EVP_aes_128_cbc(), NULL, k->aes, iv, encrypt) ||
	    !HMAC_Init_ex(hctx, k->hmac, sizeof(k->hmac), EVP_sha256(), NULL))
		return -1;
	/* A ticket of the previous period is renewed under the current keys. */
	return !encrypt && k == &tk->prev ? 2 : 1;
}
