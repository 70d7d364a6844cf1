#include "shared.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

/* Atomics that need a lock inside the C library would not be shared by
 * another process: only lock-free ones may live in the region. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_LONG_LOCK_FREE == 2 &&
               ATOMIC_INT_LOCK_FREE == 2, "64-bit atomics must be lock-free");

_Static_assert(sizeof(struct shared) <= SHARED_SIZE, "the region outgrows its mapping");
/* tests/integration/test_workers.py reads the active gauge from a running
 * portier's memory at these offsets: change both together. */
_Static_assert(offsetof(struct shared, slot) == 80 &&
               offsetof(struct shared, proc_pid) == 870504 &&
               offsetof(struct shared, procs) == 871016 &&
               sizeof(struct shared_proc) == 67584, "test_workers.py's layout");

/* A claim waits at most this many turns for another process's claim. */
#define CLAIM_TRIES 100000

static struct shared *region;
static size_t region_len;

struct shared *shared_map(size_t size)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len;
	void *p;

	if (region != NULL) {
		errno = EBUSY;
		return NULL;
	}
	if (page <= 0)
		page = 4096;
	len = size < sizeof(struct shared) ? sizeof(struct shared) : size;
	len = (len + (size_t)page - 1) / (size_t)page * (size_t)page;
	/* Anonymous pages come zeroed: every counter and slot starts empty. */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	region = p;
	region_len = len;
	region->magic = SHARED_MAGIC;
	region->version = SHARED_VERSION;
	region->size = len;
	atomic_store(&region->generation, 1);
	/* Unknown to clients, so that none can aim its addresses at one set
	 * of the limits' table; without randomness, the clock (weaker). */
	if (getrandom(region->limits.key, sizeof(region->limits.key), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(region->limits.key)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		region->limits.key[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
		region->limits.key[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)p;
	}
	return region;
}

struct shared *shared_get(void)
{
	return region;
}

void shared_unmap(void)
{
	if (region == NULL)
		return;
	munmap(region, region_len);
	region = NULL;
	region_len = 0;
}

/* The region is writable by every worker, which runs unprivileged: the
 * master reads a slot's name as at most its field's bytes, whether or not
 * a NUL ends it. */
static struct shared_slot *find(struct shared *sh, const char *name)
{
	for (size_t i = 0; i < SHARED_SLOTS; i++) {
		struct shared_slot *s = &sh->slot[i];
		/* Acquire: a slot marked used has its whole name written. */
		if (atomic_load_explicit(&s->used, memory_order_acquire) &&
		    strncmp(s->name, name, sizeof(s->name)) == 0)
			return s;
	}
	return NULL;
}

/* The claim lock holds the pid of its holder, so that a holder that died
 * (killed between two instructions) does not keep it: it is taken over. */
static int lock(struct shared *sh)
{
	uint32_t self = (uint32_t)getpid();

	for (int i = 0; i < CLAIM_TRIES; i++) {
		uint32_t holder = 0;
		if (atomic_compare_exchange_strong(&sh->lock, &holder, self))
			return 0;
		if (kill((pid_t)holder, 0) < 0 && errno == ESRCH &&
		    atomic_compare_exchange_strong(&sh->lock, &holder, self))
			return 0;
		sched_yield();
	}
	return -1;
}

static void unlock(struct shared *sh)
{
	atomic_store(&sh->lock, 0);
}

/* A slot whose listener in_use says is gone and that no connection holds,
 * emptied for a new name; NULL if there is none. */
static struct shared_slot *reuse(struct shared *sh,
                                 int (*in_use)(const char *name, void *arg), void *arg)
{
	const size_t counters = offsetof(struct shared_slot, stat);

	for (size_t i = 0; i < SHARED_SLOTS; i++) {
		struct shared_slot *s = &sh->slot[i];
		char name[sizeof(s->name)];

		/* in_use gets a string, also from a slot whose NUL is gone. */
		memcpy(name, s->name, sizeof(name));
		name[sizeof(name) - 1] = '\0';
		if (in_use(name, arg) || shared_stat(s, SHARED_ACTIVE) != 0)
			continue;
		/* Unused first (a lookup skips it), then empty: the new
		 * listener's counters start at 0, as a restart's would. */
		atomic_store_explicit(&s->used, 0, memory_order_release);
		memset((char *)s + counters, 0, sizeof(*s) - counters);
		return s;
	}
	return NULL;
}

struct shared_slot *shared_slot_claim(struct shared *sh, const char *name,
                                      int (*in_use)(const char *name, void *arg),
                                      void *arg)
{
	struct shared_slot *s;

	if (sh == NULL || strlen(name) >= SHARED_NAME_MAX)
		return NULL;
	if ((s = find(sh, name)) != NULL)
		return s;
	if (lock(sh) < 0)
		return NULL;
	/* Again under the lock: another process may have claimed it since. */
	if ((s = find(sh, name)) == NULL) {
		for (size_t i = 0; i < SHARED_SLOTS && s == NULL; i++)
			if (!atomic_load_explicit(&sh->slot[i].used, memory_order_relaxed))
				s = &sh->slot[i];
		if (s == NULL && in_use != NULL)
			s = reuse(sh, in_use, arg);
		if (s != NULL) {
			strcpy(s->name, name);
			atomic_store_explicit(&s->used, 1, memory_order_release);
		}
	}
	unlock(sh);
	return s;
}

struct shared_slot *shared_slot(struct shared *sh, const char *name)
{
	return shared_slot_claim(sh, name, NULL, NULL);
}

/* The share row's counter of s for the gauge that a dead worker's part
 * must leave with it (SHARED_ACTIVE), or NULL when this process has no
 * row (the master, a unit test, a worker past SHARED_PROCS). */
static _Atomic uint64_t *row_active(const struct shared_slot *s)
{
	int k = shared_proc_self();

	if (k < 0 || region == NULL || s < region->slot || s >= region->slot + SHARED_SLOTS)
		return NULL;
	return &region->procs[k].active[s - region->slot];
}

void shared_count(struct shared_slot *s, enum shared_stat k, int64_t delta)
{
	_Atomic uint64_t *a;

	if (s == NULL || (unsigned)k >= SHARED_NSTATS)
		return;
	if (k == SHARED_ACTIVE && (a = row_active(s)) != NULL) {
		/* Only this process writes its row: no locked add needed. */
		atomic_store_explicit(a, atomic_load_explicit(a, memory_order_relaxed) +
		                      (uint64_t)delta, memory_order_relaxed);
		return;
	}
	/* Two's complement: adding the wrapped value of -n subtracts n. */
	atomic_fetch_add_explicit(&s->stat[k], (uint64_t)delta, memory_order_relaxed);
}

void shared_count_close(struct shared_slot *s, unsigned reason)
{
	if (s == NULL)
		return;
	if (reason >= SHARED_REASONS)
		reason = SHARED_REASONS - 1;
	atomic_fetch_add_explicit(&s->closed[reason], 1, memory_order_relaxed);
}

uint64_t shared_stat(const struct shared_slot *s, enum shared_stat k)
{
	uint64_t v;

	if (s == NULL || (unsigned)k >= SHARED_NSTATS)
		return 0;
	v = atomic_load_explicit(&s->stat[k], memory_order_relaxed);
	if (k == SHARED_ACTIVE && region != NULL && s >= region->slot &&
	    s < region->slot + SHARED_SLOTS)
		for (size_t i = 0; i < SHARED_PROCS; i++)
			/* A free row's counts are 0: it is not even looked at (a
			 * page of the region no worker touched stays unallocated). */
			if (atomic_load_explicit(&region->proc_pid[i], memory_order_acquire) != 0)
				v += atomic_load_explicit(&region->procs[i].active[s - region->slot],
				                          memory_order_relaxed);
	return v;
}

uint64_t shared_closes(const struct shared_slot *s, unsigned reason)
{
	if (s == NULL)
		return 0;
	if (reason >= SHARED_REASONS)
		reason = SHARED_REASONS - 1;
	return atomic_load_explicit(&s->closed[reason], memory_order_relaxed);
}

void shared_reload_done(struct shared *sh, int ok, time_t now)
{
	if (sh == NULL)
		return;
	if (ok) {
		atomic_fetch_add(&sh->generation, 1);
		atomic_fetch_add(&sh->reloads_ok, 1);
		atomic_store(&sh->last_reload, (uint64_t)now);
	} else {
		atomic_fetch_add(&sh->reloads_failed, 1);
	}
}

void shared_set_workers_up(struct shared *sh, unsigned n)
{
	if (sh != NULL)
		atomic_store(&sh->workers_up, n);
}

/* In microseconds, for the hot path; the text form below, for the writer. */
static const uint64_t bucket_us[SHARED_BUCKETS - 1] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};
static const char *const bucket_le[SHARED_BUCKETS] = {
	"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
	"1", "2.5", "5", "10", "+Inf",
};

