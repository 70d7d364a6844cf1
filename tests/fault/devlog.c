/*
 * For integration tests, loaded into portier with LD_PRELOAD: a connect(2)
 * to the syslog socket /dev/log goes to $PORTIER_FAULT_DEVLOG instead, a
 * socket the test reads (datagram or stream). The real binary runs
 * `log = syslog` unchanged (its connect, reconnect and send) without the
 * test touching the machine's /dev/log.
 *
 * PORTIER_FAULT_DEVLOG_SHORT=N: every Nth send(2) on that socket sends only
 * the first half of the line, as a stream socket with little
 * room left can (the kernel cannot be made to do it on demand).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* The descriptor of this process's last connect to the moved /dev/log. */
static int devlog_fd = -1;

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	static int (*real)(int, const struct sockaddr *, socklen_t);
	const char *to = getenv("PORTIER_FAULT_DEVLOG");
	struct sockaddr_un un;

	if (real == NULL)
		real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
	if (to != NULL && sa != NULL && sa->sa_family == AF_UNIX &&
	    len >= sizeof(sa_family_t) + sizeof("/dev/log") &&
	    strcmp(((const struct sockaddr_un *)sa)->sun_path, "/dev/log") == 0 &&
	    strlen(to) < sizeof(un.sun_path)) {
		memset(&un, 0, sizeof(un));
		un.sun_family = AF_UNIX;
		strcpy(un.sun_path, to);
		devlog_fd = fd;
		return real(fd, (const struct sockaddr *)&un, sizeof(un));
	}
	return real(fd, sa, len);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	static ssize_t (*real)(int, const void *, size_t, int);
	static unsigned long nsends;
	const char *every = getenv("PORTIER_FAULT_DEVLOG_SHORT");
	int saved = errno;

	if (real == NULL)
		real = (ssize_t (*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
	errno = saved;
	if (every != NULL && strtoul(every, NULL, 10) > 0 && fd == devlog_fd && len >= 2 &&
	    ++nsends % strtoul(every, NULL, 10) == 0)
		return real(fd, buf, len / 2, flags);
	return real(fd, buf, len, flags);
}
