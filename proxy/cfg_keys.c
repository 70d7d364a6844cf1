#include "cfg_keys.h"
#include "cfg_value.h"
#include "proto.h"
#include "privdrop.h"
#include "starttls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Each duration key's bounds: below them a timer fires before any peer
 * could answer, above them a stuck connection is held for nothing. The
 * help lines in the table below say the same; keep them in step. */
#define DRAIN_RANGE     1 * MS_SEC, 7 * MS_DAY
#define HANDSHAKE_RANGE 100, 10 * MS_MIN
#define IDLE_RANGE      1 * MS_SEC, 7 * MS_DAY
#define CONNECT_RANGE   100, 10 * MS_MIN
#define PRELUDE_RANGE   1 * MS_SEC, 1 * MS_HOUR
#define PROXYHDR_RANGE  100, 1 * MS_MIN

static int set_log(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	struct stat st;

	if (strcmp(v, "syslog") && strcmp(v, "stderr") && v[0] != '/') {
		snprintf(err, errlen, "'%s': expected syslog, stderr or an absolute path", v);
		return -1;
	}
	/* A directory cannot be opened for appending: the start would fail
	 * at once, after -t, and without naming this line. */
	if (v[0] == '/' && stat(v, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "'%s' is a directory; expected the path of the "
		         "log file", v);
		return -1;
	}
	c->cfg->log_line = c->line;
	return cfg_value_string(&c->cfg->log, v);
}

static int set_log_level(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	static const char *const names[] = {"info", "warning", NULL};
	int i;

	if (cfg_value_choice(v, names, &i, err, errlen) < 0)
		return -1;
	c->cfg->log_quiet = i;
	return 0;
}

static int set_log_format(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	static const char *const names[] = {"text", "json", NULL};

	return cfg_value_choice(v, names, &c->cfg->log_json, err, errlen);
}

/* Checked here, so that -t finds an account that does not exist. */
static int set_user(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	struct privdrop pd;

	if (privdrop_lookup(v, &pd, err, errlen) < 0)
		return -1;
	return cfg_value_string(&c->cfg->user, v);
}

static int set_ports_file(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	if (v[0] != '/') {
		snprintf(err, errlen, "'%s': expected an absolute path", v);
		return -1;
	}
	c->cfg->ports_file_line = c->line;
	return cfg_value_string(&c->cfg->ports_file, v);
}

static int set_pid_file(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	if (v[0] != '/') {
		snprintf(err, errlen, "'%s': expected an absolute path", v);
		return -1;
	}
	c->cfg->pid_file_line = c->line;
	return cfg_value_string(&c->cfg->pid_file, v);
}

/* The metrics endpoint: an address as a listen line takes it. */
static int set_stats(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	struct cfg_listen *st = &c->cfg->stats;

	if (addr_parse_listen(&st->addr, v, err, errlen) < 0)
		return -1;
	st->line = c->line;
	return cfg_value_string(&st->text, v);
}

/* A number, or "auto": one worker per CPU portier may run on. */
static int set_workers(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "auto") == 0) {
		c->cfg->workers = 0;
		return 0;
	}
	return cfg_value_uint(v, 1, CFG_MAX_WORKERS, &c->cfg->workers, err, errlen);
}

static int set_drain_timeout(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	return cfg_value_duration(v, DRAIN_RANGE, &c->cfg->drain_timeout_ms, err, errlen);
}

/* A refused name is stored all the same (the config is discarded anyway),
 * so that the load does not go on to blame the system name it would
 * otherwise fall back to. */
static int set_hostname(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	if (cfg_value_string(c->listener ? &c->listener->hostname : &c->cfg->hostname, v) < 0)
		return -1;
	if (!cfg_hostname_ok(v)) {
		snprintf(err, errlen, "'%s' is not a host name: expected 1 to %d "
		         "letters, digits, '-' and '.'", v, STARTTLS_HOST_MAX);
		return -1;
	}
	return 0;
}

