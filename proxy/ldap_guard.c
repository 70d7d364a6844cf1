#include "ldap_guard.h"
#include "ber.h"

#include <string.h>

#define OID_STARTTLS "1.3.6.1.4.1.1466.20037"

/*
 * The guard must read a message as the backend does: an encoding slapd
 * takes and the guard does not would carry a StartTLS past it. slapd's
 * liblber reads a tag of up to 8 octets (the width of ber_tag_t) and a
 * length of up to 8 octets after its first (ber_len_t), leading zeros
 * and all; checked against slapd 2.5: an ExtendedRequest whose
 * requestName has an 8-octet tag or an 8-octet length, or whose operation
 * has an 8-octet length, is read as any other, and a 9-octet tag is a
 * decoding error.
 */
#define TAG_MAX_OCTETS	8
#define LEN_MAX_OCTETS	8

/* A definite length at p[0..n), after its tag: 1 with *ll its octets and
 * *len, 0 need more, -1 indefinite, more than LEN_MAX_OCTETS length
 * octets, or 4 GiB or more (no message slapd takes is that long). */
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
	if (k == 0 || k > LEN_MAX_OCTETS)
		return -1;
	if (n < 1 + k)
		return 0;
	*len = 0;
	for (size_t j = 0; j < k; j++) {
		if (*len > 0xffffff)
			return -1;   /* the next octet makes it 4 GiB or more */
		*len = *len << 8 | p[1 + j];
	}
	*ll = 1 + k;
	return 1;
}

/* The front of an LDAPMessage, as far as the guard reads it. */
struct head {
	uint64_t total;     /* bytes of the whole message */
	size_t op_at;       /* offset of the protocolOp tag */
	unsigned op;        /* that tag */
	uint32_t msgid;
	int msgid_ok;       /* 0 .. 2^31-1: one slapd would take */
};

/* The outer header of an LDAPMessage: SEQUENCE tag, definite length, then
 * the messageID INTEGER and the protocolOp tag. 1 with *h, 0 need more
 * bytes, -1 not LDAP. */
static int peek_header(const uint8_t *p, size_t n, struct head *h)
{
	size_t i, ll;
	uint64_t len, id = 0;
	int r;

	if (n < 1)
		return 0;
	if (p[0] != 0x30)
		return -1;
	if ((r = length_of(p + 1, n - 1, &ll, &len)) <= 0)
		return r;
	i = 1 + ll;
	h->total = i + len;
	/* messageID: INTEGER. BER allows leading zero octets and a long
	 * length form, and slapd reads both, so neither says anything
	 * about its value: frame any such length. */
	if (n <= i)
		return 0;
	if (p[i] != 0x02)
		return -1;
	if ((r = length_of(p + i + 1, n - i - 1, &ll, &len)) <= 0)
		return r;
	if (len < 1 || len > 0x7f)
		return -1;
	i += 1 + ll;
	if (n < i + len + 1)
		return 0;
	h->msgid_ok = p[i] < 0x80;     /* not negative */
	for (size_t k = 0; k < len; k++) {
		if (id > 0x7fffffff)
			break;
		id = id << 8 | p[i + k];
	}
	h->msgid_ok = h->msgid_ok && id <= 0x7fffffff;
	h->msgid = (uint32_t)id;
	i += (size_t)len;
	h->op_at = i;
	h->op = p[i];
	return 1;
}

/* Whether the ExtendedRequest h heads is a StartTLS: its requestName, the
 * first element, names the StartTLS OID. Its tag is not looked at (slapd
 * reads the element whatever its tag), nor is what follows it (a value,
 * controls: it is a StartTLS all the same, however long). 1 yes, 0 need
 * more bytes, -1 no. */
static int is_starttls(const uint8_t *p, size_t n, const struct head *h)
{
	size_t i = h->op_at + 1, ll, end;
	uint64_t oplen, len;
	int r;

	if ((r = length_of(p + i, n - i, &ll, &oplen)) <= 0)
		return r;
	i += ll;
	if (i > h->total)
		return -1;   /* the message ends inside the operation's header */
	end = i + (oplen < h->total - i ? (size_t)oplen : (size_t)(h->total - i));
	if (n <= i)
		return 0;
	/* The element's tag: one octet, or a high-tag-number form. */
	if ((p[i++] & 0x1f) == 0x1f) {
		for (int k = 1;; k++) {
			if (k == TAG_MAX_OCTETS)
				return -1;
			if (n <= i)
				return 0;
			if (!(p[i++] & 0x80))
				break;
		}
	}
	if ((r = length_of(p + i, n - i, &ll, &len)) <= 0)
		return r;
	i += ll;
	if (len != strlen(OID_STARTTLS) || i + len > end)
		return -1;
	if (n < i + len)
		return 0;
	return memcmp(p + i, OID_STARTTLS, len) == 0 ? 1 : -1;
}

/* Takes out what is left of a StartTLS being discarded. */
static size_t discard(struct ldap_guard *g, size_t n, size_t *drop)
{
	*drop = g->discard < n ? (size_t)g->discard : n;
	g->discard -= *drop;
	return 0;
}

size_t ldap_guard_scan(struct ldap_guard *g, const uint8_t *p, size_t n,
                       size_t *drop, struct buf *reply)
{
	*drop = 0;
	if (g->off)
		return n;
	if (g->discard > 0)
		return discard(g, n, drop);
	while (g->cleared < n) {
		size_t pos = g->cleared, avail = n - pos;
		struct head h;
		int r;

		if (g->skip > 0) {
			size_t k = g->skip < avail ? (size_t)g->skip : avail;
			g->cleared += (uint32_t)k;
			g->skip -= k;
			continue;
		}
		r = peek_header(p + pos, avail, &h);
		if (r < 0) {
			g->off = 1;
			return n;
		}
		if (r == 0)
			break;   /* hold the partial header */
		if (h.op == BER_LDAP_EXTENDED_REQ && h.msgid_ok) {
			if (pos > 0)
				break;   /* let what is before it go first */
			r = is_starttls(p, n, &h);
			if (r == 0)
				break;   /* hold it until its requestName is in */
			if (r > 0) {
				/* Answered at once; its bytes go as they come. */
				uint8_t out[128];
				size_t len;
				if (ber_ldap_result(out, sizeof(out), &len, h.msgid,
				    BER_LDAP_EXTENDED_RES, 1, "TLS is already active",
				    OID_STARTTLS) == 0)
					buf_append(reply, out, len);
				g->discard = h.total;
				return discard(g, n, drop);
			}
		}
		g->skip = h.total;
	}
	return g->cleared;
}

void ldap_guard_sent(struct ldap_guard *g, size_t k)
{
	g->cleared = k >= g->cleared ? 0 : g->cleared - (uint32_t)k;
}
