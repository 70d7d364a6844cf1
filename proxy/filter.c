#include "filter.h"

#include <string.h>

/*
 * What the text filters (SMTP, FTP) share: appending an answer only when
 * it fits whole, and reading a command's verb.
 */

int filter_put(struct buf *b, const void *p, size_t n, const char **why)
{
	if (buf_room(b) < n)
		return 0;
	if (buf_append(b, p, n) < 0) {
		*why = "out of memory";
		return -1;
	}
	return 1;
}

int filter_word_is(const uint8_t *p, size_t n, const char *kw)
{
	if (n != strlen(kw))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (filter_upper(p[i]) != kw[i])
			return 0;
	return 1;
}

size_t filter_unterminated(const uint8_t *p, size_t n)
{
	if (n > 0 && p[n - 1] == '\n')
		n--;
	if (n > 0 && p[n - 1] == '\r')
		n--;
	return n;
}
