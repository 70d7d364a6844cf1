/*
 * For integration tests, loaded into portier with LD_PRELOAD: a connect(2)
 * to the syslog socket /dev/log goes to $PORTIER_FAULT_DEVLOG instead, a
 * datagram socket the test reads. The real binary runs `log = syslog`
 * unchanged (its connect, reconnect and send) without the test touching
 * the machine's /dev/log.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

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
		return real(fd, (const struct sockaddr *)&un, sizeof(un));
	}
	return real(fd, sa, len);
}
