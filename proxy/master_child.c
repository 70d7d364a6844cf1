/*
 * A worker from its fork to its report that it serves: in the child, the
 * master's books are dropped (only the generation it serves is kept), its
 * signals and user are set, and, once its loop runs, master_ready() sends
 * the byte up its channel that the master waits for.
 */

#include "master_int.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "shared.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

/* The worker's side of fork(): the signals the master blocked go back to
 * their defaults (SIGHUP is the master's business), root is given up, and
 * it ends when the master does, however the master ended (a worker without
 * a master would hold the ports forever). The death signal is asked for
 * after the switch of user, which would clear it. Exits on failure. */
static void become_worker(pid_t master, const sigset_t *blocked,
                          const struct privdrop *user)
{
	static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT};
	sigset_t unblock = *blocked;

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	/* SIGHUP and SIGUSR1 are the master's business: a `pkill -USR1
	 * portier` after a log rotation must not end the workers. */
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	/* SIGQUIT, SIGTERM and SIGINT stay blocked until the loop has its
	 * watchers for them (server_run, then main.c's first turn of the
	 * loop): one sent before that waits, and the worker then stops
	 * cleanly instead of being killed half started. */
	sigdelset(&unblock, SIGQUIT);
	sigdelset(&unblock, SIGTERM);
	sigdelset(&unblock, SIGINT);
	sigprocmask(SIG_UNBLOCK, &unblock, NULL);
	if (user != NULL && privdrop_apply(user) < 0) {
		log_warn("cannot switch to user %s", user->name);
		_exit(1);
	}
	/* A change of user makes the kernel set the dumpable flag from
	 * fs.suid_dumpable, which some hosts set to 1: the worker holds the
	 * keys too, and another process of the account (nobody is many
	 * daemons') must not trace it. And it never gains privileges again:
	 * a worker execs nothing, so this costs nothing, and no setuid
	 * program or file capability could lift it back. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_warn("cannot restrict the worker (PR_SET_DUMPABLE, "
		         "PR_SET_NO_NEW_PRIVS)");
		_exit(1);
	}
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != master)
		_exit(0);          /* the master is already gone */
}

/* In the child: forget the master's books, keep only the generation this
 * worker serves (and none of the other's sockets), and become a worker. */
int master_child(struct sup *s, struct slot *sl, unsigned i, unsigned *worker)
{
	struct master *m = s->m;
	struct next *nx = s->next;

	for (unsigned k = 0; k < s->nslots; k++)
		master_close_chan(&s->slots[k]);
	close(s->sfd);
	notify_close();
	if (nx != NULL && sl == nx->slots) {
		/* The new generation's: the sockets it did not take close here. */
		listener_close(&m->set);
		master_free_tls(m->cfg, m->tls);
		cfg_free(m->cfg);
		m->cfg = nx->cfg;
		m->tls = nx->tls;
		m->set = nx->set;
		m->user = nx->user;
		m->drop = nx->drop;
		m->generation = nx->generation;
	} else if (nx != NULL) {
		/* The running generation's, replacing one that died during a
		 * reload: its sockets back, the new generation's closed. */
		master_reload_give_back(&m->set, nx->had, &nx->set);
		listener_close(&nx->set);
		master_free_tls(nx->cfg, nx->tls);
		cfg_free(nx->cfg);
	}
	master_reload_free(nx);     /* closes the other new workers' pipes */
	free(s->slots);
	free(s->old);
	free(s->undone);
	free(s->failed);
	m->chan = s->chan_w;
	m->master_pid = s->self;
	*worker = i + 1;
	/* Tagged from here: the failures of becoming a worker are its own,
	 * and the admin must tell them from the master's. */
	log_set_worker(m->generation, *worker);
	become_worker(s->self, &s->blocked, m->drop ? &m->user : NULL);
	log_set_quiet(m->cfg->log_quiet);
	log_set_json(m->cfg->log_json);
	return MASTER_WORKER;
}

/* A reload has committed since this worker's generation: the master
 * counts it (commit(), master_reload.c) before it closes the old
 * generation's channels. */
static int superseded(const struct master *m)
{
	struct shared *sh = shared_get();

	return sh != NULL && shared_load(&sh->generation) > m->generation;
}

/* The master, still alive, has told this worker to stop before it served:
 * a reload undone (a new worker of it that failed, or a stop meanwhile)
 * sends SIGTERM before it closes the channels. SIGTERM is still blocked
 * here (main.c's on_serving), so it waits, pending. A master that died
 * sends it too (PR_SET_PDEATHSIG), but the kernel has given the worker
 * its new parent by then: that one stays a warning. */
static int stopped_by_master(const struct master *m)
{
	sigset_t pending;

	return sigpending(&pending) == 0 && sigismember(&pending, SIGTERM) == 1 &&
	       getppid() == m->master_pid;
}

int master_ready(struct master *m)
{
	ssize_t r;

	if (m->chan < 0) {
		errno = EBADF;
		return -1;
	}
	do
		r = write(m->chan, "1", 1);
	while (r < 0 && errno == EINTR);
	if (r == 1)
		return 0;
	/* A reload that committed before this worker served closed its
	 * channel with the rest of its generation's (it drains now), or one
	 * undone closed it with the rest of its own (it stops now): the
	 * master no longer waits for this report. */
	if (r < 0 && errno == EPIPE && (superseded(m) || stopped_by_master(m)))
		return 1;
	return -1;
}
