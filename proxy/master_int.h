#ifndef PORTIER_MASTER_INT_H
#define PORTIER_MASTER_INT_H

/* Between the master's files, nobody else: master.c (the loop, signals,
 * stopping), master_workers.c (the worker table: started, heard, reaped),
 * master_child.c (a worker's side of the fork), master_tell.c (what the
 * service manager hears), master_prepare.c (a generation's config made
 * ready), master_log.c and master_reload.c (a reload's new generation,
 * from SIGHUP to its commit or undo). */

#include "master.h"

#include <signal.h>
#include <sys/types.h>

#define STOP_GRACE_S 10.0     /* after SIGTERM, then SIGKILL */
/* Beyond a drain's own end, what the service manager is asked to wait. */
#define NOTIFY_STOP_SLACK_S 5.0
#define RESPAWN_QUICK_S 1.0   /* a worker that died younger than this ... */
#define RESPAWN_DELAY_S 1.0   /* ... is replaced only after this pause, */
#define RESPAWN_MAX_S 60.0    /* doubled for each such death in a row, up to this */
#define READY_LIMIT_S 10.0    /* a reload's workers must serve within this */

struct slot {
	pid_t pid;        /* 0: not running */
	double started;
	double due;       /* when to start it again (pid == 0) */
	int chan;         /* our end of its channel while it lives; -1 */
	int ready;        /* it reported serving */
	unsigned quick;   /* its workers' deaths in a row younger than RESPAWN_QUICK_S */
};

/* A reload's new generation between its fork and its commit: it becomes
 * the current one once every worker of it has reported serving, and is
 * undone if one cannot. Meanwhile the running generation goes on as it
 * was (a worker of it that dies is replaced from its own config). */
struct next {
	struct cfg *cfg;
	struct tlsctx **tls;
	struct listener_set set;
	struct privdrop user;
	int drop;
	struct slot *slots;
	unsigned nslots;
	int *had;         /* m->set's fds before listener_open moved some to set */
	double deadline;  /* when the reload fails if a worker is still silent */
	unsigned long long generation;   /* it will be, once committed */
	unsigned long long ocsp_fp;      /* expiry_ocsp_print() before it read them */
};

struct sup {
	struct master *m;
	struct slot *slots;       /* the current generation's workers */
	unsigned nslots;
	struct next *next;        /* a reload waiting for its workers, or NULL */
	int hup_again;            /* SIGHUP came during it: reload once it ends */
	pid_t *old;               /* earlier generations' workers, each told to drain */
	size_t nold, capold;
	pid_t *undone;            /* those of old that a failed reload had serving */
	size_t nundone, capundone;
	pid_t *failed;            /* workers of failed reloads, told to stop */
	size_t nfailed, capfailed;
	double failed_kill_at;    /* when to SIGKILL those still there */
	int sfd;                  /* signalfd of the blocked signals */
	int chan_w;               /* in a new child: its end of the channel */
	sigset_t blocked;
	pid_t self;
	int stopping;
	int draining;             /* stopping on SIGQUIT, not SIGTERM */
	double kill_at;           /* while stopping: when to SIGKILL the rest */
	int unclean;              /* a worker ended badly while stopping */
	int told_ready;           /* the service manager heard READY=1 */
	unsigned told_workers;    /* ... and this many workers serving */
	double expiry_at;         /* the next daily certificate-expiry look */
	unsigned long long ocsp_fp;   /* expiry_ocsp_print() of the files ... */
	unsigned long long ocsp_gen;  /* ... this generation read */
	double expiry_every;
	time_t log_lost_at;       /* a SIGUSR1 that could not reopen the log; 0: none */
	int log_lost_errno;
};

/* master.c */

/* master_now(): CLOCK_MONOTONIC in seconds. */
double master_now(void);

/* master_workers.c */

/* master_new_slots(n): n empty worker slots (no pid, no pipe); NULL on
 * ENOMEM. */
struct slot *master_new_slots(unsigned n);

/* master_close_chan(sl): forget sl's channel (its worker ended or is let
 * go). */
void master_close_chan(struct slot *sl);

/* master_count_ready(sl, n): how many of sl's n workers run and serve. */
unsigned master_count_ready(const struct slot *sl, unsigned n);

