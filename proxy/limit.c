#include "limit.h"
#include "shared.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/*
 * How workers race, and why each race is benign. Every field of an entry
 * is its own lock-free atomic; none is ever waited for, and every retry
 * loop is bounded: an admission's (TRIES) fails open, a connection let in
 * rather than held up by another process; a give-back's (GIVE_TRIES) is
 * long enough never to lose one, which would count against its client
 * for as long as the entry stays its.
 * - Two workers may take the same empty or stale entry for two clients at
 *   once: the compare-and-swap of its tag lets one win; the other looks
 *   again once, and when its client is still not there it lets the
 *   connection in unheld (uncounted).
 * - A worker that found a client's entry just as another gave it to a new
 *   client counts on the new one: at worst one connection too many or too
 *   few for the new client. Its close gives nothing back (the tag differs),
 *   and no count goes below zero.
 * - The open count is added first and taken back when over the limit, so
 *   concurrent admissions never let more than max_connections_per_ip in.
 * - The bucket's time and tokens are one 64-bit word changed by
 *   compare-and-swap, so no refill is counted twice. A worker's clock
 *   reading can be older than the refill another stored since: it counts
 *   as no time passed, and the refill time never goes back.
 * - The log stamp is claimed by compare-and-swap: one line per interval,
 *   a reading older than the stamp being no later.
 */

#define TRIES 8
#define GIVE_TRIES 1000   /* a count given back is not lost to contention */
#define MASK40 ((UINT64_C(1) << 40) - 1)

/* A share row's held[] cell: the worker's connections counted in an
 * entry (low 20 bits), for the entry's epoch (low 12 bits of it) when they
 * came. A cell of an older epoch counts nothing: the entry went to another
 * client since, whose count started again at 0. (An epoch that came round
 * 4096 times, or more than 2^20 - 1 connections of one worker in one
 * entry, could leave a dead worker's count partly wrong: on the side of
 * letting in, never of locking a client out for good.) */
#define HELD_BITS 20
#define HELD_MAX ((UINT32_C(1) << HELD_BITS) - 1)
#define HELD_EPOCH(ep) ((uint32_t)(ep) & 0xfffu)
#define MILLI 1000u                     /* bucket units per connection */

uint64_t limit_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* SipHash-1-3 (Aumasson, Bernstein) of n bytes under key k: a client cannot
 * choose addresses that share a set without the region's secret. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                             \
	do {                                                                 \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);     \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                        \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                        \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);     \
	} while (0)

