/* Unit tests for filter.c, what the text filters share: the end of a
 * dot-terminated body found whatever the split, the per-line stops, and
 * the verb and character helpers. */
#include "check.h"

#include "filter.h"

/* Scan body[0..n) given in two pieces split at `at`; the offset just past
 * the "." line, or n + 1 when none ended it. With per_line, every stop
 * must be at a line's end (or the input's) and is recorded in `stops`. */
static size_t scan_split(const char *body, size_t n, size_t at, int per_line,
    size_t *stops, size_t *nstops)
{
	const uint8_t *p = (const uint8_t *)body;
	uint8_t st = FB_BOL;
	size_t off = 0, lim = at, k;
	int end = 0, turns = 0;

	*nstops = 0;
	while (off < n && turns++ < 1000) {
		if (off >= lim)
			lim = n;
		k = filter_dot_scan(&st, p + off, lim - off, per_line, &end);
		if (k == 0 || k > lim - off)
			return (size_t)-1;	/* no progress or past the piece */
		off += k;
		if (end)
			return off;
		if (per_line && off < lim && *nstops < 64)
			stops[(*nstops)++] = off;
	}
	return off == n ? n + 1 : (size_t)-1;
}

static void check_end(const char *body, size_t want)
{
	size_t n = strlen(body), stops[64], nstops;

	for (size_t at = 0; at <= n; at++)
		CHECK(scan_split(body, n, at, 0, stops, &nstops) == want);
}

static void test_dot_end(void)
{
	check_end(".\r\n", 3);
	check_end(".\n", 2);
	check_end("a\r\n.\r\nafter", 6);
	check_end("\r\n\n.\r\n", 6);
	/* Dot-stuffed lines and a dot not alone on its line do not end it. */
	check_end("..\r\n.x\r\n. \r\n.\r\r\n", 17);
	check_end("..\r\n.x\r\n. \r\n.\r\r\n.\r\n", 19);
	/* A dot that is not at a line's start is content. */
	check_end("x.\r\n", 5);
	check_end("x\r\n", 4);
	check_end("", 1);
	/* A long line holds no end, whatever it contains. */
	check_end("abc.\r\n.\n.x", 8);
}

static void test_per_line(void)
{
	const char *body = "PLAIN\r\nSTLS\r\n\r\nTOP\n.\r\n";
	size_t n = strlen(body), stops[64], nstops, want;
	const size_t ends[] = { 7, 13, 15, 19 };

	for (size_t at = 0; at <= n; at++) {
		want = scan_split(body, n, at, 1, stops, &nstops);
		CHECK(want == n);
		/* Every stop inside a piece is a line's end, in order, and no
		 * line's end inside a piece is skipped. */
		size_t e = 0;
		for (size_t i = 0; i < nstops; i++) {
			while (e < 4 && ends[e] < stops[i])
				e++;
			CHECK(e < 4 && ends[e] == stops[i]);
		}
		for (e = 0; e < 4; e++)
			if (ends[e] != at) {
				int seen = 0;
				for (size_t i = 0; i < nstops; i++)
					seen |= stops[i] == ends[e];
				CHECK(seen);
			}
	}
}

/* filter_pass_line: the first line only, no more than out takes, and the
 * line's end told only when its LF went. */
static void test_pass_line(void)
{
	struct buf in = {0}, out = {0}, fill = {0};
	const char *why = NULL;
	static uint8_t big[BUF_CAP];
	int eol = -1;

	CHECK(filter_pass_line(&in, &out, &eol, &why) == 0);
	CHECK(buf_append(&in, "one\r\ntwo", 8) == 0);
	CHECK(filter_pass_line(&in, &out, &eol, &why) == 1 && eol == 1);
	CHECK(out.len == 5 && memcmp(buf_peek(&out), "one\r\n", 5) == 0);
	CHECK(in.len == 3);
	CHECK(filter_pass_line(&in, &out, &eol, &why) == 1 && eol == 0);
	CHECK(in.len == 0 && out.len == 8);
	/* out with room for 2 bytes: the line goes in pieces. */
	memset(big, 'x', sizeof(big));
	CHECK(buf_append(&fill, big, BUF_CAP - 2) == 0);
	CHECK(buf_append(&in, "ab\n", 3) == 0);
	CHECK(filter_pass_line(&in, &fill, &eol, &why) == 1 && eol == 0);
	CHECK(in.len == 1 && buf_full(&fill));
	CHECK(filter_pass_line(&in, &fill, &eol, &why) == 0 && in.len == 1);
	buf_consume(&fill, 1);
	CHECK(filter_pass_line(&in, &fill, &eol, &why) == 1 && eol == 1);
	CHECK(in.len == 0 && why == NULL);
	buf_reset(&in);
	buf_reset(&out);
	buf_reset(&fill);
}

