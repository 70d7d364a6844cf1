#include "check.h"
#include "sni.h"

int main(void)
{
	char *mail[] = {"mail.example.org", "imap.example.org"};
	char *wild[] = {"*.example.org"};
	char *other[] = {"other.example.net"};
	struct sni_entry certs[] = {
		{mail, 2, SNI_KEY_P256},     /* 0: ECDSA mail */
		{wild, 1, SNI_KEY_P256},     /* 1: ECDSA wildcard */
		{other, 1, SNI_KEY_RSA},     /* 2: RSA other */
		{mail, 2, SNI_KEY_RSA},      /* 3: RSA mail */
	};
	const unsigned p256 = SNI_TAKES(SNI_KEY_P256), p384 = SNI_TAKES(SNI_KEY_P384);
	const unsigned ed = SNI_TAKES(SNI_KEY_ED25519);

	CHECK(sni_match("mail.example.org", "MAIL.Example.org") == 2);
	CHECK(sni_match("*.example.org", "www.example.org") == 1);
	CHECK(sni_match("*.example.org", "a.b.example.org") == 0);
	CHECK(sni_match("*.example.org", "example.org") == 0);
	CHECK(sni_match("*.example.org", ".example.org") == 0);
	CHECK(sni_match("mail.example.org", "mail.example.org.evil") == 0);
	CHECK(sni_match("www.*.org", "www.example.org") == 0);
	/* Only a '*' label is a wildcard: a name of one letter is not. */
	CHECK(sni_match("a.example.org", "b.example.org") == 0);
	CHECK(sni_match("*x.example.org", "ax.example.org") == 0);
	/* A fully qualified name (RFC 6066 forbids the dot, some clients send
	 * it) is the same host, as nginx takes it; one dot only. */
	CHECK(sni_match("mail.example.org", "mail.example.org.") == 2);
	CHECK(sni_match("*.example.org", "WWW.example.org.") == 1);
	CHECK(sni_match("mail.example.org", "mail.example.org..") == 0);
	CHECK(sni_match("*.example.org", "example.org.") == 0);
	CHECK(sni_match("*.example.org", "a.b.example.org.") == 0);
	CHECK(sni_match("mail.example.org", ".") == 0);
	CHECK(sni_match("mail.example.org", "mail.example.or") == 0);

	/* Exact beats wildcard, and the client's key type wins among equals. */
	CHECK(sni_select(certs, 4, "mail.example.org", p256) == 0);
	CHECK(sni_select(certs, 4, "mail.example.org", 0) == 3);
	CHECK(sni_select(certs, 4, "www.example.org", p256) == 1);
	/* Only an ECDSA wildcard matches, client cannot take ECDSA: still the
	 * best-matching name, since no RSA certificate carries it. */
	CHECK(sni_select(certs, 4, "www.example.org", 0) == 1);
	CHECK(sni_select(certs, 4, "other.example.net", p256) == 2);
	CHECK(sni_select(certs, 4, "other.example.net.", p256) == 2);
	/* No SNI or an unknown name: the first certificate of the client's
	 * kind, in config order. */
	CHECK(sni_select(certs, 4, NULL, p256) == 0);
	CHECK(sni_select(certs, 4, NULL, 0) == 2);
	CHECK(sni_select(certs, 4, "unknown.test", p256) == 0);
	CHECK(sni_select(certs, 1, "anything", 0) == 0);

	/* ECDSA is taken by its curve: a client of P-384 only is served RSA
	 * for a name whose ECDSA certificate is P-256 ... */
	CHECK(sni_select(certs, 4, "mail.example.org", p384) == 3);
	CHECK(sni_select(certs, 4, NULL, p384) == 2);
	/* ... but still the wildcard no RSA certificate matches. */
	CHECK(sni_select(certs, 4, "www.example.org", p384) == 1);
	{
		struct sni_entry curves[] = {
			{mail, 2, SNI_KEY_P384},     /* 0 */
			{mail, 2, SNI_KEY_RSA},      /* 1 */
			{mail, 2, SNI_KEY_P256},     /* 2 */
			{mail, 2, SNI_KEY_P521},     /* 3 */
		};

		/* Among the keys the client takes, the first in config order;
		 * RSA only when it takes none. */
		CHECK(sni_select(curves, 4, "mail.example.org", p256 | p384) == 0);
		CHECK(sni_select(curves, 4, "mail.example.org", p256) == 2);
		CHECK(sni_select(curves, 4, "imap.example.org", SNI_TAKES(SNI_KEY_P521)) == 3);
		CHECK(sni_select(curves, 4, "mail.example.org", ed) == 1);
		CHECK(sni_select(curves, 4, "mail.example.org", 0) == 1);
		/* The RSA bit (no caller sets it) changes nothing. */
		CHECK(sni_select(curves, 4, "mail.example.org", SNI_TAKES(SNI_KEY_RSA)) == 1);
		/* No RSA among them and none the client takes: the first. */
		CHECK(sni_select(curves + 2, 2, "mail.example.org", p384) == 0);
	}
	{
		struct sni_entry eds[] = {
			{mail, 2, SNI_KEY_ED25519},  /* 0 */
			{mail, 2, SNI_KEY_RSA},      /* 1 */
			{mail, 2, SNI_KEY_OTHER},    /* 2: e.g. ECDSA on P-224 */
			{wild, 1, SNI_KEY_OTHER},    /* 3 */
		};

		/* Ed25519 is not RSA: only a client offering it gets it. */
		CHECK(sni_select(eds, 4, "mail.example.org", ed) == 0);
		CHECK(sni_select(eds, 4, "mail.example.org", ed | p256) == 0);
		CHECK(sni_select(eds, 4, "mail.example.org", 0) == 1);
		CHECK(sni_select(eds, 4, "mail.example.org", p256 | p384) == 1);
		/* A key no algorithm signs with is never taken; it is served
		 * only as the one certificate naming the host. */
		CHECK(sni_select(eds + 2, 2, "mail.example.org", ~0u) == 0);
		CHECK(sni_select(eds, 4, "www.example.org", ~0u) == 3);
	}
	return CHECK_DONE();
}
