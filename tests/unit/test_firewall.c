/* `portier firewall`: the rules a config gives (which listen addresses,
 * which family, what needs none), and each format's text for them. */
#include "check.h"
#include "firewall.h"

#include <stdlib.h>
#include <sys/socket.h>

#define TLS "[tls]\ncert = /c.pem\n"

static struct firewall_rules fr;

static struct cfg *load(const char *text)
{
	struct diag d = {0};
	struct cfg *c = cfg_load_string("t.ini", text, &d);

	if (c == NULL)
		diag_print(&d, stderr);
	diag_free(&d);
	return c;
}

/* fr printed in format f, as a malloc'ed string. */
static char *printed(enum firewall_format f)
{
	char *s = NULL;
	size_t n = 0;
	FILE *out = open_memstream(&s, &n);

	firewall_print(&fr, f, "/etc/portier/portier.ini", out);
	fclose(out);
	return s;
}

static int count(const char *s, const char *needle)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void rules_from_config(void)
{
	struct cfg *c = load(TLS
	        "[imaps]\nlisten = 993\nlisten = 127.0.0.1:143\nbackend = 127.0.0.1:1\n"
	        "[web]\nlisten = 192.0.2.1:443\nlisten = [2001:db8::1]:443\n"
	        "listen = 0.0.0.0:8443\nlisten = [::]:8444\nlisten = [::1]:9443\n"
	        "listen = 127.1.2.3:80\nlisten = 0\n"
	        "backend = 127.0.0.1:1\n");

	CHECK(c != NULL);
	if (c == NULL)
		return;
	memset(&fr, 0, sizeof(fr));
	CHECK(firewall_rules(c, &fr) == 0);
	CHECK(fr.nrules == 5);
	CHECK(fr.rules[0].family == AF_UNSPEC && fr.rules[0].addr[0] == '\0' &&
	      fr.rules[0].port_lo == 993 && fr.rules[0].port_hi == 993);
	CHECK_STR(fr.rules[0].why, "portier imaps");
	CHECK(fr.rules[1].family == AF_INET && fr.rules[1].port_lo == 443);
	CHECK_STR(fr.rules[1].addr, "192.0.2.1");
	CHECK(fr.rules[2].family == AF_INET6);
	CHECK_STR(fr.rules[2].addr, "2001:db8::1");
	/* 0.0.0.0 and [::]: one family, any address. */
	CHECK(fr.rules[3].family == AF_INET && fr.rules[3].addr[0] == '\0' &&
	      fr.rules[3].port_lo == 8443);
	CHECK(fr.rules[4].family == AF_INET6 && fr.rules[4].addr[0] == '\0' &&
	      fr.rules[4].port_lo == 8444);
	/* Loopback, in all its spellings, and port 0: a note each, no rule. */
	CHECK(fr.nnotes == 4);
	CHECK(strstr(fr.notes[0].text, "[imaps] listen = 127.0.0.1:143: loopback, no rule") != NULL);
	CHECK(strstr(fr.notes[1].text, "[web] listen = [::1]:9443: loopback") != NULL);
	CHECK(strstr(fr.notes[2].text, "127.1.2.3:80: loopback") != NULL);
	CHECK(strstr(fr.notes[3].text, "listen = 0: port 0") != NULL);
	cfg_free(c);
}

static void nft_text(void)
{
	char *s = printed(FIREWALL_NFT);

	/* Idempotent: the table is made (a no-op if there), deleted, made
	 * again whole. */
	CHECK(strstr(s, "\ntable inet portier\ndelete table inet portier\ntable inet portier {\n"
	             "\tchain input {\n\t\ttype filter hook input priority filter - 10; "
	             "policy accept;\n") != NULL);
	CHECK(strstr(s, "\t\ttcp dport 993 meta mark set meta mark | 0x00100000 accept comment "
	             "\"portier imaps\"\n") != NULL);
	CHECK(strstr(s, "\t\tip daddr 192.0.2.1 tcp dport 443 meta mark") != NULL);
	CHECK(strstr(s, "\t\tip6 daddr 2001:db8::1 tcp dport 443 meta mark") != NULL);
	CHECK(strstr(s, "\t\tmeta nfproto ipv4 tcp dport 8443 meta mark") != NULL);
	CHECK(strstr(s, "\t\tmeta nfproto ipv6 tcp dport 8444 meta mark") != NULL);
	CHECK(strstr(s, "# [imaps] listen = 127.0.0.1:143: loopback, no rule needed\n") != NULL);
	CHECK(strstr(s, "#   meta mark & 0x00100000 == 0x00100000 accept\n") != NULL);
	CHECK(count(s, " accept comment ") == 5);
	CHECK(count(s, "9443") == 1);   /* in the note only */
	free(s);
}

