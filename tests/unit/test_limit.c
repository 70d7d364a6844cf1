/* The per-client limits' table (limit.c) in a real shared region: counts
 * per client and listener, IPv6 clients by prefix, the token bucket's
 * arithmetic on a clock the test sets, one log line per interval, a flood
 * of distinct addresses that evicts idle entries but not a held one, two
 * processes that count together, and a dead one's share given back. */
#include "check.h"
#include "ip_text.h"
#include "limit.h"
#include "shared.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static enum limit_verdict admit(struct shared *sh, unsigned slot, const char *addr,
                                const struct limit_rule *r, uint64_t now,
                                struct limit_hold *h, int *log_it)
{
	return limit_admit(sh, slot, ip(addr), r, now, h, log_it);
}

static void test_max_conns(struct shared *sh)
{
	struct limit_rule r = {.max_conns = 3, .v6_prefix = 64};
	struct limit_hold h[4], other;
	int log_it;

	for (int i = 0; i < 3; i++)
		CHECK(admit(sh, 0, "192.0.2.1", &r, 1000, &h[i], &log_it) == LIMIT_OK);
	CHECK(limit_conns(sh, 0, ip("192.0.2.1"), 64) == 3);
	CHECK(admit(sh, 0, "192.0.2.1", &r, 1000, &h[3], &log_it) == LIMIT_CONNS);
	CHECK(log_it == 1);
	CHECK(h[3].idx == 0);
	CHECK(admit(sh, 0, "192.0.2.1", &r, 2000, &h[3], &log_it) == LIMIT_CONNS);
	CHECK(log_it == 0);   /* once per interval */
	CHECK(admit(sh, 0, "192.0.2.1", &r, 1000 + LIMIT_LOG_INTERVAL_S * 1000 - 1,
	            &h[3], &log_it) == LIMIT_CONNS);
	CHECK(log_it == 0);
	CHECK(admit(sh, 0, "192.0.2.1", &r, 1000 + LIMIT_LOG_INTERVAL_S * 1000,
	            &h[3], &log_it) == LIMIT_CONNS);
	CHECK(log_it == 1);
	CHECK(limit_conns(sh, 0, ip("192.0.2.1"), 64) == 3);
	/* Another client, and the same client on another listener. */
	CHECK(admit(sh, 0, "192.0.2.2", &r, 1000, &other, &log_it) == LIMIT_OK);
	limit_release(sh, &other);
	CHECK(admit(sh, 1, "192.0.2.1", &r, 1000, &other, &log_it) == LIMIT_OK);
	limit_release(sh, &other);
	/* A close makes room; a second release of the same hold is a no-op. */
	limit_release(sh, &h[0]);
	limit_release(sh, &h[0]);
	CHECK(limit_conns(sh, 0, ip("192.0.2.1"), 64) == 2);
	CHECK(admit(sh, 0, "192.0.2.1", &r, 3000, &h[0], &log_it) == LIMIT_OK);
	for (int i = 0; i < 3; i++)
		limit_release(sh, &h[i]);
	CHECK(limit_conns(sh, 0, ip("192.0.2.1"), 64) == 0);
	/* Nothing on: nothing held, nothing counted. */
	r.max_conns = 0;
	CHECK(admit(sh, 0, "192.0.2.9", &r, 1000, &other, &log_it) == LIMIT_OK);
	CHECK(other.idx == 0);
}

