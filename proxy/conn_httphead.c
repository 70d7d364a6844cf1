#include "conn.h"
#include "conn_int.h"
#include "cfg.h"
#include "server.h"
#include "redirect.h"

#include <stdio.h>

/*
 * HTTPHEAD: a redirect listener reads one request head and answers it
 * (the redirect, or an error), or hands an ACME challenge to its backend.
 */

void conn_httphead_watch(const struct conn *c, int *ce, int *be)
{
	*ce = EV_READ;
}

void conn_httphead_io(struct conn *c)
{
	const struct cfg_listener *l = c->svc->cl;
	enum redirect_verdict v;
	struct redirect_req rq;

	if (conn_pull_client(c, &c->up) < 0) {
		conn_close_aborted(c, CONN_WHY_CLIENT_RESET, "client reset");
		return;
	}
	if (c->up.len == 0 && c->c_eof) {
		conn_close(c, CONN_WHY_CLIENT_CLOSED, "client closed");
		return;
	}
	v = redirect_handle(buf_peek(&c->up) ? buf_peek(&c->up) : (const uint8_t *)"",
	                    c->up.len, l->redirect_port,
	                    l->acme_backend_text != NULL, &c->down, &rq);
	if (v == REDIRECT_RESPOND) {
		buf_reset(&c->up);
		/* A 400 or 431 says why in the close line; a redirect "replied". */
		c->close_reason = rq.refusal;
		c->close_why = CONN_WHY_REPLIED;
		conn_state(c, CONN_RESPOND);
		conn_progress(c);
		return;
	}
	if (v == REDIRECT_ACME) {
		/* One request, and only its head: neither the empty lines
		 * before it nor what the client sent after it (a pipelined
		 * request) reach the backend, and the client is not read
		 * again. */
		buf_consume(&c->up, rq.head_off);
		buf_truncate(&c->up, rq.head_len);
		c->c_eof = 1;
		c->first_eof = "client";
		c->acme = 1;
		c->acme_head = rq.head;
		conn_start_backend(c, &l->acme_backend);
		return;
	}
	if (c->c_eof)
		conn_close(c, CONN_WHY_PROTOCOL, "client closed mid-request");
}

void conn_httphead_expire(struct conn *c, double limit)
{
	char why[64], lim[24];

	snprintf(why, sizeof(why), "no complete request within %s",
	         conn_limit_text(lim, sizeof(lim), limit));
	conn_close(c, CONN_WHY_REQUEST_TIMEOUT, why);
}
