#include "probe_talk.h"
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Reads one reply into r: 0, PROBE_TALK_NOT_PROTO, PROBE_IO_TIMEOUT, -1. */
static int read_reply(struct probe_io *io, struct probe_reply *r, long long deadline)
{
	size_t used;
	int k, f;

	for (;;) {
		k = probe_reply_feed(r, io->in, io->len, &used);
		if (k < 0)
			return PROBE_TALK_NOT_PROTO;
		probe_io_take(io, used);
		if (k == 1)
			return 0;
		if (io->eof)
			return PROBE_TALK_NOT_PROTO;
		if ((f = probe_io_fill(io, deadline)) < 0)
			return f;
	}
}

/* Sends the line cmd and reads its reply, of kind kind (tag for IMAP), into
 * r: what read_reply() returns, or probe_io_send()'s error. */
static int ask(struct probe_io *io, const char *cmd, enum probe_rk kind,
               const char *tag, struct probe_reply *r, long long deadline)
{
	int k;

	if ((k = probe_io_send(io, cmd, strlen(cmd), deadline)) < 0)
		return k;
	probe_reply_init(r, kind, tag);
	return read_reply(io, r, deadline);
}

static void first_line(const struct probe_reply *r, char *out, size_t outlen)
{
	size_t n = strcspn(r->text, "\n");

	snprintf(out, outlen, "%.*s", (int)n, r->text);
}

int probe_talk_greeting(struct probe_io *io, enum cfg_proto proto, struct probe_talk *t,
                        long long deadline)
{
	static struct probe_reply r;
	int k;

	probe_reply_init(&r, proto == CFG_PROTO_SMTP ? PROBE_RK_SMTP :
	                 proto == CFG_PROTO_FTP ? PROBE_RK_FTP : PROBE_RK_LINE, NULL);
	if ((k = read_reply(io, &r, deadline)) != 0)
		return k;
	first_line(&r, t->greeting, sizeof(t->greeting));
	switch (proto) {
	case CFG_PROTO_SMTP:
		if (r.code != 220) {
			snprintf(t->why, sizeof(t->why), "the server refused with %d", r.code);
			return PROBE_TALK_REFUSED;
		}
		return 0;
	case CFG_PROTO_FTP:
		if (r.code != 220) {
			snprintf(t->why, sizeof(t->why), "the server refused with %d", r.code);
			return PROBE_TALK_REFUSED;
		}
		return 0;
	case CFG_PROTO_IMAP:
		if (strncmp(r.text, "* OK", 4) != 0 && strncmp(r.text, "* PREAUTH", 9) != 0)
			return PROBE_TALK_NOT_PROTO;
		probe_caps_imap(r.text, &t->caps);
		return 0;
	case CFG_PROTO_POP3:
		return strncmp(r.text, "+OK", 3) == 0 ? 0 : PROBE_TALK_NOT_PROTO;
	default:
		return 0;
	}
}

/* "Location:" of an HTTP head, raw. */
static void location(const char *text, char *out, size_t outlen)
{
	for (const char *l = text; l != NULL; l = strchr(l, '\n')) {
		if (*l == '\n')
			l++;
		if (strncasecmp(l, "Location:", 9) == 0) {
			l += 9;
			while (*l == ' ')
				l++;
			snprintf(out, outlen, "%.*s", (int)strcspn(l, "\n"), l);
			return;
		}
	}
}

static int ldap_answer(struct probe_io *io, struct probe_ldap *l, uint32_t msgid,
                       long long deadline)
{
	size_t used;
	int k, f;

	memset(l, 0, sizeof(*l));
	for (;;) {
		k = probe_ldap_feed(l, io->in, io->len, &used, msgid);
		probe_io_take(io, used);
		if (k < 0)
			return PROBE_TALK_NOT_PROTO;
		if (k == 1)
			return 0;
		if (io->eof)
			return PROBE_TALK_NOT_PROTO;
		if ((f = probe_io_fill(io, deadline)) < 0)
			return f;
	}
}

/* LDAP resultCode confidentialityRequired (RFC 4511 4.1.9). */
#define LDAP_CONFIDENTIALITY_REQUIRED 13

int probe_talk_caps(struct probe_io *io, enum cfg_proto proto, const char *host,
                    struct probe_talk *t, long long deadline)
{
	static struct probe_reply r;
	struct probe_ldap l;
	char req[400];
	int k;

