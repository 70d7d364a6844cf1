#ifndef PORTIER_LISTENER_H
#define PORTIER_LISTENER_H

#include <stddef.h>

#include "cfg.h"
#include "diag.h"

/*
 * Listening sockets, opened apart from any event loop: a master can bind
 * them once and hand them to workers, and a reload can keep the sockets of
 * addresses that stay while the config around them changes.
 */

struct listener_sock {
	int fd;
	size_t listener;      /* index into cfg->listeners */
	char bound[128];      /* the address the kernel gave ("[::]:993") */
};

struct listener_set {
	struct listener_sock *socks;
	size_t n;
};

/* listener_open(c, set, d): bind and listen on every listen line of c,
 * non-blocking. On any failure, closes what it opened, reports to d and
 * returns -1. */
int listener_open(const struct cfg *c, struct listener_set *set, struct diag *d);

/* listener_write_ports(c, set): write c->ports_file (if set) atomically:
 * one "LISTENER ADDR:PORT" line per socket. 0 or -1 (errno). */
int listener_write_ports(const struct cfg *c, const struct listener_set *set);

/* listener_close(set): close every socket; the set may be reused. */
void listener_close(struct listener_set *set);

#endif
