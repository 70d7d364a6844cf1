#ifndef PORTIER_PROBE_INT_H
#define PORTIER_PROBE_INT_H

/* Between probe_run.c (one probe: the target, the protocol and the model
 * the port should have, TLS set up, the name resolved, the judgement) and
 * probe.c (the conversation: the connections that classify the port and
 * sweep its TLS versions); nobody else. */

#include "probe.h"
#include "probe_talk.h"

struct addrinfo;

struct probe {
	/* options */
	const char *protocol, *sni, *cafile;
	long timeout_ms;
	int as_port;
	/* the run */
	struct addrinfo *ai;
	const struct addrinfo *addr;      /* the one that answered */
	const struct proto *proto;        /* NULL: not known (yet) */
	const struct proto_port *pp;      /* the judged port's entry, or NULL */
	int judged_port;
	enum probe_expect expect;         /* what the port should speak */
	enum probe_expect flow;           /* what to try first: expect, or
	                                     the config's mode */
	struct tlsctx *tls;
	const char *sni_sent;
	long long deadline;
	struct probe_result *res;
	struct probe_talk talk;
	int starttls_path;                /* TLS came after STARTTLS */
};

/* probe_soon(p, ms): ms from now, but not past the probe's deadline. */
long long probe_soon(const struct probe *p, long long ms);
/* probe_classify(p): every address of p->ai listed in p->res, then the
 * connections that classify the port (model, protocol, TLS, certificate)
 * and, when TLS worked, one per TLS version below the negotiated one; all
 * by p->deadline. */
void probe_classify(struct probe *p);

#endif
