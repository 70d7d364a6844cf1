#include "cfg.h"
#include "conn_int.h"
#include "ftp_data.h"
#include "log.h"
#include "proto.h"
#include "server.h"
#include "starttls.h"
#include "tlsctx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * STARTTLS in the connection: the pure engine (starttls.c) decides what to
 * say; this file moves its bytes and enforces what only the socket can
 * show: plaintext arriving after STARTTLS was answered (rule 2, split
 * writes), and the order of portier's own and the client's bytes to the
 * backend at hand-over.
 * Everything here is freed when the relay starts.
 */
struct conn_starttls {
	struct starttls_session s;
	struct starttls_params params;
	struct buf from_backend;     /* backend bytes the engine has not taken */
	struct buf to_backend;       /* the engine's lines (XCLIENT, a query) */
	char xclient[96];            /* "ADDR=... PORT=..." */
	ev_tstamp since;             /* PRELUDE began: its deadline, kept over
	                                EHLO queries to the backend */
	int auth_logged;             /* the credentials line is out */
};

/* XCLIENT attributes from "1.2.3.4:5" or "[::1]:5" (Postfix writes IPv6
 * addresses with an "IPV6:" prefix). */
static void xclient_attrs(const char *peer, char *out, size_t outlen)
{
	const char *colon = strrchr(peer, ':');
	int v6 = peer[0] == '[';
	int hostlen = colon ? (int)(colon - peer) : (int)strlen(peer);

	if (v6)
		snprintf(out, outlen, "ADDR=IPV6:%.*s PORT=%s", hostlen - 2, peer + 1,
		         colon ? colon + 1 : "0");
	else
		snprintf(out, outlen, "ADDR=%.*s PORT=%s", hostlen, peer,
		         colon ? colon + 1 : "0");
}

static const char *listener_hostname(const struct conn *c)
{
	const struct cfg_listener *l = c->svc->cl;
	return l->hostname ? l->hostname : c->svc->srv->cfg->hostname;
}

void conn_starttls_free(struct conn *c)
{
	if (c->st == NULL)
		return;
	buf_reset(&c->st->from_backend);
	buf_reset(&c->st->to_backend);
	/* Nothing pre-TLS outlives the dialogue, not even in freed memory. */
	memset(c->st, 0, sizeof(*c->st));
	free(c->st);
	c->st = NULL;
}

void conn_starttls_begin(struct conn *c)
{
	const struct cfg_listener *l = c->svc->cl;
	const struct starttls_driver *drv = proto_get(l->proto)->starttls;

	if (drv == NULL || (c->st = calloc(1, sizeof(*c->st))) == NULL) {
		conn_close(c, drv ? CONN_WHY_NOMEM : CONN_WHY_PROTOCOL,
		           drv ? "out of memory" : "no STARTTLS driver");
		return;
	}
	c->st->params.hostname = listener_hostname(c);
	c->st->params.optional = l->starttls_optional;
	/* PROXY replaces XCLIENT (portier -t warns when both are set). */
	if (l->xclient && !l->send_proxy) {
		xclient_attrs(c->peer, c->st->xclient, sizeof(c->st->xclient));
		c->st->params.xclient = c->st->xclient;
	}
	if (starttls_init(&c->st->s, drv, &c->st->params) < 0 ||
	    starttls_greeting(&c->st->s, &c->down) < 0) {
		conn_close(c, CONN_WHY_PROTOCOL, "cannot start the STARTTLS dialogue");
		return;
	}
	conn_state(c, CONN_PRELUDE);
	c->st->since = c->last;
	conn_progress(c);
}

/* SMTP optional: the session of a backend asked for the client's hello
 * ends with portier's (STARTTLS, QUIT, a cap): QUIT, sent once and
 * unchecked, spares its log a lost connection. */
