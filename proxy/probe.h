#ifndef PORTIER_PROBE_H
#define PORTIER_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "tlsctx.h"

/*
 * `portier probe HOST:PORT`: connect to any server, say how it uses TLS on
 * that port (implicit, STARTTLS, none), what TLS it speaks and what
 * certificate it shows, and what is wrong with that, in words a person
 * can act on. probe_cli.c is the command line; probe_run.c sets up one
 * probe and probe.c holds its conversation with the port (probe_int.h
 * joins them); probe_config.c probes a config's listeners; probe_judge.c
 * judges what it found; probe_talk.c speaks each protocol up to TLS;
 * probe_io.c is the socket with deadlines; probe_report.c prints the
 * result for people or as JSON.
 */

/* How the port uses TLS. */
enum probe_model {
	PROBE_ERROR,            /* could not probe: no address, reset ... */
	PROBE_CLOSED,           /* connection refused */
	PROBE_FILTERED,         /* no answer to the connect: a firewall */
	PROBE_IMPLICIT_TLS,     /* TLS from the first byte */
	PROBE_STARTTLS,         /* plaintext, upgraded by the protocol */
	PROBE_PLAIN,            /* the protocol, and no TLS offered */
	PROBE_OTHER             /* something else answered (SSH, ...) */
};

#define PROBE_MAX_FINDINGS 16
#define PROBE_NVERSIONS 4       /* TLS 1.0, 1.1, 1.2, 1.3 */

struct probe_finding {
	const char *id;         /* stable: "plaintext-on-implicit-port" */
	char text[512];
};

#define PROBE_MAX_ADDRESSES 8

/* One address a name resolved to, and what the probe did with it. */
struct probe_address {
	char address[64];       /* numeric */
	const char *result;     /* "probed", "refused", "timeout", "error",
	                           "not tried" */
};

/* Everything a probe learned. Text from the server is kept escaped
 * (log_escape): printable ASCII only. */
struct probe_result {
	char host[256];
	char address[64];       /* the address probed, numeric */
	struct probe_address addresses[PROBE_MAX_ADDRESSES];   /* resolved, in
	                           the order tried */
	size_t naddresses;      /* kept in addresses */
	size_t naddresses_total;   /* resolved */
	int port;
	int judged_port;        /* port, or --as-port */
	enum probe_model model;
	const char *protocol;   /* "imap"; "ssh" for a banner; NULL unknown */
	const char *protocol_from;   /* "option", "port", "greeting", "banner" */
	int protocol_given;     /* --protocol named the protocol probed: what
	                           else answers is unexpected on any port */
	int closed_at_once;     /* the server closed before a byte, and before
	                           the probe sent one */
	char greeting[300];     /* the server's first line, escaped */
	int starttls_offered;   /* -1 not asked */
	int starttls_required;  /* 1 login refused before TLS, 0 accepted,
	                           -1 cannot tell */
	int tls;                /* a handshake succeeded */
	char tls_error[256];    /* why not, when one was tried */
	int tls_name_refused;   /* that was the server's unrecognized_name alert */
	char version[16], cipher[64], group[32], alpn[64];
	int ocsp_stapled;
	int versions[PROBE_NVERSIONS];   /* 1 accepted, 0 refused, -1 not tried */
	int have_cert;
	struct tlsctx_cert_info cert;
	const char *name;       /* the name checked: --sni or HOST */
	int name_matches;
	int name_by_cn;         /* ...by the subject CN alone: no subjectAltName */
	const char *cafile;     /* NULL: the system store */
	char http_status[128];  /* port 80: the status line, escaped */
	char http_location[256];
	char error[600];        /* why the port could not be probed */
	/* --config: the listener this port belongs to and the model its mode
	 * promises (NULL: none, mode = plain relays anything). */
	const char *listener;
	const char *config;     /* --config's path, for the commands named */
	const char *config_mode;
	enum probe_model config_model;
	int cert_config;        /* the certificate is a leaf of the config's cert
	                           files: 1, 0; -1 not compared */
	char cert_config_files[300];   /* those files, for the report */
	struct probe_finding findings[PROBE_MAX_FINDINGS];
	size_t nfindings;
	int connections;
	long elapsed_ms;
	time_t now;
};

