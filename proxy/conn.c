#include "conn.h"
#include "conn_int.h"
#include "backend.h"
#include "cfg.h"
#include "ftp_data.h"
#include "log.h"
#include "proto.h"
#include "server.h"
#include "starttls.h"
#include "shared.h"
#include "tlsctx.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * The connection's life: the table of states, the one place watchers are
 * set, the deadline and the single way out. The relay itself is
 * conn_relay.c, the halves' I/O conn_io.c, the TLS handshake and its
 * counting conn_handshake.c, STARTTLS conn_starttls.c, the way to the
 * backend (CONNECTING) and the refusals when it fails conn_backend.c, the
 * redirect listener's request head conn_httphead.c, the PROXY header
 * conn_proxy.c, the per-client limits conn_limit.c, FTP data connections
 * and their DIALING state conn_ftp.c, REDIAL (a backend that closed before
 * the client spoke) conn_redial.c. The table of states stays here,
 * whoever holds a row's functions.
 */

#define CONN_MAGIC 0x706f7274u   /* "port" */
#define LINGER_MS 2000           /* reading out a client after our reply */
#define NO_KEY ((size_t)-1)

static void relay_expire(struct conn *c, double limit);
static void respond_watch(const struct conn *c, int *ce, int *be);
const char *conn_respond_reason(const struct conn *c)
{
	if (c->close_reason != NULL)
		return c->close_reason;
	if (c->close_why == CONN_WHY_PRELUDE_TIMEOUT)
		return NULL;     /* conn_close() words it, with the deadline */
	return c->acme ? "acme reply" : "replied";
}

static void respond_expire(struct conn *c, double limit);

/* One row per state: everything a state means to the connection, so a new
 * state (FTP data, a PROXY header read, an ACME challenge) is one row. */
struct state_row {
	const char *name;
	size_t timeout_key;   /* offsetof(struct cfg_listener, ..._ms), or NO_KEY */
	unsigned fixed_ms;    /* the deadline when timeout_key is NO_KEY */
	int reads_client;     /* TLS bytes held in memory are served (run queue) */
	void (*io)(struct conn *c);
	void (*watch)(const struct conn *c, int *ce, int *be);
	void (*expire)(struct conn *c, double limit);
};

#define KEY(f) offsetof(struct cfg_listener, f)

static const struct state_row states[CONN_NSTATES] = {
	[CONN_HANDSHAKE] = {"handshake", KEY(handshake_timeout_ms), 0, 0,
		conn_handshake_io,
		conn_handshake_watch,
		conn_handshake_expire},
	[CONN_HTTPHEAD] = {"http head", KEY(handshake_timeout_ms), 0, 0,
		conn_httphead_io,
		conn_httphead_watch,
		conn_httphead_expire},
	[CONN_CONNECTING] = {"connecting", KEY(connect_timeout_ms), 0, 1,
		conn_connecting_io,
		conn_connecting_watch,
		conn_connecting_expire},
	[CONN_RELAY] = {"relay", KEY(idle_timeout_ms), 0, 1,
		conn_relay,
		conn_relay_watch,
		relay_expire},
	[CONN_RESPOND] = {"respond", NO_KEY, LINGER_MS, 0,
		conn_respond_io,
		respond_watch,
		respond_expire},
	[CONN_PRELUDE] = {"prelude", KEY(prelude_timeout_ms), 0, 0,
		conn_starttls_prelude,
		conn_starttls_prelude_watch,
		conn_starttls_prelude_expire},
	[CONN_UPGRADING] = {"upgrading", KEY(handshake_timeout_ms), 0, 0,
		conn_starttls_upgrading,
		conn_starttls_upgrading_watch,
		conn_starttls_upgrading_expire},
	[CONN_HANDOVER] = {"handover", KEY(connect_timeout_ms), 0, 1,
		conn_starttls_handover,
		conn_starttls_handover_watch,
		conn_starttls_handover_expire},
	[CONN_PROXYHEAD] = {"proxy header", KEY(accept_proxy_timeout_ms), 0, 0,
		conn_proxy_io,
		conn_proxy_watch,
		conn_proxy_expire},
	[CONN_DIALING] = {"dialing", KEY(connect_timeout_ms), 0, 0,
		conn_ftp_dialing_io,
		conn_ftp_dialing_watch,
		conn_ftp_dialing_expire},
	[CONN_REDIAL] = {"redial", KEY(idle_timeout_ms), 0, 1,
		conn_redial_io,
		conn_redial_watch,
		conn_redial_expire},
};