static void test_v6_prefix(struct shared *sh)
{
	struct limit_rule r = {.max_conns = 2, .v6_prefix = 64};
	struct limit_hold a, b, c;
	int log_it;

	CHECK(admit(sh, 2, "2001:db8:1:2::1", &r, 1000, &a, &log_it) == LIMIT_OK);
	CHECK(admit(sh, 2, "2001:db8:1:2:ffff:ffff:ffff:fff9", &r, 1000, &b, &log_it) ==
	      LIMIT_OK);
	/* The same /64: full. The next /64: another client. */
	CHECK(admit(sh, 2, "2001:db8:1:2:abcd::7", &r, 1000, &c, &log_it) == LIMIT_CONNS);
	CHECK(limit_conns(sh, 2, ip("2001:db8:1:2::42"), 64) == 2);
	CHECK(admit(sh, 2, "2001:db8:1:3::1", &r, 1000, &c, &log_it) == LIMIT_OK);
	limit_release(sh, &c);
	/* /128: every address its own client. */
	r.v6_prefix = 128;
	CHECK(admit(sh, 2, "2001:db8:1:2:abcd::7", &r, 1000, &c, &log_it) == LIMIT_OK);
	limit_release(sh, &c);
	/* /56 takes in the /64s around it; a bit past the prefix is ignored. */
	r.v6_prefix = 56;
	CHECK(admit(sh, 3, "2001:db8:1:200::1", &r, 1000, &a, &log_it) == LIMIT_OK);
	CHECK(admit(sh, 3, "2001:db8:1:2ff::1", &r, 1000, &b, &log_it) == LIMIT_OK);
	CHECK(admit(sh, 3, "2001:db8:1:2aa::1", &r, 1000, &c, &log_it) == LIMIT_CONNS);
	CHECK(admit(sh, 3, "2001:db8:1:300::1", &r, 1000, &c, &log_it) == LIMIT_OK);
	limit_release(sh, &a);
	limit_release(sh, &b);
	limit_release(sh, &c);
	/* /60 ends inside a byte (the 8th): its high half is the client's,
	 * its low half, and everything after, is not. 2001:db8:1:20::/60 is
	 * ...:20 to ...:2f in the 4th group. */
	r.v6_prefix = 60;
	CHECK(admit(sh, 5, "2001:db8:1:20::1", &r, 1000, &a, &log_it) == LIMIT_OK);
	CHECK(admit(sh, 5, "2001:db8:1:2f:ffff::9", &r, 1000, &b, &log_it) == LIMIT_OK);
	CHECK(admit(sh, 5, "2001:db8:1:27::5", &r, 1000, &c, &log_it) == LIMIT_CONNS);
	CHECK(limit_conns(sh, 5, ip("2001:db8:1:2a::"), 60) == 2);
	/* One bit above the prefix, on either side of the /60: others. */
	CHECK(limit_conns(sh, 5, ip("2001:db8:1:30::1"), 60) == 0);
	CHECK(limit_conns(sh, 5, ip("2001:db8:1:1f::1"), 60) == 0);
	CHECK(limit_conns(sh, 5, ip("2001:db8:1:a0::1"), 60) == 0);
	CHECK(admit(sh, 5, "2001:db8:1:30::1", &r, 1000, &c, &log_it) == LIMIT_OK);
	limit_release(sh, &c);
	CHECK(admit(sh, 5, "2001:db8:1:1f::1", &r, 1000, &c, &log_it) == LIMIT_OK);
	limit_release(sh, &c);
	limit_release(sh, &a);
	limit_release(sh, &b);
	CHECK(limit_conns(sh, 5, ip("2001:db8:1:20::1"), 60) == 0);
	/* The same address under another prefix is another client: the
	 * prefix is part of the key. */
	CHECK(admit(sh, 5, "2001:db8:1:20::1", &r, 1000, &a, &log_it) == LIMIT_OK);
	CHECK(limit_conns(sh, 5, ip("2001:db8:1:20::1"), 64) == 0);
	limit_release(sh, &a);
	/* An IPv4 client is one client in either form. */
	r.max_conns = 1;
	CHECK(admit(sh, 4, "198.51.100.7", &r, 1000, &a, &log_it) == LIMIT_OK);
	CHECK(admit(sh, 4, "::ffff:198.51.100.7", &r, 1000, &b, &log_it) == LIMIT_CONNS);
	limit_release(sh, &a);
}

