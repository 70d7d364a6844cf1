#include "log.h"
#include "probe.h"
#include "proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The judgement of `portier probe`: from what a probe learned, the
 * findings, each in words a person can act on and with a stable id. */

long probe_days_left(const struct probe_result *r)
{
	double secs = difftime(r->cert.not_after, r->now);

	return (long)(secs >= 0 ? (secs + 43200) / 86400 : (secs - 43200) / 86400);
}

const char *probe_cert_when(const struct probe_result *r, char *out, size_t outlen)
{
	double secs = difftime(r->cert.not_after, r->now);
	long d = labs(probe_days_left(r)), h;

	if (secs < 0)
		secs = -secs;
	/* Under a day, days round to 0 or 1: "expired 0 days ago" said
	 * nothing of a certificate two hours past its end. */
	h = (long)(secs / 3600);
	if (secs >= 86400)
		snprintf(out, outlen, "%ld day%s", d, d == 1 ? "" : "s");
	else if (h >= 1)
		snprintf(out, outlen, "%ld hour%s", h, h == 1 ? "" : "s");
	else
		snprintf(out, outlen, "less than an hour");
	return out;
}

static void finding(struct probe_result *r, const char *id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void finding(struct probe_result *r, const char *id, const char *fmt, ...)
{
	va_list ap;

	if (r->nfindings >= PROBE_MAX_FINDINGS)
		return;
	r->findings[r->nfindings].id = id;
	va_start(ap, fmt);
	vsnprintf(r->findings[r->nfindings].text, sizeof(r->findings[0].text), fmt, ap);
	va_end(ap);
	r->nfindings++;
}

static const char *upper(const struct proto *pr)
{
	switch (pr ? pr->id : CFG_PROTO_TCP) {
	case CFG_PROTO_SMTP: return "SMTP";
	case CFG_PROTO_IMAP: return "IMAP";
	case CFG_PROTO_POP3: return "POP3";
	case CFG_PROTO_LDAP: return "LDAP";
	case CFG_PROTO_HTTP: return "HTTP";
	case CFG_PROTO_FTP:  return "FTP";
	default:             return "TCP";
	}
}

/* What client settings call the upgrade (POP3's STLS is "STARTTLS" there
 * too); LDAP's is the StartTLS operation. */
static const char *verb(const struct proto *pr)
{
	switch (pr ? pr->id : CFG_PROTO_TCP) {
	case CFG_PROTO_LDAP: return "StartTLS";
	case CFG_PROTO_FTP:  return "AUTH TLS";
	default:             return "STARTTLS";
	}
}

/* The certificate's name for a finding, escaped as the report's
 * certificate line is: its bytes are the probed server's choice. */
static const char *cert_name(const struct probe_result *r, char *out, size_t outlen)
{
	if (r->cert.subject_cn[0])
		return log_escape_str(r->cert.subject_cn, out, outlen);
	return r->cert.nsans ? log_escape_str(r->cert.sans[0], out, outlen) : "(no name)";
}

/* "993 expects implicit TLS; this server answered a plaintext IMAP
 * greeting: ...", with what the server answered and, when it was asked,
 * that it cannot upgrade either. */
static void plaintext_on_implicit(struct probe_result *r, const struct proto *proto,
                                  const char *P)
{
	int http = proto->id == CFG_PROTO_HTTP;
	char either[64] = "";

	if (!http && r->starttls_offered == 0)
		snprintf(either, sizeof(either), ", and it offers no %s either", verb(proto));
	finding(r, "plaintext-on-implicit-port", "%d expects implicit TLS; this server "
	        "answered %s %s%s: clients configured for SSL/TLS on %d will fail%s",
	        r->judged_port, http ? "in plaintext" : "a plaintext", P, http ? "" :
	        proto->id == CFG_PROTO_LDAP ? " response" : " greeting", r->judged_port,
	        either);
}

/* "TLS did not work: why"; when the server refused the name, what to do
 * about it: a server with a certificate per name may serve none for the
 * host probed, or for an address (never sent as SNI, as tlsctx_connect()
 * leaves it out). */
static void tls_failed(struct probe_result *r)
{
	char esc[LOG_ESCAPED_SIZE(256)];
	uint8_t addr[sizeof(struct in6_addr)];

	if (!r->tls_name_refused)
		finding(r, "tls-failed", "TLS did not work: %s", r->tls_error);
	else if (inet_pton(AF_INET, r->name, addr) == 1 || inet_pton(AF_INET6, r->name, addr) == 1)
		finding(r, "tls-failed", "TLS did not work: %s: the server knows no certificate "
		        "for a ClientHello without a name (no SNI is sent for the address %s); "
		        "try --sni with a name it serves", r->tls_error,
		        log_escape_str(r->name, esc, sizeof(esc)));
	else
		finding(r, "tls-failed", "TLS did not work: %s: the server knows no certificate "
		        "for the name sent (SNI '%s'); try --sni with a name it serves",
		        r->tls_error, log_escape_str(r->name, esc, sizeof(esc)));
}

void probe_judge(struct probe_result *r, const struct proto *proto,
                 const struct proto_port *pp, enum probe_expect expect)
{
	int port = r->judged_port;
	const char *P = upper(proto);
	char name[LOG_ESCAPED_SIZE(TLSCTX_CERT_NAME_MAX)], when[32];
	long days;

	/* Nothing else can be known of a port that did not answer. */
	if (r->model == PROBE_FILTERED) {
		finding(r, "filtered", "port %d did not answer the connection: most likely a "
		        "firewall drops it (the host's own, or one on the way), else the host is "
		        "down; on a portier host `portier firewall -c %s` prints the commands that "
		        "open its config's ports (--format nft, ufw, firewalld or iptables)",
		        r->port, r->config ? r->config : "/etc/portier/portier.ini");
		return;
	}
	/* An expectation comes from a well-known port of the protocol. */
	if (pp == NULL || proto == NULL)
		expect = PROBE_EXPECT_UNKNOWN;

	if (r->model == PROBE_STARTTLS && expect == PROBE_EXPECT_IMPLICIT)
		finding(r, "starttls-on-implicit-port", "%d speaks plaintext %s with %s: "
		        "clients configured for SSL/TLS on %d will fail; either enable implicit "
		        "TLS on %d or set clients to %s on %d", port, P, verb(proto), port,
		        port, verb(proto), pp->other_port);
	else if (r->model == PROBE_PLAIN && expect == PROBE_EXPECT_IMPLICIT)
		plaintext_on_implicit(r, proto, P);
	else if (r->model == PROBE_IMPLICIT_TLS && expect == PROBE_EXPECT_STARTTLS)
		finding(r, "implicit-tls-on-starttls-port", "%d is %s, where clients connect in "
		        "plaintext and then send %s, but this server expects TLS at once: "
		        "clients configured for %s on %d will time out or fail; either serve "
		        "plaintext %s with %s on %d or set clients to SSL/TLS on %d", port,
		        pp->service, verb(proto), verb(proto), port, P, verb(proto), port,
		        pp->other_port);
	else if (r->model == PROBE_IMPLICIT_TLS && expect == PROBE_EXPECT_PLAIN)
		finding(r, "implicit-tls-on-plain-port", "%d is plain %s, but this server expects "
		        "TLS at once: %s:// URLs will fail; serve plaintext (a redirect to https://) "
		        "on %d and TLS on %d", port, P, proto->name, port, pp->other_port);
	else if (r->model == PROBE_PLAIN && proto && proto->id == CFG_PROTO_HTTP) {
		if (r->http_status[0] && !(strncmp(r->http_location, "https://", 8) == 0))
			finding(r, "http-no-redirect", "%d answers \"%s\" without a redirect to "
			        "https://: visitors stay on plaintext HTTP", port, r->http_status);
	} else if (r->model == PROBE_PLAIN && proto && r->starttls_offered == 0) {
		if (proto->id == CFG_PROTO_SMTP && port == 25)
			finding(r, "no-tls", "25 offers no STARTTLS: mail from other servers arrives "
			        "in clear");
		else
			finding(r, "no-tls", "%d offers no %s: passwords and %s cross the network "
			        "in clear; enable %s%s", port, verb(proto),
			        proto->id == CFG_PROTO_LDAP ? "entries" : proto->id == CFG_PROTO_FTP ?
			        "files" : "messages", verb(proto),
			        pp && pp->other_port ? " here, or use implicit TLS" : "");
	} else if (r->model == PROBE_OTHER && proto && (pp || r->protocol_given)) {
		/* The port's service, or on another port the protocol the
		 * admin asked for: what else answers is not what they meant. */
		char svc[64];
		const char *is = pp ? "is" : "was given as";

		if (pp)
			snprintf(svc, sizeof(svc), "%s", pp->service);
		else
			snprintf(svc, sizeof(svc), "%s (--protocol)", P);
		/* Nothing was sent, so nothing was refused: the server's own
		 * rule (a limit, hosts.deny) or another service ended it. */
		if (r->closed_at_once)
			finding(r, "unexpected-service", "%d %s %s, but the server closed the "
			        "connection at once, without a word: a limit on connections (per "
			        "client or in all), TCP wrappers (hosts.deny), or another service "
			        "that waits for no one", port, is, svc);
		/* A protocol the port (or the admin) named, not one the server
		 * showed: a client-first port's reply is no banner. */
		else if (r->protocol && r->protocol_from && strcmp(r->protocol_from, "banner") != 0)
			finding(r, "unexpected-service", "%d %s %s, but it answered neither in TLS "
			        "nor in plaintext %s: another service holds the port", port, is,
			        svc, r->protocol);
		else
			finding(r, "unexpected-service", "%d %s %s, but %s answered", port, is,
			        svc, r->protocol ? r->protocol : "something else");
	}
	if (r->config_mode != NULL && r->model != r->config_model)
		finding(r, "config-mismatch", "listener [%s] has mode = %s, but port %d answers "
		        "as %s: %s", r->listener, r->config_mode, r->port,
		        probe_model_name(r->model), r->model == PROBE_OTHER ||
		        r->model == PROBE_ERROR ? "another server may hold the port, or portier "
		        "is not the one listening" : "clients set up for the config will fail");
	if (r->starttls_offered == 1 && r->starttls_required == 0)
		finding(r, "starttls-not-required", "STARTTLS offered but not required: "
		        "credentials can be sent in clear (%s)",
		        proto->id == CFG_PROTO_SMTP ? "AUTH is offered before STARTTLS" :
		        proto->id == CFG_PROTO_IMAP ? "no LOGINDISABLED before STARTTLS" :
		        proto->id == CFG_PROTO_POP3 ? "USER or SASL offered before STLS" :
		        "the directory answers searches before StartTLS");
	if (!r->tls && r->tls_error[0] && (r->model == PROBE_IMPLICIT_TLS ||
	                                   r->model == PROBE_STARTTLS || r->starttls_offered == 1))
		tls_failed(r);
	for (size_t i = 0; i < r->naddresses; i++) {
		const char *res = r->addresses[i].result;
		int refused = strcmp(res, "refused") == 0;

		if (!refused && strcmp(res, "timeout") != 0)
			continue;
		finding(r, "address-unreachable", "%s resolves to %zu addresses, and %s %s "
		        "(%s answered): clients that try it first %s", r->host,
		        r->naddresses_total, r->addresses[i].address, refused ?
		        "refuses the connection" : "does not answer", r->address[0] ?
		        r->address : "another", refused ? "fail unless they try the next address"
		        : "wait for their own timeout before the next address, or fail");
	}
	if (r->versions[0] == 1)
		finding(r, "tls10-accepted", "TLS 1.0 accepted: disable it (RFC 8996)");
	if (r->versions[1] == 1)
		finding(r, "tls11-accepted", "TLS 1.1 accepted: disable it (RFC 8996)");
	if (!r->have_cert)
		return;
	days = probe_days_left(r);
	if (r->cert.not_after <= r->now)
		finding(r, "cert-expired", "certificate for %s expired %s ago: renew it",
		        cert_name(r, name, sizeof(name)), probe_cert_when(r, when, sizeof(when)));
	else if (days < 30)
		finding(r, "cert-expiring", "certificate for %s expires in %s: renew it",
		        cert_name(r, name, sizeof(name)), probe_cert_when(r, when, sizeof(when)));
	if (!r->name_matches)
		finding(r, "cert-name-mismatch", "certificate for %s does not name %s: clients "
		        "that check the name will refuse it", cert_name(r, name, sizeof(name)), r->name);
	else if (r->name_by_cn)
		finding(r, "cert-name-cn-only", "certificate for %s names %s in its subject CN "
		        "alone, without a subjectAltName: browsers and other clients that follow "
		        "RFC 6125 refuse it; reissue it with %s as a DNS name",
		        cert_name(r, name, sizeof(name)), r->name, r->name);
	if (r->cert.not_before > r->now)
		finding(r, "cert-not-yet-valid", "certificate for %s is not valid before %lld "
		        "(seconds since 1970): check the server's clock or the certificate",
		        cert_name(r, name, sizeof(name)), (long long)r->cert.not_before);
	if (!r->cert.verified && !r->cert.verify_dates_only)
		finding(r, "cert-untrusted", "certificate chain does not verify against %s: %s",
		        r->cafile ? r->cafile : "the system store", r->cert.verify_error);
	if (strcmp(r->cert.key_type, "RSA") == 0 && r->cert.key_bits < 2048)
		finding(r, "weak-key", "certificate key is RSA %d bits: use 2048 or more, or EC",
		        r->cert.key_bits);
}


/* The names of a certificate, as a set: its DNS and IP names, else its CN
 * (what a client checks). */
static int has_name(const struct tlsctx_cert_info *c, const char *n)
{
	if (c->nsans_total == 0)
		return strcasecmp(c->subject_cn, n) == 0;
	for (size_t i = 0; i < c->nsans; i++)
		if (strcasecmp(c->sans[i], n) == 0)
			return 1;
	return 0;
}

static int same_names(const struct tlsctx_cert_info *a, const struct tlsctx_cert_info *b)
{
	if ((a->nsans_total == 0) != (b->nsans_total == 0) || a->nsans_total != b->nsans_total)
		return 0;
	if (a->nsans_total == 0)
		return strcasecmp(a->subject_cn, b->subject_cn) == 0;
	for (size_t i = 0; i < a->nsans; i++)
		if (!has_name(b, a->sans[i]))
			return 0;
	for (size_t i = 0; i < b->nsans; i++)
		if (!has_name(a, b->sans[i]))
			return 0;
	return 1;
}

/* "a, b, c" (or the CN), escaped, cut to fit. */
static const char *names_of(const struct tlsctx_cert_info *c, char *out, size_t outlen)
{
	char esc[LOG_ESCAPED_SIZE(TLSCTX_CERT_NAME_MAX)];
	size_t len = 0;

	out[0] = '\0';
	if (c->nsans_total == 0)
		snprintf(out, outlen, "%s", c->subject_cn[0] ?
		         log_escape_str(c->subject_cn, esc, sizeof(esc)) : "(no name)");
	for (size_t i = 0; i < c->nsans && len < outlen; i++)
		len += (size_t)snprintf(out + len, outlen - len, "%s%s", i ? ", " : "",
		                        log_escape_str(c->sans[i], esc, sizeof(esc)));
	return out;
}

void probe_judge_config_cert(struct probe_result *r, const struct tlsctx_cert_info *want,
                             const char *const *paths, size_t n)
{
	char got[300], wanted[300];
	size_t len = 0, names = n;

	r->cert_config = -1;
	if (!r->have_cert || n == 0)
		return;
	r->cert_config_files[0] = '\0';
	for (size_t i = 0; i < n && len < sizeof(r->cert_config_files); i++)
		len += (size_t)snprintf(r->cert_config_files + len, sizeof(r->cert_config_files) - len,
		                        "%s%s", i ? " or " : "", paths[i]);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(r->cert.serial, want[i].serial) == 0 &&
		    strcmp(r->cert.issuer, want[i].issuer) == 0) {
			r->cert_config = 1;
			return;
		}
		if (names == n && same_names(&r->cert, &want[i]))
			names = i;
	}
	r->cert_config = 0;
	if (names < n)
		finding(r, "cert-not-config", "port %d serves a certificate for the same names "
		        "(%s) as %s, but not that file's (serial %s, not %s): portier has not "
		        "loaded the file since it changed (reload it), or another server holds "
		        "the port", r->port, names_of(&r->cert, got, sizeof(got)), paths[names],
		        r->cert.serial, want[names].serial);
	else
		finding(r, "cert-not-config", "port %d serves a certificate for %s, but the "
		        "config's %s is for %s: another server holds the port, or portier runs "
		        "another config", r->port, names_of(&r->cert, got, sizeof(got)),
		        r->cert_config_files, names_of(&want[0], wanted, sizeof(wanted)));
}
