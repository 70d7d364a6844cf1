/* libFuzzer target for the LDAP guard that frames a client's stream after
 * TLS, called as filter_ldap calls it. The input is fed in chunks whose
 * sizes come from the input itself; what the guard clears must be a prefix
 * of the stream in order, it must never hold more than a header and a
 * requestName, and what it drops must be StartTLS requests, each whole or
 * up to the end of the input, read here apart from the guard's framing. */
#include <sanitizer/asan_interface.h>
#include <stdlib.h>
#include <string.h>

#include "ldap_guard.h"

#define OID_STARTTLS "1.3.6.1.4.1.1466.20037"

/* A BER tag and definite length at p[0..n), as slapd's liblber reads
 * them: a tag of at most 8 octets, a length of at most 8 octets after the
 * first (leading zeros and all), below 4 GiB. The offset of the contents,
 * and *len; 0 when they are not whole within n, or not read so. */
static size_t tl(const uint8_t *p, size_t n, uint64_t *len)
{
	size_t i = 1, k;

	if (n < 2)
		return 0;
	if ((p[0] & 0x1f) == 0x1f)
		for (;;) {   /* a high tag number */
			if (i >= n || i >= 8)
				return 0;
			if (!(p[i++] & 0x80))
				break;
		}
	if (i >= n)
		return 0;
	if (p[i] < 0x80) {
		*len = p[i];
		return i + 1;
	}
	k = p[i] & 0x7f;
	if (k == 0 || k > 8 || i + 1 + k > n)
		return 0;
	*len = 0;
	for (size_t j = 0; j < k; j++)
		*len = *len << 8 | p[i + 1 + j];
	for (size_t j = 0; j + 4 < k; j++)
		if (p[i + 1 + j] != 0)
			return 0;   /* 4 GiB or more */
	return i + 1 + k;
}

/* The total length of the StartTLS ExtendedRequest at p[0..n) (a
 * SEQUENCE whose messageID is a non-negative INTEGER below 2^31, whose
 * protocolOp is [APPLICATION 23] and whose first element names the
 * StartTLS OID, whatever its tag), or 0 when it is not one. */
static uint64_t starttls_len(const uint8_t *p, size_t n)
{
	uint64_t total, len, oplen, end;
	size_t i, h;

	if (n < 1 || p[0] != 0x30 || (h = tl(p, n, &total)) == 0)
		return 0;
	total += h;
	i = h;
	if (i >= n || p[i] != 0x02 || (h = tl(p + i, n - i, &len)) == 0 ||
	    len < 1 || len > 0x7f || i + h + len > n || p[i + h] >= 0x80)
		return 0;
	{
		uint64_t id = 0;
		for (size_t k = 0; k < len; k++)
			if ((id = id << 8 | p[i + h + k]) > 0x7fffffff)
				return 0;
	}
	i += h + (size_t)len;
	if (i >= n || p[i] != 0x77 || (h = tl(p + i, n - i, &oplen)) == 0)
		return 0;
	i += h;
	/* The requestName lies within the operation and the message. */
	if (i > total)
		return 0;
	end = i + (oplen < total - i ? oplen : total - i);
	if (i >= n || (h = tl(p + i, n - i, &len)) == 0 ||
	    len != strlen(OID_STARTTLS) || i + h + len > n || i + h + len > end ||
	    memcmp(p + i + h, OID_STARTTLS, len) != 0)
		return 0;
	return total;
}

/* Frames the message at p[0..n) as slapd would, and as the guard must: a
 * SEQUENCE with a definite length of at most 4 octets, a messageID
 * INTEGER of 1 to 127 octets, then the protocolOp tag. Its total length,
 * or 0 when it cannot (not LDAP, where the guard turns off, or cut short
 * by the end of the input). */
static uint64_t frame(const uint8_t *p, size_t n)
{
	uint64_t total, len;
	size_t h, i;

	if (n < 1 || p[0] != 0x30 || (h = tl(p, n, &total)) == 0)
		return 0;
	total += h;
	i = h;
	if (i >= n || p[i] != 0x02 || (h = tl(p + i, n - i, &len)) == 0 ||
	    len < 1 || len > 0x7f || i + h + len >= n)
		return 0;
	return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The bytes waiting for the backend, data[head..fed), copied into a
 * window whose bytes before and after them are poisoned, so that ASan
 * stops a read outside what has arrived. Not a struct buf: that one gives
 * back its 64 KiB whenever it empties (side by side, 15 s each beside two
 * fuzz lanes: 2,216 and 2,304 executions a second, 4,287 and 6,031 with a
 * block of their size malloc'ed per call). Nor that block: with inputs of
 * 9000 bytes fed a few bytes at a time, its malloc and free (stack traces,
 * quarantine, libFuzzer's hooks) were 45 % of the run in perf; poisoning
 * writes shadow bytes alone. */
#define EDGE 64
static uint8_t window[EDGE + 9000 + EDGE];
static int window_ready;   /* the whole window poisoned, once */

static size_t scan(struct ldap_guard *g, const uint8_t *p, size_t n,
                   size_t *drop, struct buf *reply)
{
	size_t ok;

	if (n > sizeof(window) - 2 * EDGE)
		abort();
	ASAN_UNPOISON_MEMORY_REGION(window + EDGE, n);
	memcpy(window + EDGE, p, n);
	ok = ldap_guard_scan(g, window + EDGE, n, drop, reply);
	ASAN_POISON_MEMORY_REGION(window + EDGE, n);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ldap_guard g = {0};
	struct buf reply = {0};
	size_t fed = 0, head = 0, passed = 0, dropped = 0, step;
	uint64_t rest = 0;   /* of the StartTLS being dropped */
	static size_t starts[9000];   /* where each dropped StartTLS began */
	size_t nstarts = 0, pos, k;

	if (!window_ready) {
		ASAN_POISON_MEMORY_REGION(window, sizeof(window));
		window_ready = 1;
	}
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
				/* A StartTLS begins here (its requestName is
				 * in), or the one begun goes on. */
				if (rest == 0) {
					if ((rest = starttls_len(data + head, fed - head)) == 0 ||
					    nstarts == sizeof(starts) / sizeof(starts[0]))
						abort();
					starts[nstarts++] = head;
				}
				if (drop > fed - head || drop > rest)
					abort();
				rest -= drop;
				head += drop;
				dropped += drop;
				continue;
			}
			if (ok == 0)
				break;
			if (ok > fed - head || rest > 0)
				abort();
			head += ok;
			ldap_guard_sent(&g, ok);
			passed += ok;
		}
		/* Held bytes stay bounded: a header and a requestName. */
		if (fed - head > 256)
			abort();
		buf_reset(&reply);
	}
	if (passed + dropped + (fed - head) != size)
		abort();
	/* And no StartTLS passed: framed apart from the guard, every message
	 * whose requestName came in is one the guard took out, as far as the
	 * stream is LDAP (past that the guard is off and judges nothing). */
	for (pos = 0, k = 0; pos < size;) {
		uint64_t total = frame(data + pos, size - pos);
		int dropped_here = k < nstarts && starts[k] == pos;

		if (total == 0)
			break;
		if ((starttls_len(data + pos, size - pos) != 0) != dropped_here)
			abort();
		k += dropped_here;
		if (total > size - pos)
			break;
		pos += (size_t)total;
	}
	if (k != nstarts)
		abort();
	return 0;
}
