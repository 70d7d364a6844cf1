#include "probe_int.h"
#include "log.h"
#include "probe_io.h"
#include "proto.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

/* The conversation of `portier probe`: the connections to the port (the
 * first, a second when the first answer says the port speaks the other
 * model, one per TLS version below the one negotiated), what is tried on
 * each (the server-first, client-first and unknown runs, STARTTLS, the
 * handshakes) and the model that follows. The probe's setup is
 * probe_run.c. */

/* At most: the first connection, one more when the first answer says the
 * port speaks the other model, and one per TLS version below the one
 * negotiated (three). */
#define MAX_CONNECTIONS 5

/* How long a server-first protocol may take to greet on a port that
 * should be implicit TLS before the probe sends its ClientHello; and on
 * a port of no known protocol, how long to listen for a banner. Each is
 * at most half the time left (window()). */
#define GREET_WINDOW_MS 400
#define BANNER_WINDOW_MS 1500

static long long left(const struct probe *p)
{
	long long l = p->deadline - probe_io_now();
	return l > 0 ? l : 0;
}

long long probe_soon(const struct probe *p, long long ms)
{
	long long d = probe_io_now() + ms;
	return d < p->deadline ? d : p->deadline;
}

static int server_first(enum cfg_proto id)
{
	return id == CFG_PROTO_SMTP || id == CFG_PROTO_IMAP || id == CFG_PROTO_POP3 ||
	       id == CFG_PROTO_FTP;
}

/* The addresses of a name tried in turn for the first connection, at
 * most (one refusing, say ::1, must not hide another that listens). */
#define MAX_ADDRESSES 4

/* A new connection, within the budget of attempts: 0, or a PROBE_IO_*
 * result (io is closed then). The first address that connects is the
 * one every later connection goes to; while other addresses remain to be
 * tried, one that does not answer gets half the time left, not all. */
static int dial(struct probe *p, struct probe_io *io)
{
	const struct addrinfo *a = p->addr ? p->addr : p->ai;
	struct probe_result *res = p->res;
	int r = PROBE_IO_ERROR, tried = 0;

	io->fd = -1;
	for (; a != NULL && tried < MAX_ADDRESSES; a = p->addr ? NULL : a->ai_next, tried++) {
		const char **result = p->addr == NULL && (size_t)tried < res->naddresses
		                      ? &res->addresses[tried].result : NULL;
		int more = p->addr == NULL && a->ai_next != NULL && tried + 1 < MAX_ADDRESSES &&
		           res->connections + 1 < MAX_CONNECTIONS;

		/* Every attempt counts, refused ones too. */
		if (res->connections >= MAX_CONNECTIONS) {
			errno = EDQUOT;
			return tried ? r : PROBE_IO_ERROR;
		}
		res->connections++;
		r = probe_io_connect(io, a->ai_addr, a->ai_addrlen,
		                     more ? probe_soon(p, left(p) / 2) : p->deadline);
		if (result != NULL)
			*result = r == 0 ? "probed" : r == PROBE_IO_REFUSED ? "refused"
			          : r == PROBE_IO_TIMEOUT ? "timeout" : "error";
		if (r == 0) {
			if (p->addr == NULL) {
				p->addr = a;
				getnameinfo(a->ai_addr, a->ai_addrlen, res->address,
				            sizeof(res->address), NULL, 0, NI_NUMERICHOST);
			}
			return 0;
		}
		probe_io_close(io);
		/* The last one's timeout spent the probe's time. */
		if (r == PROBE_IO_TIMEOUT && !more)
			break;
	}
	return r;
}

/* Every address the name resolved to, none tried yet. */
static void addresses(struct probe *p)
{
	struct probe_result *r = p->res;

	for (const struct addrinfo *a = p->ai; a != NULL; a = a->ai_next) {
		if (r->naddresses < PROBE_MAX_ADDRESSES) {
			struct probe_address *pa = &r->addresses[r->naddresses++];

			if (getnameinfo(a->ai_addr, a->ai_addrlen, pa->address, sizeof(pa->address),
			                NULL, 0, NI_NUMERICHOST) != 0)
				snprintf(pa->address, sizeof(pa->address), "?");
			pa->result = "not tried";
		}
		r->naddresses_total++;
	}
}

