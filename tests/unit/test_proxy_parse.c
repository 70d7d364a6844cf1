#include "proxy_parse.h"
#include "proxy_header.h"
#include "check.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* The PROXY header reader: every header offered whole, then split at
 * every byte (each prefix must ask for more, never fail or pass), with
 * the bytes after it left alone; input ends at a PROT_NONE page, so a
 * read past n crashes. */

static uint8_t *guard_end;   /* first byte of the inaccessible page */

static void guard_init(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t *m = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
	                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED || mprotect(m + pg, (size_t)pg, PROT_NONE) != 0)
		abort();
	guard_end = m + pg;
}

/* p[0..n) copied to end right before the guard page. */
static enum proxy_parse_result parse(const void *p, size_t n,
                                     struct proxy_parsed *out, const char **why)
{
	uint8_t *at = guard_end - n;

	memcpy(at, p, n);
	return proxy_parse(at, n, out, why);
}

static struct conn_addr ip(const char *text, uint16_t port)
{
	struct conn_addr a = {0};

	a.family = strchr(text, ':') ? AF_INET6 : AF_INET;
	inet_pton(a.family, text, a.ip);
	a.port = port;
	return a;
}

static int same_addr(const struct conn_addr *a, const struct conn_addr *b)
{
	return a->family == b->family && a->port == b->port &&
	       memcmp(a->ip, b->ip, a->family == AF_INET ? 4 : 16) == 0;
}

/* h[0..n) is a whole header of hlen bytes (n - hlen bytes follow it):
 * every prefix shorter than hlen is AGAIN, hlen and more are OK with the
 * same result. */
static void split_ok(const uint8_t *h, size_t n, size_t hlen, struct proxy_parsed *want)
{
	struct proxy_parsed got;
	const char *why;
	int bad = 0;

	for (size_t k = 0; k < hlen; k++)
		if (parse(h, k, &got, &why) != PROXY_PARSE_AGAIN) {
			fprintf(stderr, "prefix %zu of %zu not AGAIN (%s)\n", k, hlen,
			        why ? why : "ok");
			bad++;
		}
	CHECK(bad == 0);
	for (size_t k = hlen; k <= n; k++) {
		if (parse(h, k, &got, &why) != PROXY_PARSE_OK) {
			fprintf(stderr, "%zu of %zu bytes: %s\n", k, n, why ? why : "again");
			bad++;
			continue;
		}
		if (got.len != hlen || got.version != want->version ||
		    got.local != want->local ||
		    (!want->local && (!same_addr(&got.src, &want->src) ||
		                      !same_addr(&got.dst, &want->dst))))
			bad++;
	}
	CHECK(bad == 0);
}

/* h is an error once all its n bytes are in, and a prefix is AGAIN or the
 * same error, never OK; returns the reason. */
static const char *split_err(const void *h, size_t n)
{
	struct proxy_parsed got;
	const char *why = NULL, *w;
	int bad = 0, r;

	CHECK(parse(h, n, &got, &why) == PROXY_PARSE_ERROR);
	CHECK(why != NULL);
	for (size_t k = 0; k < n; k++)
		if ((r = parse(h, k, &got, &w)) == PROXY_PARSE_OK)
			bad++;
		else if (r == PROXY_PARSE_ERROR && strcmp(w, why) != 0)
			bad++;
	CHECK(bad == 0);
	return why ? why : "";
}

static void v1_ok(const char *line, const char *src, uint16_t sp,
                  const char *dst, uint16_t dp)
{
	uint8_t b[300];
	size_t n = strlen(line);
	struct proxy_parsed want = {0};

	memcpy(b, line, n);
	memcpy(b + n, "\x16\x03\x01GET", 6);   /* what follows: not the header's */
	want.version = 1;
	if (src == NULL) {
		want.local = 1;
	} else {
		want.src = ip(src, sp);
		want.dst = ip(dst, dp);
	}
	split_ok(b, n + 6, n, &want);
}

