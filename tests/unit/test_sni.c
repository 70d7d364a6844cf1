#include "check.h"
#include "sni.h"

int main(void)
{
	char *mail[] = {"mail.example.org", "imap.example.org"};
	char *wild[] = {"*.example.org"};
	char *other[] = {"other.example.net"};
	struct sni_entry certs[] = {
		{mail, 2, 1},     /* 0: ECDSA mail */
		{wild, 1, 1},     /* 1: ECDSA wildcard */
		{other, 1, 0},    /* 2: RSA other */
		{mail, 2, 0},     /* 3: RSA mail */
	};

	CHECK(sni_match("mail.example.org", "MAIL.Example.org") == 2);
	CHECK(sni_match("*.example.org", "www.example.org") == 1);
	CHECK(sni_match("*.example.org", "a.b.example.org") == 0);
	CHECK(sni_match("*.example.org", "example.org") == 0);
	CHECK(sni_match("*.example.org", ".example.org") == 0);
	CHECK(sni_match("mail.example.org", "mail.example.org.evil") == 0);
	CHECK(sni_match("www.*.org", "www.example.org") == 0);
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
	CHECK(sni_select(certs, 4, "mail.example.org", 1) == 0);
	CHECK(sni_select(certs, 4, "mail.example.org", 0) == 3);
	CHECK(sni_select(certs, 4, "www.example.org", 1) == 1);
	/* Only an ECDSA wildcard matches, client cannot take ECDSA: still the
	 * best-matching name, since no RSA certificate carries it. */
	CHECK(sni_select(certs, 4, "www.example.org", 0) == 1);
	CHECK(sni_select(certs, 4, "other.example.net", 1) == 2);
	CHECK(sni_select(certs, 4, "other.example.net.", 1) == 2);
	/* No SNI or an unknown name: the first certificate of the client's
	 * kind, in config order. */
	CHECK(sni_select(certs, 4, NULL, 1) == 0);
	CHECK(sni_select(certs, 4, NULL, 0) == 2);
	CHECK(sni_select(certs, 4, "unknown.test", 1) == 0);
	CHECK(sni_select(certs, 1, "anything", 0) == 0);
	return CHECK_DONE();
}
