/* The region every process of one portier shares: what a forked child
 * writes the parent reads, slots are found again by name, a full table
 * says so, concurrent increments from several processes all count, and a
 * slot name without its NUL is read no further than its field. */
#include "check.h"
#include "shared.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHILD_LIMIT_S 20   /* no child of this test runs longer */

/* Wait for pid, at most CHILD_LIMIT_S; kill it if it overstays. Returns
 * its exit status, or -1 if it did not exit cleanly. */
static int wait_child(pid_t pid)
{
	struct timespec nap = {0, 2 * 1000 * 1000};
	time_t until = time(NULL) + CHILD_LIMIT_S;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (r < 0)
			return -1;
		if (time(NULL) > until) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		nanosleep(&nap, NULL);
	}
}

static void test_map(void)
{
	long page = sysconf(_SC_PAGESIZE);
	struct shared *sh;

	CHECK(shared_get() == NULL);
	sh = shared_map(1000);        /* less than the header: grown, page aligned */
	CHECK(sh != NULL);
	if (sh == NULL)
		exit(CHECK_DONE());
	CHECK(shared_get() == sh);
	CHECK(sh->magic == SHARED_MAGIC && sh->version == SHARED_VERSION);
	CHECK(sh->size >= sizeof(struct shared) && sh->size % (uint64_t)page == 0);
	CHECK(sh->generation == 1 && sh->workers_up == 0 && sh->reloads_ok == 0);
	CHECK(sh->reloads_failed == 0 && sh->last_reload == 0);
	/* One region per process. */
	errno = 0;
	CHECK(shared_map(SHARED_SIZE) == NULL && errno == EBUSY);
	CHECK(shared_get() == sh);
	shared_unmap();
	CHECK(shared_get() == NULL);
	shared_unmap();               /* no-op */
	sh = shared_map(SHARED_SIZE);
	CHECK(sh != NULL && sh->size == SHARED_SIZE);
}

/* A child writes, the parent sees it: the same pages, not a copy. */
static void test_fork(void)
{
	struct shared *sh = shared_get();
	struct shared_slot *web = shared_slot(sh, "web");
	pid_t pid;

	CHECK(web != NULL);
	pid = fork();
	if (pid == 0) {
		struct shared_slot *s = shared_slot(shared_get(), "web");
		shared_count(s, SHARED_ACCEPTED, 5);
		shared_count(s, SHARED_ACTIVE, 3);
		shared_count(s, SHARED_ACTIVE, -1);
		shared_count(s, SHARED_BYTES_UP, 1000);
		shared_count_close(s, 2);
		shared_count_close(s, 2);
		shared_count_close(s, 999);      /* out of range: the last reason */
		/* A name only the child has seen. */
		shared_count(shared_slot(shared_get(), "child-only"), SHARED_HANDSHAKES_OK, 7);
		shared_reload_done(shared_get(), 1, 1234567890);
		shared_reload_done(shared_get(), 0, 1234567999);
		shared_set_workers_up(shared_get(), 3);
		_exit(s == web ? 0 : 3);
	}
	CHECK(pid > 0);
	CHECK(wait_child(pid) == 0);
	CHECK(shared_stat(web, SHARED_ACCEPTED) == 5);
	CHECK(shared_stat(web, SHARED_ACTIVE) == 2);
	CHECK(shared_stat(web, SHARED_BYTES_UP) == 1000);
	CHECK(shared_stat(web, SHARED_BYTES_DOWN) == 0);
	CHECK(shared_closes(web, 2) == 2);
	CHECK(shared_closes(web, SHARED_REASONS - 1) == 1);
	CHECK(shared_closes(web, 1000) == 1);
	CHECK(shared_closes(web, 0) == 0);
	CHECK(shared_stat(shared_slot(sh, "child-only"), SHARED_HANDSHAKES_OK) == 7);
	/* A successful reload moves the generation and its time; a failed one
	 * only counts. */
	CHECK(sh->generation == 2 && sh->reloads_ok == 1 && sh->reloads_failed == 1);
	CHECK(sh->last_reload == 1234567890);
	CHECK(sh->workers_up == 3);
}

