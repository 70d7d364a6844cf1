#include "metrics.h"
#include "conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * One family after the other, each opened by head() with its HELP and
 * TYPE, then one sample line per listener (and per label value). The
 * counters are read with relaxed loads: a scrape sees each counter as it
 * was at some moment, not the whole region at one instant, which is what
 * Prometheus expects of any exporter.
 */

static int grow(struct metrics_out *o, size_t more)
{
	size_t cap = o->cap ? o->cap : 4096;
	char *p;

	if (o->failed)
		return -1;
	while (cap - o->len < more + 1)
		cap *= 2;
	if (cap == o->cap)
		return 0;
	if ((p = realloc(o->p, cap)) == NULL) {
		o->failed = 1;
		return -1;
	}
	o->p = p;
	o->cap = cap;
	return 0;
}

void metrics_append(struct metrics_out *o, const char *s, size_t n)
{
	if (n == 0 || grow(o, n) < 0)
		return;
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void puts_(struct metrics_out *o, const char *s)
{
	metrics_append(o, s, strlen(s));
}

static void printf_(struct metrics_out *o, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* Only numbers and fixed names go through here: they fit. */
	if (n > 0)
		metrics_append(o, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* The length of the UTF-8 character p starts (1 to 4), or 0 when p does
 * not start a valid one: no overlong form, surrogate or code point past
 * U+10FFFF (RFC 3629). p is NUL-terminated: a NUL is no continuation
 * byte, so nothing past it is read. */
static size_t utf8_len(const unsigned char *p)
{
	unsigned char lo, hi;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		lo = p[0] == 0xe0 ? 0xa0 : 0x80;
		hi = p[0] == 0xed ? 0x9f : 0xbf;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		lo = p[0] == 0xf0 ? 0x90 : 0x80;
		hi = p[0] == 0xf4 ? 0x8f : 0xbf;
		return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 &&
		       (p[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

void metrics_label(struct metrics_out *o, const char *v)
{
	const unsigned char *p = (const unsigned char *)v;

	while (*p) {
		size_t run = 0, n;

		while (p[run] && p[run] != '\\' && p[run] != '"' && p[run] != '\n' &&
		       (n = utf8_len(p + run)) > 0)
			run += n;
		metrics_append(o, (const char *)p, run);
		p += run;
		if (*p == '\0')
			break;
		/* A byte that starts no valid character: a Prometheus scrape
		 * with invalid UTF-8 in one label is refused whole. */
		puts_(o, *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n"
		      : "\xef\xbf\xbd");
		p++;
	}
}

void metrics_free(struct metrics_out *o)
{
	free(o->p);
	memset(o, 0, sizeof(*o));
}

static void head(struct metrics_out *o, const char *name, const char *type,
                 const char *help)
{
	puts_(o, "# HELP ");
	puts_(o, name);
	puts_(o, " ");
	puts_(o, help);
	puts_(o, "\n# TYPE ");
	puts_(o, name);
	puts_(o, " ");
	puts_(o, type);
	puts_(o, "\n");
}

/* name{listener="L"  -- the caller adds more labels, then "} value". */
static void open_sample(struct metrics_out *o, const char *name, const char *listener)
{
	puts_(o, name);
	puts_(o, "{listener=\"");
	metrics_label(o, listener);
	puts_(o, "\"");
}

static void value(struct metrics_out *o, unsigned long long v)
{
	printf_(o, "} %llu\n", v);
}

#define EACH_SLOT(sh, s) \
	for (const struct shared_slot *s = (sh)->slot; s < (sh)->slot + SHARED_SLOTS; s++) \
		if (atomic_load_explicit((_Atomic uint32_t *)&s->used, memory_order_acquire))

static void simple(struct metrics_out *o, const struct shared *sh, const char *name,
                   const char *type, const char *help, enum shared_stat k)
{
	head(o, name, type, help);
	EACH_SLOT(sh, s) {
		open_sample(o, name, s->name);
		value(o, shared_stat(s, k));
	}
}

static void histogram(struct metrics_out *o, const struct shared *sh, const char *name,
                      const char *help, enum shared_hist h)
{
	char full[96];

	head(o, name, "histogram", help);
	EACH_SLOT(sh, s) {
		const struct shared_histogram *hg = &s->hist[h];
		unsigned long long cum = 0;
		uint64_t sum_us = shared_load(&hg->sum_us);

		snprintf(full, sizeof(full), "%s_bucket", name);
		for (unsigned i = 0; i < SHARED_BUCKETS; i++) {
			cum += shared_load(&hg->bucket[i]);
			open_sample(o, full, s->name);
			printf_(o, ",le=\"%s\"", shared_bucket_le(i));
			value(o, cum);
		}
		snprintf(full, sizeof(full), "%s_sum", name);
		open_sample(o, full, s->name);
		printf_(o, "} %llu.%06llu\n", (unsigned long long)(sum_us / 1000000),
		        (unsigned long long)(sum_us % 1000000));
		snprintf(full, sizeof(full), "%s_count", name);
		open_sample(o, full, s->name);
		value(o, cum);
	}
}

static void per_listener(struct metrics_out *o, const struct shared *sh)
{
	const char *n;

	simple(o, sh, "portier_connections_accepted_total", "counter",
	       "Connections accepted.", SHARED_ACCEPTED);
	simple(o, sh, "portier_connections_active", "gauge",
	       "Connections open now.", SHARED_ACTIVE);
	n = "portier_connections_closed_total";
	head(o, n, "counter", "Connections closed, by close reason.");
	EACH_SLOT(sh, s)
		for (unsigned r = 0; r < CONN_WHY_COUNT; r++) {
			open_sample(o, n, s->name);
			printf_(o, ",reason=\"%s\"", conn_why_name((enum conn_why)r));
			value(o, shared_load(&s->closed[r]));
		}
	n = "portier_handshakes_total";
	head(o, n, "counter", "TLS handshakes completed, by version and resumption.");
	EACH_SLOT(sh, s)
		for (unsigned v = 0; v < SHARED_TLS_VERSIONS; v++)
			for (unsigned r = 0; r < 2; r++) {
				open_sample(o, n, s->name);
				printf_(o, ",version=\"%s\",resumed=\"%s\"",
				        shared_tls_version_name((enum shared_tls_version)v),
				        r ? "yes" : "no");
				value(o, shared_load(&s->hs_ok[v][r]));
			}
	n = "portier_handshake_failures_total";
	head(o, n, "counter", "TLS handshakes that failed (STARTTLS injection included), "
	     "by reason.");
	EACH_SLOT(sh, s)
		for (unsigned r = 0; r < SHARED_HS_FAILS; r++) {
			open_sample(o, n, s->name);
			printf_(o, ",reason=\"%s\"", shared_hs_fail_name((enum shared_hs_fail)r));
			value(o, shared_load(&s->hs_failed[r]));
		}
	n = "portier_limited_total";
	head(o, n, "counter", "Connections refused by a per-client limit "
	     "(max_connections_per_ip, rate_per_ip).");
	EACH_SLOT(sh, s)
		for (unsigned k = 0; k < 2; k++) {
			open_sample(o, n, s->name);
			printf_(o, ",limit=\"%s\"", k ? "rate_per_ip" : "max_connections_per_ip");
			value(o, shared_load(&s->limited[k]));
		}
	n = "portier_limit_table_full_total";
	head(o, n, "counter", "Connections let in uncounted by the per-client limits: "
	     "every entry of their set of the table held connections of other clients.");
	EACH_SLOT(sh, s) {
		open_sample(o, n, s->name);
		value(o, shared_load(&s->limit_full));
	}
	n = "portier_bytes_total";
	head(o, n, "counter", "Bytes relayed by connections that ended: up is client to "
	     "backend, down is backend to client.");
	EACH_SLOT(sh, s) {
		open_sample(o, n, s->name);
		puts_(o, ",direction=\"up\"");
		value(o, shared_load(&s->stat[SHARED_BYTES_UP]));
		open_sample(o, n, s->name);
		puts_(o, ",direction=\"down\"");
		value(o, shared_load(&s->stat[SHARED_BYTES_DOWN]));
	}
	n = "portier_backend_connect_failures_total";
	head(o, n, "counter", "Backends that could not be used, by kind.");
	EACH_SLOT(sh, s)
		for (unsigned k = 0; k < SHARED_BF_KINDS; k++) {
			open_sample(o, n, s->name);
			printf_(o, ",kind=\"%s\"",
			        shared_backend_fail_name((enum shared_backend_fail)k));
			value(o, shared_load(&s->backend_failed[k]));
		}
	histogram(o, sh, "portier_backend_connect_duration_seconds",
	          "Time from the start of a backend connect to its success.",
	          SHARED_HIST_CONNECT);
	histogram(o, sh, "portier_handshake_duration_seconds",
	          "Time from the start of a TLS handshake to its success.",
	          SHARED_HIST_HANDSHAKE);
	simple(o, sh, "portier_refusals_total", "counter",
	       "Refusals sent to clients in their protocol's words (HTTP 502, SMTP 421, "
	       "IMAP BYE, ...).", SHARED_REFUSALS);
}

static void process_wide(struct metrics_out *o, const struct shared *sh)
{
	head(o, "portier_workers_up", "gauge",
	     "Workers of the current configuration that serve.");
	printf_(o, "portier_workers_up %llu\n", (unsigned long long)shared_load(&sh->workers_up));
	head(o, "portier_reloads_total", "counter",
	     "Reloads (SIGHUP), by result: ok, or failed (refused or undone).");
	printf_(o, "portier_reloads_total{result=\"ok\"} %llu\n",
	        (unsigned long long)shared_load(&sh->reloads_ok));
	printf_(o, "portier_reloads_total{result=\"failed\"} %llu\n",
	        (unsigned long long)shared_load(&sh->reloads_failed));
	head(o, "portier_last_reload_timestamp_seconds", "gauge",
	     "When the last successful reload committed; 0 before any.");
	printf_(o, "portier_last_reload_timestamp_seconds %llu\n",
	        (unsigned long long)shared_load(&sh->last_reload));
	head(o, "portier_config_generation", "gauge",
	     "The configuration's generation: 1 at start, +1 per successful reload.");
	printf_(o, "portier_config_generation %llu\n",
	        (unsigned long long)shared_load(&sh->generation));
	head(o, "portier_log_lines_dropped_total", "counter",
	     "Log lines dropped because the log target could not take them.");
	printf_(o, "portier_log_lines_dropped_total %llu\n",
	        atomic_load_explicit((_Atomic unsigned long long *)&sh->log_dropped,
	                             memory_order_relaxed));
}

int metrics_render(struct metrics_out *o, const struct shared *sh,
                   const struct metrics_build *b, const struct metrics_cert *certs,
                   size_t ncerts)
{
	if (sh != NULL) {
		per_listener(o, sh);
		process_wide(o, sh);
	}
	head(o, "portier_build_info", "gauge",
	     "Always 1; the labels say which portier and BoringSSL build this is.");
	puts_(o, "portier_build_info{version=\"");
	metrics_label(o, b->version);
	puts_(o, "\",boringssl=\"");
	metrics_label(o, b->boringssl);
	printf_(o, "\",small=\"%s\"} 1\n", b->small ? "yes" : "no");
	head(o, "portier_certificate_expiry_timestamp_seconds", "gauge",
	     "The notAfter of every certificate a listener serves.");
	for (size_t i = 0; i < ncerts; i++) {
		open_sample(o, "portier_certificate_expiry_timestamp_seconds",
		            certs[i].listener);
		puts_(o, ",subject=\"");
		metrics_label(o, certs[i].subject);
		puts_(o, "\",serial=\"");
		metrics_label(o, certs[i].serial);
		printf_(o, "\"} %lld\n", certs[i].not_after);
	}
	return o->failed ? -1 : 0;
}
