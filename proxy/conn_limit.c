#include "conn.h"
#include "conn_int.h"
#include "cfg.h"
#include "limit.h"
#include "log.h"
#include "server.h"
#include "shared.h"
#include "starttls.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/*
 * The per-client limits (max_connections_per_ip, rate_per_ip) as a
 * connection meets them: the check at its start, against limit.c's shared
 * table, and the refusal in the protocol's words when it is over.
 */

static const char limited_http[] =
	"HTTP/1.1 503 Service Unavailable\r\n"
	"Retry-After: 60\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Length: 48\r\n"
	"Connection: close\r\n"
	"\r\n"
	"Too many connections from your address; later.\n";

/* A client in plaintext hears the protocol's "try later"; one that would
 * start TLS is closed before the handshake, so that no signature is spent
 * on it. */
int conn_limit_check(struct conn *c)
{
	const struct cfg_listener *l = c->svc->cl;
	struct shared *sh = shared_get();
	struct limit_rule r = {.max_conns = l->max_conns_per_ip,
	                       .rate_per_min = l->rate_per_min, .burst = l->rate_burst};
	struct sockaddr_storage ss = {0};
	enum limit_verdict v;
	int log_it;
	char what[64];

	if (sh == NULL || c->svc->stats == NULL || (!r.max_conns && !r.rate_per_min))
		return 0;
	r.v6_prefix = l->ipv6_prefix ? l->ipv6_prefix :
	              c->svc->srv->cfg->ipv6_prefix ? c->svc->srv->cfg->ipv6_prefix : 64;
	if (c->client.family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, c->client.ip, 4);
	} else if (c->client.family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, c->client.ip, 16);
	} else {
		return 0;
	}
	v = limit_admit(sh, (unsigned)(c->svc->stats - sh->slot), (struct sockaddr *)&ss,
	                &r, limit_now_ms(), &c->limit, &log_it);
	if (v == LIMIT_OK)
		return 0;
	if (v == LIMIT_FULL) {
		atomic_fetch_add_explicit(&c->svc->stats->limit_full, 1, memory_order_relaxed);
		if (log_it)
			log_warnx("[%s] client=%s: no room in the per-client table (its "
			          "set is full of clients holding connections); letting it "
			          "in uncounted, logged once per %us", l->name, c->peer,
			          (unsigned)LIMIT_LOG_INTERVAL_S);
		return 0;
	}
	atomic_fetch_add_explicit(&c->svc->stats->limited[v == LIMIT_RATE], 1,
	                          memory_order_relaxed);
	if (v == LIMIT_CONNS)
		snprintf(what, sizeof(what), "max_connections_per_ip (%u)", r.max_conns);
	else if (r.rate_per_min % 60 == 0)
		snprintf(what, sizeof(what), "rate_per_ip (%u/s, burst %u)",
		         r.rate_per_min / 60, r.burst);
	else
		snprintf(what, sizeof(what), "rate_per_ip (%u/m, burst %u)",
		         r.rate_per_min, r.burst);
	/* c->peer is formatted from the address's numbers: nothing of the
	 * client's choosing to escape. */
	if (log_it)
		log_warnx("[%s] client=%s: over %s; refusing it, logged once per %us",
		          l->name, c->peer, what, (unsigned)LIMIT_LOG_INTERVAL_S);
	c->limited = 1;
	if (l->mode == CFG_MODE_REDIRECT) {
		conn_respond(c, CONN_WHY_LIMITED, "over a per-client limit", limited_http);
		return -1;
	}
	if (l->mode == CFG_MODE_STARTTLS &&
	    conn_starttls_say_bye(c, STARTTLS_BYE_LIMITED, &c->down) == 0) {
		c->close_reason = "over a per-client limit";
		c->close_why = CONN_WHY_LIMITED;
		conn_state(c, CONN_RESPOND);
		conn_progress(c);
		return -1;
	}
	conn_close(c, CONN_WHY_LIMITED, "over a per-client limit");
	return -1;
}