static void drop_queried_backend(struct conn *c)
{
	if (c->bfd < 0)
		return;
	(void)send(c->bfd, "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT);
	conn_backend_drop(c);
	buf_reset(&c->st->from_backend);
	buf_reset(&c->st->to_backend);
}

/* The engine's verdict on what the client said; may change the state. */
static void prelude_verdict(struct conn *c)
{
	enum starttls_verdict v;
	char why[200];

	if (c->up.len == 0) {
		if (c->c_eof)
			conn_close(c, CONN_WHY_CLIENT_CLOSED, "client closed before STARTTLS");
		return;
	}
	v = starttls_client_input(&c->st->s, &c->up, &c->down);
	/* Once per connection: a client that tries its password in clear is
	 * what fail2ban's portier filter bans on. */
	if (starttls_cleartext_auth(&c->st->s) && !c->st->auth_logged) {
		c->st->auth_logged = 1;
		log_info("[%s] client=%s: %s before STARTTLS refused", c->svc->cl->name,
		         c->peer, starttls_cleartext_auth(&c->st->s));
	}
	switch (v) {
	case STARTTLS_AGAIN:
		if (c->c_eof)
			conn_close(c, CONN_WHY_CLIENT_CLOSED, "client closed before STARTTLS");
		return;
	case STARTTLS_UPGRADE:
		/* SMTP optional: the backend asked for the hello knows the
		 * plaintext session; after the handshake a new one is
		 * connected (the engine expects its greeting). */
		drop_queried_backend(c);
		/* The "go ahead" still has to reach the client in plaintext;
		 * UPGRADING waits for that, then for the first TLS bytes. */
		conn_state(c, CONN_UPGRADING);
		conn_progress(c);
		return;
	case STARTTLS_PLAINTEXT:
		log_info("[%s] client=%s goes on without TLS (starttls = optional)",
		         c->svc->cl->name, c->peer);
		conn_start_backend(c, &c->svc->cl->backend);
		return;
	case STARTTLS_BACKEND:
		/* SMTP optional: the backend answers the client's EHLO (its
		 * extensions, for a sender that stays in plaintext); a
		 * connected backend is asked again. */
		conn_start_backend(c, &c->svc->cl->backend);
		return;
	case STARTTLS_REPLY_AND_CLOSE:
		drop_queried_backend(c);
		buf_reset(&c->up);
		c->close_reason = starttls_why(&c->st->s);
		c->close_why = CONN_WHY_PROTOCOL;
		conn_state(c, CONN_RESPOND);
		conn_progress(c);
		return;
	case STARTTLS_INJECTION:
		conn_close(c, CONN_WHY_INJECTION, "command injection attempt: bytes "
		           "after STARTTLS in the same packet");
		return;
	default:
		snprintf(why, sizeof(why), "pre-TLS: %s", starttls_why(&c->st->s));
		conn_close(c, CONN_WHY_PROTOCOL, why);
		return;
	}
}

void conn_starttls_prelude(struct conn *c)
{
	if (conn_push_client(c) < 0 || conn_pull_client(c, &c->up) < 0) {
		conn_close(c, CONN_WHY_CLIENT_RESET, "client reset before STARTTLS");
		return;
	}
	prelude_verdict(c);
	if (c->closing || c->state != CONN_PRELUDE)
		return;
	if (conn_push_client(c) < 0)
		conn_close(c, CONN_WHY_CLIENT_RESET, "client reset before STARTTLS");
}

void conn_starttls_upgrading(struct conn *c)
{
	uint8_t head[3];
	ssize_t n;

	if (conn_push_client(c) < 0) {
		conn_close(c, CONN_WHY_CLIENT_RESET, "client reset after STARTTLS");
		return;
	}
	if (c->down.len)
		return;   /* our reply to STARTTLS is still on its way */
	n = recv(c->cfd, head, sizeof(head), MSG_PEEK);
	if (n == 0) {
		conn_close(c, CONN_WHY_CLIENT_CLOSED, "client closed after STARTTLS");
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close(c, CONN_WHY_CLIENT_RESET, "client reset after STARTTLS");
		return;
	}
	/* Plaintext in place of a ClientHello: a man in the middle adding
	 * commands that would run inside the TLS session (split writes). */
	if (starttls_looks_like_tls(head, (size_t)n) == 0) {
		conn_close(c, CONN_WHY_INJECTION,
		           "command injection attempt: plaintext after STARTTLS");
		return;
	}
	if ((c->tls = tlsctx_accept(c->svc->tls, c->cfd)) == NULL ||
	    (c->ftp && tlsctx_bind_session(c->tls, ftp_ctl_sid(c->ftp),
	                                   FTP_SID_LEN) < 0)) {
		conn_close(c, CONN_WHY_NOMEM, "out of memory");
		return;
	}
	c->c_rd = 1;
	conn_state(c, CONN_HANDSHAKE);
	conn_progress(c);
}

/* The PROXY header first: a backend such as dovecot with haproxy = yes
 * says nothing before it has it, so the hand-over sends it at once. */
int conn_starttls_backend_wants_write(const struct conn *c)
{
	return c->pre.len || (c->st && c->st->to_backend.len);
}

/* The backend ended its side (how: "closed", "reset") in the hand-over:
 * the refusal names what portier was waiting for (its greeting, or a
 * reply in the XCLIENT exchange or to the client's EHLO), and whether
 * part of it had come. */
static void handover_cut(struct conn *c, const char *how)
{
	char why[112];

	snprintf(why, sizeof(why), "backend %s %s its %s", how,
	         c->st->from_backend.len ? "during" : "before",
	         starttls_backend_awaited(&c->st->s));
	conn_refuse(c, why);
}

/* The hand-over: the engine eats the backend's greeting (and, with
 * XCLIENT, portier's own exchange). The same state serves a query (SMTP
 * optional): the engine sends the client's EHLO or HELO, answers the
 * client from the reply and says RESUME: back to PRELUDE, the backend
 * kept. The client's bytes wait in their buffer meanwhile: the phase ends
 * on the backend's pace alone, so its deadline blames the backend
 * rightly. */
void conn_starttls_handover(struct conn *c)
{
	struct conn_starttls *st = c->st;
	enum starttls_verdict v = STARTTLS_AGAIN;
	int moved = 1, r;

	for (int round = 0; moved && round < 16; round++) {
		moved = 0;
		if ((r = conn_pull_client(c, conn_client_in(c))) < 0) {
			conn_close_aborted(c, CONN_WHY_CLIENT_RESET, "client reset");
			return;
		}
		moved |= r;
		if ((r = conn_pull_backend(c, &st->from_backend)) < 0) {
			handover_cut(c, "reset");
			return;
		}
		moved |= r;
		v = starttls_backend_input(&st->s, &st->from_backend, &st->to_backend,
		                           &c->down);
		/* REPLY_AND_CLOSE: the engine refused the backend's greeting
		 * and already wrote the client's goodbye. */
		if (v != STARTTLS_AGAIN && v != STARTTLS_RELAY && v != STARTTLS_RESUME) {
			conn_refused(c, starttls_why(&st->s));
			return;
		}
		if ((r = conn_push_backend(c, &st->to_backend)) < 0) {
			conn_refuse(c, "backend reset during the hand-over");
			return;
		}
		moved |= r;
		if ((r = conn_push_client(c)) < 0) {
			conn_close_aborted(c, CONN_WHY_CLIENT_RESET, "client reset");
			return;
		}
		moved |= r;
		if ((v == STARTTLS_RELAY || v == STARTTLS_RESUME) &&
		    st->to_backend.len == 0)
			break;
		if (c->b_eof && v == STARTTLS_AGAIN) {
			handover_cut(c, "closed");
			return;
		}
	}
	if (v == STARTTLS_RESUME && st->to_backend.len == 0) {
		/* The answer is out (or on its way); the pre-TLS deadline
		 * goes on from where it was, not afresh. */
		conn_state_since(c, CONN_PRELUDE, st->since);
		conn_progress(c);
		return;
	}
	if (v != STARTTLS_RELAY || st->to_backend.len)
		return;
	/* The pre-TLS state goes before the relay starts: nothing from
	 * before TLS outlives the hand-over. What the backend sent after
	 * it belongs to the client, through the relay's filter. */
	{
		struct buf rest = st->from_backend;
		memset(&st->from_backend, 0, sizeof(st->from_backend));
		conn_starttls_free(c);
		conn_relay_start(c, &rest);
		buf_reset(&rest);
	}
}

int conn_starttls_bye(struct conn *c, int timeout, struct buf *out)
{
	return conn_starttls_say_bye(c, timeout ? STARTTLS_BYE_TIMEOUT :
	                             STARTTLS_BYE_UNAVAILABLE, out);
}

int conn_starttls_say_bye(struct conn *c, enum starttls_bye why, struct buf *out)
{
	const struct cfg_listener *l = c->svc->cl;
	const struct starttls_driver *drv = proto_get(l->proto)->starttls;
	struct starttls_params params = {.hostname = listener_hostname(c)};
	struct starttls_session tmp;

	if (c->st)
		return starttls_bye(&c->st->s, why, out) < 0 ? -1 : 0;
	/* Implicit-TLS mail and LDAP listeners refuse in the same words. */
	if (drv == NULL || starttls_init(&tmp, drv, &params) < 0)
		return -1;
	return starttls_bye(&tmp, why, out) < 0 ? -1 : 0;
}

/* ---- the rows' watchers and deadlines: PRELUDE, UPGRADING, HANDOVER ---- */

void conn_starttls_prelude_watch(const struct conn *c, int *ce, int *be)
{
	*ce = (!c->c_eof && !buf_full(&c->up) ? EV_READ : 0) |
	      (c->down.len ? EV_WRITE : 0);
}

void conn_starttls_prelude_expire(struct conn *c, double limit)
{
	buf_reset(&c->up);
	if (conn_starttls_bye(c, 1, &c->down) == 0) {
		/* The close line (after the goodbye) says how long it was:
		 * conn_close() words this reason itself. */
		c->close_reason = NULL;
		c->close_why = CONN_WHY_PRELUDE_TIMEOUT;
		conn_state(c, CONN_RESPOND);
		conn_progress(c);
		return;
	}
	conn_close(c, CONN_WHY_PRELUDE_TIMEOUT, NULL);
}

void conn_starttls_upgrading_watch(const struct conn *c, int *ce, int *be)
{
	*ce = c->down.len ? EV_WRITE : EV_READ;
}

void conn_starttls_upgrading_expire(struct conn *c, double limit)
{
	char why[64], lim[24];

	snprintf(why, sizeof(why), "no TLS handshake within %s of STARTTLS",
	         conn_limit_text(lim, sizeof(lim), limit));
	conn_close(c, CONN_WHY_PRELUDE_TIMEOUT, why);
}

void conn_starttls_handover_watch(const struct conn *c, int *ce, int *be)
{
	/* The client's bytes wait in the buffer until the relay starts. */
	if (!c->c_eof && !buf_full(conn_client_in((struct conn *)c)))
		*ce |= c->read_wants_write ? EV_WRITE : EV_READ;
	if (c->down.len)
		*ce |= c->write_wants_read ? EV_READ : EV_WRITE;
	*be = (c->b_eof ? 0 : EV_READ) |
	      (conn_starttls_backend_wants_write(c) ? EV_WRITE : 0);
}

void conn_starttls_handover_expire(struct conn *c, double limit)
{
	char why[160], lim[24];

	snprintf(why, sizeof(why), "backend %s: no %s within %s",
	         c->svc->cl->backend_text, starttls_backend_awaited(&c->st->s),
	         conn_limit_text(lim, sizeof(lim), limit));
	conn_refuse(c, why);
}
