#ifndef PORTIER_LISTENER_H
#define PORTIER_LISTENER_H

#include <stddef.h>

#include "addr.h"
#include "cfg.h"
#include "diag.h"

/*
 * Listening sockets, opened apart from any event loop: a master can bind
 * them once and hand them to workers, and a reload can keep the sockets of
 * addresses that stay while the config around them changes.
 */

/* The listener index of the metrics endpoint's socket ([portier] stats),
 * the last of a set when configured; "[stats]" in the ports_file. */
#define LISTENER_STATS ((size_t)-1)
#define LISTENER_STATS_NAME "[stats]"

struct listener_sock {
	int fd;
	size_t listener;      /* index into cfg->listeners; LISTENER_STATS */
	struct addr want;     /* as configured (port 0 stays 0) */
	char name[64];        /* the listener's, to match it again on reload */
	char bound[128];      /* the address the kernel gave ("[::]:993") */
};

struct listener_set {
	struct listener_sock *socks;
	size_t n;
};

/* listener_open(c, set, old, d): bind and listen on every listen line of c,
 * and on its stats address, non-blocking. A line whose configured address old (NULL at start) has a
 * socket for takes that socket over (its fd moves to set; old's entry gets
 * -1): a reload keeps the connections waiting in its queue, and a port 0
 * keeps its port. On any failure, closes what it opened, leaves old as it
 * was, reports to d and returns -1. */
int listener_open(const struct cfg *c, struct listener_set *set,
                  struct listener_set *old, struct diag *d);

/* listener_ports_text(c, set): what the ports_file says of set, one
 * "LISTENER ADDR:PORT" line per socket; a string to free, or NULL
 * (ENOMEM). */
char *listener_ports_text(const struct cfg *c, const struct listener_set *set);

/* listener_write_ports(path, text): text written to path atomically (a
 * temporary file beside it, renamed over it). 0 or -1 (errno). */
int listener_write_ports(const char *path, const char *text);

/* listener_close(set): close every socket; the set may be reused. */
void listener_close(struct listener_set *set);

#endif