/* A connection the classification needs failed (r from dial): the probe
 * ends there, saying why. */
static void unreachable(struct probe *p, int r)
{
	struct probe_result *res = p->res;

	if (r == PROBE_IO_REFUSED) {
		res->model = PROBE_CLOSED;
		snprintf(res->error, sizeof(res->error), "connection refused: nothing listens");
	} else if (r == PROBE_IO_TIMEOUT) {
		res->model = PROBE_FILTERED;
		snprintf(res->error, sizeof(res->error), "no answer to the connection within "
		         "%ld ms: a firewall drops it, or the host is down", p->timeout_ms);
	} else {
		res->model = PROBE_ERROR;
		snprintf(res->error, sizeof(res->error), "connect: %s", strerror(errno));
	}
}

/* The first bytes a server sent, kept for the report. */
static void keep_greeting(struct probe *p, const uint8_t *b, size_t n)
{
	size_t k = 0;

	while (k < n && b[k] != '\r' && b[k] != '\n' && k < 200)
		k++;
	log_escape(b, k, p->res->greeting, sizeof(p->res->greeting));
}

/* Whether the certificate io's handshake got names r->name, and how. */
static void peer_name(struct probe_result *r, struct probe_io *io)
{
	int k = tlsctx_peer_name_matches(io->tc, r->name);

	r->name_matches = k >= 1;
	r->name_by_cn = k == 2;
}

/* Handshake on io (version 0: any); fills the session and certificate
 * when record. 0, or -1 / PROBE_IO_TIMEOUT (reason in res->tls_error,
 * *not_tls). */
static int handshake(struct probe *p, struct probe_io *io, uint16_t version, int record,
                     int *not_tls)
{
	struct probe_result *r = p->res;
	struct tlsctx_session s;
	char err[256];
	int k;

	if ((k = probe_io_tls(io, p->tls, p->sni_sent, version, p->deadline, err, sizeof(err),
	                      not_tls)) != 0) {
		if (record) {
			snprintf(r->tls_error, sizeof(r->tls_error), "%s", err);
			r->tls_name_refused = io->name_refused;
		}
		if (record && tlsctx_peer_cert(io->tc, &r->cert) == 0) {
			r->have_cert = 1;
			peer_name(r, io);
		}
		return k;
	}
	if (!record)
		return 0;
	r->tls = 1;
	tlsctx_session(io->tc, &s);
	snprintf(r->version, sizeof(r->version), "%s", s.version);
	snprintf(r->cipher, sizeof(r->cipher), "%s", s.cipher);
	snprintf(r->group, sizeof(r->group), "%s", s.group);
	tlsctx_alpn_selected(io->tc, r->alpn, sizeof(r->alpn));
	r->ocsp_stapled = s.ocsp_stapled;
	if (s.version_id >= 0x0301 && s.version_id <= 0x0304) {
		r->versions[s.version_id - 0x0301] = 1;
		/* A server picks the highest version both speak: those above
		 * the one it chose, it does not speak. */
		for (int v = s.version_id - 0x0301 + 1; v < PROBE_NVERSIONS; v++)
			r->versions[v] = 0;
	}
	if (tlsctx_peer_cert(io->tc, &r->cert) == 0) {
		r->have_cert = 1;
		peer_name(r, io);
	}
	return 0;
}

/* The plaintext dialogue after the greeting (server-first protocols) or
 * from the start (LDAP, HTTP): capabilities, then STARTTLS and TLS when
 * offered. 0 with the model set; PROBE_TALK_NOT_PROTO when the server's
 * answer is not the protocol (or it closed), for the caller to try
 * another model; PROBE_IO_TIMEOUT when it did not answer by until. */