static void test_bucket(struct shared *sh)
{
	/* 1 a second, 3 at once. */
	struct limit_rule r = {.rate_per_min = 60, .burst = 3, .v6_prefix = 64};
	struct limit_hold h;
	uint64_t t = 100000;
	int log_it, ok;

	for (int i = 0; i < 3; i++) {
		CHECK(admit(sh, 5, "203.0.113.5", &r, t, &h, &log_it) == LIMIT_OK);
		limit_release(sh, &h);   /* rate counts openings, not open ones */
	}
	CHECK(admit(sh, 5, "203.0.113.5", &r, t, &h, &log_it) == LIMIT_RATE);
	CHECK(log_it == 1);
	CHECK(admit(sh, 5, "203.0.113.5", &r, t + 999, &h, &log_it) == LIMIT_RATE);
	CHECK(log_it == 0);
	CHECK(admit(sh, 5, "203.0.113.5", &r, t + 1000, &h, &log_it) == LIMIT_OK);
	limit_release(sh, &h);
	CHECK(admit(sh, 5, "203.0.113.5", &r, t + 1000, &h, &log_it) == LIMIT_RATE);
	/* A long rest fills the bucket to its size, not beyond. */
	t += 3600 * 1000;
	ok = 0;
	for (int i = 0; i < 10; i++)
		if (admit(sh, 5, "203.0.113.5", &r, t, &h, &log_it) == LIMIT_OK) {
			ok++;
			limit_release(sh, &h);
		}
	CHECK(ok == 3);

	/* 7 a minute, 1 at once: one every 8571.4 ms. */
	r = (struct limit_rule){.rate_per_min = 7, .burst = 1, .v6_prefix = 64};
	t = 200000;
	CHECK(admit(sh, 6, "203.0.113.6", &r, t, &h, &log_it) == LIMIT_OK);
	CHECK(admit(sh, 6, "203.0.113.6", &r, t + 8571, &h, &log_it) == LIMIT_RATE);
	CHECK(admit(sh, 6, "203.0.113.6", &r, t + 8572, &h, &log_it) == LIMIT_OK);
	/* A client that knocks every 3 ms for a minute and a second gets the
	 * seven a minute, plus the full bucket it started with: the time a
	 * refill could not yet turn into a whole thousandth is kept. */
	r.burst = 10;
	t = 300000;
	ok = 0;
	for (int i = 0; i < 10; i++)
		if (admit(sh, 10, "203.0.113.6", &r, t, &h, &log_it) == LIMIT_OK)
			ok++;
	CHECK(ok == 10);
	ok = 0;
	for (uint64_t ms = 1; ms <= 61000; ms += 3)
		if (admit(sh, 10, "203.0.113.6", &r, t + ms, &h, &log_it) == LIMIT_OK)
			ok++;
	CHECK(ok == 7);
	/* Both limits: the open count is checked first, and a refused
	 * connection spends no token. */
	r = (struct limit_rule){.max_conns = 1, .rate_per_min = 60, .burst = 2,
	                        .v6_prefix = 64};
	{
		struct limit_hold a, b;
		CHECK(admit(sh, 7, "203.0.113.7", &r, t, &a, &log_it) == LIMIT_OK);
		CHECK(admit(sh, 7, "203.0.113.7", &r, t, &b, &log_it) == LIMIT_CONNS);
		limit_release(sh, &a);
		CHECK(admit(sh, 7, "203.0.113.7", &r, t, &a, &log_it) == LIMIT_OK);
		limit_release(sh, &a);
		CHECK(admit(sh, 7, "203.0.113.7", &r, t, &a, &log_it) == LIMIT_RATE);
	}
}

static void test_flood(struct shared *sh)
{
	struct limit_rule r = {.max_conns = 1, .rate_per_min = 60, .burst = 1,
	                       .v6_prefix = 64};
	struct limit_hold held, h, early;
	char a[64];
	int log_it, all_ok = 1;
	size_t used = 0;

	CHECK(admit(sh, 8, "192.0.2.77", &r, 5000, &held, &log_it) == LIMIT_OK);
	CHECK(admit(sh, 8, "2001:db8:ee::1", &r, 5000, &early, &log_it) == LIMIT_OK);
	limit_release(sh, &early);
	/* Eight times the table's entries, each a new client that comes and
	 * goes, a millisecond apart: every one gets in. */
	for (unsigned i = 0; i < 8 * LIMIT_SETS * LIMIT_WAYS; i++) {
		snprintf(a, sizeof(a), "2001:db8:%x:%x::1", i >> 16, i & 0xffff);
		if (admit(sh, 8, a, &r, 6000 + i, &h, &log_it) != LIMIT_OK)
			all_ok = 0;
		limit_release(sh, &h);
	}
	CHECK(all_ok);
	for (size_t i = 0; i < LIMIT_SETS * LIMIT_WAYS; i++)
		used += atomic_load(&sh->limits.e[i].tag) != 0;
	CHECK(used == LIMIT_SETS * LIMIT_WAYS);   /* full, and no larger */
	/* The early client was forgotten: its bucket is full again. */
	CHECK(limit_conns(sh, 8, ip("2001:db8:ee::1"), 64) == 0);
	CHECK(admit(sh, 8, "2001:db8:ee::1", &r, 6000, &early, &log_it) == LIMIT_OK);
	limit_release(sh, &early);
	/* The client holding a connection was not: idle entries go first. */
	CHECK(limit_conns(sh, 8, ip("192.0.2.77"), 64) == 1);
	CHECK(admit(sh, 8, "192.0.2.77", &r, 999999999, &h, &log_it) == LIMIT_CONNS);
	limit_release(sh, &held);
}

