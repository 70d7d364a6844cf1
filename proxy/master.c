#include "master.h"
#include "log.h"
#include "server.h"
#include "tlsctx.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RESPAWN_QUICK_S 1.0   /* a worker that died younger than this ... */
#define RESPAWN_DELAY_S 1.0   /* ... is replaced only after this pause */
#define STOP_GRACE_S 10.0     /* after SIGTERM, then SIGKILL */
#define TICK_S 60             /* wake at least this often (ticket keys) */

struct slot {
	pid_t pid;        /* 0: not running */
	double started;
	double due;       /* when to start it again (pid == 0) */
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
	/* SIGQUIT stays blocked until the loop has its watcher for it
	 * (server_run): one sent right after a fork waits, not kills. */
	sigdelset(&unblock, SIGQUIT);
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
	pid_t *old;               /* earlier generations' workers, draining */
	size_t nold, capold;
	size_t quit_from;         /* old[quit_from..] still to get SIGQUIT */
	sigset_t blocked;
	pid_t self;
	int stopping;
	double kill_at;           /* while stopping: when to SIGKILL the rest */
	int unclean;              /* a worker ended badly while stopping */
};

static unsigned running(const struct sup *s)
{
	unsigned n = 0;

	for (unsigned i = 0; i < s->nslots; i++)
		n += s->slots[i].pid != 0;
	return n + (unsigned)s->nold;
}

/* Returns 1 in the child. */
static int spawn(struct sup *s, unsigned i)
{
	pid_t pid = fork();

	if (pid == 0)
		return 1;
	if (pid < 0) {
		log_warn("cannot start worker %u, trying again in %.0fs", i + 1,
		         RESPAWN_DELAY_S);
		s->slots[i].due = now_s() + RESPAWN_DELAY_S;
		return 0;
	}
	s->slots[i].pid = pid;
	s->slots[i].started = now_s();
	log_info("worker %u started (pid %ld)", i + 1, (long)pid);
	return 0;
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

static void reap(struct sup *s)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		char how[96];
		unsigned i;

		if (reap_old(s, pid, status))
			continue;
		for (i = 0; i < s->nslots && s->slots[i].pid != pid; i++)
			;
		if (i == s->nslots)
			continue;          /* not ours */
		s->slots[i].pid = 0;
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
	for (size_t i = 0; i < s->nold; i++)
		kill(s->old[i], sig);
}

/* Room in the draining list for the current workers. 0 or -1 (ENOMEM). */
static int reserve_old(struct sup *s)
{
	size_t need = s->nold + s->nslots;
	pid_t *p;

	if (need <= s->capold)
		return 0;
	if ((p = realloc(s->old, need * sizeof(*p))) == NULL)
		return -1;
	s->old = p;
	s->capold = need;
	return 0;
}

/* The current workers join the draining list (room reserved); they get
 * SIGQUIT once the new ones are started. slots (n of them, zeroed: all due
 * now) become the current generation's. */