/* Several processes bumping one counter at once lose no increment. */
static void test_concurrent(void)
{
	enum { KIDS = 4, EACH = 20000 };
	struct shared_slot *s = shared_slot(shared_get(), "busy");
	pid_t kids[KIDS];
	int ok = 1;

	for (int i = 0; i < KIDS; i++) {
		if ((kids[i] = fork()) == 0) {
			struct shared_slot *mine = shared_slot(shared_get(), "busy");
			for (int j = 0; j < EACH; j++) {
				shared_count(mine, SHARED_BYTES_DOWN, 3);
				shared_count(mine, SHARED_ACTIVE, 1);
				shared_count(mine, SHARED_ACTIVE, -1);
			}
			_exit(0);
		}
		CHECK(kids[i] > 0);
	}
	for (int i = 0; i < KIDS; i++)
		ok &= kids[i] > 0 && wait_child(kids[i]) == 0;
	CHECK(ok);
	CHECK(shared_stat(s, SHARED_BYTES_DOWN) == (uint64_t)KIDS * EACH * 3);
	CHECK(shared_stat(s, SHARED_ACTIVE) == 0);
}

static void test_names(void)
{
	struct shared *sh = shared_get();
	char longname[SHARED_NAME_MAX + 1];
	struct shared_slot *a = shared_slot(sh, "imaps"), *b = shared_slot(sh, "smtps");

	CHECK(a != NULL && b != NULL && a != b);
	CHECK(shared_slot(sh, "imaps") == a);
	CHECK(shared_slot(sh, "smtps") == b);
	CHECK(shared_slot(sh, "imaps2") != a);      /* no prefix matches */
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK(shared_slot(sh, longname) == NULL);
	longname[SHARED_NAME_MAX - 1] = '\0';        /* exactly fits */
	CHECK(shared_slot(sh, longname) != NULL);
	CHECK(shared_slot(NULL, "imaps") == NULL);
	/* NULL slots (no region, table full) are counted nowhere, harmlessly. */
	shared_count(NULL, SHARED_ACCEPTED, 1);
	shared_count_close(NULL, 1);
	CHECK(shared_stat(NULL, SHARED_ACCEPTED) == 0 && shared_closes(NULL, 1) == 0);
	shared_reload_done(NULL, 1, 0);
	shared_set_workers_up(NULL, 1);
}

/* The histograms' buckets: a value on a bound is in that bound's bucket,
 * one more is in the next, past the last bound is +Inf; the sum is in
 * microseconds. Out-of-range kinds count as "other"; a histogram or a
 * stat that does not exist, and no slot, count nowhere. */
