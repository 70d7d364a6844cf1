#include "probe_io.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
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

/* A lookup in flight: the request and everything it points at, in one
 * block that the resolver's thread may still write after an abandon. */
struct lookup {
	struct gaicb cb;
	struct addrinfo hints;
	char host[256], port[16];
	struct lookup *next;    /* abandoned ones, kept reachable */
};

static struct lookup *abandoned;

int probe_io_resolve(const char *host, const char *port, const struct addrinfo *hints,
                     long long deadline, struct addrinfo **res, int *gai_err)
{
	struct lookup *l = calloc(1, sizeof(*l));
	struct gaicb *list[1];
	long long left;
	int e;

	*res = NULL;
	*gai_err = EAI_MEMORY;
	if (l == NULL)
		return -1;
	*gai_err = EAI_NONAME;
	if (strlen(host) >= sizeof(l->host) || strlen(port) >= sizeof(l->port)) {
		free(l);
		return -1;
	}
	memcpy(l->host, host, strlen(host) + 1);
	memcpy(l->port, port, strlen(port) + 1);
	l->hints = *hints;
	l->cb.ar_name = l->host;
	l->cb.ar_service = l->port;
	l->cb.ar_request = &l->hints;
	list[0] = &l->cb;
	if ((*gai_err = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL)) != 0) {
		free(l);
		return -1;
	}
	while ((e = gai_error(&l->cb)) == EAI_INPROGRESS) {
		struct timespec ts;

		if ((left = deadline - probe_io_now()) <= 0)
			break;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000;
		gai_suspend((const struct gaicb *const *)list, 1, &ts);
	}
	if (e == EAI_INPROGRESS && gai_cancel(&l->cb) != EAI_CANCELED &&
	    (e = gai_error(&l->cb)) == EAI_INPROGRESS) {
		/* Its thread still works on it: the block stays for it. */
		l->next = abandoned;
		abandoned = l;
		return PROBE_IO_TIMEOUT;
	}
	if (e == 0) {
		*res = l->cb.ar_result;
	} else if (l->cb.ar_result != NULL) {
		freeaddrinfo(l->cb.ar_result);
	}
	free(l);
	*gai_err = e;
	return e == 0 ? 0 : e == EAI_CANCELED || e == EAI_INPROGRESS ? PROBE_IO_TIMEOUT : -1;
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
		io->name_refused = tlsctx_client_name_refused(io->tc);
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
