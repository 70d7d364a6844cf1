#include "firewall.h"

#include <string.h>
#include <sys/socket.h>

/* `portier firewall`'s output, one printer per tool. Every printer is
 * idempotent: running its output twice leaves the firewall as running it
 * once did. The texts in commands come from firewall.c, which kept them
 * to characters no shell or nft treats specially. */

int firewall_format_parse(const char *s, enum firewall_format *f)
{
	static const struct { const char *name; enum firewall_format f; } names[] = {
		{ "nft", FIREWALL_NFT }, { "ufw", FIREWALL_UFW },
		{ "firewalld", FIREWALL_FIREWALLD }, { "iptables", FIREWALL_IPTABLES },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0) {
			*f = names[i].f;
			return 0;
		}
	return -1;
}

/* "993" or "30000-30100" (sep between). */
static const char *ports(const struct firewall_rule *r, char sep, char *out, size_t outlen)
{
	if (r->port_lo == r->port_hi)
		snprintf(out, outlen, "%d", r->port_lo);
	else
		snprintf(out, outlen, "%d%c%d", r->port_lo, sep, r->port_hi);
	return out;
}

static void heading(const struct firewall_rules *fr, const char *format, const char *source,
                    FILE *out)
{
	fprintf(out, "# portier firewall --format %s: the TCP ports of ", format);
	/* A comment ends at a line end: none from the path gets through. */
	for (const unsigned char *c = (const unsigned char *)source; *c; c++)
		fputc(*c < 0x20 || *c == 0x7f ? '_' : *c, out);
	fputc('\n', out);
	for (size_t i = 0; i < fr->nnotes; i++)
		fprintf(out, "# %s\n", fr->notes[i].text);
	if (fr->nrules == 0)
		fprintf(out, "# no listen address needs a rule\n");
}

static void nft(const struct firewall_rules *fr, const char *source, FILE *out)
{
	char p[16];

	fprintf(out, "#!/usr/sbin/nft -f\n");
	heading(fr, "nft", source, out);
	fprintf(out,
	        "# Table inet portier is replaced whole: running this again changes nothing.\n"
	        "# nftables runs every table's input chain, and an accept in one does not\n"
	        "# override a drop in another: a ruleset that drops by default lets what\n"
	        "# this table accepted in with one rule in its own input chain,\n"
	        "#   meta mark & 0x%08x == 0x%08x accept\n"
	        "# (this table's chain runs before the usual priority filter).\n",
	        FIREWALL_NFT_MARK, FIREWALL_NFT_MARK);
	fprintf(out, "table inet portier\ndelete table inet portier\n");
	fprintf(out, "table inet portier {\n\tchain input {\n"
	        "\t\ttype filter hook input priority filter - 10; policy accept;\n");
	for (size_t i = 0; i < fr->nrules; i++) {
		const struct firewall_rule *r = &fr->rules[i];

		fprintf(out, "\t\t");
		if (r->addr[0])
			fprintf(out, "%s daddr %s ", r->family == AF_INET6 ? "ip6" : "ip", r->addr);
		else if (r->family != AF_UNSPEC)
			fprintf(out, "meta nfproto %s ", r->family == AF_INET6 ? "ipv6" : "ipv4");
		fprintf(out, "tcp dport %s meta mark set meta mark | 0x%08x accept comment \"%s\"\n",
		        ports(r, '-', p, sizeof(p)), FIREWALL_NFT_MARK, r->why);
	}
	fprintf(out, "\t}\n}\n");
}

static void ufw(const struct firewall_rules *fr, const char *source, FILE *out)
{
	char p[16];

	fprintf(out, "#!/bin/sh\n");
	heading(fr, "ufw", source, out);
	fprintf(out, "# ufw skips a rule it has already: running this again changes nothing.\n"
	        "set -e\n");
	for (size_t i = 0; i < fr->nrules; i++) {
		const struct firewall_rule *r = &fr->rules[i];
		const char *to = r->addr[0] ? r->addr : r->family == AF_INET ? "0.0.0.0/0"
		                 : r->family == AF_INET6 ? "::/0" : "any";

		fprintf(out, "ufw allow proto tcp to %s port %s comment '%s'\n", to,
		        ports(r, ':', p, sizeof(p)), r->why);
	}
}

static void firewalld(const struct firewall_rules *fr, const char *source, FILE *out)
{
	char p[16];

	fprintf(out, "#!/bin/sh\n");
	heading(fr, "firewalld", source, out);
	fprintf(out, "# In the default zone, permanent, then loaded; firewall-cmd skips what it\n"
	        "# has already: running this again changes nothing.\n"
	        "set -e\n");
	for (size_t i = 0; i < fr->nrules; i++) {
		const struct firewall_rule *r = &fr->rules[i];

		fprintf(out, "# %s\n", r->why);
		if (r->family == AF_UNSPEC) {
			fprintf(out, "firewall-cmd --permanent --add-port=%s/tcp\n",
			        ports(r, '-', p, sizeof(p)));
			continue;
		}
		fprintf(out, "firewall-cmd --permanent --add-rich-rule='rule family=\"%s\"",
		        r->family == AF_INET6 ? "ipv6" : "ipv4");
		if (r->addr[0])
			fprintf(out, " destination address=\"%s\"", r->addr);
		fprintf(out, " port port=\"%s\" protocol=\"tcp\" accept'\n",
		        ports(r, '-', p, sizeof(p)));
	}
	fprintf(out, "firewall-cmd --reload\n");
}

static void iptables_one(const struct firewall_rule *r, const char *cmd, FILE *out)
{
	char spec[400], p[16];

	snprintf(spec, sizeof(spec), "INPUT -p tcp%s%s --dport %s -m comment --comment \"%s\" "
	         "-j ACCEPT", r->addr[0] ? " -d " : "", r->addr, ports(r, ':', p, sizeof(p)),
	         r->why);
	fprintf(out, "%s -C %s 2>/dev/null || %s -I %s\n", cmd, spec, cmd, spec);
}

static void iptables(const struct firewall_rules *fr, const char *source, FILE *out)
{
	fprintf(out, "#!/bin/sh\n");
	heading(fr, "iptables", source, out);
	fprintf(out, "# Each rule goes first in INPUT (before a final drop) unless it is there\n"
	        "# already (-C): running this again changes nothing.\n"
	        "set -e\n");
	for (size_t i = 0; i < fr->nrules; i++) {
		const struct firewall_rule *r = &fr->rules[i];

		if (r->family != AF_INET6)
			iptables_one(r, "iptables", out);
		if (r->family != AF_INET)
			iptables_one(r, "ip6tables", out);
	}
}

void firewall_print(const struct firewall_rules *fr, enum firewall_format f,
                    const char *source, FILE *out)
{
	switch (f) {
	case FIREWALL_NFT:       nft(fr, source, out); break;
	case FIREWALL_UFW:       ufw(fr, source, out); break;
	case FIREWALL_FIREWALLD: firewalld(fr, source, out); break;
	case FIREWALL_IPTABLES:  iptables(fr, source, out); break;
	}
}
