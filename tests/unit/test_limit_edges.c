/* The per-client limits' table (limit.c) at two edges its opening comment
 * and docs/operations.md ("Per-client limits") make promises about:
 * - a worker's clock reading can be a millisecond (or, preempted, a time
 *   slice) older than the refill another worker has just stored: that
 *   reading must not count as a bucket left alone for 2^40 ms and refill it
 *   whole ("no refill is counted twice"), nor log a refusal again;
 * - "a flood of addresses forgets old idle clients but not the ones
 *   holding connections": also when the flood's clients hold connections
 *   themselves.
 * Both fail at 8276e48 (review of the shared state and limits). */
#include "check.h"
#include "ip_text.h"
#include "limit.h"
#include "shared.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static enum limit_verdict admit(struct shared *sh, unsigned slot, const char *addr,
                                const struct limit_rule *r, uint64_t now,
                                struct limit_hold *h)
{
	int log_it;

	return limit_admit(sh, slot, ip(addr), r, now, h, &log_it);
}

/* Worker A stores the refill of t + 1000; worker B read the clock at
 * t + 999, just before, and reaches the bucket after. */
static void test_stale_clock(struct shared *sh)
{
	struct limit_rule r = {.rate_per_min = 60, .burst = 1, .v6_prefix = 64};
	struct limit_hold h;
	uint64_t t = 100000;
	int ok = 0;

	CHECK(admit(sh, 0, "192.0.2.1", &r, t, &h) == LIMIT_OK);
	limit_release(sh, &h);
	CHECK(admit(sh, 0, "192.0.2.1", &r, t + 1000, &h) == LIMIT_OK);
	limit_release(sh, &h);
	/* 1 a second: a third within the same second is one too many. */
	CHECK(admit(sh, 0, "192.0.2.1", &r, t + 999, &h) == LIMIT_RATE);
	limit_release(sh, &h);

	/* A bucket of 5, emptied at t + 1000: a stale reading must not give
	 * the client five more at once. */
	r.burst = 5;
	t = 500000;
	for (int i = 0; i < 5; i++) {
		CHECK(admit(sh, 1, "192.0.2.2", &r, t, &h) == LIMIT_OK);
		limit_release(sh, &h);
	}
	CHECK(admit(sh, 1, "192.0.2.2", &r, t + 1000, &h) == LIMIT_OK);
	limit_release(sh, &h);
	for (int i = 0; i < 5; i++)
		if (admit(sh, 1, "192.0.2.2", &r, t + 999, &h) == LIMIT_OK) {
			ok++;
			limit_release(sh, &h);
		}
	CHECK(ok == 0);

	/* A bucket fuller than its rule (a reload lowered rate_burst from 5
	 * to 2) meets a stale reading: it is cut to its new size, and its
	 * refill time does not go back, which would give a millisecond's
	 * worth more: the third connection comes 999 ms after the second,
	 * short of the 1000 ms that refill one. */
	r.burst = 5;
	t = 900000;
	CHECK(admit(sh, 4, "192.0.2.4", &r, t, &h) == LIMIT_OK);
	limit_release(sh, &h);
	r.burst = 2;
	CHECK(admit(sh, 4, "192.0.2.4", &r, t - 1, &h) == LIMIT_OK);
	limit_release(sh, &h);
	CHECK(admit(sh, 4, "192.0.2.4", &r, t, &h) == LIMIT_OK);
	limit_release(sh, &h);
	CHECK(admit(sh, 4, "192.0.2.4", &r, t + 999, &h) == LIMIT_RATE);
	limit_release(sh, &h);
}

/* The same for the refusal's log stamp: once a minute per client, also
 * when a worker's reading is older than the line another worker just
 * logged, which must neither log again nor move the stamp back. */
static void test_stale_clock_log(struct shared *sh)
{
	struct limit_rule r = {.max_conns = 1, .v6_prefix = 64};
	struct limit_hold held, h;
	uint64_t t = 700000;
	int log_it;

	CHECK(admit(sh, 3, "192.0.2.3", &r, t, &held) == LIMIT_OK);
	CHECK(limit_admit(sh, 3, ip("192.0.2.3"), &r, t, &h, &log_it) == LIMIT_CONNS);
	CHECK(log_it == 1);
	CHECK(limit_admit(sh, 3, ip("192.0.2.3"), &r, t + 60000, &h, &log_it) == LIMIT_CONNS);
	CHECK(log_it == 1);
	CHECK(limit_admit(sh, 3, ip("192.0.2.3"), &r, t + 59999, &h, &log_it) == LIMIT_CONNS);
	CHECK(log_it == 0);
	/* Still a minute from t + 60000, not from the stale reading. */
	CHECK(limit_admit(sh, 3, ip("192.0.2.3"), &r, t + 119999, &h, &log_it) == LIMIT_CONNS);
	CHECK(log_it == 0);
	CHECK(limit_admit(sh, 3, ip("192.0.2.3"), &r, t + 120000, &h, &log_it) == LIMIT_CONNS);
	CHECK(log_it == 1);
	limit_release(sh, &held);
}

/* A client at its max_connections_per_ip while four times the table's
 * entries in other clients (IPv6 /64s of one site, say) each open one
 * connection and keep it. */
static void test_flood_of_holding_clients(struct shared *sh)
{
	struct limit_rule r = {.max_conns = 2, .v6_prefix = 64};
	struct limit_hold a[2], h;
	char addr[64];
	unsigned full = 0, refused = 0, held_full = 0, logs = 0, logs_spaced = 1;
	uint64_t last_log = 0;

	CHECK(admit(sh, 2, "198.51.100.1", &r, 5000, &a[0]) == LIMIT_OK);
	CHECK(admit(sh, 2, "198.51.100.1", &r, 5000, &a[1]) == LIMIT_OK);
	CHECK(admit(sh, 2, "198.51.100.1", &r, 5000, &h) == LIMIT_CONNS);
	for (unsigned i = 0; i < 4 * LIMIT_SETS * LIMIT_WAYS; i++) {
		uint64_t now = 6000 + i;
		enum limit_verdict v;
		int log_it;

		snprintf(addr, sizeof(addr), "2001:db8:%x:%x::1", i >> 16, i & 0xffff);
		/* held, never closed */
		v = limit_admit(sh, 2, ip(addr), &r, now, &h, &log_it);
		if (v == LIMIT_FULL) {
			full++;
			held_full += h.idx != 0;
		} else if (v != LIMIT_OK) {
			refused++;
		}
		if (log_it) {
			/* One line per interval, and only for the table's lack of
			 * room (nobody here is over its own limit). */
			if (v != LIMIT_FULL || (logs && now - last_log < LIMIT_LOG_INTERVAL_S * 1000u))
				logs_spaced = 0;
			logs++;
			last_log = now;
		}
	}
	CHECK(limit_conns(sh, 2, ip("198.51.100.1"), 64) == 2);
	CHECK(admit(sh, 2, "198.51.100.1", &r, 999999, &h) == LIMIT_CONNS);
	/* The newcomers that found no room were let in, uncounted; a flood
	 * of held connections locks nobody out. */
	CHECK(full > 0 && refused == 0 && held_full == 0);
	CHECK(logs >= 1 && logs_spaced);
}

int main(void)
{
	struct shared *sh = shared_map(SHARED_SIZE);

	CHECK(sh != NULL);
	if (sh == NULL)
		return CHECK_DONE();
	test_stale_clock(sh);
	test_stale_clock_log(sh);
	test_flood_of_holding_clients(sh);
	shared_unmap();
	return CHECK_DONE();
}
