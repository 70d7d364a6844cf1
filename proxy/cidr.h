#ifndef PORTIER_CIDR_H
#define PORTIER_CIDR_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"

/*
 * Address ranges as admins write them ("10.0.0.0/8", "192.0.2.1",
 * "2001:db8::/32"), and the test of an address against a list of them:
 * who may send a PROXY header (accept_proxy_from).
 */

struct cidr {
	uint16_t family;     /* AF_INET or AF_INET6 */
	uint8_t bits;        /* prefix length */
	uint8_t ip[16];      /* host bits cleared */
};

/* cidr_parse(text, out): one range; a bare address is the whole prefix.
 * Host bits set beyond the prefix are refused (a typo as often as not).
 * 0, or -1; or -2 for an IPv4-mapped address or range (::ffff:a.b.c.d,
 * prefix 96 or more), which would match no peer (cidr_match takes a
 * mapped peer as IPv4): out then holds it, for the caller to name its
 * IPv4 form. */
int cidr_parse(const char *text, struct cidr *out);

/* cidr_match(list, n, a): 1 if a lies in one of the n ranges, else 0. An
 * IPv4-mapped IPv6 address (a dual-stack socket's IPv4 peer) is matched
 * as the IPv4 address it is. */
int cidr_match(const struct cidr *list, size_t n, const struct conn_addr *a);

#endif