static int set_policy(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	static const char *const names[] = {"intermediate", "modern", NULL};
	int i;

	if (cfg_value_choice(v, names, &i, err, errlen) < 0)
		return -1;
	c->tls->policy = (enum cfg_policy)i;
	return 0;
}

static int set_min_version(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	if (strcmp(v, "1.2") == 0)
		c->tls->min_version = 0x0303;
	else if (strcmp(v, "1.3") == 0)
		c->tls->min_version = 0x0304;
	else {
		snprintf(err, errlen, "'%s' is not allowed; expected 1.2 or 1.3 "
		         "(TLS 1.0 and 1.1 are broken and refused)", v);
		return -1;
	}
	return 0;
}

static int set_curves(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	static const char *const known[] = {"X25519", "P-256", "P-384", "P-521", NULL};
	char *copy, *tok, *save;
	int i, rc = 0;

	if ((copy = strdup(v)) == NULL)
		return -1;
	for (tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
		if (cfg_value_choice(tok, known, &i, err, errlen) < 0) {
			rc = -1;
			break;
		}
	}
	free(copy);
	/* strtok_r skips empty items, which the TLS library refuses later,
	 * with no word of which: none at all, or a leading, trailing or
	 * doubled ':'. */
	if (rc == 0 && (*v == '\0' || *v == ':' || v[strlen(v) - 1] == ':' ||
	                strstr(v, "::") != NULL)) {
		snprintf(err, errlen, "expected a ':'-separated list such as X25519:P-256");
		rc = -1;
	}
	return rc == 0 ? cfg_value_string(&c->tls->curves, v) : -1;
}

static int set_cert(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	struct cfg_tls *t = c->tls;
	struct cfg_cert *certs;

	if ((certs = realloc(t->certs, (t->ncerts + 1) * sizeof(*certs))) == NULL)
		return -1;
	t->certs = certs;
	memset(&certs[t->ncerts], 0, sizeof(*certs));
	if ((certs[t->ncerts].cert = strdup(v)) == NULL)
		return -1;
	certs[t->ncerts].line = c->line;
	t->ncerts++;
	return 0;
}

static int set_key(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	struct cfg_tls *t = c->tls;

	if (t->ncerts == 0 || t->certs[t->ncerts - 1].key != NULL) {
		snprintf(err, errlen, "a key pairs with the cert line before it; "
		         "put 'cert = ...' first");
		return -1;
	}
	t->certs[t->ncerts - 1].key_line = c->line;
	return cfg_value_string(&t->certs[t->ncerts - 1].key, v);
}

static int set_ocsp(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	struct cfg_tls *t = c->tls;

	if (t->ncerts == 0 || t->certs[t->ncerts - 1].ocsp != NULL) {
		snprintf(err, errlen, "an ocsp response pairs with the cert line before it; "
		         "put 'cert = ...' first");
		return -1;
	}
	t->certs[t->ncerts - 1].ocsp_line = c->line;
	return cfg_value_string(&t->certs[t->ncerts - 1].ocsp, v);
}

static int set_ticket_keys(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	c->tls->ticket_keys_line = c->line;
	return cfg_value_string(&c->tls->ticket_keys, v);
}

static int set_listen(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	struct cfg_listener *l = c->listener;
	struct cfg_listen *ls;

	if ((ls = realloc(l->listen, (l->nlisten + 1) * sizeof(*ls))) == NULL)
		return -1;
	l->listen = ls;
	memset(&ls[l->nlisten], 0, sizeof(*ls));
	if (addr_parse_listen(&ls[l->nlisten].addr, v, err, errlen) < 0)
		return -1;
	if ((ls[l->nlisten].text = strdup(v)) == NULL)
		return -1;
	ls[l->nlisten].line = c->line;
	l->nlisten++;
	return 0;
}

static int set_mode(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	static const char *const names[] = {"tls", "starttls", "redirect", "plain", NULL};
	int i;

	if (cfg_value_choice(v, names, &i, err, errlen) < 0)
		return -1;
	c->listener->mode = (enum cfg_mode)i;
	return 0;
}

