#include "diag.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *diag_realloc(const struct diag *d, void *ptr, size_t size)
{
	return d->realloc_fn ? d->realloc_fn(ptr, size) : realloc(ptr, size);
}

/* Counts a problem as found, whether or not its line could be stored. */
static void count(struct diag *d, int warning)
{
	if (warning)
		d->warnings++;
	else
		d->errors++;
}

void diag_add(struct diag *d, int warning, const char *file, int line,
              const char *section, const char *key, const char *fmt, ...)
{
	char msg[1024], where[512];
	char **lines;
	int *warn;
	char *text;
	size_t len;
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
	/* Out of memory: the problem still counts, so that a config that
	 * had an error is refused even if nobody can read which one. */
	count(d, warning);
	if ((lines = diag_realloc(d, d->lines, (d->n + 1) * sizeof(*lines))) == NULL)
		goto lost;
	d->lines = lines;
	if ((warn = diag_realloc(d, d->is_warning, (d->n + 1) * sizeof(*warn))) == NULL)
		goto lost;
	d->is_warning = warn;
	len = strlen(where) + strlen(msg) + 1;
	if ((text = diag_realloc(d, NULL, len)) == NULL)
		goto lost;
	snprintf(text, len, "%s%s", where, msg);
	d->lines[d->n] = text;
	d->is_warning[d->n] = warning;
	d->n++;
	return;
lost:
	d->lost++;
}

void diag_print(const struct diag *d, void *stream)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(stream, "%s%s\n", d->is_warning[i] ? "warning: " : "",
		        d->lines[i]);
	if (d->lost)
		fprintf(stream, "%zu further problem%s not recorded (out of memory)\n",
		        d->lost, d->lost == 1 ? "" : "s");
}

void diag_log(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++) {
		if (d->is_warning[i])
			log_warnx("%s", d->lines[i]);
		else
			log_errx("%s", d->lines[i]);
	}
	if (d->lost)
		log_errx("%zu further problem%s not recorded (out of memory)",
		         d->lost, d->lost == 1 ? "" : "s");
}

void diag_free(struct diag *d)
{
	void *(*realloc_fn)(void *, size_t) = d->realloc_fn;

	for (size_t i = 0; i < d->n; i++)
		free(d->lines[i]);
	free(d->lines);
	free(d->is_warning);
	memset(d, 0, sizeof(*d));
	d->realloc_fn = realloc_fn;
}
