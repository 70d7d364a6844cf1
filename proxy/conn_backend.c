#include "conn.h"
#include "conn_int.h"
#include "backend.h"
#include "cfg.h"
#include "log.h"
#include "proto.h"
#include "proxy_header.h"
#include "server.h"
#include "shared.h"
#include "tlsctx.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * The way to the backend: the PROXY header that opens it, the connect, and
 * what the client is told when the backend cannot be used (the protocol's
 * refusal, a canned response, or an orderly end).
 */

const char *conn_backend_text(const struct conn *c)
{
	if (c->ftp_slot)
		return "(passive data port)";
	return c->acme ? c->svc->cl->acme_backend_text : c->svc->cl->backend_text;
}

/* ---- refusals ---- */

void conn_respond(struct conn *c, enum conn_why why, const char *reason,
                  const char *text)
{
	const char *body = c->acme_head ? strstr(text, "\r\n\r\n") : NULL;
	/* The response to HEAD is its head alone (RFC 9110 §9.3.2). */
	size_t n = body ? (size_t)(body + 4 - text) : strlen(text);

	buf_reset(&c->up);
	buf_reset(conn_client_in(c));
	if (buf_append(&c->down, text, n) < 0) {
		conn_close(c, CONN_WHY_NOMEM, "no room for the reply");
		return;
	}
	c->close_reason = reason;
	c->close_why = why;
	/* An ACME request's client was not read past its head (c_eof was
	 * set there): read out what it sent since, as after a reply, so
	 * that closing does not reset the refusal. */
	if (c->acme)
		c->c_eof = 0;
	conn_state(c, CONN_RESPOND);
	conn_progress(c);
}

void conn_backend_failed(struct conn *c, int err)
{
	enum shared_backend_fail kind;

	switch (err) {
	case ECONNREFUSED:
	case ENOENT:          /* a unix socket nobody serves */
		kind = SHARED_BF_REFUSED;
		break;
	case ETIMEDOUT:
		kind = SHARED_BF_TIMEOUT;
		break;
	case ENETUNREACH:
	case EHOSTUNREACH:
	case ENETDOWN:
	case EHOSTDOWN:
		kind = SHARED_BF_UNREACHABLE;
		break;
	default:
		kind = SHARED_BF_OTHER;
		break;
	}
	shared_count_backend_failed(c->svc->stats, kind);
}

static void drop_backend(struct conn *c)
{
	if (c->bfd >= 0) {
		ev_io_stop(c->svc->srv->loop, &c->bio);
		close(c->bfd);
		c->bfd = -1;
	}
}

void conn_backend_drop(struct conn *c)
{
	drop_backend(c);
	buf_reset(&c->pre);
	c->b_eof = c->b_rd = c->b_wr = 0;
}

const char *conn_refusal(const struct conn *c)
{
	const char *r = proto_get(c->svc->cl->proto)->refusal;
	char alpn[64];

	if (r == NULL || c->tls == NULL)
		return r;
	tlsctx_alpn_selected(c->tls, alpn, sizeof(alpn));
	return alpn[0] == '\0' || strncmp(alpn, "http/1.", 7) == 0 ? r : NULL;
}

/* said: the protocol's goodbye is in c->down already. */
static void refuse(struct conn *c, const char *why, int said)
{
	const struct cfg_listener *l = c->svc->cl;
	const struct proto *p = proto_get(l->proto);
	const char *refusal = conn_refusal(c);

	if (c->ftp_slot) {
		/* A data connection has no words: it breaks off, a reset on
		 * both sides as for any data connection portier ends itself,
		 * so a client of PROT C never takes the end of a download
		 * for a whole (empty) file. */
		log_warnx("[%s] data client=%s: %s", l->name, c->peer, why);
		backend_abort(c->cfd);
		conn_close_aborted(c, CONN_WHY_BACKEND_DOWN, why);
		return;
	}
	/* The hand-over's failures are the backend's greeting; the connect's
	 * were counted where errno said what they were. */
	if (c->state == CONN_HANDOVER)
		shared_count_backend_failed(c->svc->stats, SHARED_BF_GREETING);
	drop_backend(c);
	buf_reset(&c->up);
	buf_reset(conn_client_in(c));
	if (!said && refusal != NULL) {
		shared_count(c->svc->stats, SHARED_REFUSALS, 1);
		log_warnx("[%s] client=%s: %s; refusing in %s", l->name, c->peer, why,
		          p->name);
		conn_respond(c, CONN_WHY_BACKEND_DOWN,
		             "backend unavailable, refused in protocol", refusal);
		return;
	}
	if (said || conn_starttls_bye(c, 0, &c->down) == 0) {
		shared_count(c->svc->stats, SHARED_REFUSALS, 1);
		log_warnx("[%s] client=%s: %s; refusing in %s", l->name, c->peer, why,
		          p->name);
		c->close_reason = "backend unavailable, refused in protocol";
		c->close_why = CONN_WHY_BACKEND_DOWN;
		conn_state(c, CONN_RESPOND);
		conn_progress(c);
		return;
	}
	if (c->tls != NULL) {
		/* A protocol without words (tcp): the refusal is an orderly end
		 * of the TLS session, close_notify, not a cut connection. */
		log_warnx("[%s] client=%s: %s; ending the TLS session", l->name, c->peer, why);
		c->close_reason = "backend unavailable";
		c->close_why = CONN_WHY_BACKEND_DOWN;
		conn_state(c, CONN_RESPOND);
		conn_progress(c);
		return;
	}
	conn_close(c, CONN_WHY_BACKEND_DOWN, why);
}