static int set_protocol(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	const char *names[16];
	size_t n = proto_count() < 15 ? proto_count() : 15;
	int i;

	/* The protocol table names them; its order is the enum's. */
	for (size_t k = 0; k < n; k++)
		names[k] = proto_at(k)->name;
	names[n] = NULL;
	if (cfg_value_choice(v, names, &i, err, errlen) < 0)
		return -1;
	c->listener->proto = proto_at((size_t)i)->id;
	return 0;
}

static int set_backend(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	if (addr_parse_backend(&c->listener->backend, v, err, errlen) < 0)
		return -1;
	return cfg_value_string(&c->listener->backend_text, v);
}

static int set_acme_backend(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	if (addr_parse_backend(&c->listener->acme_backend, v, err, errlen) < 0)
		return -1;
	return cfg_value_string(&c->listener->acme_backend_text, v);
}

static int set_alpn(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	size_t n = strlen(v);

	if (n > 32 || strpbrk(v, " ,:") != NULL) {
		snprintf(err, errlen, "'%s': expected one protocol id such as "
		         "http/1.1, imap or smtp, or 'none'", v);
		return -1;
	}
	return cfg_value_string(&c->listener->alpn, strcmp(v, "none") == 0 ? "" : v);
}

#define DURATION_SETTER(field, range)                                        \
	static int set_##field(struct cfg_ctx *c, const char *v, char *err,  \
	                       size_t errlen)                                \
	{                                                                    \
		return cfg_value_duration(v, range, &c->listener->field##_ms,    \
		                      err, errlen);                          \
	}
DURATION_SETTER(handshake_timeout, HANDSHAKE_RANGE)
DURATION_SETTER(idle_timeout, IDLE_RANGE)
DURATION_SETTER(connect_timeout, CONNECT_RANGE)
DURATION_SETTER(prelude_timeout, PRELUDE_RANGE)
DURATION_SETTER(accept_proxy_timeout, PROXYHDR_RANGE)

static int set_max_connections(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	return cfg_value_uint(v, 1, 1000000, c->listener ? &c->listener->max_connections
	                                             : &c->cfg->max_connections, err, errlen);
}

static int set_max_conns_per_ip(struct cfg_ctx *c, const char *v, char *err,
                                size_t errlen)
{
	return cfg_value_uint(v, 1, 1000000, &c->listener->max_conns_per_ip, err, errlen);
}

/* N, N/s or N/m: kept a minute's worth, so that 1/m is exact. */
static int set_rate_per_ip(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	char num[16];
	const char *slash = strchr(v, '/');
	size_t n = slash ? (size_t)(slash - v) : strlen(v);
	unsigned per_min = 0, r;

	if (slash == NULL || strcmp(slash, "/s") == 0)
		per_min = 60;
	else if (strcmp(slash, "/m") == 0)
		per_min = 1;
	if (per_min == 0 || n == 0 || n >= sizeof(num)) {
		snprintf(err, errlen, "'%s': expected connections a second or a "
		         "minute: N, N/s or N/m", v);
		return -1;
	}
	memcpy(num, v, n);
	num[n] = '\0';
	if (cfg_value_uint(num, 1, per_min == 60 ? 10000 : 600000, &r, err, errlen) < 0)
		return -1;
	c->listener->rate_per_min = r * per_min;
	return 0;
}

static int set_rate_burst(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	return cfg_value_uint(v, 1, 10000, &c->listener->rate_burst, err, errlen);
}

static int set_ipv6_prefix(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	return cfg_value_uint(v, 32, 128, c->listener ? &c->listener->ipv6_prefix
	                                          : &c->cfg->ipv6_prefix, err, errlen);
}

static int set_redirect_port(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	unsigned p;

	if (cfg_value_uint(v, 1, 65535, &p, err, errlen) < 0)
		return -1;
	c->listener->redirect_port = (int)p;
	return 0;
}

