#ifndef PORTIER_FTP_DATA_INT_H
#define PORTIER_FTP_DATA_INT_H

#include <ev.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addr.h"
#include "cfg.h"
#include "conn_int.h"
#include "ftp_data.h"
#include "server.h"

/*
 * Inside the data-connection broker: its two halves, ftp_data.c (the
 * control connection's table of ports, passive mode, the answers to
 * filter_ftp) and ftp_active.c (PORT and EPRT: the port the backend
 * connects to, and the connection portier makes to the client), share the
 * tables and these helpers. Nothing else includes this.
 */

#define MAX_SLOTS 64	/* max_data_connections' ceiling */

struct ftp_slot {
	struct ftp_ctl *ctl;	/* NULL once the control connection is gone */
	int lfd;		/* the data port, until claimed */
	unsigned port;
	int active;		/* PORT/EPRT: the backend connects, portier dials */
	ev_io io;
	ev_timer timer;
	/* Passive: the backend's passive address, where portier connects.
	 * Active: the backend's host, the only one the port takes. */
	struct addr backend;
	struct sockaddr_storage client;	/* active: where the client listens */
	socklen_t client_len;
	struct conn *data;	/* once claimed */
	/* The data connection delivered the server's whole stream to the
	 * client, close_notify included: the transfer is over for the
	 * client, whenever it ends its side. */
	int delivered;
	unsigned refused;	/* connections from an address it is not for */
	uint8_t sid[FTP_SID_LEN];
	char control[80];
};

struct ftp_ctl {
	struct conn *c;
	void *filter_state;
	struct filter_ftp_env env;
	uint8_t sid[FTP_SID_LEN];
	struct ftp_slot *slots[MAX_SLOTS];
	unsigned broken;	/* data connections that broke off, unreported */
	unsigned refusals;	/* data-channel commands refused (ftp_refuse_cmd) */
};

static inline struct ev_loop *loop_of(const struct ftp_ctl *f)
{
	return f->c->svc->srv->loop;
}

static inline const struct cfg_listener *cl_of(const struct ftp_ctl *f)
{
	return f->c->svc->cl;
}

/* ftp_refuse_cmd(f, fmt, ...): a PASV, EPSV, PORT or EPRT of f refused:
 * the first refusal of the control connection is logged, the others are
 * counted and summed up when it ends, so a client that sends the command
 * a thousand times writes two lines, not a thousand. */
void ftp_refuse_cmd(struct ftp_ctl *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ftp_nslots(f): the ports and data connections f holds. */
unsigned ftp_nslots(const struct ftp_ctl *f);

/* ftp_transfer_pending(f): a transfer command has gone to the server and
 * awaits its final reply. */
int ftp_transfer_pending(const struct ftp_ctl *f);

/* ftp_charge_cut(f): a data connection of f broke off. The final reply of
 * the transfer it belongs to turns a 2yz into 426 (broken()). With no
 * transfer command waiting for its reply there is none: the server, whose
 * side portier reset, fails the next transfer on that port itself, and a
 * count kept here would fail a later transfer that went well. */
void ftp_charge_cut(struct ftp_ctl *f);

/* ftp_slot_release(s): take s out of its control connection's table and
 * close its port; free it when no data connection holds it. */
void ftp_slot_release(struct ftp_slot *s);

/* ftp_unmap_sockaddr(ss, len): a dual-stack listener ("listen = PORT")
 * sees an IPv4 client as ::ffff:a.b.c.d: the client, its own address in
 * PORT or EPRT, and the data ports are compared and bound as IPv4. */
void ftp_unmap_sockaddr(struct sockaddr_storage *ss, socklen_t *len);

/* ftp_same_host(a, sa): a and sa are one address (mapped or not). */
int ftp_same_host(const struct conn_addr *a, const struct sockaddr *sa);

/* ftp_stop_listening(s): s's port is claimed: no more connections. */
void ftp_stop_listening(struct ftp_slot *s);

/* ftp_refuse_conn(s, fd, ss, len, whose): a connection to s's port from
 * an address it is not for (fd, from ss) is closed, and the port stays
 * open for the one it is for; whose says which address that is. Only the
 * first is logged. */
void ftp_refuse_conn(struct ftp_slot *s, int fd, const struct sockaddr_storage *ss,
                     socklen_t len, const char *whose);

/* ftp_slot_arm(f, s, i): s, listening on s->lfd, goes into f's table at i
 * and waits FTP_CLAIM_SECS for its one connection (passive: the client's,
 * active: the backend's). */
void ftp_slot_arm(struct ftp_ctl *f, struct ftp_slot *s, size_t i);

/* ftp_active.c */

/* ftp_active_cmd: filter_ftp's env.active (the client's PORT or EPRT; see
 * filter_ftp.h). */
int ftp_active_cmd(void *ctx, int family, const uint8_t *addr, unsigned port,
                   char *cmd, size_t size);

/* ftp_active_accept(s, fd, ss, len): the backend connected to active
 * slot s's port (fd, from ss); from here the data connection holds s. */
void ftp_active_accept(struct ftp_slot *s, int fd, const struct sockaddr_storage *ss,
                       socklen_t len);

#endif
