#include "conn_int.h"
#include "backend.h"
#include "cfg.h"
#include "filter.h"
#include "filter_ftp.h"
#include "ftp_data.h"
#include "proto.h"
#include "server.h"
#include "tlsctx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/*
 * RELAY and RESPOND: bytes both ways with backpressure and half-close,
 * through the listener's stream filter when it has one, and the canned
 * reply that ends a connection.
 */

#define RELAY_ROUNDS 16   /* then the other connections get their turn */

struct buf *conn_client_in(struct conn *c)
{
	return c->fx && c->fx->ops->up ? &c->fx->up_raw : &c->up;
}

struct buf *conn_backend_in(struct conn *c)
{
	return c->fx && c->fx->ops->down ? &c->fx->down_raw : &c->down;
}

void conn_relay_free(struct conn *c)
{
	if (c->fx == NULL)
		return;
	if (c->fx->ops->cleanup)
		c->fx->ops->cleanup(c->fx->state);
	buf_reset(&c->fx->up_raw);
	buf_reset(&c->fx->down_raw);
	free(c->fx);
	c->fx = NULL;
}

static const struct filter_ops *listener_filter(const struct conn *c)
{
	const struct cfg_listener *l = c->svc->cl;

	/* Only where portier holds the TLS layer: a plain listener is a
	 * byte pipe, and the backend may run TLS of its own inside it. */
	if (c->acme || c->ftp_slot ||
	    (l->mode != CFG_MODE_TLS && l->mode != CFG_MODE_STARTTLS))
		return NULL;
	return proto_get(l->proto)->filter;
}

static void buf_swap(struct buf *a, struct buf *b)
{
	struct buf t = *a;
	*a = *b;
	*b = t;
}

void conn_relay_start(struct conn *c, struct buf *from_backend)
{
	const struct filter_ops *f = listener_filter(c);

	/* Again after a redial (conn_redial.c): the filter has seen no byte
	 * from the backend and passed none of the client's to it; those it
	 * holds or has passed wait in its buffers for the new connection. */
	if (f != NULL && c->fx == NULL) {
		/* Only a filtered connection pays for the raw buffers. */
		if ((c->fx = calloc(1, sizeof(*c->fx) + f->state_size)) == NULL) {
			conn_close(c, CONN_WHY_NOMEM, "out of memory");
			return;
		}
		c->fx->ops = f;
		if (f == &filter_ftp && c->ftp)
			filter_ftp_setup(c->fx->state, ftp_ctl_env(c->ftp, c->fx->state));
		/* Every STARTTLS path starts the relay from the hand-over,
		 * which ate the backend's greeting. */
		if (f == &filter_smtp && c->svc->cl->mode == CFG_MODE_STARTTLS)
			filter_smtp_greeted(c->fx->state);
		if (f == &filter_pop3 && c->svc->cl->mode == CFG_MODE_STARTTLS)
			filter_pop3_greeted(c->fx->state);
		/* Client bytes buffered before the relay pass the filter too. */
		if (f->up)
			buf_swap(&c->up, &c->fx->up_raw);
	}
	if (from_backend && from_backend->len) {
		if (buf_append(conn_backend_in(c), buf_peek(from_backend),
		               from_backend->len) < 0) {
			conn_close(c, CONN_WHY_PROTOCOL,
			           "backend sent too much during the hand-over");
			return;
		}
		buf_reset(from_backend);
	}
	c->ndown_relay = c->ndown;
	conn_state(c, CONN_RELAY);
	conn_progress(c);
}

/* Runs the filter both ways; 1 if anything moved, 0 if not, -1 closed. */
static int run_filter(struct conn *c)
{
	struct conn_filter *fx = c->fx;
	const char *why = NULL;
	uint32_t before[4] = {fx->up_raw.len, c->up.len, fx->down_raw.len, c->down.len};

	if ((fx->ops->up && fx->ops->up(fx->state, &fx->up_raw, &c->up, &c->down,
	                                c->c_eof, &why) < 0) ||
	    (fx->ops->down && fx->ops->down(fx->state, &fx->down_raw, &c->down,
	                                    &c->up, c->b_eof, &why) < 0)) {
		char text[160];
		snprintf(text, sizeof(text), "%s: %s", fx->ops->name, why ? why : "refused");
		conn_close_aborted(c, CONN_WHY_FILTER, text);
		return -1;
	}
	return before[0] != fx->up_raw.len || before[1] != c->up.len ||
	       before[2] != fx->down_raw.len || before[3] != c->down.len;
}

/* The PROXY header counts as the client's: no FIN to the backend before it. */
static int client_done(const struct conn *c)
{
	return c->c_eof && c->up.len == 0 && c->pre.len == 0 &&
	       (c->fx == NULL || c->fx->up_raw.len == 0);
}

static int backend_done(const struct conn *c)
{
	return c->b_eof && c->down.len == 0 && (c->fx == NULL || c->fx->down_raw.len == 0);
}

