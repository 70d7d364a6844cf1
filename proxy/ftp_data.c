/*
 * The data-connection broker's control side: each control connection's
 * table of data ports, passive mode (PASV, EPSV: a port of data_ports the
 * client connects to, relayed to the backend's passive port), and the
 * answers filter_ftp asks for (busy, broken, ABOR). Active mode is
 * ftp_active.c's.
 */

#include "ftp_data_int.h"
#include "backend.h"
#include "conn.h"
#include "conn_int.h"
#include "cfg.h"
#include "log.h"
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

void ftp_refuse_cmd(struct ftp_ctl *f, const char *fmt, ...)
{
	char text[256];
	va_list ap;

	if (f->refusals++ > 0)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_warnx("[%s] client=%s: %s", cl_of(f)->name, f->c->peer, text);
}

unsigned ftp_nslots(const struct ftp_ctl *f)
{
	unsigned n = 0;

	for (size_t i = 0; i < MAX_SLOTS; i++)
		n += f->slots[i] != NULL;
	return n;
}

int ftp_transfer_pending(const struct ftp_ctl *f)
{
	return f->filter_state != NULL && filter_ftp_transfer_pending(f->filter_state);
}

void ftp_charge_cut(struct ftp_ctl *f)
{
	if (ftp_transfer_pending(f))
		f->broken++;
}

/* The port stops listening (claimed or released); refusals after the
 * first one logged are summed up in one line (see ftp_refuse_conn()). */
static void close_port(struct ftp_slot *s)
{
	if (s->refused > 1 && s->ctl != NULL)
		log_warnx("[%s] %sdata port %u: %u more connections from other "
		          "addresses refused (%s)", cl_of(s->ctl)->name,
		          s->active ? "active " : "", s->port, s->refused - 1,
		          s->control);
	close(s->lfd);
	s->lfd = -1;
}

void ftp_slot_release(struct ftp_slot *s)
{
	struct ftp_ctl *f = s->ctl;

	if (s->lfd >= 0) {
		if (f != NULL) {
			ev_io_stop(loop_of(f), &s->io);
			ev_timer_stop(loop_of(f), &s->timer);
		}
		close_port(s);
	}
	if (f != NULL)
		for (size_t i = 0; i < MAX_SLOTS; i++)
			if (f->slots[i] == s)
				f->slots[i] = NULL;
	s->ctl = NULL;
	if (s->data == NULL)
		free(s);
}

/* A dual-stack listener ("listen = PORT") sees an IPv4 client as
 * ::ffff:a.b.c.d: the client, its own address in PORT or EPRT, and the
 * data ports are compared and bound as IPv4 a.b.c.d (conn_addr_unmap()). */
void ftp_unmap_sockaddr(struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in s4 = {.sin_family = AF_INET};

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return;
	s4.sin_port = s6->sin6_port;
	memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &s4, sizeof(s4));
	*len = sizeof(s4);
}

int ftp_same_host(const struct conn_addr *a, const struct sockaddr *sa)
{
	struct conn_addr x = *a, b = {0};

	conn_addr_keep(&b, sa);
	conn_addr_unmap(&x);
	conn_addr_unmap(&b);
	return x.family == b.family &&
	       memcmp(x.ip, b.ip, x.family == AF_INET ? 4 : 16) == 0;
}

void ftp_stop_listening(struct ftp_slot *s)
{
	ev_io_stop(loop_of(s->ctl), &s->io);
	ev_timer_stop(loop_of(s->ctl), &s->timer);
	close_port(s);
}

/* A connection to s's port from an address it is not for (fd, from ss):
 * closed, and the port stays open for the one it is for. Only the first
 * is logged: anyone who can reach data_ports could otherwise write a log
 * line a connection for as long as the port waits. */
void ftp_refuse_conn(struct ftp_slot *s, int fd, const struct sockaddr_storage *ss,
                   socklen_t len, const char *whose)
{
	char peer[ADDR_STRLEN];

	close(fd);
	if (s->refused++ > 0)
		return;
	addr_format((const struct sockaddr *)ss, len, peer, sizeof(peer));
	log_warnx("[%s] %sdata port %u: connection from %s refused, not the "
	          "%s address (%s)", cl_of(s->ctl)->name, s->active ? "active " : "",
	          s->port, peer, whose, s->control);
}

/* Take one connection from s's accept queue: 0 if there was one (s may
 * be claimed, released or even freed after), -1 if the queue was empty. */
