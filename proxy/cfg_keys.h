#ifndef PORTIER_CFG_KEYS_H
#define PORTIER_CFG_KEYS_H

/* The key table: every config key, where it may appear, its parser, its
 * default and one line of help. cfg.c drives inih with it; `portier -K`
 * prints it as the reference in docs/configuration.md. */

#include <stddef.h>

#include "cfg.h"

#define CFG_SEC_GLOBAL   1u   /* [portier] */
#define CFG_SEC_TLS      2u   /* [tls], and listener sections as overrides */
#define CFG_SEC_LISTENER 4u   /* every other section */

/* What a setter writes into: the section being read. */
struct cfg_ctx {
	struct cfg *cfg;
	struct cfg_tls *tls;            /* [tls] or the listener's own */
	struct cfg_listener *listener;  /* NULL outside listener sections */
	int line;
};

struct cfg_key {
	const char *name;
	unsigned where;
	int repeatable;
	int (*set)(struct cfg_ctx *ctx, const char *value, char *err, size_t errlen);
	const char *type;
	const char *def;
	const char *help;
};

extern const struct cfg_key cfg_keys[];
extern const size_t cfg_nkeys;

/* cfg_key_find(name): the row for name, or NULL. */
const struct cfg_key *cfg_key_find(const char *name);

/* cfg_key_index(k): k's position, for the per-section `set` bitmasks. */
size_t cfg_key_index(const struct cfg_key *k);

/* cfg_key_nearest(name, where): the closest known key name allowed in
 * where, within edit distance 2, or NULL ("did you mean"). */
const char *cfg_key_nearest(const char *name, unsigned where);

/* cfg_edit_distance(a, b): Levenshtein distance, capped at 16. */
int cfg_edit_distance(const char *a, const char *b);

/* cfg_keys_print(stream): the table as Markdown. */
void cfg_keys_print(void *stream);

#endif