static uint64_t siphash13(const uint64_t k[2], const uint8_t *in, size_t n)
{
	uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ k[0];
	uint64_t v1 = UINT64_C(0x646f72616e646f6d) ^ k[1];
	uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ k[0];
	uint64_t v3 = UINT64_C(0x7465646279746573) ^ k[1];
	uint64_t b = (uint64_t)n << 56, m;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		m = 0;
		for (int j = 7; j >= 0; j--)
			m = m << 8 | in[i + (size_t)j];
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; i + j < n; j++)
		b |= (uint64_t)in[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The client of sa on slot as a tag (never 0); 0 when sa is not IP. An
 * IPv4 address is whole, also when it comes as ::ffff:a.b.c.d; an IPv6 one
 * is cut to its first prefix bits. */
static uint64_t tag_of(const struct shared *sh, unsigned slot,
                       const struct sockaddr *sa, unsigned prefix)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	uint8_t in[21] = {0};
	uint64_t t;

	in[0] = (uint8_t)slot;
	in[1] = (uint8_t)(slot >> 8);
	in[2] = (uint8_t)(slot >> 16);
	if (sa->sa_family == AF_INET) {
		in[3] = 4;
		memcpy(in + 4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (memcmp(a, v4mapped, 12) == 0) {
			in[3] = 4;
			memcpy(in + 4, a + 12, 4);
		} else {
			in[3] = 6;
			if (prefix > 128)
				prefix = 128;
			memcpy(in + 4, a, prefix / 8);
			if (prefix % 8)
				in[4 + prefix / 8] = a[prefix / 8] &
				                     (uint8_t)(0xff00u >> (prefix % 8));
			in[20] = (uint8_t)prefix;
		}
	} else {
		return 0;
	}
	t = siphash13(sh->limits.key, in, sizeof(in));
	return t ? t : 1;
}

static struct limit_entry *set_of(struct shared *sh, uint64_t tag)
{
	return &sh->limits.e[(size_t)(tag >> 32) % LIMIT_SETS * LIMIT_WAYS];
}

static struct limit_entry *find(struct limit_entry *set, uint64_t tag)
{
	for (unsigned w = 0; w < LIMIT_WAYS; w++)
		if (atomic_load_explicit(&set[w].tag, memory_order_acquire) == tag)
			return &set[w];
	return NULL;
}

/* The entry to give a new client: an empty one, else the least recently
 * seen without open connections; NULL when every entry holds some. An
 * entry that holds connections is never given away: its client's count
 * would restart at 0 (a fresh max_connections_per_ip while its old
 * connections stay open) and those connections' closes would give
 * nothing back. */
static struct limit_entry *victim(struct limit_entry *set)
{
	struct limit_entry *idle = NULL;
	uint64_t idle_seen = UINT64_MAX;

	for (unsigned w = 0; w < LIMIT_WAYS; w++) {
		uint64_t seen = atomic_load_explicit(&set[w].seen, memory_order_relaxed);
		if (atomic_load_explicit(&set[w].tag, memory_order_relaxed) == 0)
			return &set[w];
		if (seen < idle_seen &&
		    atomic_load_explicit(&set[w].conns, memory_order_relaxed) == 0) {
			idle = &set[w];
			idle_seen = seen;
		}
	}
	return idle;
}

static uint64_t full_bucket(const struct limit_rule *r, uint64_t now)
{
	return (uint64_t)r->burst * MILLI << 40 | (now & MASK40);
}

/* tag's entry, found or taken for it; NULL when another worker took the
 * same one first, or (*full set) when every entry of its set holds
 * connections of other clients. */
static struct limit_entry *claim(struct shared *sh, uint64_t tag,
                                 const struct limit_rule *r, uint64_t now, int *full)
{
	struct limit_entry *set = set_of(sh, tag), *e;
	uint64_t old;

	if ((e = find(set, tag)) != NULL)
		return e;
	if ((e = victim(set)) == NULL) {
		*full = 1;
		return NULL;
	}
	old = atomic_load_explicit(&e->tag, memory_order_relaxed);
	if (!atomic_compare_exchange_strong(&e->tag, &old, tag))
		return find(set, tag);   /* another worker was quicker */
	atomic_fetch_add(&e->epoch, 1);
	atomic_store_explicit(&e->conns, 0, memory_order_relaxed);
	atomic_store_explicit(&e->bucket, full_bucket(r, now), memory_order_relaxed);
	atomic_store_explicit(&e->logged, 0, memory_order_relaxed);
	return e;
}

/* Take one connection's worth out of e's bucket, refilled at r's rate
 * since its last refill: 0, or -1 when it is empty. */
static int take_token(struct limit_entry *e, const struct limit_rule *r, uint64_t now)
{
	uint64_t cap = (uint64_t)r->burst * MILLI;

	for (int i = 0; i < TRIES; i++) {
		uint64_t b = atomic_load_explicit(&e->bucket, memory_order_relaxed);
		uint64_t last = b & MASK40, tokens = b >> 40, nb;
		uint64_t elapsed = (now - last) & MASK40;
		uint64_t add;

		/* A reading older than the refill another worker stored after
		 * it (this one was preempted between the two): no time passed,
		 * rather than 2^40 ms, and last never goes back. */
		if (elapsed > MASK40 / 2)
			elapsed = 0;
		/* Thousandths of a connection per ms: rate_per_min / 60. */
		add = elapsed > UINT32_MAX ? cap : elapsed * r->rate_per_min / 60;
		if (tokens + add >= cap) {
			tokens = cap;
			last += elapsed;
		} else if (add > 0) {
			tokens += add;
			/* Only the time turned into tokens: a remainder too small
			 * to make one thousandth waits for the next refill. */
			last += add * 60 / r->rate_per_min;
		}
		if (tokens < MILLI)
			return -1;
		nb = (tokens - MILLI) << 40 | (last & MASK40);
		if (atomic_compare_exchange_weak(&e->bucket, &b, nb))
			return 0;
	}
	return 0;   /* contended: let it in */
}

/* Take k off e's count, never below 0 (the entry may have gone to a new
 * client, its count restarted, since). */
static void give_back_n(struct limit_entry *e, uint32_t k)
{
	uint32_t n = atomic_load_explicit(&e->conns, memory_order_relaxed);

	for (int i = 0; i < GIVE_TRIES && n > 0; i++)
		if (atomic_compare_exchange_weak(&e->conns, &n, n > k ? n - k : 0))
			return;
}

static void give_back(struct limit_entry *e)
{
	give_back_n(e, 1);
}

/* This worker's share row's record of entry idx (see HELD_BITS), or NULL
 * when it has no row. */
static _Atomic uint32_t *held_cell(struct shared *sh, uint32_t idx)
{
	int k = shared_proc_self();

	return k < 0 ? NULL : &sh->procs[k].held[idx];
}

/* One more of this worker's connections counted in entry idx of epoch ep
 * (d = 1), or one fewer (d = -1). Only this worker writes its row. */
static void held_add(struct shared *sh, uint32_t idx, uint32_t ep, int d)
{
	_Atomic uint32_t *cell = held_cell(sh, idx);
	uint32_t v, n;

	if (cell == NULL)
		return;
	v = atomic_load_explicit(cell, memory_order_relaxed);
	n = v >> HELD_BITS == HELD_EPOCH(ep) ? v & HELD_MAX : 0;
	if (d > 0 && n < HELD_MAX)
		n++;
	else if (d < 0 && n > 0)
		n--;
	else
		return;
	atomic_store_explicit(cell, HELD_EPOCH(ep) << HELD_BITS | n, memory_order_relaxed);
}

/* Is a log line due at now, the last one having been at *stamp (0:
 * never)? Claimed by compare-and-swap: one worker's yes per interval. A
 * reading older than the stamp (another worker logged after this one read
 * the clock) is not an interval later. */
static int log_due(_Atomic uint64_t *stamp, uint64_t now)
{
	uint64_t logged = atomic_load_explicit(stamp, memory_order_relaxed);

	return (logged == 0 ||
	        (now > logged && now - logged >= LIMIT_LOG_INTERVAL_S * 1000u)) &&
	       atomic_compare_exchange_strong(stamp, &logged, now ? now : 1);
}

enum limit_verdict limit_admit(struct shared *sh, unsigned slot,
                               const struct sockaddr *sa, const struct limit_rule *r,
                               uint64_t now_ms, struct limit_hold *h, int *log_it)
{
	enum limit_verdict v = LIMIT_OK;
	struct limit_entry *e;
	uint64_t tag;
	int full = 0;

	h->idx = 0;
	h->tag = 0;
	*log_it = 0;
	if (sh == NULL || (r->max_conns == 0 && r->rate_per_min == 0) ||
	    (tag = tag_of(sh, slot, sa, r->v6_prefix)) == 0)
		return LIMIT_OK;
	if ((e = claim(sh, tag, r, now_ms, &full)) == NULL) {
		/* Let in rather than refused: refusing would let a flood of
		 * held connections lock out every newcomer of their sets. */
		if (full)
			*log_it = log_due(&sh->limits.full_logged, now_ms);
		return full ? LIMIT_FULL : LIMIT_OK;
	}
	atomic_store_explicit(&e->seen, now_ms, memory_order_relaxed);
	if (atomic_fetch_add(&e->conns, 1) >= r->max_conns && r->max_conns) {
		give_back(e);
		v = LIMIT_CONNS;
	} else if (r->rate_per_min && take_token(e, r, now_ms) < 0) {
		give_back(e);
		v = LIMIT_RATE;
	}
	if (v == LIMIT_OK) {
		h->idx = (uint32_t)(e - sh->limits.e) + 1;
		h->tag = tag;
		h->epoch = atomic_load_explicit(&e->epoch, memory_order_relaxed);
		held_add(sh, h->idx - 1, h->epoch, 1);
		return v;
	}
	*log_it = log_due(&e->logged, now_ms);
	return v;
}

void limit_release(struct shared *sh, struct limit_hold *h)
{
	struct limit_entry *e;

	if (sh == NULL || h->idx == 0 || h->idx > LIMIT_SETS * LIMIT_WAYS)
		return;
	e = &sh->limits.e[h->idx - 1];
	if (atomic_load_explicit(&e->tag, memory_order_acquire) == h->tag)
		give_back(e);
	held_add(sh, h->idx - 1, h->epoch, -1);
	h->idx = 0;
}

void limit_proc_gone(struct shared *sh, int k)
{
	if (sh == NULL || k < 0 || k >= SHARED_PROCS)
		return;
	for (uint32_t i = 0; i < LIMIT_SETS * LIMIT_WAYS; i++) {
		_Atomic uint32_t *cell = &sh->procs[k].held[i];
		uint32_t v = atomic_load_explicit(cell, memory_order_relaxed);
		struct limit_entry *e = &sh->limits.e[i];

		if (v == 0)
			continue;
		if (v >> HELD_BITS ==
		    HELD_EPOCH(atomic_load_explicit(&e->epoch, memory_order_relaxed)))
			give_back_n(e, v & HELD_MAX);
		atomic_store_explicit(cell, 0, memory_order_relaxed);
	}
}

unsigned limit_conns(struct shared *sh, unsigned slot, const struct sockaddr *sa,
                     unsigned v6_prefix)
{
	struct limit_entry *e;
	uint64_t tag;

	if (sh == NULL || (tag = tag_of(sh, slot, sa, v6_prefix)) == 0 ||
	    (e = find(set_of(sh, tag), tag)) == NULL)
		return 0;
	return atomic_load_explicit(&e->conns, memory_order_relaxed);
}
