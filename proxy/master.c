#include "master.h"
#include "log.h"
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RESPAWN_QUICK_S 1.0   /* a worker that died younger than this ... */
#define RESPAWN_DELAY_S 1.0   /* ... is replaced only after this pause */
#define STOP_GRACE_S 10.0     /* after SIGTERM, then SIGKILL */
#define TICK_S 60             /* wake at least this often (ticket keys) */
#define READY_LIMIT_S 10.0    /* a reload's workers must serve within this */

struct slot {
	pid_t pid;        /* 0: not running */
	double started;
	double due;       /* when to start it again (pid == 0) */
	int ready_fd;     /* our end of its readiness pipe until it reported; -1 */
	int ready;        /* it reported serving */
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
};

static double now_s(void)
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
	signal(SIGHUP, SIG_IGN);
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

struct sup {
	struct master *m;
	struct slot *slots;       /* the current generation's workers */
	unsigned nslots;
	struct next *next;        /* a reload waiting for its workers, or NULL */
	int hup_again;            /* SIGHUP came during it: reload once it ends */
	pid_t *old;               /* earlier generations' workers, draining */
	size_t nold, capold;
	size_t quit_from;         /* old[quit_from..] still to get SIGQUIT */
	pid_t *failed;            /* workers of failed reloads, told to stop */
	size_t nfailed, capfailed;
	double failed_kill_at;    /* when to SIGKILL those still there */
	int sfd;                  /* signalfd of the blocked signals */
	int ready_w;              /* in a new child: its end of the pipe */
	sigset_t blocked;
	pid_t self;
	int stopping;
	double kill_at;           /* while stopping: when to SIGKILL the rest */
	int unclean;              /* a worker ended badly while stopping */
};

static struct slot *new_slots(unsigned n)
{
	struct slot *sl = calloc(n ? n : 1, sizeof(*sl));

	for (unsigned i = 0; sl != NULL && i < n; i++)
		sl[i].ready_fd = -1;
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

/* Forget a slot's readiness pipe (its worker reported, ended or is let go). */
static void close_ready(struct slot *sl)
{
	if (sl->ready_fd >= 0)
		close(sl->ready_fd);
	sl->ready_fd = -1;
}

/* Fork worker i of sl, with a readiness pipe whose write end the child
 * keeps (s->ready_w) and whose read end stays with us. 1 in the child, 0
 * in the master, -1 (errno) if it could not be started. */
static int spawn(struct sup *s, struct slot *sl, unsigned i)
{
	int fds[2], err;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	sl[i].ready_fd = fds[0];
	s->ready_w = fds[1];
	if ((pid = fork()) == 0)
		return 1;
	err = errno;
	close(fds[1]);
	s->ready_w = -1;
	if (pid < 0) {
		close_ready(&sl[i]);
		errno = err;
		return -1;
	}
	sl[i].pid = pid;
	sl[i].started = now_s();
	sl[i].ready = 0;
	log_info("worker %u started (pid %ld)", i + 1, (long)pid);
	return 0;
}

/* A byte on a worker's pipe is its report that it serves. The end of the
 * pipe without one is a worker that ended first; its SIGCHLD says how. */
static void read_ready(struct slot *sl, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char b;
		ssize_t r;
		if (sl[i].ready_fd < 0)
			continue;
		r = read(sl[i].ready_fd, &b, 1);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r == 1)
			sl[i].ready = 1;
		close_ready(&sl[i]);
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

static void fail(struct sup *s, const char *why);

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
		close_ready(&nx->slots[i]);
		describe_end(status, how, sizeof(how));
		snprintf(why, sizeof(why), "worker %u (pid %ld) %s %s", i + 1, (long)pid,
		         how, nx->slots[i].ready ? "before the others served" :
		         "before serving");
		fail(s, why);
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
		close_ready(&s->slots[i]);
		describe_end(status, how, sizeof(how));
		if (s->stopping) {
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				s->unclean = 1;
				log_errx("worker %u (pid %ld) %s while stopping", i + 1,
				         (long)pid, how);
			}
			continue;
		}
		double lived = now_s() - s->slots[i].started;
		s->slots[i].due = now_s() + (lived < RESPAWN_QUICK_S ? RESPAWN_DELAY_S : 0);
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