static void ufw_text(void)
{
	char *s = printed(FIREWALL_UFW);

	CHECK(strstr(s, "\nufw allow proto tcp to any port 993 comment 'portier imaps'\n") != NULL);
	CHECK(strstr(s, "\nufw allow proto tcp to 192.0.2.1 port 443 comment 'portier web'\n"));
	CHECK(strstr(s, "\nufw allow proto tcp to 2001:db8::1 port 443 comment") != NULL);
	CHECK(strstr(s, "\nufw allow proto tcp to 0.0.0.0/0 port 8443 comment") != NULL);
	CHECK(strstr(s, "\nufw allow proto tcp to ::/0 port 8444 comment") != NULL);
	CHECK(count(s, "\nufw allow") == 5);
	CHECK(strstr(s, "\nset -e\n") != NULL);
	free(s);
}

static void firewalld_text(void)
{
	char *s = printed(FIREWALL_FIREWALLD);

	CHECK(strstr(s, "\nfirewall-cmd --permanent --add-port=993/tcp\n") != NULL);
	CHECK(strstr(s, "\nfirewall-cmd --permanent --add-rich-rule='rule family=\"ipv4\" "
	             "destination address=\"192.0.2.1\" port port=\"443\" protocol=\"tcp\" "
	             "accept'\n") != NULL);
	CHECK(strstr(s, "rule family=\"ipv6\" destination address=\"2001:db8::1\" port") != NULL);
	CHECK(strstr(s, "rule family=\"ipv4\" port port=\"8443\" protocol=\"tcp\" accept'") != NULL);
	CHECK(strstr(s, "rule family=\"ipv6\" port port=\"8444\"") != NULL);
	CHECK(count(s, "\nfirewall-cmd --permanent") == 5);
	/* The permanent rules are loaded, once, at the end. */
	CHECK(strstr(s, "\nfirewall-cmd --reload\n") != NULL &&
	      strstr(s, "\nfirewall-cmd --reload\n")[strlen("\nfirewall-cmd --reload\n")] == '\0');
	free(s);
}

static void iptables_text(void)
{
	char *s = printed(FIREWALL_IPTABLES);

	/* Any address: v4 and v6; each only when not there already. */
	CHECK(strstr(s, "\niptables -C INPUT -p tcp --dport 993 -m comment --comment \"portier "
	             "imaps\" -j ACCEPT 2>/dev/null || iptables -I INPUT -p tcp --dport 993 -m "
	             "comment --comment \"portier imaps\" -j ACCEPT\n") != NULL);
	CHECK(strstr(s, "\nip6tables -C INPUT -p tcp --dport 993 ") != NULL);
	CHECK(strstr(s, "\niptables -C INPUT -p tcp -d 192.0.2.1 --dport 443 ") != NULL);
	CHECK(strstr(s, "\nip6tables -C INPUT -p tcp -d 2001:db8::1 --dport 443 ") != NULL);
	CHECK(strstr(s, "\niptables -C INPUT -p tcp --dport 8443 ") != NULL);
	CHECK(strstr(s, "\nip6tables -C INPUT -p tcp --dport 8443 ") == NULL);
	CHECK(strstr(s, "\nip6tables -C INPUT -p tcp --dport 8444 ") != NULL);
	CHECK(strstr(s, "\niptables -C INPUT -p tcp --dport 8444 ") == NULL);
	CHECK(count(s, " -j ACCEPT 2>/dev/null || ") == 6);
	free(s);
}

/* Nothing to open: still a table (emptied: stale rules go), and said. */
static void loopback_only(void)
{
	struct cfg *c = load(TLS "[a]\nlisten = 127.0.0.1:993\nbackend = 127.0.0.1:1\n");
	char *s;

	CHECK(c != NULL);
	if (c == NULL)
		return;
	memset(&fr, 0, sizeof(fr));
	CHECK(firewall_rules(c, &fr) == 0);
	CHECK(fr.nrules == 0 && fr.nnotes == 1);
	s = printed(FIREWALL_NFT);
	CHECK(strstr(s, "# no listen address needs a rule\n") != NULL);
	CHECK(strstr(s, "delete table inet portier\n") != NULL);
	CHECK(count(s, "accept comment") == 0);
	free(s);
	s = printed(FIREWALL_UFW);
	CHECK(count(s, "ufw allow") == 0);
	free(s);
	cfg_free(c);
}

/* Text from the config reaches commands only as letters, digits and
 * harmless marks (a loader may one day allow more in a section name). */
