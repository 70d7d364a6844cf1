#include "listener.h"
#include "addr.h"
#include "wfile.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_BACKLOG 1024

static int open_one(const struct addr *a, char *bound, size_t boundlen, int *err)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd, on = 1, off = 0;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 && a->any && (errno == EAFNOSUPPORT)) {
		/* No IPv6 on this host: every v4 address will do. */
		struct addr v4 = {.len = sizeof(struct sockaddr_in), .port = a->port};
		struct sockaddr_in *sin = (struct sockaddr_in *)&v4.ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)a->port);
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		return open_one(&v4, bound, boundlen, err);
	}
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, a->any ? &off : &on, sizeof(on));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
	    listen(fd, LISTEN_BACKLOG) < 0)
		goto fail;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		addr_format((struct sockaddr *)&ss, len, bound, boundlen);
	return fd;
fail:
	*err = errno;
	if (fd >= 0)
		close(fd);
	return -1;
}

static int same_addr(const struct addr *x, const struct addr *y)
{
	return x->len == y->len && x->any == y->any && memcmp(&x->ss, &y->ss, x->len) == 0;
}

/* The socket of old, not yet claimed, bound for configured address a:
 * preferably one that served the listener of the same name (two listeners
 * on port 0 of one address keep their own ports). The stats socket and a
 * listener's never pass from one to the other: what waits in a queue was
 * meant for the one it came to. -1 if none. */
static long find_old(const struct listener_set *old, const unsigned char *claimed,
                     const struct addr *a, const char *name, int stats)
{
	long any = -1;

	for (size_t i = 0; old && i < old->n; i++) {
		if (old->socks[i].fd < 0 || claimed[i] || !same_addr(&old->socks[i].want, a) ||
		    (old->socks[i].listener == LISTENER_STATS) != stats)
			continue;
		if (strncmp(old->socks[i].name, name, sizeof(old->socks[i].name) - 1) == 0)
			return (long)i;
		if (any < 0)
			any = (long)i;
	}
	return any;
}

/* Why binding a failed with err, for the error line. EADDRINUSE on a port
 * the running configuration itself listens on (old, on a reload) is
 * portier's own socket on another address of that port: 127.0.0.1:P
 * cannot become 0.0.0.0:P while the old socket listens, and the old one
 * must listen until the new workers serve. */
static void in_use_hint(const struct listener_set *old, const struct addr *a, int err,
                        char *out, size_t len)
{
	*out = '\0';
	if (err == EACCES) {
		snprintf(out, len, " (ports below 1024 need root or CAP_NET_BIND_SERVICE)");
		return;
	}
	if (err != EADDRINUSE)
		return;
	for (size_t i = 0; old != NULL && a->port > 0 && i < old->n; i++) {
		if (old->socks[i].fd < 0 || old->socks[i].want.port != a->port)
			continue;
		snprintf(out, len, " (portier itself listens on %s, for the running "
		         "configuration: a reload cannot move a listener to another "
		         "address of the same port; restart portier for that)",
		         old->socks[i].bound);
		return;
	}
	snprintf(out, len, " (another program holds it: ss -ltnp)");
}

int listener_open(const struct cfg *c, struct listener_set *set,
                  struct listener_set *old, struct diag *d)
{
	size_t total = 0, k = 0;
	unsigned char *claimed;
	long *from;

	memset(set, 0, sizeof(*set));
	for (size_t i = 0; i < c->nlisteners; i++)
		total += c->listeners[i].nlisten;
	total += c->stats.text != NULL;
	set->socks = calloc(total ? total : 1, sizeof(*set->socks));
	claimed = calloc(old && old->n ? old->n : 1, 1);
	from = calloc(total ? total : 1, sizeof(*from));
	if (set->socks == NULL || claimed == NULL || from == NULL) {
		free(set->socks);
		free(claimed);
		free(from);
		return -1;
	}
	/* First the new addresses, which may fail; old's sockets are only
	 * taken once nothing can fail any more, so a refused reload leaves old
	 * as it was. */
	for (size_t i = 0; i <= c->nlisteners; i++) {
		const struct cfg_listener *l = i < c->nlisteners ? &c->listeners[i] : NULL;
		size_t n = l ? l->nlisten : c->stats.text != NULL;
		for (size_t j = 0; j < n; j++, k++) {
			struct listener_sock *s = &set->socks[k];
			const struct cfg_listen *ls = l ? &l->listen[j] : &c->stats;
			const char *name = l ? l->name : LISTENER_STATS_NAME;
			int err = 0;
			s->listener = l ? i : LISTENER_STATS;
			s->want = ls->addr;
			snprintf(s->name, sizeof(s->name), "%s", name);
			s->fd = -1;
			if ((from[k] = find_old(old, claimed, &s->want, name, l == NULL)) >= 0) {
				claimed[from[k]] = 1;
				continue;
			}
			s->fd = open_one(&ls->addr, s->bound, sizeof(s->bound), &err);
			if (s->fd < 0) {
				char hint[384];
				in_use_hint(old, &ls->addr, err, hint, sizeof(hint));
				diag_add(d, 0, c->file, ls->line, l ? l->name : "portier",
				         l ? "listen" : "stats",
				         "cannot listen on '%s': %s%s", ls->text,
				         strerror(err), hint);
				set->n = k;
				listener_close(set);
				free(claimed);
				free(from);
				return -1;
			}
		}
	}
	set->n = k;
	for (k = 0; k < set->n; k++) {
		struct listener_sock *s = &set->socks[k], *o;
		if (from[k] < 0)
			continue;
		o = &old->socks[from[k]];
		s->fd = o->fd;
		memcpy(s->bound, o->bound, sizeof(s->bound));
		o->fd = -1;
	}
	free(claimed);
	free(from);
	return 0;
}

char *listener_ports_text(const struct cfg *c, const struct listener_set *set)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int bad;

	if (f == NULL)
		return NULL;
	for (size_t i = 0; i < set->n; i++)
		fprintf(f, "%s %s\n", set->socks[i].listener == LISTENER_STATS
		        ? LISTENER_STATS_NAME : c->listeners[set->socks[i].listener].name,
		        set->socks[i].bound);
	bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		free(text);
		errno = ENOMEM;
		return NULL;
	}
	return text;
}

int listener_write_ports(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;
	int e;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((f = wfile_open(tmp)) == NULL)
		return -1;
	fputs(text, f);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

void listener_close(struct listener_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->socks[i].fd >= 0)
			close(set->socks[i].fd);
	free(set->socks);
	memset(set, 0, sizeof(*set));
}
