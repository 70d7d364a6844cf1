#ifndef PORTIER_PROTO_H
#define PORTIER_PROTO_H

#include <stddef.h>

#include "cfg.h"

struct starttls_driver;
struct filter_ops;

/*
 * What portier knows about each application protocol, in one row (nginx
 * mail's protocol table): the config's defaults, the port lint, the
 * refusals and the connection's drivers and filters all read it, so a new
 * protocol is one row and its driver.
 */

/* A well-known port of a protocol, for the lint and the plaintext hint. */
struct proto_port {
	int port;
	int implicit;            /* 1: TLS from the first byte; 0: STARTTLS */
	const char *service;     /* "IMAPS", "SMTP (STARTTLS)" */
	int other_port;          /* the same service in the other model */
	const char *scheme;      /* URL scheme clients use on an implicit port */
	int alternate;           /* 1: a common second port (8443), which
	                            `portier probe` guesses from but the lint
	                            does not judge (proto_port skips it) */
};

struct proto {
	enum cfg_proto id;
	const char *name;        /* the config word: "smtp" */
	const char *alpn;        /* default `alpn`: the protocol's ALPN id */
	unsigned idle_ms;        /* default `idle_timeout` */
	const struct proto_port *ports;
	size_t nports;
	/* STARTTLS: portier's pre-TLS dialogue, and the protocol's words to
	 * a client when the backend is down or late (also on implicit-TLS
	 * listeners). NULL: no STARTTLS (tcp, http). */
	const struct starttls_driver *starttls;
	/* After the hand-over: the stream filter, or NULL. */
	const struct filter_ops *filter;
	/* When the backend is down and there is no STARTTLS driver to say
	 * it: a whole reply, or NULL to close without one. */
	const char *refusal;
	/* When the backend took a request and said nothing within
	 * idle_timeout, where the protocol has words for that (HTTP's 504,
	 * for acme_backend): a whole reply, or NULL. */
	const char *silent;
	int optional_ok;         /* starttls = optional allowed */
	int xclient_ok;          /* xclient = yes allowed (backend preamble) */
	const char *missing;     /* non-NULL: named, not served yet; why */
};

/* proto_get(id): the row of id; never NULL for a valid id. */
const struct proto *proto_get(enum cfg_proto id);

/* proto_find(name): the row named name (case-insensitive), or NULL. */
const struct proto *proto_find(const char *name);

/* proto_count(), proto_at(i): every row, in table order (docs, -K). */
size_t proto_count(void);
const struct proto *proto_at(size_t i);

/* proto_port(port, implicit_only): the well-known port entry for port of
 * any protocol (with implicit_only, implicit-TLS ports only), or NULL. */
const struct proto_port *proto_port(int port, int implicit_only);

/* proto_of_port(port, pp): the protocol whose well-known or alternate
 * port port is, with *pp its entry; NULL (and *pp NULL) when none is. For
 * `portier probe`, which guesses a protocol from the port. */
const struct proto *proto_of_port(int port, const struct proto_port **pp);

#endif
