#include "cfg.h"
#include "cfg_check.h"
#include "cfg_keys.h"
#include "proto.h"
#include "starttls.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * After parsing: what a listener inherits from [tls], the defaults that
 * depend on other keys or on the machine (the hostname), and the checks no
 * single key can make (a listener's keys together, names, addresses used
 * twice).
 */

struct check {
	struct cfg *cfg;
	const char *file;
	const struct cfg_load_opts *opts;   /* never NULL */
	struct diag *d;
};

static int is_set(uint64_t mask, const char *key)
{
	return (mask >> cfg_key_index(cfg_key_find(key))) & 1;
}

static int copy_certs(struct cfg_tls *dst, const struct cfg_tls *src)
{
	dst->certs = calloc(src->ncerts ? src->ncerts : 1, sizeof(*dst->certs));
	if (dst->certs == NULL)
		return -1;
	for (size_t i = 0; i < src->ncerts; i++) {
		dst->certs[i].cert = strdup(src->certs[i].cert);
		dst->certs[i].key = src->certs[i].key ? strdup(src->certs[i].key) : NULL;
		dst->certs[i].line = src->certs[i].line;
		dst->certs[i].key_line = src->certs[i].key_line;
		dst->certs[i].ocsp = src->certs[i].ocsp ? strdup(src->certs[i].ocsp) : NULL;
		dst->certs[i].ocsp_line = src->certs[i].ocsp_line;
		dst->certs[i].inherited = 1;
	}
	dst->ncerts = src->ncerts;
	return 0;
}

static int inherit_tls(struct cfg_tls *l, const struct cfg_tls *g)
{
	if (!is_set(l->set, "policy"))
		l->policy = g->policy;
	if (!is_set(l->set, "min_version"))
		l->min_version = g->min_version;
	if (!is_set(l->set, "curves")) {
		free(l->curves);
		l->curves = strdup(g->curves);
	}
	if (!is_set(l->set, "ticket_keys") && g->ticket_keys != NULL) {
		if ((l->ticket_keys = strdup(g->ticket_keys)) == NULL)
			return -1;
		l->ticket_keys_line = g->ticket_keys_line;
		l->ticket_keys_inherited = 1;
	}
	if (l->ncerts == 0)
		return copy_certs(l, g);
	return 0;
}

/* The keys only an FTP listener behind TLS reads (its data ports' broker). */
static const char *const ftp_keys[] = {"data_ports", "public_address",
	"data_protection", "data_peer_check", "require_session_reuse",
	"max_data_connections", "active"};

/* A problem of l's key: said at the line that gives the key, or at the
 * section's header when the key is missing or NULL (cfg_listener_line). */