void conn_relay_watch(const struct conn *c, int *ce, int *be)
{
	const struct buf *cin = conn_client_in((struct conn *)c);
	const struct buf *bin = conn_backend_in((struct conn *)c);

	if (!c->c_eof && !buf_full(cin))
		*ce |= c->read_wants_write ? EV_WRITE : EV_READ;
	if (c->down.len || c->shut_wants_write || (backend_done(c) && !c->c_shut))
		*ce |= c->write_wants_read ? EV_READ : EV_WRITE;
	if (!c->b_eof && !buf_full(bin))
		*be |= EV_READ;
	if (c->up.len || c->pre.len)
		*be |= EV_WRITE;
}

/* The backend ended before its first byte reached the client: for the
 * client that is a backend that is down, and it gets the protocol's
 * refusal (SMTP 421, IMAP BYE, HTTP 502, ...) and the refusal's log line,
 * not an empty session that looks like a normal close. Only where portier
 * holds the client's TLS at once (mode = tls) or answers for the backend
 * (ACME): a plain listener is a byte pipe, and after a STARTTLS hand-over
 * the backend has spoken, but for LDAP, whose backend has no greeting for
 * the hand-over to take (there the client has had portier's pre-TLS
 * replies, which ndown_relay leaves out). Not on tcp, which has no words,
 * and where a backend that never answers may be the protocol (syslog over
 * TLS); nor once the client has ended its own stream: a backend that
 * closes then answers the client's close (a client that checked the
 * certificate and left, half a request), it is not down. An ACME
 * challenge is whole before it goes to the backend, and its answer owed
 * whatever the client did since. 1 if refused, or put off until the
 * client speaks (REDIAL). */
static int refuse_unanswered(struct conn *c, const char *why)
{
	const struct cfg_listener *l = c->svc->cl;
	const struct proto *p = proto_get(l->proto);
	int greetless = l->mode == CFG_MODE_STARTTLS && p->starttls != NULL &&
	                p->starttls->backend_greeting == NULL;

	const char *refusal = conn_refusal(c);

	if (c->ndown != c->ndown_relay || c->down.len != 0 || c->c_shut || c->ftp_slot ||
	    (c->c_eof && !c->acme) ||
	    (l->mode != CFG_MODE_TLS && !greetless && !c->acme) ||
	    (refusal == NULL && p->starttls == NULL))
		return 0;

	/* A client that has not spoken yet gets a new backend when it does
	 * (conn_redial.c). */
	if (!c->acme && conn_redial_park(c, why))
		return 1;
	conn_refuse(c, c->acme ? "acme_backend closed without a reply" : why);
	return 1;
}

/* The client's first bytes are about to go to a backend that has sent
 * nothing and has not been seen to end: the moment before which its end
 * is still an unused connection's (refuse_unanswered). Only on a TLS
 * client's connection of a protocol whose client speaks first and that
 * has words for a refusal (HTTP, LDAP), the only kind REDIAL keeps; a
 * false yes costs one read(2), once per connection. */
static int first_bytes_due(const struct conn *c)
{
	const struct proto *p;

	if (c->up.len == 0 || c->nup != 0 || c->b_eof || c->b_gone || c->redialed ||
	    c->tls == NULL || c->acme || c->ftp_slot || c->ndown != c->ndown_relay ||
	    c->down.len != 0)
		return 0;
	p = proto_get(c->svc->cl->proto);
	return (p->refusal != NULL || p->starttls != NULL) &&
	       (p->starttls == NULL || p->starttls->backend_greeting == NULL);
}

/* The backend reset the connection: the client's ends without an orderly
 * goodbye. A TLS client sees no close_notify and can tell a cut-off reply
 * from a complete one; a plaintext client only could from a reset, not
 * from a FIN (an HTTP/1.0 body delimited by the close would look whole).
 * Before its first byte it is a refusal instead (refuse_unanswered). */
static void backend_reset(struct conn *c)
{
	if (refuse_unanswered(c, "backend reset the connection before sending a byte"))
		return;
	if (c->tls == NULL && !c->closing)
		backend_abort(c->cfd);     /* SO_LINGER 0: close sends a reset */
	conn_close(c, CONN_WHY_BACKEND_RESET, "backend reset");
}

/* The backend's bytes into the relay: 1 if any moved, 0 if none, -1 if it
 * reset the connection (backend_reset has ended or refused it). */
static int pull_backend(struct conn *c)
{
	int r = conn_pull_backend(c, conn_backend_in(c));

	if (r < 0)
		backend_reset(c);
	return r;
}

/* 1 if the backend has ended before its first byte and that refused the
 * client or put it off until it speaks (refuse_unanswered). */
static int backend_ended_unanswered(struct conn *c)
{
	return backend_done(c) &&
	       refuse_unanswered(c, "backend closed the connection before sending a byte");
}

/* Moves bytes both ways until nothing moves (or the round limit: TLS bytes
 * left in memory then go on the run queue), and passes half-closes on. */
