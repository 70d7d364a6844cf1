/*
 * loadgen: a single-threaded epoll TLS load generator for the benchmarks.
 *
 * One process, one core, non-blocking sockets and BoringSSL memory-cheap
 * client objects. Every connection is a small state machine:
 *
 *   CONNECTING -> HANDSHAKE -> WRITE request -> READ response -> (next)
 *
 * and the mode decides what "next" is:
 *   full      close, open a new connection (no session offered)
 *   resume    close, open a new connection offering the newest TLS 1.3
 *             ticket; SSL_session_reused() is checked on every one
 *   keepalive send the next request on the same connection (latency kept);
 *             with -R RATE at a fixed rate instead (open loop, below)
 *   bulk      same as keepalive, with large responses (MiB/s reported)
 *   idle      hold the connection; once all N are up print "ready N" and
 *             wait for SIGUSR1/SIGTERM/SIGINT (or the duration)
 *   starttls-smtp, starttls-imap
 *             a plaintext dialogue comes first (PRE): read the greeting,
 *             (SMTP: EHLO and its multi-line 250,) STARTTLS and its go-ahead;
 *             then a full TLS handshake (no session offered, no ALPN), one
 *             command inside TLS answered by the backend (SMTP "EHLO x" ->
 *             250, IMAP "a1 NOOP" -> "a1 OK"), close, open a new connection.
 *             "reqs" counts the sessions completed end to end.
 *
 * Keepalive is closed loop by default: a connection sends its next request
 * when the last response is in, so the rate is whatever the slowest party
 * (often this process) manages, and the latency includes our own queueing.
 * -R RATE makes it open loop: RATE requests per second in total, request k
 * of connection i due at t0 + (k * conns + i) / RATE, so every connection
 * keeps its own fixed schedule and the starts are staggered. The schedule
 * starts once every connection's handshake is done. Latency counts from when
 * a request was due, not when it went out: a response still outstanding at
 * the next due time holds that request back and the wait is charged to it
 * (no coordinated omission). If fewer than 99 % of RATE are answered the
 * result says behind=1 and the percentiles describe a queue, not the proxy.
 *
 * The run is bounded by -d seconds and -n operations, whichever comes first,
 * and only connects to loopback addresses. The result is one line of
 * key=value pairs on stdout, for scripts/bench to parse.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum mode { M_FULL, M_RESUME, M_KEEPALIVE, M_BULK, M_IDLE, M_SMTP, M_IMAP, M_NMODES };
/* S_WAIT: fixed rate, connected and idle until the next request is due. */
enum state { S_FREE, S_CONNECTING, S_PRE, S_HANDSHAKE, S_WRITE, S_READ, S_HELD, S_WAIT };
#define MAIL_MODE(m) ((m) == M_SMTP || (m) == M_IMAP)

/* What a mail reply line means to the step waiting for it. */
enum expect { E_SMTP_220, E_SMTP_250, E_IMAP_GREETING, E_IMAP_TAG_A, E_IMAP_TAG_A1 };

struct lconn {
	int fd;
	enum state st;
	SSL *ssl;
	uint64_t t_req;		/* when the request was sent (fixed rate: due), ns */
	uint64_t seq;		/* fixed rate: requests sent, i.e. the next one's index */
	uint64_t t_idle;	/* fixed rate: when it last entered S_WAIT (ns) */
	size_t hdr_len;		/* bytes of response header collected */
	long long body_left;	/* -1 while the header is incomplete */
	int pre;		/* mail modes: step of the plaintext dialogue */
	char hdr[1024];
};

static const char *const mode_names[] = { "full", "resume", "keepalive", "bulk", "idle",
	"starttls-smtp", "starttls-imap" };

static struct {
	enum mode mode;
	struct sockaddr_in addr;
	int conc;
	double duration;
	long long max_ops;
	const char *path;
	const char *sni;
	int tls12;
	int quiet_errors;
	double rate;		/* -R: requests/s in total; 0 = closed loop */
} opt = { M_FULL, { 0 }, 32, 5.0, 0, NULL, "localhost", 0, 0, 0 };

