/*
 * The supervisor's loop: it blocks the signals and sleeps until one, a
 * readiness report or the next deadline; then it reaps, starts and
 * replaces workers (master_workers.c), turns signals into a reload
 * (master_reload.c), a log reopen (master_log.c) or a stop, fast or
 * draining, and looks after ticket keys, staples and certificate expiry.
 * master.h says how the whole works.
 */

#include "master_int.h"
#include "expiry.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "shared.h"
#include "tlsctx.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define TICK_S 60             /* wake at least this often (ticket keys) */

double master_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* How long the master may sleep: until the next restart, kill or reload
 * deadline is due, and never longer than TICK_S. */
static struct timespec next_wait(const struct sup *s)
{
	double now = master_now(), wait = TICK_S;
	struct timespec ts;

	if (s->stopping) {
		wait = s->kill_at - now;
	} else {
		for (unsigned i = 0; i < s->nslots; i++)
			if (s->slots[i].pid == 0 && s->slots[i].due - now < wait)
				wait = s->slots[i].due - now;
		if (s->next != NULL && s->next->deadline - now < wait)
			wait = s->next->deadline - now;
		if (s->nfailed > 0 && s->failed_kill_at - now < wait)
			wait = s->failed_kill_at - now;
		if (s->expiry_at - now < wait)
			wait = s->expiry_at - now;
	}
	if (wait < 0.001)
		wait = 0.001;
	ts.tv_sec = (time_t)wait;
	ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
	return ts;
}

/* SIGQUIT: a graceful stop, nginx's. The listening sockets close here and
 * in every worker (new clients are refused), the open connections run
 * until they end or drain_timeout, and the master ends with the last
 * worker. SIGTERM meanwhile makes it the fast stop. */
static void start_drain(struct sup *s)
{
	double limit = s->m->cfg->drain_timeout_ms / 1000.0;
	char state[64];

	if (s->next != NULL) {
		log_notice("got SIGQUIT during a reload: its new workers stop too");
		master_reload_undo(s);
	}
	log_notice("got SIGQUIT, draining %u worker%s: no longer accepting, open "
	           "connections may run %.0fs (drain_timeout); SIGTERM stops at once",
	           master_running(s), master_running(s) == 1 ? "" : "s", limit);
	/* STOPPING=1 starts the service manager's stop timeout (systemd's
	 * TimeoutStopSec, 90 s by default), after which it kills the whole
	 * unit and, as for a failure, restarts it: the drain may last
	 * drain_timeout, and the kill after it, and asks for that long. */
	snprintf(state, sizeof(state), "STOPPING=1\nEXTEND_TIMEOUT_USEC=%llu",
	         (unsigned long long)((limit + STOP_GRACE_S + NOTIFY_STOP_SLACK_S) * 1e6));
	if (notify_state(state, "draining on SIGQUIT: %u worker%s",
	                 master_running(s), master_running(s) == 1 ? "" : "s") < 0)
		log_warn("cannot tell the service manager portier is stopping");
	listener_close(&s->m->set);
	/* Nothing listens on its ports any more; the pid_file stays while
	 * the master runs. */
	master_ports_file_remove(s->m);
	s->stopping = 1;
	s->draining = 1;
	s->kill_at = master_now() + limit + STOP_GRACE_S;
	master_signal_all(s, SIGQUIT);
}

static void on_signal(struct sup *s, int sig)
{
	if (sig == SIGTERM || sig == SIGINT) {
		/* The fast stop's grace starts once: a supervisor that sends
		 * SIGTERM again and again must not put the kill off for ever.
		 * A drain's longer deadline gives way to it. */
		int fresh = !s->stopping || s->draining;

		if (s->next != NULL) {
			log_notice("got signal %d during a reload: its new workers stop "
			           "too", sig);
			master_reload_undo(s);
		}
		if (s->draining)
			log_notice("got signal %d while draining: stopping %u worker%s "
			           "at once", sig, master_running(s), master_running(s) == 1 ? "" : "s");
		s->draining = 0;
		if (!s->stopping) {
			log_notice("got signal %d, stopping %u worker%s", sig, master_running(s),
			           master_running(s) == 1 ? "" : "s");
			if (notify_state("STOPPING=1", "stopping on signal %d: %u worker%s",
			                 sig, master_running(s), master_running(s) == 1 ? "" : "s") < 0)
				log_warn("cannot tell the service manager portier is stopping");
		}
		s->stopping = 1;
		if (fresh)
			s->kill_at = master_now() + STOP_GRACE_S;
		master_signal_all(s, SIGTERM);
	} else if (sig == SIGHUP && !s->stopping) {
		master_reload_start(s);
	} else if (sig == SIGHUP) {
		log_notice("got SIGHUP while %s: no reload",
		           s->draining ? "draining (the drain goes on)" : "stopping");
	} else if (sig == SIGUSR1 && (!s->stopping || s->draining)) {
		/* A drain may last drain_timeout (30 minutes): logrotate goes on. */
		master_log_reopen(s);
	} else if (sig == SIGQUIT && !s->stopping) {
		start_drain(s);
	}
}

