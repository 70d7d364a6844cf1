#ifndef PORTIER_SNI_H
#define PORTIER_SNI_H

#include <stddef.h>

/* Certificate choice by server name, apart from any TLS library so it can
 * be tested on its own. */

/* A certificate's key, as far as a client's signature algorithms tell
 * them apart: TLS 1.3 names the curve of an ECDSA key. */
enum sni_key {
	SNI_KEY_RSA,
	SNI_KEY_P256,        /* ECDSA on secp256r1 */
	SNI_KEY_P384,        /* ECDSA on secp384r1 */
	SNI_KEY_P521,        /* ECDSA on secp521r1 */
	SNI_KEY_ED25519,
	SNI_KEY_OTHER        /* no TLS signature algorithm signs with it */
};

/* The bit of a key type in a client's set (sni_select's takes). */
#define SNI_TAKES(k) (1u << (k))

struct sni_entry {
	char **names;        /* DNS names from the certificate's SAN (or CN) */
	size_t nnames;
	enum sni_key key;
};

/* sni_match(pattern, host): 2 if host equals pattern (case-insensitive),
 * 1 if pattern is "*.rest" and host is one label followed by ".rest",
 * else 0. A wildcard never matches more than one label, nor a bare "rest".
 * One trailing dot on host is ignored ("mail.example.org." is the same
 * host). */
int sni_match(const char *pattern, const char *host);

/* sni_select(e, n, host, takes): index of the certificate to serve. The
 * best match wins (exact over wildcard); among equals, in config order, the
 * first whose key is in takes (SNI_TAKES bits of the ECDSA curves and
 * Ed25519 the client can verify), else the first RSA one (RSA is what a
 * client that takes none of those gets), else the first. Without any
 * match (or no host), the same rule over all certificates. n must be at
 * least 1. */
size_t sni_select(const struct sni_entry *e, size_t n, const char *host, unsigned takes);

#endif