struct samples {
	uint32_t *v;		/* ns, saturating at 4.29 s */
	size_t n, cap;
};

static struct {
	long long conns;	/* connections whose handshake completed */
	long long reused;	/* of those, resumed */
	long long reqs;		/* responses read in full */
	long long bytes;	/* response body bytes */
	long long errors;
	long long peer_closed;	/* idle: connections the proxy closed */
	struct samples lat;	/* request latency (keepalive, bulk) */
	struct samples lag;	/* fixed rate: how late requests left idle connections */
} st;

/*
 * The fixed-rate schedule: slot n (connection n % conns) is due at
 * t0 + n * gap. Slots only say when to look at a connection; each one
 * computes its own due time from its seq, so one that fell behind catches
 * up by itself when its response comes in.
 */
static struct {
	double gap;		/* ns between two slots */
	uint64_t t0;		/* 0 until every connection is up */
	uint64_t slot;		/* next slot to look at */
} sched;

static const char *last_version = "-", *last_cipher = "-", *last_group = "-";
static SSL_CTX *ctx;
static SSL_SESSION *ticket;	/* newest session, for resume mode */
static int epfd;
static struct lconn *conns;
static char reqbuf[256];
static size_t reqlen;
static volatile sig_atomic_t stop_sig;
static int stopping;
static int priming;	/* the one connection before the run */

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
on_signal(int sig)
{
	stop_sig = sig;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen -m full|resume|keepalive|bulk|idle|starttls-smtp|starttls-imap\n"
	    "               -a 127.0.0.1:PORT\n"
	    "               [-c CONNS] [-d SECONDS] [-n OPS] [-p PATH] [-s SNI] [-2]\n"
	    "               [-R RATE]\n"
	    "  -c  concurrent connections (idle: connections to hold)\n"
	    "  -d  duration bound in seconds (idle: how long to hold at most)\n"
	    "  -n  bound on operations (handshakes or requests); 0 = none\n"
	    "  -p  request path (default /, keepalive /1k, bulk /1m)\n"
	    "  -2  TLS 1.2 only (default: TLS 1.2 and 1.3, 1.3 negotiated)\n"
	    "  -R  keepalive only: open loop at RATE requests/s in total, spread evenly\n"
	    "      over the connections; latency counts from each request's due time\n");
	exit(2);
}

/* Keep the newest ticket: TLS 1.3 servers send them after the handshake. */
static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	if (!SSL_SESSION_is_resumable(sess))
		return 0;
	if (ticket != NULL)
		SSL_SESSION_free(ticket);
	ticket = sess;
	return 1;	/* we took the reference */
}

static void
conn_free(struct lconn *c, int hard)
{
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		if (hard) {
			/* RST instead of FIN: no TIME_WAIT piling up on loopback ports. */
			struct linger l = { 1, 0 };
			setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		}
		close(c->fd);
		c->fd = -1;
	}
	c->st = S_FREE;
}

static void
conn_error(struct lconn *c, const char *what)
{
	st.errors++;
	if (!opt.quiet_errors && st.errors <= 5) {
		unsigned long e = ERR_get_error();
		char buf[256];

		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, "loadgen: %s: %s (errno %d)\n", what, e ? buf : "-", errno);
	}
	ERR_clear_error();
	conn_free(c, 1);
}

static int
conn_open(struct lconn *c)
{
	struct epoll_event ev;
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_error(c, "socket");
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&opt.addr, sizeof(opt.addr)) < 0 &&
	    errno != EINPROGRESS) {
		conn_error(c, "connect");
		return -1;
	}
	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || !SSL_set_fd(c->ssl, c->fd)) {
		conn_error(c, "SSL_new");
		return -1;
	}
	SSL_set_tlsext_host_name(c->ssl, opt.sni);
	if (opt.mode == M_RESUME && ticket != NULL)
		SSL_set_session(c->ssl, ticket);
	SSL_set_connect_state(c->ssl);
	c->st = MAIL_MODE(opt.mode) ? S_PRE : S_CONNECTING;
	c->pre = 0;
	c->hdr_len = 0;
	/* Edge-triggered: step() always runs until BoringSSL wants I/O. */
	ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = c;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		conn_error(c, "epoll_ctl");
		return -1;
	}
	return 0;
}

