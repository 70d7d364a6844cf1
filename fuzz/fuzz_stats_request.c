/* libFuzzer target for the metrics endpoint's reading of a request
 * (proxy/stats_request.c), on raw bytes as a scraper, or anyone who can
 * reach the stats port, sends them. Oracles, each from the input alone:
 *   - the verdict is 200, 400, 404 or 405, and HEAD-only goes with 200;
 *   - only the first line counts: the input cut after its first LF gets
 *     the same verdict, and an input without LF is 400;
 *   - 200 means the line is "GET " or "HEAD " (HEAD-only exactly then),
 *     the path up to a space or '?' is "/metrics", and "HTTP/1." follows
 *     the space after the path (with or without a query between).
 * libFuzzer's input is a block of exactly its size: ASan stops a read past
 * it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int starts(const uint8_t *p, size_t n, const char *s)
{
	size_t k = strlen(s);

	return n >= k && memcmp(p, s, k) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *lf = memchr(data, '\n', size);
	int head = -1, head2 = -1, r, r2;
	size_t m, i, line;

	r = stats_reply((const char *)data, size, &head);
	if ((r != 200 && r != 400 && r != 404 && r != 405) ||
	    (head != 0 && head != 1) || (head && r != 200))
		abort();
	if (lf == NULL) {
		if (r != 400)
			abort();
		return 0;
	}
	line = (size_t)(lf - data) + 1;
	r2 = stats_reply((const char *)data, line, &head2);
	if (r2 != r || head2 != head)
		abort();
	if (r != 200)
		return 0;
	if (starts(data, line, "GET "))
		m = 4;
	else if (starts(data, line, "HEAD "))
		m = 5;
	else
		abort();
	if (head != (m == 5))
		abort();
	if (!starts(data + m, line - m, "/metrics"))
		abort();
	i = m + 8;
	if (i < line && data[i] == '?')
		while (i < line && data[i] != ' ')
			i++;
	if (i >= line || data[i] != ' ' || !starts(data + i + 1, line - i - 1, "HTTP/1."))
		abort();
	return 0;
}
