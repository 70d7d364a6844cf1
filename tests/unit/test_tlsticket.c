/* The session-ticket key ratchet: processes that share a starting secret
 * (a master and the workers it forked) must derive the same keys period by
 * period, whichever way each one gets there, and never go back. */
#include "check.h"
#include "server.h"
#include "tlsctx_int.h"

#include <openssl/aes.h>
#include <openssl/cipher.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rand.h>

#include <stdlib.h>
#include <unistd.h>

#define H TLSTICKET_PERIOD_S

static int same_keys(const struct ticket_keys *a, const struct ticket_keys *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static int same(const struct tlsticket *a, const struct tlsticket *b)
{
	return a->period == b->period && memcmp(a->secret, b->secret, 32) == 0 &&
	       same_keys(&a->cur, &b->cur) && a->have_prev == b->have_prev &&
	       (!a->have_prev || same_keys(&a->prev, &b->prev));
}

/* A listener's context with only ticket keys, made for the period of t. */
static struct tlsctx *keys_only(uint64_t t)
{
	struct tlsctx *x = calloc(1, sizeof(*x));

	if (x == NULL || tlsticket_init(&x->ticket, t) < 0)
		abort();
	x->refs = 1;
	return x;
}

struct watch {
	struct server *srv;
	time_t until;
};

/* Ends the loop once the worker's tick moved the keys to this period (or
 * after a bound, for the CHECK to report). */
static void on_watch(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct watch *wa = w->data;
	const struct tlsticket *tk = &wa->srv->svcs[0].tls->ticket;

	if (tk->period == (uint64_t)time(NULL) / H || time(NULL) > wa->until)
		ev_break(loop, EVBREAK_ALL);
}

/* A worker's ticket keys advance without any connection: the server's
 * one-second tick (server_tick) moves them on the wall clock. */
static void test_idle_worker_tick(void)
{
	struct diag d = {0};
	struct cfg *c = cfg_load_string("t.ini", "[web]\nlisten = 127.0.0.1:0\n"
	                                "mode = plain\nbackend = 127.0.0.1:9\n", &d);
	struct listener_set none = {0};
	struct tlsctx **tls = calloc(1, sizeof(*tls));
	struct server srv;
	struct tlsticket start;
	uint64_t now = (uint64_t)time(NULL);

	CHECK(c != NULL && tls != NULL);
	if (c == NULL || tls == NULL)
		exit(CHECK_DONE());
	/* Keys made three periods ago, as a worker idle since then holds. */
	tls[0] = keys_only(now - 3 * H);
	start = tls[0]->ticket;
	CHECK(server_init(&srv, EV_DEFAULT, c, tls, &none) == 0);

	/* server_tick itself, on a given clock: nothing within the period,
	 * the ratchet on a new one. */
	server_tick(&srv, (time_t)(start.period * H + H - 1));
	CHECK(same(&srv.svcs[0].tls->ticket, &start));
	server_tick(&srv, (time_t)(now - 2 * H));
	CHECK(srv.svcs[0].tls->ticket.period == start.period + 1);
	CHECK(srv.svcs[0].tls->ticket.have_prev &&
	      same_keys(&srv.svcs[0].tls->ticket.prev, &start.cur));

	/* The loop's timer, on the real clock, with no connection at all. */
	struct watch wa = {&srv, time(NULL) + 10};
	ev_timer watch;
	ev_timer_init(&watch, on_watch, 0.05, 0.05);
	watch.data = &wa;
	ev_timer_start(EV_DEFAULT, &watch);
	server_run(&srv);
	ev_timer_stop(EV_DEFAULT, &watch);
	CHECK(srv.svcs[0].tls->ticket.period == (uint64_t)time(NULL) / H);
	CHECK(memcmp(srv.svcs[0].tls->ticket.secret, start.secret, 32) != 0);
	server_free(&srv);
	cfg_free(c);
	diag_free(&d);
}

/* A ticket's envelope as BoringSSL makes it with the callback's contexts:
 * AES-CBC of body under k, HMAC-SHA256 over name || iv || ciphertext. */
struct sealed {
	uint8_t name[16], iv[16], ct[32], mac[32];
};

/* t sealed under a file key with t's IV: AES-256-CBC or AES-128-CBC by
 * its length, HMAC-SHA256 under its HMAC key of 32 or 16 bytes. */
static void seal_file_iv(struct sealed *t, const struct ticket_filekey *k,
                         const uint8_t body[32])
{
	EVP_CIPHER_CTX *e = EVP_CIPHER_CTX_new();
	int n = 0;
	unsigned ml = 0;

	memcpy(t->name, k->name, 16);
	if (e == NULL ||
	    !EVP_EncryptInit_ex(e, k->aes_len == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc(),
	                        NULL, k->aes, t->iv) ||
	    !EVP_CIPHER_CTX_set_padding(e, 0) ||
	    !EVP_EncryptUpdate(e, t->ct, &n, body, 32) || n != 32 ||
	    HMAC(EVP_sha256(), k->hmac, k->hmac_len, t->name, 16 + 16 + 32, t->mac, &ml) == NULL ||
	    ml != 32)
		abort();
	EVP_CIPHER_CTX_free(e);
}

/* The same with a fresh IV. */
static void seal_file(struct sealed *t, const struct ticket_filekey *k, const uint8_t body[32])
{
	if (!RAND_bytes(t->iv, 16))
		abort();
	seal_file_iv(t, k, body);
}

/* The same under the ratchet's keys (AES-128, a 32-byte HMAC key). */
static void seal(struct sealed *t, const struct ticket_keys *k, const uint8_t body[32])
{
	struct ticket_filekey fk = {.aes_len = sizeof(k->aes), .hmac_len = sizeof(k->hmac)};

	memcpy(fk.name, k->name, sizeof(fk.name));
	memcpy(fk.aes, k->aes, sizeof(k->aes));
	memcpy(fk.hmac, k->hmac, sizeof(k->hmac));
	seal_file(t, &fk, body);
}

/* Opens t with the contexts the callback set up: the body back, and whether
 * the MAC matched. */
static int open_with(EVP_CIPHER_CTX *cctx, HMAC_CTX *hctx, const struct sealed *t,
                     uint8_t body[32])
{
	uint8_t mac[32];
	unsigned ml = 0;
	int n = 0;

	if (!EVP_CIPHER_CTX_set_padding(cctx, 0) ||
	    !EVP_DecryptUpdate(cctx, body, &n, t->ct, 32) || n != 32 ||
	    !HMAC_Update(hctx, t->name, 16 + 16 + 32) || !HMAC_Final(hctx, mac, &ml))
		return 0;
	return ml == 32 && memcmp(mac, t->mac, 32) == 0;
}

/* One call of the ticket callback on a fresh SSL of ctx: its return value;
 * body gets what the contexts open (decryption) and *matched the MAC check. */
static int call_cb(SSL_CTX *ctx, struct sealed *t, int encrypt, uint8_t body[32],
                   int *matched)
{
	SSL *ssl = SSL_new(ctx);
	EVP_CIPHER_CTX *cctx = EVP_CIPHER_CTX_new();
	HMAC_CTX *hctx = HMAC_CTX_new();
	int rc;

	if (ssl == NULL || cctx == NULL || hctx == NULL)
		abort();
	rc = tlsticket_cb(ssl, t->name, t->iv, cctx, hctx, encrypt);
	*matched = 0;
	if (rc > 0 && !encrypt)
		*matched = open_with(cctx, hctx, t, body);
	if (rc > 0 && encrypt) {
		/* Encrypting with the callback's contexts: the envelope then
		 * opens with the keys named in it. */
		int n = 0;
		unsigned ml = 0;
		if (!EVP_CIPHER_CTX_set_padding(cctx, 0) ||
		    !EVP_EncryptUpdate(cctx, t->ct, &n, body, 32) || n != 32 ||
		    !HMAC_Update(hctx, t->name, 16 + 16 + 32) || !HMAC_Final(hctx, t->mac, &ml))
			abort();
	}
	HMAC_CTX_free(hctx);
	EVP_CIPHER_CTX_free(cctx);
	SSL_free(ssl);
	return rc;
}

/* The callback BoringSSL calls: a ticket sealed in the previous period
 * opens and is renewed (2); one of this period opens (1); one two periods
 * old, or under keys that are not ours, gets a full handshake (0). New
 * tickets go out under this period's keys. */
static void test_ticket_callback(void)
{
	time_t now = time(NULL);
	struct tlsctx *x, *old2;
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	struct ticket_keys prev, two_ago;
	struct sealed t;
	uint8_t body[32], got[32];
	int matched;

	/* Keep the whole test inside one period. */
	if (H - now % H < 5) {
		sleep((unsigned)(H - now % H));
		now = time(NULL);
	}
	CHECK(ctx != NULL && RAND_bytes(body, sizeof(body)));
	/* A listener that started last period; its keys of then. */
	x = keys_only((uint64_t)now - H);
	prev = x->ticket.cur;
	SSL_CTX_set_app_data(ctx, x);

	seal(&t, &prev, body);
	memset(got, 0, sizeof(got));
	CHECK(call_cb(ctx, &t, 0, got, &matched) == 2);
	CHECK(matched && memcmp(got, body, 32) == 0);
	/* The call moved the keys to this period, the old ones kept. */
	CHECK(x->ticket.period == (uint64_t)now / H && x->ticket.have_prev);
	CHECK(same_keys(&x->ticket.prev, &prev));

	/* This period's ticket opens, not renewed. */
	seal(&t, &x->ticket.cur, body);
	memset(got, 0, sizeof(got));
	CHECK(call_cb(ctx, &t, 0, got, &matched) == 1);
	CHECK(matched && memcmp(got, body, 32) == 0);

	/* A new ticket: this period's name, a fresh IV, and it opens with
	 * this period's keys (the renewal of the first ticket is this). */
	memset(&t, 0, sizeof(t));
	CHECK(call_cb(ctx, &t, 1, body, &matched) == 1);
	CHECK(memcmp(t.name, x->ticket.cur.name, 16) == 0);
	{
		static const uint8_t zero_iv[16];
		struct sealed check = t;
		CHECK(memcmp(t.iv, zero_iv, 16) != 0);
		memset(got, 0, sizeof(got));
		CHECK(call_cb(ctx, &check, 0, got, &matched) == 1);
		CHECK(matched && memcmp(got, body, 32) == 0);
	}

	/* Two periods old: forgotten. A listener that started two periods ago
	 * holds the keys of then; once moved to now it keeps only last
	 * period's. */
	old2 = keys_only((uint64_t)now - 2 * H);
	two_ago = old2->ticket.cur;
	SSL_CTX_set_app_data(ctx, old2);
	seal(&t, &two_ago, body);
	CHECK(call_cb(ctx, &t, 0, got, &matched) == 0);
	CHECK(old2->ticket.have_prev && !same_keys(&old2->ticket.prev, &two_ago));

	/* Keys that are not ours at all (another node, another listener). */
	SSL_CTX_set_app_data(ctx, x);
	seal(&t, &two_ago, body);
	CHECK(call_cb(ctx, &t, 0, got, &matched) == 0);

	SSL_CTX_free(ctx);
	tlsticket_wipe(&x->ticket);
	tlsticket_wipe(&old2->ticket);
	free(x);
	free(old2);
}

/* ticket_keys = FILE: the first key seals (AES-256 for an 80-byte key),
 * every key opens, a ticket under a later key is renewed (2), one under
 * no key of the file gets a full handshake (0). */
static void test_file_callback(void)
{
	static struct ticket_filekey keys[3];
	struct tlsctx *x = keys_only((uint64_t)time(NULL));
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	struct sealed t;
	uint8_t body[32], got[32];
	int matched;

	CHECK(ctx != NULL && RAND_bytes((uint8_t *)keys, sizeof(keys)) && RAND_bytes(body, 32));
	keys[0].aes_len = keys[0].hmac_len = 32;
	keys[1].aes_len = keys[1].hmac_len = 16;
	keys[2].aes_len = keys[2].hmac_len = 32;
	x->tkfile.keys = keys;
	x->tkfile.n = 2;             /* keys[2] is no key of the file */
	SSL_CTX_set_app_data(ctx, x);

	memset(&t, 0, sizeof(t));
	CHECK(call_cb(ctx, &t, 1, body, &matched) == 1);
	CHECK(memcmp(t.name, keys[0].name, 16) == 0);
	{
		/* What the callback sealed is keys[0]'s AES-256 and HMAC, as
		 * sealed here with them. */
		struct sealed mine = t;
		seal_file_iv(&mine, &keys[0], body);
		CHECK(memcmp(mine.ct, t.ct, 32) == 0 && memcmp(mine.mac, t.mac, 32) == 0);
		memset(got, 0, sizeof(got));
		CHECK(call_cb(ctx, &t, 0, got, &matched) == 1);
		CHECK(matched && memcmp(got, body, 32) == 0);
	}
	seal_file(&t, &keys[0], body);
	memset(got, 0, sizeof(got));
	CHECK(call_cb(ctx, &t, 0, got, &matched) == 1 && matched && memcmp(got, body, 32) == 0);
	seal_file(&t, &keys[1], body);
	memset(got, 0, sizeof(got));
	CHECK(call_cb(ctx, &t, 0, got, &matched) == 2 && matched && memcmp(got, body, 32) == 0);
	seal_file(&t, &keys[2], body);
	CHECK(call_cb(ctx, &t, 0, got, &matched) == 0);
	/* The ratchet's keys are not the file's. */
	seal(&t, &x->ticket.cur, body);
	CHECK(call_cb(ctx, &t, 0, got, &matched) == 0);

	x->tkfile.keys = NULL;
	x->tkfile.n = 0;
	SSL_CTX_free(ctx);
	tlsticket_wipe(&x->ticket);
	free(x);
}

int main(void)
{
	const uint64_t t0 = (uint64_t)490000 * H + 17;
	struct tlsticket master, a, b, c, before;
	static const uint8_t zero[sizeof(struct tlsticket)];

	CHECK(tlsticket_init(&master, t0) == 0);
	CHECK(tlsticket_init(&c, t0) == 0);
	/* Two starts never share keys. */
	CHECK(memcmp(master.cur.name, c.cur.name, sizeof(c.cur.name)) != 0);
	CHECK(!master.have_prev && master.period == t0 / H);

	/* Within a period nothing moves. */
	a = master;
	tlsticket_advance(&a, t0 + H - 18);
	CHECK(same(&a, &master));

	/* The next period: new keys; the old ones kept for decryption only;
	 * the secret itself replaced. */
	tlsticket_advance(&a, t0 + H);
	CHECK(a.period == master.period + 1 && a.have_prev);
	CHECK(same_keys(&a.prev, &master.cur));
	CHECK(!same_keys(&a.cur, &master.cur));
	CHECK(memcmp(a.secret, master.secret, 32) != 0);
	CHECK(memcmp(a.cur.name, a.prev.name, sizeof(a.cur.name)) != 0);

	/* "Forked" copies agree whatever steps they took: one period at a
	 * time, or five at once. */
	a = master;
	b = master;
	tlsticket_advance(&a, t0 + 5 * H);
	for (int i = 1; i <= 5; i++)
		tlsticket_advance(&b, t0 + (uint64_t)i * H + (uint64_t)i);
	CHECK(same(&a, &b));
	CHECK(a.have_prev && a.period == master.period + 5);
	/* ...and the previous keys are the fourth period's current ones. */
	c = master;
	tlsticket_advance(&c, t0 + 4 * H);
	CHECK(same_keys(&a.prev, &c.cur));

	/* The clock going back changes nothing. */
	before = a;
	tlsticket_advance(&a, t0);
	tlsticket_advance(&a, t0 + 4 * H);
	CHECK(same(&a, &before));

	/* A year of hours (8,784 periods) is still stepped, the previous keys
	 * kept; one more is a jump. */
	a = master;
	tlsticket_advance(&a, t0 + (uint64_t)8784 * H);
	CHECK(a.have_prev && a.period == master.period + 8784);
	b = master;
	tlsticket_advance(&b, t0 + (uint64_t)8785 * H);
	CHECK(!b.have_prev && b.period == master.period + 8785);

	/* A jump of years: still the same in every copy, without old keys. */
	a = master;
	b = master;
	tlsticket_advance(&a, t0 + (uint64_t)20 * 8784 * H);
	tlsticket_advance(&b, t0 + (uint64_t)20 * 8784 * H + 5);
	CHECK(same(&a, &b));
	CHECK(!a.have_prev && !same_keys(&a.cur, &master.cur));
	/* After the jump it ratchets one period at a time again. */
	tlsticket_advance(&a, t0 + ((uint64_t)20 * 8784 + 1) * H);
	CHECK(a.have_prev && same_keys(&a.prev, &b.cur));

	tlsticket_wipe(&a);
	CHECK(memcmp(&a, zero, sizeof(a)) == 0);

	test_ticket_callback();
	test_file_callback();
	test_idle_worker_tick();
	return CHECK_DONE();
}
