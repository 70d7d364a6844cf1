#ifndef PORTIER_CONN_H
#define PORTIER_CONN_H

#include <ev.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "buf.h"
#include "limit.h"

struct svc;
struct tlsconn;
struct conn_filter;

/*
 * One proxied connection: a client half and a backend half, and the state
 * machine that carries bytes between them.
 *
 *   implicit TLS:  HANDSHAKE --> CONNECTING --> RELAY --> (closed)
 *   plain:         CONNECTING --> RELAY
 *   STARTTLS:      PRELUDE --> UPGRADING --> HANDSHAKE --> CONNECTING
 *                  --> HANDOVER --> RELAY   (SMTP optional: PRELUDE -->
 *                  CONNECTING --> HANDOVER, in plaintext; on EHLO
 *                  PRELUDE --> CONNECTING --> HANDOVER --> PRELUDE, the
 *                  backend kept for plaintext, closed at STARTTLS)
 *   redirect:      HTTPHEAD --> RESPOND | CONNECTING (ACME challenge)
 *   accept_proxy:  PROXYHEAD first, then the listener's first state
 *   and from any state with a backend: RESPOND with the protocol's refusal
 *   (HTTP 502, SMTP 421, ...) when the backend is down; RELAY --> RESPOND
 *   to read out a client that still sends after the backend's whole reply
 *   and its refusal of more (b_gone)
 *
 * Each state is one row of a table in conn.c: its deadline, the events it
 * wants from each socket, its I/O handler and its deadline handler.
 * conn_state() is the only place the state changes; watchers are set in
 * one place, on the way out of every libev callback; conn_close() only
 * marks the connection, which is freed there too, never under a caller.
 */
enum conn_state {
	CONN_HANDSHAKE,   /* TLS handshake with the client */
	CONN_HTTPHEAD,    /* redirect listener reading a request head */
	CONN_CONNECTING,  /* backend connect in progress; client bytes buffered */
	CONN_RELAY,       /* both ways, with backpressure and half-close */
	CONN_RESPOND,     /* sending a canned reply, then closing */
	CONN_PRELUDE,     /* STARTTLS: portier's own pre-TLS dialogue */
	CONN_UPGRADING,   /* STARTTLS answered: waiting for a ClientHello */
	CONN_HANDOVER,    /* STARTTLS: consuming the backend's greeting */
	CONN_PROXYHEAD,   /* accept_proxy: the load balancer's PROXY header */
	CONN_DIALING,     /* FTP active mode: connecting to the client */
	CONN_REDIAL,      /* the backend closed unused: a new one when the client speaks */
	CONN_NSTATES
};

/* Why a connection ended: one code per line of the close log, counted per
 * listener. conn_why_name() gives its label. */
enum conn_why {
	CONN_WHY_CLIENT_CLOSED,     /* in order, client first */
	CONN_WHY_BACKEND_CLOSED,    /* in order, backend first */
	CONN_WHY_CLIENT_RESET,      /* the client's stream broke off */
	CONN_WHY_BACKEND_RESET,
	CONN_WHY_HANDSHAKE_FAILED,
	CONN_WHY_HANDSHAKE_TIMEOUT,
	CONN_WHY_IDLE,              /* idle_timeout in the relay */
	CONN_WHY_PRELUDE_TIMEOUT,   /* pre-TLS deadline, or no TLS after STARTTLS */
	CONN_WHY_REQUEST_TIMEOUT,   /* redirect: no complete request head */
	CONN_WHY_BACKEND_DOWN,      /* connect failed, timed out, bad greeting */
	CONN_WHY_REPLIED,           /* a canned reply was sent (redirect, refusal) */
	CONN_WHY_INJECTION,         /* bytes after STARTTLS */
	CONN_WHY_PROTOCOL,          /* the client broke its protocol */
	CONN_WHY_FILTER,            /* a stream filter refused the stream */
	CONN_WHY_NOMEM,
	CONN_WHY_SHUTDOWN,          /* portier stopped (SIGTERM, drain_timeout) */
	CONN_WHY_LIMITED,           /* over a per-client limit (limit.h) */
	CONN_WHY_COUNT
};

/* An address in binary form (the client's; PROXY headers and per-address
 * limits need it): family AF_INET, AF_INET6 or AF_UNIX (no address). */
struct conn_addr {
	uint16_t family;
	uint16_t port;       /* host order */
	uint8_t ip[16];      /* 4 bytes for AF_INET */
};

/* conn_addr_unmap(a): ::ffff:a.b.c.d (a client of a dual-stack
 * "listen = PORT" socket) becomes the IPv4 address a.b.c.d it is; any
 * other address stays as it is. */
static inline void conn_addr_unmap(struct conn_addr *a)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (a->family == AF_INET6 && memcmp(a->ip, v4mapped, 12) == 0) {
		memmove(a->ip, a->ip + 12, 4);
		memset(a->ip + 4, 0, 12);
		a->family = AF_INET;
	}
}

struct conn_starttls;
struct ftp_ctl;
struct ftp_slot;

