#include "probe.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *vname[PROBE_NVERSIONS] = { "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3" };

const char *probe_model_name(enum probe_model m)
{
	static const char *names[] = { "error", "closed", "filtered", "implicit-tls",
	                               "starttls", "plain", "other" };
	return (size_t)m < sizeof(names) / sizeof(names[0]) ? names[m] : "error";
}

static const char *yesno(int v, const char *yes, const char *no, const char *unknown)
{
	return v > 0 ? yes : v == 0 ? no : unknown;
}

static void date(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y-%m-%d %H:%M UTC", &tm);
}

/* A certificate's text (NUL-ended, control characters already gone) as
 * printable ASCII. */
static const char *esc(const char *s, char *out, size_t outlen)
{
	return log_escape(s, strlen(s), out, outlen);
}

void probe_report_text(const struct probe_result *r, FILE *out)
{
	char buf[1100], d[40], when[32];
	int any;

	if (r->listener)
		fprintf(out, "[%s] mode = %s: ", r->listener, r->config_mode ? r->config_mode : "plain");
	/* As a target is written: an IPv6 address in brackets; a target that
	 * could not be read (no port), as it was given. */
	if (r->port == 0)
		fprintf(out, "%s", r->host);
	else
		fprintf(out, strchr(r->host, ':') ? "[%s]:%d" : "%s:%d", r->host, r->port);
	if (r->address[0] && strcmp(r->address, r->host) != 0)
		fprintf(out, " (%s)", r->address);
	/* A target not read was not probed: no protocol to speak of. */
	if (r->port != 0 && r->protocol && r->protocol_from &&
	    strcmp(r->protocol_from, "port") == 0)
		fprintf(out, "  %s (guessed from port %d)", r->protocol, r->judged_port);
	else if (r->port != 0 && r->protocol)
		fprintf(out, "  %s (from the %s)", r->protocol, r->protocol_from ? r->protocol_from : "?");
	else if (r->port != 0 && r->model != PROBE_CLOSED && r->model != PROBE_FILTERED)
		fprintf(out, "  (protocol unknown)");
	fprintf(out, "\n");
	if (r->naddresses_total > 1) {
		fprintf(out, "  addresses   ");
		for (size_t i = 0; i < r->naddresses; i++)
			fprintf(out, "%s %s %s", i ? "," : "", r->addresses[i].address,
			        r->addresses[i].result);
		if (r->naddresses_total > r->naddresses)
			fprintf(out, " (and %zu more, not tried)", r->naddresses_total - r->naddresses);
		fprintf(out, "\n");
	}
	fprintf(out, "  model        %s%s\n", r->model == PROBE_FILTERED ? "filtered (timeout)" :
	        probe_model_name(r->model), r->model == PROBE_STARTTLS && r->starttls_required >= 0
	        ? (r->starttls_required ? " (required: no login before TLS)"
	                                : " (offered, not required)") : "");
	if (r->error[0])
		fprintf(out, "  error        %s\n", r->error);
	if (r->greeting[0])
		fprintf(out, "  greeting     \"%s\"\n", r->greeting);
	if (r->http_status[0])
		fprintf(out, "  http         \"%s\"%s%s\n", r->http_status,
		        r->http_location[0] ? " -> " : "", r->http_location);
	if (r->starttls_offered >= 0 && r->model != PROBE_IMPLICIT_TLS)
		fprintf(out, "  starttls     %s\n", r->starttls_offered ? "offered" : "not offered");
	if (r->tls) {
		fprintf(out, "  tls          %s, %s, %s, ALPN %s, %s\n", r->version, r->cipher,
		        r->group[0] ? r->group : "no group", r->alpn[0] ? r->alpn : "none",
		        r->ocsp_stapled ? "OCSP stapled" : "no OCSP staple");
		fprintf(out, "  versions    ");
		for (int v = 0; v < PROBE_NVERSIONS; v++)
			fprintf(out, " %s %s", vname[v], yesno(r->versions[v], "yes", "no", "untried"));
		fprintf(out, "\n");
	} else if (r->tls_error[0]) {
		fprintf(out, "  tls          failed: %s\n", r->tls_error);
	}
	if (r->have_cert) {
		const struct tlsctx_cert_info *c = &r->cert;
		fprintf(out, "  certificate  %s\n", c->subject_cn[0] ? esc(c->subject_cn, buf, sizeof(buf))
		        : "(no CN)");
		fprintf(out, "    names      ");
		for (size_t i = 0; i < c->nsans; i++)
			fprintf(out, "%s%s", i ? ", " : "", esc(c->sans[i], buf, sizeof(buf)));
		if (c->nsans_total > c->nsans)
			fprintf(out, " (and %zu more)", c->nsans_total - c->nsans);
		fprintf(out, "%s\n", c->nsans_total ? "" : "(none)");
		fprintf(out, "    issuer     %s\n", esc(c->issuer, buf, sizeof(buf)));
		date(c->not_after, d, sizeof(d));
		fprintf(out, "    expires    %s (%s %s)\n", d, probe_cert_when(r, when, sizeof(when)),
		        c->not_after > r->now ? "left" : "ago");
		fprintf(out, "    key        %s %d bits\n", c->key_type, c->key_bits);
		fprintf(out, "    name       %s %s\n", r->name, !r->name_matches ? "does NOT match" :
		        r->name_by_cn ? "matches, by the subject CN alone" : "matches");
		if (c->verified)
			fprintf(out, "    chain      verified against %s\n", r->cafile ? r->cafile : "the system store");
		else
			fprintf(out, "    chain      NOT verified against %s: %s\n",
			        r->cafile ? r->cafile : "the system store", c->verify_error);
		if (r->cert_config >= 0)
			fprintf(out, "    config     %s %s\n", r->cert_config ? "the one in" :
			        "NOT the one in", r->cert_config_files);
	}
	fprintf(out, "  connections  %d in %ld ms\n", r->connections, r->elapsed_ms);
	any = r->nfindings > 0;
	if (any) {
		fprintf(out, "findings:\n");
		for (size_t i = 0; i < r->nfindings; i++)
			fprintf(out, "  - %s [%s]\n", r->findings[i].text, r->findings[i].id);
	} else if (r->model != PROBE_ERROR && r->model != PROBE_CLOSED &&
	           r->model != PROBE_FILTERED) {
		fprintf(out, "%s\n", r->error[0] ? "no problems found before the probe "
		        "stopped (error above): the rest is not known" : "no problems found");
	}
}

