/* portier: a TLS-terminating port-multiplexer edge proxy. */

#include "cfg.h"
#include "cfg_keys.h"
#include "diag.h"
#include "expiry.h"
#include "firewall.h"
#include "listener.h"
#include "log.h"
#include "master.h"
#include "privdrop.h"
#include "probe.h"
#include "server.h"
#include "shared.h"
#include "tlsctx.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/portier/portier.ini"

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: portier [-c FILE] [-f] [-t] [-V] [-K] [-h]\n"
	        "       portier probe HOST:PORT [options]  (portier probe --help)\n"
	        "       portier firewall [-c FILE] [--format nft|ufw|firewalld|iptables]\n"
	        "  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
	        "  -f       stay in the foreground and log to stderr\n"
	        "  -t       check the configuration and every certificate, then exit\n"
	        "  -V       print version and library versions\n"
	        "  -K       print the configuration key reference (Markdown)\n"
	        "  -h       this help\n");
}

static void version(void)
{
	printf("portier %s\n", PORTIER_VERSION);
	printf("TLS: %s\n", tlsctx_library());
	printf("event loop: libev %d.%d (backend %s)\n", ev_version_major(),
	       ev_version_minor(),
	       ev_backend(EV_DEFAULT) & EVBACKEND_EPOLL ? "epoll" : "other");
}

/* -t: every problem of the config and its certificates, then 0 or 1. */
static int check_only(const char *path)
{
	static const struct cfg_load_opts keep = {.keep_with_errors = 1};
	struct diag d = {0};
	struct cfg *c = cfg_load_file_opts(path, &keep, &d);
	struct tlsctx **tls = NULL;
	int rc;

	/* The certificates too when the file has errors: a typo elsewhere
	 * must not hide an expired or mismatched certificate until the next
	 * run. */
	if (c != NULL && (tls = server_prepare(c, 0, &d)) != NULL) {
		for (size_t i = 0; i < c->nlisteners; i++)
			tlsctx_free(tls[i]);
		free(tls);
	}
	diag_print(&d, stderr);
	rc = d.errors ? 1 : 0;
	if (rc == 0)
		fprintf(stderr, "%s: configuration OK (%zu listeners%s)\n", path,
		        c->nlisteners, d.warnings ? ", with warnings" : "");
	else
		fprintf(stderr, "%s: %d error%s, configuration refused\n", path,
		        d.errors, d.errors == 1 ? "" : "s");
	diag_free(&d);
	cfg_free(c);
	return rc;
}

/* A worker that cannot serve, for the tests of a reload that fails after
 * the fork (no configuration makes one on purpose: every check a worker
 * could fail is made by the master first). While the file named by the
 * environment variable PORTIER_TEST_WORKER_FAIL exists, a worker does not
 * serve: it ends with status 1, or, if the file begins with "hang", waits
 * silently until a signal ends it. A number after the word ("hang 2")
 * makes only the worker of that number fail, so that a reload can fail
 * with its other workers serving. Read in workers only, never by the
 * master. */
static int test_worker_fails(unsigned worker)
{
	const char *path = getenv("PORTIER_TEST_WORKER_FAIL");
	char head[32] = "";
	unsigned only = 0;
	FILE *f;

	if (path == NULL || *path == '\0' || (f = fopen(path, "re")) == NULL)
		return 0;
	if (fgets(head, sizeof(head), f) == NULL)
		head[0] = '\0';
	fclose(f);
	if (sscanf(head, "%*s %u", &only) == 1 && only != worker)
		return 0;
	log_errx("PORTIER_TEST_WORKER_FAIL: %s exists; not serving", path);
	if (memcmp(head, "hang", 4) == 0) {
		sigset_t any;
		sigemptyset(&any);
		sigprocmask(SIG_SETMASK, &any, NULL);   /* SIGTERM ends it */
		for (;;)
			pause();
	}
	return 1;
}

