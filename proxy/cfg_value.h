#ifndef PORTIER_CFG_VALUE_H
#define PORTIER_CFG_VALUE_H

#include <stddef.h>

/*
 * Reading config values (cfg_value.c): each returns 0, or -1 with what
 * was expected in err (errlen bytes).
 */

#define MS_SEC  1000u
#define MS_MIN  (60 * MS_SEC)
#define MS_HOUR (60 * MS_MIN)
#define MS_DAY  (24 * MS_HOUR)

/* cfg_value_string(dst, v): *dst becomes a copy of v (the old one freed);
 * -1 on ENOMEM. */
int cfg_value_string(char **dst, const char *v);

/* cfg_value_format_ms(out, outlen, ms): ms in the plainest form that says
 * it exactly ("7 days", "10m", "100ms"), for range messages. */
void cfg_value_format_ms(char *out, size_t outlen, unsigned ms);

/* cfg_value_duration(v, lo, hi, ms, err, errlen): digits, an optional
 * fraction and a unit (ms, s, m or min, h; none means s), a whole number
 * of milliseconds from lo to hi. */
int cfg_value_duration(const char *v, unsigned lo, unsigned hi, unsigned *ms,
                       char *err, size_t errlen);

/* cfg_value_uint(v, lo, hi, out, err, errlen): a decimal number from lo
 * to hi. */
int cfg_value_uint(const char *v, unsigned lo, unsigned hi, unsigned *out,
                   char *err, size_t errlen);

/* cfg_value_choice(v, names, out, err, errlen): *out is v's index in the
 * NULL-terminated names; the error lists them all. */
int cfg_value_choice(const char *v, const char *const *names, int *out,
                     char *err, size_t errlen);

#endif
