/* The exposition writer and the stats endpoint's request judge: label
 * values escaped as the text format asks, every family with HELP and TYPE,
 * histograms cumulative with a matching count, and the request line judged
 * for path and method. */
#include "check.h"
#include "conn.h"
#include "metrics.h"
#include "shared.h"
#include "stats.h"

#include <stdlib.h>
#include <string.h>

static void test_escape(void)
{
	struct metrics_out o = {0};

	metrics_label(&o, "plain");
	CHECK_STR(o.p, "plain");
	metrics_free(&o);
	metrics_label(&o, "a\\b\"c\nd");
	CHECK_STR(o.p, "a\\\\b\\\"c\\nd");
	metrics_free(&o);
	metrics_label(&o, "\"\"\n\\");
	CHECK_STR(o.p, "\\\"\\\"\\n\\\\");
	metrics_free(&o);
	/* Bytes other than those three pass as they are (UTF-8 included). */
	metrics_label(&o, "caf\xc3\xa9 {x}=1,");
	CHECK_STR(o.p, "caf\xc3\xa9 {x}=1,");
	metrics_free(&o);
	metrics_label(&o, "\xf0\x9f\x98\x80\xe2\x82\xac\xf4\x8f\xbf\xbf\xed\x9f\xbf");
	CHECK_STR(o.p, "\xf0\x9f\x98\x80\xe2\x82\xac\xf4\x8f\xbf\xbf\xed\x9f\xbf");
	metrics_free(&o);
	/* Invalid UTF-8, which makes Prometheus refuse the whole scrape: each
	 * byte that starts no character becomes U+FFFD. Half a character at
	 * the end (a name cut short), a stray continuation byte, an overlong
	 * '/', a surrogate, past U+10FFFF, a byte UTF-8 never has. */
#define FFFD "\xef\xbf\xbd"
	metrics_label(&o, "ab\xf0\x9f\x98");
	CHECK_STR(o.p, "ab" FFFD FFFD FFFD);
	metrics_free(&o);
	metrics_label(&o, "\x80x\xc0\xafy\xed\xa0\x80z\xf4\x90\x80\x80\xff");
	CHECK_STR(o.p, FFFD "x" FFFD FFFD "y" FFFD FFFD FFFD "z" FFFD FFFD FFFD FFFD FFFD);
	metrics_free(&o);
	metrics_label(&o, "\xc3\"\xe2\x82\n\\\xc3\xa9");
	CHECK_STR(o.p, FFFD "\\\"" FFFD FFFD "\\n\\\\\xc3\xa9");
	metrics_free(&o);
	/* Each lead byte's range at both ends, and each first continuation
	 * byte's bound: the smallest and largest character of every length
	 * pass; the overlong forms just below them, and a lead past F4, do
	 * not. */
	metrics_label(&o, "\xc2\x80\xdf\xbf\xe0\xa0\x80\xe1\x80\x80\xef\xbf\xbf"
	              "\xf0\x90\x80\x80\xf1\x80\x80\x80");
	CHECK_STR(o.p, "\xc2\x80\xdf\xbf\xe0\xa0\x80\xe1\x80\x80\xef\xbf\xbf"
	          "\xf0\x90\x80\x80\xf1\x80\x80\x80");
	metrics_free(&o);
	metrics_label(&o, "\xc1\xbf|\xe0\x9f\xbf|\xf0\x8f\xbf\xbf|\xf5\x80\x80\x80");
	CHECK_STR(o.p, FFFD FFFD "|" FFFD FFFD FFFD "|" FFFD FFFD FFFD FFFD "|"
	          FFFD FFFD FFFD FFFD);
	metrics_free(&o);
#undef FFFD
}

/* A first append of exactly the first allocation's size, and then one
 * more byte: each keeps its NUL inside what was allocated (the ASan build
 * sees a write past it). */