/* Two processes, 500 attempts each, never closing: exactly max get in. */
static void test_processes(struct shared *sh)
{
	struct limit_rule r = {.max_conns = 10, .v6_prefix = 64};
	pid_t pid[2];
	int total = 0;

	for (int p = 0; p < 2; p++) {
		if ((pid[p] = fork()) == 0) {
			struct limit_hold h;
			int log_it, ok = 0;
			for (int i = 0; i < 500; i++)
				ok += admit(sh, 9, "192.0.2.200", &r, 1000, &h, &log_it) == LIMIT_OK;
			_exit(ok);
		}
		CHECK(pid[p] > 0);
	}
	for (int p = 0; p < 2; p++) {
		int st = 0;
		struct timespec nap = {0, 5 * 1000 * 1000};
		/* Bounded: 2000 naps of 5 ms. */
		for (int i = 0; i < 2000 && waitpid(pid[p], &st, WNOHANG) == 0; i++)
			nanosleep(&nap, NULL);
		if (waitpid(pid[p], &st, WNOHANG) == 0) {
			kill(pid[p], SIGKILL);
			waitpid(pid[p], &st, 0);
		}
		total += WIFEXITED(st) ? WEXITSTATUS(st) : 100;
	}
	CHECK(total == 10);
	CHECK(limit_conns(sh, 9, ip("192.0.2.200"), 64) == 10);
}

/* Run body in a child that owns share row k as a worker would, and wait
 * for it (it ends without closing anything, as a killed worker does). */
static pid_t as_worker(struct shared *sh, int k, void (*body)(struct shared *))
{
	pid_t pid = fork();
	int st = 0;
	struct timespec nap = {0, 5 * 1000 * 1000};

	if (pid == 0) {
		shared_proc_enter(k);
		body(sh);
		_exit(0);
	}
	CHECK(pid > 0);
	shared_proc_own(sh, k, pid);
	/* Bounded: 2000 naps of 5 ms. */
	for (int i = 0; i < 2000 && waitpid(pid, &st, WNOHANG) == 0; i++)
		nanosleep(&nap, NULL);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return pid;
}

static void hold_three(struct shared *sh)
{
	struct limit_rule r = {.max_conns = 3, .v6_prefix = 64};
	struct limit_hold h;
	int log_it;

	for (int i = 0; i < 3; i++)
		if (admit(sh, 11, "192.0.2.201", &r, 1000, &h, &log_it) != LIMIT_OK)
			_exit(1);
	/* One closed: the record follows the count. */
	limit_release(sh, &h);
	if (admit(sh, 11, "192.0.2.201", &r, 1000, &h, &log_it) != LIMIT_OK)
		_exit(2);
	shared_count(shared_slot(sh, "dying"), SHARED_ACTIVE, 3);
}

static void hold_two(struct shared *sh)
{
	struct limit_rule r = {.max_conns = 3, .v6_prefix = 64};
	struct limit_hold h;
	int log_it;

	for (int i = 0; i < 2; i++)
		if (admit(sh, 12, "192.0.2.202", &r, 1000, &h, &log_it) != LIMIT_OK)
			_exit(1);
}

/* A worker that dies holding connections: the master gives back what its
 * share row says it held, and its part of the active gauge goes with the
 * row; an entry that went to another client since is left alone. */
