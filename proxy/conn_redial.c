#include "conn.h"
#include "conn_int.h"
#include "cfg.h"
#include "log.h"
#include "proto.h"
#include "server.h"

#include <stdio.h>

/*
 * REDIAL: the backend closed a connection the client had not used yet.
 *
 * In a protocol where the client speaks first (HTTP, LDAP), a backend that
 * ends the connection before the client's first byte is no sign that it is
 * down: a web server closes a browser's preconnected socket at its own
 * idle limit (nginx's client_header_timeout, Apache's RequestReadTimeout),
 * slapd an idle one at idletimeout. Refusing there (HTTP 502, an LDAP
 * notice of disconnection) tells a client that has asked nothing that the
 * service failed: a browser shows the 502 as the answer to the request it
 * sends next. Passing the close on would be quiet but would also stop a
 * down backend being told in the protocol's words: a backend that accepts
 * and closes at once beats a remote client's request to portier.
 *
 * So the client keeps its connection, with no backend, until it speaks:
 * its first bytes wait in the client buffer while a new backend connection
 * opens (CONNECTING, then the relay as before). A backend that is down now
 * fails that connect, or ends it before those bytes reach it, and the
 * client is refused then, answering what it asked. A client that closes
 * first closes quietly; one that stays silent meets idle_timeout, counted
 * from its last activity, as in the relay. One redial per connection at
 * most (c->redialed): after it the client's bytes are waiting or relayed,
 * which keeps it from here too, but the bit does not depend on every
 * filter counting what it answers for the backend.
 *
 * A worker that drains keeps no client here: it ends those it holds when
 * the drain begins (conn_drain), and parks none after.
 */

int conn_redial_park(struct conn *c, const char *why)
{
	const struct cfg_listener *l = c->svc->cl;
	const struct starttls_driver *d = proto_get(l->proto)->starttls;
	int waiting;

	/* The server speaks first: a backend that ends before its greeting
	 * is down, and refused at once. */
	if (d != NULL && d->backend_greeting != NULL)
		return 0;
	/* A byte of the client's has gone to the backend (or was dropped
	 * there: b_gone), or the backend has sent one (part of a reply): not
	 * an unused connection. Client bytes that wait, not yet sent, are
	 * the new connection's first (the backend's end and a first request
	 * can come in one wakeup); so is the PROXY header, made anew. */
	if (c->redialed || c->nup != 0 || c->b_gone || c->c_eof ||
	    c->ndown != c->ndown_relay || c->down.len != 0 ||
	    (c->fx && c->fx->down_raw.len != 0))
		return 0;
	waiting = c->up.len != 0 || conn_client_in(c)->len != 0;
	if (c->svc->srv->draining && !waiting) {
		/* No client kept for a new backend connection by a worker
		 * that drains: it would hold the drain for idle_timeout, and
		 * then go to the configuration being replaced. The end is
		 * passed on, as a plain listener's would be: the client asked
		 * nothing, so it is owed no refusal. (A request that waits is
		 * served, as one on a keep-alive connection would be.) */
		char text[160];
		enum conn_why end = c->b_eof ? CONN_WHY_BACKEND_CLOSED : CONN_WHY_BACKEND_RESET;

		snprintf(text, sizeof(text), "%s; not kept while draining", why);
		conn_backend_drop(c);
		conn_close(c, end, text);
		return 1;
	}
	if (waiting)
		log_info("[%s] client=%s: %s, and the client's first bytes had not reached "
		         "it: a new connection for them", l->name, c->peer, why);
	else
		log_info("[%s] client=%s: %s, and the client has sent none yet: "
		         "a new connection when it does", l->name, c->peer, why);
	conn_backend_drop(c);
	c->redialed = 1;
	c->b_shut = 0;
	c->first_eof = NULL;
	conn_state_since(c, CONN_REDIAL, c->last);
	/* Bytes that wait start the new connection now: no event will. */
	if (waiting)
		conn_progress(c);
	return 1;
}

void conn_redial_watch(const struct conn *c, int *ce, int *be)
{
	if (!buf_full(conn_client_in((struct conn *)c)))
		*ce = c->read_wants_write ? EV_WRITE : EV_READ;
	*be = 0;
}

void conn_redial_io(struct conn *c)
{
	struct buf *in = conn_client_in(c);

	if (conn_pull_client(c, in) < 0) {
		conn_close(c, CONN_WHY_CLIENT_RESET, "client reset");
		return;
	}
	/* Bytes a filter has passed wait in `up` (conn_redial_park). */
	if (in->len != 0 || c->up.len != 0) {
		conn_start_backend(c, &c->svc->cl->backend);
		return;
	}
	if (c->c_eof)
		conn_close(c, CONN_WHY_CLIENT_CLOSED, c->c_trunc ?
		           "client closed without close_notify; the backend had closed its "
		           "unused connection" :
		           "client closed; the backend had closed its unused connection");
}

void conn_redial_expire(struct conn *c, double limit)
{
	char why[64], lim[24];

	snprintf(why, sizeof(why), "idle for %s", conn_limit_text(lim, sizeof(lim), limit));
	conn_close(c, CONN_WHY_IDLE, why);
}

/* Nothing is in flight either way: ending it loses the client nothing (its
 * next request opens a connection to the new workers), where keeping it
 * would hold the old worker for idle_timeout and redial the backend of the
 * configuration being replaced. */
void conn_redial_drain(struct conn *c)
{
	conn_close(c, CONN_WHY_SHUTDOWN, "draining; the backend had closed its unused connection");
}
