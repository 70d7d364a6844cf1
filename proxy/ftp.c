#include "ftp.h"

#include <string.h>

static int digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* The code of a line that starts "ddd", or -1. */
static int line_code(const uint8_t *p, size_t n)
{
	if (n < 3 || !digit(p[0]) || !digit(p[1]) || !digit(p[2]))
		return -1;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

int ftp_reply(const uint8_t *p, size_t n, size_t max, size_t *len, int *code)
{
	size_t lim = n < max ? n : max, pos = 0, ll;
	const uint8_t *lf;
	int c = -1, multi = 0;

	for (;;) {
		lf = memchr(p + pos, '\n', lim - pos);
		if (lf == NULL)
			return n >= max ? -1 : 0;
		ll = (size_t)(lf - (p + pos)) + 1;
		if (pos == 0) {
			/* "ddd" then ' ', '-', or the end of the line. */
			if ((c = line_code(p, ll)) < 0 || (ll > 3 &&
			    p[3] != ' ' && p[3] != '-' && p[3] != '\r' &&
			    p[3] != '\n'))
				return -2;
			multi = ll > 3 && p[3] == '-';
		} else if (line_code(p + pos, ll) == c && ll > 3 &&
		    p[pos + 3] != '-') {
			multi = 0;	/* "ddd " (or "ddd" alone) ends it */
		}
		pos += ll;
		if (!multi) {
			*len = pos;
			*code = c;
			return 1;
		}
		if (pos >= lim)
			return n >= max ? -1 : 0;
	}
}