/* Sleep until a signal, a readiness report or the next deadline; then
 * handle the signals. */
static void wait_events(struct sup *s)
{
	struct pollfd pfd[1 + 2 * CFG_MAX_WORKERS];
	struct signalfd_siginfo si;
	struct timespec ts = next_wait(s);
	nfds_t n = 0;

	pfd[n++] = (struct pollfd){.fd = s->sfd, .events = POLLIN};
	for (unsigned i = 0; i < s->nslots && n < 1 + CFG_MAX_WORKERS; i++)
		if (s->slots[i].chan >= 0 && !s->slots[i].ready)
			pfd[n++] = (struct pollfd){.fd = s->slots[i].chan, .events = POLLIN};
	for (unsigned i = 0; s->next != NULL && i < s->next->nslots; i++)
		if (s->next->slots[i].chan >= 0 && !s->next->slots[i].ready)
			pfd[n++] = (struct pollfd){.fd = s->next->slots[i].chan,
			                           .events = POLLIN};
	if (ppoll(pfd, n, &ts, NULL) < 0 && errno != EINTR)
		log_warn("ppoll");      /* nothing to undo: the loop comes back */
	while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (si.ssi_signo != SIGCHLD)
			on_signal(s, (int)si.ssi_signo);
}

/* The signals the master takes from its signalfd. */
static void signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
	sigaddset(set, SIGUSR1);
}

