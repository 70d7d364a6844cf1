/*
 * FTP active mode (PORT, EPRT): the client names its own address and a
 * port; portier listens on its side of the backend connection, sends the
 * backend there instead, and when the backend connects, connects to the
 * client and relays (a data connection, conn_ftp.c). The slots, their
 * timers and the refusal counting are ftp_data.c's.
 */

#include "ftp_data_int.h"
#include "backend.h"
#include "conn.h"
#include "cfg.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A socket connecting (non-blocking) from the control connection's local
 * address, so the client sees its data connection come from where its
 * control connection goes, to where the client listens; -1 with errno. */
static int dial_client(struct ftp_ctl *f, const struct ftp_slot *s)
{
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);
	int fd, e;

	if (getsockname(f->c->cfd, (struct sockaddr *)&local, &llen) < 0)
		return -1;
	ftp_unmap_sockaddr(&local, &llen);
	if (local.ss_family == AF_INET)
		((struct sockaddr_in *)&local)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&local)->sin6_port = 0;
	fd = socket(s->client.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&local, llen) < 0 ||
	    (connect(fd, (const struct sockaddr *)&s->client, s->client_len) < 0 &&
	     errno != EINPROGRESS)) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* The client's PORT or EPRT (see filter_ftp.h): the address must be the
 * control client's own, never a third host's (the FTP bounce attack,
 * RFC 2577), and the port above 1023. Portier listens on its side of the
 * backend connection and sends the backend there; when the backend
 * connects, portier connects to the client. */
int ftp_active_cmd(void *ctx, int family, const uint8_t *addr, unsigned port,
                  char *cmd, size_t size)
{
	struct ftp_ctl *f = ctx;
	const struct cfg_listener *l = cl_of(f);
	struct sockaddr_storage local, back;
	socklen_t llen = sizeof(local), blen = sizeof(back);
	char named[ADDR_STRLEN], text[INET6_ADDRSTRLEN];
	struct conn_addr me = f->c->client, it = {.family = (uint16_t)family};
	struct ftp_slot *s;
	static const uint8_t unspecified[16];
	const uint8_t *lip;
	unsigned lport;
	size_t i;
	int fd;

	memcpy(it.ip, addr, family == AF_INET ? 4 : 16);
	conn_addr_unmap(&me);
	conn_addr_unmap(&it);
	family = it.family;
	addr = it.ip;
	/* "EPRT |2|::|port|" (lftp's over IPv6), or 0.0.0.0: the address the
	 * control connection comes from, which is all portier would take. */
	if (me.family == family &&
	    memcmp(addr, unspecified, family == AF_INET ? 4 : 16) == 0)
		addr = me.ip;
	if (me.family != family ||
	    memcmp(me.ip, addr, family == AF_INET ? 4 : 16) != 0 ||
	    port < 1024) {
		inet_ntop(family, addr, text, sizeof(text));
		snprintf(named, sizeof(named), family == AF_INET ? "%s:%u" : "[%s]:%u",
		         text, port);
		ftp_refuse_cmd(f, "active mode to %s refused: only the client's own "
		           "address and a port above 1023", named);
		return -1;
	}
	/* A new PORT replaces one the backend has not used yet, unless a
	 * transfer command waits for its reply (PORT, RETR, PORT, RETR in
	 * one write): the server has yet to connect for it. */
	for (i = 0; i < MAX_SLOTS && !ftp_transfer_pending(f); i++)
		if (f->slots[i] != NULL && f->slots[i]->active && f->slots[i]->data == NULL)
			ftp_slot_release(f->slots[i]);
	if (ftp_nslots(f) >= l->ftp_max_data) {
		ftp_refuse_cmd(f, "max_data_connections (%u) reached; refusing active "
		           "mode", l->ftp_max_data);
		return -2;
	}
	if (getsockname(f->c->bfd, (struct sockaddr *)&local, &llen) < 0 ||
	    getpeername(f->c->bfd, (struct sockaddr *)&back, &blen) < 0)
		return -2;
	if (local.ss_family == AF_INET)
		((struct sockaddr_in *)&local)->sin_port = 0;
	else if (local.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&local)->sin6_port = 0;
	else
		return -2;	/* a unix-socket backend has no PORT */
	for (i = 0; i < MAX_SLOTS && f->slots[i] != NULL; i++)
		continue;
	if (i == MAX_SLOTS || (s = calloc(1, sizeof(*s))) == NULL)
		return -2;
	fd = socket(local.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&local, llen) < 0 ||
	    listen(fd, 1) < 0 ||
	    getsockname(fd, (struct sockaddr *)&local, &llen) < 0) {
		ftp_refuse_cmd(f, "no port for the backend's active data connection: %s",
		           strerror(errno));
		if (fd >= 0)
			close(fd);
		free(s);
		return -2;
	}
	if (local.ss_family == AF_INET) {
		lip = (const uint8_t *)&((struct sockaddr_in *)&local)->sin_addr;
		lport = ntohs(((struct sockaddr_in *)&local)->sin_port);
		snprintf(cmd, size, "PORT %u,%u,%u,%u,%u,%u\r\n", lip[0], lip[1],
		         lip[2], lip[3], lport / 256, lport % 256);
	} else {
		lport = ntohs(((struct sockaddr_in6 *)&local)->sin6_port);
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&local)->sin6_addr,
		          text, sizeof(text));
		snprintf(cmd, size, "EPRT |2|%s|%u|\r\n", text, lport);
	}
	s->ctl = f;
	s->lfd = fd;
	s->port = lport;
	s->active = 1;
	memcpy(&s->backend.ss, &back, blen);
	s->backend.len = blen;
	memset(&s->client, 0, sizeof(s->client));
	if (family == AF_INET) {
		struct sockaddr_in *c4 = (struct sockaddr_in *)&s->client;
		c4->sin_family = AF_INET;
		memcpy(&c4->sin_addr, addr, 4);
		c4->sin_port = htons((uint16_t)port);
		s->client_len = sizeof(*c4);
	} else {
		struct sockaddr_in6 *c6 = (struct sockaddr_in6 *)&s->client;
		c6->sin6_family = AF_INET6;
		memcpy(&c6->sin6_addr, addr, 16);
		c6->sin6_port = htons((uint16_t)port);
		s->client_len = sizeof(*c6);
	}
	ftp_slot_arm(f, s, i);
	return 0;
}