/* master_running(s): every worker still running, of any generation. */
unsigned master_running(const struct sup *s);

/* master_reserve(list, cap, n, k): room in *list (*cap entries, n used)
 * for k more pids. 0 or -1 (ENOMEM). */
int master_reserve(pid_t **list, size_t *cap, size_t n, size_t k);

/* master_spawn(s, sl, i): fork worker i of sl with its channel. 1 in the
 * child (call master_child), 0 in the master, -1 (errno) on failure. */
int master_spawn(struct sup *s, struct slot *sl, unsigned i);

/* master_read_ready(sl, n): take the readiness reports waiting on the
 * channels of sl's n workers. */
void master_read_ready(struct slot *sl, unsigned n);

/* master_reap(s): every ended worker waited for, logged and forgotten; a
 * current one is due for replacement, a reload's fails the reload. */
void master_reap(struct sup *s);

/* master_signal_all(s, sig): sig to every worker of every generation. */
void master_signal_all(struct sup *s, int sig);

/* master_child.c */

/* master_child(s, sl, i, worker): in the child master_spawn made, become
 * worker i of sl; MASTER_WORKER, *worker set (exits if that fails). */
int master_child(struct sup *s, struct slot *sl, unsigned i, unsigned *worker);

/* master_prepare.c */

/* master_free_tls(c, tls): the contexts of c's listeners, and the array.
 * NULL tls: no-op. */
void master_free_tls(const struct cfg *c, struct tlsctx **tls);

/* master_claim_slots(c, running): every listener of c gets its counter
 * slot now, before the fork, so that workers only look theirs up
 * (shared_slot). With every slot taken, one of a listener neither c nor
 * running has, with no connection open, is given to a new name. */
void master_claim_slots(const struct cfg *c, const struct cfg *running);

/* master_tell.c */

/* master_tell(s, why): the service manager (notify.h) hears that the
 * current generation serves: READY=1 (once every worker of it has served,
 * or after a reload whatever its outcome) and a STATUS= line of why (may
 * be NULL) and what is served. */
void master_tell(struct sup *s, const char *why);

/* master_tell_progress(s): between reloads, READY=1 once every first
 * worker serves, then a new STATUS= whenever the number serving changes
 * (one died; its replacement serves). */
void master_tell_progress(struct sup *s);

/* master_log.c */

/* master_log_reopen(s): SIGUSR1: the log file opened again at its path
 * (logrotate moved it away), by the master, and handed to every worker. */
void master_log_reopen(struct sup *s);

/* master_log_follow(s, now): at a reload's commit, the log moves from the
 * target open now to the `log` value now (nothing when they are the same or
 * portier logs to stderr in the foreground), and every current worker gets
 * it. A target that cannot be opened, or stderr once detached, is a
 * warning; the log stays. */
void master_log_follow(struct sup *s, const char *now);

/* master_reload.c */

/* master_reload_start(s): SIGHUP. The new generation is built beside the
 * running one (s->next); its workers are started by the loop, which then
 * calls master_reload_advance(). A config that cannot be loaded is logged
 * and changes nothing. */
void master_reload_start(struct sup *s);

/* master_reload_advance(s): the reload under way, its workers all started:
 * commit it once every one serves, fail it if one stays silent past its
 * deadline. */
void master_reload_advance(struct sup *s);

/* master_reload_fail(s, why): the reload under way failed (why, logged):
 * undone, and counted as failed. */
void master_reload_fail(struct sup *s, const char *why);

/* master_reload_undo(s): the reload under way is given up: its workers are
 * told to stop (and killed if they do not, s->failed_kill_at), its new
 * sockets closed, the ones it took back with the running generation, which
 * never stopped serving. */
void master_reload_undo(struct sup *s);

/* master_reload_give_back(old, had, next): the sockets listener_open()
 * moved from old to next go back to old (had: old's fds before the move);
 * next keeps only those it opened itself. */
void master_reload_give_back(struct listener_set *old, const int *had,
                             struct listener_set *next);

/* master_reload_free(nx): nx's books (its channels closed), not its
 * config, contexts or sockets. NULL: no-op. */
void master_reload_free(struct next *nx);

#endif