void master_block_signals(void)
{
	sigset_t set;

	signal_set(&set);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

int master_run(struct master *m, unsigned *worker)
{
	struct sup s = {.m = m, .self = getpid(), .chan_w = -1};
	int rc;

	m->generation = 1;
	/* The files as they were before the start read them: one replaced
	 * since is a change the first wake-up staples. */
	s.ocsp_gen = m->generation;
	s.ocsp_fp = m->ocsp_fp;
	s.expiry_every = expiry_interval();
	s.expiry_at = master_now() + s.expiry_every;
	s.nslots = master_nworkers(m->cfg);
	if ((s.slots = master_new_slots(s.nslots)) == NULL) {
		log_errx("out of memory");
		return 1;
	}
	signal_set(&s.blocked);
	/* Blocked before the first fork, so that no signal slips in between
	 * a fork and the wait that would take it; they arrive on s.sfd. */
	sigprocmask(SIG_BLOCK, &s.blocked, NULL);
	if ((s.sfd = signalfd(-1, &s.blocked, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		log_warn("signalfd");
		free(s.slots);
		return 1;
	}
	master_claim_slots(m->cfg, NULL);
	if (notify_open() < 0)
		log_warn("NOTIFY_SOCKET: cannot speak to the service manager at %s",
		         getenv("NOTIFY_SOCKET"));
	if (m->drop)
		log_notice("master (pid %ld) starting %u worker%s as user %s (uid %ld, "
		           "gid %ld)", (long)s.self, s.nslots, s.nslots == 1 ? "" : "s",
		           m->user.name, (long)m->user.uid, (long)m->user.gid);
	else
		log_notice("master (pid %ld) starting %u worker%s", (long)s.self,
		           s.nslots, s.nslots == 1 ? "" : "s");
	for (;;) {
		double now = master_now();

		for (unsigned i = 0; i < s.nslots && !s.stopping; i++) {
			if (s.slots[i].pid != 0 || s.slots[i].due > now)
				continue;
			int r = master_spawn(&s, s.slots, i);
			if (r == 1)
				return master_child(&s, s.slots, i, worker);
			if (r < 0) {
				log_warn("cannot start worker %u, trying again in %.0fs", i + 1,
				         RESPAWN_DELAY_S);
				s.slots[i].due = now + RESPAWN_DELAY_S;
			}
		}
		if (s.next != NULL && !s.stopping) {
			for (unsigned i = 0; i < s.next->nslots; i++) {
				if (s.next->slots[i].pid != 0)
					continue;
				int r = master_spawn(&s, s.next->slots, i);
				if (r == 1)
					return master_child(&s, s.next->slots, i, worker);
				if (r < 0) {
					char why[160];
					snprintf(why, sizeof(why), "cannot start worker %u: %s",
					         i + 1, strerror(errno));
					master_reload_fail(&s, why);
					break;
				}
			}
			if (s.next != NULL)
				master_reload_advance(&s);
		}
		if (s.next == NULL && s.hup_again && !s.stopping) {
			s.hup_again = 0;
			master_reload_start(&s);
			continue;          /* its workers are started at the top */
		}
		if (s.nfailed > 0 && !s.stopping && now >= s.failed_kill_at) {
			log_errx("%zu worker%s of a failed reload still running %.0fs after "
			         "SIGTERM; killing %s", s.nfailed, s.nfailed == 1 ? "" : "s",
			         STOP_GRACE_S, s.nfailed == 1 ? "it" : "them");
			for (size_t i = 0; i < s.nfailed; i++)
				kill(s.failed[i], SIGKILL);
			s.failed_kill_at = now + STOP_GRACE_S;
		}
		if (s.stopping && master_running(&s) == 0)
			break;
		if (s.stopping && now >= s.kill_at) {
			unsigned left = master_running(&s);

			log_errx("%u worker%s still running %.0fs after %s; killing %s",
			         left, left == 1 ? "" : "s", s.draining ?
			         m->cfg->drain_timeout_ms / 1000.0 + STOP_GRACE_S : STOP_GRACE_S,
			         s.draining ? "SIGQUIT" : "SIGTERM", left == 1 ? "it" : "them");
			master_signal_all(&s, SIGKILL);
			s.unclean = 1;
			s.kill_at = now + STOP_GRACE_S;
		}
		shared_set_workers_up(shared_get(), master_count_ready(s.slots, s.nslots));
		wait_events(&s);
		master_reap(&s);
		master_read_ready(s.slots, s.nslots);
		master_tell_progress(&s);
		if (s.next != NULL)
			master_read_ready(s.next->slots, s.next->nslots);
		/* Forget ticket keys that can no longer be used even when idle,
		 * so that the master's memory never holds old ones. */
		for (size_t i = 0; i < m->cfg->nlisteners; i++)
			tlsctx_tick(m->tls[i], time(NULL));
		/* A staple past its nextUpdate: workers stopped sending it;
		 * the log hears it once, from here. */
		if (!s.stopping)
			expiry_staples(m->cfg, m->tls, time(NULL));
		/* An ocsp file replaced (the admin's fetch from cron): a reload
		 * staples it, as SIGHUP would. Looked at on every wake-up, a
		 * minute apart at most; a reload under way waits. A reload's
		 * commit sets the files as they were before it read them
		 * (master_reload.c), so one replaced meanwhile still counts. */
		if (!s.stopping && !s.draining && s.next == NULL) {
			unsigned long long fp = expiry_ocsp_print(m->cfg);

			if (s.ocsp_gen != m->generation) {
				s.ocsp_gen = m->generation;
				s.ocsp_fp = fp;
			} else if (fp != s.ocsp_fp) {
				s.ocsp_fp = fp;
				log_notice("an ocsp file changed: reloading to staple it");
				master_reload_start(&s);
			}
		}
		/* Loading warned at start and on reload; a daemon left running
		 * for months hears it again once a day. */
		if (!s.stopping && master_now() >= s.expiry_at) {
			expiry_warn(m->cfg, m->tls, time(NULL));
			s.expiry_at = master_now() + s.expiry_every;
		}
	}
	rc = s.unclean ? 1 : 0;
	if (s.draining)
		log_notice("drained: the last worker has finished; exiting with "
		           "status %d", rc);
	for (unsigned i = 0; i < s.nslots; i++)
		master_close_chan(&s.slots[i]);
	free(s.slots);
	free(s.old);
	free(s.undone);
	free(s.failed);
	close(s.sfd);
	notify_close();
	/* The signals stay blocked to the end: a SIGTERM sent again while
	 * the stop ran (an impatient supervisor) would be delivered at an
	 * unblock and kill the master, by its default action, before it
	 * said it stopped, removed its pid_file and ports_file and exited
	 * with its status. */
	return rc;
}
