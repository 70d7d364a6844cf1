#include "cfg_keys.h"

#include <ctype.h>
#include <string.h>

/*
 * Finding a key in the table by name, and the nearest known name to an
 * unknown one (the "did you mean" of a config error).
 */

const struct cfg_key *cfg_key_find(const char *name)
{
	for (size_t i = 0; i < cfg_nkeys; i++)
		if (strcmp(cfg_keys[i].name, name) == 0)
			return &cfg_keys[i];
	return NULL;
}

size_t cfg_key_index(const struct cfg_key *k)
{
	return (size_t)(k - cfg_keys);
}

int cfg_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[17], prev, tmp;

	if (la > 16 || lb > 16)
		return 16;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int cost = tolower((unsigned char)a[i - 1]) !=
			           tolower((unsigned char)b[j - 1]);
			tmp = row[j];
			row[j] = row[j] + 1;
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			if (prev + cost < row[j])
				row[j] = prev + cost;
			prev = tmp;
		}
	}
	return row[lb];
}

const char *cfg_key_nearest(const char *name, unsigned where)
{
	const char *best = NULL;
	int bestd = 3;

	for (size_t i = 0; i < cfg_nkeys; i++) {
		int d;
		if (!(cfg_keys[i].where & where))
			continue;
		d = cfg_edit_distance(name, cfg_keys[i].name);
		if (d < bestd) {
			bestd = d;
			best = cfg_keys[i].name;
		}
	}
	return best;
}
