#include "probe.h"
#include "cfg.h"
#include "diag.h"
#include "tlsctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* `portier probe --config FILE`: what a client sees on each listener of a
 * portier config, judged against the listener's mode too. */

/* The model a mode promises; -1 for mode = plain, which relays whatever
 * the backend speaks. */
static int promised(enum cfg_mode m)
{
	switch (m) {
	case CFG_MODE_TLS:      return PROBE_IMPLICIT_TLS;
	case CFG_MODE_STARTTLS: return PROBE_STARTTLS;
	case CFG_MODE_REDIRECT: return PROBE_PLAIN;
	default:                return -1;
	}
}

/* target, an ADDR:PORT, into out; a wildcard address (0.0.0.0, [::]) as
 * the loopback address of its family: a client reaches it there, and
 * names the certificate is checked against are no wildcards. */
static void reachable(const char *target, char *out, size_t outlen)
{
	if (strncmp(target, "0.0.0.0:", 8) == 0)
		snprintf(out, outlen, "127.0.0.1%s", target + 7);
	else if (strncmp(target, "[::]:", 5) == 0)
		snprintf(out, outlen, "[::1]%s", target + 4);
	else
		snprintf(out, outlen, "%s", target);
}

/* The targets of listener l: its lines in the ports_file (the bound ports,
 * also for port 0), else its configured addresses; a wildcard is probed on
 * loopback (127.0.0.1 for a bare port, which takes both families). host
 * replaces the address. Calls each(target) and returns the worst status. */
static int targets(const struct cfg *c, const struct cfg_listener *l, const char *host,
                   int (*each)(const char *, void *), void *arg)
{
	char line[512], target[300], name[256], addr[ADDR_STRLEN];
	int rc = 0, k, found = 0;
	FILE *f = c->ports_file ? fopen(c->ports_file, "re") : NULL;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *sp = strchr(line, ' '), *colon;

		line[strcspn(line, "\n")] = '\0';
		if (sp == NULL || (size_t)(sp - line) >= sizeof(name))
			continue;
		memcpy(name, line, (size_t)(sp - line));
		name[sp - line] = '\0';
		if (strcmp(name, l->name) != 0 || (colon = strrchr(sp + 1, ':')) == NULL)
			continue;
		found = 1;
		if (host != NULL)
			snprintf(target, sizeof(target), "%s%s%s%s", strchr(host, ':') ? "[" : "",
			         host, strchr(host, ':') ? "]" : "", colon);
		else
			reachable(sp + 1, target, sizeof(target));
		if ((k = each(target, arg)) > rc)
			rc = k;
	}
	if (f != NULL)
		fclose(f);
	for (size_t i = 0; !found && i < l->nlisten; i++) {
		const struct addr *a = &l->listen[i].addr;
		const char *h = host;

		if (h == NULL && a->any)
			h = "127.0.0.1";
		if (h != NULL)
			snprintf(target, sizeof(target), "%s%s%s:%d", strchr(h, ':') ? "[" : "", h,
			         strchr(h, ':') ? "]" : "", a->port);
		else
			reachable(addr_format((const struct sockaddr *)&a->ss, a->len, addr,
			                      sizeof(addr)), target, sizeof(target));
		if ((k = each(target, arg)) > rc)
			rc = k;
	}
	return rc;
}

/* With a certificate from a listener that serves the config's own: is it
 * one of them? 1 when that added a finding. */
static int compare_certs(const struct cfg_listener *l, struct probe_result *r)
{
	struct tlsctx_cert_info *want;
	const char *paths[16];
	size_t n = 0, before = r->nfindings;

	if (!r->have_cert || l->tls.ncerts == 0 ||
	    (l->mode != CFG_MODE_TLS && l->mode != CFG_MODE_STARTTLS))
		return 0;
	if ((want = calloc(l->tls.ncerts, sizeof(*want))) == NULL)
		return 0;
	/* A file this user cannot read is left out, not held against the
	 * server; none readable: no comparison (cert_config stays -1). */
	for (size_t i = 0; i < l->tls.ncerts && n < sizeof(paths) / sizeof(paths[0]); i++)
		if (tlsctx_file_cert(l->tls.certs[i].cert, &want[n]) == 0)
			paths[n++] = l->tls.certs[i].cert;
	probe_judge_config_cert(r, want, paths, n);
	free(want);
	return r->nfindings > before;
}

struct run {
	const char *path;
	const struct probe_opts *opts;
	const struct cfg_listener *l;
	int json, first;
	FILE *out;
};

static int one(const char *target, void *arg)
{
	struct run *run = arg;
	struct probe_opts o = *run->opts;
	struct probe_result *r = calloc(1, sizeof(*r));
	int promise = promised(run->l->mode), rc;

	if (r == NULL) {
		fprintf(stderr, "portier probe: out of memory\n");
		return 2;
	}
	r->listener = run->l->name;
	r->config = run->path;
	r->config_mode = promise < 0 ? NULL : cfg_mode_name(run->l->mode);
	r->config_model = promise < 0 ? PROBE_ERROR : (enum probe_model)promise;
	o.protocol = cfg_proto_name(run->l->proto);
	rc = probe_run(&o, target, r);
	if (compare_certs(run->l, r) && rc == 0)
		rc = 1;
	if (run->json) {
		fputs(run->first ? "" : ",", run->out);
		probe_report_json(r, run->out);
	} else {
		fprintf(run->out, "%s", run->first ? "" : "\n");
		probe_report_text(r, run->out);
	}
	run->first = 0;
	free(r);
	return rc;
}

int probe_config(const struct probe_opts *o, const char *path, const char *host, int json,
                 FILE *out)
{
	struct diag d = {0};
	struct cfg *c = cfg_load_file(path, &d);
	struct run run = { path, o, NULL, json, 1, out };
	int rc = 0, k;

	if (c == NULL) {
		diag_print(&d, stderr);
		fprintf(stderr, "portier probe: %s: configuration refused\n", path);
		diag_free(&d);
		return 2;
	}
	diag_free(&d);
	if (json) {
		fputs("{\"config\":", out);
		probe_report_json_str(out, path);
		fputs(",\"listeners\":[", out);
	}
	for (size_t i = 0; i < c->nlisteners; i++) {
		run.l = &c->listeners[i];
		if ((k = targets(c, run.l, host, one, &run)) > rc)
			rc = k;
	}
	if (json)
		fprintf(out, "]}\n");
	cfg_free(c);
	return rc;
}