/* Each code is counted apart in the listener's shared counters. */
_Static_assert(CONN_WHY_COUNT <= SHARED_REASONS, "close reasons outgrow the shared table");

static const char *const why_names[CONN_WHY_COUNT] = {
	[CONN_WHY_CLIENT_CLOSED] = "client_closed",
	[CONN_WHY_BACKEND_CLOSED] = "backend_closed",
	[CONN_WHY_CLIENT_RESET] = "client_reset",
	[CONN_WHY_BACKEND_RESET] = "backend_reset",
	[CONN_WHY_HANDSHAKE_FAILED] = "handshake_failed",
	[CONN_WHY_HANDSHAKE_TIMEOUT] = "handshake_timeout",
	[CONN_WHY_IDLE] = "idle_timeout",
	[CONN_WHY_PRELUDE_TIMEOUT] = "prelude_timeout",
	[CONN_WHY_REQUEST_TIMEOUT] = "request_timeout",
	[CONN_WHY_BACKEND_DOWN] = "backend_down",
	[CONN_WHY_REPLIED] = "replied",
	[CONN_WHY_INJECTION] = "injection",
	[CONN_WHY_PROTOCOL] = "protocol_error",
	[CONN_WHY_FILTER] = "filter",
	[CONN_WHY_NOMEM] = "out_of_memory",
	[CONN_WHY_SHUTDOWN] = "shutdown",
	[CONN_WHY_LIMITED] = "limited",
};

const char *conn_why_name(enum conn_why why)
{
	return why < CONN_WHY_COUNT ? why_names[why] : "unknown";
}

static const struct cfg_listener *cl_of(const struct conn *c)
{
	return c->svc->cl;
}

/* A mode = tls relay whose backend has not yet said its first byte, in a
 * protocol where the server speaks first (SMTP, IMAP, POP3, FTP): until it
 * greets, the greeting's deadline is the STARTTLS hand-over's
 * (connect_timeout), and a backend that misses it is refused in the
 * protocol's words, not left to idle_timeout (30 minutes for IMAP). */
static int awaits_greeting(const struct conn *c)
{
	const struct cfg_listener *l = cl_of(c);
	const struct starttls_driver *d = proto_get(l->proto)->starttls;

	return c->state == CONN_RELAY && l->mode == CFG_MODE_TLS && !c->acme &&
	       !c->ftp_slot && c->ndown == 0 && c->down.len == 0 &&
	       d != NULL && d->backend_greeting != NULL;
}

/* The state's deadline in ms from when it began; *setup (may be NULL) is
 * set when the FTP data setup's remainder is what bounds it. */
static unsigned state_timeout_ms(const struct conn *c, int *setup)
{
	const struct state_row *row = &states[c->state];
	unsigned ms = row->timeout_key == NO_KEY ? row->fixed_ms :
	    *(const unsigned *)((const char *)cl_of(c) + row->timeout_key);
	double left;

	if (setup)
		*setup = 0;
	if (awaits_greeting(c) && cl_of(c)->connect_timeout_ms < ms)
		ms = cl_of(c)->connect_timeout_ms;
	/* An FTP data connection is set up (backend, client, TLS) within
	 * FTP_SETUP_SECS of its accept, whatever each step's own deadline;
	 * c->last is when the state began (only the relay moves it). */
	if (c->ftp_slot && c->state != CONN_RELAY) {
		left = (FTP_SETUP_SECS - (c->last - c->start)) * 1000.0;
		if (left < ms) {
			ms = left > 0 ? (unsigned)left : 0;
			if (setup)
				*setup = 1;
		}
	}
	return ms;
}

void conn_state(struct conn *c, enum conn_state st)
{
	conn_state_since(c, st, ev_now(c->svc->srv->loop));
}

