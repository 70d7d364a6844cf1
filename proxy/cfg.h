#ifndef PORTIER_CFG_H
#define PORTIER_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "cidr.h"
#include "diag.h"

/*
 * The loaded configuration. After cfg_load() returns it is immutable: the
 * running daemon only reads it, and a reload builds a new one beside it and
 * swaps the whole value if, and only if, it loaded without errors.
 */

/* Keys are indexed into 64-bit masks (the `set` fields); cfg_keys.c
 * asserts its table fits. */
#define CFG_KEYS_MAX 64

enum cfg_mode { CFG_MODE_TLS, CFG_MODE_STARTTLS, CFG_MODE_REDIRECT, CFG_MODE_PLAIN };
enum cfg_proto {
	CFG_PROTO_TCP, CFG_PROTO_HTTP, CFG_PROTO_SMTP, CFG_PROTO_IMAP,
	CFG_PROTO_POP3, CFG_PROTO_LDAP, CFG_PROTO_FTP
};
enum cfg_policy { CFG_POLICY_INTERMEDIATE, CFG_POLICY_MODERN };

#define CFG_MAX_WORKERS 64

struct cfg_cert {
	char *cert;          /* PEM: leaf first, then chain */
	char *key;           /* PEM private key; the cert file when not given */
	int line;
	int key_line;        /* 0 when the key is in the cert file */
	char *ocsp;          /* DER OCSP response to staple; NULL: none */
	int ocsp_line;
	int inherited;       /* written in [tls], not in the listener */
};

struct cfg_tls {
	enum cfg_policy policy;
	int min_version;     /* 0x0303 (1.2) or 0x0304 (1.3) */
	char *curves;        /* "X25519:P-256:P-384" */
	struct cfg_cert *certs;
	size_t ncerts;
	char *ticket_keys;   /* key file shared by nodes; NULL: the ratchet */
	int ticket_keys_line;
	int ticket_keys_inherited;   /* written in [tls] */
	uint64_t set;        /* which keys this block set itself (by key index) */
	uint64_t refused;    /* which keys it gave a value refused at its line */
};

struct cfg_listen {
	struct addr addr;
	char *text;          /* as written, for messages */
	int line;
};

struct cfg_listener {
	char *name;          /* the section name */
	int line;            /* line of the section header */
	struct cfg_listen *listen;
	size_t nlisten;
	enum cfg_mode mode;
	enum cfg_proto proto;
	struct addr backend;
	char *backend_text;
	char *alpn;          /* "" = ALPN ignored (plain TCP) */
	unsigned handshake_timeout_ms;
	unsigned idle_timeout_ms;
	unsigned connect_timeout_ms;
	unsigned prelude_timeout_ms;   /* whole pre-TLS phase of STARTTLS */
	unsigned max_connections;
	/* Per client, all workers together (limit.h); 0: off. rate_burst 0:
	 * the rate's second's worth, at least 1. ipv6_prefix 0: [portier]'s. */
	unsigned max_conns_per_ip;
	unsigned rate_per_min;       /* rate_per_ip, in connections a minute */
	unsigned rate_burst;
	unsigned ipv6_prefix;
	int redirect_port;
	struct addr acme_backend;
	char *acme_backend_text;
	int starttls_optional;
	int xclient;         /* SMTP: XCLIENT ADDR/PORT to the backend */
	int send_proxy;      /* enum proxy_version: PROXY header to the backend */
	int accept_proxy;    /* a PROXY header opens every connection */
	struct cidr *proxy_from;   /* who may send one (accept_proxy_from) */
	size_t nproxy_from;
	unsigned accept_proxy_timeout_ms;   /* for the header to arrive */
	char *hostname;      /* STARTTLS greeting name; the global one when unset */
	/* FTP (docs/ftps.md): the passive data ports, the address a 227
	 * announces (all zero: the control connection's own), the data
	 * channel's rules. */
	unsigned ftp_data_low, ftp_data_high;   /* 0 0: no range set */
	uint8_t ftp_public_v4[4];
	int ftp_prot_c_ok;           /* data_protection = optional */
	int ftp_peer_check;          /* data_peer_check = yes */
	int ftp_session_reuse;       /* require_session_reuse = yes */
	unsigned ftp_max_data;       /* max_data_connections */
	int ftp_active;              /* active = yes: PORT and EPRT taken */
	struct cfg_tls tls;  /* effective: [tls] overridden by this section */
	uint64_t set;        /* which keys this section set (by key index) */
	/* Which keys it gave a refused value: said at their lines, so the
	 * checks of keys together neither call them missing nor judge the
	 * default that stands in for them. */
	uint64_t refused;
	/* The line each key was first given at in this section, by key
	 * index (0: not given), so that a check of keys together points at
	 * the key it blames (cfg_listener_line). */
	int key_line[CFG_KEYS_MAX];
};

