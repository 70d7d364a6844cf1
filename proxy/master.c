/*
 * The supervisor: it starts the workers, hears their readiness reports,
 * reaps and replaces them, turns signals into a reload (master_reload.c)
 * or a stop, and stops them all. master.h says how the whole works.
 */

#include "master_int.h"
#include "expiry.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "server.h"
#include "shared.h"
#include "tlsctx.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RESPAWN_QUICK_S 1.0   /* a worker that died younger than this ... */
#define RESPAWN_DELAY_S 1.0   /* ... is replaced only after this pause */
#define TICK_S 60             /* wake at least this often (ticket keys) */

double master_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

unsigned master_cpus(void)
{
	cpu_set_t cpus;
	long n;

	if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0 && CPU_COUNT(&cpus) > 0)
		n = CPU_COUNT(&cpus);
	else
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > CFG_MAX_WORKERS ? CFG_MAX_WORKERS : (unsigned)n;
}

unsigned master_nworkers(const struct cfg *c)
{
	return c->workers ? c->workers : master_cpus();
}

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
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != master)
		_exit(0);          /* the master is already gone */
}

static void describe_end(int status, char *out, size_t len)
{
	if (WIFEXITED(status))
		snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, len, "was killed by signal %d (%s)%s", WTERMSIG(status),
		         strsignal(WTERMSIG(status)),
		         WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(out, len, "ended with wait status %#x", (unsigned)status);
}

struct slot *master_new_slots(unsigned n)
{
	struct slot *sl = calloc(n ? n : 1, sizeof(*sl));

	for (unsigned i = 0; sl != NULL && i < n; i++)
		sl[i].chan = -1;
	return sl;
}

static unsigned count_pids(const struct slot *sl, unsigned n)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++)
		k += sl[i].pid != 0;
	return k;
}

static unsigned running(const struct sup *s)
{
	unsigned n = count_pids(s->slots, s->nslots);

	if (s->next != NULL)
		n += count_pids(s->next->slots, s->next->nslots);
	return n + (unsigned)s->nold + (unsigned)s->nfailed;
}

void master_close_chan(struct slot *sl)
{
	if (sl->chan >= 0)
		close(sl->chan);
	sl->chan = -1;
}

/* Fork worker i of sl, with a channel (a SOCK_SEQPACKET pair) whose one
 * end the child keeps (s->chan_w) and whose other stays with us: up it
 * comes the worker's report that it serves, down it go log descriptors
 * (master_log.c). 1 in the child, 0 in the master, -1 (errno) if it could
 * not be started. */
static int spawn(struct sup *s, struct slot *sl, unsigned i)
{
	int fds[2], err;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0)
		return -1;
	sl[i].chan = fds[0];
	s->chan_w = fds[1];
	if ((pid = fork()) == 0)
		return 1;
	err = errno;
	close(fds[1]);
	s->chan_w = -1;
	if (pid < 0) {
		master_close_chan(&sl[i]);
		errno = err;
		return -1;
	}
	sl[i].pid = pid;
	sl[i].started = master_now();
	sl[i].ready = 0;
	log_info("worker %u started (pid %ld)", i + 1, (long)pid);
	return 0;
}

/* A byte on a worker's channel is its report that it serves; the channel
 * then stays open for what the master sends. Its end without one is a
 * worker that ended first; its SIGCHLD says how. */
static void read_ready(struct slot *sl, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char b;
		ssize_t r;
		if (sl[i].chan < 0 || sl[i].ready)
			continue;
		r = read(sl[i].chan, &b, 1);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r == 1)
			sl[i].ready = 1;
		else
			master_close_chan(&sl[i]);
	}
}

static unsigned count_ready(const struct slot *sl, unsigned n)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++)
		k += sl[i].pid != 0 && sl[i].ready;
	return k;
}

static int reap_old(struct sup *s, pid_t pid, int status)
{
	char how[96];

	for (size_t i = 0; i < s->nold; i++) {
		if (s->old[i] != pid)
			continue;
		s->old[i] = s->old[--s->nold];
		if (s->quit_from > s->nold)
			s->quit_from = s->nold;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			log_info("worker (pid %ld) of the previous configuration has "
			         "finished", (long)pid);
		} else {
			describe_end(status, how, sizeof(how));
			log_errx("worker (pid %ld) of the previous configuration %s",
			         (long)pid, how);
			if (s->stopping)
				s->unclean = 1;
		}
		return 1;
	}
	return 0;
}