static void test_append(void)
{
	static char a[4096];
	struct metrics_out o = {0};

	memset(a, 'a', sizeof(a));
	metrics_append(&o, a, sizeof(a));
	CHECK(o.len == 4096 && o.cap > 4096 && strlen(o.p) == 4096);
	metrics_append(&o, "b", 1);
	CHECK(o.len == 4097 && o.p[4096] == 'b' && o.p[4097] == '\0');
	metrics_free(&o);
}

/* The line of the exposition that starts with prefix; NULL if none. */
static const char *line_of(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, prefix, n) == 0)
			return p;
	return NULL;
}

/* How many lines of the exposition start with prefix. */
static size_t lines_of(const char *text, const char *prefix)
{
	size_t k = 0;

	for (const char *p = text; (p = line_of(p, prefix)) != NULL; p++)
		k++;
	return k;
}

static void test_render(void)
{
	struct shared *sh = shared_map(SHARED_SIZE);
	struct shared_slot *s = shared_slot(sh, "we\"b");
	const struct metrics_build b = {"1.2.3", "Bo\\ring", 1};
	const struct metrics_cert certs[] = {{"we\"b", "example.org", "0A1B", 1800000000LL}};
	struct metrics_out o = {0};
	size_t helps = 0, types = 0;

	CHECK(sh != NULL && s != NULL);
	if (sh == NULL || s == NULL)
		return;
	shared_count(s, SHARED_ACCEPTED, 3);
	shared_count_hs_ok(s, SHARED_TLS13, 1);
	shared_count_hs_failed(s, SHARED_HS_VERSION_TOO_OLD);
	shared_count_backend_failed(s, SHARED_BF_TIMEOUT);
	shared_observe(s, SHARED_HIST_CONNECT, 700);         /* 0.0007 s: le 0.001 */
	shared_observe(s, SHARED_HIST_CONNECT, 3000000);     /* 3 s: le 5 */
	shared_observe(s, SHARED_HIST_CONNECT, 60000000);    /* 60 s: +Inf only */
	atomic_store(&s->limit_full, 2);
	shared_reload_done(sh, 1, 1700000000);
	CHECK(metrics_render(&o, sh, &b, certs, 1) == 0);
	CHECK(o.p != NULL);
	if (o.p == NULL)
		return;
	for (const char *p = o.p; (p = strstr(p, "# HELP ")) != NULL; p++)
		helps++;
	for (const char *p = o.p; (p = strstr(p, "# TYPE ")) != NULL; p++)
		types++;
	CHECK(helps == types && helps >= 17);
	CHECK(line_of(o.p, "portier_connections_accepted_total{listener=\"we\\\"b\"} 3\n"));
	CHECK(line_of(o.p, "portier_handshakes_total{listener=\"we\\\"b\",version=\"TLSv1.3\","
	              "resumed=\"yes\"} 1\n"));
	CHECK(line_of(o.p, "portier_handshake_failures_total{listener=\"we\\\"b\","
	              "reason=\"version_too_old\"} 1\n"));
	CHECK(line_of(o.p, "portier_backend_connect_failures_total{listener=\"we\\\"b\","
	              "kind=\"timeout\"} 1\n"));
	CHECK(line_of(o.p, "portier_backend_connect_duration_seconds_bucket{listener="
	              "\"we\\\"b\",le=\"0.001\"} 1\n"));
	CHECK(line_of(o.p, "portier_backend_connect_duration_seconds_bucket{listener="
	              "\"we\\\"b\",le=\"2.5\"} 1\n"));
	CHECK(line_of(o.p, "portier_backend_connect_duration_seconds_bucket{listener="
	              "\"we\\\"b\",le=\"5\"} 2\n"));
	CHECK(line_of(o.p, "portier_backend_connect_duration_seconds_bucket{listener="
	              "\"we\\\"b\",le=\"+Inf\"} 3\n"));
	CHECK(line_of(o.p, "portier_backend_connect_duration_seconds_count{listener="
	              "\"we\\\"b\"} 3\n"));
	CHECK(line_of(o.p, "portier_backend_connect_duration_seconds_sum{listener="
	              "\"we\\\"b\"} 63.000700\n"));
	CHECK(line_of(o.p, "portier_limit_table_full_total{listener=\"we\\\"b\"} 2\n"));
	CHECK(line_of(o.p, "portier_reloads_total{result=\"ok\"} 1\n"));
	CHECK(line_of(o.p, "portier_config_generation 2\n"));
	CHECK(line_of(o.p, "portier_last_reload_timestamp_seconds 1700000000\n"));
	CHECK(line_of(o.p, "portier_build_info{version=\"1.2.3\",boringssl=\"Bo\\\\ring\","
	              "small=\"yes\"} 1\n"));
	CHECK(line_of(o.p, "portier_certificate_expiry_timestamp_seconds{listener="
	              "\"we\\\"b\",subject=\"example.org\",serial=\"0A1B\"} 1800000000\n"));
	/* One sample per label value, each value once: every close reason,
	 * version and resumption, failure, limit, backend fault, bucket. */
	CHECK(lines_of(o.p, "portier_connections_accepted_total{") == 1);
	CHECK(lines_of(o.p, "portier_connections_closed_total{") == CONN_WHY_COUNT);
	CHECK(lines_of(o.p, "portier_handshakes_total{") == 2 * SHARED_TLS_VERSIONS);
	CHECK(lines_of(o.p, "portier_handshake_failures_total{") == SHARED_HS_FAILS);
	CHECK(lines_of(o.p, "portier_limited_total{") == 2);
	CHECK(lines_of(o.p, "portier_backend_connect_failures_total{") == SHARED_BF_KINDS);
	CHECK(lines_of(o.p, "portier_handshake_duration_seconds_bucket{") == SHARED_BUCKETS);
	CHECK(o.p[o.len - 1] == '\n' && strlen(o.p) == o.len);
	metrics_free(&o);
	shared_unmap();
}

