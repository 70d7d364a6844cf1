#ifndef PORTIER_CONN_INT_H
#define PORTIER_CONN_INT_H

/* Between conn.c (the state table, life cycle, refusals), conn_relay.c
 * (the relay and the canned reply), conn_io.c (each half's reads and
 * writes), conn_starttls.c (the pre-TLS dialogue and the hand-over to
 * the backend), conn_backend.c (the way to the backend), conn_proxy.c
 * (the PROXY header read), conn_limit.c (the per-client limits),
 * conn_ftp.c (FTP data connections) and conn_redial.c (a backend that
 * closed unused); nobody else.
 *
 * None of these frees a connection: a failure calls conn_close(), which
 * marks c->closing, and the caller returns at its next check of it. */

#include "addr.h"
#include "buf.h"
#include "conn.h"
#include "starttls.h"

/* A connection's stream filter (proto.h), from the relay on: the raw
 * buffers of the filtered directions and the filter's zeroed state. */
struct conn_filter {
	const struct filter_ops *ops;
	struct buf up_raw, down_raw;
	_Alignas(16) unsigned char state[];
};

/* conn_state(c, st): enter st and arm its deadline. */
void conn_state(struct conn *c, enum conn_state st);
/* conn_state_since(c, st, since): the same, st's deadline counted from
 * since (a state entered again: the pre-TLS dialogue after an EHLO query
 * keeps the deadline it began with). */
void conn_state_since(struct conn *c, enum conn_state st, ev_tstamp since);
/* conn_progress(c): run the current state's I/O handler (after a state
 * change that may already have work to do). */
void conn_progress(struct conn *c);

/* conn_io.c. Each returns 1 if bytes moved (or EOF was seen), 0 if not,
 * -1 on a broken stream. */
/* conn_pull_client(c, into): client bytes into `into`. */
int conn_pull_client(struct conn *c, struct buf *into);
/* conn_push_client(c): c->down to the client. */
int conn_push_client(struct conn *c);
/* conn_pull_backend(c, into) / conn_push_backend(c, from): the same for
 * the backend socket with any buffer; c->pre (the PROXY header) goes out
 * whole before the first byte of any; -1 with errno from send(2). Once
 * c->b_gone, pushing drops. */
int conn_pull_backend(struct conn *c, struct buf *into);
int conn_push_backend(struct conn *c, struct buf *from);
/* conn_client_shut(c): our EOF to the client (close_notify or FIN), sets
 * c_shut once it is out; under backpressure it stays pending
 * (shut_wants_write) and is retried when the socket takes bytes. 0, or -1
 * when the client's stream is broken. */
int conn_client_shut(struct conn *c);
/* conn_client_discard(c): read and drop what the client sends (bounded);
 * sets c_eof at its end. */
void conn_client_discard(struct conn *c);
/* conn_client_ready(c): TLS holds client bytes a read returns without the
 * socket (decrypted, or a whole record read ahead). */
int conn_client_ready(const struct conn *c);

/* conn_refusal(c): the whole reply that tells c's client its backend is
 * down, where the protocol has one and no STARTTLS driver says it (HTTP's
 * 502), or NULL. NULL too for a TLS client that agreed by ALPN on another
 * protocol than HTTP/1 (h2 to a backend that speaks it): HTTP/1.1 text in
 * that session would be a protocol error, so it gets an orderly end. */
const char *conn_refusal(const struct conn *c);

/* conn_relay.c */
/* conn_relay(c): RELAY: move what can move both ways, filters included;
 * half-close; closes c when both ends are done. */
void conn_relay(struct conn *c);
/* conn_relay_watch(c, ce, be): the events RELAY wants. */
void conn_relay_watch(const struct conn *c, int *ce, int *be);
/* conn_backend_text(c): the backend c is for, as configured ("host:port",
 * "unix:/path"; the ACME backend for an ACME request), for messages. */
const char *conn_backend_text(const struct conn *c);

/* conn_limit_text(out, n, limit): a deadline of limit seconds as the
 * config gave it, for a close line: "10s", or "300ms" when it is not whole
 * seconds ("%.0fs" said "0s"). Returns out. */
const char *conn_limit_text(char *out, size_t n, double limit);

/* conn_addr_keep(a, sa): a takes sa's family, address and port (AF_INET
 * or AF_INET6; other families only set a->family). */
struct sockaddr;
void conn_addr_keep(struct conn_addr *a, const struct sockaddr *sa);

/* conn_respond_reason(c): the close line's reason once RESPOND is done;
 * NULL when conn_close() words it itself (from c->close_why). */
const char *conn_respond_reason(const struct conn *c);

/* conn_respond_io(c): RESPOND: send c->down, end our side, read out the
 * client, close. */