void conn_relay(struct conn *c)
{
	struct ev_loop *loop = c->svc->srv->loop;
	int moved, r;

	for (int round = 0; round < RELAY_ROUNDS; round++) {
		int to_client = 0;

		moved = 0;
		if ((r = conn_pull_client(c, conn_client_in(c))) < 0) {
			conn_close_aborted(c, CONN_WHY_CLIENT_RESET, "client reset");
			return;
		}
		moved |= r;
		if ((r = pull_backend(c)) < 0)
			return;
		moved |= r;
		to_client |= r;
		if (c->fx && (r = run_filter(c)) != 0) {
			if (r < 0)
				return;
			moved = 1;
		}
		if (first_bytes_due(c)) {
			/* Has the backend ended meanwhile? Its FIN and the
			 * client's first bytes can come in one wakeup, the
			 * client's served first (b_rd not yet set): sent, the
			 * bytes would meet a closed socket, and an unused
			 * connection's end (conn_redial.c) would look like a
			 * backend that ended after a request. One read(2) per
			 * connection, before its first byte goes. */
			c->b_rd = 1;
			if ((r = pull_backend(c)) < 0)
				return;
			moved |= r;
			to_client |= r;
			if (backend_ended_unanswered(c))
				return;
		}
		if ((r = conn_push_backend(c, &c->up)) < 0) {
			if (errno != EPIPE) {
				backend_reset(c);
				return;
			}
			/* EPIPE, not ECONNRESET: the backend's FIN came before
			 * its reset. It ended its stream in order and then
			 * refused what the client sent after (a kernel resets
			 * bytes sent to a closed socket). Its reply is whole,
			 * if not all read yet: it still goes to the client,
			 * ending in its EOF as usual, and the client's late
			 * bytes, which have nowhere to go, are dropped. */
			c->b_gone = 1;
			c->b_shut = 1;
			r = conn_push_backend(c, &c->up);
		}
		moved |= r;
		if (c->ftp_slot && c->c_trunc && client_done(c) && !c->b_shut) {
			/* An FTP upload that ends without close_notify may be
			 * cut: the server must not store it as complete. */
			conn_close_aborted(c, CONN_WHY_CLIENT_RESET,
			                   "data client closed without close_notify");
			return;
		}
		if (client_done(c) && !c->b_shut) {
			/* A backend that has closed needs no FIN: we close soon. */
			if (!c->b_eof)
				shutdown(c->bfd, SHUT_WR);
			c->b_shut = 1;
		}
		if ((r = conn_push_client(c)) < 0) {
			conn_close_aborted(c, CONN_WHY_CLIENT_RESET, "client reset");
			return;
		}
		moved |= r;
		to_client |= r;
		if (backend_ended_unanswered(c))
			return;
		if (backend_done(c) && !c->c_shut && conn_client_shut(c) < 0) {
			conn_close_aborted(c, CONN_WHY_CLIENT_RESET, "client reset");
			return;
		}
		if (c->ftp_slot && backend_done(c) && c->c_shut)
			ftp_slot_delivered(c->ftp_slot);
		if (c->b_gone && backend_done(c) && c->c_shut && !c->c_eof) {
			/* The whole reply is out and the backend refuses more:
			 * what the client still sends has nowhere to go. Read it
			 * out within RESPOND's fixed linger rather than hold the
			 * connection in RELAY, where every dropped byte would
			 * renew idle_timeout. */
			c->close_reason = "backend closed";
			c->close_why = CONN_WHY_BACKEND_CLOSED;
			conn_state(c, CONN_RESPOND);
			conn_progress(c);
			return;
		}
		if (c->acme && c->c_shut && c->up.len == 0) {
			/* The one ACME response is out. The client was not read
			 * after its request head: read out what it sent since,
			 * so that closing does not reset the response. */
			c->c_eof = 0;
			c->close_reason = "acme reply";
			c->close_why = CONN_WHY_REPLIED;
			conn_state(c, CONN_RESPOND);
			conn_progress(c);
			return;
		}
		if (client_done(c) && backend_done(c) && c->c_shut) {
			char why[64];
			int client_first = c->first_eof && c->first_eof[0] == 'c';
			snprintf(why, sizeof(why), "%s closed%s", c->first_eof,
			         client_first && c->c_trunc ? " without close_notify" : "");
			conn_close(c, client_first ? CONN_WHY_CLIENT_CLOSED
			                           : CONN_WHY_BACKEND_CLOSED, why);
			return;
		}
		if (!moved)
			break;
		/* Once the backend refuses more (b_gone), what the client sends
		 * is read only to be dropped: that is no progress, or a client
		 * that never reads its reply but keeps sending would hold the
		 * connection past idle_timeout for good. */
		if (!c->b_gone || to_client)
			c->last = ev_now(loop);
	}
}

void conn_respond_io(struct conn *c)
{
	if (conn_push_client(c) < 0) {
		conn_close(c, CONN_WHY_CLIENT_RESET, "client went away during reply");
		return;
	}
	if (c->down.len == 0 && !c->c_shut && conn_client_shut(c) < 0) {
		conn_close(c, CONN_WHY_CLIENT_RESET, "client went away during reply");
		return;
	}
	/* Read out what the client still sends, so closing does not reset
	 * the connection under our reply. */
	if (c->c_shut && !c->c_eof)
		conn_client_discard(c);
	if (c->c_shut && c->c_eof)
		conn_close(c, c->close_why, conn_respond_reason(c));
}