static void bump(_Atomic uint64_t *a)
{
	atomic_fetch_add_explicit(a, 1, memory_order_relaxed);
}

void shared_count_hs_ok(struct shared_slot *s, enum shared_tls_version v, int resumed)
{
	if (s != NULL)
		bump(&s->hs_ok[(unsigned)v < SHARED_TLS_VERSIONS ? v : SHARED_TLS_OTHER][!!resumed]);
}

void shared_count_hs_failed(struct shared_slot *s, enum shared_hs_fail why)
{
	if (s != NULL)
		bump(&s->hs_failed[(unsigned)why < SHARED_HS_FAILS ? why : SHARED_HS_OTHER]);
}

void shared_count_backend_failed(struct shared_slot *s, enum shared_backend_fail kind)
{
	if (s != NULL)
		bump(&s->backend_failed[(unsigned)kind < SHARED_BF_KINDS ? kind : SHARED_BF_OTHER]);
}

void shared_observe(struct shared_slot *s, enum shared_hist h, uint64_t us)
{
	unsigned i = 0;

	if (s == NULL || (unsigned)h >= SHARED_HISTS)
		return;
	while (i < SHARED_BUCKETS - 1 && us > bucket_us[i])
		i++;
	bump(&s->hist[h].bucket[i]);
	atomic_fetch_add_explicit(&s->hist[h].sum_us, us, memory_order_relaxed);
}