static void hostile_names(void)
{
	struct cfg_listen ls[2];
	struct cfg_listener l = {0};
	struct cfg c = {0};
	char *s;

	memset(ls, 0, sizeof(ls));
	ls[0].addr.any = 1;
	ls[0].addr.port = 25;
	ls[0].text = "25";
	ls[1].addr.any = 1;
	ls[1].text = "0\n'; rm -rf / #";
	l.name = "x'\"$(reboot)`;\n";
	l.listen = ls;
	l.nlisten = 2;
	c.listeners = &l;
	c.nlisteners = 1;
	memset(&fr, 0, sizeof(fr));
	CHECK(firewall_rules(&c, &fr) == 0);
	CHECK_STR(fr.rules[0].why, "portier x____reboot____");
	s = printed(FIREWALL_UFW);
	CHECK(strstr(s, "comment 'portier x____reboot____'\n") != NULL);
	CHECK(strchr(s, '$') == NULL && strchr(s, '`') == NULL);
	/* The port-0 note stays one comment line. */
	CHECK(strstr(s, "# [x____reboot____] listen = 0___ rm -rf / _: port 0") != NULL);
	free(s);
}

/* The characters a name keeps, each range at its ends and the marks;
 * those just outside them become '_'; a name longer than the rule's
 * comment is cut. More rules or notes than the table holds: refused, or
 * the notes stop, never past the table. A plain listener with no data
 * ports has nothing to say of them. */
static void bounds(void)
{
	static struct cfg_listen ls[FIREWALL_MAX_RULES + 1];
	static char longname[200];
	struct cfg_listener l = {0};
	struct cfg c = {.listeners = &l, .nlisteners = 1};

	memset(ls, 0, sizeof(ls));
	ls[0].addr.any = 1;
	ls[0].addr.port = 25;
	ls[0].text = "25";
	l.name = "azAZ09._:-[]=/ @`{";
	l.listen = ls;
	l.nlisten = 1;
	memset(&fr, 0, sizeof(fr));
	CHECK(firewall_rules(&c, &fr) == 0 && fr.nrules == 1 && fr.nnotes == 0);
	CHECK_STR(fr.rules[0].why, "portier azAZ09._:-[]=/ ___");
	memset(longname, 'n', sizeof(longname) - 1);
	l.name = longname;
	memset(&fr, 0, sizeof(fr));
	CHECK(firewall_rules(&c, &fr) == 0 && strlen(fr.rules[0].why) == strlen("portier ") + 79);

	l.name = "many";
	for (int i = 0; i <= FIREWALL_MAX_RULES; i++) {
		ls[i].addr.any = 1;
		ls[i].addr.port = 1000 + i;
		ls[i].text = "x";
	}
	l.nlisten = FIREWALL_MAX_RULES;
	memset(&fr, 0, sizeof(fr));
	CHECK(firewall_rules(&c, &fr) == 0 && fr.nrules == FIREWALL_MAX_RULES);
	l.nlisten = FIREWALL_MAX_RULES + 1;
	memset(&fr, 0, sizeof(fr));
	CHECK(firewall_rules(&c, &fr) == -1 && fr.nrules == FIREWALL_MAX_RULES);
	for (int i = 0; i <= FIREWALL_MAX_RULES; i++)
		ls[i].addr.port = 0;   /* each a note */
	memset(&fr, 0, sizeof(fr));
	CHECK(firewall_rules(&c, &fr) == 0 && fr.nrules == 0 &&
	      fr.nnotes == FIREWALL_MAX_RULES);

	l.nlisten = 1;
	ls[0].addr.port = 21;
	l.mode = CFG_MODE_PLAIN;
	l.proto = CFG_PROTO_FTP;
	memset(&fr, 0, sizeof(fr));
	CHECK(firewall_rules(&c, &fr) == 0 && fr.nrules == 1 && fr.nnotes == 0);
}

static void formats(void)
{
	enum firewall_format f = FIREWALL_UFW;

	CHECK(firewall_format_parse("nft", &f) == 0 && f == FIREWALL_NFT);
	CHECK(firewall_format_parse("iptables", &f) == 0 && f == FIREWALL_IPTABLES);
	CHECK(firewall_format_parse("firewalld", &f) == 0 && f == FIREWALL_FIREWALLD);
	CHECK(firewall_format_parse("ufw", &f) == 0 && f == FIREWALL_UFW);
	CHECK(firewall_format_parse("pf", &f) == -1 && f == FIREWALL_UFW);
}

