#include "stats.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "shared.h"
#include "tlsctx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STATS_MAGIC 0x73746174u   /* "stat" */
#define REQ_MAX 2048              /* a request head longer than this: 431 */
#define DEADLINE_S 5.0            /* for the whole exchange */
#define MAX_SCRAPES 8             /* open at once per worker */
#define BUSY_BODY "503 too many scrapes open at once\n"   /* past them */

#ifndef PORTIER_BORINGSSL_SMALL
#define PORTIER_BORINGSSL_SMALL 0
#endif

struct scrape {
	uint32_t magic;
	struct server *srv;
	int fd;
	ev_io io;
	ev_timer timer;
	char req[REQ_MAX];
	size_t rlen;
	struct metrics_out out;      /* the whole reply, once known */
	size_t off;                  /* of it, sent */
	int lingering;               /* all sent: reading the client out */
	struct scrape *next, *prev;
};

static struct scrape *scrapes;   /* this worker's, open */
static unsigned nscrapes;

static void finish(struct scrape *sc)
{
	struct server *srv = sc->srv;
	struct ev_loop *loop = srv->loop;

	ev_io_stop(loop, &sc->io);
	ev_timer_stop(loop, &sc->timer);
	close(sc->fd);
	metrics_free(&sc->out);
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		scrapes = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	nscrapes--;
	sc->magic = 0;
	free(sc);
	/* A draining worker ends with its last connection or scrape. */
	if (srv->draining && srv->conns == NULL && !stats_busy(srv))
		ev_break(loop, EVBREAK_ALL);
}

int stats_busy(const struct server *srv)
{
	for (const struct scrape *sc = scrapes; sc != NULL; sc = sc->next)
		if (sc->srv == srv)
			return 1;
	return 0;
}

/* The certificates of the configuration this worker serves. */
static struct metrics_cert *certs_of(const struct server *srv, size_t *n,
                                     struct tlsctx_cert_info **infos)
{
	size_t cap = 0, k = 0;
	struct tlsctx_cert_info info;
	struct metrics_cert *mc = NULL;

	*infos = NULL;
	for (size_t i = 0; i < srv->nsvcs; i++)
		for (size_t j = 0; tlsctx_own_cert(srv->svcs[i].tls, j, &info) == 0; j++)
			cap++;
	if (cap > 0 && ((mc = calloc(cap, sizeof(*mc))) == NULL ||
	                (*infos = calloc(cap, sizeof(**infos))) == NULL)) {
		free(mc);
		*n = 0;
		return NULL;
	}
	for (size_t i = 0; i < srv->nsvcs; i++)
		for (size_t j = 0; k < cap &&
		     tlsctx_own_cert(srv->svcs[i].tls, j, &(*infos)[k]) == 0; j++, k++) {
			mc[k].listener = srv->svcs[i].cl->name;
			mc[k].subject = (*infos)[k].subject_cn;
			mc[k].serial = (*infos)[k].serial;
			mc[k].not_after = (long long)(*infos)[k].not_after;
		}
	*n = k;
	return mc;
}

/* The reply to a request head, into sc->out: one that did not end within
 * REQ_MAX is refused whole. */
static void answer(struct scrape *sc, int complete)
{
	static const struct metrics_build build = {
		PORTIER_VERSION, PORTIER_BORINGSSL_DESC, PORTIER_BORINGSSL_SMALL,
	};
	struct metrics_out body = {0};
	struct tlsctx_cert_info *infos = NULL;
	struct metrics_cert *certs;
	int head_only = 0, status = complete ? stats_reply(sc->req, sc->rlen, &head_only)
	                                     : 431;
	const char *text = status == 400 ? "Bad Request" : status == 404 ? "Not Found"
	                   : status == 405 ? "Method Not Allowed"
	                   : status == 431 ? "Request Header Fields Too Large" : "OK";
	char line[256];
	size_t ncerts = 0;
	int n;

	if (status == 200) {
		certs = certs_of(sc->srv, &ncerts, &infos);
		if (metrics_render(&body, shared_get(), &build, certs, ncerts) < 0) {
			status = 500;
			text = "Internal Server Error";
			metrics_free(&body);
		}
		free(certs);
		free(infos);
	}
	if (status != 200) {
		n = snprintf(line, sizeof(line), "%d %s\n", status, text);
		metrics_append(&body, line, (size_t)n);
	}
	n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n"
	             "Content-Type: %s\r\nContent-Length: %zu\r\n%s"
	             "Connection: close\r\n\r\n", status, text,
	             status == 200 ? "text/plain; version=0.0.4; charset=utf-8"
	                           : "text/plain; charset=utf-8",
	             body.len, status == 405 ? "Allow: GET, HEAD\r\n" : "");
	metrics_append(&sc->out, line, (size_t)n);
	if (!head_only || status != 200)
		metrics_append(&sc->out, body.p, body.len);
	if (body.failed)
		sc->out.failed = 1;
	metrics_free(&body);
}