/* Active mode: the backend connected to the port portier gave it in PORT
 * or EPRT (fd, from ss). Only the backend's host may; then portier
 * connects to the client's address (conn_ftp_new_active finishes it). */
void ftp_active_accept(struct ftp_slot *s, int fd,
                           const struct sockaddr_storage *ss, socklen_t len)
{
	struct ftp_ctl *f = s->ctl;
	struct conn_addr b = {0};
	char peer[ADDR_STRLEN];
	int cfd;

	conn_addr_keep(&b, (const struct sockaddr *)&s->backend.ss);
	if (!ftp_same_host(&b, (const struct sockaddr *)ss)) {
		ftp_refuse_conn(s, fd, ss, len, "backend's");
		return;
	}
	ftp_stop_listening(s);
	if ((cfd = dial_client(f, s)) < 0) {
		addr_format((const struct sockaddr *)&s->client, s->client_len,
		            peer, sizeof(peer));
		log_warnx("[%s] client=%s: active data connection to %s: %s",
		          cl_of(f)->name, s->control, peer, strerror(errno));
		backend_abort(fd);	/* the backend reports the transfer failed */
		close(fd);
		ftp_charge_cut(f);		/* and a 2yz it sent already becomes 426 */
		ftp_slot_release(s);
		return;
	}
	/* From here the data connection holds s (see on_accept). */
	conn_ftp_new_active(f->c->svc, cfd, (const struct sockaddr *)&s->client,
	                    s->client_len, fd, s,
	                    f->filter_state == NULL || filter_ftp_private(f->filter_state));
}
