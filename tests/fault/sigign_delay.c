/*
 * For integration tests, loaded into portier with LD_PRELOAD: a call that
 * sets SIGTERM to SIG_IGN waits PORTIER_FAULT_SIGIGN_DELAY_MS first. A
 * worker on its way out ignores SIGTERM once its loop is over; the wait
 * widens the instant around that call, so that a SIGTERM the master passes
 * on again (a supervisor repeating it) surely comes while it lasts, which
 * on a real machine it does once in many stops.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

sighandler_t signal(int sig, sighandler_t handler)
{
	static sighandler_t (*real)(int, sighandler_t);
	const char *ms = getenv("PORTIER_FAULT_SIGIGN_DELAY_MS");

	if (real == NULL)
		real = (sighandler_t (*)(int, sighandler_t))dlsym(RTLD_NEXT, "signal");
	if (ms != NULL && sig == SIGTERM && handler == SIG_IGN) {
		long n = atol(ms);
		struct timespec ts = {n / 1000, (n % 1000) * 1000000L};

		nanosleep(&ts, NULL);
	}
	return real(sig, handler);
}