/* After the reply: what the client still sends is read and dropped until
 * its end (or an error), then the scrape is over. A bounded amount a call,
 * so that a client that keeps sending shares the loop; the deadline bounds
 * it in time. */
static void linger_read(struct scrape *sc)
{
	char sink[4096];
	ssize_t r;

	for (int i = 0; i < 16; i++) {
		r = recv(sc->fd, sink, sizeof(sink), 0);
		if (r > 0)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		finish(sc);	/* its end, or an error */
		return;
	}
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	struct scrape *sc = w->data;
	int complete;
	ssize_t r;

	if (sc->magic != STATS_MAGIC)
		abort();
	if (sc->lingering) {
		linger_read(sc);
		return;
	}
	if (sc->out.len == 0) {
		r = recv(sc->fd, sc->req + sc->rlen, sizeof(sc->req) - 1 - sc->rlen, 0);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			finish(sc);
			return;
		}
		if (r < 0)
			return;
		sc->rlen += (size_t)r;
		/* By length, not strstr(): a NUL the client sent must not
		 * hide the end of its head (no reply, the deadline instead). */
		complete = memmem(sc->req, sc->rlen, "\r\n\r\n", 4) != NULL ||
		           memmem(sc->req, sc->rlen, "\n\n", 2) != NULL;
		if (!complete && sc->rlen < sizeof(sc->req) - 1)
			return;
		answer(sc, complete);
		if (sc->out.failed || sc->out.len == 0) {
			finish(sc);
			return;
		}
		ev_io_stop(loop, &sc->io);
		ev_io_set(&sc->io, sc->fd, EV_WRITE);
		ev_io_start(loop, &sc->io);
		/* Most replies fit the socket at once: try now. */
	}
	r = send(sc->fd, sc->out.p + sc->off, sc->out.len - sc->off, MSG_NOSIGNAL);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r < 0) {
		finish(sc);
		return;
	}
	sc->off += (size_t)r;
	if (sc->off == sc->out.len) {
		/* Closing with the client's bytes unread (a body, a second
		 * request, past the head read) would make the kernel reset
		 * the connection and drop what of the reply it still holds:
		 * read the client out to its end, within the deadline. */
		shutdown(sc->fd, SHUT_WR);
		sc->lingering = 1;
		ev_io_stop(loop, &sc->io);
		ev_io_set(&sc->io, sc->fd, EV_READ);
		ev_io_start(loop, &sc->io);
		linger_read(sc);
	}
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct scrape *sc = w->data;

	if (sc->magic != STATS_MAGIC)
		abort();
	finish(sc);
}

/* A scrape past MAX_SCRAPES (or out of memory) is told so in one
 * non-blocking send, rather than closed without a word. What the client
 * already sent is read first, as far as it is there: closing with it
 * unread would reset the connection under the 503. Best effort, never a
 * wait: a head still on its way meets the close. */
static void refuse_busy(int fd)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
	                           "Content-Type: text/plain; charset=utf-8\r\n"
	                           "Content-Length: 34\r\nRetry-After: 1\r\n"
	                           "Connection: close\r\n\r\n" BUSY_BODY;
	_Static_assert(sizeof(BUSY_BODY) - 1 == 34, "Content-Length of the 503");
	char sink[4096];

	for (int i = 0; i < 4 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
	if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
		shutdown(fd, SHUT_WR);
	close(fd);
}

void stats_accept(struct server *srv, int fd)
{
	struct scrape *sc;

	if (nscrapes >= MAX_SCRAPES || (sc = calloc(1, sizeof(*sc))) == NULL) {
		refuse_busy(fd);
		return;
	}
	sc->magic = STATS_MAGIC;
	sc->srv = srv;
	sc->fd = fd;
	ev_io_init(&sc->io, on_io, fd, EV_READ);
	sc->io.data = sc;
	ev_timer_init(&sc->timer, on_deadline, DEADLINE_S, 0.);
	sc->timer.data = sc;
	ev_io_start(srv->loop, &sc->io);
	ev_timer_start(srv->loop, &sc->timer);
	sc->next = scrapes;
	if (scrapes)
		scrapes->prev = sc;
	scrapes = sc;
	nscrapes++;
}

void stats_stop_all(struct server *srv)
{
	for (struct scrape *sc = scrapes, *next; sc != NULL; sc = next) {
		next = sc->next;
		if (sc->srv == srv)
			finish(sc);
	}
}