static void test_counters(void)
{
	struct shared *sh = shared_get();
	struct shared_slot *s = shared_slot(sh, "counters");
	static const uint64_t bounds[SHARED_BUCKETS - 1] = {
		1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
		1000000, 2500000, 5000000, 10000000,
	};
	uint64_t sum = 0;

	CHECK(s != NULL);
	if (s == NULL)
		return;
	shared_observe(s, SHARED_HIST_HANDSHAKE, 0);
	sum += 0;
	for (unsigned i = 0; i < SHARED_BUCKETS - 1; i++) {
		shared_observe(s, SHARED_HIST_HANDSHAKE, bounds[i]);       /* bucket i */
		shared_observe(s, SHARED_HIST_HANDSHAKE, bounds[i] + 1);   /* bucket i + 1 */
		sum += 2 * bounds[i] + 1;
	}
	CHECK(s->hist[SHARED_HIST_HANDSHAKE].bucket[0] == 2);
	for (unsigned i = 1; i < SHARED_BUCKETS; i++)
		CHECK(s->hist[SHARED_HIST_HANDSHAKE].bucket[i] == 2 - (i == SHARED_BUCKETS - 1));
	CHECK(s->hist[SHARED_HIST_HANDSHAKE].sum_us == sum);
	for (unsigned i = 0; i < SHARED_BUCKETS; i++)
		CHECK(s->hist[SHARED_HIST_CONNECT].bucket[i] == 0);
	shared_observe(s, SHARED_HISTS, 5);
	shared_observe(NULL, SHARED_HIST_CONNECT, 5);
	CHECK(s->hist[SHARED_HIST_CONNECT].sum_us == 0);
	CHECK_STR(shared_bucket_le(0), "0.001");
	CHECK_STR(shared_bucket_le(SHARED_BUCKETS - 2), "10");
	CHECK_STR(shared_bucket_le(SHARED_BUCKETS - 1), "+Inf");
	CHECK_STR(shared_bucket_le(SHARED_BUCKETS), "+Inf");

	shared_count_hs_ok(s, SHARED_TLS_VERSIONS, 1);
	shared_count_hs_ok(s, (enum shared_tls_version)99, 0);
	shared_count_hs_ok(s, SHARED_TLS13, 7);
	shared_count_hs_ok(NULL, SHARED_TLS13, 0);
	CHECK(s->hs_ok[SHARED_TLS_OTHER][1] == 1 && s->hs_ok[SHARED_TLS_OTHER][0] == 1);
	CHECK(s->hs_ok[SHARED_TLS13][1] == 1 && s->hs_ok[SHARED_TLS13][0] == 0);
	shared_count_hs_failed(s, SHARED_HS_FAILS);
	shared_count_hs_failed(s, SHARED_HS_TIMEOUT);
	shared_count_hs_failed(NULL, SHARED_HS_TIMEOUT);
	CHECK(s->hs_failed[SHARED_HS_OTHER] == 1 && s->hs_failed[SHARED_HS_TIMEOUT] == 1);
	shared_count_backend_failed(s, SHARED_BF_KINDS);
	shared_count_backend_failed(s, SHARED_BF_GREETING);
	shared_count_backend_failed(NULL, SHARED_BF_GREETING);
	CHECK(s->backend_failed[SHARED_BF_OTHER] == 1 && s->backend_failed[SHARED_BF_GREETING] == 1);
	CHECK_STR(shared_tls_version_name(SHARED_TLS12), "TLSv1.2");
	CHECK_STR(shared_tls_version_name(SHARED_TLS_VERSIONS), "other");
	CHECK_STR(shared_hs_fail_name(SHARED_HS_SHUTDOWN), "shutdown");
	CHECK_STR(shared_hs_fail_name(SHARED_HS_FAILS), "other");
	CHECK_STR(shared_backend_fail_name(SHARED_BF_GREETING), "greeting");
	CHECK_STR(shared_backend_fail_name(SHARED_BF_KINDS), "other");
	/* A stat past the last counts nowhere (not in what follows the stats,
	 * the close reasons) and reads 0 (not the first close reason). */
	shared_count_close(s, 0);
	shared_count(s, SHARED_NSTATS, 5);
	CHECK(shared_stat(s, SHARED_NSTATS) == 0 && shared_closes(s, 0) == 1);
	shared_count(s, SHARED_REFUSALS, 3);
	CHECK(shared_stat(s, SHARED_REFUSALS) == 3);
	/* Close reasons past the last are the last. */
	shared_count_close(s, SHARED_REASONS);
	shared_count_close(s, SHARED_REASONS - 1);
	CHECK(shared_closes(s, SHARED_REASONS - 1) == 2 && shared_closes(s, SHARED_REASONS) == 2);
	/* So with the histograms: one past the last is none. */
	shared_observe(s, SHARED_HISTS, 7);
	CHECK(s->limited[0] == 0 && s->limited[1] == 0);
}

/* A claim whose holder died (killed mid-claim) does not block the others. */
static void test_stale_lock(void)
{
	struct shared *sh = shared_get();
	pid_t dead = fork();

	if (dead == 0)
		_exit(0);
	CHECK(dead > 0 && wait_child(dead) == 0);
	atomic_store(&sh->lock, (uint32_t)dead);    /* it "died holding it" */
	CHECK(shared_slot(sh, "after-a-crash") != NULL);
	CHECK(sh->lock == 0);
}

static void test_full(void)
{
	struct shared *sh = shared_get();
	struct shared_slot *web = shared_slot(sh, "web");
	char name[32];
	unsigned used = 0, added = 0;

	for (unsigned i = 0; i < SHARED_SLOTS; i++)
		used += sh->slot[i].used == 1;
	/* Claim new names until none is left: exactly the free slots. */
	for (;;) {
		snprintf(name, sizeof(name), "l%u", added);
		if (shared_slot(sh, name) == NULL)
			break;
		added++;
	}
	CHECK(used > 0 && added == SHARED_SLOTS - used);
	CHECK(shared_slot(sh, "one-too-many") == NULL);
	/* What is there is still found and still counts. */
	CHECK(shared_slot(sh, "web") == web);
	CHECK(shared_slot(sh, "l0") != NULL);
	snprintf(name, sizeof(name), "l%u", added - 1);
	CHECK(shared_slot(sh, name) != NULL);
	shared_count(web, SHARED_ACCEPTED, 1);
	CHECK(shared_stat(web, SHARED_ACCEPTED) == 6);
	/* Every slot holds a distinct name. */
	int distinct = 1;
	for (unsigned i = 0; i < SHARED_SLOTS; i++) {
		distinct &= sh->slot[i].used == 1;
		for (unsigned j = i + 1; j < SHARED_SLOTS; j++)
			distinct &= strcmp(sh->slot[i].name, sh->slot[j].name) != 0;
	}
	CHECK(distinct);
}

