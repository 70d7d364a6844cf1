#include "conn.h"
#include "conn_int.h"
#include "backend.h"
#include "cfg.h"
#include "log.h"
#include "redirect.h"
#include "server.h"
#include "tlsctx.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONN_MAGIC 0x706f7274u   /* "port" */
#define LINGER_MS 2000           /* reading out a client after our reply */


static void on_handshake(struct conn *c);

static const struct cfg_listener *cl_of(const struct conn *c)
{
	return c->svc->cl;
}

/* ---- state, watchers, timer ---- */

static unsigned state_timeout_ms(const struct conn *c)
{
	const struct cfg_listener *l = cl_of(c);

	switch (c->state) {
	case CONN_HANDSHAKE:  return l->handshake_timeout_ms;
	case CONN_HTTPHEAD:   return l->handshake_timeout_ms;
	case CONN_CONNECTING: return l->connect_timeout_ms;
	case CONN_RESPOND:    return LINGER_MS;
	case CONN_PRELUDE:    return l->prelude_timeout_ms;
	case CONN_UPGRADING:  return l->handshake_timeout_ms;
	case CONN_HANDOVER:   return l->connect_timeout_ms;
	default:              return l->idle_timeout_ms;
	}
}

void conn_state(struct conn *c, enum conn_state st)
{
	struct ev_loop *loop = c->svc->srv->loop;

	c->state = st;
	c->last = ev_now(loop);
	ev_timer_stop(loop, &c->timer);
	ev_timer_set(&c->timer, state_timeout_ms(c) / 1000.0, 0.);
	ev_timer_start(loop, &c->timer);
}

static void set_io(struct ev_loop *loop, ev_io *w, int fd, int events)
{
	if (fd < 0 || (ev_is_active(w) && (w->events & (EV_READ | EV_WRITE)) == events))
		return;
	ev_io_stop(loop, w);
	if (events == 0)
		return;
	ev_io_set(w, fd, events);
	ev_io_start(loop, w);
}

/* The one place watchers are started and stopped: each side's wanted
 * events follow from the state, the buffers and the EOF flags. */
void conn_watch(struct conn *c)
{
	int ce = 0, be = 0;
	int may_read_client = !c->c_eof && !buf_full(&c->up);

	switch (c->state) {
	case CONN_HANDSHAKE:
		ce = c->read_wants_write ? EV_WRITE : EV_READ;
		break;
	case CONN_HTTPHEAD:
		ce = EV_READ;
		break;
	case CONN_CONNECTING:
		ce = may_read_client ? EV_READ : 0;
		be = EV_WRITE;
		break;
	case CONN_RELAY:
		if (may_read_client)
			ce |= c->read_wants_write ? EV_WRITE : EV_READ;
		if (c->down.len || (c->b_eof && !c->c_shut))
			ce |= c->write_wants_read ? EV_READ : EV_WRITE;
		if (!c->b_eof && !buf_full(&c->down))
			be |= EV_READ;
		if (c->up.len)
			be |= EV_WRITE;
		break;
	case CONN_RESPOND:
		ce = c->down.len || !c->c_shut ? EV_WRITE : EV_READ;
		if (c->write_wants_read)
			ce = EV_READ;
		break;
	case CONN_PRELUDE:
		ce = (may_read_client ? EV_READ : 0) | (c->down.len ? EV_WRITE : 0);
		break;
	case CONN_UPGRADING:
		ce = c->down.len ? EV_WRITE : EV_READ;
		break;
	case CONN_HANDOVER:
		if (may_read_client)
			ce |= c->read_wants_write ? EV_WRITE : EV_READ;
		if (c->down.len)
			ce |= c->write_wants_read ? EV_READ : EV_WRITE;
		be = (c->b_eof ? 0 : EV_READ) |
		     (conn_starttls_backend_wants_write(c) ? EV_WRITE : 0);
		break;
	}
	set_io(c->svc->srv->loop, &c->cio, c->cfd, ce);
	set_io(c->svc->srv->loop, &c->bio, c->bfd, be);
}

void conn_respond(struct conn *c, const char *text)
{
	buf_reset(&c->up);
	buf_append(&c->down, text, strlen(text));
	conn_state(c, CONN_RESPOND);
	conn_pump(c);
}

/* Moves bytes both ways until nothing moves, then propagates half-closes
 * and re-arms the watchers. */