void conn_state_since(struct conn *c, enum conn_state st, ev_tstamp since)
{
	struct ev_loop *loop = c->svc->srv->loop;
	double left;

	c->state = st;
	c->has_state = 1;
	c->last = since;
	left = since + state_timeout_ms(c, NULL) / 1000.0 - ev_now(loop);
	ev_timer_stop(loop, &c->timer);
	ev_timer_set(&c->timer, left > 0 ? left : 0., 0.);
	ev_timer_start(loop, &c->timer);
}

void conn_progress(struct conn *c)
{
	if (!c->closing)
		states[c->state].io(c);
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

static void conn_free(struct conn *c)
{
	struct ev_loop *loop = c->svc->srv->loop;

	ev_io_stop(loop, &c->cio);
	ev_io_stop(loop, &c->bio);
	ev_timer_stop(loop, &c->timer);
	server_conn_unready(c->svc, c);
	ftp_ctl_free(c->ftp);
	if (c->ftp_slot)
		ftp_slot_closed(c->ftp_slot, c->c_trunc ||
		                (c->why != CONN_WHY_CLIENT_CLOSED &&
		                 c->why != CONN_WHY_BACKEND_CLOSED));
	tlsctx_conn_free(c->tls);
	conn_starttls_free(c);
	close(c->cfd);
	if (c->bfd >= 0)
		close(c->bfd);
	buf_reset(&c->up);
	buf_reset(&c->down);
	buf_reset(&c->pre);
	conn_relay_free(c);
	/* Counted once per connection, never per read: the hot path stays
	 * free of shared cache lines. */
	shared_count(c->svc->stats, SHARED_ACTIVE, -1);
	limit_release(shared_get(), &c->limit);
	shared_count(c->svc->stats, SHARED_BYTES_UP, (int64_t)c->nup);
	shared_count(c->svc->stats, SHARED_BYTES_DOWN, (int64_t)c->ndown);
	shared_count_close(c->svc->stats, c->why);
	server_conn_closed(c->svc, c);
	c->magic = 0;
	free(c);
}

/* On the way out of every callback (conn_int.h): free a closed connection,
 * or set the watchers its state wants and put it on the run queue when TLS
 * holds bytes that will never make the socket readable again. */
void conn_settle(struct conn *c)
{
	struct ev_loop *loop = c->svc->srv->loop;
	int ce = 0, be = 0;

	c->in_callback = 0;
	if (c->closing) {
		conn_free(c);
		return;
	}
	states[c->state].watch(c, &ce, &be);
	set_io(loop, &c->cio, c->cfd, ce);
	set_io(loop, &c->bio, c->bfd, be);
	if (states[c->state].reads_client && (ce & EV_READ) && conn_client_ready(c))
		server_conn_ready(c->svc, c);
	else
		server_conn_unready(c->svc, c);
}

void conn_enter(struct conn *c)
{
	if (c->magic != CONN_MAGIC)
		abort();
	c->in_callback = 1;
}

/* ---- the states ---- */

const char *conn_limit_text(char *out, size_t n, double limit)
{
	unsigned ms = (unsigned)(limit * 1000.0 + 0.5);

	if (ms % 1000 == 0)
		snprintf(out, n, "%us", ms / 1000);
	else
		snprintf(out, n, "%ums", ms);
	return out;
}

static void relay_expire(struct conn *c, double limit)
{
	char why[200], lim[24];

	if (c->ftp != NULL && ftp_ctl_transferring(c->ftp)) {
		/* An FTP control connection waits quietly while its data
		 * connections work (a 1 GB file at 1 MB/s takes 17 min): they
		 * have idle limits of their own, and the control's counts
		 * again from the end of the last (ftp_slot_closed). */
		c->last = ev_now(c->svc->srv->loop);
		ev_timer_set(&c->timer, limit, 0.);
		ev_timer_start(c->svc->srv->loop, &c->timer);
		return;
	}
	conn_limit_text(lim, sizeof(lim), limit);
	if (awaits_greeting(c)) {
		snprintf(why, sizeof(why), "backend %s: no greeting within %s",
		         cl_of(c)->backend_text, lim);
		conn_refuse(c, why);
		return;
	}
	if (c->acme && c->ndown == 0 && c->down.len == 0) {
		/* The challenge went out and no byte came back (a reply the
		 * client does not read is the client's idleness). */
		conn_acme_unanswered(c, lim);
		return;
	}
	snprintf(why, sizeof(why), "idle for %s", lim);
	conn_close(c, CONN_WHY_IDLE, why);
}

static void respond_watch(const struct conn *c, int *ce, int *be)
{
	if (c->write_wants_read)
		*ce = EV_READ;
	else
		*ce = c->down.len || !c->c_shut ? EV_WRITE : EV_READ;
}

static void respond_expire(struct conn *c, double limit)
{
	conn_close(c, c->close_why, conn_respond_reason(c));
}

/* ---- callbacks: trampolines into the logic above ---- */

static void on_client_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	conn_enter(c);
	if ((revents & EV_READ) || (c->read_wants_write && (revents & EV_WRITE))) {
		c->c_rd = 1;
		if (c->tls)
			tlsctx_readable(c->tls);
	}
	conn_progress(c);
	conn_settle(c);
}