/* Room in list (*cap entries, *n used) for k more pids. 0 or -1 (ENOMEM). */
static int reserve(pid_t **list, size_t *cap, size_t n, size_t k)
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

/* The current workers join the draining list (room reserved); they get
 * SIGQUIT from the loop. slots (n of them, every worker serving) become
 * the current generation's. */
static void replace_slots(struct sup *s, struct slot *slots, unsigned n)
{
	s->quit_from = s->nold;
	for (unsigned i = 0; i < s->nslots; i++) {
		close_ready(&s->slots[i]);
		if (s->slots[i].pid != 0)
			s->old[s->nold++] = s->slots[i].pid;
	}
	free(s->slots);
	s->slots = slots;
	s->nslots = n;
}

int master_prepare(struct cfg *c, struct tlsctx ***tls, struct privdrop *pd,
                   int *drop, struct diag *d)
{
	char err[160];

	*drop = 0;
	if ((*tls = server_prepare(c, d)) == NULL)
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

static void free_tls(const struct cfg *c, struct tlsctx **tls)
{
	if (tls == NULL)
		return;
	for (size_t i = 0; i < c->nlisteners; i++)
		tlsctx_free(tls[i]);
	free(tls);
}

/* Every listener of c gets its counter slot now, before the fork, so
 * that workers only look theirs up (shared_slot). */
static void claim_slots(const struct cfg *c)
{
	for (size_t i = 0; i < c->nlisteners && shared_get() != NULL; i++)
		if (shared_slot(shared_get(), c->listeners[i].name) == NULL)
			log_warnx("[%s] no free counter slot (%d listener names since "
			          "start); its connections are not counted",
			          c->listeners[i].name, SHARED_SLOTS);
}

/* The fds of set, as they are now (for give_back). NULL on ENOMEM. */
static int *fds_of(const struct listener_set *set)
{
	int *fds = calloc(set->n ? set->n : 1, sizeof(*fds));

	for (size_t i = 0; fds != NULL && i < set->n; i++)
		fds[i] = set->socks[i].fd;
	return fds;
}

/* The sockets listener_open() moved from old to next go back to old (had:
 * old's fds before the move); next keeps only those it opened itself. */
static void give_back(struct listener_set *old, const int *had,
                      struct listener_set *next)
{
	for (size_t i = 0; i < old->n; i++) {
		if (had[i] < 0 || old->socks[i].fd >= 0)
			continue;
		old->socks[i].fd = had[i];
		for (size_t k = 0; k < next->n; k++)
			if (next->socks[k].fd == had[i])
				next->socks[k].fd = -1;
	}
}

static void free_next(struct next *nx)
{
	if (nx == NULL)
		return;
	for (unsigned i = 0; i < nx->nslots; i++)
		close_ready(&nx->slots[i]);
	free(nx->slots);
	free(nx->had);
	free(nx);
}

/* The reload under way is given up: its workers are told to stop (and
 * killed if they do not, failed_kill_at), its new sockets closed, the ones
 * it took back with the running generation, which never stopped serving. */
static void undo(struct sup *s)
{
	struct next *nx = s->next;
	struct master *m = s->m;

	for (unsigned i = 0; i < nx->nslots; i++) {
		if (nx->slots[i].pid == 0)
			continue;
		kill(nx->slots[i].pid, SIGTERM);
		s->failed[s->nfailed++] = nx->slots[i].pid;     /* room reserved */
		s->failed_kill_at = now_s() + STOP_GRACE_S;
	}
	give_back(&m->set, nx->had, &nx->set);
	listener_close(&nx->set);
	free_tls(nx->cfg, nx->tls);
	cfg_free(nx->cfg);
	free_next(nx);
	s->next = NULL;
}

static void fail(struct sup *s, const char *why)
{
	log_errx("reload failed: %s; keeping the running configuration", why);
	undo(s);
	shared_reload_done(shared_get(), 0, time(NULL));
}

/* The pid_file follows the configuration: the new one is written and the
 * one the running generation wrote removed, so that a stop (which removes
 * the current generation's) never removes a file portier did not write. */
static void pid_file_follow(const struct cfg *old, const struct cfg *c)
{
	const char *was = old->pid_file ? old->pid_file : "";
	const char *now = c->pid_file ? c->pid_file : "";
	FILE *f;

	if (strcmp(was, now) == 0)
		return;
	if (*now) {
		if ((f = fopen(now, "we")) == NULL) {
			log_warn("reload: cannot write pid_file %s", now);
		} else {
			fprintf(f, "%ld\n", (long)getpid());
			if (fclose(f) != 0)
				log_warn("reload: cannot write pid_file %s", now);
		}
	}
	if (*was)
		unlink(was);
}

/* Every new worker serves: the new generation becomes the current one, and
 * the old workers are told to drain (by the loop, from s->quit_from). */
static void commit(struct sup *s)
{
	struct next *nx = s->next;
	struct master *m = s->m;
	struct cfg *c = nx->cfg;
	struct shared *sh = shared_get();

	replace_slots(s, nx->slots, nx->nslots);
	nx->slots = NULL;
	nx->nslots = 0;
	if (strcmp(c->log ? c->log : "", m->cfg->log ? m->cfg->log : "") != 0)
		log_warnx("reload: a new 'log' takes effect at the next restart");
	pid_file_follow(m->cfg, c);
	listener_close(&m->set);           /* what the new generation did not take */
	free_tls(m->cfg, m->tls);
	cfg_free(m->cfg);
	m->cfg = c;
	m->tls = nx->tls;
	m->set = nx->set;
	m->user = nx->user;
	m->drop = nx->drop;
	free_next(nx);
	s->next = NULL;
	log_set_quiet(c->log_quiet);
	if (listener_write_ports(c, &m->set) < 0)
		log_warn("cannot write ports_file %s", c->ports_file);
	shared_reload_done(sh, 1, time(NULL));
	log_notice("reloaded: %zu listeners on %zu sockets, %u worker%s; %zu "
	           "worker%s of the previous configuration draining (generation "
	           "%llu)", c->nlisteners, m->set.n, s->nslots, s->nslots == 1 ? "" : "s",
	           s->nold - s->quit_from, s->nold - s->quit_from == 1 ? "" : "s",
	           sh ? (unsigned long long)sh->generation : 0ULL);
}

/* SIGHUP: the new generation beside the old; its workers are started by
 * the loop, which commits it once they all serve, or undoes it. */
static void reload(struct sup *s)
{
	struct master *m = s->m;
	struct diag d = {0};
	struct next *nx;
	struct cfg *c = NULL;
	unsigned n = 0;

	if (s->next != NULL) {
		log_notice("SIGHUP: a reload is still waiting for its workers; "
		           "reloading again once it is over");
		s->hup_again = 1;
		return;
	}
	log_notice("SIGHUP: reloading %s", m->path);
	/* Everything that can fail comes before listener_open, which takes
	 * sockets over from m->set only when it succeeds. */
	if ((nx = calloc(1, sizeof(*nx))) == NULL ||
	    (nx->had = fds_of(&m->set)) == NULL ||
	    (c = cfg_load_file(m->path, &d)) == NULL ||
	    master_prepare(c, &nx->tls, &nx->user, &nx->drop, &d) < 0 ||
	    (nx->slots = new_slots(n = master_nworkers(c))) == NULL ||
	    reserve(&s->old, &s->capold, s->nold, s->nslots) < 0 ||
	    reserve(&s->failed, &s->capfailed, s->nfailed, n) < 0 ||
	    listener_open(c, &nx->set, &m->set, &d) < 0) {
		diag_log(&d);
		if (d.errors)
			log_errx("reload refused: %s has %d error%s; still serving the "
			         "configuration loaded before", m->path, d.errors,
			         d.errors == 1 ? "" : "s");
		else
			log_errx("reload refused: out of memory; still serving the "
			         "configuration loaded before");
		if (c != NULL && nx != NULL)
			free_tls(c, nx->tls);
		cfg_free(c);
		free_next(nx);
		diag_free(&d);
		shared_reload_done(shared_get(), 0, time(NULL));
		return;
	}
	nx->cfg = c;
	nx->nslots = n;
	nx->deadline = now_s() + READY_LIMIT_S;
	s->next = nx;
	diag_log(&d);      /* warnings */
	diag_free(&d);
	/* Sessions resume across the reload where a listener of the same
	 * name stays: it keeps its ticket keys. */
	for (size_t i = 0; i < c->nlisteners; i++)
		for (size_t j = 0; j < m->cfg->nlisteners; j++)
			if (strcmp(c->listeners[i].name, m->cfg->listeners[j].name) == 0)
				tlsctx_keep_tickets(nx->tls[i], m->tls[j]);
	claim_slots(c);
	log_info("reload: starting %u worker%s of the new configuration; the "
	         "running ones serve until they all do", n, n == 1 ? "" : "s");
}

/* How long the master may sleep: until the next restart, kill or reload
 * deadline is due, and never longer than TICK_S. */
static struct timespec next_wait(const struct sup *s)
{
	double now = now_s(), wait = TICK_S;
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
	}
	if (wait < 0.001)
		wait = 0.001;
	ts.tv_sec = (time_t)wait;
	ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
	return ts;
}

