#include "cfg_lint.h"

#include <stddef.h>
#include <stdio.h>

struct wellknown {
	int port;
	enum cfg_proto proto;
	const char *service;
	int implicit;        /* 1: TLS from the first byte; 0: plain + STARTTLS */
	int other_port;      /* the same service in the other model */
	const char *scheme;  /* URL scheme clients use for the implicit port */
};

static const struct wellknown ports[] = {
	{443, CFG_PROTO_HTTP, "HTTPS", 1, 80, "https://"},
	{465, CFG_PROTO_SMTP, "SMTPS (submission over implicit TLS)", 1, 587, "smtps://"},
	{993, CFG_PROTO_IMAP, "IMAPS", 1, 143, "imaps://"},
	{995, CFG_PROTO_POP3, "POP3S", 1, 110, "pop3s://"},
	{636, CFG_PROTO_LDAP, "LDAPS", 1, 389, "ldaps://"},
	{990, CFG_PROTO_FTP, "FTPS", 1, 21, "ftps://"},
	{25, CFG_PROTO_SMTP, "SMTP (STARTTLS)", 0, 465, NULL},
	{587, CFG_PROTO_SMTP, "submission (STARTTLS)", 0, 465, NULL},
	{143, CFG_PROTO_IMAP, "IMAP (STARTTLS)", 0, 993, NULL},
	{110, CFG_PROTO_POP3, "POP3 (STLS)", 0, 995, NULL},
	{389, CFG_PROTO_LDAP, "LDAP (StartTLS)", 0, 636, NULL},
	{21, CFG_PROTO_FTP, "FTP (AUTH TLS)", 0, 990, NULL},
};

static void lint_one(const struct cfg *c, const struct cfg_listener *l,
                     const struct cfg_listen *ls, struct diag *d)
{
	int port = ls->addr.port;

	if (port == 25 && l->mode == CFG_MODE_STARTTLS && !l->starttls_optional) {
		diag_add(d, 1, c->file, ls->line, l->name, "starttls",
		         "port 25 receives mail from other servers, and RFC 3207 "
		         "forbids a public MX to require TLS: servers that cannot "
		         "upgrade will fail to deliver; set starttls = optional");
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
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		const struct wellknown *w = &ports[i];
		if (w->port != port)
			continue;
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
		return;
	}
}

void cfg_lint(const struct cfg *c, struct diag *d)
{
	for (size_t i = 0; i < c->nlisteners; i++)
		for (size_t j = 0; j < c->listeners[i].nlisten; j++)
			lint_one(c, &c->listeners[i], &c->listeners[i].listen[j], d);
}

const char *cfg_lint_plaintext_hint(int port, enum cfg_proto proto, char *out,
                                    size_t outlen)
{
	const struct wellknown *w = NULL;

	/* The port says most, when it is a well-known one; else the
	 * listener's protocol still names the scheme to use. */
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]) && !w; i++)
		if (ports[i].port == port && ports[i].implicit)
			w = &ports[i];
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]) && !w; i++)
		if (ports[i].proto == proto && ports[i].implicit)
			w = &ports[i];
	if (w)
		snprintf(out, outlen, "client spoke plaintext on implicit-TLS port %d; "
		         "use %s or port %d", port, w->scheme, w->other_port);
	else
		snprintf(out, outlen, "client spoke plaintext on implicit-TLS port %d; "
		         "it must start with a TLS handshake", port);
	return out;
}