static int converse(struct probe *p, struct probe_io *io, long long until)
{
	struct probe_result *r = p->res;
	struct probe_talk *t = &p->talk;
	int k, not_tls;

	if ((k = probe_talk_caps(io, p->proto->id, p->res->name, t, until)) != 0) {
		if (k == PROBE_TALK_NOT_PROTO || k == PROBE_IO_TIMEOUT)
			return k;
		r->model = PROBE_ERROR;
		snprintf(r->error, sizeof(r->error), "%s", t->why[0] ? t->why : "read error");
		return 0;
	}
	if (p->proto->id == CFG_PROTO_HTTP) {
		r->model = PROBE_PLAIN;
		log_escape(t->greeting, strlen(t->greeting), r->http_status, sizeof(r->http_status));
		log_escape(t->http_location, strlen(t->http_location), r->http_location,
		           sizeof(r->http_location));
		return 0;
	}
	r->model = PROBE_PLAIN;
	r->starttls_required = t->caps.login_in_clear < 0 ? -1 : !t->caps.login_in_clear;
	/* LDAP's root DSE need not list StartTLS (portier's does not answer
	 * searches before TLS), nor an FTP server without FEAT AUTH TLS:
	 * asking is harmless and settles it. */
	if (!t->caps.starttls && p->proto->id != CFG_PROTO_LDAP &&
	    !(p->proto->id == CFG_PROTO_FTP && !t->caps.have_caps)) {
		r->starttls_offered = 0;
		probe_talk_bye(io, p->proto->id, probe_soon(p, 200));
		return 0;
	}
	if (probe_talk_starttls(io, p->proto->id, t, p->deadline) != 0) {
		r->starttls_offered = t->caps.starttls;
		if (t->caps.starttls)
			snprintf(r->tls_error, sizeof(r->tls_error), "%s", t->why);
		probe_talk_bye(io, p->proto->id, probe_soon(p, 200));
		return 0;
	}
	r->starttls_offered = 1;
	r->model = PROBE_STARTTLS;
	p->starttls_path = 1;
	handshake(p, io, 0, 1, &not_tls);
	return 0;
}

/* Try TLS at once on io: the model is implicit TLS when it works (or
 * the server answered in TLS, an alert). 1 done; 0 the server answered
 * something else (*not_tls set), or closed; PROBE_IO_TIMEOUT it stayed
 * silent. */
static int try_implicit(struct probe *p, struct probe_io *io, int *not_tls)
{
	int k;

	*not_tls = 0;
	if ((k = handshake(p, io, 0, 1, not_tls)) == 0 || io->tls_spoken) {
		p->res->model = PROBE_IMPLICIT_TLS;
		return 1;
	}
	return k == PROBE_IO_TIMEOUT ? k : 0;
}

/* A server that accepted the connection, then answered neither in its
 * protocol nor in TLS: it cannot be told what it is. */
static void silent(struct probe *p, const char *what)
{
	p->res->model = PROBE_ERROR;
	snprintf(p->res->error, sizeof(p->res->error), "the server accepted the connection, "
	         "then said nothing: %s%s%sno answer to a TLS ClientHello, within %ld ms",
	         what ? "no " : "", what ? what : "", what ? ", and " : "", p->timeout_ms);
}

/* How long a STARTTLS port's server may take to greet, or a plaintext
 * server to answer, before the probe tries TLS: half the time left, so
 * that the ClientHello has the other half. */
static long long patience(const struct probe *p)
{
	return probe_soon(p, left(p) / 2);
}

/* A wait of ms for a greeting or a banner before a ClientHello, but at
 * most half the time left: a short --timeout must leave the ClientHello
 * time too. */
static long long window(const struct probe *p, long long ms)
{
	return probe_soon(p, ms < left(p) / 2 ? ms : left(p) / 2);
}

static void server_first_run(struct probe *p, struct probe_io *io, long long until);

/* The ClientHello on a server-first port got plaintext back: most likely
 * the greeting of a server slower than the wait (one that greets after a
 * second on 465), which read the ClientHello as a command. On a new
 * connection its greeting is awaited for the time left and the port
 * judged by it: 1 when one came (the model set), 0 when none did (the
 * caller's verdict stands). io is closed. */
