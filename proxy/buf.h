#ifndef PORTIER_BUF_H
#define PORTIER_BUF_H

#include <stddef.h>
#include <stdint.h>

/*
 * The one byte buffer of portier: a FIFO of at most BUF_CAP bytes.
 *
 * Invariants:
 *   - data == NULL  <=>  no memory is held; len == 0 and off == 0 then.
 *   - off + len <= BUF_CAP; the readable bytes are data[off .. off+len).
 *   - Memory is taken on the first buf_space() and given back by
 *     buf_consume() the moment the buffer empties, so an idle connection
 *     holds no buffer memory at all.
 * BUF_CAP is four full TLS records' plaintext (16 KiB each), so a full
 * buffer from the backend goes out as whole records, and a bulk transfer
 * costs a read(2) per 64 KiB, not per 16 KiB (measured: +20 % MiB per
 * proxy core-second). Idle connections hold none of it.
 */
#define BUF_CAP 65536

struct buf {
	uint8_t *data;
	uint32_t off;
	uint32_t len;
};

/* buf_space(b, room): writable tail of b, allocating on first use and moving
 * the readable bytes to the front when that makes room. Sets *room to the
 * number of writable bytes (0 when full). NULL only if allocation failed. */
uint8_t *buf_space(struct buf *b, size_t *room);

/* buf_commit(b, n): n bytes were written into the space from buf_space(). */
void buf_commit(struct buf *b, size_t n);

/* buf_append(b, p, n): copy n bytes in; -1 if they do not fit or on ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);

/* buf_appendf(b, fmt, ...): printf into b; -1 if it does not fit. */
int buf_appendf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* buf_peek(b): first readable byte (NULL when empty). */
static inline const uint8_t *buf_peek(const struct buf *b)
{
	return b->len ? b->data + b->off : NULL;
}

/* buf_consume(b, n): drop n readable bytes; frees memory when empty. */
void buf_consume(struct buf *b, size_t n);

/* buf_truncate(b, n): keep only the first n readable bytes (n <= len). */
void buf_truncate(struct buf *b, size_t n);

/* buf_full(b): no room left for another byte. */
static inline int buf_full(const struct buf *b)
{
	return b->len >= BUF_CAP;
}

/* buf_room(b): how many more bytes b takes (with enough memory). */
static inline size_t buf_room(const struct buf *b)
{
	return BUF_CAP - b->len;
}

/* buf_reset(b): drop everything and free memory. buf_reset on an empty
 * buffer is a no-op. */
void buf_reset(struct buf *b);

#endif
