#include "ldap_guard.h"
#include "ber.h"

#include <string.h>

#define OID_STARTTLS "1.3.6.1.4.1.1466.20037"
/* A StartTLS request is about 31 bytes; an ExtendedRequest longer than
 * this is some other operation and passes unread. */
#define SMALL_EXTENDED 512

/* A definite length at p[0..n), after its tag: 1 with *ll its octets and
 * *len, 0 need more, -1 indefinite or more than 4 length octets. */
static int length_of(const uint8_t *p, size_t n, size_t *ll, uint64_t *len)
{
	size_t k;

	if (n < 1)
		return 0;
	if (p[0] < 0x80) {
		*ll = 1;
		*len = p[0];
		return 1;
	}
	k = p[0] & 0x7f;
	if (k == 0 || k > 4)
		return -1;   /* indefinite, or more than 4 GiB */
	if (n < 1 + k)
		return 0;
	*len = 0;
	for (size_t j = 0; j < k; j++)
		*len = *len << 8 | p[1 + j];
	*ll = 1 + k;
	return 1;
}

/* The outer header of an LDAPMessage: SEQUENCE tag, definite length, then
 * the messageID INTEGER and the protocolOp tag. 1 with *total and *op, 0
 * need more bytes, -1 not LDAP. */
static int peek_header(const uint8_t *p, size_t n, uint64_t *total, unsigned *op)
{
	size_t i, ll;
	uint64_t len;
	int r;

	if (n < 1)
		return 0;
	if (p[0] != 0x30)
		return -1;
	if ((r = length_of(p + 1, n - 1, &ll, &len)) <= 0)
		return r;
	i = 1 + ll;
	*total = i + len;
	/* messageID: INTEGER. BER allows leading zero octets and a long
	 * length form, and slapd reads both (as ber_ldap_read does), so
	 * neither says anything about its value: frame any such length. */
	if (n <= i)
		return 0;
	if (p[i] != 0x02)
		return -1;
	if ((r = length_of(p + i + 1, n - i - 1, &ll, &len)) <= 0)
		return r;
	if (len < 1 || len > 0x7f)
		return -1;
	i += 1 + ll + (size_t)len;
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