static int late_greeting(struct probe *p, struct probe_io *io)
{
	struct probe_io io2;
	int k;

	/* The first is of no more use, and a server may serve one at a
	 * time. */
	probe_io_close(io);
	if (left(p) == 0 || dial(p, &io2) != 0)
		return 0;
	if ((k = probe_io_fill(&io2, p->deadline)) == 1)
		server_first_run(p, &io2, p->deadline);
	probe_io_close(&io2);
	return k == 1;
}

/* The protocol a banner b[0..n) names, for a port of protocol expected:
 * probe_banner()'s guess, except that SMTP and FTP both greet with 220,
 * and a 220 that names neither ("220 Service ready", "220-FileZilla
 * Server") is the port's own of the two. */
static const char *banner_names(const char *expected, const uint8_t *b, size_t n)
{
	const char *named = probe_banner(b, n);

	if (named != NULL && strcmp(named, "smtp") == 0 && strcmp(expected, "ftp") == 0 &&
	    !probe_has_word(b, n, "SMTP"))
		return expected;
	return named;
}

/* A server-first protocol on io, its greeting awaited until until. */
static void server_first_run(struct probe *p, struct probe_io *io, long long until)
{
	struct probe_result *r = p->res;
	const char *named;
	int k, not_tls;

	if (io->len == 0 && (k = probe_io_fill(io, until)) <= 0) {
		if (k == PROBE_IO_TIMEOUT && left(p) > 0) {
			/* Silent: it waits for us, which is what a TLS server
			 * does. */
			if ((k = try_implicit(p, io, &not_tls)) == PROBE_IO_TIMEOUT) {
				silent(p, "greeting");
			} else if (k == 0 && !(not_tls && late_greeting(p, io))) {
				r->model = PROBE_OTHER;
				snprintf(r->error, sizeof(r->error), "no greeting, and no TLS: %s",
				         r->tls_error);
			}
			return;
		}
		r->model = k == 0 ? PROBE_OTHER : PROBE_ERROR;
		r->closed_at_once = k == 0;
		snprintf(r->error, sizeof(r->error), "%s", k == 0 ?
		         "the server closed the connection without a word" :
		         k == PROBE_IO_TIMEOUT ? "no greeting in time" : "read error");
		return;
	}
	keep_greeting(p, io->in, io->len);
	/* A banner that names another protocol settles it; one that names
	 * none (an SMTP 554 refusal) is for the protocol's reader to judge. */
	named = banner_names(p->proto->name, io->in, io->len);
	if (named != NULL && strcmp(named, p->proto->name) != 0) {
		r->model = PROBE_OTHER;
		r->protocol = named;
		r->protocol_from = named ? "banner" : r->protocol_from;
		return;
	}
	if ((k = probe_talk_greeting(io, p->proto->id, &p->talk, p->deadline)) != 0) {
		/* A refusal (SMTP 554) is still the protocol in plaintext; so
		 * is a greeting begun and not finished in time (Postfix's
		 * postscreen pauses inside its "220-"): a TLS server does not
		 * speak first, and no banner named another protocol. */
		if (k == PROBE_IO_TIMEOUT) {
			r->model = PROBE_PLAIN;
			snprintf(r->error, sizeof(r->error), "greeting not complete in time");
			return;
		}
		r->model = k == PROBE_TALK_REFUSED ? PROBE_PLAIN : k == -1 ? PROBE_ERROR
		           : PROBE_OTHER;
		if (r->model == PROBE_OTHER)   /* not what the port suggested */
			r->protocol = r->protocol_from = NULL;
		snprintf(r->error, sizeof(r->error), "%s", p->talk.why[0] ? p->talk.why :
		         "the greeting is not understood");
		return;
	}
	/* It greeted as the protocol: whatever comes next, it is that. */
	if ((k = converse(p, io, p->deadline)) != 0) {
		r->model = PROBE_PLAIN;
		snprintf(r->error, sizeof(r->error), "%s", k == PROBE_IO_TIMEOUT ?
		         "no answer in time to the capability request" :
		         "the answer to the capability request is not understood");
	}
}

