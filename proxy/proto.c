#include "proto.h"
#include "filter.h"
#include "starttls.h"

#include <strings.h>

#define HTTP_502 "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n" \
                 "Content-Length: 16\r\nConnection: close\r\n\r\nBackend is down\n"
#define HTTP_504 "HTTP/1.1 504 Gateway Timeout\r\nContent-Type: text/plain\r\n" \
                 "Content-Length: 23\r\nConnection: close\r\n\r\nBackend did not answer\n"

static const struct proto_port http_ports[] = {
	{443, 1, "HTTPS", 80, "https://", 0},
	{80, 0, "HTTP", 443, NULL, 0},   /* plaintext: redirect, no STARTTLS */
	{8443, 1, "HTTPS (alternate port)", 80, "https://", 1},
};
static const struct proto_port smtp_ports[] = {
	{465, 1, "SMTPS (submission over implicit TLS)", 587, "smtps://", 0},
	{25, 0, "SMTP (STARTTLS)", 465, NULL, 0},
	{587, 0, "submission (STARTTLS)", 465, NULL, 0},
};
static const struct proto_port imap_ports[] = {
	{993, 1, "IMAPS", 143, "imaps://", 0},
	{143, 0, "IMAP (STARTTLS)", 993, NULL, 0},
};
static const struct proto_port pop3_ports[] = {
	{995, 1, "POP3S", 110, "pop3s://", 0},
	{110, 0, "POP3 (STLS)", 995, NULL, 0},
};
static const struct proto_port ldap_ports[] = {
	{636, 1, "LDAPS", 389, "ldaps://", 0},
	{389, 0, "LDAP (StartTLS)", 636, NULL, 0},
};
static const struct proto_port ftp_ports[] = {
	{990, 1, "FTPS", 21, "ftps://", 0},
	{21, 0, "FTP (AUTH TLS)", 990, NULL, 0},
};

#define PORTS(a) a, sizeof(a) / sizeof(a[0])

/* Idle defaults: what the protocol lets a client sit between commands. */
static const struct proto protos[] = {
	{CFG_PROTO_TCP, "tcp", "", 300000, NULL, 0, NULL, NULL, NULL, NULL, 0, 0, NULL},
	{CFG_PROTO_HTTP, "http", "http/1.1", 60000, PORTS(http_ports),
	 NULL, NULL, HTTP_502, HTTP_504, 0, 0, NULL},
	/* RFC 5321 4.5.3.2.6: a client waits 10 minutes for the reply to
	 * the final "." (a content filter may take that long), and one cut
	 * sooner retries: the message is delivered twice. */
	{CFG_PROTO_SMTP, "smtp", "smtp", 600000, PORTS(smtp_ports),
	 &starttls_smtp, &filter_smtp, NULL, NULL, 1, 1, NULL},
	/* RFC 9051: an autologout timer of at least 30 minutes */
	{CFG_PROTO_IMAP, "imap", "imap", 1800000, PORTS(imap_ports),
	 &starttls_imap, &filter_imap, NULL, NULL, 0, 0, NULL},
	{CFG_PROTO_POP3, "pop3", "pop3", 600000, PORTS(pop3_ports),
	 &starttls_pop3, &filter_pop3, NULL, NULL, 0, 0, NULL},
	{CFG_PROTO_LDAP, "ldap", "ldap", 900000, PORTS(ldap_ports),
	 &starttls_ldap, &filter_ldap, NULL, NULL, 0, 0, NULL},
	/* Data connections behind TLS are ftp_data.c's: passive ones
	 * always, active ones (PORT/EPRT) only with `active = yes`;
	 * without it PORT/EPRT get 502. */
	/* 15 minutes on the control connection (a client between
	 * transfers); a data connection's idle limit is the same key. */
	{CFG_PROTO_FTP, "ftp", "ftp", 900000, PORTS(ftp_ports),
	 &starttls_ftp, &filter_ftp, NULL, NULL, 0, 0, NULL},
};

#define NPROTOS (sizeof(protos) / sizeof(protos[0]))

const struct proto *proto_get(enum cfg_proto id)
{
	/* Rows are in enum order (test_proto holds the table to it). */
	return (size_t)id < NPROTOS ? &protos[id] : &protos[0];
}

const struct proto *proto_find(const char *name)
{
	for (size_t i = 0; i < NPROTOS; i++)
		if (strcasecmp(protos[i].name, name) == 0)
			return &protos[i];
	return NULL;
}

size_t proto_count(void)
{
	return NPROTOS;
}

const struct proto *proto_at(size_t i)
{
	return i < NPROTOS ? &protos[i] : NULL;
}

const struct proto_port *proto_port(int port, int implicit_only)
{
	for (size_t i = 0; i < NPROTOS; i++)
		for (size_t j = 0; j < protos[i].nports; j++)
			if (protos[i].ports[j].port == port && !protos[i].ports[j].alternate &&
			    (!implicit_only || protos[i].ports[j].implicit))
				return &protos[i].ports[j];
	return NULL;
}

const struct proto *proto_of_port(int port, const struct proto_port **pp)
{
	for (size_t i = 0; i < NPROTOS; i++)
		for (size_t j = 0; j < protos[i].nports; j++)
			if (protos[i].ports[j].port == port) {
				*pp = &protos[i].ports[j];
				return &protos[i];
			}
	*pp = NULL;
	return NULL;
}
