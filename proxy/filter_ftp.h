#ifndef PORTIER_FILTER_FTP_H
#define PORTIER_FILTER_FTP_H

#include <stddef.h>
#include <stdint.h>

/*
 * What the FTP control-channel filter (filter_ftp in filter.h) needs from
 * the connection that runs it: the listener's data protection policy and
 * the data port broker that turns the backend's passive address into one
 * of portier's.
 */
struct filter_ftp_env {
	int prot_c_ok;		/* data_protection = optional: PROT C taken */
	void *ctx;		/* passed to passive() */
	/* The backend entered passive mode at addr:port (PASV, 227; addr is
	 * NULL for EPSV, 229: the backend's own address). Fill pub (PASV
	 * only) and *pub_port with where the client is to connect instead.
	 * 0, or -1: no data port (the client gets 425); -2: PASV where only
	 * EPSV can name the address (an IPv6 control connection and no
	 * IPv4 public address: 425 saying so). NULL: passive mode is not
	 * available at all. */
	int (*passive)(void *ctx, int epsv, const uint8_t *addr, unsigned port,
	    uint8_t pub[4], unsigned *pub_port);
	/* 1 while a data connection is open: the final reply to a transfer
	 * command (226, 426, ...) waits until it has ended, so the client
	 * never hears "complete" before the last byte and close_notify.
	 * NULL: never. */
	int (*busy)(void *ctx);
	/* 1 (once per broken data connection) when the data connection of
	 * the transfer whose final reply is passing broke off: a 2yz
	 * becomes 426, so a cut file is never reported complete. NULL:
	 * never. */
	int (*broken)(void *ctx);
	/* The client sent ABOR: end the data connections now. A server
	 * learns of an ABOR during a transfer from TCP urgent data, which
	 * cannot cross TLS; a broken data connection is what it sees
	 * instead. NULL: nothing. */
	void (*abort)(void *ctx);
	/* The client asked for active mode (PORT, EPRT): it listens at
	 * addr:port (family AF_INET, 4 bytes, or AF_INET6, 16). Write into
	 * cmd (size bytes, CRLF included) the command that sends the backend
	 * to a port of portier's instead. 0; -1 refused (504: not the control
	 * client's address, or a port below 1024); -2 no data port (425).
	 * NULL: active mode is off (502), and FEAT does not list EPRT. */
	int (*active)(void *ctx, int family, const uint8_t *addr, unsigned port,
	    char *cmd, size_t size);
};

/* filter_ftp_setup(st, env): give a zeroed filter_ftp state its
 * environment, before the relay first calls it; env must outlive it. */
void filter_ftp_setup(void *st, const struct filter_ftp_env *env);

/* filter_ftp_private(st): 1 unless the client said PROT C (and was let):
 * data connections are TLS. */
int filter_ftp_private(const void *st);

/* filter_ftp_transfer_pending(st): 1 while a transfer command (RETR,
 * LIST, STOR, ...) waits for its final reply: a data connection that
 * breaks off now is that transfer's (see broken in filter_ftp_env). */
int filter_ftp_transfer_pending(const void *st);

#endif
