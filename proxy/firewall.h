#ifndef PORTIER_FIREWALL_H
#define PORTIER_FIREWALL_H

#include <stddef.h>
#include <stdio.h>

#include "cfg.h"

/*
 * `portier firewall`: the commands that open exactly the TCP ports a
 * config listens on, for nft, ufw, firewalld or iptables. firewall.c turns
 * the config into rules (one per listen address that needs one) and notes
 * (listen addresses that need none, or cannot have one); firewall_format.c
 * prints them in each tool's language, as text safe to pipe to a shell.
 */

enum firewall_format {
	FIREWALL_NFT,           /* one `nft -f -` ruleset */
	FIREWALL_UFW,           /* ufw commands */
	FIREWALL_FIREWALLD,     /* firewall-cmd commands */
	FIREWALL_IPTABLES       /* iptables / ip6tables commands */
};

/* The bit of the packet mark the nft table sets on what it accepts: a
 * host ruleset that drops by default lets portier's ports in with one
 * rule of its own, `meta mark & 0x... == 0x... accept`, that never changes
 * with the config (an accept in one nftables table does not override a
 * drop in another). */
#define FIREWALL_NFT_MARK 0x00100000u

/* One port, or a range, to open. */
struct firewall_rule {
	int family;             /* AF_INET, AF_INET6, or AF_UNSPEC for both */
	char addr[64];          /* numeric destination; "" for any */
	int port_lo, port_hi;   /* equal for one port */
	char why[160];          /* "[imaps] listen = 993", printable ASCII */
};

/* Why a listen address has no rule, for a comment line. */
struct firewall_note {
	char text[320];
};

#define FIREWALL_MAX_RULES 256

struct firewall_rules {
	struct firewall_rule rules[FIREWALL_MAX_RULES];
	size_t nrules;
	struct firewall_note notes[FIREWALL_MAX_RULES];
	size_t nnotes;
};

/* firewall_rules(c, fr): fill fr (zeroed by the caller) from c: each
 * listen address not on loopback and not port 0 gives a rule; the others
 * a note. Returns 0, or -1 when there are more than FIREWALL_MAX_RULES
 * (fr then holds the first ones). */
int firewall_rules(const struct cfg *c, struct firewall_rules *fr);

/* firewall_format_parse(s, f): "nft", "ufw", "firewalld", "iptables" into
 * *f. 0 or -1. */
int firewall_format_parse(const char *s, enum firewall_format *f);

/* firewall_print(fr, f, source, out): fr in format f on out; source (the
 * config's path) is named in the heading comment. Every line that is not a
 * command is a comment ('#'), and every text from the config in a command
 * is printable ASCII without quotes (firewall_format.c). */
void firewall_print(const struct firewall_rules *fr, enum firewall_format f,
                    const char *source, FILE *out);

/* firewall_main(argc, argv): `portier firewall [-c FILE] [--format F]`
 * (argv[0] is "firewall"). Returns the exit status: 0 printed, 1 the
 * config was refused or has too many listen addresses, 2 usage. */
int firewall_main(int argc, char **argv, const char *default_config);

#endif