/* filter_pass_all: as much as out takes; 1 when something moved. */
static void test_pass_all(void)
{
	struct buf in = {0}, out = {0}, fill = {0};
	const char *why = NULL;
	static uint8_t big[BUF_CAP];

	CHECK(filter_pass_all(&in, &out, &why) == 0 && out.len == 0);
	CHECK(buf_append(&in, "one\r\ntwo", 8) == 0);
	CHECK(filter_pass_all(&in, &out, &why) == 1 && in.len == 0 && out.len == 8);
	memset(big, 'x', sizeof(big));
	CHECK(buf_append(&fill, big, BUF_CAP - 3) == 0);
	CHECK(buf_append(&in, "abcde", 5) == 0);
	CHECK(filter_pass_all(&in, &fill, &why) == 1 && in.len == 2 && buf_full(&fill));
	CHECK(filter_pass_all(&in, &fill, &why) == 0 && in.len == 2);
	CHECK(memcmp(buf_peek(&fill) + BUF_CAP - 3, "abc", 3) == 0 && why == NULL);
	buf_reset(&in);
	buf_reset(&out);
	buf_reset(&fill);
}

/* filter_put: an answer goes whole or not at all. */
static void test_put(void)
{
	struct buf b = {0};
	const char *why = NULL;
	static uint8_t big[BUF_CAP];

	CHECK(buf_append(&b, big, BUF_CAP - 4) == 0);
	CHECK(filter_put(&b, "12345", 5, &why) == 0 && b.len == BUF_CAP - 4);
	CHECK(filter_put(&b, "1234", 4, &why) == 1 && buf_full(&b));
	CHECK(memcmp(buf_peek(&b) + BUF_CAP - 4, "1234", 4) == 0 && why == NULL);
	buf_reset(&b);
}

static void test_helpers(void)
{
	static const char nl[] = "\n\n", cr[] = "\r\r";

	CHECK(filter_word_is((const uint8_t *)"sTlS", 4, "STLS"));
	CHECK(!filter_word_is((const uint8_t *)"STL", 3, "STLS"));
	CHECK(!filter_word_is((const uint8_t *)"STLSX", 5, "STLS"));
	CHECK(!filter_word_is((const uint8_t *)"STLX", 4, "STLS"));
	/* Only the n bytes given count, not what follows them. */
	CHECK(filter_word_is((const uint8_t *)"STLS\r\n", 4, "STLS"));
	CHECK(filter_unterminated((const uint8_t *)"ab\r\n", 4) == 2);
	CHECK(filter_unterminated((const uint8_t *)"ab\n", 3) == 2);
	CHECK(filter_unterminated((const uint8_t *)"ab", 2) == 2);
	/* Nothing is nothing, whatever byte comes before it. */
	CHECK(filter_unterminated((const uint8_t *)nl + 1, 0) == 0);
	CHECK(filter_unterminated((const uint8_t *)cr + 1, 0) == 0);
	for (int c = 0; c < 256; c++) {
		int an = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z');
		int bl = c == ' ' || c == '\t' || c == '\r' || c == '\v' ||
		    c == '\f' || c == 0;

		CHECK(filter_alnum((uint8_t)c) == an);
		CHECK(filter_blank((uint8_t)c) == bl);
	}
}

int main(void)
{
	test_dot_end();
	test_per_line();
	test_pass_line();
	test_pass_all();
	test_put();
	test_helpers();
	return CHECK_DONE();
}
