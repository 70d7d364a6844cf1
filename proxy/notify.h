#ifndef PORTIER_NOTIFY_H
#define PORTIER_NOTIFY_H

/*
 * Telling a service manager how the daemon is doing: systemd's readiness
 * protocol (sd_notify(3)), spoken without libsystemd. Each message is one
 * datagram of newline-separated KEY=VALUE lines (READY=1, RELOADING=1,
 * STOPPING=1, STATUS=...) sent to the unix socket named by $NOTIFY_SOCKET:
 * a path, or an abstract name written with a leading '@'.
 *
 * Sending never waits: a manager that does not read loses a message, the
 * master is never stalled by it. Without $NOTIFY_SOCKET every call is a
 * no-op. One socket per process; only the master speaks.
 */

/* notify_open(): read $NOTIFY_SOCKET and make the socket to speak to it.
 * 1 if there is a manager to tell, 0 if none ($NOTIFY_SOCKET unset or
 * empty), -1 (errno) if it names nothing portier can reach (e.g. a vsock
 * address, a name too long) or no socket can be made; notify_state() is
 * then a no-op. */
int notify_open(void);

/* notify_close(): forget the manager (in a worker after the fork, and at
 * the master's end). */
void notify_close(void);

/* notify_state(state, fmt, ...): one message: state (one or more lines,
 * e.g. "READY=1" or "RELOADING=1\nMONOTONIC_USEC=42"; may be empty), then,
 * when fmt is not NULL, a STATUS= line of fmt's text, in which every
 * control byte becomes '?' (one line whatever the arguments hold) and
 * which is cut at 1000 bytes. 0 (also when there is no manager), or -1
 * (errno) if the message could not be sent at once. */
int notify_state(const char *state, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* notify_monotonic_usec(): CLOCK_MONOTONIC in microseconds, as
 * MONOTONIC_USEC= wants it beside RELOADING=1. */
unsigned long long notify_monotonic_usec(void);

#endif
