#include "diag.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void diag_add(struct diag *d, int warning, const char *file, int line,
              const char *section, const char *key, const char *fmt, ...)
{
	char msg[1024], where[512];
	char **lines;
	int *warn;
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	n = line > 0 ? snprintf(where, sizeof(where), "%s:%d: ", file, line)
	             : snprintf(where, sizeof(where), "%s: ", file);
	if (section && n >= 0 && (size_t)n < sizeof(where))
		n += snprintf(where + n, sizeof(where) - (size_t)n, "[%s] ", section);
	if (key && n >= 0 && (size_t)n < sizeof(where))
		snprintf(where + n, sizeof(where) - (size_t)n, "%s: ", key);

	/* A [tls] certificate shared by several listeners is checked for
	 * each of them; say each problem once. */
	for (size_t i = 0; i < d->n; i++) {
		size_t wl = strlen(where);
		if (strncmp(d->lines[i], where, wl) == 0 && strcmp(d->lines[i] + wl, msg) == 0)
			return;
	}
	if ((lines = realloc(d->lines, (d->n + 1) * sizeof(*lines))) == NULL)
		return;
	d->lines = lines;
	if ((warn = realloc(d->is_warning, (d->n + 1) * sizeof(*warn))) == NULL)
		return;
	d->is_warning = warn;
	if (asprintf(&d->lines[d->n], "%s%s", where, msg) < 0)
		return;
	d->is_warning[d->n] = warning;
	d->n++;
	if (warning)
		d->warnings++;
	else
		d->errors++;
}

void diag_print(const struct diag *d, void *stream)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(stream, "%s%s\n", d->is_warning[i] ? "warning: " : "",
		        d->lines[i]);
}

void diag_log(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++) {
		if (d->is_warning[i])
			log_warnx("%s", d->lines[i]);
		else
			log_errx("%s", d->lines[i]);
	}
}

void diag_free(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->lines[i]);
	free(d->lines);
	free(d->is_warning);
	memset(d, 0, sizeof(*d));
}
