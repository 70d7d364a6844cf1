#include "filter.h"

#include <string.h>

/*
 * What the text filters share: appending an answer only when it fits
 * whole, reading a command's verb, finding the end of a dot-terminated
 * body.
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

/* Up to n bytes of in to out, as many as out takes: how many moved, or -1
 * out of memory (*why set). */
static long move(struct buf *in, struct buf *out, size_t n, const char **why)
{
	if (n > buf_room(out))
		n = buf_room(out);
	if (n == 0)
		return 0;
	if (filter_put(out, buf_peek(in), n, why) < 0)
		return -1;
	buf_consume(in, n);
	return (long)n;
}

int filter_pass_line(struct buf *in, struct buf *out, int *eol,
    const char **why)
{
	const uint8_t *lf;
	size_t n;
	long m;

	*eol = 0;
	if (in->len == 0)
		return 0;
	lf = memchr(buf_peek(in), '\n', in->len);
	n = lf ? (size_t)(lf - buf_peek(in)) + 1 : in->len;
	if ((m = move(in, out, n, why)) < 0)
		return -1;
	*eol = lf != NULL && (size_t)m == n;
	return m > 0;
}

size_t filter_dot_scan(uint8_t *body, const uint8_t *p, size_t n,
    int per_line, int *end)
{
	const uint8_t *lf;
	size_t i = 0;
	uint8_t c;

	*end = 0;
	while (i < n) {
		if (*body == FB_MID) {
			/* Inside a line nothing counts but its end. */
			if ((lf = memchr(p + i, '\n', n - i)) == NULL)
				return n;
			i = (size_t)(lf - p) + 1;
			*body = FB_BOL;
			if (per_line)
				return i;
			continue;
		}
		c = p[i++];
		if (*body != FB_BOL && c == '\n') {
			*end = 1;	/* "." LF or "." CR LF */
			return i;
		}
		if (*body == FB_BOL)
			*body = c == '.' ? FB_DOT : c == '\n' ? FB_BOL : FB_MID;
		else if (*body == FB_DOT && c == '\r')
			*body = FB_DOTCR;
		else
			*body = FB_MID;
		if (*body == FB_BOL && per_line)
			return i;
	}
	return n;
}

int filter_pass_all(struct buf *in, struct buf *out, const char **why)
{
	long m = move(in, out, in->len, why);

	return m < 0 ? -1 : m > 0;
}