void conn_pump(struct conn *c)
{
	struct ev_loop *loop = c->svc->srv->loop;
	int moved, r;

	if (c->state == CONN_PRELUDE) {
		if (conn_push_client(c) < 0 || conn_pull_client(c) < 0) {
			conn_close(c, "client reset before STARTTLS");
			return;
		}
		if (conn_starttls_prelude(c))
			return;   /* closed */
		if (c->state != CONN_PRELUDE) {
			conn_pump(c);
			return;
		}
		if (conn_push_client(c) < 0) {
			conn_close(c, "client reset before STARTTLS");
			return;
		}
		conn_watch(c);
		return;
	}
	if (c->state == CONN_UPGRADING) {
		if (conn_push_client(c) < 0) {
			conn_close(c, "client reset after STARTTLS");
			return;
		}
		if (conn_starttls_upgrading(c))
			return;   /* closed */
		if (c->state == CONN_HANDSHAKE) {
			on_handshake(c);
			return;
		}
		conn_watch(c);
		return;
	}
	if (c->state == CONN_HANDOVER) {
		conn_starttls_handover(c);
		return;
	}

	for (int round = 0; round < 16; round++) {
		moved = 0;
		if (c->state == CONN_RESPOND) {
			if ((r = conn_push_client(c)) < 0) {
				conn_close(c, "client went away during reply");
				return;
			}
			if (c->down.len == 0 && !c->c_shut) {
				conn_client_shut(c);
				c->c_shut = 1;
			}
			/* Read out what the client still sends, so closing does
			 * not reset the connection under our reply. */
			if (c->c_shut && !c->c_eof)
				conn_client_discard(c);
			if (c->c_shut && c->c_eof) {
				conn_close(c, c->close_reason ? c->close_reason
				                     : c->acme ? "acme reply" : "replied");
				return;
			}
			break;
		}
		if ((r = conn_pull_client(c)) < 0) {
			conn_close_aborted(c, "client reset");
			return;
		}
		moved |= r;
		if (c->state == CONN_HTTPHEAD)
			break;
		if (c->state != CONN_RELAY)
			break;
		if ((r = conn_push_up(c)) < 0) {
			conn_close(c, "backend reset");
			return;
		}
		moved |= r;
		if (c->c_eof && c->up.len == 0 && !c->b_shut) {
			/* A backend that has closed needs no FIN: we close soon. */
			if (!c->b_eof)
				shutdown(c->bfd, SHUT_WR);
			c->b_shut = 1;
		}
		if ((r = conn_pull_backend(c, &c->down)) < 0) {
			conn_close(c, "backend reset");
			return;
		}
		moved |= r;
		if ((r = conn_push_client(c)) < 0) {
			conn_close_aborted(c, "client reset");
			return;
		}
		moved |= r;
		if (c->b_eof && c->down.len == 0 && !c->c_shut) {
			if (conn_client_shut(c) < 0) {
				conn_close_aborted(c, "client reset");
				return;
			}
			c->c_shut = 1;
		}
		if (c->c_eof && c->b_eof && c->up.len == 0 && c->down.len == 0) {
			char why[32];
			snprintf(why, sizeof(why), "%s closed", c->first_eof);
			conn_close(c, why);
			return;
		}
		if (moved)
			c->last = ev_now(loop);
		if (!moved)
			break;
	}
	if (c->state == CONN_HTTPHEAD) {
		const struct cfg_listener *l = cl_of(c);
		enum redirect_verdict v;
		if (c->up.len == 0 && c->c_eof) {
			conn_close(c, "client closed");
			return;
		}
		v = redirect_handle(buf_peek(&c->up) ? buf_peek(&c->up) : (const uint8_t *)"",
		                    c->up.len, l->redirect_port,
		                    l->acme_backend_text != NULL, &c->down);
		if (v == REDIRECT_RESPOND) {
			buf_reset(&c->up);
			conn_state(c, CONN_RESPOND);
			conn_pump(c);
			return;
		}
		if (v == REDIRECT_ACME) {
			c->acme = 1;
			conn_start_backend(c, &l->acme_backend);
			return;
		}
		if (c->c_eof) {
			conn_close(c, "client closed mid-request");
			return;
		}
	}
	conn_watch(c);
	/* Bytes TLS holds in memory never make the socket readable: when the
	 * round limit left some (a fast client), come back on the next loop
	 * iteration, after the other connections had their turn. */
	if (c->state == CONN_RELAY && c->tls && !c->c_eof && !buf_full(&c->up) &&
	    tlsctx_pending(c->tls))
		ev_feed_event(loop, &c->cio, EV_READ);
}

/* ---- phases ---- */

#define HTTP_502 "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n" \
                 "Content-Length: 16\r\nConnection: close\r\n\r\nBackend is down\n"

