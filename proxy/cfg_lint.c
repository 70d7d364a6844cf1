#include "cfg_lint.h"
#include "proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void lint_one(const struct cfg *c, const struct cfg_listener *l,
                     const struct cfg_listen *ls, struct diag *d)
{
	int port = ls->addr.port;
	const struct proto_port *w;

	if (port == 25 && l->mode == CFG_MODE_STARTTLS && !l->starttls_optional) {
		diag_add(d, 1, c->file, ls->line, l->name, "starttls",
		         "port 25 receives mail from other servers, and RFC 3207 "
		         "forbids a public MX to require TLS: servers that cannot "
		         "upgrade will fail to deliver; set starttls = optional");
		return;
	}
	/* What portier probe reports as starttls-not-required, known here
	 * without a connection: off port 25 (relay between servers), a
	 * client that does not upgrade logs in in clear. */
	if (l->starttls_optional && port != 25) {
		diag_add(d, 1, c->file, ls->line, l->name, "starttls",
		         "starttls = optional on port %d lets a client that does not "
		         "upgrade send its password in clear; only port 25, where "
		         "servers relay mail, needs it: set starttls = required", port);
		return;
	}
	if (port == 80 && l->mode == CFG_MODE_TLS) {
		diag_add(d, 1, c->file, ls->line, l->name, "listen",
		         "port 80 is plain HTTP, but mode = tls expects a TLS "
		         "handshake: browsers and curl http:// will get a "
		         "handshake error; use mode = redirect (or plain) on 80 "
		         "and mode = tls on 443");
		return;
	}
	if ((w = proto_port(port, 0)) == NULL)
		return;
	if (w->implicit && (l->mode == CFG_MODE_STARTTLS ||
	                    l->mode == CFG_MODE_PLAIN))
		diag_add(d, 1, c->file, ls->line, l->name, "listen",
		         "port %d is %s, where clients (%s) start TLS at "
		         "once, but mode = %s answers in plaintext: clients "
		         "will fail with 'wrong version number' or hang; use "
		         "mode = tls here, or port %d for %s",
		         port, w->service, w->scheme, cfg_mode_name(l->mode),
		         w->other_port,
		         l->mode == CFG_MODE_STARTTLS ? "STARTTLS" : "plaintext");
	else if (!w->implicit && l->mode == CFG_MODE_TLS)
		diag_add(d, 1, c->file, ls->line, l->name, "listen",
		         "port %d is %s, where clients connect in plaintext "
		         "and upgrade with STARTTLS, but mode = tls expects a "
		         "TLS handshake first: clients will time out waiting "
		         "for a greeting; use mode = starttls here, or port %d "
		         "for implicit TLS", port, w->service, w->other_port);
}

/* Both ways of telling an SMTP backend the client's address: one is
 * enough, and a backend that trusts PROXY may not offer XCLIENT at all. */
static void lint_listener(const struct cfg *c, const struct cfg_listener *l,
                          struct diag *d)
{
	if (l->xclient && l->send_proxy)
		diag_add(d, 1, c->file, cfg_listener_line(l, "xclient"), l->name, "xclient",
		         "send_proxy = v%d already tells the backend the client's "
		         "address: PROXY replaces XCLIENT, which portier will not "
		         "send; remove xclient = yes (Postfix: "
		         "smtpd_upstream_proxy_protocol = haproxy)", l->send_proxy);
}

/* a and b name the same backend socket (resolved at load). */
static int same_backend(const struct addr *a, const struct addr *b)
{
	const struct sockaddr *x = (const struct sockaddr *)&a->ss;

	if (a->len == 0 || a->len != b->len || x->sa_family != b->ss.ss_family)
		return 0;
	switch (x->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *p = (const void *)&a->ss, *q = (const void *)&b->ss;
		return p->sin_port == q->sin_port && p->sin_addr.s_addr == q->sin_addr.s_addr;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *p = (const void *)&a->ss, *q = (const void *)&b->ss;
		return p->sin6_port == q->sin6_port &&
		       memcmp(&p->sin6_addr, &q->sin6_addr, sizeof(p->sin6_addr)) == 0;
	}
	default:
		return memcmp(&a->ss, &b->ss, a->len) == 0;   /* unix: the path */
	}
}

/* xclient = yes makes the backend trust portier's address to say who the
 * client is. Only the SMTP filter (mode tls or starttls, protocol = smtp)
 * keeps a client's own XCLIENT from the backend: through any other
 * listener to that backend a client could name itself. */
static void lint_xclient_bypass(const struct cfg *c, struct diag *d)
{
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct cfg_listener *x = &c->listeners[i];

		if (!x->xclient || x->send_proxy)
			continue;
		for (size_t j = 0; j < c->nlisteners; j++) {
			const struct cfg_listener *l = &c->listeners[j];
			int filtered = (l->mode == CFG_MODE_TLS || l->mode == CFG_MODE_STARTTLS) &&
			               proto_get(l->proto)->xclient_ok;

			if (j == i || l->mode == CFG_MODE_REDIRECT || filtered ||
			    !same_backend(&l->backend, &x->backend))
				continue;
			diag_add(d, 1, c->file, cfg_listener_line(l, "backend"), l->name, "backend",
			         "%s is also [%s]'s, whose xclient = yes has it trust "
			         "portier's address to name the client; this listener "
			         "passes a client's own XCLIENT through (only mode = tls "
			         "or starttls with protocol = smtp filters it): a client "
			         "could choose the address the mail server judges",
			         l->backend_text, x->name);
		}
	}
}