static int accept_one(struct ftp_slot *s)
{
	struct ftp_ctl *f = s->ctl;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd;

	fd = accept4(s->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0 && (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
	    errno == ENOMEM)) {
		/* The connection stays queued and the port readable: waiting
		 * for a descriptor here would run this every loop iteration. */
		log_warn("[%s] %sdata port %u: cannot accept; released (%s)",
		         cl_of(f)->name, s->active ? "active " : "", s->port, s->control);
		ftp_slot_release(s);
		return 0;
	}
	if (fd < 0)
		return -1;
	if (s->active) {
		ftp_active_accept(s, fd, &ss, len);
		return 0;
	}
	if (cl_of(f)->ftp_peer_check && !ftp_same_host(&f->c->client, (struct sockaddr *)&ss)) {
		/* Someone else found the port: it stays the client's. */
		ftp_refuse_conn(s, fd, &ss, len, "control client's");
		return 0;
	}
	ftp_stop_listening(s);
	/* From here the data connection holds s; it may be over (and s
	 * freed) before conn_ftp_new_data returns. */
	conn_ftp_new_data(f->c->svc, fd, (struct sockaddr *)&ss, len, s,
	                  f->filter_state == NULL || filter_ftp_private(f->filter_state));
	return 0;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	(void)accept_one(w->data);
}

/* Empty the accept queue of f's port at i until one connection claims
 * it (or the port is released). A connection made before a command was
 * read can still wait there: libev runs the callbacks of one poll last
 * first, so the control connection's may come before the port's. The
 * queue holds at most listen()'s backlog + 1. */
static void take_queued(struct ftp_ctl *f, size_t i)
{
	for (int n = 0; n < 8; n++) {
		struct ftp_slot *s = f->slots[i];

		if (s == NULL || s->lfd < 0 || accept_one(s) < 0)
			return;
	}
}

static void on_unclaimed(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ftp_slot *s = w->data;

	(void)loop;
	(void)revents;
	log_info("[%s] %sdata port %u unclaimed for %.0fs: released (%s)",
	         cl_of(s->ctl)->name, s->active ? "active " : "", s->port,
	         FTP_CLAIM_SECS, s->control);
	ftp_slot_release(s);
}

/* s, listening on s->lfd, goes into f's table at i: it waits
 * FTP_CLAIM_SECS for its one connection (passive: the client's, active:
 * the backend's). */
void ftp_slot_arm(struct ftp_ctl *f, struct ftp_slot *s, size_t i)
{
	memcpy(s->sid, f->sid, sizeof(s->sid));
	snprintf(s->control, sizeof(s->control), "%s", f->c->peer);
	ev_io_init(&s->io, on_accept, s->lfd, EV_READ);
	s->io.data = s;
	ev_io_start(loop_of(f), &s->io);
	ev_timer_init(&s->timer, on_unclaimed, FTP_CLAIM_SECS, 0.);
	s->timer.data = s;
	ev_timer_start(loop_of(f), &s->timer);
	f->slots[i] = s;
}

/* Bind a free port of the range on the control connection's local
 * address; the fd, or -1. */
static int bind_port(struct ftp_ctl *f, const struct sockaddr_storage *local,
                     socklen_t llen, unsigned *port)
{
	const struct cfg_listener *l = cl_of(f);
	unsigned span = l->ftp_data_high - l->ftp_data_low + 1, start;
	struct sockaddr_storage ss = *local;
	int fd;

	if (getrandom(&start, sizeof(start), GRND_NONBLOCK) != sizeof(start))
		start = (unsigned)getpid();
	fd = -1;
	for (unsigned i = 0; i < span; i++) {
		unsigned p = l->ftp_data_low + (start + i) % span;
		int one = 1;

		/* SO_REUSEADDR: a port whose last connection portier closed
		 * first sits in TIME_WAIT for a minute, and a client that sends
		 * close_notify but holds back its FIN could so take every port
		 * of the range without holding one. Its data connections have
		 * it too (inherited), so a port is only ever refused while
		 * another socket listens on it: that one fails at listen(). */
		if (fd < 0 &&
		    ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
		     setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0))
			break;
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)p);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)p);
		if (bind(fd, (struct sockaddr *)&ss, llen) == 0) {
			if (listen(fd, 4) == 0) {
				*port = p;
				return fd;
			}
			if (errno != EADDRINUSE)
				break;
			/* Another worker listens there: a bound socket cannot be
			 * bound again, so the next port gets a new one. */
			close(fd);
			fd = -1;
			continue;
		}
		if (errno != EADDRINUSE)
			break;
	}
	if (fd >= 0)
		close(fd);
	return -1;
}