/* What the port is supposed to speak, from the port or the options. */
enum probe_expect {
	PROBE_EXPECT_UNKNOWN,   /* no well-known port of the protocol */
	PROBE_EXPECT_IMPLICIT,  /* 993, 443 ... */
	PROBE_EXPECT_STARTTLS,  /* 143, 587 ... */
	PROBE_EXPECT_PLAIN      /* 80 */
};

struct proto;
struct proto_port;

/* probe_judge(r, proto, pp, expect): add to r the findings of what it
 * holds: a filtered port (alone: its likely cause and the command that
 * opens a portier config's ports), addresses of the name that refused or
 * dropped the connection while another answered, a model that is not the one expect says port r->judged_port
 * (whose entry is pp, NULL when none) should have, no TLS, STARTTLS not
 * required, old TLS versions, and the certificate's dates, name, chain and
 * key (probe_judge.c). proto may be NULL (unknown). */
void probe_judge(struct probe_result *r, const struct proto *proto,
                 const struct proto_port *pp, enum probe_expect expect);

/* probe_judge_config_cert(r, want, paths, n): compare the certificate
 * r got with the leaves want[0..n) of the config's cert files (paths):
 * the same one (serial and issuer) sets r->cert_config to 1; otherwise it
 * is 0 and a finding says whether the names differ too (another server,
 * another config) or only the certificate (a file portier has not loaded
 * yet). No-op without a certificate or n == 0 (probe_judge.c). */
void probe_judge_config_cert(struct probe_result *r, const struct tlsctx_cert_info *want,
                             const char *const *paths, size_t n);

/* The options of one probe. */
struct probe_opts {
	const char *protocol;   /* --protocol, or NULL */
	const char *sni;        /* --sni, or NULL: the host */
	const char *cafile;     /* --cafile, or NULL: the system store */
	long timeout_ms;        /* --timeout */
	int as_port;            /* --as-port, or 0 */
};

/* probe_run(o, target, r): probe target ("host:port", "[v6]:port") into
 * r, which the caller zeroed and may have given a listener, and judge.
 * Returns the exit status of that probe (0, 1 or 2) (probe_run.c). */
int probe_run(const struct probe_opts *o, const char *target, struct probe_result *r);

/* probe_config(o, path, host, json, out): `portier probe --config FILE`:
 * every listen address of every listener of the portier config at path,
 * at the port its ports_file says (else the configured one), on host
 * (NULL: the listen address, 127.0.0.1 for a wildcard), judged also
 * against the listener's mode; reports to out. Returns the worst exit
 * status (probe_config.c). */
int probe_config(const struct probe_opts *o, const char *path, const char *host, int json,
                 FILE *out);

/* probe_main(argc, argv): `portier probe ...` (argv[0] is "probe").
 * Returns the exit status: 0 no finding, 1 findings, 2 not probed
 * (probe_cli.c). */
int probe_main(int argc, char **argv);

/* probe_days_left(r): whole days from r->now to the certificate's end,
 * rounded (a 5-day certificate has 5 left, not 4 and some hours). */
long probe_days_left(const struct probe_result *r);

/* probe_cert_when(r, out, outlen): how far the certificate's end is from
 * r->now, in words for "expires in ..." and "expired ... ago": "5 days"
 * (as probe_days_left), under a day "2 hours", under an hour "less than
 * an hour". Returns out. */
const char *probe_cert_when(const struct probe_result *r, char *out, size_t outlen);

/* probe_model_name(m): "implicit-tls", "filtered" ... (probe_report.c) */
const char *probe_model_name(enum probe_model m);

/* probe_report_text(r, out), probe_report_json(r, out): print r
 * (probe_report.c); the JSON object without a line end. */
void probe_report_text(const struct probe_result *r, FILE *out);
void probe_report_json(const struct probe_result *r, FILE *out);
/* probe_report_json_str(out, s): s escaped (log_escape) as a JSON string;
 * NULL is null. */
void probe_report_json_str(FILE *out, const char *s);

#endif
