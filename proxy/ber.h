#ifndef PORTIER_BER_H
#define PORTIER_BER_H

#include <stddef.h>
#include <stdint.h>

/*
 * A bounded reader and writer for the few LDAP messages portier handles
 * before TLS (RFC 4511). Only definite lengths (short or long form, at most
 * four length octets) are accepted; an indefinite length, which LDAP forbids
 * (RFC 4511 section 5.1), is malformed.
 */

/* LDAP protocolOp tags (identifier octets) that portier knows. */
#define BER_LDAP_BIND_REQ	0x60
#define BER_LDAP_BIND_RES	0x61
#define BER_LDAP_UNBIND_REQ	0x42
#define BER_LDAP_SEARCH_REQ	0x63
#define BER_LDAP_SEARCH_ENTRY	0x64
#define BER_LDAP_SEARCH_DONE	0x65
#define BER_LDAP_MODIFY_REQ	0x66
#define BER_LDAP_MODIFY_RES	0x67
#define BER_LDAP_ADD_REQ	0x68
#define BER_LDAP_ADD_RES	0x69
#define BER_LDAP_DEL_REQ	0x4a
#define BER_LDAP_DEL_RES	0x6b
#define BER_LDAP_MODDN_REQ	0x6c
#define BER_LDAP_MODDN_RES	0x6d
#define BER_LDAP_COMPARE_REQ	0x6e
#define BER_LDAP_COMPARE_RES	0x6f
#define BER_LDAP_ABANDON_REQ	0x50
#define BER_LDAP_EXTENDED_REQ	0x77
#define BER_LDAP_EXTENDED_RES	0x78

/* One LDAPMessage, as far as portier looks into it. */
struct ber_ldap_msg {
	size_t len;		/* bytes of the whole message, header included */
	uint32_t msgid;		/* messageID, 0 .. 2^31-1 */
	unsigned op;		/* protocolOp identifier octet, BER_LDAP_* */
	const uint8_t *oid;	/* ExtendedRequest requestName, else NULL */
	size_t oid_len;		/* its length; the OID is text, not NUL-ended */
	const uint8_t *body;	/* the protocolOp's contents (points into p) */
	size_t body_len;
	const uint8_t *controls;	/* the Controls' contents, NULL if none */
	size_t controls_len;
};

/* ber_ldap_read(p, n, max, m): parse the LDAPMessage at the start of
 * p[0..n), which may hold only part of it. Returns 1 and fills m when a whole
 * message of at most max bytes is there (m->oid then points into p), 0 when
 * more bytes are needed (never when n >= max), -1 when the bytes are not an
 * LDAPMessage, use an indefinite length or announce more than max bytes. */
int ber_ldap_read(const uint8_t *p, size_t n, size_t max, struct ber_ldap_msg *m);

/* ber_ldap_code(m, code): the resultCode of an LDAPResult-shaped response
 * m (bind, search done, modify ... extended). 0, or -1 when m has none. */
int ber_ldap_code(const struct ber_ldap_msg *m, unsigned *code);

/* ber_ldap_entry_has(m, type, value): 1 when SearchResultEntry m has an
 * attribute type (case-insensitive) with value (exact), 0 when not, -1 when
 * m is not a well-formed SearchResultEntry. */
int ber_ldap_entry_has(const struct ber_ldap_msg *m, const char *type, const char *value);

/* ber_ldap_bind_has_credentials(m): 1 when BindRequest m carries
 * credentials (a simple bind with a password, or SASL), 0 for an anonymous
 * or unauthenticated simple bind (empty password), -1 when m is not a
 * well-formed BindRequest. */
int ber_ldap_bind_has_credentials(const struct ber_ldap_msg *m);

/* ber_ldap_critical(m): 1 when request m carries a control marked
 * critical (RFC 4511 4.1.11: portier knows no control, so the operation
 * must not be performed), 0 when none is, -1 when its controls are not
 * well-formed. */
int ber_ldap_critical(const struct ber_ldap_msg *m);

/* ber_ldap_result(dst, cap, len, msgid, op, code, diag, name): write an
 * LDAPMessage whose protocolOp is the LDAPResult-shaped response op (e.g.
 * BER_LDAP_BIND_RES) with resultCode code, empty matchedDN, diagnosticMessage
 * diag and, if name is not NULL, responseName name (ExtendedResponse only).
 * Writes at most cap bytes at dst and sets *len. Returns 0, or -1 if it does
 * not fit. */
int ber_ldap_result(uint8_t *dst, size_t cap, size_t *len, uint32_t msgid,
    unsigned op, unsigned code, const char *diag, const char *name);

#endif