static void blame(struct check *ck, int warning, const struct cfg_listener *l,
                  const char *key, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void blame(struct check *ck, int warning, const struct cfg_listener *l,
                  const char *key, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag_add(ck->d, warning, ck->file, cfg_listener_line(l, key), l->name, key,
	         "%s", msg);
}

/* A key given with a value refused at its line: it was said there, and
 * what stands in for it (nothing, or the default) is not the admin's. */
static int refused(const struct cfg_listener *l, const char *key)
{
	return is_set(l->refused, key);
}

/* The checks of a listener's keys together, once its mode and protocol
 * are known (p: its protocol). */
static void check_together(struct check *ck, struct cfg_listener *l,
                           const struct proto *p)
{
	if (p->missing && l->mode != CFG_MODE_PLAIN)
		blame(ck, 0, l, "protocol", "%s behind %s cannot work yet: %s; use "
		      "mode = plain to relay it as it is", p->name,
		      l->mode == CFG_MODE_STARTTLS ? "STARTTLS" : "TLS", p->missing);
	else if (l->mode == CFG_MODE_STARTTLS && p->starttls == NULL)
		blame(ck, 0, l, "protocol", "mode = starttls needs the protocol to "
		      "upgrade: smtp, imap, pop3, ldap or ftp");
	if (l->mode == CFG_MODE_STARTTLS) {
		if (l->starttls_optional && !p->optional_ok)
			blame(ck, 0, l, "starttls", "optional is for SMTP only "
			      "(RFC 3207); %s clients must upgrade", p->name);
	} else if (is_set(l->set, "starttls")) {
		blame(ck, 0, l, "starttls", "only used with mode = starttls");
	}
	if (l->proto != CFG_PROTO_FTP) {
		for (size_t i = 0; i < sizeof(ftp_keys) / sizeof(ftp_keys[0]); i++)
			if (is_set(l->set, ftp_keys[i]))
				blame(ck, 0, l, ftp_keys[i], "only used with protocol = ftp");
	} else if (l->mode == CFG_MODE_PLAIN) {
		/* A warning, not an error: the listener works, relaying the
		 * control connection as it is; only the admin's intent (a
		 * data port range, NAT) is not served. */
		for (size_t i = 0; i < sizeof(ftp_keys) / sizeof(ftp_keys[0]); i++)
			if (is_set(l->set, ftp_keys[i]))
				blame(ck, 1, l, ftp_keys[i], "unused with mode = plain: "
				      "portier relays the control connection as it "
				      "is, and data connections go to the backend's "
				      "own ports");
	} else if (l->mode == CFG_MODE_TLS || l->mode == CFG_MODE_STARTTLS) {
		if (!is_set(l->set, "data_ports") && !refused(l, "data_ports"))
			blame(ck, 0, l, "data_ports", "missing; FTP behind TLS needs "
			      "a range of passive data ports, such as 50000-50100 "
			      "(open them in the firewall)");
		/* The control client's address is the PROXY header's; its
		 * data connections carry none, so through the balancer they
		 * come from the balancer and the check refuses every one. */
		if (l->accept_proxy && l->ftp_peer_check)
			blame(ck, 1, l, "accept_proxy", "data connections carry no "
			      "PROXY header: if clients reach data_ports through "
			      "the load balancer too, they come from its address, "
			      "not the client's, and data_peer_check refuses them "
			      "all; set data_peer_check = no then "
			      "(require_session_reuse still keeps them the control "
			      "client's)");
	}
	if (l->xclient && (l->mode != CFG_MODE_STARTTLS || !p->xclient_ok))
		blame(ck, 0, l, "xclient", "only for mode = starttls with protocol = smtp");
	if (l->send_proxy && l->mode == CFG_MODE_REDIRECT && !is_set(l->set, "acme_backend"))
		blame(ck, 0, l, "send_proxy", "mode = redirect connects to no "
		      "backend but acme_backend; set one or remove send_proxy");
	if (refused(l, "accept_proxy") || refused(l, "accept_proxy_from"))
		;   /* said at its line; the pair is not judged */
	else if (l->accept_proxy && l->nproxy_from == 0)
		/* Missing, so said where accept_proxy asks for it. */
		diag_add(ck->d, 0, ck->file, cfg_listener_line(l, "accept_proxy"),
		         l->name, "accept_proxy_from", "missing; accept_proxy = yes "
		         "needs the load balancers' addresses (accept_proxy_from = "
		         "10.0.0.0/8 192.0.2.1 ...)");
	else if (!l->accept_proxy && (l->nproxy_from || is_set(l->set, "accept_proxy_timeout")))
		blame(ck, 0, l, l->nproxy_from ? "accept_proxy_from" : "accept_proxy_timeout",
		      "only used with accept_proxy = yes");
	if (l->rate_burst && !l->rate_per_min && !refused(l, "rate_per_ip"))
		blame(ck, 0, l, "rate_burst", "only used with rate_per_ip");
	if ((l->mode == CFG_MODE_TLS || l->mode == CFG_MODE_STARTTLS) &&
	    l->tls.ncerts == 0 && !is_set(l->tls.refused, "cert") &&
	    !is_set(ck->cfg->tls.refused, "cert"))
		blame(ck, 0, l, "cert", "mode = %s needs a certificate: add "
		      "'cert = /path.pem' here or in [tls]", cfg_mode_name(l->mode));
}

static void check_listener(struct check *ck, struct cfg_listener *l)
{
	const struct proto *p;
	/* Checks of keys together judge the mode and the protocol; with
	 * either refused they would judge a default the admin did not
	 * write ("mode = plian" became "mode = tls needs a certificate"). */
	int judged = !refused(l, "mode") && !refused(l, "protocol");

	if (l->nlisten == 0) {
		const char *near = NULL;
		if (refused(l, "listen"))
			return;
		if (cfg_edit_distance(l->name, "tls") <= 2)
			near = "tls";
		else if (cfg_edit_distance(l->name, "portier") <= 2)
			near = "portier";
		if (near)
			blame(ck, 0, l, NULL, "unknown section; did you mean [%s]?", near);
		else
			blame(ck, 0, l, "listen", "missing; a listener section needs "
			      "at least one 'listen = PORT'");
		return;
	}
	if (l->mode == CFG_MODE_REDIRECT) {
		if (is_set(l->set, "protocol") && l->proto != CFG_PROTO_HTTP)
			blame(ck, 0, l, "protocol", "mode = redirect speaks HTTP; "
			      "use protocol = http or leave it out");
		l->proto = CFG_PROTO_HTTP;
		if (is_set(l->set, "backend"))
			blame(ck, 0, l, "backend", "mode = redirect answers every "
			      "request itself; remove the backend (acme_backend "
			      "takes ACME challenges)");
	} else if (judged) {
		if (!is_set(l->set, "backend") && !refused(l, "backend"))
			blame(ck, 0, l, "backend", "missing; expected HOST:PORT or "
			      "unix:/path of the plaintext server");
		if (is_set(l->set, "redirect_port") || is_set(l->set, "acme_backend"))
			blame(ck, 0, l, is_set(l->set, "redirect_port") ? "redirect_port"
			                                                : "acme_backend",
			      "only used with mode = redirect");
	}
	p = proto_get(l->proto);
	if (judged)
		check_together(ck, l, p);
	if (l->rate_per_min && !l->rate_burst)
		l->rate_burst = l->rate_per_min >= 120 ? l->rate_per_min / 60 : 1;
	if (!is_set(l->set, "alpn"))
		l->alpn = strdup(p->alpn);
	if (!is_set(l->set, "idle_timeout"))
		l->idle_timeout_ms = p->idle_ms;
}

/* The machine's name, for a config that does not set [portier] hostname;
 * "" when it cannot be read. */
static char *system_hostname(const struct check *ck)
{
	char host[256];

	if (ck->opts->system_hostname != NULL)
		return strdup(ck->opts->system_hostname);
	if (gethostname(host, sizeof(host)) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	return strdup(host);
}

/* A STARTTLS greeting with a name starttls_init refuses fails every
 * connection, so the name each such listener will use is checked now.
 * Names written in the file were checked at their lines (and kept, though
 * refused, so that they are not blamed again here); what is left is the
 * system's name, which only hostname = in the file can replace. */
static void check_hostnames(struct check *ck, int global_given)
{
	struct cfg *c = ck->cfg;

	if (global_given || cfg_hostname_ok(c->hostname))
		return;
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct cfg_listener *l = &c->listeners[i];
		if (l->mode != CFG_MODE_STARTTLS || l->hostname != NULL)
			continue;
		if (c->hostname[0] == '\0')
			diag_add(ck->d, 0, ck->file, l->line, l->name, "hostname",
			         "the system's host name cannot be read, and STARTTLS "
			         "greetings need one; set 'hostname =' in [portier] or "
			         "in this listener");
		else
			diag_add(ck->d, 0, ck->file, l->line, l->name, "hostname",
			         "the system's host name '%s' cannot be used in STARTTLS "
			         "greetings (a name holds 1 to %d letters, digits, '-' "
			         "and '.'); set 'hostname =' in [portier] or in this "
			         "listener", c->hostname, STARTTLS_HOST_MAX);
	}
}

/* 0.0.0.0 or [::]: every address of its family. */
static int unspecified(const struct addr *a)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;

	if (a->ss.ss_family == AF_INET)
		return in->sin_addr.s_addr == htonl(INADDR_ANY);
	return a->ss.ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
}

