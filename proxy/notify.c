/*
 * sd_notify(3)'s datagram protocol, by hand: portier needs four messages,
 * not libsystemd and its dependencies.
 */

#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NOTIFY_STATUS_MAX 1000

/* Process-wide, as the environment variable that names it is. */
static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addrlen;

int notify_open(void)
{
	const char *e = getenv("NOTIFY_SOCKET");
	size_t n;
	int fd;

	notify_close();
	if (e == NULL || *e == '\0')
		return 0;
	n = strlen(e);
	/* "@" alone would be the empty abstract name, which nobody binds. */
	if ((e[0] != '/' && e[0] != '@') || n < 2) {
		errno = EAFNOSUPPORT;
		return -1;
	}
	if (n >= sizeof(notify_addr.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	/* Above 2: nothing that points 0..2 elsewhere may replace it. */
	if (fd <= 2) {
		int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		close(fd);
		if ((fd = nfd) < 0)
			return -1;
	}
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, e, n);
	if (e[0] == '@') {
		/* An abstract name is its n bytes after a NUL, no terminator. */
		notify_addr.sun_path[0] = '\0';
		notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	notify_fd = fd;
	return 1;
}

void notify_close(void)
{
	if (notify_fd >= 0)
		close(notify_fd);
	notify_fd = -1;
}

int notify_state(const char *state, const char *fmt, ...)
{
	char msg[2048];
	size_t len = 0, body;
	va_list ap;
	int n;

	if (notify_fd < 0)
		return 0;
	n = snprintf(msg, sizeof(msg), "%s", state ? state : "");
	if (n < 0 || (size_t)n >= sizeof(msg) - NOTIFY_STATUS_MAX - 16) {
		errno = EMSGSIZE;
		return -1;
	}
	len = (size_t)n;
	if (fmt != NULL) {
		if (len > 0)
			msg[len++] = '\n';
		memcpy(msg + len, "STATUS=", 7);
		len += 7;
		body = len;
		va_start(ap, fmt);
		n = vsnprintf(msg + len, NOTIFY_STATUS_MAX + 1, fmt, ap);
		va_end(ap);
		if (n < 0)
			n = 0;
		len += (size_t)n > NOTIFY_STATUS_MAX ? NOTIFY_STATUS_MAX : (size_t)n;
		for (size_t i = body; i < len; i++)
			if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
				msg[i] = '?';
	}
	if (sendto(notify_fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL,
	           (struct sockaddr *)&notify_addr, notify_addrlen) != (ssize_t)len)
		return -1;
	return 0;
}

unsigned long long notify_monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ULL +
	       (unsigned long long)ts.tv_nsec / 1000ULL;
}