static int set_starttls(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	static const char *const names[] = {"required", "optional", NULL};
	int i;

	if (cfg_value_choice(v, names, &i, err, errlen) < 0)
		return -1;
	c->listener->starttls_optional = i;
	return 0;
}

static int set_xclient(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	static const char *const names[] = {"no", "yes", NULL};
	int i;

	if (cfg_value_choice(v, names, &i, err, errlen) < 0)
		return -1;
	c->listener->xclient = i;
	return 0;
}

/* none, v1, v2: the index is enum proxy_version. */
static int set_send_proxy(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	static const char *const names[] = {"none", "v1", "v2", NULL};

	return cfg_value_choice(v, names, &c->listener->send_proxy, err, errlen);
}

static int set_accept_proxy(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	static const char *const names[] = {"no", "yes", NULL};

	return cfg_value_choice(v, names, &c->listener->accept_proxy, err, errlen);
}

/* Space-separated ranges; a repeated line adds to the list. */
static int set_accept_proxy_from(struct cfg_ctx *c, const char *v, char *err,
                                 size_t errlen)
{
	struct cfg_listener *l = c->listener;
	const char *p = v;
	int rc;

	while (*p) {
		char word[64];
		size_t n = strcspn(p, " \t");
		struct cidr *grown;

		if (n == 0) {
			p++;
			continue;
		}
		if (n >= sizeof(word)) {
			snprintf(err, errlen, "'%.*s...' is not an address or ADDR/BITS", 20, p);
			return -1;
		}
		memcpy(word, p, n);
		word[n] = '\0';
		p += n;
		if ((grown = realloc(l->proxy_from, (l->nproxy_from + 1) * sizeof(*grown))) == NULL)
			return -1;
		l->proxy_from = grown;
		if ((rc = cidr_parse(word, &grown[l->nproxy_from])) == -2) {
			const struct cidr *m = &grown[l->nproxy_from];
			char v4[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &m->ip[12], v4, sizeof(v4));
			if (strchr(word, '/') != NULL)
				snprintf(err, errlen, "'%s' is an IPv4-mapped IPv6 range, "
				         "which no client matches (IPv4 clients are "
				         "matched as IPv4); write it as %s/%d", word, v4,
				         m->bits - 96);
			else
				snprintf(err, errlen, "'%s' is an IPv4-mapped IPv6 address, "
				         "which no client matches (IPv4 clients are "
				         "matched as IPv4); write it as %s", word, v4);
			return -1;
		}
		if (rc < 0) {
			snprintf(err, errlen, "'%s' is not an address or ADDR/BITS "
			         "(IPv4 or IPv6, no host bits past the prefix)", word);
			return -1;
		}
		l->nproxy_from++;
	}
	if (l->nproxy_from == 0) {
		snprintf(err, errlen, "expected one or more addresses or ADDR/BITS ranges");
		return -1;
	}
	return 0;
}

/* LOW-HIGH, unprivileged ports: portier binds them in the workers, which
 * may have given up root. */
static int set_data_ports(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	unsigned long lo, hi;
	char *end;

	/* Bounded as unsigned long, before the narrowing below: 4294968320
	 * would otherwise pass as 1024. */
	errno = 0;
	lo = strtoul(v, &end, 10);
	if (!isdigit((unsigned char)v[0]) || *end != '-' ||
	    !isdigit((unsigned char)end[1]))
		goto bad;
	hi = strtoul(end + 1, &end, 10);
	if (*end || errno || lo < 1024 || hi > 65535 || lo > hi)
		goto bad;
	c->listener->ftp_data_low = (unsigned)lo;
	c->listener->ftp_data_high = (unsigned)hi;
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not a range LOW-HIGH of ports from 1024 to "
	         "65535", v);
	return -1;
}