static void on_backend_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;

	conn_enter(c);
	if (revents & EV_READ)
		c->b_rd = 1;
	if (revents & EV_WRITE)
		c->b_wr = 1;
	conn_progress(c);
	conn_settle(c);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;
	ev_tstamp limit, left;
	int setup;

	conn_enter(c);
	limit = state_timeout_ms(c, &setup) / 1000.0;
	left = c->last + limit - ev_now(loop);
	/* Activity moves c->last without touching the timer; re-arm for
	 * what is left instead of restarting on every read. */
	if (left > 0.001) {
		ev_timer_set(w, left, 0.);
		ev_timer_start(loop, w);
	} else {
		/* The handler says the deadline as configured: the data
		 * setup's whole time, not the remainder its step was left. */
		states[c->state].expire(c, setup ? FTP_SETUP_SECS : limit);
	}
	conn_settle(c);
}

void conn_run(struct conn *c)
{
	conn_enter(c);
	conn_progress(c);
	conn_settle(c);
}

/* ---- life cycle ---- */

void conn_addr_keep(struct conn_addr *a, const struct sockaddr *sa)
{
	a->family = sa->sa_family;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		memcpy(a->ip, &in->sin_addr, 4);
		a->port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		memcpy(a->ip, &in6->sin6_addr, 16);
		a->port = ntohs(in6->sin6_port);
	}
}