void conn_refuse(struct conn *c, const char *why)
{
	const struct cfg_listener *l = cl_of(c);

	if (c->bfd >= 0) {
		ev_io_stop(c->svc->srv->loop, &c->bio);
		close(c->bfd);
		c->bfd = -1;
	}
	buf_reset(&c->up);
	if (l->proto == CFG_PROTO_HTTP) {
		log_warnx("[%s] client=%s: %s; answering 502", l->name, c->peer, why);
		c->close_reason = "backend unavailable, answered 502";
		conn_respond(c, HTTP_502);
		return;
	}
	if (conn_starttls_bye(c, 0, &c->down) == 0) {
		log_warnx("[%s] client=%s: %s; refusing in %s", l->name, c->peer, why,
		          cfg_proto_name(l->proto));
		c->close_reason = "backend unavailable, refused in protocol";
		conn_state(c, CONN_RESPOND);
		conn_pump(c);
		return;
	}
	conn_close(c, why);
}

void conn_start_backend(struct conn *c, const struct addr *a)
{
	char why[160];

	if ((c->bfd = backend_connect(a)) < 0) {
		snprintf(why, sizeof(why), "backend %s: %s",
		         c->acme ? cl_of(c)->acme_backend_text : cl_of(c)->backend_text,
		         strerror(errno));
		conn_refuse(c, why);
		return;
	}
	conn_state(c, CONN_CONNECTING);
	conn_watch(c);
}

static void on_connected(struct conn *c)
{
	int err = backend_finish(c->bfd);
	char why[160];

	if (err != 0) {
		snprintf(why, sizeof(why), "backend %s: %s",
		         c->acme ? cl_of(c)->acme_backend_text : cl_of(c)->backend_text,
		         strerror(err));
		conn_refuse(c, why);
		return;
	}
	if (c->st) {
		conn_state(c, CONN_HANDOVER);
		conn_starttls_handover(c);
		return;
	}
	conn_state(c, CONN_RELAY);
	conn_pump(c);
}

static void on_handshake(struct conn *c)
{
	enum tlsctx_io r = tlsctx_handshake(c->tls);
	char why[256];

	c->read_wants_write = r == TLSCTX_WANT_WRITE;
	if (r == TLSCTX_WANT_READ || r == TLSCTX_WANT_WRITE) {
		conn_watch(c);
		return;
	}
	if (r != TLSCTX_OK) {
		if (r == TLSCTX_EOF || r == TLSCTX_CLOSED)
			snprintf(why, sizeof(why), "client closed during the handshake%s",
			         tlsctx_hello_seen(c->tls) ? "" : " without a ClientHello");
		else
			tlsctx_error(c->tls, why, sizeof(why));
		conn_close(c, why);
		return;
	}
	c->read_wants_write = 0;
	conn_start_backend(c, &cl_of(c)->backend);
}

/* ---- callbacks: trampolines into the logic above ---- */

static void on_client_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	if (c->magic != CONN_MAGIC)
		abort();
	if ((revents & EV_READ) || (c->read_wants_write && (revents & EV_WRITE))) {
		c->c_rd = 1;
		if (c->tls)
			tlsctx_readable(c->tls);
	}
	if (c->state == CONN_HANDSHAKE)
		on_handshake(c);
	else
		conn_pump(c);
}

static void on_backend_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	if (c->magic != CONN_MAGIC)
		abort();
	if (revents & EV_READ)
		c->b_rd = 1;
	if (c->state == CONN_CONNECTING)
		on_connected(c);
	else
		conn_pump(c);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	ev_tstamp limit = state_timeout_ms(c) / 1000.0;
	ev_tstamp left = c->last + limit - ev_now(loop);
	char why[256];

	if (c->magic != CONN_MAGIC)
		abort();
	/* Activity moves c->last without touching the timer; re-arm for
	 * what is left instead of restarting on every read. */
	if (left > 0.001) {
		ev_timer_set(w, left, 0.);
		ev_timer_start(loop, w);
		return;
	}
	switch (c->state) {
	case CONN_HANDSHAKE:
		snprintf(why, sizeof(why), "TLS handshake timed out after %.0fs%s",
		         limit, tlsctx_hello_seen(c->tls) ? "" :
		         " with no ClientHello (a plaintext client waiting for a "
		         "greeting on an implicit-TLS port?)");
		break;
	case CONN_HTTPHEAD:
		snprintf(why, sizeof(why), "no complete request within %.0fs", limit);
		break;
	case CONN_CONNECTING:
		snprintf(why, sizeof(why), "backend %s: connect timed out after %.0fs",
		         c->acme ? cl_of(c)->acme_backend_text : cl_of(c)->backend_text,
		         limit);
		conn_refuse(c, why);
		return;
	case CONN_HANDOVER:
		snprintf(why, sizeof(why), "backend %s: no greeting within %.0fs",
		         cl_of(c)->backend_text, limit);
		conn_refuse(c, why);
		return;
	case CONN_PRELUDE:
		buf_reset(&c->up);
		if (conn_starttls_bye(c, 1, &c->down) == 0) {
			c->close_reason = "pre-TLS deadline passed";
			conn_state(c, CONN_RESPOND);
			conn_pump(c);
			return;
		}
		snprintf(why, sizeof(why), "pre-TLS deadline passed");
		break;
	case CONN_UPGRADING:
		snprintf(why, sizeof(why), "no TLS handshake within %.0fs of STARTTLS", limit);
		break;
	case CONN_RESPOND:
		snprintf(why, sizeof(why), "%s", c->close_reason ? c->close_reason :
		         c->acme ? "acme reply" : "replied");
		break;
	default:
		snprintf(why, sizeof(why), "idle for %.0fs", limit);
		break;
	}
	conn_close(c, why);
}