void conn_respond_io(struct conn *c);
/* conn_relay_start(c, from_backend): enter RELAY with the listener's
 * stream filter; from_backend (or NULL) holds backend bytes read before,
 * which go to the client through the filter (emptied). */
void conn_relay_start(struct conn *c, struct buf *from_backend);
/* conn_relay_free(c): release the stream filter; NULL-safe. */
void conn_relay_free(struct conn *c);
/* conn_client_in(c) / conn_backend_in(c): where reads from that side go. */
struct buf *conn_client_in(struct conn *c);
struct buf *conn_backend_in(struct conn *c);

/* conn_backend.c */
/* conn_start_backend(c, a): connect to a; CONNECTING, or a refusal. */
void conn_start_backend(struct conn *c, const struct addr *a);
/* conn_respond(c, why, text): send text (after what c->down holds), then
 * close with why. */
void conn_respond(struct conn *c, enum conn_why why, const char *reason,
                  const char *text);
/* conn_refuse(c, why): backend unusable: log why, answer the client in its
 * protocol's words (HTTP 502, SMTP 421, IMAP BYE, POP3 -ERR, LDAP notice
 * of disconnection) where there are any, and close. */
void conn_refuse(struct conn *c, const char *why);
/* conn_acme_unanswered(c, limit): the ACME backend sent no byte within
 * idle_timeout (limit, as text): log it and answer the client 504. */
void conn_acme_unanswered(struct conn *c, const char *limit);
/* conn_backend_failed(c, err): count a failed backend connect by its
 * kind, from errno value err (ETIMEDOUT for our own deadline). */
void conn_backend_failed(struct conn *c, int err);
/* conn_refused(c, why): the same when the goodbye is in c->down already
 * (the STARTTLS engine wrote it). */
void conn_refused(struct conn *c, const char *why);
/* conn_backend_drop(c): close the backend connection (if any) quietly, so
 * that conn_start_backend() opens a new one (SMTP's upgrade after EHLO,
 * REDIAL). */
void conn_backend_drop(struct conn *c);
/* CONNECTING's row: wait for the backend's connect (the client's bytes
 * wait in its buffer), then HANDOVER, HANDSHAKE (an FTP data connection)
 * or the relay; a failure or the deadline is a refusal. */
void conn_connecting_io(struct conn *c);
void conn_connecting_watch(const struct conn *c, int *ce, int *be);
void conn_connecting_expire(struct conn *c, double limit);

/* conn_handshake.c */
/* HANDSHAKE's row: the TLS handshake; when it completes, the backend's
 * connect (or the FTP data connection's next step). */
void conn_handshake_io(struct conn *c);
void conn_handshake_watch(const struct conn *c, int *ce, int *be);
void conn_handshake_expire(struct conn *c, double limit);
/* conn_handshake_count_failure(c, why): count c's failed handshake (c
 * closing for why) by the reason its log line gives. */
void conn_handshake_count_failure(const struct conn *c, enum conn_why why);

/* conn_httphead.c: HTTPHEAD's row, a redirect listener's request head. */
void conn_httphead_io(struct conn *c);
void conn_httphead_watch(const struct conn *c, int *ce, int *be);
void conn_httphead_expire(struct conn *c, double limit);

/* conn.c: conn_begin(c): the listener's first state after the PROXY
 * header (or at once without accept_proxy): HANDSHAKE, PRELUDE, HTTPHEAD
 * or the backend's connect. */
void conn_begin(struct conn *c);

/* conn.c's life cycle, for the files that start a connection of their
 * own (conn_ftp.c): */
/* conn_alloc(svc, fd, peer, len): a connection for fd, counted and listed,
 * in no state yet; NULL (fd closed) when out of memory. */
struct conn *conn_alloc(struct svc *svc, int fd, const struct sockaddr *peer,
                        socklen_t len);
/* conn_enter(c): at the top of every entry into c (a callback or a start);
 * aborts unless c carries the connection's magic number. */
void conn_enter(struct conn *c);
/* conn_settle(c): at the bottom of it: frees c if it closed, else sets the
 * watchers its state wants. c may be gone when it returns. */
void conn_settle(struct conn *c);

/* conn_ftp.c: FTP data connections. */
/* conn_ftp_new_data(svc, fd, peer, len, slot, private): an FTP data
 * connection accepted on slot's port: the backend's passive port first (a
 * server answers the transfer command only once it is there, and the
 * client starts TLS only after that answer), then TLS when private
 * (resuming the control connection's session when the listener requires
 * it), then the relay. May be over, and slot freed, when it returns. */
void conn_ftp_new_data(struct svc *svc, int fd, const struct sockaddr *peer,
                       socklen_t len, struct ftp_slot *slot, int private);