	switch (proto) {
	case CFG_PROTO_SMTP:
		if ((k = ask(io, "EHLO portier-probe.invalid\r\n", PROBE_RK_SMTP, NULL,
		             &r, deadline)) != 0)
			return k;
		if (r.code != 250) {
			t->ehlo_refused = r.code >= 500 && r.code < 600;
			snprintf(t->why, sizeof(t->why), "EHLO answered %d", r.code);
			return -1;
		}
		probe_caps_smtp(r.text, &t->caps);
		return 0;
	case CFG_PROTO_IMAP:
		if (t->caps.have_caps)
			return 0;
		if ((k = ask(io, "p1 CAPABILITY\r\n", PROBE_RK_IMAP, "p1", &r, deadline)) != 0)
			return k;
		probe_caps_imap(r.text, &t->caps);
		return 0;
	case CFG_PROTO_POP3:
		if ((k = ask(io, "CAPA\r\n", PROBE_RK_POP3_MULTI, NULL, &r, deadline)) != 0)
			return k;
		probe_caps_pop3(r.text, &t->caps);
		return 0;
	case CFG_PROTO_FTP:
		/* A server without FEAT (500) may still know AUTH TLS: that
		 * is settled by asking. */
		if ((k = ask(io, "FEAT\r\n", PROBE_RK_FTP, NULL, &r, deadline)) != 0)
			return k;
		probe_caps_ftp(r.text, &t->caps);
		return 0;
	case CFG_PROTO_LDAP:
		if ((k = probe_io_send(io, probe_ldap_rootdse, probe_ldap_rootdse_len, deadline)) < 0)
			return k;
		if ((k = ldap_answer(io, &l, 1, deadline)) != 0)
			return k;
		t->caps.have_caps = 1;
		t->caps.starttls = l.starttls_listed;
		/* A directory that answers a search in clear will take a
		 * bind in clear too; one that wants TLS says so. */
		t->caps.login_in_clear = l.code == LDAP_CONFIDENTIALITY_REQUIRED ? 0
		                         : l.code == 0 ? 1 : -1;
		return 0;
	case CFG_PROTO_HTTP:
		/* An IPv6 literal goes in brackets (RFC 3986 3.2.2): a bare
		 * "::1" is a bad request to a server that checks (nginx: 400). */
		snprintf(req, sizeof(req), "HEAD / HTTP/1.1\r\nHost: %s%s%s\r\nUser-Agent: "
		         "portier-probe\r\nConnection: close\r\n\r\n", strchr(host, ':') ? "[" : "",
		         host, strchr(host, ':') ? "]" : "");
		if ((k = ask(io, req, PROBE_RK_HTTP, NULL, &r, deadline)) != 0)
			return k;
		t->http_status = r.code;
		first_line(&r, t->greeting, sizeof(t->greeting));
		location(r.text, t->http_location, sizeof(t->http_location));
		return 0;
	default:
		return 0;
	}
}

int probe_talk_starttls(struct probe_io *io, enum cfg_proto proto, struct probe_talk *t,
                        long long deadline)
{
	static struct probe_reply r;
	struct probe_ldap l;
	int k, ok;

	switch (proto) {
	case CFG_PROTO_SMTP:
		k = probe_io_send(io, "STARTTLS\r\n", 10, deadline);
		probe_reply_init(&r, PROBE_RK_SMTP, NULL);
		break;
	case CFG_PROTO_IMAP:
		k = probe_io_send(io, "p2 STARTTLS\r\n", 13, deadline);
		probe_reply_init(&r, PROBE_RK_IMAP, "p2");
		break;
	case CFG_PROTO_POP3:
		k = probe_io_send(io, "STLS\r\n", 6, deadline);
		probe_reply_init(&r, PROBE_RK_LINE, NULL);
		break;
	case CFG_PROTO_FTP:
		k = probe_io_send(io, "AUTH TLS\r\n", 10, deadline);
		probe_reply_init(&r, PROBE_RK_FTP, NULL);
		break;
	case CFG_PROTO_LDAP:
		if ((k = probe_io_send(io, probe_ldap_starttls, probe_ldap_starttls_len, deadline)) < 0)
			return k;
		if ((k = ldap_answer(io, &l, 2, deadline)) != 0) {
			snprintf(t->why, sizeof(t->why), "no LDAP answer to StartTLS");
			return k == PROBE_IO_TIMEOUT ? k : -1;
		}
		if (l.code != 0) {
			snprintf(t->why, sizeof(t->why), "StartTLS refused with resultCode %u", l.code);
			return -1;
		}
		goto check_rest;
	default:
		snprintf(t->why, sizeof(t->why), "no STARTTLS in this protocol");
		return -1;
	}
	if (k < 0)
		return k;
	if ((k = read_reply(io, &r, deadline)) != 0) {
		snprintf(t->why, sizeof(t->why), "no answer to STARTTLS");
		return k == PROBE_IO_TIMEOUT ? k : -1;
	}
	ok = proto == CFG_PROTO_SMTP ? r.code == 220 : proto == CFG_PROTO_FTP ? r.code == 234
	     : r.code == 1;
	if (!ok) {
		/* The server's words, escaped as its greeting is: they end up
		 * on a terminal. */
		char line[200], esc[sizeof(t->why) - sizeof("STARTTLS refused: ") + 1];
		first_line(&r, line, sizeof(line));
		snprintf(t->why, sizeof(t->why), "STARTTLS refused: %s",
		         log_escape_str(line, esc, sizeof(esc)));
		return -1;
	}
check_rest:
	/* Bytes after the answer would be read as TLS: a server that sends
	 * them is broken, or someone in between injects them. */
	if (io->len > 0) {
		snprintf(t->why, sizeof(t->why), "the server sent %zu bytes after agreeing to "
		         "STARTTLS, before the TLS handshake", io->len);
		return -1;
	}
	return 0;
}

void probe_talk_bye(struct probe_io *io, enum cfg_proto proto, long long deadline)
{
	/* Lengths given: LDAP's UnbindRequest (messageID 3) ends in a 0x00,
	 * its empty content's length, which strlen() would drop. */
	static const struct { enum cfg_proto p; const char *s; size_t n; } bye[] = {
		{ CFG_PROTO_SMTP, "QUIT\r\n", 6 }, { CFG_PROTO_IMAP, "p9 LOGOUT\r\n", 11 },
		{ CFG_PROTO_POP3, "QUIT\r\n", 6 },
		{ CFG_PROTO_LDAP, "\x30\x05\x02\x01\x03\x42\x00", 7 },
		{ CFG_PROTO_FTP, "QUIT\r\n", 6 },
	};

	for (size_t i = 0; i < sizeof(bye) / sizeof(bye[0]); i++)
		if (bye[i].p == proto)
			(void)probe_io_send(io, bye[i].s, bye[i].n, deadline);
}
