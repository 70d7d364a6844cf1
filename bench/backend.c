/*
 * backend: the plaintext HTTP/1.1 server behind every proxy in the benchmarks.
 *
 * Single-threaded, epoll, keep-alive, as cheap per request as we can make it
 * so that it is never the bottleneck: it shares a core with the load
 * generator. It answers any GET with 200 and a body whose size the path
 * names: /1k = 1 KiB, /1m = 1 MiB, /16m = 16 MiB, /N = N bytes; "/" gets a
 * 128-byte body. "Connection: close" in a request closes after the response.
 * Pipelined requests are answered in order.
 *
 * With -m smtp or -m imap it is instead the plaintext mail server behind the
 * STARTTLS benchmarks, speaking just enough of the protocol:
 *   smtp  greets "220 backend ESMTP"; EHLO gets a multi-line 250 reply, HELO
 *         "250 backend", QUIT "221" and a close, anything else "250 2.0.0 OK"
 *   imap  greets "* OK backend ready"; "TAG LOGOUT" gets "* BYE" + "TAG OK"
 *         and a close, "TAG CAPABILITY" an untagged CAPABILITY + "TAG OK",
 *         anything else (NOOP, ...) "TAG OK CMD completed"
 * Keep-alive, one line at a time, in order.
 *
 * usage: backend [-m http|smtp|imap] -l 127.0.0.1:PORT [-P PORTFILE]
 * With port 0 the kernel picks one; -P writes "ADDR:PORT" to PORTFILE.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BODY_CHUNK (256 * 1024)

struct bconn {
	int fd;
	int close_after;
	size_t in_len;
	size_t out_off, out_len;	/* pending header bytes in out[] */
	long long body_left;		/* pending body bytes */
	char in[4096];
	char out[256];
};

enum bmode { B_HTTP, B_SMTP, B_IMAP };

static char body[BODY_CHUNK];
static volatile sig_atomic_t stop;
static enum bmode bmode = B_HTTP;

static void
on_signal(int sig)
{
	stop = 1;
}

static long long
size_for_path(const char *p, size_t len)
{
	long long n = 0;
	size_t i = 1;

	if (len < 2)
		return 128;
	while (i < len && p[i] >= '0' && p[i] <= '9')
		n = n * 10 + (p[i++] - '0');
	if (i < len && (p[i] == 'k' || p[i] == 'K'))
		n *= 1024;
	else if (i < len && (p[i] == 'm' || p[i] == 'M'))
		n *= 1048576;
	return n;
}