static void replace_slots(struct sup *s, struct slot *slots, unsigned n)
{
	s->quit_from = s->nold;
	for (unsigned i = 0; i < s->nslots; i++)
		if (s->slots[i].pid != 0)
			s->old[s->nold++] = s->slots[i].pid;
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

/* SIGHUP: the new generation beside the old, swapped in only if all of it
 * loaded; the new workers are started by the loop, and the old ones told
 * to drain after that. */
static void reload(struct sup *s)
{
	struct master *m = s->m;
	struct diag d = {0};
	struct tlsctx **tls = NULL;
	struct listener_set set;
	struct privdrop pd = {0};
	struct slot *slots = NULL;
	struct cfg *c;
	unsigned n = 0;
	int drop = 0;

	log_notice("SIGHUP: reloading %s", m->path);
	/* Everything that can fail comes before listener_open, which takes
	 * sockets over from m->set only when it succeeds. */
	if ((c = cfg_load_file(m->path, &d)) == NULL ||
	    master_prepare(c, &tls, &pd, &drop, &d) < 0 ||
	    (slots = calloc(n = master_nworkers(c), sizeof(*slots))) == NULL ||
	    reserve_old(s) < 0 ||
	    listener_open(c, &set, &m->set, &d) < 0) {
		diag_log(&d);
		if (d.errors)
			log_errx("reload refused: %s has %d error%s; still serving the "
			         "configuration loaded before", m->path, d.errors,
			         d.errors == 1 ? "" : "s");
		else
			log_errx("reload refused: out of memory; still serving the "
			         "configuration loaded before");
		free(slots);
		if (c != NULL)
			free_tls(c, tls);
		cfg_free(c);
		diag_free(&d);
		return;
	}
	replace_slots(s, slots, n);
	diag_log(&d);      /* warnings */
	diag_free(&d);
	/* Sessions resume across the reload where a listener of the same
	 * name stays: it keeps its ticket keys. */
	for (size_t i = 0; i < c->nlisteners; i++)
		for (size_t j = 0; j < m->cfg->nlisteners; j++)
			if (strcmp(c->listeners[i].name, m->cfg->listeners[j].name) == 0)
				tlsctx_keep_tickets(tls[i], m->tls[j]);
	if (strcmp(c->log ? c->log : "", m->cfg->log ? m->cfg->log : "") != 0)
		log_warnx("reload: a new 'log' takes effect at the next restart");
	listener_close(&m->set);           /* what the new generation did not take */
	free_tls(m->cfg, m->tls);
	cfg_free(m->cfg);
	m->cfg = c;
	m->tls = tls;
	m->set = set;
	m->user = pd;
	m->drop = drop;
	log_set_quiet(c->log_quiet);
	if (listener_write_ports(c, &m->set) < 0)
		log_warn("cannot write ports_file %s", c->ports_file);
	log_notice("reloaded: %zu listeners on %zu sockets, %u worker%s; %zu "
	           "worker%s of the previous configuration draining", c->nlisteners,
	           m->set.n, s->nslots, s->nslots == 1 ? "" : "s", s->nold - s->quit_from,
	           s->nold - s->quit_from == 1 ? "" : "s");
}

/* How long sigtimedwait may sleep: until the next restart or kill is due,
 * and never longer than TICK_S. */
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

/* In the child: forget the master's books and become a worker. */
static int child(struct sup *s, unsigned i, unsigned *worker)
{
	free(s->slots);
	free(s->old);
	become_worker(s->self, &s->blocked, s->m->drop ? &s->m->user : NULL);
	log_set_quiet(s->m->cfg->log_quiet);
	*worker = i + 1;
	return MASTER_WORKER;
}

int master_run(struct master *m, unsigned *worker)
{
	struct sup s = {.m = m, .self = getpid()};
	int rc;

	s.nslots = master_nworkers(m->cfg);
	if ((s.slots = calloc(s.nslots, sizeof(*s.slots))) == NULL) {
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
	 * a fork and the wait that would take it. */
	sigprocmask(SIG_BLOCK, &s.blocked, NULL);
	if (m->drop)
		log_notice("master (pid %ld) starting %u worker%s as user %s (uid %ld, "
		           "gid %ld)", (long)s.self, s.nslots, s.nslots == 1 ? "" : "s",
		           m->user.name, (long)m->user.uid, (long)m->user.gid);
	else
		log_notice("master (pid %ld) starting %u worker%s", (long)s.self,
		           s.nslots, s.nslots == 1 ? "" : "s");
	for (;;) {
		siginfo_t si;
		struct timespec ts;
		double now = now_s();

		for (unsigned i = 0; i < s.nslots && !s.stopping; i++) {
			if (s.slots[i].pid != 0 || s.slots[i].due > now)
				continue;
			if (spawn(&s, i))
				return child(&s, i, worker);
		}
		/* The new generation is forked: the old one may let go. */
		for (; s.quit_from < s.nold; s.quit_from++)
			kill(s.old[s.quit_from], SIGQUIT);
		if (s.stopping && running(&s) == 0)
			break;
		if (s.stopping && now >= s.kill_at) {
			log_errx("%u workers still running %.0fs after SIGTERM; killing them",
			         running(&s), STOP_GRACE_S);
			signal_all(&s, SIGKILL);
			s.unclean = 1;
			s.kill_at = now + STOP_GRACE_S;
		}
		ts = next_wait(&s);
		int sig = sigtimedwait(&s.blocked, &si, &ts);
		if (sig > 0 && sig != SIGCHLD)
			on_signal(&s, sig);
		reap(&s);
		/* Forget ticket keys that can no longer be used even when idle,
		 * so that the master's memory never holds old ones. */
		for (size_t i = 0; i < m->cfg->nlisteners; i++)
			tlsctx_tick(m->tls[i], time(NULL));
	}
	rc = s.unclean ? 1 : 0;
	free(s.slots);
	free(s.old);
	sigprocmask(SIG_UNBLOCK, &s.blocked, NULL);
	return rc;
}
