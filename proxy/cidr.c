#include "cidr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* 1 if the first bits of a and b agree. */
static int prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

int cidr_parse(const char *text, struct cidr *out)
{
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	unsigned max, bits;

	memset(out, 0, sizeof(*out));
	if (alen == 0 || alen >= sizeof(addr))
		return -1;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, out->ip) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->ip) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	bits = max;
	if (slash != NULL) {
		const char *d = slash + 1;
		char *end;
		unsigned long v;
		if (*d < '0' || *d > '9' || strlen(d) > 3)
			return -1;
		v = strtoul(d, &end, 10);
		if (*end != '\0' || v > max)
			return -1;
		bits = (unsigned)v;
	}
	out->bits = (uint8_t)bits;
	/* Host bits beyond the prefix: the ip XOR its own prefix must be 0. */
	{
		uint8_t masked[16];
		memcpy(masked, out->ip, 16);
		for (unsigned i = bits; i < max; i++)
			masked[i / 8] &= (uint8_t)~(0x80 >> (i % 8));
		if (memcmp(masked, out->ip, 16) != 0)
			return -1;
	}
	if (out->family == AF_INET6 && bits >= 96 && memcmp(out->ip, v4_mapped, 12) == 0)
		return -2;
	return 0;
}

int cidr_match(const struct cidr *list, size_t n, const struct conn_addr *a)
{
	const uint8_t *ip = a->ip;
	uint16_t family = a->family;

	if (family == AF_INET6 && memcmp(ip, v4_mapped, 12) == 0) {
		ip += 12;
		family = AF_INET;
	}
	if (family != AF_INET && family != AF_INET6)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (list[i].family == family && prefix_eq(list[i].ip, ip, list[i].bits))
			return 1;
	return 0;
}
