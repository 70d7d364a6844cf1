#include "cidr.h"
#include "check.h"

#include <arpa/inet.h>
#include <stdlib.h>

/* accept_proxy_from's ranges: parsing and matching. */

static struct conn_addr ip(const char *text)
{
	struct conn_addr a = {0};

	a.family = strchr(text, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(a.family, text, a.ip) != 1)
		abort();
	return a;
}

static int in(const char *range, const char *addr)
{
	struct cidr c;
	struct conn_addr a = ip(addr);

	if (cidr_parse(range, &c) < 0)
		return -1;
	return cidr_match(&c, 1, &a);
}

int main(void)
{
	struct cidr c, list[2];
	struct conn_addr a;

	CHECK(in("10.0.0.0/8", "10.255.1.2") == 1);
	CHECK(in("10.0.0.0/8", "11.0.0.0") == 0);
	CHECK(in("127.0.0.1", "127.0.0.1") == 1);
	CHECK(in("127.0.0.1", "127.0.0.2") == 0);
	CHECK(in("192.168.4.0/22", "192.168.7.255") == 1);
	CHECK(in("192.168.4.0/22", "192.168.8.0") == 0);
	CHECK(in("0.0.0.0/0", "203.0.113.9") == 1);
	CHECK(in("0.0.0.0/0", "::1") == 0);
	CHECK(in("2001:db8::/32", "2001:db8:ffff::1") == 1);
	CHECK(in("2001:db8::/32", "2001:db9::1") == 0);
	CHECK(in("::1", "::1") == 1);
	/* A dual-stack socket's IPv4 peer matches IPv4 ranges. */
	CHECK(in("127.0.0.0/8", "::ffff:127.0.0.5") == 1);
	/* A mapped range would match no peer (a mapped peer is taken as
	 * IPv4): refused, with the range kept for the caller's message. */
	CHECK(cidr_parse("::ffff:127.0.0.5", &c) == -2 && c.bits == 128 &&
	      c.ip[12] == 127 && c.ip[15] == 5);
	CHECK(cidr_parse("::ffff:10.0.0.0/104", &c) == -2 && c.bits == 104);
	CHECK(cidr_parse("::ffff:0.0.0.0/96", &c) == -2 && c.bits == 96);
	CHECK(cidr_parse("::ffff:10.0.0.1/104", &c) == -1);   /* host bits */
	/* Shorter prefixes reach past the mapped block: ordinary ranges. */
	CHECK(cidr_parse("::/95", &c) == 0);
	CHECK(cidr_parse("::fffe:10.0.0.1", &c) == 0);

	CHECK(cidr_parse("10.0.0.1/8", &c) < 0);   /* host bits set */
	CHECK(cidr_parse("10.0.0.0/33", &c) < 0);
	CHECK(cidr_parse("::/129", &c) < 0);
	CHECK(cidr_parse("10.0.0.0/", &c) < 0);
	CHECK(cidr_parse("10.0.0.0/-1", &c) < 0);
	CHECK(cidr_parse("10.0.0.0/8x", &c) < 0);
	CHECK(cidr_parse("/8", &c) < 0);
	CHECK(cidr_parse("example.org", &c) < 0);
	CHECK(cidr_parse("10.0.0", &c) < 0);
	CHECK(cidr_parse("2001:db8::/32", &c) == 0 && c.bits == 32);
	/* The longest prefixes are a host's; a prefix is 1 to 3 digits, no
	 * sign or blank before them. */
	CHECK(cidr_parse("10.0.0.1/32", &c) == 0 && c.bits == 32);
	CHECK(cidr_parse("2001:db8::1/128", &c) == 0 && c.bits == 128);
	CHECK(cidr_parse("10.0.0.0/0008", &c) < 0);
	CHECK(cidr_parse("10.0.0.0/ 8", &c) < 0);
	CHECK(cidr_parse("10.0.0.0/+8", &c) < 0);
	/* An address longer than any IPv6 text is none. */
	CHECK(cidr_parse("0000:0000:0000:0000:0000:0000:0000:0000:0000:0001/128", &c) < 0);
	CHECK(cidr_parse("0000:0000:0000:0000:0000:0000:0000:0000:000001", &c) < 0);
	CHECK(cidr_parse("", &c) < 0);

	CHECK(cidr_parse("192.0.2.1", &list[0]) == 0 && cidr_parse("::1", &list[1]) == 0);
	a = ip("::1");
	CHECK(cidr_match(list, 2, &a) == 1);
	a = ip("192.0.2.2");
	CHECK(cidr_match(list, 2, &a) == 0);
	a.family = AF_UNIX;
	CHECK(cidr_match(list, 2, &a) == 0);
	return CHECK_DONE();
}
