#include "ber.h"

#include <string.h>
#include <strings.h>

/* CBS/CBB are BoringSSL's plain byte parser and builder; no TLS state here. */
#include <openssl/bytestring.h>

/* The identifier octet of a low-number tag, from CBS's tag representation;
 * 0 (no LDAP op) for high tag numbers, which LDAP never uses. */
static unsigned ident_of(unsigned tag)
{
	unsigned num = tag & CBS_ASN1_TAG_NUMBER_MASK;

	if (num >= 31)
		return 0;
	return (tag >> CBS_ASN1_TAG_SHIFT) | num;
}

static unsigned tag_of(unsigned ident)
{
	return ((ident & 0xe0u) << CBS_ASN1_TAG_SHIFT) | (ident & 0x1fu);
}

/* One definite-length BER element; 0 on anything else. */
static int get_element(CBS *cbs, CBS *contents, unsigned *tag)
{
	CBS el;
	size_t hl;
	int indef;

	if (!CBS_get_any_ber_asn1_element(cbs, &el, tag, &hl, NULL, &indef) ||
	    indef || !CBS_skip(&el, hl))
		return 0;
	*contents = el;
	return 1;
}

/* The length the outer SEQUENCE header announces, before all of it is there:
 * this is how "need more" is told apart from "malformed". 1 and *total set,
 * 0 need more, -1 bad. */
static int outer_length(const uint8_t *p, size_t n, size_t max, size_t *total)
{
	size_t hl, clen = 0, nb;

	if (n < 2)
		return 0;
	if (p[0] != 0x30)
		return -1;
	if (p[1] < 0x80) {
		hl = 2;
		clen = p[1];
	} else {
		/* 0x80 is the indefinite form; more than four length octets
		 * is more than any message we accept. */
		nb = p[1] & 0x7fu;
		if (nb == 0 || nb > 4)
			return -1;
		if (n < 2 + nb)
			return 0;
		for (size_t i = 0; i < nb; i++)
			clen = (clen << 8) | p[2 + i];
		hl = 2 + nb;
	}
	if (clen > max || hl + clen > max)
		return -1;
	*total = hl + clen;
	return 1;
}

/* MessageID ::= INTEGER (0 .. maxInt), in BER so possibly not minimal. */
static int get_msgid(CBS *seq, uint32_t *id)
{
	CBS v;
	unsigned tag;
	uint64_t x = 0;
	uint8_t b;

	if (!get_element(seq, &v, &tag) || tag != CBS_ASN1_INTEGER ||
	    CBS_len(&v) < 1 || CBS_len(&v) > 16 || (CBS_data(&v)[0] & 0x80))
		return 0;
	/* Leading zero octets (BER does not insist on the shortest form)
	 * carry no value; what is left must fit 31 bits. */
	while (CBS_len(&v) > 1 && CBS_data(&v)[0] == 0)
		CBS_skip(&v, 1);
	if (CBS_len(&v) > 4)
		return 0;
	while (CBS_get_u8(&v, &b))
		x = (x << 8) | b;
	if (x > 0x7fffffffu)
		return 0;
	*id = (uint32_t)x;
	return 1;
}

int ber_ldap_read(const uint8_t *p, size_t n, size_t max, struct ber_ldap_msg *m)
{
	CBS cbs, seq, op, name, ctl;
	unsigned tag;
	size_t total;
	int r;

	if ((r = outer_length(p, n, max, &total)) != 1)
		return (r == 0 && n >= max) ? -1 : r;
	if (n < total)
		return 0;

	memset(m, 0, sizeof(*m));
	CBS_init(&cbs, p, total);
	if (!get_element(&cbs, &seq, &tag) || tag != CBS_ASN1_SEQUENCE ||
	    CBS_len(&cbs) != 0)
		return -1;
	if (!get_msgid(&seq, &m->msgid))
		return -1;
	if (!get_element(&seq, &op, &tag))
		return -1;
	m->op = ident_of(tag);
	m->body = CBS_data(&op);
	m->body_len = CBS_len(&op);
	if (m->op == BER_LDAP_EXTENDED_REQ) {
		/* requestName [0] LDAPOID, primitive. */
		if (!get_element(&op, &name, &tag) ||
		    tag != (CBS_ASN1_CONTEXT_SPECIFIC | 0))
			return -1;
		m->oid = CBS_data(&name);
		m->oid_len = CBS_len(&name);
	}
	/* At most the optional controls [0] after the protocolOp. */
	if (CBS_len(&seq) != 0) {
		if (!get_element(&seq, &ctl, &tag) ||
		    tag != (CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 0) ||
		    CBS_len(&seq) != 0)
			return -1;
		m->controls = CBS_data(&ctl);
		m->controls_len = CBS_len(&ctl);
	}
	m->len = total;
	return 1;
}

int ber_ldap_code(const struct ber_ldap_msg *m, unsigned *code)
{
	CBS body, v;
	unsigned tag;
	uint8_t b;

	switch (m->op) {
	case BER_LDAP_BIND_RES: case BER_LDAP_SEARCH_DONE: case BER_LDAP_MODIFY_RES:
	case BER_LDAP_ADD_RES: case BER_LDAP_DEL_RES: case BER_LDAP_MODDN_RES:
	case BER_LDAP_COMPARE_RES: case BER_LDAP_EXTENDED_RES:
		break;
	default:
		return -1;
	}
	CBS_init(&body, m->body, m->body_len);
	/* ENUMERATED, non-negative; every code RFC 4511 names fits 16 bits. */
	if (!get_element(&body, &v, &tag) || tag != CBS_ASN1_ENUMERATED ||
	    CBS_len(&v) < 1 || CBS_len(&v) > 3 || (CBS_data(&v)[0] & 0x80))
		return -1;
	*code = 0;
	while (CBS_get_u8(&v, &b))
		*code = (*code << 8) | b;
	return 0;
}