static void jstr(FILE *out, const char *s);

/* A JSON string of text the server or a file chose (certificate names, a
 * path): escaped as the human output shows it (\xHH), then JSON-encoded,
 * so both say the same and the bytes can be read back. */
void probe_report_json_str(FILE *out, const char *s)
{
	char esc[1100];

	jstr(out, s ? log_escape(s, strlen(s), esc, sizeof(esc)) : NULL);
}

static void jstr(FILE *out, const char *s)
{
	if (s == NULL) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

static void jbool(FILE *out, int v)
{
	fputs(v > 0 ? "true" : v == 0 ? "false" : "null", out);
}

void probe_report_json(const struct probe_result *r, FILE *out)
{
	const struct tlsctx_cert_info *c = &r->cert;

	fprintf(out, "{\"host\":");
	jstr(out, r->host);
	fprintf(out, ",\"address\":");
	jstr(out, r->address[0] ? r->address : NULL);
	fprintf(out, ",\"addresses\":[");
	for (size_t i = 0; i < r->naddresses; i++) {
		fprintf(out, "%s{\"address\":", i ? "," : "");
		jstr(out, r->addresses[i].address);
		fprintf(out, ",\"result\":");
		jstr(out, r->addresses[i].result);
		fputc('}', out);
	}
	fprintf(out, "],\"addresses_total\":%zu", r->naddresses_total);
	fprintf(out, ",\"port\":%d,\"judged_port\":%d,\"model\":", r->port, r->judged_port);
	jstr(out, probe_model_name(r->model));
	fprintf(out, ",\"protocol\":");
	jstr(out, r->protocol);
	fprintf(out, ",\"protocol_from\":");
	jstr(out, r->protocol_from);
	fprintf(out, ",\"greeting\":");
	jstr(out, r->greeting[0] ? r->greeting : NULL);
	fprintf(out, ",\"starttls_offered\":");
	jbool(out, r->starttls_offered);
	fprintf(out, ",\"starttls_required\":");
	jbool(out, r->starttls_offered == 1 ? r->starttls_required : -1);
	fprintf(out, ",\"http_status\":");
	jstr(out, r->http_status[0] ? r->http_status : NULL);
	fprintf(out, ",\"http_location\":");
	jstr(out, r->http_location[0] ? r->http_location : NULL);
	fprintf(out, ",\"tls\":");
	jbool(out, r->tls);
	fprintf(out, ",\"tls_error\":");
	jstr(out, r->tls_error[0] ? r->tls_error : NULL);
	fprintf(out, ",\"tls_version\":");
	jstr(out, r->tls ? r->version : NULL);
	fprintf(out, ",\"tls_versions\":{");
	for (int v = 0; v < PROBE_NVERSIONS; v++) {
		fprintf(out, "%s\"%s\":", v ? "," : "", vname[v]);
		jbool(out, r->versions[v]);
	}
	fprintf(out, "},\"cipher\":");
	jstr(out, r->tls ? r->cipher : NULL);
	fprintf(out, ",\"group\":");
	jstr(out, r->tls && r->group[0] ? r->group : NULL);
	fprintf(out, ",\"alpn\":");
	jstr(out, r->tls && r->alpn[0] ? r->alpn : NULL);
	fprintf(out, ",\"ocsp_stapled\":");
	jbool(out, r->tls ? r->ocsp_stapled : -1);
	fprintf(out, ",\"certificate\":");
	if (!r->have_cert) {
		fputs("null", out);
	} else {
		fprintf(out, "{\"subject_cn\":");
		probe_report_json_str(out, c->subject_cn);
		fprintf(out, ",\"sans\":[");
		for (size_t i = 0; i < c->nsans; i++) {
			if (i)
				fputc(',', out);
			probe_report_json_str(out, c->sans[i]);
		}
		fprintf(out, "],\"sans_total\":%zu,\"issuer\":", c->nsans_total);
		probe_report_json_str(out, c->issuer);
		fprintf(out, ",\"serial\":");
		jstr(out, c->serial);
		fprintf(out, ",\"not_before\":%lld,\"not_after\":%lld,\"days_left\":%ld,"
		        "\"key_type\":", (long long)c->not_before, (long long)c->not_after,
		        probe_days_left(r));
		jstr(out, c->key_type);
		fprintf(out, ",\"key_bits\":%d,\"name\":", c->key_bits);
		jstr(out, r->name);
		fprintf(out, ",\"name_matches\":");
		jbool(out, r->name_matches);
		fprintf(out, ",\"name_by_cn\":");
		jbool(out, r->name_by_cn);
		fprintf(out, ",\"verified\":");
		jbool(out, c->verified);
		fprintf(out, ",\"verify_error\":");
		jstr(out, c->verified ? NULL : c->verify_error);
		fputc('}', out);
	}
	fprintf(out, ",\"findings\":[");
	for (size_t i = 0; i < r->nfindings; i++) {
		fprintf(out, "%s{\"id\":", i ? "," : "");
		jstr(out, r->findings[i].id);
		fprintf(out, ",\"message\":");
		jstr(out, r->findings[i].text);
		fputc('}', out);
	}
	fprintf(out, "],\"error\":");
	jstr(out, r->error[0] ? r->error : NULL);
	fprintf(out, ",\"listener\":");
	jstr(out, r->listener);
	fprintf(out, ",\"config_mode\":");
	jstr(out, r->config_mode);
	fprintf(out, ",\"cert_config\":");
	jbool(out, r->cert_config);
	fprintf(out, ",\"connections\":%d,\"elapsed_ms\":%ld}", r->connections, r->elapsed_ms);
}
