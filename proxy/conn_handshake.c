#include "conn.h"
#include "conn_int.h"
#include "server.h"
#include "shared.h"
#include "tlsctx.h"

#include <stdio.h>

/*
 * HANDSHAKE: the TLS handshake of an implicit-TLS client (or of an FTP
 * data connection), and how every handshake is counted: completed ones by
 * version and resumption, with their latency; failed ones by the reason
 * the log line gives.
 */

void conn_handshake_watch(const struct conn *c, int *ce, int *be)
{
	*ce = c->read_wants_write ? EV_WRITE : EV_READ;
}

/* The counted reason of each kind of TLS failure. */
static const enum shared_hs_fail hs_fail_tls[] = {
	[TLSCTX_FAIL_OTHER] = SHARED_HS_OTHER,
	[TLSCTX_FAIL_VERSION] = SHARED_HS_VERSION_TOO_OLD,
	[TLSCTX_FAIL_CIPHER] = SHARED_HS_NO_SHARED_CIPHER,
	[TLSCTX_FAIL_GROUP] = SHARED_HS_NO_SHARED_GROUP,
	[TLSCTX_FAIL_ALPN] = SHARED_HS_ALPN_MISMATCH,
	[TLSCTX_FAIL_PLAINTEXT] = SHARED_HS_PLAINTEXT,
	[TLSCTX_FAIL_MALFORMED] = SHARED_HS_MALFORMED,
	[TLSCTX_FAIL_ALERT] = SHARED_HS_CLIENT_ALERT,
	[TLSCTX_FAIL_RESET] = SHARED_HS_CLIENT_RESET,
};

/* A completed handshake: by version and resumption, and how long it took
 * (conn_state() stamped c->last when it began; nothing else moves it
 * before the relay). */
static void count_handshake(struct conn *c)
{
	struct tlsctx_info ti;
	double took = ev_now(c->svc->srv->loop) - c->last;

	tlsctx_describe(c->tls, &ti);
	shared_count(c->svc->stats, SHARED_HANDSHAKES_OK, 1);
	shared_count_hs_ok(c->svc->stats, ti.version_id == 0x0304 ? SHARED_TLS13 :
	                   ti.version_id == 0x0303 ? SHARED_TLS12 : SHARED_TLS_OTHER,
	                   ti.resumed);
	shared_observe(c->svc->stats, SHARED_HIST_HANDSHAKE,
	               took > 0 ? (uint64_t)(took * 1e6) : 0);
}

void conn_handshake_io(struct conn *c)
{
	enum tlsctx_io r = tlsctx_handshake(c->tls);
	char why[256];

	c->read_wants_write = r == TLSCTX_WANT_WRITE;
	if (r == TLSCTX_WANT_READ || r == TLSCTX_WANT_WRITE)
		return;
	if (r != TLSCTX_OK) {
		enum tlsctx_fail kind = TLSCTX_FAIL_OTHER;
		if (r == TLSCTX_EOF || r == TLSCTX_CLOSED) {
			/* Part of a ClientHello is no plaintext client that
			 * waited for a greeting: the deadline's words too. */
			snprintf(why, sizeof(why), "client closed during the handshake%s",
			         tlsctx_hello_seen(c->tls) ? "" :
			         tlsctx_client_spoke(c->tls) ? " within an incomplete ClientHello" :
			         " without a ClientHello");
			c->hs_fail = SHARED_HS_CLIENT_CLOSED + 1;
		} else {
			tlsctx_failure(c->tls, why, sizeof(why), &kind);
			c->hs_fail = (uint8_t)(hs_fail_tls[kind] + 1);
		}
		conn_close(c, CONN_WHY_HANDSHAKE_FAILED, why);
		return;
	}
	c->read_wants_write = 0;
	c->hs_done = 1;
	count_handshake(c);
	if (c->ftp_slot) {
		conn_ftp_handshake_done(c);
		return;
	}
	conn_start_backend(c, &c->svc->cl->backend);
}

void conn_handshake_expire(struct conn *c, double limit)
{
	char why[256], lim[24];

	snprintf(why, sizeof(why), "TLS handshake timed out after %s%s",
	         conn_limit_text(lim, sizeof(lim), limit), tlsctx_hello_seen(c->tls) ? "" :
	         tlsctx_client_spoke(c->tls) ? " within an incomplete ClientHello" :
	         " with no ClientHello (a plaintext client waiting for a "
	         "greeting on an implicit-TLS port?)");
	conn_close(c, CONN_WHY_HANDSHAKE_TIMEOUT, why);
}

/* Why the handshake of c (closing for why) failed, as counted: what
 * conn_handshake_io() found, else what the close says. */
static enum shared_hs_fail hs_fail_of(const struct conn *c, enum conn_why why)
{
	if (c->hs_fail > 0)
		return (enum shared_hs_fail)(c->hs_fail - 1);
	switch (why) {
	case CONN_WHY_HANDSHAKE_TIMEOUT:
	case CONN_WHY_PRELUDE_TIMEOUT:     /* no TLS after STARTTLS */
		return SHARED_HS_TIMEOUT;
	case CONN_WHY_CLIENT_CLOSED:
		return SHARED_HS_CLIENT_CLOSED;
	case CONN_WHY_CLIENT_RESET:
		return SHARED_HS_CLIENT_RESET;
	case CONN_WHY_INJECTION:
		return SHARED_HS_STARTTLS_INJECTION;
	case CONN_WHY_SHUTDOWN:
		return SHARED_HS_SHUTDOWN;
	default:
		return SHARED_HS_OTHER;
	}
}

void conn_handshake_count_failure(const struct conn *c, enum conn_why why)
{
	shared_count(c->svc->stats, SHARED_HANDSHAKES_FAILED, 1);
	shared_count_hs_failed(c->svc->stats, hs_fail_of(c, why));
}