static int reap_failed(struct sup *s, pid_t pid, int status)
{
	char how[96];

	for (size_t i = 0; i < s->nfailed; i++) {
		if (s->failed[i] != pid)
			continue;
		s->failed[i] = s->failed[--s->nfailed];
		describe_end(status, how, sizeof(how));
		log_info("worker (pid %ld) of the failed reload %s", (long)pid, how);
		return 1;
	}
	return 0;
}

/* A worker of the reload under way ended: before all of them served, so
 * the reload has failed. */
static int reap_next(struct sup *s, pid_t pid, int status)
{
	struct next *nx = s->next;
	char how[96], why[160];

	for (unsigned i = 0; nx != NULL && i < nx->nslots; i++) {
		if (nx->slots[i].pid != pid)
			continue;
		nx->slots[i].pid = 0;
		read_ready(&nx->slots[i], 1);      /* a report it made just before */
		master_close_chan(&nx->slots[i]);
		describe_end(status, how, sizeof(how));
		snprintf(why, sizeof(why), "worker %u (pid %ld) %s %s", i + 1, (long)pid,
		         how, nx->slots[i].ready ? "before the others served" :
		         "before serving");
		master_reload_fail(s, why);
		return 1;
	}
	return 0;
}

static void reap(struct sup *s)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		char how[96];
		unsigned i;

		if (reap_old(s, pid, status) || reap_failed(s, pid, status) ||
		    reap_next(s, pid, status))
			continue;
		for (i = 0; i < s->nslots && s->slots[i].pid != pid; i++)
			;
		if (i == s->nslots)
			continue;          /* not ours */
		s->slots[i].pid = 0;
		s->slots[i].ready = 0;
		master_close_chan(&s->slots[i]);
		describe_end(status, how, sizeof(how));
		if (s->stopping) {
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				s->unclean = 1;
				log_errx("worker %u (pid %ld) %s while stopping", i + 1,
				         (long)pid, how);
			}
			continue;
		}
		double lived = master_now() - s->slots[i].started;
		s->slots[i].due = master_now() + (lived < RESPAWN_QUICK_S ? RESPAWN_DELAY_S : 0);
		log_errx("worker %u (pid %ld) %s after %.1fs; starting another%s", i + 1,
		         (long)pid, how, lived,
		         lived < RESPAWN_QUICK_S ? " in a second" : "");
	}
}

static void signal_all(struct sup *s, int sig)
{
	for (unsigned i = 0; i < s->nslots; i++)
		if (s->slots[i].pid != 0)
			kill(s->slots[i].pid, sig);
	for (unsigned i = 0; s->next != NULL && i < s->next->nslots; i++)
		if (s->next->slots[i].pid != 0)
			kill(s->next->slots[i].pid, sig);
	for (size_t i = 0; i < s->nold; i++)
		kill(s->old[i], sig);
	for (size_t i = 0; i < s->nfailed; i++)
		kill(s->failed[i], sig);
}

int master_reserve(pid_t **list, size_t *cap, size_t n, size_t k)
{
	pid_t *p;

	if (n + k <= *cap)
		return 0;
	if ((p = realloc(*list, (n + k) * sizeof(*p))) == NULL)
		return -1;
	*list = p;
	*cap = n + k;
	return 0;
}

int master_prepare(struct cfg *c, int reload, struct tlsctx ***tls, struct privdrop *pd,
                   int *drop, struct diag *d)
{
	char err[160];

	*drop = 0;
	if ((*tls = server_prepare(c, reload, d)) == NULL)
		return -1;
	if (c->user) {
		if (privdrop_lookup(c->user, pd, err, sizeof(err)) < 0) {
			diag_add(d, 0, c->file, 0, "portier", "user", "%s", err);
			return -1;
		}
		*drop = geteuid() != pd->uid;
		if (*drop && geteuid() != 0) {
			diag_add(d, 0, c->file, 0, "portier", "user", "only root can "
			         "switch to another account (running as uid %ld)",
			         (long)geteuid());
			return -1;
		}
	}
	return 0;
}

void master_free_tls(const struct cfg *c, struct tlsctx **tls)
{
	if (tls == NULL)
		return;
	for (size_t i = 0; i < c->nlisteners; i++)
		tlsctx_free(tls[i]);
	free(tls);
}