static int passive(void *ctx, int epsv, const uint8_t *addr, unsigned port,
                   uint8_t pub[4], unsigned *pub_port)
{
	struct ftp_ctl *f = ctx;
	const struct cfg_listener *l = cl_of(f);
	struct sockaddr_storage local, back;
	socklen_t llen = sizeof(local), blen = sizeof(back);
	struct ftp_slot *s;
	size_t i;

	/* A new PASV or EPSV replaces a passive port no connection has
	 * claimed yet, as the server's own new passive port replaces its
	 * last: a client that connects only after a 150 and meets two
	 * refused RETRs must not be out of ports. Not while a transfer
	 * command waits for its reply: that port may be its own. */
	for (i = 0; i < MAX_SLOTS && !ftp_transfer_pending(f); i++) {
		if (f->slots[i] == NULL || f->slots[i]->active)
			continue;
		take_queued(f, i);	/* a connection already made claims it */
		if (f->slots[i] != NULL && f->slots[i]->lfd >= 0 &&
		    f->slots[i]->data == NULL)
			ftp_slot_release(f->slots[i]);
	}
	if (ftp_nslots(f) >= l->ftp_max_data) {
		ftp_refuse_cmd(f, "max_data_connections (%u) reached; refusing passive "
		           "mode", l->ftp_max_data);
		return -1;
	}
	if (getsockname(f->c->cfd, (struct sockaddr *)&local, &llen) < 0 ||
	    getpeername(f->c->bfd, (struct sockaddr *)&back, &blen) < 0)
		return -1;
	ftp_unmap_sockaddr(&local, &llen);
	/* The backend's data port is on the backend: a 227 naming another
	 * host would have portier connect wherever the backend says. */
	if (back.ss_family == AF_INET) {
		struct sockaddr_in *b4 = (struct sockaddr_in *)&back;
		if (!epsv && memcmp(&b4->sin_addr, addr, 4) != 0) {
			ftp_refuse_cmd(f, "backend named a passive address that is not "
			           "its own; refused");
			return -1;
		}
		b4->sin_port = htons((uint16_t)port);
	} else if (back.ss_family == AF_INET6 && epsv) {
		((struct sockaddr_in6 *)&back)->sin6_port = htons((uint16_t)port);
	} else {
		return -1;
	}
	if (!epsv) {
		static const uint8_t zero[4];
		if (memcmp(l->ftp_public_v4, zero, 4) != 0)
			memcpy(pub, l->ftp_public_v4, 4);
		else if (local.ss_family == AF_INET)
			memcpy(pub, &((struct sockaddr_in *)&local)->sin_addr, 4);
		else
			return -2;	/* a 227 names IPv4 only: the client should EPSV */
	}
	for (i = 0; i < MAX_SLOTS && f->slots[i] != NULL; i++)
		continue;
	if (i == MAX_SLOTS || (s = calloc(1, sizeof(*s))) == NULL)
		return -1;
	if ((s->lfd = bind_port(f, &local, llen, &s->port)) < 0) {
		ftp_refuse_cmd(f, "no free data port in %u-%u", l->ftp_data_low,
		           l->ftp_data_high);
		free(s);
		return -1;
	}
	s->ctl = f;
	memcpy(&s->backend.ss, &back, blen);
	s->backend.len = blen;
	s->backend.port = (int)port;
	ftp_slot_arm(f, s, i);
	*pub_port = s->port;
	return 0;
}

/* filter_ftp's env.busy: a data connection of f is still under way, so a
 * transfer's final reply waits for it. */
static int busy(void *ctx)
{
	struct ftp_ctl *f = ctx;

	for (size_t i = 0; i < MAX_SLOTS; i++) {
		struct ftp_slot *s = f->slots[i];
		/* Active mode: the server connected to the port before it
		 * sent this reply, but the connection may still wait in the
		 * accept queue (a small file is written, and 226 said, before
		 * this loop comes round to the port). Take it now, so that the
		 * reply waits for it: if the client cannot be reached, the
		 * reply becomes 426, never 226. */
		if (s != NULL && s->active) {
			take_queued(f, i);
			s = f->slots[i];	/* released if the client failed */
		}
		if (s != NULL && s->data != NULL && !s->delivered)
			return 1;
	}
	return 0;
}