/*
 * A 220 that names neither SMTP nor FTP ("220 Service ready", "220-FileZilla
 * Server"), on a port that says neither, was taken for SMTP; its EHLO got
 * a 5xx, as an FTP server answers it. FTP is asked on a fresh connection
 * (its reader starts at the greeting, and the server's count of bad
 * commands starts again), and is the answer only if FEAT lists features
 * (211), which no SMTP server says: an SMTP server that refuses EHLO
 * keeps the SMTP result.
 */
static void retry_as_ftp(struct probe *p, struct probe_io *io)
{
	struct probe_result *r = p->res;
	struct probe_result smtp = *r;
	struct probe_io io2;
	int conns;

	probe_io_close(io);
	if (left(p) == 0 || dial(p, &io2) != 0)
		return;
	p->proto = proto_find("ftp");
	memset(&p->talk, 0, sizeof(p->talk));
	r->protocol = "ftp";
	r->model = PROBE_ERROR;
	r->error[0] = '\0';
	if (probe_io_fill(&io2, p->deadline) == 1)
		server_first_run(p, &io2, p->deadline);
	probe_io_close(&io2);
	if (!p->talk.caps.have_caps) {
		conns = r->connections;
		*r = smtp;
		r->connections = conns;
	}
}

/* No protocol known: a banner names it, else TLS is tried. */
static void unknown_run(struct probe *p, struct probe_io *io)
{
	struct probe_result *r = p->res;
	const char *named;
	int k, not_tls, either;

	k = probe_io_fill(io, window(p, BANNER_WINDOW_MS));
	if (k == 1) {
		keep_greeting(p, io->in, io->len);
		named = probe_banner(io->in, io->len);
		either = named != NULL && strcmp(named, "smtp") == 0 &&
		         !probe_has_word(io->in, io->len, "SMTP");
		r->protocol = named;
		r->protocol_from = "banner";
		if (named != NULL && (p->proto = proto_find(named)) != NULL &&
		    server_first(p->proto->id)) {
			server_first_run(p, io, p->deadline);
			if (either && r->model == PROBE_ERROR && p->talk.ehlo_refused)
				retry_as_ftp(p, io);
		} else {
			r->model = PROBE_OTHER;
		}
	} else if (k == PROBE_IO_TIMEOUT && left(p) > 0) {
		if ((k = try_implicit(p, io, &not_tls)) == PROBE_IO_TIMEOUT) {
			silent(p, "banner");
		} else if (k == 0) {
			r->model = PROBE_OTHER;
			snprintf(r->error, sizeof(r->error), "no banner, and no TLS: %s",
			         r->tls_error);
		}
	} else {
		r->model = k == 0 ? PROBE_OTHER : PROBE_ERROR;
		snprintf(r->error, sizeof(r->error), "%s", k == 0 ?
		         "the server closed the connection without a word" :
		         k == PROBE_IO_TIMEOUT ? "nothing happened in time" : "read error");
	}
}

/* On a fresh connection to a client-first port whose TLS failed: a
 * server that speaks first (SSH on 443 is common) greets within the
 * window, before any request, and a banner that names another protocol
 * settles it. 1 settled; 0 no banner came (or names none), ask. */
static int banner_first(struct probe *p, struct probe_io *io)
{
	struct probe_result *r = p->res;
	const char *named;

	if (probe_io_fill(io, window(p, GREET_WINDOW_MS)) != 1)
		return 0;
	named = probe_banner(io->in, io->len);
	if (named == NULL || strcmp(named, p->proto->name) == 0)
		return 0;
	keep_greeting(p, io->in, io->len);
	r->model = PROBE_OTHER;
	r->protocol = named;
	r->protocol_from = "banner";
	return 1;
}

/* LDAP and HTTP speak first: the model the port should have is tried
 * first, the other on a second connection when the answer is not that. */
