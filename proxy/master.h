#ifndef PORTIER_MASTER_H
#define PORTIER_MASTER_H

#include "cfg.h"
#include "listener.h"
#include "privdrop.h"

struct tlsctx;

/*
 * The master process of `workers = N`: it binds nothing and serves nothing
 * itself. It forks N workers that all serve the same config from the same
 * listening sockets (the kernel hands each connection to one of them),
 * starts a new worker when one dies, and stops them all on SIGTERM/SIGINT.
 * The master holds the certificates and ticket keys the workers inherit, so
 * that a ticket one worker issued resumes on any other. With `user`, the
 * master keeps root (to start workers and remove its pid_file) and every
 * worker gives it up before serving.
 */

struct master {
	const struct cfg *cfg;
	struct tlsctx **tls;              /* one per listener, NULL if not TLS */
	const struct listener_set *set;
	unsigned nworkers;
	const struct privdrop *user;      /* workers switch to it; NULL: stay */
};

#define MASTER_WORKER (-1)

/* master_run(m, worker): in the master, supervise until told to stop and
 * return the exit status (0, or 1 if a worker did not end cleanly). In a
 * worker it returns MASTER_WORKER with *worker set to its number (1..N);
 * the caller then serves m->cfg from m->set with m->tls like a single
 * process would, and exits. */
int master_run(const struct master *m, unsigned *worker);

/* master_cpus(): how many CPUs this process may run on (workers = auto). */
unsigned master_cpus(void);

#endif
