#ifndef PORTIER_SHARED_H
#define PORTIER_SHARED_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/*
 * State every process of one portier sees: a single anonymous MAP_SHARED
 * region that the master maps before its first fork. Every worker inherits
 * the same pages, and because the master keeps the region across reloads,
 * so do the workers of every later configuration.
 *
 * It holds a header the master writes (the configuration generation and
 * the reload history) and a fixed table of per-listener counters, one slot
 * per listener name: a listener whose name stays across a reload keeps
 * counting in the same slot.
 *
 * Every field that changes after the fork is a lock-free C11 atomic, so
 * that any process may read or bump it without a lock (a process killed
 * in the middle cannot leave one held). A plain read of such a field is an
 * atomic load.
 */

#define SHARED_SIZE ((size_t)16 << 20)  /* what portier maps: room to grow */
#define SHARED_MAGIC UINT64_C(0x316d687374726f70)  /* "portshm1" in memory */
#define SHARED_VERSION 5
#define SHARED_SLOTS 256                /* listener names, over all reloads */
#define SHARED_PROCS 128                /* worker processes with a share row */
#define SHARED_NAME_MAX 64              /* with its NUL */
#define SHARED_REASONS 32               /* close reasons counted apart */

/* The counters of a listener slot (shared_count). */
enum shared_stat {
	SHARED_ACCEPTED,             /* connections accepted */
	SHARED_ACTIVE,               /* open now: +1 at accept, -1 at close
	                              * (kept in the process's share row) */
	SHARED_BYTES_UP,             /* client to backend */
	SHARED_BYTES_DOWN,           /* backend to client */
	SHARED_HANDSHAKES_OK,
	SHARED_HANDSHAKES_FAILED,
	SHARED_REFUSALS,             /* refusals sent in the protocol's words */
	SHARED_NSTATS
};

/* TLS versions of completed handshakes, counted apart (shared_count_hs_ok). */
enum shared_tls_version {
	SHARED_TLS12,
	SHARED_TLS13,
	SHARED_TLS_OTHER,
	SHARED_TLS_VERSIONS
};

/* Why a handshake failed (shared_count_hs_failed); the names the metrics
 * give them (shared_hs_fail_name) are stable. */
enum shared_hs_fail {
	SHARED_HS_VERSION_TOO_OLD,
	SHARED_HS_NO_SHARED_CIPHER,
	SHARED_HS_NO_SHARED_GROUP,
	SHARED_HS_ALPN_MISMATCH,
	SHARED_HS_PLAINTEXT,         /* plaintext on an implicit-TLS port */
	SHARED_HS_MALFORMED,
	SHARED_HS_CLIENT_ALERT,      /* the client gave up, with an alert */
	SHARED_HS_TIMEOUT,
	SHARED_HS_CLIENT_CLOSED,
	SHARED_HS_CLIENT_RESET,
	SHARED_HS_STARTTLS_INJECTION,
	SHARED_HS_SHUTDOWN,          /* portier stopped first */
	SHARED_HS_OTHER,
	SHARED_HS_FAILS
};

/* Why a backend could not be used (shared_count_backend_failed). */
enum shared_backend_fail {
	SHARED_BF_REFUSED,           /* ECONNREFUSED, and a unix socket's ENOENT */
	SHARED_BF_TIMEOUT,
	SHARED_BF_UNREACHABLE,       /* no route, network down */
	SHARED_BF_GREETING,          /* STARTTLS: no or bad greeting */
	SHARED_BF_OTHER,
	SHARED_BF_KINDS
};

/* Latency histograms: fixed upper bounds (shared_bucket_le), counts per
 * bucket (not cumulative; the last one is +Inf) and the sum in
 * microseconds. */
enum shared_hist {
	SHARED_HIST_CONNECT,         /* backend connect */
	SHARED_HIST_HANDSHAKE,       /* client TLS handshake */
	SHARED_HISTS
};
#define SHARED_BUCKETS 14           /* 13 bounds and +Inf */

struct shared_histogram {
	_Atomic uint64_t bucket[SHARED_BUCKETS];
	_Atomic uint64_t sum_us;
};

