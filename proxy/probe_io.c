#include "probe_io.h"

#include <errno.h>
#include <stdio.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

long long probe_io_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on io's socket until deadline: 1 ready, PROBE_IO_TIMEOUT,
 * -1 error. */
static int wait_for(struct probe_io *io, short events, long long deadline)
{
	struct pollfd pfd = { io->fd, events, 0 };
	long long left;
	int r;

	for (;;) {
		left = deadline - probe_io_now();
		if (left <= 0)
			return PROBE_IO_TIMEOUT;
		r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

int probe_io_connect(struct probe_io *io, const struct sockaddr *sa, socklen_t len,
                     long long deadline)
{
	int err = 0, r;
	socklen_t elen = sizeof(err);

	memset(io, 0, sizeof(*io));
	if ((io->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(io->fd, sa, len) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return errno == ECONNREFUSED ? PROBE_IO_REFUSED : -1;
	if ((r = wait_for(io, POLLOUT, deadline)) != 1)
		return r;
	if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		return -1;
	if (err == 0)
		return 0;
	errno = err;
	return err == ECONNREFUSED ? PROBE_IO_REFUSED : -1;
}

int probe_io_send(struct probe_io *io, const void *p, size_t n, long long deadline)
{
	const uint8_t *b = p;
	ssize_t k;
	int r;

	while (n > 0) {
		k = send(io->fd, b, n, MSG_NOSIGNAL);
		if (k > 0) {
			b += k;
			n -= (size_t)k;
			continue;
		}
		if (k < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if ((r = wait_for(io, POLLOUT, deadline)) != 1)
			return r;
	}
	return 0;
}

int probe_io_fill(struct probe_io *io, long long deadline)
{
	ssize_t k;
	int r;

	if (io->len >= sizeof(io->in))
		return -1;
	for (;;) {
		k = recv(io->fd, io->in + io->len, sizeof(io->in) - io->len, 0);
		if (k > 0) {
			io->len += (size_t)k;
			return 1;
		}
		/* A reset ends the stream as a close does: it is how a TLS
		 * server (stunnel) answers a plaintext request. */
		if (k == 0 || errno == ECONNRESET) {
			io->eof = 1;
			return 0;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -1;
		if ((r = wait_for(io, POLLIN, deadline)) != 1)
			return r;
	}
}

void probe_io_take(struct probe_io *io, size_t n)
{
	if (n >= io->len) {
		io->len = 0;
		return;
	}
	memmove(io->in, io->in + n, io->len - n);
	io->len -= n;
}

int probe_io_tls(struct probe_io *io, struct tlsctx *t, const char *sni, uint16_t version,
                 long long deadline, char *err, size_t errlen, int *not_tls)
{
	enum tlsctx_io r;
	int w;

	*not_tls = 0;
	if ((io->tc = tlsctx_connect(t, io->fd, sni)) == NULL ||
	    (version != 0 && tlsctx_pin_version(io->tc, version) < 0)) {
		snprintf(err, errlen, "cannot set up a TLS client (out of memory?)");
		return -1;
	}
	for (;;) {
		r = tlsctx_handshake(io->tc);
		if (r == TLSCTX_OK)
			return 0;
		if (r == TLSCTX_WANT_READ || r == TLSCTX_WANT_WRITE) {
			w = wait_for(io, r == TLSCTX_WANT_READ ? POLLIN : POLLOUT, deadline);
			if (w == PROBE_IO_TIMEOUT) {
				snprintf(err, errlen, "no answer to the TLS handshake in time");
				return PROBE_IO_TIMEOUT;
			}
			if (w < 0) {
				snprintf(err, errlen, "%s", strerror(errno));
				return -1;
			}
			tlsctx_readable(io->tc);
			continue;
		}
		if (r == TLSCTX_EOF || r == TLSCTX_CLOSED) {
			snprintf(err, errlen, "the server closed the connection during the handshake");
			return -1;
		}
		tlsctx_client_failure(io->tc, err, errlen, not_tls);
		io->tls_spoken = !*not_tls && tlsctx_client_spoke(io->tc);
		return -1;
	}
}

void probe_io_close(struct probe_io *io)
{
	if (io->fd < 0)
		return;
	if (io->tc != NULL) {
		(void)tlsctx_close_notify(io->tc);
		tlsctx_conn_free(io->tc);
		io->tc = NULL;
	}
	close(io->fd);
	io->fd = -1;
}
