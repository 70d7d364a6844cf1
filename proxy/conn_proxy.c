#include "conn.h"
#include "conn_int.h"
#include "addr.h"
#include "cfg.h"
#include "cidr.h"
#include "log.h"
#include "proxy_parse.h"
#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/*
 * PROXYHEAD, the first state of an accept_proxy listener: the PROXY header
 * a load balancer sends before the client's first byte. The header is read
 * and never a byte past it: what follows belongs to TLS (whose socket BIO
 * reads ahead, so it must not exist yet) or to the protocol's prelude. The
 * bytes are looked at with MSG_PEEK and only the header's are taken off
 * the socket; a partial header is taken off whole (every byte of it is the
 * header's) and kept in c->up until the rest comes.
 */

int conn_proxy_allowed(struct conn *c)
{
	const struct cfg_listener *l = c->svc->cl;
	char esc[LOG_ESCAPED_SIZE(sizeof(c->peer))];
	char why[sizeof(esc) + 64];

	if (cidr_match(l->proxy_from, l->nproxy_from, &c->client))
		return 1;
	snprintf(why, sizeof(why), "%s is not in accept_proxy_from",
	         log_escape_str(c->peer, esc, sizeof(esc)));
	conn_close(c, CONN_WHY_PROTOCOL, why);
	return 0;
}

/* The client the header names becomes the connection's client. */
static void take_addresses(struct conn *c, const struct proxy_parsed *p)
{
	struct sockaddr_storage ss;
	socklen_t len;

	memset(&ss, 0, sizeof(ss));
	if (p->src.family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(p->src.port);
		memcpy(&in->sin_addr, p->src.ip, 4);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(p->src.port);
		memcpy(&in6->sin6_addr, p->src.ip, 16);
		len = sizeof(*in6);
	}
	addr_format((const struct sockaddr *)&ss, len, c->peer, sizeof(c->peer));
	c->client = p->src;
	c->local = p->dst;
	c->local_known = 1;
}

/* Take n bytes the peek saw off the socket into `keep` (or drop them). */
static int take(struct conn *c, uint8_t *into, size_t n)
{
	ssize_t r;

	do
		r = recv(c->cfd, into, n, 0);
	while (r < 0 && errno == EINTR);
	return r == (ssize_t)n ? 0 : -1;
}

void conn_proxy_io(struct conn *c)
{
	uint8_t hb[PROXY_PARSE_MAX];
	size_t have = c->up.len;
	struct proxy_parsed p;
	const char *why;
	char text[160];
	ssize_t r;

	if (have)
		memcpy(hb, buf_peek(&c->up), have);
	do
		r = recv(c->cfd, hb + have, sizeof(hb) - have, MSG_PEEK);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		conn_close(c, CONN_WHY_CLIENT_RESET, "client reset before its PROXY header ended");
		return;
	}
	if (r == 0) {
		conn_close(c, CONN_WHY_CLIENT_CLOSED, have ?
		           "client closed within its PROXY header" :
		           "client closed before a PROXY header");
		return;
	}
	switch (proxy_parse(hb, have + (size_t)r, &p, &why)) {
	case PROXY_PARSE_AGAIN:
		if (take(c, hb + have, (size_t)r) < 0 ||
		    buf_append(&c->up, hb + have, (size_t)r) < 0)
			conn_close(c, CONN_WHY_NOMEM, "cannot keep the PROXY header");
		return;
	case PROXY_PARSE_ERROR:
		snprintf(text, sizeof(text), "bad PROXY header: %s", why);
		conn_close(c, CONN_WHY_PROTOCOL, text);
		return;
	case PROXY_PARSE_OK:
		break;
	}
	if (take(c, hb + have, p.len - have) < 0) {
		conn_close(c, CONN_WHY_CLIENT_RESET, "PROXY header lost on the socket");
		return;
	}
	buf_reset(&c->up);
	/* LOCAL (the balancer's own health check) and UNSPEC name nobody:
	 * the connection's own addresses stand. */
	if (!p.local)
		take_addresses(c, &p);
	conn_begin(c);
}

void conn_proxy_watch(const struct conn *c, int *ce, int *be)
{
	*ce = EV_READ;
}

void conn_proxy_expire(struct conn *c, double limit)
{
	char why[80], lim[24];

	snprintf(why, sizeof(why), "no complete PROXY header within %s",
	         conn_limit_text(lim, sizeof(lim), limit));
	conn_close(c, CONN_WHY_PRELUDE_TIMEOUT, why);
}