struct shared_slot {
	_Atomic uint32_t used;       /* 1 once name is set, for good */
	char name[SHARED_NAME_MAX];
	_Atomic uint64_t stat[SHARED_NSTATS];
	_Atomic uint64_t closed[SHARED_REASONS];   /* by close reason */
	_Atomic uint64_t hs_ok[SHARED_TLS_VERSIONS][2];   /* [version][resumed] */
	_Atomic uint64_t hs_failed[SHARED_HS_FAILS];
	_Atomic uint64_t backend_failed[SHARED_BF_KINDS];
	struct shared_histogram hist[SHARED_HISTS];
	_Atomic uint64_t limited[2];   /* refused: [0] per-ip connections, [1] rate */
	_Atomic uint64_t limit_full;   /* let in uncounted (LIMIT_FULL) */
};

/*
 * The per-client limits' table (limit.c): LIMIT_SETS sets of LIMIT_WAYS
 * entries; a client's keyed hash picks its set and is its tag. 0 tags an
 * empty entry. bucket packs the token bucket: the time of its last refill
 * (ms, low 40 bits) and what it held then (thousandths of a connection,
 * high 24 bits).
 */
#define LIMIT_SETS 2048
#define LIMIT_WAYS 8
struct limit_entry {
	_Atomic uint64_t tag;
	_Atomic uint64_t seen;       /* ms of its last connection attempt */
	_Atomic uint64_t bucket;
	_Atomic uint64_t logged;     /* ms of its last log line; 0: never */
	_Atomic uint32_t conns;      /* open now */
	_Atomic uint32_t epoch;      /* +1 each time a new client takes it */
};
struct limit_table {
	uint64_t key[2];             /* the hash's secret, set by shared_map() */
	_Atomic uint64_t full_logged;   /* ms of the last LIMIT_FULL line; 0: never */
	struct limit_entry e[LIMIT_SETS * LIMIT_WAYS];
};

/*
 * A worker's share of the counts every process adds to, so that the master
 * can take back what a worker that died (a crash, kill -9) still held: it
 * would otherwise stay counted for good, a NAT'd site at its
 * max_connections_per_ip locked out until restart. The master gives each
 * worker a row before the fork (shared_proc.c) and, once it has reaped it,
 * takes its holds out of the limits' table and clears the row. Only the
 * row's own worker writes it while it lives.
 */
struct shared_proc {
	/* Connections open, by listener slot: the sum over the rows is the
	 * SHARED_ACTIVE gauge, so a dead worker's part goes with its row. */
	_Atomic uint64_t active[SHARED_SLOTS];
	/* By limit entry: this worker's connections counted in it, for the
	 * entry's epoch of that time (LIMIT_HELD_* in limit.c). */
	_Atomic uint32_t held[LIMIT_SETS * LIMIT_WAYS];
};

struct shared {
	/* Written once by shared_map(), before any other process exists. */
	uint64_t magic;
	uint64_t version;
	uint64_t size;               /* of the mapping, bytes */
	/* Written by the master. */
	_Atomic uint64_t generation;     /* 1 at start, +1 per successful reload */
	_Atomic uint64_t workers_up;     /* of the current configuration, serving */
	_Atomic uint64_t reloads_ok;
	_Atomic uint64_t reloads_failed; /* refused configs and failed starts */
	_Atomic uint64_t last_reload;    /* of the last successful one, epoch s; 0 */
	_Atomic unsigned long long log_dropped;   /* log lines dropped, all processes */
	_Atomic uint32_t lock;           /* held while a slot is claimed */
	_Atomic unsigned log_midline;    /* the shared log's last line is cut */
	struct shared_slot slot[SHARED_SLOTS];
	struct limit_table limits;
	/* Each share row's owner (apart, so that a look at them touches no
	 * row): 0 free, -1 taken for a fork under way, else the worker's pid. */
	_Atomic int32_t proc_pid[SHARED_PROCS];
	struct shared_proc procs[SHARED_PROCS];
};

/* shared_map(size): map the region (size rounded up to whole pages, at
 * least sizeof(struct shared)) zeroed with a fresh header, and make it the
 * one shared_get() returns. Call once, in the master, before the first
 * fork. NULL (errno set) if it cannot be mapped or one is mapped already. */
struct shared *shared_map(size_t size);

/* shared_get(): the region of this process (inherited across fork), or
 * NULL when none was mapped. */
struct shared *shared_get(void);

/* shared_unmap(): unmap the region of this process; shared_get() then
 * returns NULL. No-op without one. */
void shared_unmap(void);

/* shared_slot(sh, name): the counters of the listener called name: the slot
 * that already has the name, else a free one claimed for it. NULL when sh
 * is NULL, name does not fit SHARED_NAME_MAX, or every slot is taken (that
 * listener is then not counted). Lookups never wait; claims are serialized
 * across processes, and the master claims every listener's slot before it
 * forks the workers that look them up. */
