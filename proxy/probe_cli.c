#include "probe.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The command line of `portier probe`: its options, the usage, and either
 * one probe (probe_run.c) reported as text or JSON, or a config's
 * listeners (probe_config.c). */

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: portier probe HOST:PORT [--protocol P] [--sni NAME] [--cafile FILE]\n"
	        "                     [--as-port N] [--timeout 5s] [--json]\n"
	        "       portier probe --config FILE [--host H] [--sni NAME] [--cafile FILE]\n"
	        "                     [--timeout 5s] [--json]\n"
	        "  --protocol P  smtp, imap, pop3, ldap, ftp or http (default: from the port,\n"
	        "                then the greeting)\n"
	        "  --sni NAME    the name to send and to check (default: HOST)\n"
	        "  --cafile FILE verify the chain against FILE (default: the system store)\n"
	        "  --as-port N   judge the port as if it were N (a service moved elsewhere)\n"
	        "  --timeout T   the whole probe's limit (default 5s; 100ms to 300s)\n"
	        "  --config FILE every listener of a portier config (ports from its\n"
	        "                ports_file when there is one), judged against its mode\n"
	        "  --host H      with --config: probe H rather than the listen addresses\n"
	        "  --json        one JSON object instead of the report\n"
	        "exit status: 0 nothing found, 1 findings, 2 could not probe\n");
}

/* "5s", "500ms", "2m", "5": milliseconds, or -1. */
static long parse_timeout(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	long ms;

	if (end == s || v < 0)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		ms = (long)(v * 1000);
	else if (strcmp(end, "ms") == 0)
		ms = (long)v;
	else if (strcmp(end, "m") == 0)
		ms = (long)(v * 60000);
	else
		return -1;
	return ms < 100 || ms > 300000 ? -1 : ms;
}

int probe_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "protocol", required_argument, NULL, 'p' },
		{ "sni", required_argument, NULL, 's' },
		{ "cafile", required_argument, NULL, 'C' },
		{ "as-port", required_argument, NULL, 'a' },
		{ "timeout", required_argument, NULL, 't' },
		{ "config", required_argument, NULL, 'c' },
		{ "host", required_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct probe_result res;
	struct probe_opts o = {0};
	const char *config = NULL, *host = NULL;
	char *end;
	int opt, rc, json = 0;

	o.timeout_ms = 5000;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:s:C:a:t:c:H:jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p': o.protocol = optarg; break;
		case 's': o.sni = optarg; break;
		case 'C': o.cafile = optarg; break;
		case 'c': config = optarg; break;
		case 'H': host = optarg; break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return 0;
		case 'a':
			o.as_port = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || o.as_port < 1 || o.as_port > 65535) {
				fprintf(stderr, "portier probe: --as-port %s: expected 1 to 65535\n", optarg);
				return 2;
			}
			break;
		case 't':
			if ((o.timeout_ms = parse_timeout(optarg)) < 0) {
				fprintf(stderr, "portier probe: --timeout %s: expected 100ms to 300s, "
				        "e.g. 5s or 500ms\n", optarg);
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (config != NULL) {
		if (optind != argc || o.protocol || o.as_port) {
			fprintf(stderr, "portier probe: --config takes no HOST:PORT, --protocol or "
			        "--as-port: each listener says its own\n");
			return 2;
		}
		return probe_config(&o, config, host, json, stdout);
	}
	if (optind != argc - 1 || host != NULL) {
		usage(stderr);
		return 2;
	}
	rc = probe_run(&o, argv[optind], &res);
	if (json) {
		probe_report_json(&res, stdout);
		fputc('\n', stdout);
	} else {
		probe_report_text(&res, stdout);
	}
	return rc;
}