/* The metrics need no secret to read, but tell about traffic and
 * certificates: an address others can reach is worth a second look. */
static void lint_stats(const struct cfg *c, struct diag *d)
{
	const struct addr *a = &c->stats.addr;
	const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
	int loopback;

	if (c->stats.text == NULL)
		return;
	loopback = !a->any &&
	           ((a->ss.ss_family == AF_INET &&
	             (ntohl(in->sin_addr.s_addr) >> 24) == 127) ||
	            (a->ss.ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)));
	if (!loopback)
		diag_add(d, 1, c->file, c->stats.line, "portier", "stats",
		         "'%s' is not a loopback address: anyone who can reach it "
		         "reads the metrics (traffic, certificates); bind 127.0.0.1 "
		         "unless a firewall keeps others out", c->stats.text);
}

/* Certificates are loaded per listener that terminates TLS: a [tls] one
 * that every such listener overrides (or with none of them) is never
 * read, so -t cannot vouch for it, and the admin may think it served. */
static void lint_unused_cert(const struct cfg *c, struct diag *d)
{
	if (c->tls.ncerts == 0)
		return;
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct cfg_listener *l = &c->listeners[i];

		if (l->mode != CFG_MODE_TLS && l->mode != CFG_MODE_STARTTLS)
			continue;
		for (size_t j = 0; j < l->tls.ncerts; j++)
			if (l->tls.certs[j].inherited)
				return;
	}
	diag_add(d, 1, c->file, c->tls.certs[0].line, "tls", "cert",
	         "no listener uses the [tls] certificates (every TLS or STARTTLS "
	         "listener names its own, or there is none): they are neither "
	         "checked nor served");
}

/* What is at path already, when portier will not write there: the
 * pid_file is written in place and only as a regular file (not a FIFO,
 * which would make the master wait, nor through a symlink); the
 * ports_file and the log replace or append to what is there, which a
 * directory cannot be. */
static void lint_written_type(const struct cfg *c, const char *key, const char *path,
                              int line, struct diag *d)
{
	struct stat st;

	if (lstat(path, &st) < 0 || S_ISREG(st.st_mode))
		return;
	if (S_ISDIR(st.st_mode))
		diag_add(d, 1, c->file, line, "portier", key, "'%s' is a directory", path);
	else if (strcmp(key, "pid_file") == 0)
		diag_add(d, 1, c->file, line, "portier", key, "'%s' is not a regular file "
		         "(%s); portier writes its pid_file only as one", path,
		         S_ISLNK(st.st_mode) ? "a symlink" : S_ISFIFO(st.st_mode) ? "a FIFO" :
		         "a device or a socket");
}

/* A file portier writes once it runs: a missing directory is known now,
 * while at start it was only a warning after the fact, and -t called the
 * configuration OK. Only a warning: a service manager may make the
 * directory when it starts portier (RuntimeDirectory=), after a check. A
 * directory that exists but is not ours to write is not judged: -t may
 * run as another user. */
static void lint_written_file(const struct cfg *c, const char *key, const char *path,
                              int line, struct diag *d)
{
	char dir[4096];
	struct stat st;
	const char *slash;
	size_t len;

	if (path == NULL || (slash = strrchr(path, '/')) == NULL)
		return;
	len = slash == path ? 1 : (size_t)(slash - path);
	if (len >= sizeof(dir))
		return;
	memcpy(dir, path, len);
	dir[len] = '\0';
	if (stat(dir, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			lint_written_type(c, key, path, line, d);
			return;
		}
	} else if (errno == ENOENT) {
		diag_add(d, 1, c->file, line, "portier", key, "'%s' cannot be written: "
		         "directory '%s' does not exist", path, dir);
		return;
	} else if (errno != ENOTDIR) {
		return;
	}
	diag_add(d, 1, c->file, line, "portier", key, "'%s' cannot be written: '%s' is "
	         "not a directory", path, dir);
}

void cfg_lint(const struct cfg *c, struct diag *d)
{
	if (c->log[0] == '/')
		lint_written_file(c, "log", c->log, c->log_line, d);
	lint_written_file(c, "ports_file", c->ports_file, c->ports_file_line, d);
	lint_written_file(c, "pid_file", c->pid_file, c->pid_file_line, d);
	lint_stats(c, d);
	lint_unused_cert(c, d);
	lint_xclient_bypass(c, d);
	for (size_t i = 0; i < c->nlisteners; i++) {
		lint_listener(c, &c->listeners[i], d);
		for (size_t j = 0; j < c->listeners[i].nlisten; j++)
			lint_one(c, &c->listeners[i], &c->listeners[i].listen[j], d);
	}
}

const char *cfg_lint_plaintext_hint(int port, enum cfg_proto proto, char *out,
                                    size_t outlen)
{
	const struct proto_port *w = proto_port(port, 1);
	const struct proto *p = proto_get(proto);

	/* The port says most, when it is a well-known one; else the
	 * listener's protocol still names the scheme to use. */
	for (size_t i = 0; i < p->nports && !w; i++)
		if (p->ports[i].implicit)
			w = &p->ports[i];
	if (w)
		snprintf(out, outlen, "client spoke plaintext on implicit-TLS port %d; "
		         "use %s or port %d", port, w->scheme, w->other_port);
	else
		snprintf(out, outlen, "client spoke plaintext on implicit-TLS port %d; "
		         "it must start with a TLS handshake", port);
	return out;
}
