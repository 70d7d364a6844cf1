#include "buf.h"
#include "check.h"

#include <stdlib.h>

int main(void)
{
	struct buf b = {0};
	size_t room;
	uint8_t *p;
	static uint8_t big[BUF_CAP + 10];

	/* An empty buffer holds no memory, and reset of it is a no-op. */
	CHECK(b.data == NULL);
	buf_reset(&b);
	CHECK(b.data == NULL && b.len == 0);

	CHECK(buf_append(&b, "hello", 5) == 0);
	CHECK(b.data != NULL && b.len == 5);
	CHECK(memcmp(buf_peek(&b), "hello", 5) == 0);

	buf_consume(&b, 2);
	CHECK(b.len == 3 && memcmp(buf_peek(&b), "llo", 3) == 0);

	/* Emptying gives the memory back. */
	buf_consume(&b, 3);
	CHECK(b.data == NULL && b.len == 0 && buf_peek(&b) == NULL);

	/* Filling to capacity, then one byte more, is refused. */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	CHECK(buf_append(&b, big, BUF_CAP) == 0);
	CHECK(buf_full(&b));
	CHECK(buf_append(&b, "x", 1) == -1);
	p = buf_space(&b, &room);
	CHECK(p != NULL && room == 0);

	/* After consuming from the front, space comes back by compaction and
	 * the order of bytes is kept. */
	buf_consume(&b, BUF_CAP - 100);
	p = buf_space(&b, &room);
	CHECK(room == BUF_CAP - 100);
	memcpy(p, "tail", 4);
	buf_commit(&b, 4);
	CHECK(b.len == 104);
	CHECK(memcmp(buf_peek(&b), big + BUF_CAP - 100, 100) == 0);
	CHECK(memcmp(buf_peek(&b) + 100, "tail", 4) == 0);

	/* buf_append that needs compaction to fit. */
	CHECK(buf_append(&b, big, BUF_CAP - 104) == 0);
	CHECK(b.len == BUF_CAP);
	CHECK(memcmp(buf_peek(&b) + 104, big, BUF_CAP - 104) == 0);
	buf_reset(&b);

	/* buf_append's own move: the tail (24 KiB) is long enough that
	 * buf_space leaves the bytes where they are, but too short for the
	 * 30 KiB appended; the whole buffer (54 KiB free) is not. The bytes
	 * are not periodic, so a shift by any amount shows. */
	for (uint32_t i = 0, x = 1; i < sizeof(big); i++) {
		x = x * 1103515245u + 12345u;
		big[i] = (uint8_t)(x >> 16);
	}
	CHECK(buf_append(&b, big, 40 * 1024) == 0);
	buf_consume(&b, 30 * 1024);
	CHECK(b.off == 30 * 1024 && b.len == 10 * 1024);
	CHECK(BUF_CAP - (b.off + b.len) >= BUF_CAP / 4);
	CHECK(buf_append(&b, big + 1000, 30 * 1024) == 0);
	CHECK(b.off == 0 && b.len == 40 * 1024);
	CHECK(b.off + b.len <= BUF_CAP);
	CHECK(memcmp(buf_peek(&b), big + 30 * 1024, 10 * 1024) == 0);
	CHECK(memcmp(buf_peek(&b) + 10 * 1024, big + 1000, 30 * 1024) == 0);
	buf_reset(&b);

	/* The same front, and one byte more than the whole buffer takes:
	 * refused, and the buffer is as it was (nothing moved). */
	CHECK(buf_append(&b, big, 40 * 1024) == 0);
	buf_consume(&b, 30 * 1024);
	p = b.data;
	CHECK(buf_append(&b, big, BUF_CAP - 10 * 1024 + 1) == -1);
	CHECK(b.data == p && b.off == 30 * 1024 && b.len == 10 * 1024);
	CHECK(memcmp(buf_peek(&b), big + 30 * 1024, 10 * 1024) == 0);
	/* exactly what the whole buffer takes fits, by the same move */
	CHECK(buf_append(&b, big, BUF_CAP - 10 * 1024) == 0);
	CHECK(b.off == 0 && b.len == BUF_CAP);
	CHECK(memcmp(buf_peek(&b), big + 30 * 1024, 10 * 1024) == 0);
	CHECK(memcmp(buf_peek(&b) + 10 * 1024, big, BUF_CAP - 10 * 1024) == 0);
	buf_reset(&b);

	/* buf_space compacts only a tail shorter than a quarter: at exactly
	 * a quarter the bytes stay where they are (each move costs as much
	 * as the read it saves). */
	CHECK(buf_append(&b, big, BUF_CAP - BUF_CAP / 4) == 0);
	buf_consume(&b, 100);
	p = buf_space(&b, &room);
	CHECK(b.off == 100 && room == BUF_CAP / 4 && p == b.data + BUF_CAP - BUF_CAP / 4);
	buf_commit(&b, 1);
	p = buf_space(&b, &room);
	CHECK(b.off == 0 && room == BUF_CAP / 4 - 1 + 100 && p == b.data + b.len);
	CHECK(memcmp(buf_peek(&b), big + 100, BUF_CAP - BUF_CAP / 4 - 100) == 0);
	buf_reset(&b);

	CHECK(buf_appendf(&b, "%d %s", 421, "bye") == 0);
	CHECK(b.len == 7 && memcmp(buf_peek(&b), "421 bye", 7) == 0);
	buf_reset(&b);
	CHECK(b.data == NULL);
	/* Nothing formatted is nothing appended, not an error. */
	CHECK(buf_appendf(&b, "%s", "") == 0 && b.len == 0 && b.data == NULL);

	/* buf_truncate keeps the front (an ACME request head without what
	 * was pipelined after it); to nothing, it frees. */
	CHECK(buf_append(&b, "GET /a\r\n\r\nGET /b", 17) == 0);
	buf_consume(&b, 4);
	buf_truncate(&b, 6);
	CHECK(b.len == 6 && memcmp(buf_peek(&b), "/a\r\n\r\n", 6) == 0);
	buf_truncate(&b, 10);
	CHECK(b.len == 6);
	buf_truncate(&b, 0);
	CHECK(b.len == 0 && b.data == NULL);

	return CHECK_DONE();
}