static int cbs_is(const CBS *c, const char *s, int nocase)
{
	size_t n = strlen(s);

	return CBS_len(c) == n && (nocase ? strncasecmp((const char *)CBS_data(c), s, n)
	                                  : memcmp(CBS_data(c), s, n)) == 0;
}

int ber_ldap_entry_has(const struct ber_ldap_msg *m, const char *type, const char *value)
{
	CBS body, name, attrs, attr, t, vals, v;
	unsigned tag;
	int found = 0;

	if (m->op != BER_LDAP_SEARCH_ENTRY)
		return -1;
	CBS_init(&body, m->body, m->body_len);
	if (!get_element(&body, &name, &tag) || tag != CBS_ASN1_OCTETSTRING ||
	    !get_element(&body, &attrs, &tag) || tag != CBS_ASN1_SEQUENCE)
		return -1;
	while (CBS_len(&attrs) > 0) {
		if (!get_element(&attrs, &attr, &tag) || tag != CBS_ASN1_SEQUENCE ||
		    !get_element(&attr, &t, &tag) || tag != CBS_ASN1_OCTETSTRING ||
		    !get_element(&attr, &vals, &tag) || tag != CBS_ASN1_SET)
			return -1;
		while (CBS_len(&vals) > 0) {
			if (!get_element(&vals, &v, &tag) || tag != CBS_ASN1_OCTETSTRING)
				return -1;
			if (cbs_is(&t, type, 1) && cbs_is(&v, value, 0))
				found = 1;
		}
	}
	return found;
}

int ber_ldap_bind_has_credentials(const struct ber_ldap_msg *m)
{
	CBS body, v;
	unsigned tag;

	if (m->op != BER_LDAP_BIND_REQ)
		return -1;
	/* BindRequest: version INTEGER, name LDAPDN, authentication CHOICE
	 * { simple [0] OCTET STRING, sasl [3] SaslCredentials } (RFC 4511
	 * 4.2). BER lets a primitive string be sent constructed; only the
	 * empty simple password counts as no credentials. */
	CBS_init(&body, m->body, m->body_len);
	if (!get_element(&body, &v, &tag) || tag != CBS_ASN1_INTEGER ||
	    !get_element(&body, &v, &tag) || tag != CBS_ASN1_OCTETSTRING ||
	    !get_element(&body, &v, &tag))
		return -1;
	if (tag == (CBS_ASN1_CONTEXT_SPECIFIC | 0))
		return CBS_len(&v) > 0;
	return 1;
}

int ber_ldap_critical(const struct ber_ldap_msg *m)
{
	CBS ctls, ctl, v;
	unsigned tag;
	int critical = 0;

	if (m->controls == NULL)
		return 0;
	/* Control ::= SEQUENCE { controlType LDAPOID, criticality BOOLEAN
	 * DEFAULT FALSE, controlValue OCTET STRING OPTIONAL }; in BER any
	 * non-zero octet is TRUE. */
	CBS_init(&ctls, m->controls, m->controls_len);
	while (CBS_len(&ctls) > 0) {
		if (!get_element(&ctls, &ctl, &tag) || tag != CBS_ASN1_SEQUENCE ||
		    !get_element(&ctl, &v, &tag) || tag != CBS_ASN1_OCTETSTRING)
			return -1;
		if (CBS_len(&ctl) > 0 && CBS_data(&ctl)[0] == 0x01) {
			if (!get_element(&ctl, &v, &tag) || CBS_len(&v) != 1)
				return -1;
			critical |= CBS_data(&v)[0] != 0;
		}
		if (CBS_len(&ctl) > 0 &&
		    (!get_element(&ctl, &v, &tag) || tag != CBS_ASN1_OCTETSTRING ||
		     CBS_len(&ctl) != 0))
			return -1;
	}
	return critical;
}

int ber_ldap_result(uint8_t *dst, size_t cap, size_t *len, uint32_t msgid,
    unsigned op, unsigned code, const char *diag, const char *name)
{
	CBB cbb, msg, res, el;

	/* One-octet ENUMERATED contents: every code portier sends is small. */
	if (code > 127 || msgid > 0x7fffffffu)
		return -1;
	if (!CBB_init_fixed(&cbb, dst, cap))
		return -1;
	if (!CBB_add_asn1(&cbb, &msg, CBS_ASN1_SEQUENCE) ||
	    !CBB_add_asn1_uint64(&msg, msgid) ||
	    !CBB_add_asn1(&msg, &res, tag_of(op)) ||
	    !CBB_add_asn1(&res, &el, CBS_ASN1_ENUMERATED) ||
	    !CBB_add_u8(&el, (uint8_t)code) ||
	    !CBB_add_asn1_octet_string(&res, NULL, 0) ||
	    !CBB_add_asn1_octet_string(&res, (const uint8_t *)diag, strlen(diag)))
		goto err0;
	if (name != NULL &&
	    (!CBB_add_asn1(&res, &el, CBS_ASN1_CONTEXT_SPECIFIC | 10) ||
	     !CBB_add_bytes(&el, (const uint8_t *)name, strlen(name))))
		goto err0;
	if (!CBB_finish(&cbb, NULL, len))
		goto err0;
	return 0;

err0:
	CBB_cleanup(&cbb);
	return -1;
}
