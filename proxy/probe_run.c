#include "probe_int.h"
#include "addr.h"
#include "diag.h"
#include "probe_io.h"
#include "proto.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One probe (probe_run()): the target split, the protocol chosen and the
 * model the judged port should have, TLS set up, the name resolved within
 * half the deadline; then the conversation (probe.c) and the judgement
 * (probe_judge.c). */

/* "host:port", "[v6]:port", the port 1 to 65535. 0 or -1. */
static int split_target(const char *t, char *host, size_t hostlen, int *port)
{
	const char *text;
	char *end;
	long v;

	if (addr_split_hostport(t, host, hostlen, &text) < 0)
		return -1;
	v = strtol(text, &end, 10);
	if (*end != '\0' || end == text || v < 1 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

/* The expected model of the judged port, for the protocol chosen. */
static void expectations(struct probe *p)
{
	const struct proto_port *pp = NULL;
	const struct proto *pr = proto_of_port(p->judged_port, &pp);

	p->expect = PROBE_EXPECT_UNKNOWN;
	p->pp = NULL;
	if (p->proto == NULL) {
		p->proto = pr;
		if (pr != NULL)
			p->res->protocol_from = "port";
	}
	if (pr == NULL || pr != p->proto)
		return;
	p->pp = pp;
	p->expect = pp->implicit ? PROBE_EXPECT_IMPLICIT
	            : pr->id == CFG_PROTO_HTTP ? PROBE_EXPECT_PLAIN : PROBE_EXPECT_STARTTLS;
}

/* probe_run()'s work: r filled, its exit status returned; p's resources
 * are the caller's to free. */
static int run(struct probe *p, const char *target)
{
	struct probe_result *r = p->res;
	struct addrinfo hints = {0};
	struct tlsctx_client_opts o = {0};
	struct diag d = {0};
	char portstr[8];
	long long start = probe_io_now();
	int e, k;

	r->model = PROBE_ERROR;
	r->cert_config = -1;
	r->starttls_offered = r->starttls_required = -1;
	for (int v = 0; v < PROBE_NVERSIONS; v++)
		r->versions[v] = -1;
	r->now = time(NULL);
	r->cafile = p->cafile;
	if (split_target(target, r->host, sizeof(r->host), &r->port) < 0) {
		/* The report names the target as given, not what was read of it. */
		snprintf(r->host, sizeof(r->host), "%s", target);
		r->port = 0;
		snprintf(r->error, sizeof(r->error), "'%s': expected HOST:PORT or [ADDRESS]:PORT",
		         target);
		return 2;
	}
	r->name = p->sni ? p->sni : r->host;
	p->sni_sent = r->name;
	p->judged_port = r->judged_port = p->as_port ? p->as_port : r->port;
	if (p->protocol != NULL) {
		/* --config gives "tcp" for a listener of no protocol. */
		p->proto = strcmp(p->protocol, "tcp") == 0 ? NULL : proto_find(p->protocol);
		if ((p->proto == NULL && r->listener == NULL) ||
		    (p->proto != NULL && p->proto->id == CFG_PROTO_TCP)) {
			snprintf(r->error, sizeof(r->error), "--protocol %s: expected smtp, imap, "
			         "pop3, ldap, ftp or http", p->protocol);
			return 2;
		}
		r->protocol_from = r->listener ? "config" : "option";
		r->protocol_given = r->listener == NULL;
	}
	expectations(p);
	r->protocol = p->proto ? p->proto->name : NULL;
	/* A listener's mode says what to try first where the port does not;
	 * judging by the port stays with the port. */
	p->flow = p->expect;
	if (p->flow == PROBE_EXPECT_UNKNOWN && r->config_mode != NULL)
		p->flow = r->config_model == PROBE_IMPLICIT_TLS ? PROBE_EXPECT_IMPLICIT
		          : r->config_model == PROBE_STARTTLS ? PROBE_EXPECT_STARTTLS
		          : PROBE_EXPECT_PLAIN;

	o.cafile = p->cafile;
	o.verify = 0;
	o.min_version_12 = 0;
	o.name_apart = 1;
	/* Mail and directory clients send no ALPN, and a server may refuse
	 * an id it does not know: only HTTP's are offered. */
	o.alpn = p->proto != NULL && p->proto->id == CFG_PROTO_HTTP ? "h2,http/1.1" : NULL;
	if ((p->tls = tlsctx_new_client(&o, &d)) == NULL) {
		snprintf(r->error, sizeof(r->error), "%s", d.n ? d.lines[0] : "cannot set up TLS");
		diag_free(&d);
		return 2;
	}
	diag_free(&d);

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", r->port);
	/* The whole probe, the name's resolution included, has --timeout; the
	 * resolver half of it at most, so that a slow one cannot make the
	 * port look filtered. */
	p->deadline = probe_io_now() + p->timeout_ms;
	if ((k = probe_io_resolve(r->host, portstr, &hints, probe_soon(p, p->timeout_ms / 2),
	                          &p->ai, &e)) != 0) {
		if (k == PROBE_IO_TIMEOUT)
			snprintf(r->error, sizeof(r->error), "%s: the resolver did not answer within "
			         "%ld ms (half the --timeout): check /etc/resolv.conf, or probe an "
			         "address", r->host, p->timeout_ms / 2);
		else
			snprintf(r->error, sizeof(r->error), "%s: %s", r->host, gai_strerror(e));
		r->elapsed_ms = (long)(probe_io_now() - start);
		return 2;
	}
	probe_classify(p);
	r->elapsed_ms = (long)(probe_io_now() - start);
	if (r->model == PROBE_FILTERED)
		probe_judge(r, p->proto, p->pp, p->expect);   /* its cause, the command */
	if (r->model == PROBE_ERROR || r->model == PROBE_CLOSED || r->model == PROBE_FILTERED)
		return 2;
	probe_judge(r, p->proto, p->pp, p->expect);
	/* Cut short (a greeting, then silence or a refusal of service; a
	 * server that closed without a word): the model is known but not
	 * the rest, which is not "nothing found". */
	return r->nfindings ? 1 : r->error[0] ? 2 : 0;
}

int probe_run(const struct probe_opts *opts, const char *target, struct probe_result *r)
{
	struct probe probe = {0}, *p = &probe;
	int rc;

	p->protocol = opts->protocol;
	p->sni = opts->sni;
	p->cafile = opts->cafile;
	p->timeout_ms = opts->timeout_ms;
	p->as_port = opts->as_port;
	p->res = r;
	rc = run(p, target);
	if (p->ai)
		freeaddrinfo(p->ai);
	tlsctx_free(p->tls);
	return rc;
}