static int set_public_address(struct cfg_ctx *c, const char *v, char *err,
                              size_t errlen)
{
	struct in_addr a;

	if (inet_pton(AF_INET, v, &a) != 1 || a.s_addr == 0) {
		snprintf(err, errlen, "'%s' is not an IPv4 address (a PASV reply "
		         "can only name one; EPSV clients need none)", v);
		return -1;
	}
	memcpy(c->listener->ftp_public_v4, &a, 4);
	return 0;
}

static int set_data_protection(struct cfg_ctx *c, const char *v, char *err,
                               size_t errlen)
{
	static const char *const names[] = {"required", "optional", NULL};

	return cfg_value_choice(v, names, &c->listener->ftp_prot_c_ok, err, errlen);
}

static int set_data_peer_check(struct cfg_ctx *c, const char *v, char *err,
                               size_t errlen)
{
	static const char *const names[] = {"no", "yes", NULL};

	return cfg_value_choice(v, names, &c->listener->ftp_peer_check, err, errlen);
}

static int set_require_session_reuse(struct cfg_ctx *c, const char *v, char *err,
                                     size_t errlen)
{
	static const char *const names[] = {"no", "yes", NULL};

	return cfg_value_choice(v, names, &c->listener->ftp_session_reuse, err, errlen);
}

static int set_active(struct cfg_ctx *c, const char *v, char *err, size_t errlen)
{
	static const char *const names[] = {"no", "yes", NULL};

	return cfg_value_choice(v, names, &c->listener->ftp_active, err, errlen);
}

static int set_max_data_connections(struct cfg_ctx *c, const char *v, char *err,
                                    size_t errlen)
{
	return cfg_value_uint(v, 1, 64, &c->listener->ftp_max_data, err, errlen);
}

#define G CFG_SEC_GLOBAL
#define T CFG_SEC_TLS
#define L CFG_SEC_LISTENER