static void client_first_run(struct probe *p, struct probe_io *io)
{
	struct probe_result *r = p->res;
	struct probe_io io2;
	int k, not_tls;

	if (p->flow == PROBE_EXPECT_IMPLICIT || p->flow == PROBE_EXPECT_UNKNOWN) {
		if ((k = try_implicit(p, io, &not_tls)) == 1)
			return;
		if (k == PROBE_IO_TIMEOUT) {
			silent(p, NULL);
			return;
		}
		probe_io_close(io);
		if (left(p) == 0) {
			snprintf(r->error, sizeof(r->error), "no TLS (%s), and no time left",
			         r->tls_error);
			return;
		}
		if ((k = dial(p, &io2)) != 0) {
			unreachable(p, k);
			return;
		}
		if (banner_first(p, &io2)) {
			probe_io_close(&io2);
			return;
		}
		if ((k = converse(p, &io2, p->deadline)) != 0) {
			r->model = PROBE_OTHER;
			snprintf(r->error, sizeof(r->error), "neither TLS (%s) nor plaintext %s",
			         r->tls_error, p->proto->name);
		}
		probe_io_close(&io2);
		return;
	}
	if ((k = converse(p, io, patience(p))) == 0)
		return;
	/* Not the protocol in plaintext: TLS, perhaps. */
	probe_io_close(io);
	if (left(p) == 0) {
		snprintf(r->error, sizeof(r->error), "no plaintext %s answer in time",
		         p->proto->name);
		return;
	}
	if ((k = dial(p, &io2)) != 0) {
		unreachable(p, k);
		return;
	}
	if ((k = try_implicit(p, &io2, &not_tls)) == PROBE_IO_TIMEOUT) {
		silent(p, "plaintext answer");
	} else if (k == 0) {
		r->model = PROBE_OTHER;
		snprintf(r->error, sizeof(r->error), "neither plaintext %s nor TLS (%s)",
		         p->proto->name, r->tls_error);
	}
	probe_io_close(&io2);
}

/* The first connection, and a second one when the first shows the port
 * speaks the other model. */
static void classify(struct probe *p)
{
	struct probe_io io;
	int k;

	if ((k = dial(p, &io)) != 0) {
		unreachable(p, k);
		return;
	}
	if (p->proto == NULL)
		unknown_run(p, &io);
	else if (server_first(p->proto->id))
		/* On an implicit port a plaintext server greets at once; a
		 * STARTTLS port's server may take its time. */
		server_first_run(p, &io, p->flow == PROBE_EXPECT_IMPLICIT
		                 ? window(p, GREET_WINDOW_MS) : patience(p));
	else
		client_first_run(p, &io);
	probe_io_close(&io);
}

/* Each TLS version below the negotiated one, on its own connection by
 * the same path. */
static void versions(struct probe *p)
{
	struct probe_result *r = p->res;
	struct probe_io io;
	struct probe_talk t;
	int not_tls, k;

	for (int v = PROBE_NVERSIONS - 1; v >= 0; v--) {
		if (r->versions[v] != -1 || left(p) == 0)
			continue;
		/* The port answered before: a failure now leaves the
		 * version untried, the classification stands. */
		if (dial(p, &io) != 0)
			return;
		memset(&t, 0, sizeof(t));
		if (p->starttls_path) {
			if ((server_first(p->proto->id) &&
			     probe_talk_greeting(&io, p->proto->id, &t, p->deadline) != 0) ||
			    (p->proto->id == CFG_PROTO_SMTP &&
			     probe_talk_caps(&io, p->proto->id, r->name, &t, p->deadline) != 0) ||
			    probe_talk_starttls(&io, p->proto->id, &t, p->deadline) != 0) {
				probe_io_close(&io);
				continue;
			}
		}
		/* A handshake that ran out of time says nothing of the
		 * version: untried, not refused. */
		k = handshake(p, &io, (uint16_t)(0x0301 + v), 0, &not_tls);
		r->versions[v] = k == 0 ? 1 : k == PROBE_IO_TIMEOUT ? -1 : 0;
		probe_io_close(&io);
	}
}

void probe_classify(struct probe *p)
{
	addresses(p);
	classify(p);
	if (p->res->tls)
		versions(p);
}
