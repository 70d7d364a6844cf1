#ifndef PORTIER_SERVER_H
#define PORTIER_SERVER_H

#include <ev.h>
#include <stddef.h>
#include <time.h>

#include "cfg.h"
#include "diag.h"
#include "listener.h"

struct conn;
struct shared_slot;
struct tlsctx;

/* The running form of one listener section: what its connections share. */
struct svc {
	const struct cfg_listener *cl;
	struct tlsctx *tls;          /* NULL for plain and redirect */
	struct server *srv;
	unsigned nconns;
	int full;                    /* max_connections reached: not accepting */
	struct shared_slot *stats;   /* its counters in the shared region; NULL */
};

struct acceptor {
	ev_io io;
	struct svc *svc;
};

/* One event loop serving one config over a set of listening sockets. */
struct server {
	struct ev_loop *loop;
	const struct cfg *cfg;
	struct svc *svcs;
	size_t nsvcs;
	struct acceptor *acc;
	size_t nacc;
	struct conn *conns;          /* every live connection, for shutdown */
	unsigned nconns;             /* ... and how many: [portier] max_connections */
	int full;                    /* ... reached: no listener accepting */
	struct listener_set *set;    /* the sockets the acceptors watch */
	ev_timer fd_retry;           /* accepting paused for lack of fds */
	int fd_paused;
	int draining;                /* SIGQUIT: serve what is open, then end */
	/* The configuration generation this worker serves (shared.h): a
	 * SIGQUIT while the region's is the same is a stop, not a reload. */
	unsigned long long generation;
	ev_timer drain_limit;        /* drain_timeout */
	ev_timer tick;               /* every second, busy or idle: server_tick() */
	const char *stop_reason;     /* for the connections still open at the end */
	ev_signal sig_term, sig_int, sig_quit;
	/* Connections whose TLS holds bytes the socket will not announce:
	 * served once per loop iteration, after the poll, so one fast
	 * client cannot keep the loop from the others or from its timers. */
	struct conn *runq;
	struct conn *rq_batch;       /* the turn on_runq is serving now */
	ev_check runq_check;
	ev_idle runq_idle;           /* keeps the poll from blocking meanwhile */
};

/* server_prepare(c, reload, d): build every listener's TLS context from
 * c, for -t, before start and on a reload (reload 1: see
 * tlsctx_new_server). Returns an array of c->nlisteners contexts (NULL
 * entries for non-TLS listeners), or NULL if any failed (reported to d). */
struct tlsctx **server_prepare(const struct cfg *c, int reload, struct diag *d);

/* server_init(s, loop, c, tls, set): serve c on loop from the sockets of
 * set; takes over tls (from server_prepare). 0 or -1. */
int server_init(struct server *s, struct ev_loop *loop, const struct cfg *c,
                struct tlsctx **tls, struct listener_set *set);

/* server_run(s): serve until SIGTERM or SIGINT, then close everything; or,
 * after SIGQUIT (a reload), close the listening sockets of set at once and
 * serve the open connections until the last one ends or drain_timeout. */
void server_run(struct server *s);

/* server_free(s): release what server_init took; s may be reused. */
void server_free(struct server *s);

/* server_tick(s, now): the chores of a worker that must happen even when no
 * connection comes (called every second with the wall clock): every
 * listener's ticket keys move to the period of now, so that an idle worker
 * does not keep secrets past their use. */
void server_tick(struct server *s, time_t now);

/* Called by conn.c. */
void server_conn_opened(struct svc *svc, struct conn *c);
void server_conn_closed(struct svc *svc, struct conn *c);
/* server_conn_ready(svc, c) / server_conn_unready(svc, c): put c on the run
 * queue (conn_run() on the next loop iteration) or take it off; both
 * idempotent. */
void server_conn_ready(struct svc *svc, struct conn *c);
void server_conn_unready(struct svc *svc, struct conn *c);

#endif
