#include "proxy_header.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* CBB is BoringSSL's plain byte builder (as in ber.c); no TLS state here. */
#include <openssl/bytestring.h>

/* doc/proxy-protocol.txt, section 2.2. */
static const uint8_t v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};
#define V2_CMD_PROXY   0x21   /* version 2, PROXY */
#define V2_FAM_UNSPEC  0x00
#define V2_FAM_TCP4    0x11
#define V2_FAM_TCP6    0x21
#define PP2_TYPE_ALPN           0x01
#define PP2_TYPE_AUTHORITY      0x02
#define PP2_TYPE_SSL            0x20
#define PP2_SUBTYPE_SSL_VERSION 0x21
#define PP2_SUBTYPE_SSL_CIPHER  0x23
#define PP2_CLIENT_SSL          0x01

/* Every v2 header proxy_header writes fits: 16 + 36 of addresses, then
 * ALPN and AUTHORITY (3 + 255 each) and SSL (3 + 5 + 3 + 32 + 3 + 64). */
#define V2_MAX 1024

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int is_ip(const struct conn_addr *a)
{
	return a->family == AF_INET || a->family == AF_INET6;
}

static void map(struct conn_addr *a)
{
	if (a->family == AF_INET) {
		memmove(a->ip + 12, a->ip, 4);
		memcpy(a->ip, v4_mapped, 12);
		a->family = AF_INET6;
	}
}

/* Both of one family, IPv4 wherever it can be; 0 when either is not IP. */
static int same_family(struct conn_addr *s, struct conn_addr *d)
{
	if (!is_ip(s) || !is_ip(d))
		return 0;
	conn_addr_unmap(s);
	conn_addr_unmap(d);
	if (s->family != d->family) {
		map(s);
		map(d);
	}
	return 1;
}

static int v1(struct buf *out, const struct conn_addr *s, const struct conn_addr *d)
{
	char line[PROXY_V1_MAX + 1];
	char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
	int n;

	if (s->family == AF_UNSPEC) {
		n = snprintf(line, sizeof(line), "PROXY UNKNOWN\r\n");
	} else {
		if (inet_ntop(s->family, s->ip, sa, sizeof(sa)) == NULL ||
		    inet_ntop(d->family, d->ip, da, sizeof(da)) == NULL)
			return -1;
		n = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n",
		             s->family == AF_INET ? "TCP4" : "TCP6", sa, da,
		             (unsigned)s->port, (unsigned)d->port);
	}
	/* At most 104 bytes (TCP6, two 39-character addresses, ports
	 * 65535); the spec's receivers read no further than 107. */
	if (n < 0 || n > PROXY_V1_MAX)
		return -1;
	return buf_append(out, line, (size_t)n);
}

/* The length of s; 0 when s is NULL, empty or longer than max. */
static size_t bounded(const char *s, size_t max)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = strnlen(s, max + 1);
	return n > max ? 0 : n;
}

/* One TLV: type, 16-bit length, value; nothing for an empty value. */
static int add_tlv(CBB *cbb, uint8_t type, const char *value, size_t max)
{
	size_t n = bounded(value, max);
	CBB v;

	if (n == 0)
		return 1;
	return CBB_add_u8(cbb, type) && CBB_add_u16_length_prefixed(cbb, &v) &&
	       CBB_add_bytes(&v, (const uint8_t *)value, n) && CBB_flush(cbb);
}

static int add_tlvs(CBB *body, const struct proxy_tls *tls)
{
	CBB ssl;

	if (!add_tlv(body, PP2_TYPE_ALPN, tls->alpn, PROXY_ALPN_MAX) ||
	    !add_tlv(body, PP2_TYPE_AUTHORITY, tls->sni, PROXY_SNI_MAX))
		return 0;
	/* No client certificates yet: neither PP2_CLIENT_CERT_CONN nor
	 * _SESS, and verify 0 as HAProxy leaves it then. A backend must
	 * read the certificate flags before verify. */
	return CBB_add_u8(body, PP2_TYPE_SSL) &&
	       CBB_add_u16_length_prefixed(body, &ssl) &&
	       CBB_add_u8(&ssl, PP2_CLIENT_SSL) &&
	       CBB_add_u32(&ssl, 0) &&
	       add_tlv(&ssl, PP2_SUBTYPE_SSL_VERSION, tls->version, PROXY_VERSION_MAX) &&
	       add_tlv(&ssl, PP2_SUBTYPE_SSL_CIPHER, tls->cipher, PROXY_CIPHER_MAX) &&
	       CBB_flush(body);
}

static int v2(struct buf *out, const struct conn_addr *s, const struct conn_addr *d,
              const struct proxy_tls *tls)
{
	uint8_t hdr[V2_MAX];
	size_t alen = s->family == AF_INET ? 4 : 16;
	CBB cbb, body;
	size_t len;
	uint8_t fam = s->family == AF_INET ? V2_FAM_TCP4 :
	              s->family == AF_INET6 ? V2_FAM_TCP6 : V2_FAM_UNSPEC;

	if (!CBB_init_fixed(&cbb, hdr, sizeof(hdr)))
		return -1;
	if (!CBB_add_bytes(&cbb, v2_sig, sizeof(v2_sig)) ||
	    !CBB_add_u8(&cbb, V2_CMD_PROXY) || !CBB_add_u8(&cbb, fam) ||
	    !CBB_add_u16_length_prefixed(&cbb, &body))
		goto err;
	/* Source and destination addresses, then ports, network order. */
	if (fam != V2_FAM_UNSPEC &&
	    (!CBB_add_bytes(&body, s->ip, alen) || !CBB_add_bytes(&body, d->ip, alen) ||
	     !CBB_add_u16(&body, s->port) || !CBB_add_u16(&body, d->port)))
		goto err;
	if (tls != NULL && !add_tlvs(&body, tls))
		goto err;
	if (!CBB_finish(&cbb, NULL, &len))
		goto err;
	return buf_append(out, hdr, len);
err:
	CBB_cleanup(&cbb);
	return -1;
}

int proxy_header(struct buf *out, enum proxy_version v, const struct conn_addr *src,
                 const struct conn_addr *dst, const struct proxy_tls *tls)
{
	struct conn_addr s = *src, d = *dst;

	if (!same_family(&s, &d))
		s.family = d.family = AF_UNSPEC;
	if (v == PROXY_V1)
		return v1(out, &s, &d);
	if (v == PROXY_V2)
		return v2(out, &s, &d, tls);
	return -1;
}