void master_claim_slots(const struct cfg *c)
{
	for (size_t i = 0; i < c->nlisteners && shared_get() != NULL; i++)
		if (shared_slot(shared_get(), c->listeners[i].name) == NULL)
			log_warnx("[%s] no free counter slot (%d listener names since "
			          "start); its connections are not counted",
			          c->listeners[i].name, SHARED_SLOTS);
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

/* What the current generation serves, for a STATUS= line. */
static void summary(const struct sup *s, char *out, size_t len)
{
	const struct cfg *c = s->m->cfg;
	unsigned long long gen = s->m->generation;
	unsigned up = count_ready(s->slots, s->nslots);
	char workers[48];

	if (up == s->nslots)
		snprintf(workers, sizeof(workers), "%u worker%s", up, up == 1 ? "" : "s");
	else
		snprintf(workers, sizeof(workers), "%u of %u workers", up, s->nslots);
	snprintf(out, len, "serving: %zu listener%s on %zu socket%s, %s, generation %llu",
	         c->nlisteners, c->nlisteners == 1 ? "" : "s", s->m->set.n,
	         s->m->set.n == 1 ? "" : "s", workers, gen);
}

void master_tell(struct sup *s, const char *why)
{
	unsigned up = count_ready(s->slots, s->nslots);
	int ready = s->told_ready || up == s->nslots;
	char sum[256];
	int r;

	summary(s, sum, sizeof(sum));
	if (why != NULL)
		r = notify_state(ready ? "READY=1" : NULL, "%s; %s", why, sum);
	else
		r = notify_state(ready ? "READY=1" : NULL, "%s", sum);
	if (r < 0)
		log_warn("cannot tell the service manager%s", ready ? " portier is ready" : "");
	s->told_ready = ready;
	s->told_workers = up;
}

/* Between reloads the manager hears READY=1 once every first worker
 * serves, then a new STATUS= whenever the number serving changes (one
 * died; its replacement serves). */
static void tell_progress(struct sup *s)
{
	unsigned up = count_ready(s->slots, s->nslots);
	char sum[256];

	if (s->stopping || s->next != NULL)
		return;
	if (!s->told_ready) {
		if (up == s->nslots)
			master_tell(s, NULL);
		return;
	}
	if (up == s->told_workers)
		return;
	summary(s, sum, sizeof(sum));
	(void)notify_state(NULL, "%s", sum);   /* lost: the last one stays shown */
	s->told_workers = up;
}

/* SIGQUIT: a graceful stop, nginx's. The listening sockets close here and
 * in every worker (new clients are refused), the open connections run
 * until they end or drain_timeout, and the master ends with the last
 * worker. SIGTERM meanwhile makes it the fast stop. */
static void start_drain(struct sup *s)
{
	double limit = s->m->cfg->drain_timeout_ms / 1000.0;

	if (s->next != NULL) {
		log_notice("got SIGQUIT during a reload: its new workers stop too");
		master_reload_undo(s);
	}
	log_notice("got SIGQUIT, draining %u worker%s: no longer accepting, open "
	           "connections may run %.0fs (drain_timeout); SIGTERM stops at once",
	           running(s), running(s) == 1 ? "" : "s", limit);
	if (notify_state("STOPPING=1", "draining on SIGQUIT: %u worker%s",
	                 running(s), running(s) == 1 ? "" : "s") < 0)
		log_warn("cannot tell the service manager portier is stopping");
	listener_close(&s->m->set);
	s->stopping = 1;
	s->draining = 1;
	s->kill_at = master_now() + limit + STOP_GRACE_S;
	s->quit_from = s->nold;          /* all of them get it now */
	signal_all(s, SIGQUIT);
}

static void on_signal(struct sup *s, int sig)
{
	if (sig == SIGTERM || sig == SIGINT) {
		if (s->next != NULL) {
			log_notice("got signal %d during a reload: its new workers stop "
			           "too", sig);
			master_reload_undo(s);
		}
		if (s->draining)
			log_notice("got signal %d while draining: stopping %u worker%s "
			           "at once", sig, running(s), running(s) == 1 ? "" : "s");
		s->draining = 0;
		if (!s->stopping) {
			log_notice("got signal %d, stopping %u worker%s", sig, running(s),
			           running(s) == 1 ? "" : "s");
			if (notify_state("STOPPING=1", "stopping on signal %d: %u worker%s",
			                 sig, running(s), running(s) == 1 ? "" : "s") < 0)
				log_warn("cannot tell the service manager portier is stopping");
		}
		s->stopping = 1;
		s->kill_at = master_now() + STOP_GRACE_S;
		signal_all(s, SIGTERM);
	} else if (sig == SIGHUP && !s->stopping) {
		master_reload_start(s);
	} else if (sig == SIGUSR1 && !s->stopping) {
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

/* In the child: forget the master's books, keep only the generation this
 * worker serves (and none of the other's sockets), and become a worker. */
static int child(struct sup *s, struct slot *sl, unsigned i, unsigned *worker)
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
	free(s->failed);
	m->chan = s->chan_w;
	become_worker(s->self, &s->blocked, m->drop ? &m->user : NULL);
	log_set_quiet(m->cfg->log_quiet);
	log_set_json(m->cfg->log_json);
	*worker = i + 1;
	return MASTER_WORKER;
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
	return r == 1 ? 0 : -1;
}

int master_run(struct master *m, unsigned *worker)
{
	struct sup s = {.m = m, .self = getpid(), .chan_w = -1};
	int rc;

	m->generation = 1;
	s.expiry_every = expiry_interval();
	s.expiry_at = master_now() + s.expiry_every;
	s.nslots = master_nworkers(m->cfg);
	if ((s.slots = master_new_slots(s.nslots)) == NULL) {
		log_errx("out of memory");
		return 1;
	}
	sigemptyset(&s.blocked);
	sigaddset(&s.blocked, SIGCHLD);
	sigaddset(&s.blocked, SIGTERM);
	sigaddset(&s.blocked, SIGINT);
	sigaddset(&s.blocked, SIGHUP);
	sigaddset(&s.blocked, SIGQUIT);
	sigaddset(&s.blocked, SIGUSR1);
	/* Blocked before the first fork, so that no signal slips in between
	 * a fork and the wait that would take it; they arrive on s.sfd. */
	sigprocmask(SIG_BLOCK, &s.blocked, NULL);
	if ((s.sfd = signalfd(-1, &s.blocked, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		log_warn("signalfd");
		free(s.slots);
		return 1;
	}
	master_claim_slots(m->cfg);
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
			int r = spawn(&s, s.slots, i);
			if (r == 1)
				return child(&s, s.slots, i, worker);
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
				int r = spawn(&s, s.next->slots, i);
				if (r == 1)
					return child(&s, s.next->slots, i, worker);
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
		/* The new generation serves: the old one may let go. */
		for (; s.quit_from < s.nold; s.quit_from++)
			kill(s.old[s.quit_from], SIGQUIT);
		if (s.nfailed > 0 && !s.stopping && now >= s.failed_kill_at) {
			log_errx("%zu worker%s of a failed reload still running %.0fs after "
			         "SIGTERM; killing %s", s.nfailed, s.nfailed == 1 ? "" : "s",
			         STOP_GRACE_S, s.nfailed == 1 ? "it" : "them");
			for (size_t i = 0; i < s.nfailed; i++)
				kill(s.failed[i], SIGKILL);
			s.failed_kill_at = now + STOP_GRACE_S;
		}
		if (s.stopping && running(&s) == 0)
			break;
		if (s.stopping && now >= s.kill_at) {
			log_errx("%u workers still running %.0fs after %s; killing them",
			         running(&s), s.draining ? m->cfg->drain_timeout_ms / 1000.0 +
			         STOP_GRACE_S : STOP_GRACE_S, s.draining ? "SIGQUIT" : "SIGTERM");
			signal_all(&s, SIGKILL);
			s.unclean = 1;
			s.kill_at = now + STOP_GRACE_S;
		}
		shared_set_workers_up(shared_get(), count_ready(s.slots, s.nslots));
		wait_events(&s);
		reap(&s);
		read_ready(s.slots, s.nslots);
		tell_progress(&s);
		if (s.next != NULL)
			read_ready(s.next->slots, s.next->nslots);
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
		 * minute apart at most; a reload under way waits. */
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
	free(s.failed);
	close(s.sfd);
	notify_close();
	sigprocmask(SIG_UNBLOCK, &s.blocked, NULL);
	return rc;
}