/* ---- life cycle ---- */

void conn_new(struct svc *svc, int fd, const struct sockaddr *peer, socklen_t len)
{
	struct conn *c = calloc(1, sizeof(*c));
	const struct cfg_listener *l = svc->cl;
	int on = 1;

	if (c == NULL) {
		log_warnx("[%s] out of memory; dropping a connection", l->name);
		close(fd);
		return;
	}
	c->magic = CONN_MAGIC;
	c->svc = svc;
	c->cfd = fd;
	c->bfd = -1;
	addr_format(peer, len, c->peer, sizeof(c->peer));
	if (peer->sa_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	ev_io_init(&c->cio, on_client_io, fd, EV_READ);
	c->cio.data = c;
	ev_io_init(&c->bio, on_backend_io, -1, EV_WRITE);
	c->bio.data = c;
	ev_init(&c->timer, on_timer);
	c->timer.data = c;
	c->start = ev_now(svc->srv->loop);
	c->guard_on = l->proto == CFG_PROTO_LDAP && (l->mode == CFG_MODE_TLS ||
	                                             l->mode == CFG_MODE_STARTTLS);
	server_conn_opened(svc, c);

	switch (l->mode) {
	case CFG_MODE_TLS:
		if ((c->tls = tlsctx_accept(svc->tls, fd)) == NULL) {
			conn_close(c, "out of memory");
			return;
		}
		conn_state(c, CONN_HANDSHAKE);
		conn_watch(c);
		break;
	case CFG_MODE_REDIRECT:
		conn_state(c, CONN_HTTPHEAD);
		conn_watch(c);
		break;
	case CFG_MODE_STARTTLS:
		conn_starttls_begin(c);
		break;
	default:
		conn_start_backend(c, &l->backend);
		break;
	}
}

/* The client's stream broke off (a reset, or a fatal TLS error): the
 * backend gets a reset too, never an orderly end that could pass a cut-off
 * request or upload for a complete one. It also spares both sides the FIN
 * exchange and this side the TIME_WAIT socket. */
void conn_close_aborted(struct conn *c, const char *reason)
{
	if (c->bfd >= 0)
		backend_abort(c->bfd);
	conn_close(c, reason);
}

void conn_close(struct conn *c, const char *reason)
{
	struct ev_loop *loop = c->svc->srv->loop;
	const struct cfg_listener *l = cl_of(c);
	double secs = ev_now(loop) - c->start;

	if (c->state == CONN_HANDSHAKE) {
		log_info("[%s] handshake failed client=%s: %s", l->name, c->peer, reason);
	} else if (c->tls) {
		struct tlsctx_info ti;
		tlsctx_describe(c->tls, &ti);
		log_info("[%s] close client=%s sni=%s tls=%s cipher=%s resumed=%s "
		         "up=%llu down=%llu time=%.3fs: %s", l->name, c->peer,
		         ti.sni ? ti.sni : "-", ti.version, ti.cipher,
		         ti.resumed ? "yes" : "no", (unsigned long long)c->nup,
		         (unsigned long long)c->ndown, secs, reason);
	} else {
		log_info("[%s] close client=%s sni=- tls=- cipher=- resumed=- "
		         "up=%llu down=%llu time=%.3fs: %s", l->name, c->peer,
		         (unsigned long long)c->nup, (unsigned long long)c->ndown,
		         secs, reason);
	}
	ev_io_stop(loop, &c->cio);
	ev_io_stop(loop, &c->bio);
	ev_timer_stop(loop, &c->timer);
	tlsctx_conn_free(c->tls);
	conn_starttls_free(c);
	close(c->cfd);
	if (c->bfd >= 0)
		close(c->bfd);
	buf_reset(&c->up);
	buf_reset(&c->down);
	server_conn_closed(c->svc, c);
	c->magic = 0;
	free(c);
}
