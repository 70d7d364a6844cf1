#include "sni.h"

#include <strings.h>
#include <string.h>

/* pattern equals host[0..n), case-insensitive. */
static int same(const char *pattern, const char *host, size_t n)
{
	return strlen(pattern) == n && strncasecmp(pattern, host, n) == 0;
}

int sni_match(const char *pattern, const char *host)
{
	size_t n = strlen(host);
	const char *dot;

	/* "host." is the fully qualified "host": RFC 6066 asks clients to
	 * leave the dot out, and nginx forgives one that does not. */
	if (n > 1 && host[n - 1] == '.')
		n--;
	if (same(pattern, host, n))
		return 2;
	if (pattern[0] != '*' || pattern[1] != '.')
		return 0;
	dot = memchr(host, '.', n);
	/* The '*' stands for exactly one non-empty label. */
	if (dot == NULL || dot == host)
		return 0;
	return same(pattern + 1, dot, n - (size_t)(dot - host)) ? 1 : 0;
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

size_t sni_select(const struct sni_entry *e, size_t n, const char *host, unsigned takes)
{
	int top = 0;
	size_t first = n, rsa = n;

	for (size_t i = 0; i < n; i++) {
		int s = best_score(&e[i], host);
		if (s > top)
			top = s;
	}
	/* Among the best matches, the first the client takes (the faster
	 * ECDSA or Ed25519 handshake); failing that the first RSA one, which
	 * any client takes; failing that the first of any type (a client is
	 * only offered a key it cannot verify when no other carries the
	 * name, and its handshake fails either way). */
	for (size_t i = 0; i < n; i++) {
		if (best_score(&e[i], host) != top)
			continue;
		if (e[i].key != SNI_KEY_RSA && (takes & SNI_TAKES(e[i].key)))
			return i;
		if (first == n)
			first = i;
		if (rsa == n && e[i].key == SNI_KEY_RSA)
			rsa = i;
	}
	return rsa != n ? rsa : first;
}
