#include "proxy_parse.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

/* CBS is BoringSSL's bounds-checked byte reader (as in ber.c); no TLS
 * state here. */
#include <openssl/bytestring.h>

static const uint8_t v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
static const char v1_sig[] = "PROXY ";
#define V1_MAX 107            /* the spec's bound, CRLF included */

#define V2_LOCAL      0x20
#define V2_PROXY      0x21
#define V2_FAM_UNSPEC 0x00
#define V2_FAM_TCP4   0x11
#define V2_FAM_TCP6   0x21
#define V2_FAM_UNIX   0x31

static enum proxy_parse_result fail(const char **why, const char *text)
{
	*why = text;
	return PROXY_PARSE_ERROR;
}

/* A decimal port of 1 to 5 digits, no sign, no leading zero, <= 65535. */
static int v1_port(const char *s, size_t n, uint16_t *port)
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

static int v1_addr(int family, const char *s, size_t n, struct conn_addr *a)
{
	char text[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(text))
		return -1;
	memcpy(text, s, n);
	text[n] = '\0';
	memset(a, 0, sizeof(*a));
	a->family = (uint16_t)family;
	return inet_pton(family, text, a->ip) == 1 ? 0 : -1;
}

/* "PROXY TCP4 SRC DST SPORT DPORT\r\n", single spaces, nothing else;
 * "PROXY UNKNOWN" and anything up to CRLF. line excludes the CRLF. */
static enum proxy_parse_result v1_line(const char *line, size_t n,
                                       struct proxy_parsed *out, const char **why)
{
	const char *f[6];
	size_t fl[6], nf = 0, start = 0;
	int family;

	for (size_t i = 0; i <= n && nf < 6; i++) {
		if (i == n || line[i] == ' ') {
			f[nf] = line + start;
			fl[nf++] = i - start;
			start = i + 1;
			if (nf == 2 && fl[1] == 7 && memcmp(f[1], "UNKNOWN", 7) == 0) {
				out->local = 1;
				return PROXY_PARSE_OK;
			}
		}
	}
	if (nf < 2)
		return fail(why, "v1 header without a protocol");
	if (fl[1] == 4 && memcmp(f[1], "TCP4", 4) == 0)
		family = AF_INET;
	else if (fl[1] == 4 && memcmp(f[1], "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return fail(why, "v1 header with an unknown protocol");
	if (nf != 6 || f[5] + fl[5] != line + n)
		return fail(why, "v1 header without exactly four fields after the protocol");
	if (v1_addr(family, f[2], fl[2], &out->src) < 0 ||
	    v1_addr(family, f[3], fl[3], &out->dst) < 0)
		return fail(why, "v1 header with a malformed address");
	if (v1_port(f[4], fl[4], &out->src.port) < 0 ||
	    v1_port(f[5], fl[5], &out->dst.port) < 0)
		return fail(why, "v1 header with a malformed port");
	return PROXY_PARSE_OK;
}

static enum proxy_parse_result v1(const uint8_t *p, size_t n,
                                  struct proxy_parsed *out, const char **why)
{
	size_t lim = n < V1_MAX ? n : V1_MAX;

	for (size_t i = 0; i < lim; i++) {
		if (p[i] == '\n') {
			if (i == 0 || p[i - 1] != '\r')
				return fail(why, "v1 header ends in LF without CR");
			out->version = 1;
			out->len = i + 1;
			return v1_line((const char *)p, i - 1, out, why);
		}
		/* Printable ASCII only; a CR only right before the LF. */
		if ((p[i] < 0x20 || p[i] > 0x7e) && p[i] != '\r')
			return fail(why, "v1 header with a control or non-ASCII byte");
		if (i > 0 && p[i - 1] == '\r')
			return fail(why, "v1 header with a CR not followed by LF");
	}
	if (n >= V1_MAX)
		return fail(why, "v1 header longer than 107 bytes");
	return PROXY_PARSE_AGAIN;
}

/* The TLVs after the addresses: type, 16-bit length, value; each whole. */
static int tlvs_framed(CBS *rest)
{
	while (CBS_len(rest) > 0) {
		uint8_t type;
		CBS value;
		if (!CBS_get_u8(rest, &type) || !CBS_get_u16_length_prefixed(rest, &value))
			return -1;
	}
	return 0;
}

static enum proxy_parse_result v2(const uint8_t *p, size_t n,
                                  struct proxy_parsed *out, const char **why)
{
	CBS cbs, block;
	uint8_t cmd, fam;
	uint16_t len;

	if (n < 16)
		return PROXY_PARSE_AGAIN;
	CBS_init(&cbs, p + 12, n - 12);
	if (!CBS_get_u8(&cbs, &cmd) || !CBS_get_u8(&cbs, &fam) || !CBS_get_u16(&cbs, &len))
		return PROXY_PARSE_AGAIN;
	if (cmd != V2_LOCAL && cmd != V2_PROXY)
		return fail(why, (cmd >> 4) != 2 ? "v2 header of another version"
		                                 : "v2 header with an unknown command");
	if (len > PROXY_PARSE_V2_CAP)
		return fail(why, "v2 header longer than its cap");
	if (!CBS_get_bytes(&cbs, &block, len))
		return PROXY_PARSE_AGAIN;
	out->version = 2;
	out->len = 16 + (size_t)len;
	/* LOCAL: a health check of the balancer itself; whatever the block
	 * holds is to be skipped. */
	if (cmd == V2_LOCAL) {
		out->local = 1;
		return PROXY_PARSE_OK;
	}
	switch (fam) {
	case V2_FAM_UNSPEC:
	case V2_FAM_UNIX:
		/* No IP client to name: the connection's own addresses. */
		out->local = 1;
		return PROXY_PARSE_OK;
	case V2_FAM_TCP4:
		out->src.family = out->dst.family = AF_INET;
		if (!CBS_copy_bytes(&block, out->src.ip, 4) ||
		    !CBS_copy_bytes(&block, out->dst.ip, 4))
			return fail(why, "v2 header too short for its IPv4 addresses");
		break;
	case V2_FAM_TCP6:
		out->src.family = out->dst.family = AF_INET6;
		if (!CBS_copy_bytes(&block, out->src.ip, 16) ||
		    !CBS_copy_bytes(&block, out->dst.ip, 16))
			return fail(why, "v2 header too short for its IPv6 addresses");
		break;
	default:
		return fail(why, "v2 header of a family other than TCP");
	}
	if (!CBS_get_u16(&block, &out->src.port) || !CBS_get_u16(&block, &out->dst.port))
		return fail(why, "v2 header too short for its ports");
	if (tlvs_framed(&block) < 0)
		return fail(why, "v2 header with a cut TLV");
	return PROXY_PARSE_OK;
}

enum proxy_parse_result proxy_parse(const uint8_t *p, size_t n,
                                    struct proxy_parsed *out, const char **why)
{
	size_t v1n = sizeof(v1_sig) - 1;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	if (n == 0)
		return PROXY_PARSE_AGAIN;
	if (p[0] == v2_sig[0]) {
		if (memcmp(p, v2_sig, n < 12 ? n : 12) != 0)
			return fail(why, "not a PROXY header (bad v2 signature)");
		return v2(p, n, out, why);
	}
	if (memcmp(p, v1_sig, n < v1n ? n : v1n) != 0)
		return fail(why, "not a PROXY header");
	return v1(p, n, out, why);
}
