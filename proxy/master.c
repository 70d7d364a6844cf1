#include "master.h"
#include "log.h"
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

/* The worker's side of fork(): the signals the master blocked go back to
 * their defaults, root is given up, and it ends when the master does,
 * however the master ended (a worker without a master would hold the ports
 * forever). The death signal is asked for after the switch of user, which
 * would clear it. Exits on failure. */
static void become_worker(pid_t master, const sigset_t *blocked,
                          const struct privdrop *user)
{
	static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};

	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	sigprocmask(SIG_UNBLOCK, blocked, NULL);
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
	const struct master *m;
	struct slot *slots;
	sigset_t blocked;
	pid_t self;
	int stopping;
	double kill_at;       /* while stopping: when to SIGKILL the rest */
	int unclean;          /* a worker ended badly while stopping */
};

static unsigned running(const struct sup *s)
{
	unsigned n = 0;

	for (unsigned i = 0; i < s->m->nworkers; i++)
		n += s->slots[i].pid != 0;
	return n;
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

static void reap(struct sup *s)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		char how[96];
		unsigned i;

		for (i = 0; i < s->m->nworkers && s->slots[i].pid != pid; i++)
			;
		if (i == s->m->nworkers)
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

static void stop_all(struct sup *s, int sig)
{
	for (unsigned i = 0; i < s->m->nworkers; i++)
		if (s->slots[i].pid != 0)
			kill(s->slots[i].pid, sig);
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
		for (unsigned i = 0; i < s->m->nworkers; i++)
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
		stop_all(s, SIGTERM);
	} else if (sig == SIGHUP) {
		log_warnx("SIGHUP: reloading is not implemented yet; still serving "
		          "the configuration loaded at start");
	}
}

int master_run(const struct master *m, unsigned *worker)
{
	struct sup s = {.m = m, .self = getpid()};
	int rc;

	if ((s.slots = calloc(m->nworkers, sizeof(*s.slots))) == NULL) {
		log_errx("out of memory");
		return 1;
	}
	sigemptyset(&s.blocked);
	sigaddset(&s.blocked, SIGCHLD);
	sigaddset(&s.blocked, SIGTERM);
	sigaddset(&s.blocked, SIGINT);
	sigaddset(&s.blocked, SIGHUP);
	/* Blocked before the first fork, so that no signal slips in between
	 * a fork and the wait that would take it. */
	sigprocmask(SIG_BLOCK, &s.blocked, NULL);
	if (m->user)
		log_notice("master (pid %ld) starting %u worker%s as user %s (uid %ld, "
		           "gid %ld)", (long)s.self, m->nworkers, m->nworkers == 1 ? "" : "s",
		           m->user->name, (long)m->user->uid, (long)m->user->gid);
	else
		log_notice("master (pid %ld) starting %u worker%s", (long)s.self,
		           m->nworkers, m->nworkers == 1 ? "" : "s");
	for (;;) {
		siginfo_t si;
		struct timespec ts;
		double now = now_s();

		for (unsigned i = 0; i < m->nworkers && !s.stopping; i++) {
			if (s.slots[i].pid != 0 || s.slots[i].due > now)
				continue;
			if (spawn(&s, i)) {
				free(s.slots);
				become_worker(s.self, &s.blocked, m->user);
				*worker = i + 1;
				return MASTER_WORKER;
			}
		}
		if (s.stopping && running(&s) == 0)
			break;
		if (s.stopping && now >= s.kill_at) {
			log_errx("%u workers still running %.0fs after SIGTERM; killing them",
			         running(&s), STOP_GRACE_S);
			stop_all(&s, SIGKILL);
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
	sigprocmask(SIG_UNBLOCK, &s.blocked, NULL);
	return rc;
}
