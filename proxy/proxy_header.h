#ifndef PORTIER_PROXY_HEADER_H
#define PORTIER_PROXY_HEADER_H

#include "buf.h"
#include "conn.h"

/*
 * The header of HAProxy's PROXY protocol (doc/proxy-protocol.txt), which
 * tells a backend who the client is before any byte of the client's own:
 * version 1 is one text line, version 2 a binary block that also carries
 * TLVs about the client's TLS session. Pure: addresses and TLS facts in,
 * bytes out; no socket, no TLS library state.
 */

enum proxy_version { PROXY_OFF = 0, PROXY_V1 = 1, PROXY_V2 = 2 };

/* The spec's bound on a v1 line, CRLF included. */
#define PROXY_V1_MAX 107

/* Longest value copied into each v2 TLV; a longer one is left out rather
 * than cut (a cut name is a wrong name). SNI and ALPN ids are bounded at
 * 255 by TLS itself. */
#define PROXY_SNI_MAX     255
#define PROXY_ALPN_MAX    255
#define PROXY_VERSION_MAX 32
#define PROXY_CIPHER_MAX  64

/* The client's TLS session as the v2 TLVs tell it. NULL or "" leaves a
 * field's TLV out. */
struct proxy_tls {
	const char *version;   /* "TLSv1.3": PP2_SUBTYPE_SSL_VERSION */
	const char *cipher;    /* IETF name: PP2_SUBTYPE_SSL_CIPHER */
	const char *sni;       /* PP2_TYPE_AUTHORITY */
	const char *alpn;      /* the agreed id: PP2_TYPE_ALPN */
};

/* proxy_header(out, v, src, dst, tls): append the header of version v for
 * a connection from src (the client) to dst (the address it reached) to
 * out. An IPv4-mapped IPv6 address counts as IPv4; when the two families
 * still differ, the IPv4 one is written mapped into IPv6. An address of
 * another family (AF_UNIX) gives v1 "PROXY UNKNOWN" and a v2 PROXY
 * command with family UNSPEC and no addresses. tls == NULL: a plaintext
 * client, no TLVs; else v2 carries ALPN, AUTHORITY and SSL (client flag
 * PP2_CLIENT_SSL, verify 0 and no certificate flags, as HAProxy sends for
 * a client without a certificate; version and cipher as sub-TLVs); v1 has
 * no room for them. Returns 0, or -1 (out unchanged) when it does not fit
 * in out or v is not a version. */
int proxy_header(struct buf *out, enum proxy_version v, const struct conn_addr *src,
                 const struct conn_addr *dst, const struct proxy_tls *tls);

#endif