static int
ops_done(void)
{
	if (opt.max_ops <= 0)
		return 0;
	if (opt.mode == M_FULL || opt.mode == M_RESUME)
		return st.conns >= opt.max_ops;
	return st.reqs >= opt.max_ops;	/* mail modes: whole sessions */
}

static void
record(struct samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1 << 16;
		uint32_t *n = realloc(s->v, ncap * sizeof(*n));

		if (n == NULL)
			return;
		s->v = n;
		s->cap = ncap;
	}
	s->v[s->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/* Parse the status line and Content-Length once the header is complete. */
static int
parse_header(struct lconn *c, size_t *hdr_end)
{
	char *end, *p;

	c->hdr[c->hdr_len] = '\0';
	end = strstr(c->hdr, "\r\n\r\n");
	if (end == NULL)
		return c->hdr_len + 1 >= sizeof(c->hdr) ? -1 : 0;
	if (strncmp(c->hdr, "HTTP/1.1 200", 12) != 0)
		return -1;
	p = strcasestr(c->hdr, "\r\nContent-Length:");
	if (p == NULL || p > end)
		return -1;
	c->body_left = strtoll(p + 17, NULL, 10);
	*hdr_end = (size_t)(end + 4 - c->hdr);
	return 1;
}

static void step(struct lconn *c);

/*
 * Mail modes: judge one complete reply line (CRLF stripped) against what the
 * current step waits for: 1 = the reply is complete, 0 = more lines follow
 * (SMTP "250-", IMAP untagged "* "), -1 = not what a working server says.
 */
static int
mail_line(enum expect e, const char *l)
{
	switch (e) {
	case E_SMTP_220:
	case E_SMTP_250:
		if (strncmp(l, e == E_SMTP_220 ? "220" : "250", 3) != 0)
			return -1;
		return l[3] == ' ' || l[3] == '\0' ? 1 : l[3] == '-' ? 0 : -1;
	case E_IMAP_GREETING:
		return strncmp(l, "* OK", 4) == 0 ? 1 : -1;
	case E_IMAP_TAG_A:
	case E_IMAP_TAG_A1:
		if (strncmp(l, "* ", 2) == 0)
			return 0;
		return strncmp(l, e == E_IMAP_TAG_A ? "a OK" : "a1 OK",
		    e == E_IMAP_TAG_A ? 4 : 5) == 0 ? 1 : -1;
	}
	return -1;
}

/*
 * Take the complete lines in c->hdr: 1 when the reply is complete (the rest
 * of the buffer is dropped: a server says nothing more until we speak), 0
 * when more is needed, -1 on a bad reply or an oversized one.
 */
static int
mail_reply(struct lconn *c, enum expect e)
{
	char *p = c->hdr, *nl;
	size_t left = c->hdr_len;
	int r;

	while ((nl = memchr(p, '\n', left)) != NULL) {
		*nl = '\0';
		if (nl > p && nl[-1] == '\r')
			nl[-1] = '\0';
		r = mail_line(e, p);
		if (r != 0) {
			c->hdr_len = 0;
			return r;
		}
		left -= (size_t)(nl + 1 - p);
		p = nl + 1;
	}
	memmove(c->hdr, p, left);
	c->hdr_len = left;
	return left + 1 >= sizeof(c->hdr) ? -1 : 0;
}

/* Plaintext send of a short command on an otherwise empty socket. */
static int
mail_send(struct lconn *c, const char *cmd)
{
	size_t len = strlen(cmd);

	return send(c->fd, cmd, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/*
 * The plaintext dialogue before TLS. Steps, SMTP: 0 greeting -> EHLO,
 * 1 250 reply -> STARTTLS, 2 220 go-ahead -> TLS. IMAP: 0 greeting ->
 * "a STARTTLS", 1 "a OK" -> TLS. Returns 1 when TLS may start, 0 on EAGAIN,
 * -1 after an error (the connection is freed).
 */
static int
mail_pre(struct lconn *c)
{
	static const enum expect smtp_steps[] = { E_SMTP_220, E_SMTP_250, E_SMTP_220 };
	static const enum expect imap_steps[] = { E_IMAP_GREETING, E_IMAP_TAG_A };
	static const char *const smtp_cmds[] = { "EHLO loadgen\r\n", "STARTTLS\r\n", NULL };
	static const char *const imap_cmds[] = { "a STARTTLS\r\n", NULL };
	int smtp = opt.mode == M_SMTP;

	for (;;) {
		ssize_t n = recv(c->fd, c->hdr + c->hdr_len, sizeof(c->hdr) - 1 - c->hdr_len, 0);
		int r;

		if (n == 0) {
			errno = 0;
			conn_error(c, "closed before TLS");
			return -1;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			conn_error(c, "recv before TLS");
			return -1;
		}
		c->hdr_len += (size_t)n;
		r = mail_reply(c, smtp ? smtp_steps[c->pre] : imap_steps[c->pre]);
		if (r < 0) {
			conn_error(c, "bad reply before TLS");
			return -1;
		}
		if (r == 0)
			continue;
		{
			const char *cmd = smtp ? smtp_cmds[c->pre] : imap_cmds[c->pre];

			c->pre++;
			if (cmd == NULL)
				return 1;	/* go-ahead read: the ClientHello is next */
			if (mail_send(c, cmd) < 0) {
				conn_error(c, "send before TLS");
				return -1;
			}
		}
	}
}

static void
send_request(struct lconn *c)
{
	c->st = S_WRITE;
	c->hdr_len = 0;
	c->body_left = -1;
	c->t_req = now_ns();
}

static uint64_t
slot_time(uint64_t slot)
{
	return sched.t0 + (uint64_t)((double)slot * sched.gap);
}

/* Fixed rate: when the connection's next request is due. */
static uint64_t
conn_due(const struct lconn *c)
{
	return slot_time(c->seq * (uint64_t)opt.conc + (uint64_t)(c - conns));
}

static void
wait_turn(struct lconn *c, uint64_t now)
{
	c->st = S_WAIT;
	c->t_idle = now;
}

/*
 * Fixed rate: start the connection's next request if it is due. Its latency
 * will count from the due time, so a late response that held it back is
 * charged to the proxy. Returns 1 when a request was started (the caller
 * must step() the connection unless it is inside step() already).
 */
static int
send_if_due(struct lconn *c, uint64_t now)
{
	uint64_t due;

	if (c->st != S_WAIT || sched.t0 == 0 || stopping)
		return 0;
	due = conn_due(c);
	if (due > now)
		return 0;
	/* Idle since before it was due: the delay is ours (timer, our core), not the proxy's. */
	if (c->t_idle <= due)
		record(&st.lag, now - due);
	send_request(c);
	c->t_req = due;
	c->seq++;
	return 1;
}

static void response_done(struct lconn *c);

/* Mail modes: the one command inside TLS has been answered by the backend? */
static int
mail_after_tls(struct lconn *c)
{
	int r;

	c->hdr[c->hdr_len] = '\0';
	r = mail_reply(c, opt.mode == M_SMTP ? E_SMTP_250 : E_IMAP_TAG_A1);
	if (r < 0) {
		conn_error(c, "bad reply inside TLS");
		return -1;
	}
	if (r > 0)
		response_done(c);
	return r;
}

static void
response_done(struct lconn *c)
{
	st.reqs++;
	switch (opt.mode) {
	case M_FULL:
	case M_RESUME:
	case M_SMTP:
	case M_IMAP:
	case M_NMODES:
		conn_free(c, 1);
		if (!stopping && !priming && !ops_done())
			conn_open(c);
		break;
	case M_KEEPALIVE:
	case M_BULK: {
		uint64_t t = now_ns();

		record(&st.lat, t - c->t_req);
		if (stopping || ops_done()) {
			conn_free(c, 1);
		} else if (opt.rate > 0) {
			wait_turn(c, t);
			send_if_due(c, t);	/* behind schedule: at once */
		} else {
			send_request(c);
		}
		break;
	}
	case M_IDLE:
		c->st = S_HELD;
		break;
	}
}

/* Drive one connection as far as it goes without blocking. */
static void
step(struct lconn *c)
{
	static char rbuf[65536];
	int n, err;

	for (;;) {
		switch (c->st) {
		case S_FREE:
			return;
		case S_PRE:
			if (mail_pre(c) <= 0)
				return;
			c->st = S_HANDSHAKE;
			break;
		case S_CONNECTING:
		case S_HANDSHAKE:
			c->st = S_HANDSHAKE;
			n = SSL_do_handshake(c->ssl);
			if (n != 1) {
				err = SSL_get_error(c->ssl, n);
				if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
					return;
				conn_error(c, "handshake");
				return;
			}
			st.conns++;
			if (SSL_session_reused(c->ssl))
				st.reused++;
			/* Static strings: what the last handshake agreed on. */
			last_version = SSL_get_version(c->ssl);
			last_cipher = SSL_get_cipher_name(c->ssl);
			{
				const char *g = SSL_get_curve_name(SSL_get_curve_id(c->ssl));

				last_group = g != NULL ? g : "-";
			}
			if (opt.rate > 0) {
				uint64_t t = now_ns();

				wait_turn(c, t);
				send_if_due(c, t);
			} else {
				send_request(c);
			}
			break;
		case S_WAIT:
			return;	/* the schedule, not the socket, says when to go on */
		case S_WRITE:
			n = SSL_write(c->ssl, reqbuf, (int)reqlen);
			if (n <= 0) {
				err = SSL_get_error(c->ssl, n);
				if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
					return;
				conn_error(c, "write");
				return;
			}
			c->st = S_READ;
			break;
		case S_READ:
			if (MAIL_MODE(opt.mode)) {
				n = SSL_read(c->ssl, c->hdr + c->hdr_len,
				    (int)(sizeof(c->hdr) - 1 - c->hdr_len));
				if (n <= 0)
					goto rerr;
				c->hdr_len += (size_t)n;
				if (mail_after_tls(c) != 0)
					return;	/* done (conn reopened or freed) or error */
				break;
			}
			if (c->body_left < 0) {
				size_t room = sizeof(c->hdr) - 1 - c->hdr_len, hend = 0;
				int r;

				n = SSL_read(c->ssl, c->hdr + c->hdr_len, (int)room);
				if (n <= 0)
					goto rerr;
				c->hdr_len += (size_t)n;
				r = parse_header(c, &hend);
				if (r < 0) {
					conn_error(c, "bad response");
					return;
				}
				if (r == 0)
					break;
				n = (int)(c->hdr_len - hend);	/* body bytes already here */
				c->body_left -= n;
				st.bytes += n;
			} else {
				size_t want = c->body_left < (long long)sizeof(rbuf) ?
				    (size_t)c->body_left : sizeof(rbuf);

				n = SSL_read(c->ssl, rbuf, (int)want);
				if (n <= 0)
					goto rerr;
				c->body_left -= n;
				st.bytes += n;
			}
			if (c->body_left == 0) {
				response_done(c);
			} else if (c->body_left < 0) {
				conn_error(c, "response longer than Content-Length");
				return;
			}
			break;
		case S_HELD:
			/* Anything but EAGAIN here means the proxy gave up on us. */
			n = SSL_read(c->ssl, rbuf, sizeof(rbuf));
			if (n > 0)
				break;
			err = SSL_get_error(c->ssl, n);
			if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
				return;
			st.peer_closed++;
			ERR_clear_error();
			conn_free(c, 1);
			return;
		}
	}
rerr:
	err = SSL_get_error(c->ssl, n);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
		return;
	conn_error(c, "read");
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Percentile of sorted samples, in µs; p = 1 is the maximum. */
static double
pct_us(const struct samples *s, double p)
{
	size_t i;

	if (s->n == 0)
		return 0;
	i = (size_t)(p * (double)(s->n - 1) + 0.5);
	return s->v[i] / 1000.0;
}

static int
parse_addr(const char *s)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t hl;

	if (colon == NULL || (hl = (size_t)(colon - s)) >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	opt.addr.sin_family = AF_INET;
	opt.addr.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &opt.addr.sin_addr) != 1)
		return -1;
	/* Loopback only: this tool must never point at another machine. */
	if ((ntohl(opt.addr.sin_addr.s_addr) >> 24) != 127)
		return -1;
	return 0;
}

/* One handshake outside the measurement, so resume mode starts with a ticket. */
static int
prime_ticket(void)
{
	struct lconn c = { .fd = -1 };
	uint64_t deadline = now_ns() + 5000000000ull;
	struct epoll_event ev;

	priming = 1;
	if (conn_open(&c) < 0)
		return -1;
	while (c.st != S_FREE && now_ns() < deadline) {
		if (epoll_wait(epfd, &ev, 1, 100) > 0)
			step(&c);
	}
	if (c.st != S_FREE)
		conn_free(&c, 1);
	priming = 0;
	st.conns = st.reused = st.reqs = st.bytes = 0;
	return ticket != NULL ? 0 : -1;
}

/*
 * Every mode but fixed-rate keepalive: connections go as fast as the
 * responses come. Returns idle mode's "ready" count (-1 otherwise).
 */
static long long
run_closed(uint64_t *t0p, uint64_t *t1p)
{
	struct epoll_event evs[256];
	uint64_t t0, t_end, t1;
	long long ready_at = -1;
	int i;

	t0 = now_ns();
	t_end = t0 + (uint64_t)(opt.duration * 1e9);
	/*
	 * Idle mode opens its connections in waves of 200, so the proxy is never
	 * asked for thousands of simultaneous handshakes (that is not the point).
	 */
	{
		int first = opt.mode == M_IDLE && opt.conc > 200 ? 200 : opt.conc;

		for (i = 0; i < first; i++)
			conn_open(&conns[i]);
	}
	int opened = opt.mode == M_IDLE && opt.conc > 200 ? 200 : opt.conc;

	for (;;) {
		int n, live = 0, held = 0;
		uint64_t t = now_ns();

		if (stop_sig || t >= t_end || ops_done())
			stopping = 1;
		if (stopping)
			break;
		n = epoll_wait(epfd, evs, 256, 50);
		for (i = 0; i < n; i++)
			step(evs[i].data.ptr);
		if (opt.mode == M_IDLE) {
			for (i = 0; i < opened; i++) {
				if (conns[i].st == S_HELD)
					held++;
				else if (conns[i].st != S_FREE)
					live++;
			}
			/* Keep at most 200 in flight while building up. */
			while (opened < opt.conc && live < 200) {
				conn_open(&conns[opened++]);
				live++;
			}
			if (ready_at < 0 && opened == opt.conc && live == 0) {
				ready_at = held;
				printf("ready %d\n", held);
				fflush(stdout);
			}
		} else if (!stopping) {
			/* Replace connections lost to errors so the load stays constant. */
			for (i = 0; i < opt.conc; i++)
				if (conns[i].st == S_FREE)
					conn_open(&conns[i]);
		}
	}
	t1 = now_ns();
	*t0p = t0;
	*t1p = t1;
	return ready_at;
}

/*
 * Fixed rate, before the schedule: every connection connected and through
 * its handshake (5 s at most), so no handshake lands in a request's latency.
 */
static void
connect_all(void)
{
	struct epoll_event evs[256];
	uint64_t deadline = now_ns() + 5000000000ull;
	int i, n, up;

	for (i = 0; i < opt.conc; i++)
		conn_open(&conns[i]);
	do {
		n = epoll_wait(epfd, evs, 256, 10);
		for (i = 0; i < n; i++)
			step(evs[i].data.ptr);
		for (up = 0, i = 0; i < opt.conc; i++)
			up += conns[i].st == S_WAIT;
	} while (up < opt.conc && !stop_sig && now_ns() < deadline);
}

/*
 * After the schedule: let the requests in flight finish (1 s at most) so
 * the slowest responses of the window are counted, not dropped.
 */
static void
drain(void)
{
	struct epoll_event evs[256];
	uint64_t deadline = now_ns() + 1000000000ull;
	int i, n, busy;

	for (;;) {
		for (busy = 0, i = 0; i < opt.conc; i++)
			busy += conns[i].st == S_WRITE || conns[i].st == S_READ;
		if (busy == 0 || now_ns() >= deadline)
			return;
		n = epoll_wait(epfd, evs, 256, 10);
		for (i = 0; i < n; i++)
			step(evs[i].data.ptr);
	}
}

/* Give the turn to every connection whose slot has come by now. */
static void
release_slots(uint64_t now)
{
	for (; slot_time(sched.slot) <= now; sched.slot++) {
		struct lconn *c = &conns[sched.slot % (uint64_t)opt.conc];

		if (send_if_due(c, now))
			step(c);
	}
}

/*
 * Keepalive at -R requests per second (open loop). The window, and so the
 * rate, runs from the first due time for -d seconds; the responses still in
 * flight then are drained and counted. Returns -1.
 */
static long long
run_fixed_rate(uint64_t *t0p, uint64_t *t1p)
{
	struct epoll_event evs[256];
	uint64_t t_end, t;
	int i, n;

	/* The default 50 µs timer slack would let every wake-up (and sample) be that late. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	connect_all();
	sched.gap = 1e9 / opt.rate;
	sched.t0 = now_ns();
	sched.slot = 0;
	t_end = sched.t0 + (uint64_t)(opt.duration * 1e9);
	for (;;) {
		struct timespec ts;
		uint64_t wake;

		t = now_ns();
		if (stop_sig || t >= t_end || ops_done())
			break;
		release_slots(t);
		/* µs timeouts: at 30k req/s a slot is 33 µs, epoll_wait's ms far too coarse. */
		wake = slot_time(sched.slot);
		if (wake > t_end)
			wake = t_end;
		t = now_ns();
		wake = wake > t ? wake - t : 0;
		if (wake > 50000000)
			wake = 50000000;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)wake;
		n = epoll_pwait2(epfd, evs, 256, &ts, NULL);
		for (i = 0; i < n; i++)
			step(evs[i].data.ptr);
		/* Replace connections lost to errors; they keep their place in the schedule. */
		for (i = 0; i < opt.conc; i++)
			if (conns[i].st == S_FREE)
				conn_open(&conns[i]);
	}
	*t0p = sched.t0;
	*t1p = now_ns();
	stopping = 1;
	drain();
	return -1;
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	struct rlimit rl;
	const char *addr = NULL;
	uint64_t t0, t1;
	long long ready_at;
	double secs, target;
	int ch, i, behind;

	while ((ch = getopt(argc, argv, "m:a:c:d:n:p:s:2qR:")) != -1) {
		switch (ch) {
		case 'm':
			for (i = 0; i < M_NMODES; i++)
				if (strcmp(optarg, mode_names[i]) == 0)
					break;
			if (i == M_NMODES)
				usage();
			opt.mode = (enum mode)i;
			break;
		case 'a': addr = optarg; break;
		case 'c': opt.conc = atoi(optarg); break;
		case 'd': opt.duration = atof(optarg); break;
		case 'n': opt.max_ops = atoll(optarg); break;
		case 'p': opt.path = optarg; break;
		case 's': opt.sni = optarg; break;
		case '2': opt.tls12 = 1; break;
		case 'q': opt.quiet_errors = 1; break;
		case 'R': opt.rate = atof(optarg); break;
		default: usage();
		}
	}
	if (addr == NULL || parse_addr(addr) < 0 || opt.conc < 1 || opt.duration <= 0) {
		fprintf(stderr, "loadgen: need -a 127.x.y.z:PORT (loopback only)\n");
		usage();
	}
	if (opt.rate < 0 || (opt.rate > 0 && opt.mode != M_KEEPALIVE)) {
		fprintf(stderr, "loadgen: -R needs -m keepalive and a positive rate\n");
		usage();
	}
	if (opt.path == NULL)
		opt.path = opt.mode == M_KEEPALIVE ? "/1k" : opt.mode == M_BULK ? "/1m" : "/";
	if (opt.mode == M_SMTP)
		reqlen = (size_t)snprintf(reqbuf, sizeof(reqbuf), "EHLO x\r\n");
	else if (opt.mode == M_IMAP)
		reqlen = (size_t)snprintf(reqbuf, sizeof(reqbuf), "a1 NOOP\r\n");
	else
		reqlen = (size_t)snprintf(reqbuf, sizeof(reqbuf),
		    "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: portier-loadgen\r\n\r\n",
		    opt.path, opt.sni);

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);

	ctx = SSL_CTX_new(TLS_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, opt.tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);	/* the signature is still checked */
	/* STARTTLS clients offer no ALPN (portier would insist on its protocol's). */
	if (!MAIL_MODE(opt.mode))
		SSL_CTX_set_alpn_protos(ctx, (const uint8_t *)"\x08http/1.1", 9);
	SSL_CTX_set1_curves_list(ctx, "X25519:P-256");
	/* Small footprint per client: buffers only while in use. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (opt.mode == M_RESUME) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
		SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
	} else {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	}

	epfd = epoll_create1(EPOLL_CLOEXEC);
	conns = calloc((size_t)opt.conc, sizeof(*conns));
	if (epfd < 0 || conns == NULL || ctx == NULL) {
		perror("loadgen: setup");
		return 1;
	}
	for (i = 0; i < opt.conc; i++)
		conns[i].fd = -1;

	if (opt.mode == M_RESUME && prime_ticket() < 0) {
		fprintf(stderr, "loadgen: no session ticket from the server\n");
		return 1;
	}

	if (opt.rate > 0)
		ready_at = run_fixed_rate(&t0, &t1);
	else
		ready_at = run_closed(&t0, &t1);
	secs = (double)(t1 - t0) / 1e9;

	qsort(st.lat.v, st.lat.n, sizeof(*st.lat.v), cmp_u32);
	qsort(st.lag.v, st.lag.n, sizeof(*st.lag.v), cmp_u32);
	/* Fixed rate: req_rate is the achieved rate; 1 % short means it could not keep up. */
	target = opt.rate;
	behind = target > 0 && st.reqs / secs < 0.99 * target;
	if (behind)
		fprintf(stderr, "loadgen: behind: %.0f of %.0f requests/s\n",
		    st.reqs / secs, target);
	printf("mode=%s secs=%.3f conns=%lld reused=%lld reqs=%lld errors=%lld "
	    "bytes=%lld conn_rate=%.1f req_rate=%.1f target_rate=%.0f behind=%d mibps=%.1f "
	    "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f lag_p99_us=%.1f lag_max_us=%.1f "
	    "held=%lld peer_closed=%lld version=%s cipher=%s group=%s\n",
	    mode_names[opt.mode], secs, st.conns, st.reused, st.reqs, st.errors, st.bytes,
	    st.conns / secs, st.reqs / secs, target, behind, st.bytes / secs / 1048576.0,
	    pct_us(&st.lat, 0.50), pct_us(&st.lat, 0.99), pct_us(&st.lat, 0.999),
	    pct_us(&st.lat, 1.0), pct_us(&st.lag, 0.99), pct_us(&st.lag, 1.0),
	    ready_at, st.peer_closed, last_version, last_cipher, last_group);
	fflush(stdout);
	for (i = 0; i < opt.conc; i++)
		if (conns[i].st != S_FREE)
			conn_free(&conns[i], 1);
	SSL_CTX_free(ctx);
	if (ticket != NULL)
		SSL_SESSION_free(ticket);
	free(st.lat.v);
	free(st.lag.v);
	free(conns);
	return st.errors > 0 && st.reqs == 0 ? 1 : 0;
}
