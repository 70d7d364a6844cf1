/* notify: the sd_notify datagram protocol spoken by hand: the address forms
 * of $NOTIFY_SOCKET (path, '@' abstract, refused ones), one datagram per
 * call, STATUS= kept to one line and cut at its bound, and a full manager
 * costing a lost message, never a wait. */
#include "notify.h"
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GUARD_SECONDS 60

/* A manager's socket: bound at path, or at the abstract name when path
 * begins with '@'. */
static int manager(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	else
		n++;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa,
	                   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0) {
		perror("manager");
		exit(1);
	}
	return fd;
}

/* The next datagram on fd, NUL-terminated, or "" if none is waiting. */
static const char *next(int fd, char *buf, size_t len)
{
	ssize_t r = recv(fd, buf, len - 1, MSG_DONTWAIT);

	buf[r > 0 ? r : 0] = '\0';
	return buf;
}

static void test_no_manager(void)
{
	unsetenv("NOTIFY_SOCKET");
	CHECK(notify_open() == 0);
	CHECK(notify_state("READY=1", NULL) == 0);     /* a no-op */
	setenv("NOTIFY_SOCKET", "", 1);
	CHECK(notify_open() == 0);
}

static void test_refused_addresses(void)
{
	char longpath[200];

	setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
	CHECK(notify_open() == -1 && errno == EAFNOSUPPORT);
	setenv("NOTIFY_SOCKET", "@", 1);
	CHECK(notify_open() == -1 && errno == EAFNOSUPPORT);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	CHECK(notify_open() == -1);
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longpath, 1);
	CHECK(notify_open() == -1 && errno == ENAMETOOLONG);
	/* A path and its NUL must fit sun_path: 107 bytes do, 108 do not. */
	longpath[sizeof(((struct sockaddr_un *)0)->sun_path)] = '\0';
	setenv("NOTIFY_SOCKET", longpath, 1);
	CHECK(notify_open() == -1 && errno == ENAMETOOLONG);
	longpath[sizeof(((struct sockaddr_un *)0)->sun_path) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longpath, 1);
	CHECK(notify_open() == 1);
	notify_close();
	CHECK(notify_state("READY=1", NULL) == 0);     /* nothing to tell */
}

static void test_path(const char *dir)
{
	char path[200], buf[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = manager(path);
	setenv("NOTIFY_SOCKET", path, 1);
	CHECK(notify_open() == 1);
	CHECK(notify_state("READY=1", "serving: %d listeners", 3) == 0);
	CHECK_STR(next(fd, buf, sizeof(buf)), "READY=1\nSTATUS=serving: 3 listeners");
	CHECK(notify_state("RELOADING=1\nMONOTONIC_USEC=42", NULL) == 0);
	CHECK_STR(next(fd, buf, sizeof(buf)), "RELOADING=1\nMONOTONIC_USEC=42");
	CHECK(notify_state(NULL, "only a status") == 0);
	CHECK_STR(next(fd, buf, sizeof(buf)), "STATUS=only a status");
	/* A status is one line whatever its arguments hold. */
	CHECK(notify_state("READY=1", "refused: %s", "a\nREADY=0\r\x01") == 0);
	CHECK_STR(next(fd, buf, sizeof(buf)), "READY=1\nSTATUS=refused: a?READY=0??");
	CHECK_STR(next(fd, buf, sizeof(buf)), "");
	notify_close();
	CHECK(notify_state("STOPPING=1", NULL) == 0);  /* closed: a no-op */
	CHECK_STR(next(fd, buf, sizeof(buf)), "");
	close(fd);
	unlink(path);
}

static void test_abstract_and_bounds(void)
{
	char name[64], buf[4096], big[3000];
	int fd;

	snprintf(name, sizeof(name), "@portier-test-notify-%ld", (long)getpid());
	fd = manager(name);
	setenv("NOTIFY_SOCKET", name, 1);
	CHECK(notify_open() == 1);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(notify_state("READY=1", "%s", big) == 0);
	next(fd, buf, sizeof(buf));
	CHECK(strncmp(buf, "READY=1\nSTATUS=xxx", 18) == 0);
	CHECK(strlen(buf) == strlen("READY=1\nSTATUS=") + 1000);
	/* Cut at 1,000 bytes of the status itself, none of them the NUL. */
	CHECK(strspn(buf + strlen("READY=1\nSTATUS="), "x") == 1000);
	/* The state (before STATUS=) leaves room for a whole status: 1,031
	 * bytes go, 1,032 do not. */
	memset(big, 'S', 1032);
	big[1031] = '\0';
	CHECK(notify_state(big, NULL) == 0);
	CHECK(strlen(next(fd, buf, sizeof(buf))) == 1031);
	big[1031] = 'S';
	big[1032] = '\0';
	errno = 0;
	CHECK(notify_state(big, NULL) == -1 && errno == EMSGSIZE);
	CHECK_STR(next(fd, buf, sizeof(buf)), "");
	/* A full queue loses the message at once; the call never waits. */
	{
		int sent = 0, r = 0;
		time_t t0 = time(NULL);
		for (int i = 0; i < 100000 && (r = notify_state("X=1", NULL)) == 0; i++)
			sent++;
		CHECK(r == -1 && errno == EAGAIN);
		CHECK(sent > 0 && time(NULL) - t0 < 10);
	}
	notify_close();
	close(fd);
}

/* The socket never takes descriptor 0, 1 or 2, even when they are free
 * (a daemon started with them closed): whatever opens next must not land
 * on stderr. Checked in a child, which closes them. */
static void test_low_fds(void)
{
	for (int lowest = 0; lowest <= 2; lowest++) {
		pid_t pid = fork();
		int st = -1;

		if (pid == 0) {
			for (int f = lowest; f <= 2; f++)
				close(f);
			setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1);
			if (notify_open() != 1)
				_exit(2);
			for (int f = lowest; f <= 2; f++)
				if (fcntl(f, F_GETFD) != -1)
					_exit(3);
			_exit(0);
		}
		CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
}

static void test_monotonic(void)
{
	struct timespec ts;
	unsigned long long a, b, us;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	a = (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
	us = notify_monotonic_usec();
	clock_gettime(CLOCK_MONOTONIC, &ts);
	b = (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
	CHECK(a <= us && us <= b);
}

int main(void)
{
	char dir[] = "/tmp/portier-test-notify-XXXXXX";

	alarm(GUARD_SECONDS);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_no_manager();
	test_refused_addresses();
	test_path(dir);
	test_abstract_and_bounds();
	test_low_fds();
	test_monotonic();
	rmdir(dir);
	return CHECK_DONE();
}