const struct cfg_key cfg_keys[] = {
	{"log", G, 0, set_log, "syslog|stderr|path", "syslog",
	 "Where log lines go; -f sends them to stderr whatever this says. A path that is a directory is an error. A reload moves it, but not to stderr once detached (a warning; it stays); SIGUSR1 reopens a file."},
	{"log_level", G, 0, set_log_level, "info|warning", "info",
	 "info logs a line per connection (its close, or its failed "
	 "handshake); warning drops those and keeps the rest."},
	{"log_format", G, 0, set_log_format, "text|json", "text",
	 "json: every line one JSON object (time, level, process, pid, then msg, or a connection's fields); a reload applies it."},
	{"user", G, 0, set_user, "name", "(none)",
	 "Unprivileged account the workers switch to; the master keeps root. Needs root to start."},
	{"ports_file", G, 0, set_ports_file, "path", "(none)",
	 "After binding, write 'LISTENER ADDR:PORT' per socket here (for port 0 and tooling)."},
	{"pid_file", G, 0, set_pid_file, "path", "(none)",
	 "The master writes its process id here (with -f too); a reload that names another file moves it."},
	{"stats", G, 0, set_stats, "ADDR:PORT", "(none)",
	 "Serve Prometheus metrics at http://ADDR:PORT/metrics (GET and HEAD only). Keep it on loopback: -t warns about any other address."},
	{"workers", G, 0, set_workers, "number|auto", "1",
	 "Worker processes serving the listeners, started and restarted by the master. auto: one per CPU."},
	{"drain_timeout", G, 0, set_drain_timeout, "duration", "30m",
	 "After a reload (SIGHUP), how long the old workers may finish their connections before they are closed; after SIGQUIT (a graceful stop), how long every worker may. 1s to 7 days."},
	{"hostname", G | L, 0, set_hostname, "name", "the machine's name",
	 "Name portier gives in STARTTLS greetings (SMTP 220): 1 to 253 letters, digits, '-' and '.'. Checked at load for each STARTTLS listener, the machine's name included."},
	{"policy", T, 0, set_policy, "intermediate|modern", "intermediate",
	 "intermediate: TLS 1.2 + 1.3, ECDHE + AEAD suites only; modern: TLS 1.3 only."},
	{"min_version", T, 0, set_min_version, "1.2|1.3", "1.2",
	 "Lowest TLS version accepted; lower values are refused."},
	{"curves", T, 0, set_curves, "list", "X25519:P-256:P-384",
	 "Key-exchange groups in preference order, ':'-separated."},
	{"cert", T, 1, set_cert, "path", "(none)",
	 "PEM certificate, leaf first then chain; repeat for more names or an RSA+ECDSA pair."},
	{"key", T, 1, set_key, "path", "the cert file",
	 "PEM private key of the cert line before it."},
	{"ocsp", T, 1, set_ocsp, "path", "(none)",
	 "DER OCSP response for the cert line before it (openssl ocsp -respout), stapled to handshakes that ask. Checked at load (this certificate's, signed by its issuer or a responder the issuer names, good, not expired); re-read on reload; no longer stapled once past its nextUpdate (one without it: a day after its thisUpdate)."},
	{"ticket_keys", T, 0, set_ticket_keys, "path", "(none)",
	 "Session-ticket keys shared by several nodes: one base64 line of 80 (or 48) random bytes per key; the first encrypts, all decrypt. Read by the master at start and on reload; refused when readable or writable by everyone. Without it each node makes its own keys."},
	{"listen", L, 1, set_listen, "PORT|ADDR:PORT|[V6]:PORT", "(required)",
	 "Where to accept; a bare port means every address, v4 and v6. Repeatable."},
	{"mode", L, 0, set_mode, "tls|starttls|redirect|plain", "tls",
	 "tls: implicit TLS; starttls: upgrade in the protocol; redirect: HTTP to HTTPS; plain: relay TCP."},
	{"protocol", L, 0, set_protocol, "tcp|http|smtp|imap|pop3|ldap|ftp", "tcp",
	 "What the clients speak: sets defaults, ALPN, error replies and STARTTLS dialect."},
	{"backend", L, 0, set_backend, "HOST:PORT|unix:/path", "(required but for redirect)",
	 "Plaintext server the clients are relayed to."},
	{"alpn", L, 0, set_alpn, "id|none", "per protocol",
	 "ALPN id the listener serves (http/1.1, smtp, imap, pop3, ldap, ftp); a client offering only others is refused."},
	{"handshake_timeout", L, 0, set_handshake_timeout, "duration", "10s",
	 "Time a client has to complete the TLS handshake. 100ms to 10m."},
	{"idle_timeout", L, 0, set_idle_timeout, "duration", "per protocol",
	 "A relayed connection with no bytes either way for this long is closed. 1s to 7 days."},
	{"connect_timeout", L, 0, set_connect_timeout, "duration", "5s",
	 "Time the backend has to accept a connection and, where the server speaks "
	 "first (smtp, imap, pop3, ftp), to greet. 100ms to 10m."},
	{"prelude_timeout", L, 0, set_prelude_timeout, "duration", "30s",
	 "Time for the whole pre-TLS dialogue of a STARTTLS listener. 1s to 1h."},
	{"max_connections", G | L, 0, set_max_connections, "number",
	 "10000 per listener, none in [portier]",
	 "Open connections at which the listener stops accepting until one closes; in [portier], the same for all of a worker's listeners together (each worker counts its own). An FTP listener's data connections count too and can stop it accepting, but are not refused by it: each control connection has at most max_data_connections. 1 to 1000000."},
	{"max_connections_per_ip", L, 0, set_max_conns_per_ip, "number", "(none)",
	 "Open connections one client (one address; an IPv6 one by its ipv6_prefix) may have on this listener, counted across all workers; one more is refused in the protocol's words (SMTP 421 4.7.0, IMAP BYE, POP3 -ERR [SYS/TEMP], HTTP 503), or closed before the TLS handshake. 1 to 1000000."},
	{"rate_per_ip", L, 0, set_rate_per_ip, "N|N/s|N/m", "(none)",
	 "New connections one client may open on this listener, a second (N, N/s) or a minute (N/m), across all workers (a token bucket of rate_burst); one more is refused as with max_connections_per_ip. 1/s to 10000/s, 1/m to 600000/m."},
	{"rate_burst", L, 0, set_rate_burst, "number", "one second's worth of rate_per_ip, at least 1",
	 "How many connections a client that was quiet may open at once before rate_per_ip holds it back. Needs rate_per_ip. 1 to 10000."},
	{"ipv6_prefix", G | L, 0, set_ipv6_prefix, "bits", "64",
	 "The per-client limits count IPv6 clients by this many leading bits of their address (a /64 is usually one site). In [portier], every listener's default. 32 to 128."},
	{"redirect_port", L, 0, set_redirect_port, "port", "443",
	 "Port in the https:// Location of a redirect listener (left out when 443)."},
	{"acme_backend", L, 0, set_acme_backend, "HOST:PORT|unix:/path", "(none)",
	 "Redirect listeners forward /.well-known/acme-challenge/ here (certbot http-01)."},
	{"xclient", L, 0, set_xclient, "yes|no", "no",
	 "SMTP STARTTLS: send the client's address to the backend with XCLIENT (Postfix)."},
	{"send_proxy", L, 0, set_send_proxy, "none|v1|v2", "none",
	 "Open each backend connection with a PROXY protocol header (HAProxy's): the client's and the listener's addresses; v2 adds ALPN, SNI, TLS version and cipher. Replaces XCLIENT."},
	{"accept_proxy", L, 0, set_accept_proxy, "yes|no", "no",
	 "Every connection opens with a PROXY protocol header (v1 or v2, HAProxy's) from a load balancer; its client address is the client's from then on (logs, XCLIENT, send_proxy). Needs accept_proxy_from."},
	{"accept_proxy_from", L, 1, set_accept_proxy_from, "ADDR[/BITS] ...", "(none)",
	 "The load balancers that may send the PROXY header: addresses and ranges, space-separated; a connection from any other address is refused and logged."},
	{"accept_proxy_timeout", L, 0, set_accept_proxy_timeout, "duration", "5s",
	 "Time for the whole PROXY header to arrive, before the handshake's own deadline starts. 100ms to 1m."},
	{"starttls", L, 0, set_starttls, "required|optional", "required",
	 "optional lets a client go on without TLS (SMTP port 25 must: RFC 3207)."},
	{"data_ports", L, 0, set_data_ports, "LOW-HIGH", "(required for FTP behind TLS)",
	 "FTP: the ports portier opens for passive data connections (PASV, EPSV), one per transfer; 1024 to 65535."},
	{"public_address", L, 0, set_public_address, "IPv4 address", "the control connection's local address",
	 "FTP: the address a PASV reply (227) names; set it when clients reach portier through NAT."},
	{"data_protection", L, 0, set_data_protection, "required|optional", "required",
	 "FTP: required refuses PROT C (534): every data connection is TLS; optional lets a client transfer in the clear."},
	{"data_peer_check", L, 0, set_data_peer_check, "yes|no", "yes",
	 "FTP: a data connection must come from the control connection's address."},
	{"require_session_reuse", L, 0, set_require_session_reuse, "yes|no", "yes",
	 "FTP: a data connection must resume the control connection's TLS session (as vsftpd and FileZilla Server ask); no for clients that cannot."},
	{"max_data_connections", L, 0, set_max_data_connections, "number", "2",
	 "FTP: data ports a control connection may hold open at once. 1 to 64."},
	{"active", L, 0, set_active, "yes|no", "no",
	 "FTP: take active mode (PORT, EPRT; else 502): portier connects to the client's own address only, at a port above 1023, and gives the backend a port of its own."},
};
const size_t cfg_nkeys = sizeof(cfg_keys) / sizeof(cfg_keys[0]);
_Static_assert(sizeof(cfg_keys) / sizeof(cfg_keys[0]) <= CFG_KEYS_MAX,
               "the key table outgrew the 64-bit `set` masks");
