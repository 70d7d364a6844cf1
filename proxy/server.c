#include "server.h"
#include "conn.h"
#include "log.h"
#include "shared.h"
#include "stats.h"
#include "tlsctx.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ACCEPT_BATCH 64          /* accepts per readiness event */
#define FD_RETRY_SECONDS 1.0     /* pause after EMFILE/ENFILE */
#define TICK_SECONDS 1.0         /* server_tick() */

struct tlsctx **server_prepare(const struct cfg *c, int reload, struct diag *d)
{
	struct tlsctx **tls = calloc(c->nlisteners ? c->nlisteners : 1, sizeof(*tls));
	int errors = d->errors;

	if (tls == NULL)
		return NULL;
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct cfg_listener *l = &c->listeners[i];
		if (l->mode == CFG_MODE_TLS || l->mode == CFG_MODE_STARTTLS)
			tls[i] = tlsctx_new_server(c, l, reload, d);
	}
	if (d->errors > errors) {
		for (size_t i = 0; i < c->nlisteners; i++)
			tlsctx_free(tls[i]);
		free(tls);
		return NULL;
	}
	return tls;
}

static void accepting(struct server *s, struct svc *only, int on)
{
	for (size_t i = 0; i < s->nacc; i++) {
		struct acceptor *a = &s->acc[i];
		if (only && a->svc != only)
			continue;
		/* The stats socket (svc NULL) has no max_connections, its
		 * scrapes are not connections. */
		if (on && (a->svc == NULL || (!a->svc->full && !s->full)) && !s->fd_paused &&
		    !s->draining)
			ev_io_start(s->loop, &a->io);
		else if (!on)
			ev_io_stop(s->loop, &a->io);
	}
}

static void on_fd_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *s = w->data;

	s->fd_paused = 0;
	accepting(s, NULL, 1);
}

/* Out of descriptors or memory: keep serving the connections we have; try
 * again in a moment. Logged once per episode, not per attempt. */
static void pause_accepting(struct server *s, const char *name)
{
	if (!s->fd_paused)
		log_warn("[%s] cannot accept, pausing all listeners for %.0fs", name,
		         FD_RETRY_SECONDS);
	s->fd_paused = 1;
	accepting(s, NULL, 0);
	ev_timer_set(&s->fd_retry, FD_RETRY_SECONDS, 0.);
	ev_timer_start(s->loop, &s->fd_retry);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct acceptor *a = (struct acceptor *)w;
	struct server *s = a->svc->srv;

	for (int i = 0; i < ACCEPT_BATCH && !a->svc->full && !s->full; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(w->fd, (struct sockaddr *)&ss, &len,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			conn_new(a->svc, fd, (struct sockaddr *)&ss, len);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM)
			pause_accepting(s, a->svc->cl->name);
		/* EAGAIN, or a connection that died in the queue. */
		break;
	}
}

/* Everything in a's accept queue, as far as max_connections lets (the
 * queue is bounded by the listen backlog; so is this loop); the stats
 * socket's (svc NULL) as far as its scrapes go (stats_accept answers 503
 * past them). */
static void accept_queued(struct server *s, struct acceptor *a)
{
	for (int i = 0; i < 65536 && (a->svc == NULL || (!a->svc->full && !s->full)); i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(a->io.fd, (struct sockaddr *)&ss, &len,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == ECONNABORTED)
				continue;   /* died in the queue; the next may not */
			break;
		}
		if (a->svc == NULL)
			stats_accept(s, fd);
		else
			conn_new(a->svc, fd, (struct sockaddr *)&ss, len);
	}
}

/* SIGQUIT is a stop (the master drains) when no newer configuration has
 * committed since this worker's: then the listening sockets close with
 * the last worker, and what waits in their queues is this worker's to
 * serve. After a reload the new workers hold the same sockets and take
 * the queue with the configuration it came to. */
static int stopping_for_good(const struct server *s)
{
	const struct shared *sh = shared_get();

	return sh == NULL || shared_load(&sh->generation) == s->generation;
}