void conn_acme_unanswered(struct conn *c, const char *limit)
{
	const struct cfg_listener *l = c->svc->cl;

	/* What a proxy says when its upstream does not answer in time (RFC
	 * 9110 §15.6.5): the CA's validator reports a timeout at the
	 * backend, where a bare close would look like portier's fault. */
	drop_backend(c);
	shared_count(c->svc->stats, SHARED_REFUSALS, 1);
	log_warnx("[%s] client=%s: acme_backend %s sent no reply within %s; refusing in http",
	          l->name, c->peer, l->acme_backend_text, limit);
	conn_respond(c, CONN_WHY_BACKEND_DOWN, "acme_backend sent no reply, refused in protocol",
	             proto_get(l->proto)->silent);
}

void conn_refuse(struct conn *c, const char *why)
{
	refuse(c, why, 0);
}

void conn_refused(struct conn *c, const char *why)
{
	refuse(c, why, 1);
}

/* send_proxy: the PROXY header into c->pre, from the client's address,
 * the one it reached (the client socket's own, or what a load balancer's
 * PROXY header said: the backend is told what the client dialled, not the
 * backend connection's) and its TLS session.
 * 0, or -1 with errno. */
static int proxy_preamble(struct conn *c)
{
	const struct cfg_listener *l = c->svc->cl;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct conn_addr local = {0};
	struct tlsctx_info ti;
	struct proxy_tls pt = {0};
	char alpn[PROXY_ALPN_MAX + 1];

	if (l->send_proxy == PROXY_OFF || c->ftp_slot)
		return 0;   /* a data connection is the file, nothing else */
	if (c->local_known)
		local = c->local;
	else if (getsockname(c->cfd, (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	else
		conn_addr_keep(&local, (const struct sockaddr *)&ss);
	if (c->tls) {
		tlsctx_describe(c->tls, &ti);
		pt.version = ti.version;
		pt.cipher = ti.cipher;
		pt.sni = ti.sni;
		pt.alpn = tlsctx_alpn_selected(c->tls, alpn, sizeof(alpn));
	}
	if (proxy_header(&c->pre, (enum proxy_version)l->send_proxy, &c->client,
	                 &local, c->tls ? &pt : NULL) < 0) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

void conn_start_backend(struct conn *c, const struct addr *a)
{
	char why[160];

	if (c->st != NULL && c->bfd >= 0) {
		/* SMTP optional: connected (and its PROXY header sent) for
		 * the client's EHLO already, and the client goes on in
		 * plaintext or says EHLO again: the hand-over goes on there
		 * (an upgrade dropped it: conn_backend_drop()). */
		conn_state(c, CONN_HANDOVER);
		conn_progress(c);
		return;
	}
	if (proxy_preamble(c) < 0) {
		snprintf(why, sizeof(why), "no PROXY header: %s", strerror(errno));
		conn_close(c, CONN_WHY_NOMEM, why);
		return;
	}
	if ((c->bfd = backend_connect(a)) < 0) {
		conn_backend_failed(c, errno);
		snprintf(why, sizeof(why), "backend %s: %s", conn_backend_text(c), strerror(errno));
		conn_refuse(c, why);
		return;
	}
	c->b_wr = 0;
	conn_state(c, CONN_CONNECTING);
}

/* ---- CONNECTING: the backend's connect, the client's bytes kept ---- */

void conn_connecting_watch(const struct conn *c, int *ce, int *be)
{
	/* An FTP data connection reads its client only in TLS, after. */
	if (!c->ftp_slot && !c->c_eof && !buf_full(conn_client_in((struct conn *)c)))
		*ce = c->read_wants_write ? EV_WRITE : EV_READ;
	*be = EV_WRITE;
}

void conn_connecting_io(struct conn *c)
{
	char why[160];
	double took;
	int err;

	/* The client may already send; its bytes wait in the buffer. */
	if (!c->ftp_slot && conn_pull_client(c, conn_client_in(c)) < 0) {
		conn_close_aborted(c, CONN_WHY_CLIENT_RESET, "client reset");
		return;
	}
	if (!c->b_wr)
		return;
	c->b_wr = 0;
	if ((err = backend_finish(c->bfd)) != 0) {
		conn_backend_failed(c, err);
		snprintf(why, sizeof(why), "backend %s: %s", conn_backend_text(c), strerror(err));
		conn_refuse(c, why);
		return;
	}
	took = ev_now(c->svc->srv->loop) - c->last;   /* since CONNECTING began */
	shared_observe(c->svc->stats, SHARED_HIST_CONNECT,
	               took > 0 ? (uint64_t)(took * 1e6) : 0);
	if (c->st) {
		conn_state(c, CONN_HANDOVER);
		conn_progress(c);
		return;
	}
	if (c->ftp_slot && c->tls) {
		/* The backend first: vsftpd says 150 only once its data
		 * connection is there, and the client starts TLS only then. */
		conn_state(c, CONN_HANDSHAKE);
		conn_progress(c);
		return;
	}
	conn_relay_start(c, NULL);
}

void conn_connecting_expire(struct conn *c, double limit)
{
	char why[160], lim[24];

	conn_backend_failed(c, ETIMEDOUT);
	snprintf(why, sizeof(why), "backend %s: connect timed out after %s",
	         conn_backend_text(c), conn_limit_text(lim, sizeof(lim), limit));
	conn_refuse(c, why);
}
