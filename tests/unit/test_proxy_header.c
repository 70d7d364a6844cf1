#include "proxy_header.h"
#include "check.h"

#include <arpa/inet.h>
#include <stdlib.h>

/* The PROXY header byte for byte, against doc/proxy-protocol.txt. */

static struct conn_addr ip(const char *text, uint16_t port)
{
	struct conn_addr a = {0};

	a.family = strchr(text, ':') ? AF_INET6 : AF_INET;
	inet_pton(a.family, text, a.ip);
	a.port = port;
	return a;
}

/* Hex to bytes, spaces ignored; appended at *n. */
static void hex(uint8_t *out, size_t *n, const char *h)
{
	unsigned v;

	for (; *h; h++) {
		if (*h == ' ')
			continue;
		sscanf(h, "%2x", &v);
		out[(*n)++] = (uint8_t)v;
		h++;
	}
}

static void str(uint8_t *out, size_t *n, const char *s)
{
	memcpy(out + *n, s, strlen(s));
	*n += strlen(s);
}

/* The header proxy_header writes equals want[0..wn). */
static int same(const struct buf *b, const uint8_t *want, size_t wn)
{
	if (b->len != wn || memcmp(buf_peek(b), want, wn) != 0) {
		fprintf(stderr, "got %u bytes:", (unsigned)b->len);
		for (size_t i = 0; i < b->len; i++)
			fprintf(stderr, " %02x", buf_peek(b)[i]);
		fprintf(stderr, "\n");
		return 0;
	}
	return 1;
}

static int v1_is(struct conn_addr s, struct conn_addr d, const char *want)
{
	struct buf b = {0};
	int ok = proxy_header(&b, PROXY_V1, &s, &d, NULL) == 0 &&
	         same(&b, (const uint8_t *)want, strlen(want));

	buf_reset(&b);
	return ok;
}

#define SIG "0d 0a 0d 0a 00 0d 0a 51 55 49 54 0a"

