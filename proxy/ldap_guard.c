#include "ldap_guard.h"
#include "ber.h"

#include <string.h>

#define OID_STARTTLS "1.3.6.1.4.1.1466.20037"
/* A StartTLS request is about 31 bytes; an ExtendedRequest longer than
 * this is some other operation and passes unread. */
#define SMALL_EXTENDED 512

/* The outer header of an LDAPMessage: SEQUENCE tag, definite length, then
 * the messageID INTEGER and the protocolOp tag. 1 with *total and *op, 0
 * need more bytes, -1 not LDAP. */
static int peek_header(const uint8_t *p, size_t n, uint64_t *total, unsigned *op)
{
	size_t i = 1, lenlen;
	uint64_t len = 0;

	if (n < 2)
		return n == 1 && p[0] != 0x30 ? -1 : 0;
	if (p[0] != 0x30)
		return -1;
	if (p[1] < 0x80) {
		len = p[1];
		i = 2;
	} else {
		lenlen = p[1] & 0x7f;
		if (lenlen == 0 || lenlen > 4)
			return -1;   /* indefinite, or more than 4 GiB */
		if (n < 2 + lenlen)
			return 0;
		for (size_t k = 0; k < lenlen; k++)
			len = len << 8 | p[2 + k];
		i = 2 + lenlen;
	}
	*total = i + len;
	/* messageID: INTEGER. BER allows leading zero octets, so its length
	 * says nothing about its value: frame any short-form length. */
	if (n < i + 2)
		return 0;
	if (p[i] != 0x02 || p[i + 1] < 1 || p[i + 1] > 0x7f)
		return -1;
	i += 2 + p[i + 1];
	if (n <= i)
		return 0;
	*op = p[i];
	return 1;
}

size_t ldap_guard_scan(struct ldap_guard *g, const uint8_t *p, size_t n,
                       size_t *drop, struct buf *reply)
{
	*drop = 0;
	if (g->off)
		return n;
	while (g->cleared < n) {
		size_t pos = g->cleared, avail = n - pos;
		uint64_t total;
		unsigned op;
		int r;

		if (g->skip > 0) {
			size_t k = g->skip < avail ? (size_t)g->skip : avail;
			g->cleared += (uint32_t)k;
			g->skip -= k;
			continue;
		}
		r = peek_header(p + pos, avail, &total, &op);
		if (r < 0) {
			g->off = 1;
			return n;
		}
		if (r == 0)
			break;   /* hold the partial header */
		if (op == BER_LDAP_EXTENDED_REQ && total <= SMALL_EXTENDED) {
			struct ber_ldap_msg m;
			if (pos > 0)
				break;   /* let what is before it go first */
			r = ber_ldap_read(p, n, SMALL_EXTENDED, &m);
			if (r == 0)
				break;
			if (r > 0 && m.oid_len == strlen(OID_STARTTLS) &&
			    memcmp(m.oid, OID_STARTTLS, m.oid_len) == 0) {
				uint8_t out[128];
				size_t len;
				if (ber_ldap_result(out, sizeof(out), &len, m.msgid,
				    BER_LDAP_EXTENDED_RES, 1, "TLS is already active",
				    OID_STARTTLS) == 0)
					buf_append(reply, out, len);
				*drop = m.len;
				return 0;
			}
		}
		g->skip = total;
	}
	return g->cleared;
}

void ldap_guard_sent(struct ldap_guard *g, size_t k)
{
	g->cleared = k >= g->cleared ? 0 : g->cleared - (uint32_t)k;
}
