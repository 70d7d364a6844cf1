#ifndef PORTIER_REDIRECT_H
#define PORTIER_REDIRECT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/*
 * The HTTP side of `mode = redirect`: read a request head, answer with a
 * redirect to https://, or hand ACME http-01 challenges to a backend.
 * Pure: bytes in, a response out; no sockets.
 */

/* Longest request head accepted; a longer one gets 431. */
#define REDIRECT_MAX_HEAD 8192

enum redirect_verdict {
	REDIRECT_AGAIN,     /* head incomplete: read more */
	REDIRECT_RESPOND,   /* a response is in out: send it, then close */
	REDIRECT_ACME       /* forward the head (struct redirect_req) to
	                       acme_backend, and nothing the client sends
	                       after it */
};

/* What redirect_handle() found besides its verdict. */
struct redirect_req {
	/* REDIRECT_ACME: the request head is in[head_off .. head_off +
	 * head_len), through its blank line; empty lines before the request
	 * line (RFC 9112 §2.2) are not part of it. 0 and 0 otherwise. */
	size_t head_off, head_len;
	/* The method is HEAD: the response is a head alone (RFC 9110
	 * §9.3.2). Known as soon as the request line starts, for a 431 too. */
	int head;
	/* NULL but for a 400 or 431, where it says why in a constant string,
	 * for the log (no byte of the client's in it). */
	const char *refusal;
};

/* redirect_handle(in, len, port, acme, out, req): look at the request
 * bytes received so far (in[0..len), from the first byte of the connection).
 * Empty lines (CRLF or LF) before the request line are skipped, as RFC 9112
 * §2.2 asks of a server (nginx and HAProxy skip them too); they count
 * towards REDIRECT_MAX_HEAD.
 * port is the https port for Location (443 is left out); acme says whether
 * an ACME backend is configured. With one, a target under
 * /.well-known/acme-challenge/ is either a strict http-01 challenge (GET or
 * HEAD of one base64url token of 1..255 characters: no query, slash, dot or
 * percent-encoding, no body, one Host), which gives REDIRECT_ACME, or a 400;
 * never a redirect. Without one it is redirected like any other path.
 * On REDIRECT_ACME the caller forwards the head req->head_off,
 * req->head_len names, and nothing else: bytes after it are a second
 * request.
 * Host follows RFC 9112 §3.2: a request with two Host headers or an
 * invalid one, or an HTTP/1.1 request without one, gets a 400 whatever the
 * form of its target. In the absolute form (http://host/path) the target's
 * host names the redirect and a Host header that disagrees is ignored
 * (§3.2.2); an HTTP/1.0 request in that form may leave Host out. */
enum redirect_verdict redirect_handle(const uint8_t *in, size_t len, int port,
                                      int acme, struct buf *out,
                                      struct redirect_req *req);

#endif