static void
bconn_close(int epfd, struct bconn *c)
{
	epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* Mail modes: answer the next complete command line in c->in; 0 if none yet. */
static int
next_mail_line(struct bconn *c)
{
	char *nl, *cmd, *sp;
	size_t linelen, taglen;

	c->in[c->in_len] = '\0';
	nl = memchr(c->in, '\n', c->in_len);
	if (nl == NULL)
		return 0;
	linelen = (size_t)(nl + 1 - c->in);
	*nl = '\0';
	if (nl > c->in && nl[-1] == '\r')
		nl[-1] = '\0';
	c->out_off = 0;
	c->body_left = 0;
	if (bmode == B_SMTP) {
		if (strncasecmp(c->in, "EHLO", 4) == 0)
			c->out_len = (size_t)snprintf(c->out, sizeof(c->out),
			    "250-backend\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10240000\r\n");
		else if (strncasecmp(c->in, "HELO", 4) == 0)
			c->out_len = (size_t)snprintf(c->out, sizeof(c->out), "250 backend\r\n");
		else if (strncasecmp(c->in, "QUIT", 4) == 0) {
			c->out_len = (size_t)snprintf(c->out, sizeof(c->out), "221 2.0.0 Bye\r\n");
			c->close_after = 1;
		} else
			c->out_len = (size_t)snprintf(c->out, sizeof(c->out), "250 2.0.0 OK\r\n");
	} else {
		sp = strchr(c->in, ' ');
		taglen = sp != NULL ? (size_t)(sp - c->in) : strlen(c->in);
		if (taglen > 64)
			taglen = 64;
		cmd = sp != NULL ? sp + 1 : (char *)"";
		if (strncasecmp(cmd, "LOGOUT", 6) == 0) {
			c->out_len = (size_t)snprintf(c->out, sizeof(c->out),
			    "* BYE Logging out\r\n%.*s OK LOGOUT completed\r\n", (int)taglen, c->in);
			c->close_after = 1;
		} else if (strncasecmp(cmd, "CAPABILITY", 10) == 0) {
			c->out_len = (size_t)snprintf(c->out, sizeof(c->out),
			    "* CAPABILITY IMAP4rev1\r\n%.*s OK CAPABILITY completed\r\n",
			    (int)taglen, c->in);
		} else {
			size_t cmdlen = strcspn(cmd, " ");

			if (cmdlen > 32)
				cmdlen = 32;
			c->out_len = (size_t)snprintf(c->out, sizeof(c->out), "%.*s OK %.*s completed\r\n",
			    (int)taglen, c->in, (int)cmdlen, cmd);
		}
	}
	if (c->out_len >= sizeof(c->out))
		c->out_len = sizeof(c->out) - 1;
	memmove(c->in, c->in + linelen, c->in_len - linelen);
	c->in_len -= linelen;
	return 1;
}

/* Turn the next complete request in c->in into a response; 0 if none yet. */
static int
next_request(struct bconn *c)
{
	char *end, *sp1, *sp2;
	size_t reqlen;
	long long size;

	if (bmode != B_HTTP)
		return next_mail_line(c);
	c->in[c->in_len] = '\0';
	end = strstr(c->in, "\r\n\r\n");
	if (end == NULL)
		return 0;
	reqlen = (size_t)(end + 4 - c->in);
	sp1 = memchr(c->in, ' ', reqlen);
	sp2 = sp1 ? memchr(sp1 + 1, ' ', reqlen - (size_t)(sp1 + 1 - c->in)) : NULL;
	size = sp2 ? size_for_path(sp1 + 1, (size_t)(sp2 - sp1 - 1)) : 0;
	*end = '\0';
	c->close_after = strcasestr(c->in, "\r\nConnection: close") != NULL;
	c->out_len = (size_t)snprintf(c->out, sizeof(c->out),
	    "HTTP/1.1 200 OK\r\nContent-Length: %lld\r\n"
	    "Content-Type: application/octet-stream\r\n%s\r\n",
	    size, c->close_after ? "Connection: close\r\n" : "");
	c->out_off = 0;
	c->body_left = size;
	memmove(c->in, c->in + reqlen, c->in_len - reqlen);
	c->in_len -= reqlen;
	return 1;
}

/* Write what is pending; -1 on error, 0 when blocked, 1 when all sent. */
static int
flush_out(struct bconn *c)
{
	while (c->out_off < c->out_len || c->body_left > 0) {
		ssize_t n;

		if (c->out_off < c->out_len) {
			/* Header and first body bytes in one send when both fit. */
			char tmp[sizeof(c->out) + 16384];
			size_t hl = c->out_len - c->out_off;
			size_t bl = c->body_left < 16384 ? (size_t)c->body_left : 16384;

			memcpy(tmp, c->out + c->out_off, hl);
			memcpy(tmp + hl, body, bl);
			n = send(c->fd, tmp, hl + bl, MSG_NOSIGNAL);
			if (n < 0)
				return errno == EAGAIN ? 0 : -1;
			if ((size_t)n <= hl) {
				c->out_off += (size_t)n;
			} else {
				c->out_off = c->out_len;
				c->body_left -= (long long)((size_t)n - hl);
			}
		} else {
			size_t bl = c->body_left < BODY_CHUNK ? (size_t)c->body_left : BODY_CHUNK;

			n = send(c->fd, body, bl, MSG_NOSIGNAL);
			if (n < 0)
				return errno == EAGAIN ? 0 : -1;
			c->body_left -= n;
		}
	}
	return 1;
}

static void
handle(int epfd, struct bconn *c, unsigned events)
{
	struct epoll_event ev;
	int r;

	for (;;) {
		if (c->out_off < c->out_len || c->body_left > 0) {
			r = flush_out(c);
			if (r < 0)
				goto close;
			if (r == 0) {
				ev.events = EPOLLOUT;
				ev.data.ptr = c;
				epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
				return;
			}
			if (c->close_after)
				goto close;
			if (events & EPOLLOUT) {
				ev.events = EPOLLIN;
				ev.data.ptr = c;
				epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
				events = EPOLLIN;
			}
		}
		if (next_request(c))
			continue;
		if (c->in_len + 1 >= sizeof(c->in))
			goto close;
		ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len, 0);

		if (n == 0)
			goto close;
		if (n < 0) {
			if (errno == EAGAIN)
				return;
			goto close;
		}
		c->in_len += (size_t)n;
		if (!next_request(c))
			return;	/* partial request: wait for the rest */
	}
close:
	bconn_close(epfd, c);
}

