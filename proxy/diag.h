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
	int errors;
	int warnings;
};

/* diag_add(d, warning, file, line, section, key, fmt, ...): record one
 * problem; section and key may be NULL. Never fails (drops on ENOMEM). */
void diag_add(struct diag *d, int warning, const char *file, int line,
              const char *section, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

/* diag_print(d, out_fd_stream): print every line ("warning: " prefixed). */
void diag_print(const struct diag *d, void *stream);

/* diag_log(d): send every line to the log. */
void diag_log(const struct diag *d);

/* diag_free(d): release the lines; d may be reused afterwards. */
void diag_free(struct diag *d);

#endif