/* The names test_reuse's configuration still has: all but l0 and l1. */
static int all_but_l0_l1(const char *name, void *arg)
{
	(void)arg;
	return strcmp(name, "l0") != 0 && strcmp(name, "l1") != 0;
}

/* A full table (test_full's): a new name takes the slot of a listener
 * gone from the configuration whose connections have all closed, its
 * counters zeroed; not one with a connection open, not one configured. */
static void test_reuse(void)
{
	struct shared *sh = shared_get();
	struct shared_slot *l0 = shared_slot(sh, "l0"), *l1 = shared_slot(sh, "l1");
	struct shared_slot *s;

	CHECK(l0 != NULL && l1 != NULL);
	shared_count(l0, SHARED_ACTIVE, 1);     /* l0 holds a connection */
	shared_count(l1, SHARED_ACCEPTED, 9);
	shared_count_close(l1, 3);
	CHECK(shared_slot(sh, "newcomer") == NULL);   /* shared_slot never reuses */
	s = shared_slot_claim(sh, "newcomer", all_but_l0_l1, NULL);
	CHECK(s == l1);
	CHECK(s != NULL && strcmp(s->name, "newcomer") == 0);
	CHECK(shared_stat(s, SHARED_ACCEPTED) == 0 && shared_closes(s, 3) == 0);
	CHECK(shared_slot(sh, "newcomer") == s);
	/* The next one: only l0 is gone, and it is still open. */
	CHECK(shared_slot_claim(sh, "second", all_but_l0_l1, NULL) == NULL);
	shared_count(l0, SHARED_ACTIVE, -1);
	CHECK(shared_slot_claim(sh, "second", all_but_l0_l1, NULL) == l0);
	CHECK(shared_slot(sh, "l0") == NULL && shared_slot(sh, "l1") == NULL);
}

/* in_use for test_name_without_nul: each name it is given must be a
 * string within the field's size (*arg counts those that are not, and
 * none of them is read further); only a name of 63 'n's is gone. */
static int only_ns_gone(const char *name, void *arg)
{
	unsigned *unterminated = arg;

	if (memchr(name, '\0', SHARED_NAME_MAX) == NULL) {
		++*unterminated;
		return 1;
	}
	return strspn(name, "n") != SHARED_NAME_MAX - 1 || name[SHARED_NAME_MAX - 1] != '\0';
}

/* The master's look at a slot whose name a worker (which can write the
 * region) overwrote without its NUL reads no further than the field. */
static void test_name_without_nul(void)
{
	struct shared *sh = shared_get();
	struct shared_slot *s = shared_slot(sh, "newcomer");
	char ns[SHARED_NAME_MAX];
	unsigned unterminated = 0;

	CHECK(s != NULL);
	if (s == NULL)
		return;
	memset(s->name, 'n', sizeof(s->name));
	memset(ns, 'n', sizeof(ns) - 1);
	ns[sizeof(ns) - 1] = '\0';
	/* No name matches it, its first 63 bytes included. */
	CHECK(shared_slot(sh, "newcomer") == NULL);
	CHECK(shared_slot(sh, ns) == NULL);
	CHECK(shared_slot(sh, "web") != NULL);
	/* Reuse hands in_use a string (its first 63 bytes): the slot, gone
	 * from the configuration, goes to the new name. */
	CHECK(shared_slot_claim(sh, "third", only_ns_gone, &unterminated) == s);
	CHECK(unterminated == 0);
	CHECK(strcmp(s->name, "third") == 0 && shared_slot(sh, "third") == s);
}

int main(void)
{
	test_map();
	test_fork();
	test_concurrent();
	test_names();
	test_counters();
	test_stale_lock();
	test_full();
	test_reuse();
	test_name_without_nul();
	shared_unmap();
	return CHECK_DONE();
}
