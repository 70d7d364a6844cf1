#ifndef PORTIER_LDAP_GUARD_H
#define PORTIER_LDAP_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/*
 * After an LDAP StartTLS, the client's stream goes to a backend that has
 * no TLS. A second StartTLS must get operationsError (RFC 4511 4.14.1)
 * from the side that holds the TLS layer, which is portier: the guard
 * frames the client's LDAPMessages as they pass, without buffering more
 * than a message header and an ExtendedRequest's requestName, and takes
 * out StartTLS requests, however long. Pure: bytes in, verdicts out.
 */
struct ldap_guard {
	uint64_t skip;      /* bytes of the current message not yet cleared */
	uint64_t discard;   /* bytes of a StartTLS still to take out */
	uint32_t cleared;   /* bytes at the front already cleared to send */
	int off;            /* framing lost (malformed): pass everything */
};

/* ldap_guard_scan(g, p, n, drop, reply): p[0..n) are the client's bytes
 * waiting for the backend, the front first. Returns how many leading bytes
 * may go now. When a StartTLS ExtendedRequest is at the front (known by
 * its requestName, whatever follows it) it returns 0, sets *drop to as
 * much of it as is there (the caller discards those; the rest is dropped
 * by the next calls as it comes) and appends the operationsError
 * ExtendedResponse to reply once; otherwise *drop is 0. A message that is
 * not LDAP turns the guard off; the backend judges it. */
size_t ldap_guard_scan(struct ldap_guard *g, const uint8_t *p, size_t n,
                       size_t *drop, struct buf *reply);

/* ldap_guard_sent(g, k): k cleared bytes left the front. */
void ldap_guard_sent(struct ldap_guard *g, size_t k);

#endif