/* The loop's first turn: its signal watchers and acceptors are in place,
 * so the worker serves; the master may now let the old workers go. A
 * SIGTERM or SIGINT held back since the fork (become_worker) comes now. */
static void on_serving(struct ev_loop *loop, ev_timer *w, int revents)
{
	sigset_t stop;

	log_info("serving (pid %ld)", (long)getpid());
	/* Before the stop signals are let in: a SIGTERM that waits tells
	 * master_ready() why its channel may be closed. */
	if (master_ready(w->data) < 0)
		log_warn("cannot tell the master this worker serves");
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_UNBLOCK, &stop, NULL);
}

/* The master's channel: a new log target (SIGUSR1, a reload). */
static void on_master(struct ev_loop *loop, ev_io *w, int revents)
{
	if (master_log_heard(w->data) == 0)
		ev_io_stop(loop, w);
}

/* One worker: an event loop serving m's config from the sockets of its
 * set, with its contexts (taken over). Tells the master once it serves.
 * 0 or 1. */
static int serve(struct master *m, unsigned worker)
{
	struct server srv;
	ev_timer ready;
	ev_io chan;

	if (server_init(&srv, EV_DEFAULT, m->cfg, m->tls, &m->set) < 0) {
		log_errx("out of memory");
		return 1;
	}
	srv.generation = m->generation;
	if (test_worker_fails(worker)) {
		server_free(&srv);
		listener_close(&m->set);
		return 1;
	}
	ev_timer_init(&ready, on_serving, 0., 0.);
	ready.data = m;
	ev_timer_start(EV_DEFAULT, &ready);
	ev_io_init(&chan, on_master, m->chan, EV_READ);
	chan.data = m;
	ev_io_start(EV_DEFAULT, &chan);
	server_run(&srv);
	ev_timer_stop(EV_DEFAULT, &ready);
	ev_io_stop(EV_DEFAULT, &chan);
	/* SIGTERM, SIGINT and SIGQUIT are ignored from server_run()'s end. */
	server_free(&srv);
	listener_close(&m->set);
	return 0;
}

/* The master's end. */
static int stopped(struct master *m, int rc)
{
	master_pid_file_remove(m);
	master_ports_file_remove(m);
	cfg_free(m->cfg);
	log_notice("portier stopped");
	log_close();
	return rc;
}

/* Descriptors 0 to 2 that whoever started portier left closed are opened
 * on /dev/null: else the first socket made would take one of them, and what
 * is written to "stderr" (the log) would go into it; a listening socket
 * held that way also outlived a reload that closed it. */
static void std_fds_open(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			return;     /* no /dev/null: nothing better to be had */
}

/* What the starting process left open beyond 0-2 (a shell's descriptor, a
 * supervisor's pipe): the master keeps root and forks the workers, so a
 * descriptor opened as root would reach processes that gave root up, and
 * a parent waiting for EOF on its pipe would wait as long as portier runs.
 * portier inherits nothing it uses (it binds its own sockets). */
static void inherited_fds_close(void)
{
	if (close_range(3, ~0u, 0) == 0)
		return;
	for (int fd = 3; fd < 1024; fd++)   /* a kernel before 5.9 */
		close(fd);
}

