#ifndef PORTIER_PROBE_IO_H
#define PORTIER_PROBE_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tlsctx.h"

/*
 * One connection of `portier probe`: a non-blocking socket driven with
 * poll() against a deadline (milliseconds of CLOCK_MONOTONIC), never an
 * unbounded wait, and the bytes read from it but not used yet. Plaintext
 * until probe_io_tls(), after which it only closes.
 */

#define PROBE_IO_BUF 16384

struct probe_io {
	int fd;
	struct tlsconn *tc;
	uint8_t in[PROBE_IO_BUF];
	size_t len;             /* bytes in in[] */
	int eof;                /* the server closed its side */
	int tls_spoken;         /* a failed handshake still got TLS bytes
	                           back (an alert): the server speaks TLS */
	int name_refused;       /* that alert was unrecognized_name: no
	                           certificate for the name sent */
};

/* Results of the calls below (besides 0). */
#define PROBE_IO_REFUSED  (-2)   /* connect: nothing listens */
#define PROBE_IO_TIMEOUT  (-3)   /* the deadline passed */
#define PROBE_IO_ERROR    (-1)   /* anything else; errno or err says */

/* probe_io_now(): the monotonic clock in ms. */
long long probe_io_now(void);

/* probe_io_connect(io, sa, len, deadline): connect io to sa. 0 or one of
 * the results above (errno set on ERROR). */
int probe_io_connect(struct probe_io *io, const struct sockaddr *sa, socklen_t len,
                     long long deadline);

/* probe_io_send(io, p, n, deadline): all n bytes, plaintext. 0 or -1/-3. */
int probe_io_send(struct probe_io *io, const void *p, size_t n, long long deadline);

/* probe_io_fill(io, deadline): read more bytes into io->in (room must be
 * left). 1 got some, 0 end of stream (a close or a reset), -1 error (a
 * full buffer too), PROBE_IO_TIMEOUT. */
int probe_io_fill(struct probe_io *io, long long deadline);

/* probe_io_take(io, n): drop the first n bytes of io->in (used). */
void probe_io_take(struct probe_io *io, size_t n);

/* probe_io_tls(io, t, sni, version, deadline, err, errlen, not_tls):
 * a TLS handshake as client of t over io, sending sni, offering exactly
 * version when it is not 0. 0 on success; else -1 or PROBE_IO_TIMEOUT
 * with the reason in err and *not_tls set when the server answered with
 * something else than TLS (io->tls_spoken and io->name_refused say more). */
int probe_io_tls(struct probe_io *io, struct tlsctx *t, const char *sni, uint16_t version,
                 long long deadline, char *err, size_t errlen, int *not_tls);

struct addrinfo;

/* probe_io_resolve(host, port, hints, deadline, res, gai_err):
 * getaddrinfo with a deadline (getaddrinfo itself waits as long as
 * resolv.conf says, 10 s and more for a dead resolver). 0 with *res
 * (freeaddrinfo); -1 with *gai_err (for gai_strerror); PROBE_IO_TIMEOUT.
 * A lookup still running at the deadline is abandoned to its thread, its
 * memory kept for it. */
int probe_io_resolve(const char *host, const char *port, const struct addrinfo *hints,
                     long long deadline, struct addrinfo **res, int *gai_err);

/* probe_io_close(io): close_notify when TLS is up, then close; no-op on a
 * closed io. */
void probe_io_close(struct probe_io *io);

#endif
