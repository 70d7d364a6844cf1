#ifndef PORTIER_MASTER_H
#define PORTIER_MASTER_H

#include "cfg.h"
#include "listener.h"
#include "privdrop.h"

struct tlsctx;

/*
 * The master process: it serves nothing itself. It forks the workers,
 * which all serve the same config from the same listening sockets (the
 * kernel hands each connection to one of them), starts a new worker when
 * one dies, reloads on SIGHUP and stops them all on SIGTERM/SIGINT.
 *
 * A reload reads the file again and builds the new generation beside the
 * running one: config, certificates, sockets (an address that stays keeps
 * its socket and the connections queued on it). Only if all of that worked
 * does it start the new workers; a config with errors is logged and
 * changes nothing. Each new worker reports through its channel
 * once it serves (master_ready). When all have, within READY_LIMIT_S, the
 * old workers get SIGQUIT, on which they close their listening sockets and
 * finish their connections. If one cannot be started, ends first or stays
 * silent, the new generation is stopped and undone, and the old one goes
 * on serving as if nothing happened.
 *
 * The master holds the certificates and ticket keys the workers inherit,
 * so a ticket one worker issued resumes on any other, and across reloads.
 * With `user`, the master keeps root (to bind, read keys, start workers)
 * and every worker gives it up before serving.
 *
 * Each worker's channel (a socketpair made at its fork) stays open after
 * the readiness report: on SIGUSR1, or a reload that changes `log`, the
 * master opens the log target and passes it down (master_log.c), so that
 * workers that gave up root never need to open it. The master tells a
 * service manager (notify.h) when every worker serves, when it reloads and
 * stops, and what it serves.
 *
 * The shared region (shared.c), mapped by main() before master_run, is the
 * same in every generation: the master claims each listener's counter slot
 * before it forks the workers that count in it, and keeps the header's
 * generation, reload history and count of serving workers.
 */

struct master {
	const char *path;                 /* the config file, read again on SIGHUP */
	struct cfg *cfg;                  /* the current generation, owned */
	struct tlsctx **tls;              /* one per listener, NULL if not TLS */
	struct listener_set set;
	struct privdrop user;
	int drop;                         /* workers switch to user */
	unsigned long long generation;    /* of cfg: 1 at start, +1 per reload committed */
	int foreground;                   /* -f: the log is stderr, whatever `log` says */
	int chan;                         /* in a worker: its channel to the master */
	pid_t master_pid;                 /* in a worker: the master's pid */
	char *pid_written;                /* the pid_file written last, owned */
	char *ports_written;              /* the ports_file written last, owned ... */
	char *ports_text;                 /* ... and what it says, owned */
	unsigned long long ocsp_fp;       /* expiry_ocsp_print() of cfg's files before
	                                     they were read at start */
};

#define MASTER_WORKER (-1)

/* master_block_signals(): block the signals the master's loop reads (from a
 * signalfd, in master_run). Called before portier says it has started (the
 * pid_file, the ports_file): a SIGHUP sent as soon as they appear then
 * waits for the loop instead of ending the master, its default action. */
void master_block_signals(void);

/* master_pid_file(m, path): the master's pid written to path, which
 * becomes the one master_pid_file_remove() removes; the one written
 * before is removed once path is written, and stays when it cannot be.
 * The path written last is written again only if it no longer holds the
 * pid (deleted, overwritten). NULL removes it. 0, or -1 when path cannot
 * be written (the caller warns). */
int master_pid_file(struct master *m, const char *path);
/* master_pid_file_remove(m): at stop, the pid_file m wrote last goes, if
 * it still holds m's pid. */
void master_pid_file_remove(struct master *m);

/* master_ports_file(m, c): c's ports_file (none: NULL) written with what
 * m->set listens on, and kept with it as the one the master wrote last.
 * The one written before goes once this one is written, and when this
 * one cannot be, unless it still says what is true: either way no file
 * of portier's names sockets it no longer has. Says in the log what it
 * could not write, and what became of the one before. */
void master_ports_file(struct master *m, const struct cfg *c);
/* master_ports_file_remove(m): the ports_file m wrote last goes, if it
 * still holds what m wrote there: at stop, and when a drain closes the
 * listening sockets. */
void master_ports_file_remove(struct master *m);

/* master_prepare(c, reload, tls, pd, drop, d): every listener's
 * certificates, policy and ticket keys of c, checked (*tls, one per
 * listener; reload as for tlsctx_new_server), and the
 * account to switch to (*pd; *drop when it is not the current one). 0, or
 * -1 with the problems in d. */
int master_prepare(struct cfg *c, int reload, struct tlsctx ***tls, struct privdrop *pd,
                   int *drop, struct diag *d);

/* master_run(m, worker): in the master, supervise until told to stop and
 * return the exit status (0, or 1 if a worker did not end cleanly); m then
 * holds the last generation, for the caller to free. In a worker it
 * returns MASTER_WORKER with *worker set to its number (1..N) and
 * m->generation to the generation it serves; the caller then serves m->cfg from m->set with m->tls, and exits. */
int master_run(struct master *m, unsigned *worker);

/* master_ready(m): in a worker (after master_run returned MASTER_WORKER),
 * tell the master it serves: once its server is set up, from the first
 * turn of its loop, which should then unblock SIGTERM and SIGINT (held
 * back since the fork; still blocked here). A reload waits for this from
 * every new worker before the old ones let go. Once only; 0, or -1 (errno)
 * if the master cannot hear it; 1 if it need not: the master closed the
 * channel (EPIPE) because a reload committed before this worker served,
 * or because one was undone and the worker told to stop (SIGTERM). */
int master_ready(struct master *m);

/* master_log_heard(m): in a worker, what the master sent on its channel (a
 * new log target), applied; call when m->chan is readable. 1, or 0 once
 * the channel is closed (the master is gone) and needs no more watching. */
int master_log_heard(struct master *m);

/* master_nworkers(c): the number of workers c asks for. */
unsigned master_nworkers(const struct cfg *c);

#endif