static int broken(void *ctx)
{
	struct ftp_ctl *f = ctx;

	if (f->broken == 0)
		return 0;
	f->broken--;
	return 1;
}

/* ABOR: the data connections end now (see filter_ftp.h). */
static void abort_data(void *ctx)
{
	struct ftp_ctl *f = ctx;

	for (size_t i = 0; i < MAX_SLOTS; i++) {
		struct conn *d = f->slots[i] ? f->slots[i]->data : NULL;
		if (d != NULL && !d->closing) {
			backend_abort(d->cfd);
			conn_close_aborted(d, CONN_WHY_CLIENT_RESET, "ABOR");
			server_conn_ready(d->svc, d);	/* freed from the run queue */
		}
	}
}

struct ftp_ctl *ftp_ctl_new(struct conn *c)
{
	struct ftp_ctl *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	if (getrandom(f->sid, sizeof(f->sid), 0) != sizeof(f->sid)) {
		free(f);
		return NULL;
	}
	f->c = c;
	f->env.prot_c_ok = c->svc->cl->ftp_prot_c_ok;
	f->env.ctx = f;
	f->env.passive = passive;
	f->env.busy = busy;
	f->env.broken = broken;
	f->env.abort = abort_data;
	if (c->svc->cl->ftp_active)
		f->env.active = ftp_active_cmd;
	return f;
}

void ftp_ctl_free(struct ftp_ctl *f)
{
	if (f == NULL)
		return;
	if (f->refusals > 1)
		log_warnx("[%s] client=%s: %u more data-channel commands refused "
		          "after the first", cl_of(f)->name, f->c->peer, f->refusals - 1);
	for (size_t i = 0; i < MAX_SLOTS; i++) {
		struct ftp_slot *s = f->slots[i];
		struct conn *d;
		if (s == NULL)
			continue;
		d = s->data;
		ftp_slot_release(s);
		/* d is in no callback (only its control is): free it now,
		 * which also serves the server's shutdown, where the run
		 * queue no longer runs. */
		if (d != NULL) {
			backend_abort(d->cfd);	/* the client sees a reset */
			conn_close_aborted(d, CONN_WHY_SHUTDOWN, "control connection closed");
			conn_stop(d, "control connection closed");
		}
	}
	free(f);
}

const uint8_t *ftp_ctl_sid(const struct ftp_ctl *f)
{
	return f->sid;
}

const struct filter_ftp_env *ftp_ctl_env(struct ftp_ctl *f, void *st)
{
	f->filter_state = st;
	return &f->env;
}

int ftp_ctl_transferring(const struct ftp_ctl *f)
{
	for (size_t i = 0; i < MAX_SLOTS; i++)
		if (f->slots[i] != NULL && f->slots[i]->data != NULL)
			return 1;
	return 0;
}

void ftp_slot_closed(struct ftp_slot *s, int cut)
{
	struct ftp_ctl *f = s->ctl;

	/* A connection that broke after all was delivered cut nothing: its
	 * transfer's reply went as the server said it. */
	if (f != NULL && cut && !s->delivered)
		ftp_charge_cut(f);
	s->data = NULL;
	ftp_slot_release(s);
	/* The control's idle time starts again when a transfer ends: a long
	 * one was no idleness of its client. */
	if (f != NULL)
		f->c->last = ev_now(loop_of(f));
	/* The transfer's last reply may wait in the control's filter. */
	if (f != NULL && !f->c->closing)
		server_conn_ready(f->c->svc, f->c);
}

void ftp_slot_attach(struct ftp_slot *s, struct conn *c)
{
	s->data = c;
}

void ftp_slot_delivered(struct ftp_slot *s)
{
	struct ftp_ctl *f = s->ctl;

	if (s->delivered)
		return;
	s->delivered = 1;
	/* The transfer's last reply may wait in the control's filter. */
	if (f != NULL && !f->c->closing)
		server_conn_ready(f->c->svc, f->c);
}

const struct addr *ftp_slot_backend(const struct ftp_slot *s)
{
	return &s->backend;
}

const uint8_t *ftp_slot_sid(const struct ftp_slot *s)
{
	return s->sid;
}

const char *ftp_slot_control(const struct ftp_slot *s)
{
	return s->control;
}
