#include "log.h"

#include <stdio.h>
#include <string.h>

/*
 * Bytes a peer chose, made one printable line for the log (log.h).
 */

static const char hexdigits[] = "0123456789abcdef";

/* The escaped form of byte b into u (at most 4 bytes); returns its length.
 * With space set a space is escaped too. */
static size_t log_escape_byte(unsigned char b, int space, char *u)
{
	if (b == '\\' || b == '"') {
		u[0] = '\\';
		u[1] = (char)b;
		return 2;
	}
	if (b >= 0x20 && b <= 0x7e && !(space && b == ' ')) {
		u[0] = (char)b;
		return 1;
	}
	u[0] = '\\';
	u[1] = 'x';
	u[2] = hexdigits[b >> 4];
	u[3] = hexdigits[b & 0xf];
	return 4;
}

static const char *escape(const void *p, size_t n, int space, char *out, size_t outlen)
{
	const unsigned char *s = p;
	size_t room, o = 0, keep = 0, u, e;
	char unit[4];

	if (outlen == 0)
		return out;
	room = outlen - 1;
	for (size_t i = 0; i < n; i++) {
		u = log_escape_byte(s[i], space, unit);
		if (o + u > room) {
			/* Back to the last whole character after which "..."
			 * fits (a buffer under 4 bytes gets what it can of it). */
			e = room - keep < 3 ? room - keep : 3;
			memcpy(out + keep, "...", e);
			out[keep + e] = '\0';
			return out;
		}
		memcpy(out + o, unit, u);
		o += u;
		if (o + 3 <= room)
			keep = o;
	}
	out[o] = '\0';
	return out;
}

const char *log_escape(const void *p, size_t n, char *out, size_t outlen)
{
	return escape(p, n, 0, out, outlen);
}

const char *log_escape_str(const char *s, char *out, size_t outlen)
{
	if (s == NULL)
		return log_escape("-", 1, out, outlen);
	return log_escape(s, strlen(s), out, outlen);
}

const char *log_escape_field(const char *s, char *out, size_t outlen)
{
	if (s == NULL)
		return log_escape("-", 1, out, outlen);
	if (strcmp(s, "-") == 0) {
		/* "-" is the field's "none": a peer's own "-" reads otherwise. */
		snprintf(out, outlen, "\\x2d");
		return out;
	}
	return escape(s, strlen(s), 1, out, outlen);
}
