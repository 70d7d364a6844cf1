#include "starttls.h"

#include <string.h>

#include "ber.h"

/*
 * LDAP (RFC 4511, StartTLS section 4.14). No greeting: the client speaks
 * first. Every request but StartTLS gets confidentialityRequired in its own
 * response type, so a client learns nothing and sends nothing in the clear
 * that it could not have sent anyway.
 */

/* Pre-TLS requests are small; a bigger one is refused, not buffered. */
#define LDAP_MSG_MAX	8192
#define LDAP_RES_MAX	256	/* largest response portier writes */

#define OID_STARTTLS	"1.3.6.1.4.1.1466.20037"
#define OID_NOTICE	"1.3.6.1.4.1.1466.20036"	/* of Disconnection */

#define RC_SUCCESS		0
#define RC_PROTOCOL_ERROR	2
#define RC_CRITICAL		12	/* unavailableCriticalExtension */
#define RC_CONFIDENTIALITY	13
#define RC_UNAVAILABLE		52

/* Request op -> response op, for LDAPResult-shaped replies. */
static const struct {
	unsigned req, res;
} ops[] = {
	{ BER_LDAP_BIND_REQ, BER_LDAP_BIND_RES },
	{ BER_LDAP_SEARCH_REQ, BER_LDAP_SEARCH_DONE },
	{ BER_LDAP_MODIFY_REQ, BER_LDAP_MODIFY_RES },
	{ BER_LDAP_ADD_REQ, BER_LDAP_ADD_RES },
	{ BER_LDAP_DEL_REQ, BER_LDAP_DEL_RES },
	{ BER_LDAP_MODDN_REQ, BER_LDAP_MODDN_RES },
	{ BER_LDAP_COMPARE_REQ, BER_LDAP_COMPARE_RES },
	{ BER_LDAP_EXTENDED_REQ, BER_LDAP_EXTENDED_RES },
};

static int ldap_frame(const uint8_t *p, size_t n, size_t max, size_t *len,
    const char **why)
{
	struct ber_ldap_msg m;
	int r = ber_ldap_read(p, n, max, &m);

	if (r < 0) {
		*why = "malformed or oversized LDAP message";
		return -2;
	}
	if (r == 1)
		*len = m.len;
	return r;
}

static int ldap_greeting(struct starttls_session *s, struct buf *out)
{
	return 0;
}

static int result(struct buf *out, uint32_t msgid, unsigned op, unsigned code,
    const char *diag, const char *name)
{
	uint8_t tmp[LDAP_RES_MAX];
	size_t n;

	if (ber_ldap_result(tmp, sizeof(tmp), &n, msgid, op, code, diag, name))
		return -1;
	return buf_append(out, tmp, n);
}

static enum starttls_verdict ldap_command(struct starttls_session *s,
    const uint8_t *msg, size_t len, struct buf *out)
{
	struct ber_ldap_msg m;

	if (ber_ldap_read(msg, len, len, &m) != 1)
		return STARTTLS_ERROR;	/* framed already: cannot happen */
	if (m.op == BER_LDAP_EXTENDED_REQ &&
	    m.oid_len == strlen(OID_STARTTLS) &&
	    memcmp(m.oid, OID_STARTTLS, m.oid_len) == 0) {
		/* RFC 4511 4.1.11: a control marked critical that the server
		 * does not know (portier knows none) forbids the operation,
		 * as slapd refuses it; the client may ask again without. */
		switch (ber_ldap_critical(&m)) {
		case 0:
			return result(out, m.msgid, BER_LDAP_EXTENDED_RES,
			    RC_SUCCESS, "", OID_STARTTLS) ? STARTTLS_ERROR :
			    STARTTLS_UPGRADE;
		case 1:
			return result(out, m.msgid, BER_LDAP_EXTENDED_RES,
			    RC_CRITICAL, "critical extension is not recognized",
			    NULL) ? STARTTLS_ERROR : STARTTLS_AGAIN;
		default:
			s->why = "malformed LDAP controls";
			return s->drv->bye(s, STARTTLS_BYE_PROTOCOL, out) ?
			    STARTTLS_ERROR : STARTTLS_REPLY_AND_CLOSE;
		}
	}
	if (m.op == BER_LDAP_ABANDON_REQ)
		return STARTTLS_AGAIN;
	if (m.op == BER_LDAP_UNBIND_REQ) {
		s->why = "client unbind";
		return STARTTLS_REPLY_AND_CLOSE;
	}
	if (m.op == BER_LDAP_BIND_REQ && ber_ldap_bind_has_credentials(&m) != 0)
		starttls_note_auth(s, "bind");
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (ops[i].req == m.op)
			return result(out, m.msgid, ops[i].res,
			    RC_CONFIDENTIALITY, "StartTLS required", NULL) ?
			    STARTTLS_ERROR : STARTTLS_AGAIN;
	/* RFC 4511 4.1.1: not a request: Notice of Disconnection. */
	s->why = "not an LDAP request";
	return s->drv->bye(s, STARTTLS_BYE_PROTOCOL, out) ? STARTTLS_ERROR :
	    STARTTLS_REPLY_AND_CLOSE;
}

/* Notice of Disconnection (RFC 4511 4.4.1): an unsolicited ExtendedResponse
 * with messageID 0. */
static int ldap_bye(const struct starttls_session *s, enum starttls_bye why,
    struct buf *out)
{
	switch (why) {
	case STARTTLS_BYE_UNAVAILABLE:
	case STARTTLS_BYE_LIMITED:
	case STARTTLS_BYE_TIMEOUT:
		return result(out, 0, BER_LDAP_EXTENDED_RES, RC_UNAVAILABLE,
		    "service not available", OID_NOTICE);
	case STARTTLS_BYE_LIMIT:
	case STARTTLS_BYE_PROTOCOL:
		break;
	}
	return result(out, 0, BER_LDAP_EXTENDED_RES, RC_PROTOCOL_ERROR,
	    "protocol error", OID_NOTICE);
}

const struct starttls_driver starttls_ldap = {
	.name = "ldap",
	.state_size = 0,
	.max_msg = LDAP_MSG_MAX,
	.frame = ldap_frame,
	.greeting = ldap_greeting,
	.command = ldap_command,
	.bye = ldap_bye,
};