struct shared_slot *shared_slot(struct shared *sh, const char *name);

/* shared_slot_claim(sh, name, in_use, arg): shared_slot(), except that when
 * every slot is taken, one whose listener in_use(its name, arg) says is
 * gone and that has no open connection (no worker of any generation will
 * count in it again) is given to name, its counters zeroed: the master's,
 * so that listener names that come and go over years of reloads do not use
 * the table up. */
struct shared_slot *shared_slot_claim(struct shared *sh, const char *name,
                                      int (*in_use)(const char *name, void *arg),
                                      void *arg);

/* shared_count(s, k, delta): add delta (may be negative) to counter k of
 * slot s, atomically. NULL s: no-op. */
void shared_count(struct shared_slot *s, enum shared_stat k, int64_t delta);

/* shared_count_close(s, reason): one more connection of s closed for reason
 * (0 .. SHARED_REASONS-1; larger ones count in the last). NULL s: no-op. */
void shared_count_close(struct shared_slot *s, unsigned reason);

/* shared_count_hs_ok(s, version, resumed): one more handshake of s
 * completed. NULL s: no-op. */
void shared_count_hs_ok(struct shared_slot *s, enum shared_tls_version v, int resumed);

/* shared_count_hs_failed(s, why): one more handshake of s failed for why.
 * NULL s: no-op. */
void shared_count_hs_failed(struct shared_slot *s, enum shared_hs_fail why);

/* shared_count_backend_failed(s, kind): a backend of s could not be used.
 * NULL s: no-op. */
void shared_count_backend_failed(struct shared_slot *s, enum shared_backend_fail kind);

/* shared_observe(s, h, us): one observation of us microseconds into
 * histogram h of s. NULL s: no-op. */
void shared_observe(struct shared_slot *s, enum shared_hist h, uint64_t us);

/* shared_bucket_le(i): the upper bound of bucket i in seconds, as the
 * exposition writes it ("0.005"); "+Inf" for the last. */
const char *shared_bucket_le(unsigned i);

/* shared_hs_fail_name(why), shared_backend_fail_name(kind),
 * shared_tls_version_name(v): the stable label of each code. */
const char *shared_hs_fail_name(enum shared_hs_fail why);
const char *shared_backend_fail_name(enum shared_backend_fail kind);
const char *shared_tls_version_name(enum shared_tls_version v);

/* shared_proc_reserve(sh): in the master, before a fork, a free share row
 * taken for the child; -1 when none is free (or sh is NULL): that worker
 * then counts in no row, and what it holds when it dies stays counted. */
int shared_proc_reserve(struct shared *sh);

/* shared_proc_own(sh, k, pid): after the fork, row k is pid's; a pid of 0
 * (the fork failed) frees it. No-op for k < 0. */
void shared_proc_own(struct shared *sh, int k, pid_t pid);

/* shared_proc_enter(k): in the child, row k (or none, k < 0) is this
 * process's own. */
void shared_proc_enter(int k);

/* shared_proc_self(): this process's row, or -1. */
int shared_proc_self(void);

/* shared_proc_of(sh, pid): the row of pid, or -1. */
int shared_proc_of(struct shared *sh, pid_t pid);

/* shared_proc_free(sh, k): in the master, once row k's worker is reaped
 * and its limit holds given back and cleared (limit_proc_gone): its active
 * counts go and the row is free. */
void shared_proc_free(struct shared *sh, int k);

/* shared_load(a): an atomic counter's value (relaxed). */
static inline uint64_t shared_load(const _Atomic uint64_t *a)
{
	return atomic_load_explicit((_Atomic uint64_t *)a, memory_order_relaxed);
}

/* shared_stat(s, k): the current value of counter k of s; 0 for NULL s. */
uint64_t shared_stat(const struct shared_slot *s, enum shared_stat k);

/* shared_closes(s, reason): connections of s closed for reason, as counted
 * by shared_count_close(); 0 for NULL s. */
uint64_t shared_closes(const struct shared_slot *s, unsigned reason);

/* shared_reload_done(sh, ok, now): the master's record of a reload that
 * ended: if ok, the next generation and when (now); else one more failed
 * reload. NULL sh: no-op. */
void shared_reload_done(struct shared *sh, int ok, time_t now);

/* shared_set_workers_up(sh, n): the master's count of workers of the
 * current configuration that reported serving. NULL sh: no-op. */
void shared_set_workers_up(struct shared *sh, unsigned n);

#endif
