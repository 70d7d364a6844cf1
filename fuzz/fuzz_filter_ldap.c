/* libFuzzer target for filter_ldap, the LDAP stream filter after TLS: both
 * directions at once, as the relay runs them.
 *
 * The input is a client's stream and a backend's:
 *   byte 0       a seed for the schedule: which side's bytes come next,
 *                in chunks of what size, and how much of each filtered
 *                stream is read out between turns (so that answers meet
 *                a client-bound buffer that is or is not empty)
 *   bytes 1-2    how many of the following bytes the client sends
 *   then         the client's bytes, then the backend's
 *
 * The client's StartTLS requests are answered by portier (ldap_guard);
 * abort() marks a broken rule of what reaches the client:
 *   - it is the backend's stream, byte for byte and in order, with the
 *     answers put in, each whole, in the order of their requests;
 *   - an answer stands only where the backend's stream is between two
 *     LDAPMessages (framed here apart from the filter: a SEQUENCE with a
 *     definite length of at most four octets), or anywhere once that
 *     stream stops being LDAP, or after its end;
 *   - every answer comes, once both sides have ended.
 * The answers expected are what a second guard, fed the client's whole
 * stream at once, gives.
 */
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "fuzz_util.h"
#include "ldap_guard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t rng;

static uint32_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* The answers the guard gives for the client's whole stream. */
static void expected(const uint8_t *p, size_t n, struct buf *answers)
{
	struct ldap_guard g = {0};
	size_t head = 0, ok, drop;

	for (int turns = 0; turns < 4 * 9000; turns++) {
		ok = ldap_guard_scan(&g, p + head, n - head, &drop, answers);
		if (drop) {
			head += drop;
			continue;
		}
		if (ok == 0)
			return;
		head += ok;
		ldap_guard_sent(&g, ok);
	}
	abort();
}

/* Where an answer may stand in the backend's stream b[0..n): a byte per
 * position 0..n, 1 where allowed. */
static void boundaries(const uint8_t *b, size_t n, uint8_t *ok)
{
	size_t pos = 0;

	memset(ok, 0, n + 1);
	ok[n] = 1;                        /* after its end */
	while (pos < n) {
		uint64_t len = 0, total;
		size_t k;

		ok[pos] = 1;
		if (b[pos] != 0x30 || n - pos < 2)
			break;
		if (b[pos + 1] < 0x80) {
			total = 2 + (uint64_t)b[pos + 1];
		} else {
			k = b[pos + 1] & 0x7f;
			if (k == 0 || k > 4 || n - pos < 2 + k)
				break;
			for (size_t j = 0; j < k; j++)
				len = len << 8 | b[pos + 2 + j];
			total = 2 + k + len;
		}
		if (total > n - pos)
			return;                   /* cut by the end: only the end */
		pos += (size_t)total;
	}
	/* Not LDAP from pos on (or a header the end cut): anywhere after. */
	for (; pos <= n; pos++)
		ok[pos] = 1;
}

/* The answers' offsets in a: a SEQUENCE each; their count. */
static size_t split(const struct buf *a, size_t *at, size_t max)
{
	size_t pos = 0, k = 0;

	while (pos < a->len) {
		const uint8_t *p = buf_peek(a) + pos;
		size_t total;
		if (k == max || a->len - pos < 2 || p[0] != 0x30 || p[1] >= 0x80)
			abort();                  /* the guard's own are short */
		total = 2 + (size_t)p[1];
		at[k++] = pos;
		pos += total;
	}
	at[k] = pos;
	return k;
}

/* Is seen[0..ns) the backend's b[0..nb) with the k answers (a, split at
 * at[]) put in at allowed places, in order? Reachability over (position
 * in b, answers placed), one row per position: a row needs only the one
 * before it, so two static ones do, and nothing is allocated per input. */
static int interleaved(const uint8_t *seen, size_t ns, const uint8_t *b, size_t nb,
                       const uint8_t *okpos, const uint8_t *a, const size_t *at, size_t k)
{
	static uint8_t rows[2][9000];     /* k + 1: split() stops below 9000 */
	uint8_t *r = rows[0], *nr = rows[1], *t;

	if (ns != nb + at[k])
		return 0;
	if (k + 1 > sizeof(rows[0]))
		abort();
	memset(r, 0, k + 1);
	r[0] = 1;
	for (size_t bp = 0;; bp++) {
		memset(nr, 0, k + 1);
		for (size_t j = 0; j <= k; j++) {
			size_t i = bp + at[j];
			if (!r[j])
				continue;
			if (j < k && okpos[bp] &&
			    memcmp(seen + i, a + at[j], at[j + 1] - at[j]) == 0)
				r[j + 1] = 1;
			if (bp < nb && seen[i] == b[bp])
				nr[j] = 1;
		}
		if (bp == nb)
			return r[k];
		t = r, r = nr, nr = t;
	}
}