static void on_signal(struct sup *s, int sig)
{
	if (sig == SIGTERM || sig == SIGINT) {
		if (s->next != NULL) {
			log_notice("got signal %d during a reload: its new workers stop "
			           "too", sig);
			undo(s);
		}
		if (!s->stopping)
			log_notice("got signal %d, stopping %u worker%s", sig, running(s),
			           running(s) == 1 ? "" : "s");
		s->stopping = 1;
		s->kill_at = now_s() + STOP_GRACE_S;
		signal_all(s, SIGTERM);
	} else if (sig == SIGHUP && !s->stopping) {
		reload(s);
	} else if (sig == SIGQUIT) {
		log_warnx("SIGQUIT is what the master sends old workers; ignored "
		          "(SIGHUP reloads, SIGTERM stops)");
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
		if (s->slots[i].ready_fd >= 0)
			pfd[n++] = (struct pollfd){.fd = s->slots[i].ready_fd, .events = POLLIN};
	for (unsigned i = 0; s->next != NULL && i < s->next->nslots; i++)
		if (s->next->slots[i].ready_fd >= 0)
			pfd[n++] = (struct pollfd){.fd = s->next->slots[i].ready_fd,
			                           .events = POLLIN};
	if (ppoll(pfd, n, &ts, NULL) < 0 && errno != EINTR)
		log_warn("ppoll");      /* nothing to undo: the loop comes back */
	while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		if (si.ssi_signo != SIGCHLD)
			on_signal(s, (int)si.ssi_signo);
}

/* The reload under way, its workers all started: commit it once every
 * one serves, fail it if one stays silent past the deadline. */
static void advance_reload(struct sup *s)
{
	struct next *nx = s->next;
	char why[160];
	unsigned i;

	for (i = 0; i < nx->nslots && nx->slots[i].ready; i++)
		;
	if (i == nx->nslots) {
		commit(s);
	} else if (now_s() >= nx->deadline) {
		snprintf(why, sizeof(why), "worker %u (pid %ld) did not report serving "
		         "within %.0fs", i + 1, (long)nx->slots[i].pid, READY_LIMIT_S);
		fail(s, why);
	}
}

/* In the child: forget the master's books, keep only the generation this
 * worker serves (and none of the other's sockets), and become a worker. */
static int child(struct sup *s, struct slot *sl, unsigned i, unsigned *worker)
{
	struct master *m = s->m;
	struct next *nx = s->next;

	for (unsigned k = 0; k < s->nslots; k++)
		close_ready(&s->slots[k]);
	close(s->sfd);
	if (nx != NULL && sl == nx->slots) {
		/* The new generation's: the sockets it did not take close here. */
		listener_close(&m->set);
		free_tls(m->cfg, m->tls);
		cfg_free(m->cfg);
		m->cfg = nx->cfg;
		m->tls = nx->tls;
		m->set = nx->set;
		m->user = nx->user;
		m->drop = nx->drop;
	} else if (nx != NULL) {
		/* The running generation's, replacing one that died during a
		 * reload: its sockets back, the new generation's closed. */
		give_back(&m->set, nx->had, &nx->set);
		listener_close(&nx->set);
		free_tls(nx->cfg, nx->tls);
		cfg_free(nx->cfg);
	}
	free_next(nx);     /* closes the other new workers' pipes */
	free(s->slots);
	free(s->old);
	free(s->failed);
	m->ready_fd = s->ready_w;
	become_worker(s->self, &s->blocked, m->drop ? &m->user : NULL);
	log_set_quiet(m->cfg->log_quiet);
	*worker = i + 1;
	return MASTER_WORKER;
}

int master_ready(struct master *m)
{
	ssize_t r;

	if (m->ready_fd < 0) {
		errno = EBADF;
		return -1;
	}
	do
		r = write(m->ready_fd, "1", 1);
	while (r < 0 && errno == EINTR);
	close(m->ready_fd);
	m->ready_fd = -1;
	return r == 1 ? 0 : -1;
}

int master_run(struct master *m, unsigned *worker)
{
	struct sup s = {.m = m, .self = getpid(), .ready_w = -1};
	int rc;

	s.nslots = master_nworkers(m->cfg);
	if ((s.slots = new_slots(s.nslots)) == NULL) {
		log_errx("out of memory");
		return 1;
	}
	sigemptyset(&s.blocked);
	sigaddset(&s.blocked, SIGCHLD);
	sigaddset(&s.blocked, SIGTERM);
	sigaddset(&s.blocked, SIGINT);
	sigaddset(&s.blocked, SIGHUP);
	sigaddset(&s.blocked, SIGQUIT);
	/* Blocked before the first fork, so that no signal slips in between
	 * a fork and the wait that would take it; they arrive on s.sfd. */
	sigprocmask(SIG_BLOCK, &s.blocked, NULL);
	if ((s.sfd = signalfd(-1, &s.blocked, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		log_warn("signalfd");
		free(s.slots);
		return 1;
	}
	claim_slots(m->cfg);
	if (m->drop)
		log_notice("master (pid %ld) starting %u worker%s as user %s (uid %ld, "
		           "gid %ld)", (long)s.self, s.nslots, s.nslots == 1 ? "" : "s",
		           m->user.name, (long)m->user.uid, (long)m->user.gid);
	else
		log_notice("master (pid %ld) starting %u worker%s", (long)s.self,
		           s.nslots, s.nslots == 1 ? "" : "s");
	for (;;) {
		double now = now_s();

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
					fail(&s, why);
					break;
				}
			}
			if (s.next != NULL)
				advance_reload(&s);
		}
		if (s.next == NULL && s.hup_again && !s.stopping) {
			s.hup_again = 0;
			reload(&s);
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
			log_errx("%u workers still running %.0fs after SIGTERM; killing them",
			         running(&s), STOP_GRACE_S);
			signal_all(&s, SIGKILL);
			s.unclean = 1;
			s.kill_at = now + STOP_GRACE_S;
		}
		shared_set_workers_up(shared_get(), count_ready(s.slots, s.nslots));
		wait_events(&s);
		reap(&s);
		read_ready(s.slots, s.nslots);
		if (s.next != NULL)
			read_ready(s.next->slots, s.next->nslots);
		/* Forget ticket keys that can no longer be used even when idle,
		 * so that the master's memory never holds old ones. */
		for (size_t i = 0; i < m->cfg->nlisteners; i++)
			tlsctx_tick(m->tls[i], time(NULL));
	}
	rc = s.unclean ? 1 : 0;
	for (unsigned i = 0; i < s.nslots; i++)
		close_ready(&s.slots[i]);
	free(s.slots);
	free(s.old);
	free(s.failed);
	close(s.sfd);
	sigprocmask(SIG_UNBLOCK, &s.blocked, NULL);
	return rc;
}
