#include "cfg_value.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The values config keys take, read strictly as portier.ini(5) gives them:
 * strings, durations, numbers in a range, one of a list. The key table's
 * setters (cfg_keys.c) are built on these; each error says what was
 * expected, for the file:line: key: message the admin sees.
 */

int cfg_value_string(char **dst, const char *v)
{
	char *s = strdup(v);
	if (s == NULL)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

void cfg_value_format_ms(char *out, size_t outlen, unsigned ms)
{
	if (ms % MS_DAY == 0)
		snprintf(out, outlen, "%u day%s", ms / MS_DAY, ms == MS_DAY ? "" : "s");
	else if (ms % MS_HOUR == 0)
		snprintf(out, outlen, "%uh", ms / MS_HOUR);
	else if (ms % MS_MIN == 0)
		snprintf(out, outlen, "%um", ms / MS_MIN);
	else if (ms % MS_SEC == 0)
		snprintf(out, outlen, "%us", ms / MS_SEC);
	else
		snprintf(out, outlen, "%ums", ms);
}

/*
 * The syntax portier.ini(5) gives: digits, optionally '.' and more digits,
 * then ms, s, m, min or h, or nothing for seconds; the result a whole
 * number of milliseconds from lo to hi. Written out rather than strtod(),
 * which also takes nan, inf, hex, exponents, signs, leading spaces and the
 * locale's decimal comma, none of which the documentation promises.
 */
int cfg_value_duration(const char *v, unsigned lo, unsigned hi, unsigned *ms,
                       char *err, size_t errlen)
{
	/* Any whole part above this is out of range whatever the unit, and
	 * whole * MS_HOUR still fits in 64 bits. */
	const uint64_t cap = 1000000000000ull;
	uint64_t whole = 0, frac = 0, scale = 1, mul, total;
	const char *p = v;
	char los[32], his[32];
	int subms = 0;

	if (*p < '0' || *p > '9')
		goto syntax;
	for (; *p >= '0' && *p <= '9'; p++)
		if (whole <= cap)
			whole = whole * 10 + (uint64_t)(*p - '0');
	if (*p == '.') {
		if (*++p < '0' || *p > '9')
			goto syntax;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (scale < 1000000000u) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				scale *= 10;
			} else if (*p != '0') {
				subms = 1;   /* 1e-9 of an hour is still under 1 ms */
			}
		}
	}
	if (*p == '\0' || strcmp(p, "s") == 0)
		mul = MS_SEC;
	else if (strcmp(p, "ms") == 0)
		mul = 1;
	else if (strcmp(p, "m") == 0 || strcmp(p, "min") == 0)
		mul = MS_MIN;
	else if (strcmp(p, "h") == 0)
		mul = MS_HOUR;
	else
		goto syntax;
	if (subms || (frac * mul) % scale != 0) {
		snprintf(err, errlen, "'%s' is finer than a millisecond", v);
		return -1;
	}
	total = whole > cap ? UINT64_MAX : whole * mul + frac * mul / scale;
	if (total < lo || total > hi) {
		cfg_value_format_ms(los, sizeof(los), lo);
		cfg_value_format_ms(his, sizeof(his), hi);
		snprintf(err, errlen, "'%s' is out of range; expected from %s to %s",
		         v, los, his);
		return -1;
	}
	*ms = (unsigned)total;
	return 0;
syntax:
	snprintf(err, errlen, "'%s' is not a duration; expected digits, an "
	         "optional fraction and a unit (ms, s, m or min, h; none means "
	         "s), e.g. 500ms, 1.5s, 5m or 1h", v);
	return -1;
}

int cfg_value_uint(const char *v, unsigned lo, unsigned hi, unsigned *out,
                   char *err, size_t errlen)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (!isdigit((unsigned char)v[0]) || *end || errno || n < lo || n > hi) {
		snprintf(err, errlen, "'%s' is not a number from %u to %u", v, lo, hi);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

/* Picks v from names[]; the error lists them all. */
int cfg_value_choice(const char *v, const char *const *names, int *out,
                     char *err, size_t errlen)
{
	size_t n = 0;
	int i;

	for (i = 0; names[i]; i++) {
		if (strcmp(v, names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	n += (size_t)snprintf(err, errlen, "'%s' is not one of ", v);
	for (i = 0; names[i] && n < errlen; i++)
		n += (size_t)snprintf(err + n, errlen - n, "%s%s", i ? ", " : "", names[i]);
	return -1;
}
