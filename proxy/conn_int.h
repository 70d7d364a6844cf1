#ifndef PORTIER_CONN_INT_H
#define PORTIER_CONN_INT_H

/* Between conn.c (the state machine and relay), conn_io.c (each half's
 * reads and writes) and conn_starttls.c (the pre-TLS dialogue and the
 * hand-over to the backend); nobody else. */

#include "addr.h"
#include "buf.h"
#include "conn.h"

/* conn_state(c, st): enter st and arm its timer. */
void conn_state(struct conn *c, enum conn_state st);
/* conn_watch(c): (re)arm both sides' watchers for the current state. */
void conn_watch(struct conn *c);
/* conn_pump(c): move what can move, then re-arm watchers (may close c). */
void conn_pump(struct conn *c);
/* conn_pull_client(c): client bytes into c->up; 1 moved, 0 not, -1 error. */
int conn_pull_client(struct conn *c);
/* conn_push_client(c): c->down to the client; 1 moved, 0 not, -1 error. */
int conn_push_client(struct conn *c);
/* conn_pull_backend(c, into) / conn_push_backend(c, from): the same for
 * the backend socket with any buffer. */
int conn_pull_backend(struct conn *c, struct buf *into);
int conn_push_backend(struct conn *c, struct buf *from);
/* conn_push_up(c): c->up to the backend; on LDAP listeners only what
 * the guard cleared, and a second StartTLS answered here. */
int conn_push_up(struct conn *c);
/* conn_client_shut(c): our EOF to the client (close_notify or FIN). */
int conn_client_shut(struct conn *c);
/* conn_client_discard(c): read and drop what the client sends (bounded);
 * sets c_eof at its end. */
void conn_client_discard(struct conn *c);
/* conn_start_backend(c, a): connect to a; CONNECTING, or a refusal. */
void conn_start_backend(struct conn *c, const struct addr *a);
/* conn_respond(c, text): send text (after what c->down holds), then close. */
void conn_respond(struct conn *c, const char *text);
/* conn_refuse(c, why): backend unusable: log why, answer the client in its
 * protocol's words (HTTP 502, SMTP 421, IMAP BYE, POP3 -ERR, LDAP notice
 * of disconnection) where there are any, and close. */
void conn_refuse(struct conn *c, const char *why);

/* conn_starttls.c */
/* conn_starttls_begin(c): greet a client of a STARTTLS listener. */
void conn_starttls_begin(struct conn *c);
/* conn_starttls_prelude(c): the pre-TLS dialogue, on client input; may
 * change the state. 1 if it closed (freed) c, else 0. */
int conn_starttls_prelude(struct conn *c);
/* conn_starttls_upgrading(c): STARTTLS answered; check the first bytes
 * are TLS, then enter HANDSHAKE. 1 if it closed (freed) c, else 0. */
int conn_starttls_upgrading(struct conn *c);
/* conn_starttls_backend_wants_write(c): bytes may go to the backend now. */
int conn_starttls_backend_wants_write(const struct conn *c);
/* conn_starttls_handover(c): consume the backend's greeting, then relay. */
void conn_starttls_handover(struct conn *c);
/* conn_starttls_bye(c, timeout, out): the protocol's goodbye, if it has
 * one; 0 when something was appended. */
int conn_starttls_bye(struct conn *c, int timeout, struct buf *out);
/* conn_starttls_free(c): release the pre-TLS state; NULL-safe. */
void conn_starttls_free(struct conn *c);

#endif
