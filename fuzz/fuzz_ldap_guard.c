/* libFuzzer target for the LDAP guard that frames a client's stream after
 * TLS, called as filter_ldap calls it. The input is fed in chunks whose
 * sizes come from the input itself;
 * what the guard clears must be a prefix of the stream in order, it must
 * never hold more than a header plus one small ExtendedRequest, and every
 * dropped piece must be exactly one StartTLS request (parsed here with the
 * BER reader, not the guard's framing). */
#include <stdlib.h>
#include <string.h>

#include "ber.h"
#include "ldap_guard.h"

#define OID_STARTTLS "1.3.6.1.4.1.1466.20037"

/* The guard may take out a StartTLS ExtendedRequest and nothing else: the
 * dropped bytes must be exactly one such message, read apart from the
 * guard's own framing. */
static int is_starttls(const uint8_t *p, size_t n)
{
	struct ber_ldap_msg m;

	return ber_ldap_read(p, n, n, &m) == 1 && m.len == n &&
	       m.op == BER_LDAP_EXTENDED_REQ && m.oid_len == strlen(OID_STARTTLS) &&
	       memcmp(m.oid, OID_STARTTLS, m.oid_len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The bytes waiting for the backend, data[head..fed), copied into a block
 * of exactly their size so that ASan stops a read past what has arrived.
 * Not a struct buf: that one gives back its 64 KiB whenever it empties, and
 * taking it again after every message was most of the time under ASan
 * (side by side, 15 s each beside two fuzz lanes: 2,216 and 2,304
 * executions a second before, 4,287 and 6,031 after). */
static size_t scan(struct ldap_guard *g, const uint8_t *p, size_t n,
                   size_t *drop, struct buf *reply)
{
	uint8_t *copy = malloc(n ? n : 1);
	size_t ok;

	if (copy == NULL)
		abort();
	memcpy(copy, p, n);
	ok = ldap_guard_scan(g, copy, n, drop, reply);
	free(copy);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ldap_guard g = {0};
	struct buf reply = {0};
	size_t fed = 0, head = 0, passed = 0, dropped = 0, step;

	if (size < 1)
		return 0;
	step = data[0] % 64 + 1;
	data++, size--;
	while (fed < size) {
		size_t ok, drop;

		fed += size - fed < step ? size - fed : step;
		/* As filter_ldap calls it: until nothing moves (a message
		 * waits at the front until what is before it has gone). */
		for (int turns = 0;; turns++) {
			if (turns > 4 * 9000)
				abort();   /* each turn moves a byte or more */
			ok = scan(&g, data + head, fed - head, &drop, &reply);
			if (drop) {
				if (drop > fed - head || drop > 512 ||
				    !is_starttls(data + head, drop))
					abort();
				head += drop;
				dropped += drop;
				continue;
			}
			if (ok == 0)
				break;
			if (ok > fed - head)
				abort();
			head += ok;
			ldap_guard_sent(&g, ok);
			passed += ok;
		}
		/* Held bytes stay bounded: a header, or one small message. */
		if (fed - head > 512 + 64)
			abort();
		buf_reset(&reply);
	}
	if (passed + dropped + (fed - head) != size)
		abort();
	return 0;
}