int main(int argc, char **argv)
{
	const char *path = DEFAULT_CONFIG;
	int foreground = 0, test = 0, opt, rc;
	struct diag d = {0};
	struct master m = {0};
	unsigned nworkers, worker = 0;
	struct cfg *c;

	std_fds_open();
	if (argc > 1 && strcmp(argv[1], "probe") == 0)
		return probe_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "firewall") == 0)
		return firewall_main(argc - 1, argv + 1, DEFAULT_CONFIG);
	while ((opt = getopt(argc, argv, "c:ftVKh")) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 'f': foreground = 1; break;
		case 't': test = 1; break;
		case 'V': version(); return 0;
		case 'K': cfg_keys_print(stdout); return 0;
		case 'h': usage(stdout); return 0;
		default:  usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	/* Before any key is read. The master holds every private key for as
	 * long as it runs (and keeps root): a dumpable process can be traced,
	 * and its memory and environment read, by any process of its user,
	 * and leaves all of it in a core file. Its workers inherit this; -t
	 * reads the keys too. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fprintf(stderr, "portier: cannot make the process non-dumpable: %s\n",
		        strerror(errno));
	if (test)
		return check_only(path);

	inherited_fds_close();
	signal(SIGPIPE, SIG_IGN);
	/* Connection buffers come and go at 16 KiB a time; without this glibc
	 * gives the top of the heap back and takes it again with brk(2) on
	 * nearly every connection. */
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
	/* The ocsp files are looked at before master_prepare reads them,
	 * as a reload does (master_reload.c). */
	if ((c = cfg_load_file(path, &d)) != NULL)
		m.ocsp_fp = expiry_ocsp_print(c);
	if (c == NULL || master_prepare(c, 0, &m.tls, &m.user, &m.drop, &d) < 0) {
		diag_print(&d, stderr);
		fprintf(stderr, "portier: %s: configuration refused, not starting\n", path);
		diag_free(&d);
		cfg_free(c);
		return 1;
	}
	if (listener_open(c, &m.set, NULL, &d) < 0) {
		diag_print(&d, stderr);
		diag_free(&d);
		for (size_t i = 0; i < c->nlisteners; i++)
			tlsctx_free(m.tls[i]);
		free(m.tls);
		listener_close(&m.set);
		cfg_free(c);
		return 1;
	}
	/* In the foreground the log is the terminal (or whatever stderr is),
	 * written without blocking like any other target. */
	if (log_open(foreground ? "stderr" : c->log, "portier") < 0) {
		fprintf(stderr, "portier: cannot open log %s: %s\n",
		        foreground ? "stderr" : c->log, strerror(errno));
		return 1;
	}
	log_set_json(c->log_json);   /* every line from here on */
	/* Before the pid_file and ports_file say portier has started: a
	 * reload sent the moment they appear must wait for the master's
	 * loop, not meet SIGHUP's default action. Blocked signals survive
	 * daemon()'s fork. */
	master_block_signals();
	/* Detach only now, so that every error above reached the terminal.
	 * The working directory stays: a relative -c path, cert or key is
	 * read again on each reload and must mean what it meant at start. */
	if (!foreground && daemon(1, 0) < 0) {
		fprintf(stderr, "portier: cannot detach: %s\n", strerror(errno));
		return 1;
	}
	if (master_pid_file(&m, c->pid_file) < 0)
		log_warn("cannot write pid_file %s", c->pid_file);
	diag_log(&d);      /* warnings, e.g. certificates about to expire */
	diag_free(&d);
	nworkers = master_nworkers(c);
	log_notice("portier %s started: %zu listeners on %zu sockets, %u worker%s (%s)",
	           PORTIER_VERSION, c->nlisteners, m.set.n, nworkers,
	           nworkers == 1 ? "" : "s", tlsctx_library());
	log_set_quiet(c->log_quiet);
	master_ports_file(&m, c);
	/* Before the first fork: every worker, of every reload, shares it. */
	if (shared_map(SHARED_SIZE) == NULL)
		log_warn("cannot map the shared region; serving without it");
	else {
		log_count_drops(&shared_get()->log_dropped);
		log_share_midline(&shared_get()->log_midline);
	}
	m.path = path;
	m.foreground = foreground;
	m.cfg = c;
	rc = master_run(&m, &worker);
	if (rc == MASTER_WORKER) {
		rc = serve(&m, worker);   /* tagged "worker G.N: " by master_child() */
		free(m.pid_written);   /* the master's to remove, not ours */
		free(m.ports_written);
		free(m.ports_text);
		cfg_free(m.cfg);
		log_close();
		return rc;
	}
	/* The master's end: the last generation it held. */
	for (size_t i = 0; i < m.cfg->nlisteners; i++)
		tlsctx_free(m.tls[i]);
	free(m.tls);
	listener_close(&m.set);
	return stopped(&m, rc);
}