/* Two listen addresses that cannot both be bound (port 0 always can), as
 * listener.c binds them: a bare port is one socket for every address of
 * both families; 0.0.0.0:P holds P on every IPv4 address, and [::]:P,
 * bound IPV6_V6ONLY, on every IPv6 one but no IPv4 address. */
static int clash(const struct addr *a, const struct addr *b)
{
	if (a->port == 0 || a->port != b->port)
		return 0;
	if (a->any || b->any)
		return 1;
	if (a->ss.ss_family != b->ss.ss_family)
		return 0;
	return unspecified(a) || unspecified(b) ||
	       (a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0);
}

static void check_duplicates(struct check *ck)
{
	struct cfg *c = ck->cfg;

	for (size_t i = 0; i < c->nlisteners && c->stats.text != NULL; i++)
		for (size_t j = 0; j < c->listeners[i].nlisten; j++)
			if (clash(&c->listeners[i].listen[j].addr, &c->stats.addr))
				diag_add(ck->d, 0, ck->file, c->stats.line, "portier", "stats",
				         "'%s' is already taken by [%s] at line %d", c->stats.text,
				         c->listeners[i].name, c->listeners[i].listen[j].line);
	for (size_t i = 0; i < c->nlisteners; i++)
	for (size_t j = 0; j < c->listeners[i].nlisten; j++) {
		const struct cfg_listen *a = &c->listeners[i].listen[j];
		for (size_t k = i; k < c->nlisteners; k++)
		for (size_t m = (k == i ? j + 1 : 0); m < c->listeners[k].nlisten; m++) {
			const struct cfg_listen *b = &c->listeners[k].listen[m];
			if (clash(&a->addr, &b->addr))
				diag_add(ck->d, 0, ck->file, b->line, c->listeners[k].name,
				         "listen", "'%s' is already taken by [%s] at line %d",
				         b->text, c->listeners[i].name, a->line);
		}
	}
}

void cfg_check(struct cfg *c, const char *file, const struct cfg_load_opts *opts,
               struct diag *d)
{
	struct check ck = {c, file, opts, d};
	int global_given = c->hostname != NULL;

	if (!global_given && (c->hostname = system_hostname(&ck)) == NULL)
		diag_add(d, 0, file, 0, NULL, NULL, "out of memory");
	if (c->nlisteners == 0)
		diag_add(d, 0, file, 0, NULL, NULL, "no listener sections; add "
		         "one such as [https] with listen, mode and backend");
	for (size_t i = 0; i < c->nlisteners; i++) {
		if (inherit_tls(&c->listeners[i].tls, &c->tls) < 0)
			diag_add(d, 0, file, 0, NULL, NULL, "out of memory");
		check_listener(&ck, &c->listeners[i]);
	}
	if (c->hostname != NULL)
		check_hostnames(&ck, global_given);
	check_duplicates(&ck);
}
