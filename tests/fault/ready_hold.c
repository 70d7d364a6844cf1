/*
 * For integration tests, loaded into portier with LD_PRELOAD: the first
 * PORTIER_FAULT_READY_HOLD workers the master forks (counted here, in the
 * master) hold their report that they serve (the one byte a worker writes
 * up its channel, a SOCK_SEQPACKET socket) until the master closes its end
 * of the channel, or 10 s at most; the workers forked after them, a
 * reload's, report at once. A reload sent right after the start then
 * commits before the first workers served, which on a loaded machine
 * happens now and then; here it happens every time.
 * PORTIER_FAULT_READY_HOLD_SKIP=k lets the first k forks report at once
 * and holds the n after them: a reload's new worker then holds its report
 * while the reload fails and is undone.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HOLD_MAX_MS 10000

static ssize_t (*real_write)(int, const void *, size_t);

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	/* On stderr (the test's log), so the test knows the hold was met. */
	if (real_write(2, s, n) < 0) {
		/* nothing to do: the test then fails for want of it */
	}
}

/* Until the peer of fd hangs up, or HOLD_MAX_MS. */
static void hold(int fd)
{
	long long end = now_ms() + HOLD_MAX_MS;
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};

	for (;;) {
		long long left = end - now_ms();

		if (left <= 0) {
			say("ready_hold: report held 10 s, the master kept the channel\n");
			return;
		}
		p.revents = 0;
		if (poll(&p, 1, (int)left) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR))) {
			say("ready_hold: report held until the master closed the channel\n");
			return;
		}
	}
}

static long forked;      /* in the master: children forked so far */
static int holds;        /* in a child: one of the first n */

pid_t fork(void)
{
	static pid_t (*real_fork)(void);
	const char *n = getenv("PORTIER_FAULT_READY_HOLD");
	const char *k = getenv("PORTIER_FAULT_READY_HOLD_SKIP");
	long skip = k != NULL ? atol(k) : 0;
	pid_t pid;

	if (real_fork == NULL)
		real_fork = (pid_t (*)(void))dlsym(RTLD_NEXT, "fork");
	pid = real_fork();
	if (pid == 0)
		holds = n != NULL && forked >= skip && forked < skip + atol(n);
	else if (pid > 0)
		forked++;
	return pid;
}

ssize_t write(int fd, const void *buf, size_t len)
{
	int type = 0;
	socklen_t tlen = sizeof(type);

	if (real_write == NULL)
		real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	if (holds && len == 1 && ((const char *)buf)[0] == '1' &&
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && type == SOCK_SEQPACKET) {
		holds = 0;
		hold(fd);
	}
	return real_write(fd, buf, len);
}
