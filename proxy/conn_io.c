#include "conn_int.h"
#include "tlsctx.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * The two halves' I/O: the client through TLS or not, the backend always
 * plain, each into or out of the connection's buffers, with the readiness
 * flags that spare a failing read(2).
 */

enum io { IO_OK, IO_WANT_READ, IO_WANT_WRITE, IO_EOF, IO_ERROR };

static enum io map_tls(enum tlsctx_io r)
{
	switch (r) {
	case TLSCTX_OK:         return IO_OK;
	case TLSCTX_WANT_READ:  return IO_WANT_READ;
	case TLSCTX_WANT_WRITE: return IO_WANT_WRITE;
	case TLSCTX_CLOSED:
	case TLSCTX_EOF:        return IO_EOF;
	default:                return IO_ERROR;
	}
}

static enum io fd_read(int fd, uint8_t *p, size_t n, size_t *got)
{
	ssize_t r = read(fd, p, n);

	*got = 0;
	if (r > 0) {
		*got = (size_t)r;
		return IO_OK;
	}
	if (r == 0)
		return IO_EOF;
	if (errno == EAGAIN || errno == EINTR)
		return IO_WANT_READ;
	return IO_ERROR;
}

static enum io fd_write(int fd, const uint8_t *p, size_t n, size_t *put)
{
	ssize_t r = send(fd, p, n, MSG_NOSIGNAL);

	*put = 0;
	if (r >= 0) {
		*put = (size_t)r;
		return IO_OK;
	}
	if (errno == EAGAIN || errno == EINTR)
		return IO_WANT_WRITE;
	return IO_ERROR;
}

static enum io client_read(struct conn *c, uint8_t *p, size_t n, size_t *got)
{
	if (c->tls) {
		enum tlsctx_io r = tlsctx_read(c->tls, p, n, got);
		/* The transport ended without close_notify: relayed as an
		 * orderly end all the same (docs/ARCHITECTURE.md), logged. */
		if (r == TLSCTX_EOF)
			c->c_trunc = 1;
		return map_tls(r);
	}
	return fd_read(c->cfd, p, n, got);
}

static enum io client_write(struct conn *c, const uint8_t *p, size_t n, size_t *put)
{
	if (c->tls)
		return map_tls(tlsctx_write(c->tls, p, n, put));
	return fd_write(c->cfd, p, n, put);
}

/* Our EOF to the client: close_notify inside TLS, FIN outside. */
static enum io client_shut(struct conn *c)
{
	if (c->tls)
		return map_tls(tlsctx_close_notify(c->tls));
	return shutdown(c->cfd, SHUT_WR) == 0 ? IO_OK : IO_ERROR;
}


int conn_client_shut(struct conn *c)
{
	enum io r;

	if (c->c_shut)
		return 0;
	r = client_shut(c);
	if (r == IO_ERROR)
		return -1;
	/* close_notify that found no room stays due: the client must get
	 * it, not a bare FIN (a truncation) when the deadline passes. */
	c->shut_wants_write = r == IO_WANT_WRITE || r == IO_WANT_READ;
	if (!c->shut_wants_write)
		c->c_shut = 1;
	return 0;
}

int conn_client_ready(const struct conn *c)
{
	return c->tls != NULL && tlsctx_ready(c->tls);
}

/* Bounded: a client flooding us during the linger gets 16 reads a wakeup. */
void conn_client_discard(struct conn *c)
{
	uint8_t sink[4096];
	size_t got;
	enum io r = IO_OK;

	for (int i = 0; i < 16 && r == IO_OK; i++)
		r = client_read(c, sink, sizeof(sink), &got);
	if (r == IO_EOF || r == IO_ERROR)
		c->c_eof = 1;
}

/* Client bytes into c->up until the buffer is full or the client has no
 * more. TLS may hold several records: read until it says WANT_*. */
int conn_pull_client(struct conn *c, struct buf *into)
{
	int moved = 0;

	while (!c->c_eof && !buf_full(into)) {
		size_t room, got;
		uint8_t *p;
		enum io r;

		/* Nothing known to be there: neither the socket nor TLS. */
		if (!c->c_rd && !conn_client_ready(c))
			break;
		if ((p = buf_space(into, &room)) == NULL)
			return -1;
		r = client_read(c, p, room, &got);
		c->read_wants_write = r == IO_WANT_WRITE;
		if (r == IO_WANT_READ || r == IO_WANT_WRITE)
			c->c_rd = 0;
		if (r == IO_OK) {
			buf_commit(into, got);
			moved = 1;
			/* A short read emptied the socket: the next would fail. */
			if (c->tls ? tlsctx_drained(c->tls) : got < room) {
				c->c_rd = 0;
				break;
			}
			continue;
		}
		if (into->len == 0)
			buf_reset(into);   /* keep nothing while idle */
		if (r == IO_EOF) {
			c->c_eof = 1;
			if (!c->first_eof)
				c->first_eof = "client";
			return 1;
		}
		if (r == IO_ERROR)
			return -1;
		break;
	}
	return moved;
}

int conn_push_client(struct conn *c)
{
	int moved = 0;

	while (c->down.len) {
		size_t put;
		enum io r = client_write(c, buf_peek(&c->down), c->down.len, &put);

		c->write_wants_read = r == IO_WANT_READ;
		if (r == IO_OK) {
			buf_consume(&c->down, put);
			c->ndown += put;
			moved = 1;
			continue;
		}
		if (r == IO_ERROR || r == IO_EOF)
			return -1;
		break;
	}
	return moved;
}

int conn_pull_backend(struct conn *c, struct buf *into)
{
	size_t room, got;
	uint8_t *p;
	enum io r;

	if (c->b_eof || buf_full(into) || !c->b_rd)
		return 0;
	if ((p = buf_space(into, &room)) == NULL)
		return -1;
	r = fd_read(c->bfd, p, room, &got);
	if (r == IO_OK) {
		buf_commit(into, got);
		/* A short read of a plain socket drained it. */
		if (got < room)
			c->b_rd = 0;
		return 1;
	}
	if (r == IO_WANT_READ)
		c->b_rd = 0;
	if (into->len == 0)
		buf_reset(into);
	if (r == IO_EOF) {
		c->b_eof = 1;
		if (!c->first_eof)
			c->first_eof = "backend";
		return 1;
	}
	return r == IO_ERROR ? -1 : 0;
}

static int push_backend(struct conn *c, struct buf *from)
{
	size_t put;
	enum io r;

	if (from->len == 0)
		return 0;
	r = fd_write(c->bfd, buf_peek(from), from->len, &put);
	if (r == IO_OK && put > 0) {
		buf_consume(from, put);
		if (from == &c->up)
			c->nup += put;
		return 1;
	}
	return r == IO_ERROR ? -1 : 0;
}

/* Every byte to the backend passes here: the PROXY header is the first of
 * them, and nothing follows until all of it is out. */
int conn_push_backend(struct conn *c, struct buf *from)
{
	int moved = 0, r;

	if (c->b_gone) {
		moved = from->len > 0 || c->pre.len > 0;
		buf_consume(from, from->len);
		buf_consume(&c->pre, c->pre.len);
		return moved;
	}

	if (c->pre.len) {
		if ((moved = push_backend(c, &c->pre)) < 0)
			return -1;
		if (c->pre.len)
			return moved;
	}
	if ((r = push_backend(c, from)) < 0)
		return -1;
	return moved | r;
}
