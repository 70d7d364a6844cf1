/*
 * Fault injection for integration tests, loaded into portier with
 * LD_PRELOAD: the real binary, with one kernel answer changed.
 *
 * PORTIER_FAULT_ALERT_EAGAIN=1: the first send(2) of a TLS alert record
 * (content type 21, as TLS 1.2 sends close_notify) fails with EAGAIN once
 * per process, as it does when the client's socket buffer is full at that
 * moment. The socket stays writable, so a sender that retries gets it out
 * at once; one that forgets it never sends it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

static int fired;

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	static ssize_t (*real)(int, const void *, size_t, int);
	const unsigned char *p = buf;

	if (real == NULL)
		real = (ssize_t (*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
	if (!fired && len >= 5 && len < 64 && p[0] == 21 && p[1] == 3 &&
	    getenv("PORTIER_FAULT_ALERT_EAGAIN") != NULL) {
		static const char note[] = "send_fault: one TLS alert send made to fail with EAGAIN\n";
		fired = 1;
		/* Said on stderr, so the test knows the fault was met. */
		if (write(2, note, sizeof(note) - 1) < 0) {
			/* nothing to do: the test then fails for want of it */
		}
		errno = EAGAIN;
		return -1;
	}
	return real(fd, buf, len, flags);
}