/* epoll tags of the listening sockets; connections carry their bconn. */
static char tcp_listener, unix_listener;

static void accept_all(int epfd, int lfd)
{
	struct epoll_event ev;
	int one = 1;

	for (;;) {	/* accept everything that is waiting */
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct bconn *c;

		if (fd < 0)
			break;
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
		if (bmode != B_HTTP) {	/* mail servers speak first */
			c->out_len = (size_t)snprintf(c->out, sizeof(c->out), "%s",
			    bmode == B_SMTP ? "220 backend ESMTP\r\n" :
			    "* OK backend ready\r\n");
			handle(epfd, c, 0);
		}
	}
}

/* -U PATH: the same service on a unix socket too, for the comparison of a
 * loopback TCP hop with a unix-socket one. */
static int listen_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "backend: unix socket path too long\n");
		return -1;
	}
	strcpy(sun.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    listen(fd, 4096) < 0) {
		perror("backend: unix bind/listen");
		return -1;
	}
	return fd;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct epoll_event ev, evs[256];
	struct rlimit rl;
	const char *listen_at = "127.0.0.1:0", *portfile = NULL, *unix_at = NULL, *colon;
	socklen_t sl = sizeof(sin);
	int lfd, ufd = -1, epfd, one = 1, ch, i;
	char host[64];

	while ((ch = getopt(argc, argv, "l:m:P:U:")) != -1) {
		switch (ch) {
		case 'l': listen_at = optarg; break;
		case 'U': unix_at = optarg; break;
		case 'P': portfile = optarg; break;
		case 'm':
			if (strcmp(optarg, "http") == 0)
				bmode = B_HTTP;
			else if (strcmp(optarg, "smtp") == 0)
				bmode = B_SMTP;
			else if (strcmp(optarg, "imap") == 0)
				bmode = B_IMAP;
			else
				goto bad;
			break;
		default:
		bad:
			fprintf(stderr, "usage: backend [-m http|smtp|imap] [-l 127.0.0.1:PORT] [-P PORTFILE] [-U SOCKET]\n");
			return 2;
		}
	}
	colon = strrchr(listen_at, ':');
	if (colon == NULL || (size_t)(colon - listen_at) >= sizeof(host)) {
		fprintf(stderr, "backend: bad address %s\n", listen_at);
		return 2;
	}
	memcpy(host, listen_at, (size_t)(colon - listen_at));
	host[colon - listen_at] = '\0';
	sin.sin_port = htons((unsigned short)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1 ||
	    (ntohl(sin.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "backend: loopback addresses only\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(body, 'x', sizeof(body));
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 4096) < 0) {
		perror("backend: bind/listen");
		return 1;
	}
	getsockname(lfd, (struct sockaddr *)&sin, &sl);
	if (portfile != NULL) {
		FILE *f = fopen(portfile, "w");

		if (f == NULL) {
			perror(portfile);
			return 1;
		}
		fprintf(f, "%s:%u\n", host, ntohs(sin.sin_port));
		fclose(f);
	}
	if (unix_at != NULL && (ufd = listen_unix(unix_at)) < 0)
		return 1;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	ev.events = EPOLLIN;
	ev.data.ptr = &tcp_listener;
	epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
	if (ufd >= 0) {
		ev.data.ptr = &unix_listener;
		epoll_ctl(epfd, EPOLL_CTL_ADD, ufd, &ev);
	}

	while (!stop) {
		int n = epoll_wait(epfd, evs, 256, 500);

		for (i = 0; i < n; i++) {
			struct bconn *c = evs[i].data.ptr;

			if (evs[i].data.ptr == &tcp_listener)
				accept_all(epfd, lfd);
			else if (evs[i].data.ptr == &unix_listener)
				accept_all(epfd, ufd);
			else
				handle(epfd, c, evs[i].events);
		}
	}
	if (ufd >= 0) {
		close(ufd);
		unlink(unix_at);
	}
	close(lfd);
	close(epfd);
	return 0;
}
