#include "conn.h"
#include "conn_int.h"
#include "backend.h"
#include "cfg.h"
#include "ftp_data.h"
#include "server.h"
#include "tlsctx.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/*
 * FTP's data connections as connections: their two ways in (a client's
 * connect to a passive port, the server's to an active one), DIALING (the
 * active mode's connect to the client, a row of conn.c's state table) and
 * what a data connection asks of its TLS handshake. The ports and their
 * broker are ftp_data.c.
 */

/* c (entered) becomes slot's data connection, with TLS when private,
 * bound to the control connection's session: 0, or -1 when c was closed. */
static int take_slot(struct conn *c, struct ftp_slot *slot, int private)
{
	c->ftp_slot = slot;
	ftp_slot_attach(slot, c);
	if (private && ((c->tls = tlsctx_accept(c->svc->tls, c->cfd)) == NULL ||
	    tlsctx_bind_session(c->tls, ftp_slot_sid(slot), FTP_SID_LEN) < 0)) {
		conn_close(c, CONN_WHY_NOMEM, "out of memory");
		return -1;
	}
	return 0;
}

void conn_ftp_new_data(struct svc *svc, int fd, const struct sockaddr *peer,
                       socklen_t len, struct ftp_slot *slot, int private)
{
	struct conn *c = conn_alloc(svc, fd, peer, len);

	if (c == NULL) {
		ftp_slot_closed(slot, 1);
		return;
	}
	conn_enter(c);
	if (take_slot(c, slot, private) == 0)
		conn_start_backend(c, ftp_slot_backend(slot));
	conn_settle(c);
}

void conn_ftp_new_active(struct svc *svc, int cfd, const struct sockaddr *peer,
                         socklen_t len, int bfd, struct ftp_slot *slot, int private)
{
	struct conn *c = conn_alloc(svc, cfd, peer, len);

	if (c == NULL) {
		backend_abort(bfd);
		close(bfd);
		ftp_slot_closed(slot, 1);
		return;
	}
	c->bfd = bfd;
	conn_enter(c);
	if (take_slot(c, slot, private) == 0)
		conn_state(c, CONN_DIALING);
	conn_settle(c);
}

/* Each control connection has its own session context, shared only with
 * its data connections: with require_session_reuse, one that did not
 * resume that session is not known to be the control client's. */
void conn_ftp_handshake_done(struct conn *c)
{
	struct tlsctx_info ti;

	tlsctx_describe(c->tls, &ti);
	if (c->svc->cl->ftp_session_reuse && !ti.resumed) {
		backend_abort(c->cfd);   /* both ends see a reset */
		conn_close_aborted(c, CONN_WHY_PROTOCOL, "data connection did not "
		           "resume the control connection's TLS session "
		           "(require_session_reuse)");
		return;
	}
	conn_relay_start(c, NULL);   /* the backend is connected */
}

void conn_ftp_dialing_watch(const struct conn *c, int *ce, int *be)
{
	*ce = EV_WRITE;
}

/* Active mode's connect to the client is over: TLS (the client speaks
 * first, as on any data connection), or the relay for PROT C. */
void conn_ftp_dialing_io(struct conn *c)
{
	char why[160];
	int err;

	if ((err = backend_finish(c->cfd)) != 0) {
		snprintf(why, sizeof(why), "active data connection to the client "
		         "failed: %s", strerror(err));
		conn_close_aborted(c, CONN_WHY_CLIENT_RESET, why);
		return;
	}
	if (c->tls) {
		conn_state(c, CONN_HANDSHAKE);
		return;
	}
	conn_relay_start(c, NULL);
}

void conn_ftp_dialing_expire(struct conn *c, double limit)
{
	char why[96], lim[24];

	snprintf(why, sizeof(why), "active data connection to the client: "
	         "connect timed out after %s", conn_limit_text(lim, sizeof(lim), limit));
	conn_close_aborted(c, CONN_WHY_CLIENT_RESET, why);
}
