/* The protocol table: rows in enum order, names found both ways, the
 * well-known ports each in exactly one row and paired with a port of the
 * other model (8443 an alternate the probe guesses from), and every STARTTLS driver or filter where the protocol
 * needs it. */
#include "check.h"
#include "filter.h"
#include "proto.h"
#include "starttls.h"

int main(void)
{
	CHECK(proto_count() == 7);
	for (size_t i = 0; i < proto_count(); i++) {
		const struct proto *p = proto_at(i);
		CHECK((size_t)p->id == i);
		CHECK(proto_get(p->id) == p);
		CHECK(proto_find(p->name) == p);
		CHECK_STR(cfg_proto_name(p->id), p->name);
		CHECK(p->idle_ms >= 60000);
		/* A protocol is served with STARTTLS, by a canned refusal, or
		 * said to be missing: never silently half-there. */
		CHECK(p->starttls || p->refusal || p->missing || p->id == CFG_PROTO_TCP);
		if (p->starttls)
			CHECK_STR(p->starttls->name, p->name);
		for (size_t j = 0; j < p->nports; j++) {
			const struct proto_port *pp = &p->ports[j];
			const struct proto_port *other = proto_port(pp->other_port, 0);
			const struct proto_port *found;
			/* An alternate port (8443) is the probe's guess only:
			 * the lint does not judge it. */
			CHECK(proto_port(pp->port, 0) == (pp->alternate ? NULL : pp));
			CHECK(proto_of_port(pp->port, &found) == p && found == pp);
			CHECK(pp->implicit ? pp->scheme != NULL : pp->scheme == NULL);
			/* 465's partner is 587; 25 and 587 both point at 465. */
			CHECK(other != NULL && other->implicit != pp->implicit);
		}
	}
	/* Past the table: no row (proto_get falls back to the first, the
	 * plain relay; the ASan build sees a read past the table). */
	CHECK(proto_at(proto_count()) == NULL);
	CHECK(proto_get((enum cfg_proto)proto_count()) == proto_at(0));
	CHECK(proto_find("no-such-protocol") == NULL);
	CHECK(proto_port(0, 0) == NULL);
	{
		const struct proto_port *pp = (const void *)1;
		CHECK(proto_of_port(1, &pp) == NULL && pp == NULL);
	}
	CHECK(proto_find("SMTP") == proto_get(CFG_PROTO_SMTP));
	CHECK(proto_find("smtps") == NULL);
	CHECK(proto_get(CFG_PROTO_SMTP)->filter == &filter_smtp);
	CHECK(proto_get(CFG_PROTO_LDAP)->filter == &filter_ldap);
	CHECK(proto_get(CFG_PROTO_POP3)->filter == &filter_pop3);
	CHECK(proto_get(CFG_PROTO_IMAP)->filter == &filter_imap);
	CHECK(proto_get(CFG_PROTO_HTTP)->refusal != NULL &&
	      strncmp(proto_get(CFG_PROTO_HTTP)->refusal, "HTTP/1.1 502 ", 13) == 0);
	/* The silent backend's answer: HTTP's alone (acme_backend, whose
	 * listeners are always HTTP). */
	CHECK(proto_get(CFG_PROTO_HTTP)->silent != NULL &&
	      strncmp(proto_get(CFG_PROTO_HTTP)->silent, "HTTP/1.1 504 ", 13) == 0);
	for (size_t i = 0; i < proto_count(); i++)
		CHECK(proto_at(i)->id == CFG_PROTO_HTTP || proto_at(i)->silent == NULL);
	CHECK(proto_get(CFG_PROTO_SMTP)->optional_ok && proto_get(CFG_PROTO_SMTP)->xclient_ok);
	/* RFC 5321 4.5.3.2.6: the client's 10 minutes for the final dot. */
	CHECK(proto_get(CFG_PROTO_SMTP)->idle_ms == 10 * 60000);
	CHECK(!proto_get(CFG_PROTO_IMAP)->optional_ok && !proto_get(CFG_PROTO_IMAP)->xclient_ok);
	CHECK(proto_get(CFG_PROTO_FTP)->missing == NULL);
	CHECK(proto_get(CFG_PROTO_FTP)->starttls == &starttls_ftp);
	CHECK(proto_get(CFG_PROTO_FTP)->filter == &filter_ftp);
	CHECK(proto_port(993, 1) != NULL && proto_port(143, 1) == NULL);
	CHECK(proto_port(143, 0) != NULL && proto_port(12345, 0) == NULL);
	{
		const struct proto_port *pp;
		CHECK(proto_of_port(8443, &pp) == proto_get(CFG_PROTO_HTTP) && pp->implicit);
		CHECK(proto_of_port(12345, &pp) == NULL && pp == NULL);
	}
	return CHECK_DONE();
}
