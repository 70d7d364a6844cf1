#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t *buf_space(struct buf *b, size_t *room)
{
	if (b->data == NULL) {
		if ((b->data = malloc(BUF_CAP)) == NULL) {
			*room = 0;
			return NULL;
		}
		b->off = b->len = 0;
	}
	/* Compact only when the tail is short: moving is cheaper than a
	 * second read syscall for a sliver. */
	if (b->off > 0 && BUF_CAP - (b->off + b->len) < BUF_CAP / 4) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	*room = BUF_CAP - (b->off + b->len);
	return b->data + b->off + b->len;
}

void buf_commit(struct buf *b, size_t n)
{
	b->len += (uint32_t)n;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	size_t room;
	uint8_t *dst;

	if (n == 0)
		return 0;
	if (n > BUF_CAP - b->len)
		return -1;
	if ((dst = buf_space(b, &room)) == NULL)
		return -1;
	if (room < n) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
		dst = b->data + b->len;
	}
	memcpy(dst, p, n);
	b->len += (uint32_t)n;
	return 0;
}

int buf_appendf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char *tmp;
	int n, rc;

	va_start(ap, fmt);
	n = vasprintf(&tmp, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	rc = buf_append(b, tmp, (size_t)n);
	free(tmp);
	return rc;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	b->off += (uint32_t)n;
	b->len -= (uint32_t)n;
}

void buf_reset(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->off = b->len = 0;
}

void buf_truncate(struct buf *b, size_t n)
{
	if (n >= b->len)
		return;
	if (n == 0) {
		buf_reset(b);
		return;
	}
	b->len = (uint32_t)n;
}
