#ifndef PORTIER_CONN_H
#define PORTIER_CONN_H

#include <ev.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"
#include "ldap_guard.h"

struct svc;
struct tlsconn;

/*
 * One proxied connection: a client half and a backend half, and the state
 * machine that carries bytes between them.
 *
 *   implicit TLS:  HANDSHAKE --> CONNECTING --> RELAY --> (closed)
 *   plain:         CONNECTING --> RELAY
 *   STARTTLS:      PRELUDE --> UPGRADING --> HANDSHAKE --> CONNECTING
 *                  --> HANDOVER --> RELAY   (SMTP optional: PRELUDE -->
 *                  CONNECTING --> HANDOVER, in plaintext)
 *   redirect:      HTTPHEAD --> RESPOND | CONNECTING (ACME challenge)
 *   and from any state with a backend: RESPOND with the protocol's refusal
 *   (HTTP 502, SMTP 421, ...) when the backend is down
 *
 * conn_state() is the only place the state changes, conn_watch() the only
 * place watchers start and stop, and conn_close() the only way out.
 */
enum conn_state {
	CONN_HANDSHAKE,   /* TLS handshake with the client */
	CONN_HTTPHEAD,    /* redirect listener reading a request head */
	CONN_CONNECTING,  /* backend connect in progress; client bytes buffered */
	CONN_RELAY,       /* both ways, with backpressure and half-close */
	CONN_RESPOND,     /* sending a canned reply, then closing */
	CONN_PRELUDE,     /* STARTTLS: portier's own pre-TLS dialogue */
	CONN_UPGRADING,   /* STARTTLS answered: waiting for a ClientHello */
	CONN_HANDOVER     /* STARTTLS: consuming the backend's greeting */
};

struct conn_starttls;

struct conn {
	uint32_t magic;
	enum conn_state state;
	struct svc *svc;
	struct tlsconn *tls;         /* client side TLS; NULL when plaintext */
	int cfd, bfd;
	ev_io cio, bio;
	ev_timer timer;
	ev_tstamp start, last;       /* accept time, last activity */
	struct buf up;               /* client -> backend */
	struct buf down;             /* backend -> client */
	uint64_t nup, ndown;         /* bytes delivered each way */
	unsigned c_eof : 1, b_eof : 1;     /* got EOF from that side */
	unsigned c_shut : 1, b_shut : 1;   /* sent EOF to that side */
	unsigned read_wants_write : 1, write_wants_read : 1;
	/* The socket may have bytes: set by a readable event, cleared when a
	 * read finds none. Saves a failing read(2) per direction per wakeup. */
	unsigned c_rd : 1, b_rd : 1;
	unsigned acme : 1;                 /* relaying an ACME challenge */
	unsigned guard_on : 1;             /* LDAP over TLS: take out StartTLS */
	struct ldap_guard guard;
	const char *first_eof;       /* "client" or "backend" */
	const char *close_reason;    /* for RESPOND: why we are closing */
	struct conn_starttls *st;    /* pre-TLS state; NULL once relaying */
	struct conn *next, *prev;    /* the server's list */
	char peer[64];
};

/* conn_new(svc, fd, peer, len): take over an accepted socket and start
 * serving it. The connection may be over before this returns (a backend
 * refusing at once): it lives in svc's server, not with the caller. */
void conn_new(struct svc *svc, int fd, const struct sockaddr *peer, socklen_t len);

/* conn_close(c, reason): log one line with reason, free c. */
void conn_close(struct conn *c, const char *reason);

/* conn_close_aborted(c, reason): conn_close, resetting the backend
 * connection instead of ending it in order (the client's stream broke). */
void conn_close_aborted(struct conn *c, const char *reason);

#endif