static size_t lens(const struct buf *a, const struct buf *b, const struct buf *c,
                   const struct buf *d)
{
	return (size_t)a->len * 7 + (size_t)b->len * 31 + (size_t)c->len * 127 +
	       (size_t)d->len * 1023;
}

/* Read out some (or all) of b into out (NULL: dropped). */
static void drain(struct buf *b, struct fz_bytes *out, int all)
{
	size_t n = b->len;

	if (!all && n > 0)
		n = next() % (n + 1);
	if (n == 0)
		return;
	if (out != NULL)
		fz_append(out, buf_peek(b), n);
	buf_consume(b, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf up_raw = {0}, up_out = {0}, down_raw = {0}, down = {0};
	struct buf answers = {0};	/* the guard's API: one per input */
	static struct fz_bytes seen;
	const uint8_t *cl, *be;
	size_t ncl, nbe, fc = 0, fb = 0, k;
	static size_t at[9000];
	static uint8_t okpos[9001];
	void *st;
	const char *why = NULL;
	int eof_c = 0, eof_b = 0;

	/* The oracle's rows are sized for inputs of up to 9,000 bytes (the
	 * campaign's -max_len is 4096): a longer one is not judged. */
	if (size < 3 || size > 9000)
		return 0;
	rng = 0x9e3779b9u ^ data[0] * 0x01000193u;
	ncl = (size_t)data[1] << 8 | data[2];
	data += 3, size -= 3;
	if (ncl > size)
		ncl = size;
	cl = data, be = data + ncl;
	nbe = size - ncl;
	if ((st = calloc(1, filter_ldap.state_size)) == NULL)
		abort();
	fz_reset(&seen);
	expected(cl, ncl, &answers);
	k = split(&answers, at, sizeof(at) / sizeof(at[0]) - 1);
	boundaries(be, nbe, okpos);

	for (int turn = 0; turn < 100000; turn++) {
		size_t before, step;

		/* Bytes from one side, or its end once all are in. */
		step = next() % 64 + 1;
		if (next() & 1) {
			if (fc < ncl) {
				step = step < ncl - fc ? step : ncl - fc;
				if (buf_append(&up_raw, cl + fc, step) < 0)
					abort();
				fc += step;
			} else {
				eof_c = 1;
			}
		} else if (fb < nbe) {
			step = step < nbe - fb ? step : nbe - fb;
			if (buf_append(&down_raw, be + fb, step) < 0)
				abort();
			fb += step;
		} else {
			eof_b = 1;
		}
		/* As the relay runs it: until nothing moves. */
		for (int i = 0;; i++) {
			if (i > 1000)
				abort();
			before = lens(&up_raw, &up_out, &down_raw, &down);
			if (filter_ldap.up(st, &up_raw, &up_out, &down, eof_c, &why) < 0 ||
			    filter_ldap.down(st, &down_raw, &down, &up_out, eof_b, &why) < 0)
				goto out;     /* out of memory only; not reached */
			if (lens(&up_raw, &up_out, &down_raw, &down) == before)
				break;
		}
		drain(&up_out, NULL, eof_c && eof_b);
		drain(&down, &seen, eof_c && eof_b);
		if (eof_c && eof_b && up_raw.len == 0 && down_raw.len == 0 &&
		    up_out.len == 0 && down.len == 0) {
			/* One more round with nothing new: all settled. */
			before = seen.len;
			if (filter_ldap.up(st, &up_raw, &up_out, &down, 1, &why) < 0 ||
			    filter_ldap.down(st, &down_raw, &down, &up_out, 1, &why) < 0)
				abort();
			if (down.len == 0 && up_out.len == 0 && seen.len == before)
				break;
		}
	}
	if (!(eof_c && eof_b && up_raw.len == 0 && down_raw.len == 0))
		abort();                  /* something stayed held at the end */
	if (!interleaved(fz_peek(&seen), seen.len,
	                 be, nbe, okpos, buf_peek(&answers), at, k))
		abort();
out:
	filter_ldap.cleanup(st);
	free(st);
	buf_reset(&up_raw);
	buf_reset(&up_out);
	buf_reset(&down_raw);
	buf_reset(&down);
	buf_reset(&answers);
	return 0;
}