/* The metrics endpoint's socket: one scrape per connection, few at once. */
static void on_stats_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct server *s = w->data;
	int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd >= 0)
		stats_accept(s, fd);
	else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
		pause_accepting(s, "stats");
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	log_notice("got signal %d, shutting down", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

static unsigned live(const struct server *s)
{
	unsigned n = 0;

	for (size_t i = 0; i < s->nsvcs; i++)
		n += s->svcs[i].nconns;
	return n;
}

static void on_drain_limit(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *s = w->data;
	unsigned n = live(s);

	log_notice("drain_timeout over with %u connection%s still open; "
	           "closing %s", n, n == 1 ? "" : "s", n == 1 ? "it" : "them");
	s->stop_reason = "drain_timeout over after SIGQUIT";
	ev_break(loop, EVBREAK_ALL);
}

void server_tick(struct server *s, time_t now)
{
	/* The ticket callback advances the keys too, but only when a
	 * handshake comes: without this, an idle worker would hold a secret
	 * that can decrypt old tickets for as long as it stays idle. */
	for (size_t i = 0; i < s->nsvcs; i++)
		tlsctx_tick(s->svcs[i].tls, now);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	server_tick(w->data, time(NULL));
}

/* A new configuration's workers have taken over the listening sockets,
 * or the master drains (a graceful stop): give up this worker's copies at
 * once, so that a listener no one serves really closes, and end when the
 * open connections have. */
static void on_quit(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct server *s = w->data;

	if (s->draining)
		return;
	s->draining = 1;
	/* Connections the kernel has completed but no one has accepted yet
	 * die with the listening socket's last descriptor: a client (or a
	 * load balancer that cannot redispatch once it has sent the
	 * ClientHello) would see a reset. The master closed its copies
	 * first, so the worker that closes last leaves a window of one
	 * accept(2) call. Served like any other during the drain (scrapes
	 * too). Not on a reload: the queue is the new workers'. */
	if (!s->fd_paused && stopping_for_good(s))
		for (size_t i = 0; i < s->nacc; i++)
			accept_queued(s, &s->acc[i]);
	accepting(s, NULL, 0);
	ev_timer_stop(loop, &s->fd_retry);
	for (size_t i = 0; i < s->set->n; i++) {
		if (s->set->socks[i].fd >= 0)
			close(s->set->socks[i].fd);
		s->set->socks[i].fd = -1;
	}
	/* What holds nothing in flight ends now, not at its idle_timeout. */
	for (struct conn *c = s->conns, *next; c != NULL; c = next) {
		next = c->next;
		conn_drain(c);
	}
	log_info("SIGQUIT: no longer accepting; draining %u connection%s", live(s),
	         live(s) == 1 ? "" : "s");
	if (s->conns == NULL && !stats_busy(s)) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	ev_timer_set(&s->drain_limit, s->cfg->drain_timeout_ms / 1000.0, 0.);
	ev_timer_start(loop, &s->drain_limit);
}

/* Once per loop iteration: each queued connection gets one turn; one
 * that still has bytes in memory queues itself again for the next. The
 * turn's batch is the server's (s->rq_batch), not a local list: a turn
 * may free another connection of it (an FTP control connection its data
 * connections) or queue one (ABOR, a data connection's end), which
 * server_conn_unready() and server_conn_ready() then see. */
static void on_runq(struct ev_loop *loop, ev_check *w, int revents)
{
	struct server *s = w->data;
	struct conn *c;

	s->rq_batch = s->runq;
	s->runq = NULL;
	for (c = s->rq_batch; c; c = c->rq_next)
		c->rq_batch = 1;	/* still queued: it runs in this turn */
	while ((c = s->rq_batch) != NULL) {
		s->rq_batch = c->rq_next;
		if (s->rq_batch)
			s->rq_batch->rq_prev = NULL;
		c->rq_next = c->rq_prev = NULL;
		c->queued = c->rq_batch = 0;
		conn_run(c);
	}
	if (s->runq == NULL) {
		ev_check_stop(loop, &s->runq_check);
		ev_idle_stop(loop, &s->runq_idle);
	}
}

static void on_runq_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
	/* Nothing: being active is what keeps the poll from waiting. */
}

void server_conn_ready(struct svc *svc, struct conn *c)
{
	struct server *s = svc->srv;

	if (c->queued)
		return;
	c->queued = 1;
	c->rq_prev = NULL;
	c->rq_next = s->runq;
	if (s->runq)
		s->runq->rq_prev = c;
	s->runq = c;
	ev_check_start(s->loop, &s->runq_check);
	ev_idle_start(s->loop, &s->runq_idle);
}

void server_conn_unready(struct svc *svc, struct conn *c)
{
	struct server *s = svc->srv;

	if (!c->queued)
		return;
	if (c->rq_prev)
		c->rq_prev->rq_next = c->rq_next;
	else if (c->rq_batch)
		s->rq_batch = c->rq_next;
	else
		s->runq = c->rq_next;
	if (c->rq_next)
		c->rq_next->rq_prev = c->rq_prev;
	c->rq_next = c->rq_prev = NULL;
	c->queued = c->rq_batch = 0;
}

