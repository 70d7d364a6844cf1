/* What the stream filters' fuzz targets share: the reader of their byte
 * choices, the case-blind word match of their model servers, and a byte
 * store for the harness's own bookkeeping. */
#ifndef PORTIER_FUZZ_UTIL_H
#define PORTIER_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The input's bytes that steer a model: one per decision, 0 once spent. */
struct choices {
	const uint8_t *p;
	size_t n;
};

static inline unsigned pick(struct choices *c)
{
	unsigned v;

	if (c->n == 0)
		return 0;
	v = c->p[0];
	c->p++;
	c->n--;
	return v;
}

/* A chunk's size from the next choice, 1 to 64 bytes; once the choices
 * are spent, all that is left. Spent choices used to mean 1 byte: a long
 * stream the input gave no splits for then took a round per byte, and
 * each round frees and takes again the filter's 64 KiB buffers (most of
 * the run under ASan), or ran out of rounds before the checks at the end.
 * Splits at every byte stay the fuzzer's to choose. */
static inline size_t pick_chunk(struct choices *c)
{
	return c->n == 0 ? SIZE_MAX : pick(c) % 64 + 1;
}

/* ASCII only: a server's verbs are, and the locale must not matter. */
static inline int upper(int c)
{
	return c >= 'a' && c <= 'z' ? c - 32 : c;
}

static inline int alnum(int c)
{
	return (c >= '0' && c <= '9') || (upper(c) >= 'A' && upper(c) <= 'Z');
}

/* p[0..n) is exactly kw (upper case), in any case. */
static inline int word(const uint8_t *p, size_t n, const char *kw)
{
	size_t k = strlen(kw);

	if (n != k)
		return 0;
	for (size_t i = 0; i < k; i++)
		if (upper(p[i]) != kw[i])
			return 0;
	return 1;
}

/*
 * A harness's own byte store: the model server's line and output, the
 * client's view, the streams recorded for the checks at the end.
 *
 * Not struct buf: that one mallocs 64 KiB on first use and frees it the
 * moment it empties, and a harness that empties its line per line did
 * hundreds of those per input. Under ASan each costs shadow poisoning, a
 * trip through the quarantine and libFuzzer's malloc hooks, ~65 % of the
 * run in perf. This one is static storage: emptying it is len = 0, and
 * nothing clears the array per input.
 *
 * FZ_CAP bounds what a harness keeps of one input. The client's share is
 * at most 255 * 16 bytes whatever the input's size (byte 1 counts it),
 * and no model says more than 43 bytes per byte it reads (IMAP's "* BAD"
 * to a line "\n" with no tag), so 256 KiB hold any input. The struct bufs
 * these replace held 64 KiB: 4080 such lines overflowed one, a false
 * finding. The LDAP target keeps its backend's stream and our answers,
 * each shorter than its request: under twice its input (-max_len 4096).
 * A store that would overflow is a broken harness: abort().
 */
#define FZ_CAP (256 * 1024)

struct fz_bytes {
	size_t off;		/* readable bytes are b[off .. off + len) */
	size_t len;
	uint8_t b[FZ_CAP];
};

static inline void fz_reset(struct fz_bytes *f)
{
	f->off = f->len = 0;
}

static inline const uint8_t *fz_peek(const struct fz_bytes *f)
{
	return f->b + f->off;
}

static inline void fz_append(struct fz_bytes *f, const void *p, size_t n)
{
	if (n > FZ_CAP - f->len)
		abort();	/* over FZ_CAP: see above */
	if (n > FZ_CAP - f->off - f->len) {
		memmove(f->b, f->b + f->off, f->len);
		f->off = 0;
	}
	if (n > 0)
		memcpy(f->b + f->off + f->len, p, n);
	f->len += n;
}

/* The next line of p[0..n) from *i on (*i < n), joined to what *line
 * kept of it from the calls before: 1 when it is whole in *line (the
 * caller empties *line once done with it), 0 when p ran out first. *i
 * moves past what was taken. */
static inline int fz_next_line(struct fz_bytes *line, const uint8_t *p,
    size_t n, size_t *i)
{
	const uint8_t *lf = memchr(p + *i, '\n', n - *i);
	size_t k = lf ? (size_t)(lf - (p + *i)) + 1 : n - *i;

	fz_append(line, p + *i, k);
	*i += k;
	return lf != NULL;
}

/* Drop n bytes from the front (n <= len). */
static inline void fz_consume(struct fz_bytes *f, size_t n)
{
	f->off += n;
	f->len -= n;
	if (f->len == 0)
		f->off = 0;
}

#endif