/* [portier] stats: a rule only off loopback. */
static void stats_port(void)
{
	struct cfg *c = load("[portier]\nstats = 192.0.2.1:9120\n" TLS
	                     "[a]\nlisten = 993\nbackend = 127.0.0.1:1\n");

	CHECK(c != NULL);
	if (c == NULL)
		return;
	memset(&fr, 0, sizeof(fr));
	CHECK(firewall_rules(c, &fr) == 0);
	CHECK(fr.nrules == 2 && fr.nnotes == 0);
	CHECK(fr.rules[1].family == AF_INET && fr.rules[1].port_lo == 9120);
	CHECK_STR(fr.rules[1].addr, "192.0.2.1");
	CHECK_STR(fr.rules[1].why, "portier stats metrics");
	cfg_free(c);
	c = load("[portier]\nstats = 127.0.0.1:9120\n" TLS
	         "[a]\nlisten = 993\nbackend = 127.0.0.1:1\n");
	CHECK(c != NULL);
	if (c == NULL)
		return;
	memset(&fr, 0, sizeof(fr));
	CHECK(firewall_rules(c, &fr) == 0);
	CHECK(fr.nrules == 1 && fr.nnotes == 1);
	CHECK(strstr(fr.notes[0].text, "[stats] listen = 127.0.0.1:9120: loopback") != NULL);
	cfg_free(c);
	/* Port 0 is chosen at each start, as for a listener: a note, not a
	 * rule for dport 0. */
	c = load("[portier]\nstats = 0.0.0.0:0\n" TLS
	         "[a]\nlisten = 993\nbackend = 127.0.0.1:1\n");
	CHECK(c != NULL);
	if (c == NULL)
		return;
	memset(&fr, 0, sizeof(fr));
	CHECK(firewall_rules(c, &fr) == 0);
	CHECK(fr.nrules == 1 && fr.rules[0].port_lo == 993 && fr.nnotes == 1);
	CHECK(strstr(fr.notes[0].text, "[stats] listen = 0.0.0.0:0: port 0, chosen at each "
	             "start") != NULL);
	cfg_free(c);
}

/* An FTP listener's passive range, on each of its listen addresses. */
static void ftp_data_ports(void)
{
	struct cfg *c = load(TLS "[ftps]\nlisten = 990\nlisten = 192.0.2.1:2990\nmode = tls\n"
	                     "protocol = ftp\nbackend = 127.0.0.1:21\n"
	                     "data_ports = 50000-50100\n");
	char *s;

	CHECK(c != NULL);
	if (c == NULL)
		return;
	memset(&fr, 0, sizeof(fr));
	CHECK(firewall_rules(c, &fr) == 0);
	CHECK(fr.nrules == 4);
	CHECK(fr.rules[0].port_lo == 990 && fr.rules[0].port_hi == 990);
	CHECK(fr.rules[1].family == AF_UNSPEC && fr.rules[1].port_lo == 50000 &&
	      fr.rules[1].port_hi == 50100);
	CHECK_STR(fr.rules[1].why, "portier ftps ftp data");
	CHECK(fr.rules[3].family == AF_INET && fr.rules[3].port_lo == 50000 &&
	      fr.rules[3].port_hi == 50100);
	CHECK_STR(fr.rules[3].addr, "192.0.2.1");
	CHECK(fr.nnotes == 0);   /* data ports bound: nothing to say */
	s = printed(FIREWALL_NFT);
	CHECK(strstr(s, "tcp dport 50000-50100 ") != NULL);
	free(s);
	cfg_free(c);
	/* mode = plain relays the control connection as it is: portier binds
	 * no data port, so none is opened; a comment says why. */
	c = load("[ftp]\nlisten = 21\nmode = plain\nprotocol = ftp\n"
	         "backend = 127.0.0.1:2121\ndata_ports = 50000-50100\n");
	CHECK(c != NULL);
	if (c == NULL)
		return;
	memset(&fr, 0, sizeof(fr));
	CHECK(firewall_rules(c, &fr) == 0);
	CHECK(fr.nrules == 1 && fr.rules[0].port_lo == 21 && fr.rules[0].port_hi == 21);
	CHECK(fr.nnotes == 1);
	CHECK_STR(fr.notes[0].text, "[ftp] data_ports = 50000-50100: unused with mode = plain "
	          "(portier never binds them), no rule");
	s = printed(FIREWALL_NFT);
	CHECK(strstr(s, "50000") != NULL && strstr(s, "dport 50000") == NULL);
	free(s);
	cfg_free(c);
}

int main(void)
{
	ftp_data_ports();
	stats_port();
	rules_from_config();
	nft_text();
	ufw_text();
	firewalld_text();
	iptables_text();
	loopback_only();
	hostile_names();
	bounds();
	formats();
	return CHECK_DONE();
}