struct conn *conn_alloc(struct svc *svc, int fd, const struct sockaddr *peer,
                        socklen_t len)
{
	struct conn *c = calloc(1, sizeof(*c));
	const struct cfg_listener *l = svc->cl;
	int on = 1;

	if (c == NULL) {
		log_warnx("[%s] out of memory; dropping a connection", l->name);
		close(fd);
		return NULL;
	}
	c->magic = CONN_MAGIC;
	c->svc = svc;
	c->cfd = fd;
	c->bfd = -1;
	addr_format(peer, len, c->peer, sizeof(c->peer));
	conn_addr_keep(&c->client, peer);
	if (peer->sa_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	ev_io_init(&c->cio, on_client_io, fd, EV_READ);
	c->cio.data = c;
	ev_io_init(&c->bio, on_backend_io, -1, EV_WRITE);
	c->bio.data = c;
	ev_init(&c->timer, on_timer);
	c->timer.data = c;
	c->start = ev_now(svc->srv->loop);
	shared_count(svc->stats, SHARED_ACCEPTED, 1);
	shared_count(svc->stats, SHARED_ACTIVE, 1);
	server_conn_opened(svc, c);
	return c;
}

void conn_new(struct svc *svc, int fd, const struct sockaddr *peer, socklen_t len)
{
	const struct cfg_listener *l = svc->cl;
	struct conn *c = conn_alloc(svc, fd, peer, len);

	if (c == NULL)
		return;
	conn_enter(c);
	if (!l->accept_proxy) {
		conn_begin(c);
	} else {
		conn_state(c, CONN_PROXYHEAD);
		(void)conn_proxy_allowed(c);
	}
	conn_settle(c);
}

void conn_begin(struct conn *c)
{
	const struct cfg_listener *l = cl_of(c);

	if (conn_limit_check(c) < 0)
		return;

	/* FTP behind TLS: the data ports' broker, and the session id its
	 * data connections must resume. */
	if (l->proto == CFG_PROTO_FTP &&
	    (l->mode == CFG_MODE_TLS || l->mode == CFG_MODE_STARTTLS) &&
	    (c->ftp = ftp_ctl_new(c)) == NULL) {
		conn_close(c, CONN_WHY_NOMEM, "out of memory");
		return;
	}
	switch (l->mode) {
	case CFG_MODE_TLS:
		if ((c->tls = tlsctx_accept(c->svc->tls, c->cfd)) == NULL ||
		    (c->ftp && tlsctx_bind_session(c->tls, ftp_ctl_sid(c->ftp),
		                                   FTP_SID_LEN) < 0)) {
			conn_close(c, CONN_WHY_NOMEM, "out of memory");
			break;
		}
		conn_state(c, CONN_HANDSHAKE);
		break;
	case CFG_MODE_REDIRECT:
		conn_state(c, CONN_HTTPHEAD);
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
void conn_close_aborted(struct conn *c, enum conn_why why, const char *text)
{
	if (c->closing)
		return;
	if (c->bfd >= 0)
		backend_abort(c->bfd);
	conn_close(c, why, text);
}

/* c is in its TLS handshake: not merely a connection that never had a
 * state, whose zero is HANDSHAKE's. */
static int in_handshake(const struct conn *c)
{
	return c->has_state && c->state == CONN_HANDSHAKE;
}

void conn_close(struct conn *c, enum conn_why why, const char *text)
{
	struct ev_loop *loop = c->svc->srv->loop;
	const struct cfg_listener *l = cl_of(c);
	double secs = ev_now(loop) - c->start;
	const char *reason = text ? text : conn_why_name(why);
	char deadline[64], lim[24];
	struct log_conn lc;
	struct tlsctx_info ti;

	if (c->closing)
		return;
	if (text == NULL && why == CONN_WHY_PRELUDE_TIMEOUT) {
		snprintf(deadline, sizeof(deadline), "pre-TLS deadline passed after %s",
		         conn_limit_text(lim, sizeof(lim), l->prelude_timeout_ms / 1000.0));
		reason = deadline;
	}
	c->closing = 1;
	c->why = why;
	/* An FTP upload ends at its data connection's end: a FIN from us
	 * that no in-order end of the client's stream came before (an idle
	 * or handshake deadline, a stop, an error) would have the server
	 * store a cut file as complete. A reset says the transfer broke. */
	if (c->ftp_slot && c->bfd >= 0 && !c->b_shut)
		backend_abort(c->bfd);
	if ((in_handshake(c) && !c->hs_done) || c->state == CONN_UPGRADING ||
	    why == CONN_WHY_INJECTION) {
		conn_handshake_count_failure(c, why);
	}
	lc = (struct log_conn){.listener = l->name, .client = c->peer,
	                       .control = c->ftp_slot ? ftp_slot_control(c->ftp_slot) : NULL,
	                       .up = c->nup, .down = c->ndown, .secs = secs,
	                       .reason = reason, .reason_code = conn_why_name(why)};
	if (in_handshake(c) && !c->hs_done) {
		lc.handshake_failed = 1;
	} else if (c->tls && c->hs_done) {
		tlsctx_describe(c->tls, &ti);
		lc.sni = ti.sni;
		lc.tls = ti.version;
		lc.cipher = ti.cipher;
		lc.resumed = ti.resumed;
	}
	if (!c->limited)   /* its client's one line per interval says it */
		log_conn(&lc);
	/* Nothing more happens to c: no watcher, no deadline, off the run
	 * queue. It is freed on the way out of the running callback. */
	ev_io_stop(loop, &c->cio);
	ev_io_stop(loop, &c->bio);
	ev_timer_stop(loop, &c->timer);
	server_conn_unready(c->svc, c);
}

void conn_drain(struct conn *c)
{
	if (c->closing || !c->has_state || c->state != CONN_REDIAL)
		return;
	conn_enter(c);
	conn_redial_drain(c);
	conn_settle(c);
}

void conn_stop(struct conn *c, const char *text)
{
	conn_close(c, CONN_WHY_SHUTDOWN, text);
	if (!c->in_callback)
		conn_free(c);
}
