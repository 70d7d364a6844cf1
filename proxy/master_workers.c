/*
 * The worker table as the master keeps it: how many workers a config asks
 * for, their slots, their fork (each with its channel), the readiness
 * reports that come up those channels, and their end: waitpid() matched
 * against the current generation, a reload under way, earlier generations
 * draining and failed reloads, with a quick death replaced only after a
 * pause, which doubles while they come in a row. The child's side of the
 * fork is master_child.c's.
 */

#include "master_int.h"
#include "limit.h"
#include "log.h"
#include "shared.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* How many CPUs this process may run on (workers = auto). */
static unsigned master_cpus(void)
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

unsigned master_running(const struct sup *s)
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

unsigned master_count_ready(const struct slot *sl, unsigned n)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++)
		k += sl[i].pid != 0 && sl[i].ready;
	return k;
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

/* Fork worker i of sl, with a channel (a SOCK_SEQPACKET pair) whose one
 * end the child keeps (s->chan_w) and whose other stays with us: up it
 * comes the worker's report that it serves, down it go log descriptors
 * (master_log.c). */
int master_spawn(struct sup *s, struct slot *sl, unsigned i)
{
	static int told_no_row;
	int fds[2], err, row;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0)
		return -1;
	sl[i].chan = fds[0];
	s->chan_w = fds[1];
	if ((row = shared_proc_reserve(shared_get())) < 0 && shared_get() != NULL &&
	    !told_no_row++)
		log_warnx("more than %d workers at once (draining ones included): "
		          "what a worker past them holds stays counted if it dies",
		          SHARED_PROCS);
	if ((pid = fork()) == 0) {
		shared_proc_enter(row);
		return 1;
	}
	err = errno;
	shared_proc_own(shared_get(), row, pid > 0 ? pid : 0);
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
void master_read_ready(struct slot *sl, unsigned n)
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

/* Takes pid out of list[0..*n) (the last one fills its place): 1 if it
 * was there. */
static int take_pid(pid_t *list, size_t *n, pid_t pid)
{
	for (size_t i = 0; i < *n; i++) {
		if (list[i] == pid) {
			list[i] = list[--*n];
			return 1;
		}
	}
	return 0;
}

static int reap_old(struct sup *s, pid_t pid, int status)
{
	const char *of = "the previous configuration";
	char how[96];

	if (!take_pid(s->old, &s->nold, pid))
		return 0;
	if (take_pid(s->undone, &s->nundone, pid))
		of = "the failed reload";
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		log_info("worker (pid %ld) of %s has finished", (long)pid, of);
	} else {
		describe_end(status, how, sizeof(how));
		log_errx("worker (pid %ld) of %s %s", (long)pid, of, how);
		if (s->stopping)
			s->unclean = 1;
	}
	return 1;
}

static int reap_failed(struct sup *s, pid_t pid, int status)
{
	char how[96];

	if (!take_pid(s->failed, &s->nfailed, pid))
		return 0;
	describe_end(status, how, sizeof(how));
	log_info("worker (pid %ld) of the failed reload %s", (long)pid, how);
	return 1;
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
		master_read_ready(&nx->slots[i], 1);      /* a report it made just before */
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

void master_reap(struct sup *s)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		char how[96];
		unsigned i;
		int row = shared_proc_of(shared_get(), pid);

		/* Whatever it ended of, what it still held is given back: a
		 * worker that crashed or was killed closed nothing. */
		if (row >= 0) {
			limit_proc_gone(shared_get(), row);
			shared_proc_free(shared_get(), row);
		}
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
		double lived = master_now() - s->slots[i].started, pause = 0;
		unsigned *quick = &s->slots[i].quick;

		/* A worker that cannot start (its user cannot be switched to,
		 * a limit it hits at once) dies young each time: the pause
		 * doubles with each such death in a row, so that the log hears
		 * of it once a minute rather than once a second, for days. One
		 * that lived starts the count again. */
		if (lived < RESPAWN_QUICK_S) {
			pause = RESPAWN_DELAY_S;
			for (unsigned k = 0; k < *quick && pause < RESPAWN_MAX_S; k++)
				pause *= 2;
			if (pause > RESPAWN_MAX_S)
				pause = RESPAWN_MAX_S;
			++*quick;
		} else {
			*quick = 0;
		}
		s->slots[i].due = master_now() + pause;
		if (pause == 0)
			log_errx("worker %u (pid %ld) %s after %.1fs; starting another",
			         i + 1, (long)pid, how, lived);
		else if (*quick == 1)
			log_errx("worker %u (pid %ld) %s after %.1fs; starting another in "
			         "%.0fs", i + 1, (long)pid, how, lived, pause);
		else
			log_errx("worker %u (pid %ld) %s after %.1fs; starting another in "
			         "%.0fs (%u quick deaths in a row; the pause doubles up to "
			         "%.0fs)", i + 1, (long)pid, how, lived, pause, *quick,
			         RESPAWN_MAX_S);
	}
}

void master_signal_all(struct sup *s, int sig)
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