#define LINE(s) s, sizeof(s) - 1

static void test_reply(void)
{
	int head = -1;

	CHECK(stats_reply("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 34, &head) == 200);
	CHECK(head == 0);
	CHECK(stats_reply("HEAD /metrics HTTP/1.0\r\n\r\n", 26, &head) == 200);
	CHECK(head == 1);
	CHECK(stats_reply("GET /metrics?x=1 HTTP/1.1\r\n\r\n", 29, &head) == 200);
	CHECK(stats_reply("GET / HTTP/1.1\r\n\r\n", 18, &head) == 404);
	CHECK(stats_reply("GET /metricsx HTTP/1.1\r\n\r\n", 26, &head) == 404);
	CHECK(stats_reply("GET /metric HTTP/1.1\r\n\r\n", 24, &head) == 404);
	CHECK(stats_reply("POST /metrics HTTP/1.1\r\n\r\n", 26, &head) == 405);
	CHECK(stats_reply("get /metrics HTTP/1.1\r\n\r\n", 25, &head) == 405);
	CHECK(stats_reply("GET /metrics\r\n\r\n", 16, &head) == 400);
	CHECK(stats_reply("GET /metrics FTP/1.1\r\n\r\n", 24, &head) == 400);
	CHECK(stats_reply("GET", 3, &head) == 400);
	/* The line ends before a whole version: compared within the line
	 * (fuzz_stats_request found strncmp() reading on past its end). */
	CHECK(stats_reply(LINE("GET /metrics HTTP/1\n"), &head) == 400);
	CHECK(stats_reply(LINE("GET /metrics H\n"), &head) == 400);
	CHECK(stats_reply(LINE("GET 0\n"), &head) == 400);
	CHECK(stats_reply(LINE("GET /metrics HTTP/1.\n"), &head) == 200);
}

int main(void)
{
	test_escape();
	test_append();
	test_render();
	test_reply();
	return CHECK_DONE();
}
