#ifndef PORTIER_METRICS_H
#define PORTIER_METRICS_H

#include <stddef.h>

#include "shared.h"

/*
 * The Prometheus text exposition (format 0.0.4) of what the shared region
 * counts, for the stats endpoint (stats.h). A pure writer: it reads the
 * region and what the caller gives it (the build, the certificates of the
 * configuration the caller serves) and appends text to a growing buffer;
 * no socket, no loop. Every family has its # HELP and # TYPE lines; every
 * label value is escaped as the format asks (backslash, double quote and
 * newline) and is valid UTF-8.
 */

/* A growing text buffer; failed once an allocation did not succeed (the
 * text is then incomplete and must not be served). */
struct metrics_out {
	char *p;
	size_t len, cap;
	int failed;
};

/* What portier is, for portier_build_info. */
struct metrics_build {
	const char *version;
	const char *boringssl;
	int small;                 /* BoringSSL built with OPENSSL_SMALL */
};

/* One certificate a listener serves. */
struct metrics_cert {
	const char *listener;
	const char *subject;       /* its subject's CN; "" without one */
	const char *serial;        /* hex */
	long long not_after;       /* seconds since the epoch */
};

/* metrics_render(o, sh, b, certs, ncerts): append the whole exposition to
 * o: every listener slot of sh (NULL: none, and no process-wide counters),
 * b, and the certificates. 0, or -1 when o->failed. */
int metrics_render(struct metrics_out *o, const struct shared *sh,
                   const struct metrics_build *b, const struct metrics_cert *certs,
                   size_t ncerts);

/* metrics_label(o, v): append v escaped as a label value (without the
 * quotes): \ as \\, " as \", a newline as \n; each byte that starts no
 * valid UTF-8 character as U+FFFD; other bytes as they are. */
void metrics_label(struct metrics_out *o, const char *v);

/* metrics_append(o, s, n): append n bytes of s to o as they are. */
void metrics_append(struct metrics_out *o, const char *s, size_t n);

/* metrics_free(o): release o's text; o may be reused. */
void metrics_free(struct metrics_out *o);

#endif
