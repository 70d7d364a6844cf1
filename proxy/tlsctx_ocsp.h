#ifndef PORTIER_TLSCTX_OCSP_H
#define PORTIER_TLSCTX_OCSP_H

/*
 * OCSP responses for stapling (RFC 6960), part of the TLS module: a DER
 * OCSPResponse as `openssl ocsp -respout` writes it is parsed strictly
 * with CBS (tlsocsp_parse, pure: the fuzz target's entry) and then checked
 * against the certificate it is to be stapled to (tlsocsp_check). BoringSSL
 * has no OCSP code of its own. Only tlsctx*.c, its tests and its fuzz
 * target include this.
 */

#include <stddef.h>
#include <stdint.h>

#include <openssl/bytestring.h>
#include <openssl/x509.h>

/* Bounds: a staple is a few KiB; the responses and certificates in it are
 * one or two each when a CA answers for one certificate. */
#define TLSOCSP_MAX_BYTES 65536
#define TLSOCSP_MAX_SINGLES 16
#define TLSOCSP_MAX_CERTS 4
/* How far thisUpdate may lie ahead of our clock (responders and servers
 * disagree by seconds; a day ahead is a wrong clock or a wrong file). */
#define TLSOCSP_SKEW_S 300

enum tlsocsp_status { TLSOCSP_GOOD, TLSOCSP_REVOKED, TLSOCSP_UNKNOWN };

/* One SingleResponse; the CBS fields point into the parsed bytes. */
struct tlsocsp_single {
	CBS hash_oid;           /* CertID hashAlgorithm, OID contents */
	CBS name_hash, key_hash;
	CBS serial;             /* the INTEGER, tag and length included */
	enum tlsocsp_status status;
	int64_t revoked_at;     /* TLSOCSP_REVOKED: seconds since the epoch */
	int64_t this_update;
	int64_t next_update;    /* when has_next */
	int has_next;
};

/* A successful BasicOCSPResponse, as parsed. */
struct tlsocsp {
	CBS tbs;                /* tbsResponseData, tag and length included: the
	                           signed bytes */
	CBS sig_oid;            /* signatureAlgorithm OID contents */
	CBS sig_params;         /* its parameters element; empty when absent */
	CBS sig;                /* the signature (the BIT STRING's bytes) */
	int responder_by_key;   /* ResponderID: 1 byKey (SHA-1 of the key), 0 byName */
	CBS responder;          /* the key hash, or the Name (tag included) */
	int64_t produced_at;
	struct tlsocsp_single singles[TLSOCSP_MAX_SINGLES];
	size_t nsingles;
	CBS certs[TLSOCSP_MAX_CERTS];   /* DER certificates the response carries */
	size_t ncerts;
};

/* tlsocsp_parse(der, len, out, why): parse the DER OCSPResponse der (all
 * len bytes of it, nothing after) into out, which points into der. 0, or
 * -1 with *why a static sentence: not DER, not a successful response (the
 * responder's status named), not a BasicOCSPResponse, over a bound, or an
 * extension marked critical. */
int tlsocsp_parse(const uint8_t *der, size_t len, struct tlsocsp *out, const char **why);

/* What tlsocsp_check learnt of an acceptable response. */
struct tlsocsp_result {
	int64_t this_update;
	int64_t next_update;    /* when has_next */
	int has_next;
	int delegated;          /* signed by a responder certificate, not the issuer */
	/* On a refusal: for the time alone (thisUpdate ahead of now, or
	 * nextUpdate passed), the response otherwise fit. */
	int stale;
};

/* tlsocsp_check(der, len, leaf, issuer, now, res, why, whylen): whether der
 * may be stapled to certificate leaf issued by issuer, at now (seconds
 * since the epoch): a successful BasicOCSPResponse with a SingleResponse
 * for leaf (CertID by SHA-1 or SHA-256), signed by issuer or by a
 * certificate in the response that issuer signed for OCSPSigning, status
 * good, thisUpdate not ahead of now (TLSOCSP_SKEW_S aside), nextUpdate,
 * when given, still ahead. 0 with res filled, or -1 with the reason in why
 * (a sentence for a person) and res->stale set when only the time failed. */
int tlsocsp_check(const uint8_t *der, size_t len, X509 *leaf, X509 *issuer, int64_t now,
                  struct tlsocsp_result *res, char *why, size_t whylen);

/* tlsocsp_utc(t, out, len): "2026-12-05 03:00 UTC"; returns out. */
const char *tlsocsp_utc(int64_t t, char *out, size_t len);

#endif