const char *shared_bucket_le(unsigned i)
{
	return i < SHARED_BUCKETS ? bucket_le[i] : "+Inf";
}

const char *shared_hs_fail_name(enum shared_hs_fail why)
{
	static const char *const names[SHARED_HS_FAILS] = {
		[SHARED_HS_VERSION_TOO_OLD] = "version_too_old",
		[SHARED_HS_NO_SHARED_CIPHER] = "no_shared_cipher",
		[SHARED_HS_NO_SHARED_GROUP] = "no_shared_group",
		[SHARED_HS_ALPN_MISMATCH] = "alpn_mismatch",
		[SHARED_HS_PLAINTEXT] = "plaintext_on_tls_port",
		[SHARED_HS_MALFORMED] = "malformed",
		[SHARED_HS_CLIENT_ALERT] = "client_alert",
		[SHARED_HS_TIMEOUT] = "timeout",
		[SHARED_HS_CLIENT_CLOSED] = "client_closed",
		[SHARED_HS_CLIENT_RESET] = "client_reset",
		[SHARED_HS_STARTTLS_INJECTION] = "starttls_injection",
		[SHARED_HS_SHUTDOWN] = "shutdown",
		[SHARED_HS_OTHER] = "other",
	};
	return (unsigned)why < SHARED_HS_FAILS ? names[why] : "other";
}

const char *shared_backend_fail_name(enum shared_backend_fail kind)
{
	static const char *const names[SHARED_BF_KINDS] = {
		[SHARED_BF_REFUSED] = "refused",
		[SHARED_BF_TIMEOUT] = "timeout",
		[SHARED_BF_UNREACHABLE] = "unreachable",
		[SHARED_BF_GREETING] = "greeting",
		[SHARED_BF_OTHER] = "other",
	};
	return (unsigned)kind < SHARED_BF_KINDS ? names[kind] : "other";
}

const char *shared_tls_version_name(enum shared_tls_version v)
{
	static const char *const names[SHARED_TLS_VERSIONS] = {
		[SHARED_TLS12] = "TLSv1.2",
		[SHARED_TLS13] = "TLSv1.3",
		[SHARED_TLS_OTHER] = "other",
	};
	return (unsigned)v < SHARED_TLS_VERSIONS ? names[v] : "other";
}
