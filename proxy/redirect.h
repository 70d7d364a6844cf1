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
	REDIRECT_ACME       /* forward the bytes as they are to acme_backend */
};

/* redirect_handle(in, len, port, acme, out): look at the request bytes
 * received so far (in[0..len), from the first byte of the connection).
 * port is the https port for Location (443 is left out); acme says
 * whether an ACME backend is configured. */
enum redirect_verdict redirect_handle(const uint8_t *in, size_t len, int port,
                                      int acme, struct buf *out);

#endif