/* conn_ftp_new_active(svc, cfd, peer, len, bfd, slot, private): an FTP data
 * connection in active mode: bfd is the backend's, accepted on slot's
 * port; cfd is connecting to the client at peer. Once it is connected,
 * TLS when private, portier in the TLS server's role though it opened the
 * TCP connection (RFC 4217 7), then the relay. May be over, and slot
 * freed, when it returns. */
void conn_ftp_new_active(struct svc *svc, int cfd, const struct sockaddr *peer,
                         socklen_t len, int bfd, struct ftp_slot *slot, int private);
/* conn_ftp_handshake_done(c): a data connection's TLS handshake is done
 * (the backend is connected): the relay, or a reset of both ends when it
 * did not resume the control session and the listener requires it. */
void conn_ftp_handshake_done(struct conn *c);
/* DIALING's row: wait for the connect to the client, then HANDSHAKE when
 * private, else the relay; a failure or the deadline ends it with a reset
 * to the backend. */
void conn_ftp_dialing_io(struct conn *c);
void conn_ftp_dialing_watch(const struct conn *c, int *ce, int *be);
void conn_ftp_dialing_expire(struct conn *c, double limit);

/* conn_redial.c */
/* conn_redial_park(c, why): in RELAY, the backend ended (or reset, why
 * says which) before a byte of either side reached the other, in a
 * protocol where the client speaks first: say so, drop it and wait in
 * REDIAL for the client's first bytes, then connect anew (at once when
 * they wait already); while the worker drains and none wait, pass the end
 * on instead (c closes). 1 if so; 0 (nothing done) when the connection is
 * not like that. */
int conn_redial_park(struct conn *c, const char *why);
/* REDIAL's row: read the client; its first bytes start a new backend
 * connect (CONNECTING, the bytes kept); its close or idle_timeout ends
 * the connection quietly. */
void conn_redial_io(struct conn *c);
void conn_redial_watch(const struct conn *c, int *ce, int *be);
void conn_redial_expire(struct conn *c, double limit);
/* conn_redial_drain(c): the worker drains: end c, in REDIAL, quietly. */
void conn_redial_drain(struct conn *c);

/* conn_limit.c */
/* conn_limit_check(c): the per-client limits, once the client's address is
 * known (after a PROXY header, the client's, not the balancer's): 0 to go
 * on, -1 when c was refused (the protocol's "try later", or a close). */
int conn_limit_check(struct conn *c);

/* conn_proxy.c: PROXYHEAD, the PROXY header of accept_proxy. */
/* conn_proxy_allowed(c): 1 if c comes from accept_proxy_from; else it
 * closes c (one log line naming the address) and returns 0. */
int conn_proxy_allowed(struct conn *c);
/* conn_proxy_io(c): read the header, never a byte past it; then the
 * header's client is c's client and conn_begin() runs. */
void conn_proxy_io(struct conn *c);
void conn_proxy_watch(const struct conn *c, int *ce, int *be);
void conn_proxy_expire(struct conn *c, double limit);

/* conn_starttls.c */
/* conn_starttls_begin(c): greet a client of a STARTTLS listener. */
void conn_starttls_begin(struct conn *c);
/* conn_starttls_prelude(c): PRELUDE's I/O: the pre-TLS dialogue. */
void conn_starttls_prelude(struct conn *c);
/* conn_starttls_upgrading(c): UPGRADING's I/O: STARTTLS answered; check
 * the first bytes are TLS, then enter HANDSHAKE. */
void conn_starttls_upgrading(struct conn *c);
/* conn_starttls_handover(c): HANDOVER's I/O: consume the backend's
 * greeting, then relay. */
void conn_starttls_handover(struct conn *c);
/* The watchers and deadlines of PRELUDE, UPGRADING and HANDOVER. */
void conn_starttls_prelude_watch(const struct conn *c, int *ce, int *be);
void conn_starttls_prelude_expire(struct conn *c, double limit);
void conn_starttls_upgrading_watch(const struct conn *c, int *ce, int *be);
void conn_starttls_upgrading_expire(struct conn *c, double limit);
void conn_starttls_handover_watch(const struct conn *c, int *ce, int *be);
void conn_starttls_handover_expire(struct conn *c, double limit);
/* conn_starttls_backend_wants_write(c): bytes wait for the backend. */
int conn_starttls_backend_wants_write(const struct conn *c);
/* conn_starttls_bye(c, timeout, out): the protocol's goodbye, if it has
 * one; 0 when something was appended. */
int conn_starttls_bye(struct conn *c, int timeout, struct buf *out);
/* conn_starttls_say_bye(c, why, out): the same for any reason why. */
int conn_starttls_say_bye(struct conn *c, enum starttls_bye why, struct buf *out);
/* conn_starttls_free(c): release the pre-TLS state; NULL-safe. */
void conn_starttls_free(struct conn *c);

#endif
