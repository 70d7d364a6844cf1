#ifndef PORTIER_SNI_H
#define PORTIER_SNI_H

#include <stddef.h>

/* Certificate choice by server name, apart from any TLS library so it can
 * be tested on its own. */

struct sni_entry {
	char **names;        /* DNS names from the certificate's SAN (or CN) */
	size_t nnames;
	int ecdsa;           /* 1: ECDSA key, 0: RSA */
};

/* sni_match(pattern, host): 2 if host equals pattern (case-insensitive),
 * 1 if pattern is "*.rest" and host is one label followed by ".rest",
 * else 0. A wildcard never matches more than one label, nor a bare "rest".
 * One trailing dot on host is ignored ("mail.example.org." is the same
 * host). */
int sni_match(const char *pattern, const char *host);

/* sni_select(e, n, host, client_ecdsa): index of the certificate to serve.
 * The best match wins (exact over wildcard); among equals, one whose key
 * type the client accepts (client_ecdsa: it offered ECDSA signatures);
 * without any match (or no host), the same rule over all certificates,
 * in config order. n must be at least 1. */
size_t sni_select(const struct sni_entry *e, size_t n, const char *host, int client_ecdsa);

#endif
