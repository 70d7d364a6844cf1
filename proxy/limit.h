#ifndef PORTIER_LIMIT_H
#define PORTIER_LIMIT_H

#include <stdint.h>

struct shared;
struct sockaddr;

/*
 * Per-client limits (max_connections_per_ip, rate_per_ip): counted across
 * every worker in a fixed table of the shared region (struct limit_table
 * in shared.h), keyed by the listener's slot and the client's address (an
 * IPv6 one cut to its prefix). The table never grows: a client not in it
 * takes the least recently seen entry of its set that holds no
 * connection; when every entry of the set holds some, it is let in
 * uncounted (LIMIT_FULL). Nothing here waits for another process; see
 * limit.c for how concurrent workers race.
 */

/* A listener's limits; 0 turns each off. */
struct limit_rule {
	unsigned max_conns;      /* open connections per client */
	unsigned rate_per_min;   /* new connections per minute, refilled */
	unsigned burst;          /* the bucket's size, in connections */
	unsigned v6_prefix;      /* bits of an IPv6 address that make a client */
};

/* What a connection that was let in holds, to give back at its close. */
struct limit_hold {
	uint32_t idx;            /* entry + 1; 0: holds nothing */
	uint32_t epoch;          /* the entry's, when it let the connection in */
	uint64_t tag;
};

enum limit_verdict {
	LIMIT_OK,
	LIMIT_CONNS,             /* over max_connections_per_ip */
	LIMIT_RATE,              /* over rate_per_ip */
	LIMIT_FULL               /* let in uncounted: every entry of its set
	                          * holds connections of other clients */
};

/* Seconds between two log lines about one client (one entry), and
 * between two about LIMIT_FULL (the whole table). */
#define LIMIT_LOG_INTERVAL_S 60

/* limit_admit(sh, slot, sa, r, now_ms, h, log_it): may one more
 * connection of listener slot slot from sa come in under r at now_ms (a
 * monotonic clock)? LIMIT_OK: it counts (h holds it). LIMIT_FULL: let it
 * in, holding nothing, and *log_it says whether this is the table's first
 * of the interval. Else refuse it, and *log_it says whether this refusal
 * is the first of its client's interval. NULL sh, a non-IP sa or r with
 * nothing on: LIMIT_OK holding nothing. */
enum limit_verdict limit_admit(struct shared *sh, unsigned slot,
                               const struct sockaddr *sa, const struct limit_rule *r,
                               uint64_t now_ms, struct limit_hold *h, int *log_it);

/* limit_release(sh, h): the connection h let in closed; h then holds
 * nothing. No-op when it holds nothing or its entry went to another
 * client since. */
void limit_release(struct shared *sh, struct limit_hold *h);

/* limit_proc_gone(sh, k): in the master, once the worker of share row k
 * is reaped: what it held is given back (the entries still of the clients
 * it held them for) and the row's record of it cleared. */
void limit_proc_gone(struct shared *sh, int k);

/* limit_conns(sh, slot, sa, v6_prefix): the open connections counted for
 * sa's client on slot; 0 when it has no entry. For tests. */
unsigned limit_conns(struct shared *sh, unsigned slot, const struct sockaddr *sa,
                     unsigned v6_prefix);

/* limit_now_ms(): CLOCK_MONOTONIC in milliseconds, the same in every
 * process. */
uint64_t limit_now_ms(void);

#endif
