#ifndef PORTIER_FTP_DATA_H
#define PORTIER_FTP_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "filter_ftp.h"

/*
 * FTP's data connections (docs/ftps.md). A control connection on an FTP
 * listener behind TLS owns one ftp_ctl: the broker filter_ftp asks for a
 * data port when the backend says 227 or 229 (passive, ftp_data.c) or the
 * client sends PORT or EPRT (active, ftp_active.c). Passive: the broker
 * binds a free port of the listener's data_ports (listen() failing with
 * EADDRINUSE is what keeps two sessions, of any worker, off one port),
 * announces it, accepts one connection there from the control client's
 * address, and starts a data connection (conn_ftp.c) that terminates TLS,
 * resuming the control connection's session, and relays to the backend's
 * passive port. A port nobody claims within 30 s is closed; every port and
 * data connection ends with the control connection.
 */

#define FTP_SID_LEN	32	/* the session id both connections share */
#define FTP_CLAIM_SECS	30.	/* a data port waits this long for its connection */
#define FTP_SETUP_SECS	30.	/* then backend, client and TLS take at most this */

struct conn;
struct ftp_ctl;
struct ftp_slot;

/* ftp_ctl_new(c): the broker of control connection c; NULL on ENOMEM. Its
 * session id is random: bind c's TLS to it (tlsctx_bind_session). */
struct ftp_ctl *ftp_ctl_new(struct conn *c);

/* ftp_ctl_free(f): close every data port of f and end its data
 * connections, freed at once (f's control connection is being freed, in
 * its own callback or at shutdown, never in theirs); NULL-safe. */
void ftp_ctl_free(struct ftp_ctl *f);

/* ftp_ctl_transferring(f): some data connection of f is open. Its control
 * connection is quiet meanwhile (RFC 959: the reply comes at the end), and
 * that is not idleness. */
int ftp_ctl_transferring(const struct ftp_ctl *f);

/* ftp_ctl_sid(f): its FTP_SID_LEN bytes of session id. */
const uint8_t *ftp_ctl_sid(const struct ftp_ctl *f);

/* ftp_ctl_env(f, st): the environment for c's filter_ftp state st (the
 * broker also asks st whether data is private). */
const struct filter_ftp_env *ftp_ctl_env(struct ftp_ctl *f, void *st);

/* ftp_slot_closed(s, broken): data connection of s ended (conn_free),
 * broken when not in order at both ends with close_notify: release the
 * slot and wake its control connection, whose filter may hold the
 * transfer's last reply (426 instead of 226 when broken). */
void ftp_slot_closed(struct ftp_slot *s, int broken);

/* ftp_slot_attach(s, c): data connection c now holds s (conn_ftp_new_data). */
void ftp_slot_attach(struct ftp_slot *s, struct conn *c);

/* ftp_slot_delivered(s): s's data connection has given the client the
 * server's whole stream and its close_notify (the relay's half-close): the
 * transfer's last reply need not wait for the client to end its side. */
void ftp_slot_delivered(struct ftp_slot *s);

/* What a data connection asks of its slot. */
const struct addr *ftp_slot_backend(const struct ftp_slot *s);
const uint8_t *ftp_slot_sid(const struct ftp_slot *s);
const char *ftp_slot_control(const struct ftp_slot *s);  /* the control client, "addr:port" */

#endif
