#include "firewall.h"
#include "diag.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <string.h>

/* The config's text goes into shell commands and nft comments: anything
 * but letters, digits and a few harmless marks becomes '_', so that no
 * quote, '$' or ';' from a section name reaches a shell. */
static void safe_copy(char *out, size_t outlen, const char *s)
{
	size_t i = 0;

	for (; s[i] != '\0' && i + 1 < outlen; i++) {
		char ch = s[i];
		int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		         (ch >= '0' && ch <= '9') || strchr("._:-[]=/ ", ch) != NULL;
		out[i] = ok ? ch : '_';
	}
	out[i] = '\0';
}

static int loopback(const struct addr *a)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;

	if (a->any)
		return 0;
	if (a->ss.ss_family == AF_INET)
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	/* No v4-mapped form: addr_parse_listen() refuses it for listen and
	 * stats alike, so a loaded config holds none. */
	if (a->ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	return 0;
}

static int unspecified(const struct addr *a)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;

	if (a->ss.ss_family == AF_INET)
		return sin->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
}

static void note_key(struct firewall_rules *fr, const char *listener, const char *key,
                     const char *text, const char *why)
{
	char name[80], t[100];

	if (fr->nnotes >= FIREWALL_MAX_RULES)
		return;
	safe_copy(name, sizeof(name), listener);
	safe_copy(t, sizeof(t), text);
	snprintf(fr->notes[fr->nnotes++].text, sizeof(fr->notes[0].text),
	         "[%s] %s = %s: %s", name, key, t, why);
}

static void note(struct firewall_rules *fr, const char *listener, const char *text,
                 const char *why)
{
	note_key(fr, listener, "listen", text, why);
}

#define PORT0_WHY "port 0, chosen at each start: no rule can name it (its ports_file says which)"

/* A rule for ports lo..hi on listen address a, for the listener named;
 * what (NULL for its listen port) says which other port it is. */
static int rule(struct firewall_rules *fr, const struct addr *a, int lo, int hi,
                const char *listener, const char *what)
{
	struct firewall_rule *r;
	char name[80];

	if (fr->nrules >= FIREWALL_MAX_RULES)
		return -1;
	r = &fr->rules[fr->nrules++];
	memset(r, 0, sizeof(*r));
	r->port_lo = lo;
	r->port_hi = hi;
	r->family = a->any ? AF_UNSPEC : a->ss.ss_family;
	/* 0.0.0.0 and [::] are every address of one family: no address in
	 * the rule, the family alone. */
	if (!a->any && !unspecified(a)) {
		const void *p = a->ss.ss_family == AF_INET
		                ? (const void *)&((const struct sockaddr_in *)&a->ss)->sin_addr
		                : (const void *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
		inet_ntop(a->ss.ss_family, p, r->addr, sizeof(r->addr));
	}
	safe_copy(name, sizeof(name), listener);
	snprintf(r->why, sizeof(r->why), "portier %s%s%s", name, what ? " " : "", what ? what : "");
	return 0;
}

/* The ports of a listener besides its listen ports, on the same addresses.
 *
 * An FTP listener's passive range (data_ports = LO-HI): its clients open
 * their data connections to the address they reached the control port on. */
static int extra_ports(struct firewall_rules *fr, const struct cfg_listener *l,
                       const struct addr *a)
{
	/* mode = plain relays the control connection as it is: the
	 * backend's own PASV ports carry the transfers, and portier never
	 * binds data_ports (-t warns so); firewall_rules notes why. */
	if (l->ftp_data_low == 0 || l->mode == CFG_MODE_PLAIN)
		return 0;
	return rule(fr, a, l->ftp_data_low, l->ftp_data_high, l->name, "ftp data");
}

int firewall_rules(const struct cfg *c, struct firewall_rules *fr)
{
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct cfg_listener *l = &c->listeners[i];

		for (size_t j = 0; j < l->nlisten; j++) {
			const struct cfg_listen *ls = &l->listen[j];

			if (loopback(&ls->addr)) {
				note(fr, l->name, ls->text, "loopback, no rule needed");
				continue;
			}
			if (ls->addr.port == 0) {
				note(fr, l->name, ls->text, PORT0_WHY);
				continue;
			}
			if (rule(fr, &ls->addr, ls->addr.port, ls->addr.port, l->name, NULL) < 0 ||
			    extra_ports(fr, l, &ls->addr) < 0)
				return -1;
		}
		if (l->ftp_data_low != 0 && l->mode == CFG_MODE_PLAIN) {
			char range[32];
			snprintf(range, sizeof(range), "%u-%u", l->ftp_data_low,
			         l->ftp_data_high);
			note_key(fr, l->name, "data_ports", range, "unused with mode = plain "
			         "(portier never binds them), no rule");
		}
	}
	/* The metrics endpoint, when `stats` is set: on loopback a local
	 * Prometheus (or a tunnel) scrapes it; opened only when the admin
	 * put it on another address. */
	if (c->stats.text != NULL) {
		if (loopback(&c->stats.addr))
			note(fr, "stats", c->stats.text, "loopback, no rule needed");
		else if (c->stats.addr.port == 0)
			note(fr, "stats", c->stats.text, PORT0_WHY);
		else if (rule(fr, &c->stats.addr, c->stats.addr.port, c->stats.addr.port,
		              "stats", "metrics") < 0)
			return -1;
	}
	return 0;
}

static void usage(FILE *out, const char *default_config)
{
	fprintf(out,
	        "usage: portier firewall [-c FILE] [--format nft|ufw|firewalld|iptables]\n"
	        "  -c FILE        configuration file (default %s)\n"
	        "  --format F     nft (default): a ruleset for `nft -f -`, table inet portier;\n"
	        "                 ufw, firewalld, iptables: commands for sh\n"
	        "Prints what opens exactly the TCP ports FILE listens on; changes nothing.\n",
	        default_config);
}

int firewall_main(int argc, char **argv, const char *default_config)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct firewall_rules fr;
	enum firewall_format f = FIREWALL_NFT;
	const char *path = default_config;
	struct diag d = {0};
	struct cfg *c;
	int opt, rc = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:f:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'h': usage(stdout, default_config); return 0;
		case 'f':
			if (firewall_format_parse(optarg, &f) < 0) {
				fprintf(stderr, "portier firewall: --format %s: expected nft, ufw, "
				        "firewalld or iptables\n", optarg);
				return 2;
			}
			break;
		default:
			usage(stderr, default_config);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr, default_config);
		return 2;
	}
	if ((c = cfg_load_file(path, &d)) == NULL) {
		diag_print(&d, stderr);
		fprintf(stderr, "portier firewall: %s: configuration refused\n", path);
		diag_free(&d);
		return 1;
	}
	diag_free(&d);
	memset(&fr, 0, sizeof(fr));
	if (firewall_rules(c, &fr) < 0) {
		fprintf(stderr, "portier firewall: %s: more than %d listen addresses\n", path,
		        FIREWALL_MAX_RULES);
		rc = 1;
	} else {
		firewall_print(&fr, f, path, stdout);
		if (fflush(stdout) != 0 || ferror(stdout))
			rc = 1;
	}
	cfg_free(c);
	return rc;
}