struct cfg {
	char *file;
	char *log;           /* "syslog", "stderr" or a path */
	int log_quiet;       /* log_level = warning: no per-connection lines */
	int log_json;        /* log_format = json */
	char *user;
	char *ports_file;    /* where bound ports are written (tests, tooling) */
	char *pid_file;      /* written after detaching */
	int log_line, ports_file_line, pid_file_line;
	unsigned workers;    /* how many; 0: one per CPU (decided at start) */
	unsigned max_connections;   /* per worker, all listeners together; 0: none */
	unsigned ipv6_prefix;       /* the listeners' default; 0: 64 */
	unsigned drain_timeout_ms;  /* draining workers (reload, SIGQUIT) end by then */
	char *hostname;      /* [portier] hostname, else the system's name */
	struct cfg_listen stats;   /* the metrics endpoint; text NULL: none */
	struct cfg_tls tls;
	struct cfg_listener *listeners;
	size_t nlisteners;
	uint64_t set;
	uint64_t refused;
};

/* cfg_load_file(path, d): parse and validate the file. Every problem goes to
 * d. Returns NULL if there was any error (warnings alone still load). */
struct cfg *cfg_load_file(const char *path, struct diag *d);

/* cfg_load_string(name, text, d): as cfg_load_file, from memory; name is
 * the file name used in messages. */
struct cfg *cfg_load_string(const char *name, const char *text, struct diag *d);

/* What a load takes from the machine rather than the file; a seam for
 * tests, which cannot rename the host they run on. */
struct cfg_load_opts {
	const char *system_hostname;   /* NULL: gethostname(2) */
	/* -t: return what was read even with errors (d->errors says so), so
	 * that the certificates are checked in the same run. Such a config
	 * is for checking only, never for serving. */
	int keep_with_errors;
};

/* cfg_load_file_opts(path, opts, d): cfg_load_file with opts. */
struct cfg *cfg_load_file_opts(const char *path, const struct cfg_load_opts *opts,
                               struct diag *d);

/* cfg_load_string_opts(name, text, opts, d): as cfg_load_string, with opts
 * (NULL: all defaults) in place of what the machine says. */
struct cfg *cfg_load_string_opts(const char *name, const char *text,
                                 const struct cfg_load_opts *opts, struct diag *d);

/* cfg_hostname_ok(h): 1 if h may be the name in a STARTTLS greeting: 1 to
 * 253 ASCII letters, digits, '-' and '.', nothing that could end or inject
 * a protocol line; else 0. The rule starttls_init applies, so that a name
 * the loader accepts never fails a connection. */
int cfg_hostname_ok(const char *h);

/* cfg_free(c): release c; NULL is a no-op. */
void cfg_free(struct cfg *c);

/* Names for messages and logs. */
const char *cfg_mode_name(enum cfg_mode m);
const char *cfg_proto_name(enum cfg_proto p);

/* cfg_listener_line(l, key): the line where l gives key, or l's section
 * header when it does not (a key that is missing is blamed there). */
int cfg_listener_line(const struct cfg_listener *l, const char *key);

/* cfg_listener_port(l): the first configured port, for messages. */
int cfg_listener_port(const struct cfg_listener *l);

#endif