static void test_dead_worker(struct shared *sh)
{
	struct limit_rule r = {.max_conns = 3, .v6_prefix = 64};
	struct shared_slot *s = shared_slot(sh, "dying");
	struct limit_hold h;
	int log_it, k = shared_proc_reserve(sh), cells = 0;
	pid_t pid;

	CHECK(k >= 0 && s != NULL);
	shared_count(s, SHARED_ACTIVE, 1);   /* this process has no row */
	pid = as_worker(sh, k, hold_three);
	CHECK(shared_proc_of(sh, pid) == k);
	CHECK(limit_conns(sh, 11, ip("192.0.2.201"), 64) == 3);
	CHECK(admit(sh, 11, "192.0.2.201", &r, 1000, &h, &log_it) == LIMIT_CONNS);
	CHECK(shared_stat(s, SHARED_ACTIVE) == 4);
	limit_proc_gone(sh, k);
	shared_proc_free(sh, k);
	CHECK(shared_proc_of(sh, pid) == -1);
	CHECK(limit_conns(sh, 11, ip("192.0.2.201"), 64) == 0);
	CHECK(shared_stat(s, SHARED_ACTIVE) == 1);
	for (size_t i = 0; i < LIMIT_SETS * LIMIT_WAYS; i++)
		cells += atomic_load(&sh->procs[k].held[i]) != 0;
	CHECK(cells == 0);
	for (int i = 0; i < 3; i++)
		CHECK(admit(sh, 11, "192.0.2.201", &r, 1000, &h, &log_it) == LIMIT_OK);

	/* The row again, for another worker: its entry then goes to another
	 * client (a new epoch, a count of its own) before it is reaped. */
	CHECK(shared_proc_reserve(sh) == k);
	pid = as_worker(sh, k, hold_two);
	CHECK(limit_conns(sh, 12, ip("192.0.2.202"), 64) == 2);
	for (size_t i = 0; i < LIMIT_SETS * LIMIT_WAYS; i++) {
		if (atomic_load(&sh->procs[k].held[i]) == 0)
			continue;
		atomic_fetch_add(&sh->limits.e[i].epoch, 1);
		atomic_store(&sh->limits.e[i].conns, 1);
		limit_proc_gone(sh, k);
		CHECK(atomic_load(&sh->limits.e[i].conns) == 1);
		cells++;
	}
	CHECK(cells == 1);
	shared_proc_free(sh, k);
}

static void hold_four_close_one(struct shared *sh)
{
	struct limit_rule r = {.max_conns = 5, .v6_prefix = 64};
	struct limit_hold h;
	int log_it;

	for (int i = 0; i < 4; i++)
		if (admit(sh, 13, "192.0.2.203", &r, 1000, &h, &log_it) != LIMIT_OK)
			_exit(1);
	limit_release(sh, &h);
}

/* A dead worker's record is exact: what it held (four admitted, one
 * closed) goes, and the connection another process holds for the same
 * client stays counted. Rows out of range, and no region, are no-ops. */
static void test_dead_worker_beside_another(struct shared *sh)
{
	struct limit_rule r = {.max_conns = 5, .v6_prefix = 64};
	struct limit_hold mine;
	int log_it, k = shared_proc_reserve(sh);

	CHECK(k >= 0);
	CHECK(admit(sh, 13, "192.0.2.203", &r, 1000, &mine, &log_it) == LIMIT_OK);
	as_worker(sh, k, hold_four_close_one);
	CHECK(limit_conns(sh, 13, ip("192.0.2.203"), 64) == 4);
	limit_proc_gone(sh, -1);
	limit_proc_gone(sh, SHARED_PROCS);
	limit_proc_gone(NULL, k);
	CHECK(limit_conns(sh, 13, ip("192.0.2.203"), 64) == 4);
	limit_proc_gone(sh, k);
	shared_proc_free(sh, k);
	CHECK(limit_conns(sh, 13, ip("192.0.2.203"), 64) == 1);
	limit_release(sh, &mine);
	CHECK(limit_conns(sh, 13, ip("192.0.2.203"), 64) == 0);
}

/* A client that is not IP (a UNIX socket) has no entry: never limited. */
static void test_not_ip(struct shared *sh)
{
	struct limit_rule r = {.max_conns = 1, .rate_per_min = 1, .burst = 1, .v6_prefix = 64};
	struct sockaddr_un un = {.sun_family = AF_UNIX, .sun_path = "/run/x"};
	struct limit_hold h;
	int log_it;

	for (int i = 0; i < 3; i++)
		CHECK(limit_admit(sh, 14, (const struct sockaddr *)&un, &r, 1000, &h,
		                  &log_it) == LIMIT_OK && h.idx == 0);
	CHECK(limit_conns(sh, 14, (const struct sockaddr *)&un, 64) == 0);
}

int main(void)
{
	struct shared *sh = shared_map(SHARED_SIZE);

	CHECK(sh != NULL);
	if (sh == NULL)
		return CHECK_DONE();
	test_max_conns(sh);
	test_v6_prefix(sh);
	test_bucket(sh);
	test_flood(sh);
	test_processes(sh);
	test_dead_worker(sh);
	test_dead_worker_beside_another(sh);
	test_not_ip(sh);
	shared_unmap();
	return CHECK_DONE();
}