int server_init(struct server *s, struct ev_loop *loop, const struct cfg *c,
                struct tlsctx **tls, struct listener_set *set)
{
	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->cfg = c;
	s->set = set;
	s->stop_reason = "portier shutting down";
	s->nsvcs = c->nlisteners;
	s->svcs = calloc(s->nsvcs ? s->nsvcs : 1, sizeof(*s->svcs));
	s->acc = calloc(set->n ? set->n : 1, sizeof(*s->acc));
	if (s->svcs == NULL || s->acc == NULL) {
		free(s->svcs);
		free(s->acc);
		return -1;
	}
	for (size_t i = 0; i < s->nsvcs; i++) {
		s->svcs[i].cl = &c->listeners[i];
		s->svcs[i].tls = tls ? tls[i] : NULL;
		s->svcs[i].srv = s;
		/* Found by name, so that a listener that stays across a reload
		 * keeps counting where it did (the master claimed the slot). */
		s->svcs[i].stats = shared_slot(shared_get(), c->listeners[i].name);
	}
	free(tls);
	s->nacc = set->n;
	for (size_t i = 0; i < set->n; i++) {
		if (set->socks[i].listener == LISTENER_STATS) {
			s->acc[i].svc = NULL;
			ev_io_init(&s->acc[i].io, on_stats_accept, set->socks[i].fd, EV_READ);
			s->acc[i].io.data = s;
			continue;
		}
		s->acc[i].svc = &s->svcs[set->socks[i].listener];
		ev_io_init(&s->acc[i].io, on_accept, set->socks[i].fd, EV_READ);
	}
	ev_init(&s->fd_retry, on_fd_retry);
	s->fd_retry.data = s;
	ev_init(&s->drain_limit, on_drain_limit);
	s->drain_limit.data = s;
	ev_timer_init(&s->tick, on_tick, TICK_SECONDS, TICK_SECONDS);
	s->tick.data = s;
	ev_signal_init(&s->sig_term, on_signal, SIGTERM);
	ev_signal_init(&s->sig_int, on_signal, SIGINT);
	ev_signal_init(&s->sig_quit, on_quit, SIGQUIT);
	s->sig_quit.data = s;
	ev_check_init(&s->runq_check, on_runq);
	s->runq_check.data = s;
	ev_idle_init(&s->runq_idle, on_runq_idle);
	return 0;
}

/* The loop is over and the worker on its way out: a stop signal the
 * master passes on again (a supervisor repeating SIGTERM, each one passed
 * to every worker) must not cut that short. libev gives a signal whose
 * watcher stops its default action back (or unblocks it, with a
 * signalfd), and a SIGTERM then killed the worker: "killed" counts as an
 * unclean stop, and a sanitizer's report was lost. So: blocked, ignored
 * (which drops one pending), the watchers stopped, ignored again, and
 * only then unblocked. */
static void stop_signals(struct server *s)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGQUIT};
	sigset_t set;

	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_IGN);
	ev_signal_stop(s->loop, &s->sig_term);
	ev_signal_stop(s->loop, &s->sig_int);
	ev_signal_stop(s->loop, &s->sig_quit);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_IGN);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
}

void server_run(struct server *s)
{
	ev_signal_start(s->loop, &s->sig_term);
	ev_signal_start(s->loop, &s->sig_int);
	ev_signal_start(s->loop, &s->sig_quit);
	{
		/* The master forks with SIGQUIT blocked; now it has a watcher. */
		sigset_t quit;
		sigemptyset(&quit);
		sigaddset(&quit, SIGQUIT);
		sigprocmask(SIG_UNBLOCK, &quit, NULL);
	}
	accepting(s, NULL, 1);
	ev_timer_start(s->loop, &s->tick);
	ev_run(s->loop, 0);
	accepting(s, NULL, 0);
	ev_timer_stop(s->loop, &s->fd_retry);
	ev_timer_stop(s->loop, &s->drain_limit);
	ev_timer_stop(s->loop, &s->tick);
	ev_check_stop(s->loop, &s->runq_check);
	ev_idle_stop(s->loop, &s->runq_idle);
	while (s->conns)
		conn_stop(s->conns, s->stop_reason);
	stats_stop_all(s);
	stop_signals(s);
	/* The worker's last lines may have been dropped with nothing after
	 * them to carry the warning. */
	log_flush_drops();
}

void server_free(struct server *s)
{
	for (size_t i = 0; i < s->nsvcs; i++)
		tlsctx_free(s->svcs[i].tls);
	free(s->svcs);
	free(s->acc);
	memset(s, 0, sizeof(*s));
}

void server_conn_opened(struct svc *svc, struct conn *c)
{
	struct server *s = svc->srv;

	c->next = s->conns;
	c->prev = NULL;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	if (++svc->nconns >= svc->cl->max_connections && !svc->full) {
		log_warnx("[%s] max_connections (%u) reached; not accepting until "
		          "one closes", svc->cl->name, svc->cl->max_connections);
		svc->full = 1;
		accepting(s, svc, 0);
	}
	if (++s->nconns >= s->cfg->max_connections && s->cfg->max_connections &&
	    !s->full) {
		log_warnx("max_connections (%u) of [portier] reached by this worker; "
		          "not accepting on any listener until one closes",
		          s->cfg->max_connections);
		s->full = 1;
		/* The metrics endpoint goes on: its scrapes are not connections,
		 * and a full worker is when an admin looks. */
		for (size_t i = 0; i < s->nacc; i++)
			if (s->acc[i].svc != NULL)
				ev_io_stop(s->loop, &s->acc[i].io);
	}
}

void server_conn_closed(struct svc *svc, struct conn *c)
{
	struct server *s = svc->srv;

	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	svc->nconns--;
	if (svc->full && svc->nconns < svc->cl->max_connections) {
		svc->full = 0;
		accepting(s, svc, 1);
	}
	if (--s->nconns < s->cfg->max_connections && s->full) {
		s->full = 0;
		accepting(s, NULL, 1);
	}
	if (s->draining && s->conns == NULL && !stats_busy(s))
		ev_break(s->loop, EVBREAK_ALL);
}
