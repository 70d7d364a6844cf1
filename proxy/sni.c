#include "sni.h"

#include <strings.h>
#include <string.h>

int sni_match(const char *pattern, const char *host)
{
	const char *dot;

	if (strcasecmp(pattern, host) == 0)
		return 2;
	if (pattern[0] != '*' || pattern[1] != '.')
		return 0;
	dot = strchr(host, '.');
	/* The '*' stands for exactly one non-empty label. */
	if (dot == NULL || dot == host)
		return 0;
	return strcasecmp(pattern + 1, dot) == 0 ? 1 : 0;
}

static int best_score(const struct sni_entry *e, const char *host)
{
	int best = 0;

	for (size_t i = 0; host && i < e->nnames; i++) {
		int s = sni_match(e->names[i], host);
		if (s > best)
			best = s;
	}
	return best;
}

size_t sni_select(const struct sni_entry *e, size_t n, const char *host, int client_ecdsa)
{
	int top = 0;
	size_t first = n;

	for (size_t i = 0; i < n; i++) {
		int s = best_score(&e[i], host);
		if (s > top)
			top = s;
	}
	/* Among the best matches, the first of the client's own key type;
	 * failing that the first of any type (an RSA-only client can only be
	 * offered ECDSA here when no RSA certificate carries the name). */
	for (size_t i = 0; i < n; i++) {
		if (best_score(&e[i], host) != top)
			continue;
		if (first == n)
			first = i;
		if (e[i].ecdsa == client_ecdsa)
			return i;
	}
	return first;
}