static void test_v1(void)
{
	struct conn_addr unix_client = {.family = AF_UNIX};
	struct conn_addr s = ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
	struct conn_addr d = ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65534);
	struct proxy_tls tls = {"TLSv1.3", "TLS_AES_128_GCM_SHA256", "localhost", "h2"};
	struct buf b = {0};

	CHECK(v1_is(ip("192.0.2.1", 56324), ip("198.51.100.7", 443),
	            "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n"));
	CHECK(v1_is(ip("2001:db8::1", 1), ip("::1", 993),
	            "PROXY TCP6 2001:db8::1 ::1 1 993\r\n"));
	/* A dual-stack socket's IPv4 client is IPv4 for the backend. */
	CHECK(v1_is(ip("::ffff:127.0.0.1", 40000), ip("::ffff:127.0.0.2", 25),
	            "PROXY TCP4 127.0.0.1 127.0.0.2 40000 25\r\n"));
	/* Families that still differ meet in IPv6. */
	CHECK(v1_is(ip("192.0.2.1", 7), ip("::1", 8),
	            "PROXY TCP6 ::ffff:192.0.2.1 ::1 7 8\r\n"));
	CHECK(v1_is(unix_client, ip("127.0.0.1", 8), "PROXY UNKNOWN\r\n"));
	/* The longest line there is stays within the spec's 107 bytes. */
	CHECK(v1_is(s, d, "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe "
	            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65534\r\n"));
	CHECK(proxy_header(&b, PROXY_V1, &s, &d, &tls) == 0);
	CHECK(b.len == 104 && b.len <= PROXY_V1_MAX);
	/* v1 has no room for TLS facts: the same line with them. */
	CHECK(memcmp(buf_peek(&b), "PROXY TCP6 ffff:", 16) == 0);
	buf_reset(&b);
}

static void test_v2_plain(void)
{
	struct conn_addr s = ip("192.0.2.1", 56324), d = ip("198.51.100.7", 443);
	struct conn_addr unix_client = {.family = AF_UNIX};
	uint8_t want[256];
	size_t wn = 0;
	struct buf b = {0};

	hex(want, &wn, SIG " 21 11 00 0c  c0 00 02 01  c6 33 64 07  dc 04  01 bb");
	CHECK(proxy_header(&b, PROXY_V2, &s, &d, NULL) == 0);
	CHECK(same(&b, want, wn));
	buf_reset(&b);

	wn = 0;
	hex(want, &wn, SIG " 21 21 00 24"
	    " 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01"
	    " 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01"
	    " c3 50 03 e1");
	s = ip("2001:db8::1", 50000);
	d = ip("::1", 993);
	CHECK(proxy_header(&b, PROXY_V2, &s, &d, NULL) == 0);
	CHECK(same(&b, want, wn));
	buf_reset(&b);

	/* Not IP: PROXY with family UNSPEC and no addresses. */
	wn = 0;
	hex(want, &wn, SIG " 21 00 00 00");
	CHECK(proxy_header(&b, PROXY_V2, &unix_client, &d, NULL) == 0);
	CHECK(same(&b, want, wn));
	buf_reset(&b);

	/* Mapped IPv4 on both sides: TCP4. */
	wn = 0;
	hex(want, &wn, SIG " 21 11 00 0c  7f 00 00 01  7f 00 00 01  9c 40  00 19");
	s = ip("::ffff:127.0.0.1", 40000);
	d = ip("::ffff:127.0.0.1", 25);
	CHECK(proxy_header(&b, PROXY_V2, &s, &d, NULL) == 0);
	CHECK(same(&b, want, wn));
	buf_reset(&b);
}

static void test_v2_tls(void)
{
	struct conn_addr s = ip("2001:db8::1", 50000), d = ip("2001:db8::2", 993);
	struct proxy_tls tls = {"TLSv1.3", "TLS_AES_128_GCM_SHA256", "mail.example.org", "imap"};
	char longname[300];
	uint8_t want[1024];
	size_t wn = 0;
	struct buf b = {0};

	hex(want, &wn, SIG " 21 21 00 69"
	    " 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01"
	    " 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02"
	    " c3 50 03 e1");
	hex(want, &wn, "01 00 04");            /* PP2_TYPE_ALPN */
	str(want, &wn, "imap");
	hex(want, &wn, "02 00 10");            /* PP2_TYPE_AUTHORITY */
	str(want, &wn, "mail.example.org");
	hex(want, &wn, "20 00 28");            /* PP2_TYPE_SSL, 40 bytes */
	hex(want, &wn, "01 00 00 00 00");      /* PP2_CLIENT_SSL, verify */
	hex(want, &wn, "21 00 07");            /* PP2_SUBTYPE_SSL_VERSION */
	str(want, &wn, "TLSv1.3");
	hex(want, &wn, "23 00 16");            /* PP2_SUBTYPE_SSL_CIPHER */
	str(want, &wn, "TLS_AES_128_GCM_SHA256");
	CHECK(wn == 16 + 0x69);
	CHECK(proxy_header(&b, PROXY_V2, &s, &d, &tls) == 0);
	CHECK(same(&b, want, wn));
	buf_reset(&b);

	/* No SNI, no ALPN: the SSL TLV alone. */
	wn = 0;
	tls.sni = NULL;
	tls.alpn = "";
	s = ip("127.0.0.1", 1);
	d = ip("127.0.0.1", 2);
	hex(want, &wn, SIG " 21 11 00 37  7f 00 00 01  7f 00 00 01  00 01  00 02"
	    " 20 00 28  01 00 00 00 00  21 00 07");
	str(want, &wn, "TLSv1.3");
	hex(want, &wn, "23 00 16");
	str(want, &wn, "TLS_AES_128_GCM_SHA256");
	CHECK(proxy_header(&b, PROXY_V2, &s, &d, &tls) == 0);
	CHECK(same(&b, want, wn));
	buf_reset(&b);

	/* A 255-byte name is sent whole; one byte more and it is left out,
	 * never cut. */
	memset(longname, 'a', sizeof(longname));
	longname[PROXY_SNI_MAX] = '\0';
	tls.sni = longname;
	CHECK(proxy_header(&b, PROXY_V2, &s, &d, &tls) == 0);
	CHECK(b.len == 16 + 12 + 3 + 255 + 43);
	CHECK(buf_peek(&b)[28] == 0x02 && buf_peek(&b)[29] == 0x00 &&
	      buf_peek(&b)[30] == 0xff && memcmp(buf_peek(&b) + 31, longname, 255) == 0);
	buf_reset(&b);
	longname[PROXY_SNI_MAX] = 'a';
	longname[PROXY_SNI_MAX + 1] = '\0';
	CHECK(proxy_header(&b, PROXY_V2, &s, &d, &tls) == 0);
	CHECK(b.len == 16 + 12 + 43 && buf_peek(&b)[28] == 0x20);
	buf_reset(&b);

	/* The largest header there is fits: every value at its bound. */
	{
		char alpn[PROXY_ALPN_MAX + 1], ver[PROXY_VERSION_MAX + 1],
		     ciph[PROXY_CIPHER_MAX + 1];
		struct proxy_tls big = {ver, ciph, longname, alpn};
		memset(alpn, 'p', PROXY_ALPN_MAX);
		alpn[PROXY_ALPN_MAX] = '\0';
		memset(ver, 'v', PROXY_VERSION_MAX);
		ver[PROXY_VERSION_MAX] = '\0';
		memset(ciph, 'c', PROXY_CIPHER_MAX);
		ciph[PROXY_CIPHER_MAX] = '\0';
		longname[PROXY_SNI_MAX] = '\0';
		s = ip("2001:db8::1", 1);
		d = ip("2001:db8::2", 2);
		CHECK(proxy_header(&b, PROXY_V2, &s, &d, &big) == 0);
		CHECK(b.len == 16 + 36 + 258 + 258 + 3 + 5 + 3 + 32 + 3 + 64);
		buf_reset(&b);
	}
}

static void test_errors(void)
{
	struct conn_addr s = ip("192.0.2.1", 1), d = ip("192.0.2.2", 2);
	static uint8_t fill[BUF_CAP];
	struct buf b = {0};

	CHECK(proxy_header(&b, PROXY_OFF, &s, &d, NULL) == -1 && b.len == 0);
	/* No room: nothing is written, not even part of it. */
	CHECK(buf_append(&b, fill, BUF_CAP - 20) == 0);
	CHECK(proxy_header(&b, PROXY_V2, &s, &d, NULL) == -1);
	CHECK(b.len == BUF_CAP - 20);
	CHECK(proxy_header(&b, PROXY_V1, &s, &d, NULL) == -1);
	CHECK(b.len == BUF_CAP - 20);
	buf_reset(&b);
}

int main(void)
{
	test_v1();
	test_v2_plain();
	test_v2_tls();
	test_errors();
	return CHECK_DONE();
}
