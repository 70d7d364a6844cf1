#ifndef PORTIER_DIAG_H
#define PORTIER_DIAG_H

#include <stddef.h>

/*
 * Problems found while loading a config or its certificates, collected so
 * that -t can print all of them and a reload can refuse with all of them.
 * Each is one line: "FILE:LINE: [section] key: what is wrong, what is expected".
 */
struct diag {
	char **lines;
	int *is_warning;
	size_t n;
	int errors;          /* counts the lost ones too: a lost error still fails */
	int warnings;
	size_t lost;         /* problems counted but not stored (out of memory) */
	/* Every allocation of the diag goes through this; NULL means
	 * realloc(3). What it returns must be free(3)-able. A seam for tests
	 * to make storing fail; diag_free keeps it. */
	void *(*realloc_fn)(void *ptr, size_t size);
};

/* diag_add(d, warning, file, line, section, key, fmt, ...): record one
 * problem; section and key may be NULL. Never fails: a problem that cannot
 * be stored (out of memory) is still counted in errors or warnings, and in
 * lost, which diag_print and diag_log report. */
void diag_add(struct diag *d, int warning, const char *file, int line,
              const char *section, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

/* diag_print(d, stream): print every line ("warning: " prefixed) to the
 * stdio stream, then "N further problems not recorded (out of memory)"
 * if d lost any. */
void diag_print(const struct diag *d, void *stream);

/* diag_log(d): send every line to the log, and the count of lost ones. */
void diag_log(const struct diag *d);

/* diag_free(d): release the lines and zero the counts, keeping realloc_fn;
 * d may be reused afterwards. */
void diag_free(struct diag *d);

#endif