struct conn {
	uint32_t magic;
	enum conn_state state;
	struct svc *svc;
	struct tlsconn *tls;         /* client side TLS; NULL when plaintext */
	int cfd, bfd;
	ev_io cio, bio;
	ev_timer timer;
	ev_tstamp start, last;       /* accept time, last activity */
	/* Buffers: `up` goes to the backend, `down` to the client. With a
	 * stream filter (fx, from the relay on), reads of a filtered
	 * direction land in its raw buffer and the filter moves them on;
	 * otherwise reads land in up / down directly. */
	struct buf up, down;
	/* The PROXY header (send_proxy): goes to the backend whole, before
	 * any other byte, whatever waits in `up` or the hand-over's own. */
	struct buf pre;
	struct conn_filter *fx;
	uint64_t nup, ndown;         /* bytes delivered each way */
	uint64_t ndown_relay;        /* ndown when the relay began: a STARTTLS
	                                listener's own pre-TLS replies */
	unsigned c_eof : 1, b_eof : 1;     /* got EOF from that side */
	unsigned c_shut : 1, b_shut : 1;   /* sent EOF to that side (done) */
	unsigned c_trunc : 1;        /* the client's TLS ended without close_notify */
	unsigned b_gone : 1;         /* the backend ended in order, then refused
	                              * more: what the client sends is dropped */
	unsigned read_wants_write : 1, write_wants_read : 1;
	unsigned shut_wants_write : 1;     /* close_notify waits for room */
	/* The socket may have bytes: set by a readable event, cleared when a
	 * read finds none. Saves a failing read(2) per direction per wakeup. */
	unsigned c_rd : 1, b_rd : 1;
	unsigned b_wr : 1;           /* the backend socket became writable */
	unsigned acme : 1;           /* relaying one ACME challenge request */
	unsigned acme_head : 1;      /* ... a HEAD: its refusal has no body */
	unsigned hs_done : 1;        /* the TLS handshake completed */
	unsigned redialed : 1;       /* REDIAL has been: never twice */
	/* conn_state() ran: until then `state` holds its zero, which is
	 * HANDSHAKE's, though nothing was tried (a per-client limit, a
	 * backend that failed at once, no memory). */
	unsigned has_state : 1;
	unsigned closing : 1;        /* conn_close() ran: freed on the way out */
	unsigned queued : 1;         /* on the server's run queue */
	unsigned rq_batch : 1;       /* ... in the turn being served (server.c) */
	unsigned in_callback : 1;    /* a libev callback of c is running */
	uint8_t why;                 /* enum conn_why, once closing */
	uint8_t close_why;           /* enum conn_why, for RESPOND */
	uint8_t hs_fail;             /* enum tlsctx_fail + 1 of a failed
	                                handshake, for its counter; 0 */
	const char *first_eof;       /* "client" or "backend" */
	const char *close_reason;    /* for RESPOND: why we are closing */
	struct conn_starttls *st;    /* pre-TLS state; NULL once relaying */
	struct ftp_ctl *ftp;         /* FTP control connection: its data ports */
	struct ftp_slot *ftp_slot;   /* FTP data connection: its port's slot */
	struct conn *next, *prev;    /* the server's list */
	struct conn *rq_next, *rq_prev;   /* the server's run queue */
	struct conn_addr client;     /* the PROXY header's, with accept_proxy */
	/* The address the client reached, when a PROXY header said it
	 * (local_known); else the client socket's own is asked for. */
	struct conn_addr local;
	unsigned local_known : 1;
	unsigned limited : 1;        /* refused by a per-client limit: no close line */
	struct limit_hold limit;     /* what it counts in the per-client table */
	char peer[48];               /* "[v6]:port" fits; longer is cut */
};

/* conn_new(svc, fd, peer, len): take over an accepted socket and start
 * serving it. The connection may be over before this returns (a backend
 * refusing at once): it lives in svc's server, not with the caller. */
void conn_new(struct svc *svc, int fd, const struct sockaddr *peer, socklen_t len);

/* conn_close(c, why, text): log one line with text (or why's label when
 * text is NULL) and mark c closing: it stops every watcher and is freed on
 * the way out of the libev callback that is running (never under the
 * caller). A second call is a no-op. */
void conn_close(struct conn *c, enum conn_why why, const char *text);

/* conn_close_aborted(c, why, text): conn_close, resetting the backend
 * connection instead of ending it in order (the client's stream broke). */
void conn_close_aborted(struct conn *c, enum conn_why why, const char *text);

/* conn_stop(c, text): close and free c now; for the server's shutdown,
 * outside any callback of c. */
void conn_stop(struct conn *c, const char *text);

/* conn_drain(c): the worker drains (SIGQUIT, or a reload's new workers
 * took over): a connection that holds nothing in flight either way, one in
 * REDIAL (its backend ended it unused), ends now; any other runs on. For
 * the server, outside any callback of c; c may be freed when it returns. */
void conn_drain(struct conn *c);

/* conn_run(c): serve bytes TLS holds decrypted or whole in memory (the
 * server's run queue calls this once per loop iteration). */
void conn_run(struct conn *c);

/* conn_why_name(why): a short label ("client_closed", ...). */
const char *conn_why_name(enum conn_why why);

#endif