static void test_v1(void)
{
	char longest[128];

	v1_ok("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
	      "192.0.2.1", 56324, "198.51.100.2", 443);
	v1_ok("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n", "2001:db8::1", 1, "::1", 65535);
	v1_ok("PROXY UNKNOWN\r\n", NULL, 0, NULL, 0);
	v1_ok("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
	      NULL, 0, NULL, 0);
	/* The spec's worst case is exactly 107 bytes and passes. */
	snprintf(longest, sizeof(longest), "PROXY TCP6 %s %s 65535 65535\r\n",
	         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	CHECK(strlen(longest) == 104);
	v1_ok(longest, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
	      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	{
		char l107[108];
		memset(l107, 'x', sizeof(l107));
		memcpy(l107, "PROXY UNKNOWN ", 14);
		memcpy(l107 + 105, "\r\n", 2);
		l107[107] = '\0';
		v1_ok(l107, NULL, 0, NULL, 0);
		l107[105] = l107[106] = 'x';   /* no end within 107: refused */
		CHECK_STR(split_err(l107, 107), "v1 header longer than 107 bytes");
	}

	CHECK_STR(split_err("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 31),
	          "v1 header ends in LF without CR");
	CHECK_STR(split_err("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX\r\n", 34),
	          "v1 header with a CR not followed by LF");
	CHECK_STR(split_err("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", 32),
	          "v1 header with an unknown protocol");
	CHECK_STR(split_err("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", 30),
	          "v1 header without exactly four fields after the protocol");
	CHECK_STR(split_err("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", 34),
	          "v1 header without exactly four fields after the protocol");
	CHECK_STR(split_err("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", 33),
	          "v1 header without exactly four fields after the protocol");
	CHECK_STR(split_err("PROXY TCP4 ::1 5.6.7.8 1 2\r\n", 28),
	          "v1 header with a malformed address");
	CHECK_STR(split_err("PROXY TCP6 1.2.3.4 ::1 1 2\r\n", 28),
	          "v1 header with a malformed address");
	CHECK_STR(split_err("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", 36),
	          "v1 header with a malformed port");
	CHECK_STR(split_err("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", 33),
	          "v1 header with a malformed port");
	CHECK_STR(split_err("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", 33),
	          "v1 header with a malformed port");
	CHECK_STR(split_err("PROXY TCP4 1.2.3.4 5.6.7.\xff 1 2\r\n", 32),
	          "v1 header with a control or non-ASCII byte");
	/* Port 0 and five digits pass; an empty port, a letter in one, a
	 * protocol with no fields after it, a '~' (printable, but in no
	 * address) are refused, each for its reason. */
	v1_ok("PROXY TCP4 192.0.2.1 198.51.100.2 0 10000\r\n",
	      "192.0.2.1", 0, "198.51.100.2", 10000);
	CHECK_STR(split_err("PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", 31),
	          "v1 header with a malformed port");
	CHECK_STR(split_err("PROXY TCP4 1.2.3.4 5.6.7.8 1x 2\r\n", 33),
	          "v1 header with a malformed port");
	CHECK_STR(split_err("PROXY TCP4 1.2.3.4 5.6.7.8 2 1/\r\n", 33),
	          "v1 header with a malformed port");
	CHECK_STR(split_err("PROXY TCP4\r\n", 12),
	          "v1 header without exactly four fields after the protocol");
	CHECK_STR(split_err("PROXY \r\n", 8), "v1 header with an unknown protocol");
	CHECK_STR(split_err("PROXY TCP4 1.2.3.~ 5.6.7.8 1 2\r\n", 32),
	          "v1 header with a malformed address");
	/* An address of INET6_ADDRSTRLEN characters is too long to be one
	 * (and to be copied: the ASan build sees a write past the copy). */
	CHECK_STR(split_err("PROXY TCP6 ::1 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:f 1 2\r\n",
	                    67), "v1 header with a malformed address");
	CHECK_STR(split_err("PROXY\r\n", 7), "not a PROXY header");
	CHECK_STR(split_err("GET / HTTP/1.1\r\n", 16), "not a PROXY header");
	CHECK_STR(split_err("\x16\x03\x01\x02\x00", 5), "not a PROXY header");
	CHECK_STR(split_err("proxy TCP4", 10), "not a PROXY header");
}

static const uint8_t sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* A v2 header: cmd, family, then block[0..bn) as its address block. */
static size_t v2(uint8_t *out, uint8_t cmd, uint8_t fam, const uint8_t *block, size_t bn)
{
	memcpy(out, sig, 12);
	out[12] = cmd;
	out[13] = fam;
	out[14] = (uint8_t)(bn >> 8);
	out[15] = (uint8_t)bn;
	if (bn)
		memcpy(out + 16, block, bn);
	return 16 + bn;
}

static void test_v2(void)
{
	uint8_t h[2000], blk[1600];
	struct proxy_parsed want = {0};
	size_t n;

	/* TCP4 with a TLV of each kind HAProxy sends (skipped). */
	static const uint8_t b4[] = {
		192, 0, 2, 1, 198, 51, 100, 2, 0xdc, 0x04, 0x01, 0xbb,
		0x01, 0x00, 0x02, 'h', '2',             /* ALPN */
		0x20, 0x00, 0x05, 0x01, 0, 0, 0, 0,     /* SSL, no sub-TLV */
		0x04, 0x00, 0x00,                       /* NOOP, empty */
	};
	n = v2(h, 0x21, 0x11, b4, sizeof(b4));
	memcpy(h + n, "\x16\x03\x01", 3);
	want.version = 2;
	want.src = ip("192.0.2.1", 56324);
	want.dst = ip("198.51.100.2", 443);
	split_ok(h, n + 3, n, &want);

	/* TCP6 from what portier's own writer makes, TLVs included. */
	{
		struct buf b = {0};
		struct conn_addr s = ip("2001:db8::7", 40000), d = ip("::1", 993);
		struct proxy_tls t = {"TLSv1.3", "TLS_AES_128_GCM_SHA256", "mail.example", "imap"};
		CHECK(proxy_header(&b, PROXY_V2, &s, &d, &t) == 0);
		want.src = s;
		want.dst = d;
		split_ok(buf_peek(&b), b.len, b.len, &want);
		buf_reset(&b);
		CHECK(proxy_header(&b, PROXY_V1, &s, &d, NULL) == 0);
		want.version = 1;
		split_ok(buf_peek(&b), b.len, b.len, &want);
		buf_reset(&b);
		want.version = 2;
	}

	/* LOCAL: whatever the block holds is skipped, even no addresses. */
	memset(&want, 0, sizeof(want));
	want.version = 2;
	want.local = 1;
	n = v2(h, 0x20, 0x00, NULL, 0);
	split_ok(h, n, n, &want);
	n = v2(h, 0x20, 0x11, (const uint8_t *)"\x01\x02\x03", 3);
	split_ok(h, n, n, &want);
	/* PROXY with UNSPEC or AF_UNIX: the connection's own addresses. */
	n = v2(h, 0x21, 0x00, NULL, 0);
	split_ok(h, n, n, &want);
	memset(blk, 0, 216);
	n = v2(h, 0x21, 0x31, blk, 216);
	split_ok(h, n, n, &want);
	/* The cap: the longest block passes, one more byte fails as soon
	 * as the length is in. */
	memset(blk, 0, sizeof(blk));
	n = v2(h, 0x20, 0x00, blk, PROXY_PARSE_V2_CAP);
	split_ok(h, n, n, &want);
	n = v2(h, 0x20, 0x00, blk, PROXY_PARSE_V2_CAP + 1);
	CHECK_STR(split_err(h, 16), "v2 header longer than its cap");

	n = v2(h, 0x21, 0x11, b4, 11);
	CHECK_STR(split_err(h, n), "v2 header too short for its ports");
	n = v2(h, 0x21, 0x11, b4, 7);
	CHECK_STR(split_err(h, n), "v2 header too short for its IPv4 addresses");
	n = v2(h, 0x21, 0x21, blk, 35);
	CHECK_STR(split_err(h, n), "v2 header too short for its ports");
	n = v2(h, 0x21, 0x21, blk, 31);
	CHECK_STR(split_err(h, n), "v2 header too short for its IPv6 addresses");
	n = v2(h, 0x21, 0x11, b4, sizeof(b4) - 1);
	CHECK_STR(split_err(h, n), "v2 header with a cut TLV");
	n = v2(h, 0x21, 0x11, b4, 14);
	CHECK_STR(split_err(h, n), "v2 header with a cut TLV");
	n = v2(h, 0x21, 0x12, b4, 12);
	CHECK_STR(split_err(h, n), "v2 header of a family other than TCP");
	n = v2(h, 0x22, 0x11, b4, 12);
	CHECK_STR(split_err(h, n), "v2 header with an unknown command");
	n = v2(h, 0x11, 0x11, b4, 12);
	CHECK_STR(split_err(h, n), "v2 header of another version");
	memcpy(h, sig, 12);
	h[6] = 0x0b;
	CHECK_STR(split_err(h, 12), "not a PROXY header (bad v2 signature)");
}

int main(void)
{
	guard_init();
	test_v1();
	test_v2();
	return CHECK_DONE();
}
