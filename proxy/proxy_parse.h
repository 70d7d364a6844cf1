#ifndef PORTIER_PROXY_PARSE_H
#define PORTIER_PROXY_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"

/*
 * Reading the header of HAProxy's PROXY protocol (doc/proxy-protocol.txt)
 * that a load balancer puts before a client's first byte: version 1 (one
 * text line of at most 107 bytes) or version 2 (binary), told apart by
 * the first bytes. Pure: bytes in, a verdict out; no socket, no state
 * between calls (the caller offers the whole header so far each time).
 */

/* The longest v2 address block (addresses and TLVs) accepted. HAProxy's
 * own cap for what it receives is of this order; the whole header then
 * fits one small read. */
#define PROXY_PARSE_V2_CAP 1536
/* Room for the longest header either version may have. */
#define PROXY_PARSE_MAX (16 + PROXY_PARSE_V2_CAP)

struct proxy_parsed {
	int version;              /* 1 or 2 */
	/* 1: the header names no client (v2 LOCAL, a v2 UNSPEC or AF_UNIX
	 * family, v1 UNKNOWN): the connection's own addresses stand. */
	int local;
	struct conn_addr src;     /* the client, when !local */
	struct conn_addr dst;     /* the address the client reached */
	size_t len;               /* bytes of the header, TLVs included */
};

enum proxy_parse_result {
	PROXY_PARSE_ERROR = -1,   /* not a valid header: *why says why */
	PROXY_PARSE_AGAIN = 0,    /* a valid beginning: offer more bytes */
	PROXY_PARSE_OK = 1        /* *out is filled; out->len bytes are the header */
};

/* proxy_parse(p, n, out, why): read the header at the start of p[0..n).
 * Never reads past n; with AGAIN every one of the n bytes belongs to the
 * header, so a caller may consume them all. Bytes after out->len are not
 * the header's (TLS, a protocol's first line). On ERROR *why is a fixed
 * string for the log. TLVs are checked for framing and skipped. */
enum proxy_parse_result proxy_parse(const uint8_t *p, size_t n,
                                    struct proxy_parsed *out, const char **why);

#endif
