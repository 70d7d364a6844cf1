/*
 * A reload: on SIGHUP the master reads its file again and builds the new
 * generation beside the running one (config, certificates, sockets); the
 * loop in master.c starts its workers, and once every one reports serving
 * the new generation is committed and the old workers drain. Anything that
 * fails before then undoes it, and the running generation never noticed.
 */

#include "master_int.h"
#include "expiry.h"
#include "log.h"
#include "notify.h"
#include "shared.h"
#include "tlsctx.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The fds of set, as they are now (for master_reload_give_back). NULL on
 * ENOMEM. */
static int *fds_of(const struct listener_set *set)
{
	int *fds = calloc(set->n ? set->n : 1, sizeof(*fds));

	for (size_t i = 0; fds != NULL && i < set->n; i++)
		fds[i] = set->socks[i].fd;
	return fds;
}

void master_reload_give_back(struct listener_set *old, const int *had,
                      struct listener_set *next)
{
	for (size_t i = 0; i < old->n; i++) {
		if (had[i] < 0 || old->socks[i].fd >= 0)
			continue;
		old->socks[i].fd = had[i];
		for (size_t k = 0; k < next->n; k++)
			if (next->socks[k].fd == had[i])
				next->socks[k].fd = -1;
	}
}

void master_reload_free(struct next *nx)
{
	if (nx == NULL)
		return;
	for (unsigned i = 0; i < nx->nslots; i++)
		master_close_chan(&nx->slots[i]);
	free(nx->slots);
	free(nx->had);
	free(nx);
}

/* The current workers join the draining list (room reserved), from the
 * index returned on; slots (n of them, every worker serving) become the
 * current generation's. */
static size_t replace_slots(struct sup *s, struct slot *slots, unsigned n)
{
	size_t first = s->nold;

	for (unsigned i = 0; i < s->nslots; i++) {
		master_close_chan(&s->slots[i]);
		if (s->slots[i].pid != 0)
			s->old[s->nold++] = s->slots[i].pid;
	}
	free(s->slots);
	s->slots = slots;
	s->nslots = n;
	return first;
}

void master_reload_undo(struct sup *s)
{
	struct next *nx = s->next;
	struct master *m = s->m;
	unsigned serving = 0;

	master_read_ready(nx->slots, nx->nslots);   /* reports made just before */
	for (unsigned i = 0; i < nx->nslots; i++) {
		pid_t pid = nx->slots[i].pid;

		if (pid == 0)
			continue;
		if (nx->slots[i].ready) {
			/* It serves, and accepted on the sockets it shares with
			 * the running generation: its clients are not cut, it
			 * drains like an old worker (room reserved in both). */
			kill(pid, SIGQUIT);
			s->old[s->nold++] = pid;
			s->undone[s->nundone++] = pid;
			serving++;
			continue;
		}
		kill(pid, SIGTERM);
		s->failed[s->nfailed++] = pid;     /* room reserved */
		s->failed_kill_at = master_now() + STOP_GRACE_S;
	}
	if (serving > 0)
		log_notice("reload undone: %u worker%s of it already serving drain%s "
		           "(SIGQUIT): %s open connections run on", serving,
		           serving == 1 ? "" : "s", serving == 1 ? "s" : "",
		           serving == 1 ? "its" : "their");
	master_reload_give_back(&m->set, nx->had, &nx->set);
	listener_close(&nx->set);
	master_free_tls(nx->cfg, nx->tls);
	cfg_free(nx->cfg);
	master_reload_free(nx);
	s->next = NULL;
}

void master_reload_fail(struct sup *s, const char *why)
{
	char told[400];

	log_errx("reload failed: %s; keeping the running configuration", why);
	master_reload_undo(s);
	shared_reload_done(shared_get(), 0, time(NULL));
	snprintf(told, sizeof(told), "reload failed: %s", why);
	master_tell(s, told);
}

/* The first error of d, for the service manager's STATUS= line. */
static const char *first_error(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (!d->is_warning[i])
			return d->lines[i];
	return "(not recorded: out of memory)";
}

/* SIGHUP, as the service manager hears it: RELOADING=1 and when (systemd
 * matches MONOTONIC_USEC against the time it asked), until the READY=1
 * that every outcome sends. */
static void tell_reloading(const char *path)
{
	char state[64];

	snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
	         notify_monotonic_usec());
	if (notify_state(state, "reloading %s", path) < 0)
		log_warn("cannot tell the service manager portier is reloading");
}

/* Every new worker serves: the new generation becomes the current one, and
 * the old workers are told to drain. */
static void commit(struct sup *s)
{
	struct next *nx = s->next;
	struct master *m = s->m;
	struct cfg *c = nx->cfg;
	struct shared *sh = shared_get();
	size_t first, draining;

	/* Counted before the old channels close: an old worker that reports
	 * serving only now meets a closed channel, and tells from the count
	 * that no one waits for its report (master_ready). */
	shared_reload_done(sh, 1, time(NULL));
	first = replace_slots(s, nx->slots, nx->nslots);
	nx->slots = NULL;
	nx->nslots = 0;
	master_log_follow(s, c->log);
	/* The pid_file follows the configuration, and is written again if
	 * it no longer names the master; one that cannot be written leaves
	 * the one written before (the pid is the same). */
	if (master_pid_file(m, c->pid_file) < 0) {
		int other = m->pid_written && strcmp(m->pid_written, c->pid_file) != 0;

		log_warn("reload: cannot write pid_file %s%s%s", c->pid_file,
		         other ? "; keeping " : "", other ? m->pid_written : "");
	}
	listener_close(&m->set);           /* what the new generation did not take */
	master_free_tls(m->cfg, m->tls);
	cfg_free(m->cfg);
	m->cfg = c;
	m->tls = nx->tls;
	m->set = nx->set;
	m->user = nx->user;
	m->drop = nx->drop;
	m->generation = nx->generation;
	/* An ocsp file replaced since the reload read it differs from this,
	 * and the loop reloads again to staple it. */
	s->ocsp_fp = nx->ocsp_fp;
	s->ocsp_gen = m->generation;
	master_reload_free(nx);
	s->next = NULL;
	log_set_quiet(c->log_quiet);
	log_set_json(c->log_json);
	master_ports_file(m, c);
	draining = s->nold - first;
	log_notice("reloaded: %zu listeners on %zu sockets, %u worker%s; %zu "
	           "worker%s of the previous configuration draining (generation "
	           "%llu)", c->nlisteners, m->set.n, s->nslots, s->nslots == 1 ? "" : "s",
	           draining, draining == 1 ? "" : "s",
	           m->generation);
	/* Told here, after the line that says so and before the loop can
	 * reap (which moves old[]'s last pid into a hole): each pid in old
	 * has been told to drain, by construction. */
	for (size_t i = first; i < s->nold; i++)
		kill(s->old[i], SIGQUIT);
	master_tell(s, NULL);
}

void master_reload_start(struct sup *s)
{
	struct master *m = s->m;
	struct diag d = {0};
	struct next *nx;
	struct cfg *c = NULL;
	unsigned n = 0;

	if (s->next != NULL) {
		log_notice("SIGHUP: a reload is still waiting for its workers; "
		           "reloading again once it is over");
		s->hup_again = 1;
		return;
	}
	log_notice("SIGHUP: reloading %s", m->path);
	tell_reloading(m->path);
	/* Everything that can fail comes before listener_open, which takes
	 * sockets over from m->set only when it succeeds. The ocsp files are
	 * looked at before master_prepare reads them. */
	if ((nx = calloc(1, sizeof(*nx))) != NULL && (nx->had = fds_of(&m->set)) != NULL &&
	    (c = cfg_load_file(m->path, &d)) != NULL)
		nx->ocsp_fp = expiry_ocsp_print(c);
	if (nx == NULL || nx->had == NULL || c == NULL ||
	    master_prepare(c, 1, &nx->tls, &nx->user, &nx->drop, &d) < 0 ||
	    (nx->slots = master_new_slots(n = master_nworkers(c))) == NULL ||
	    master_reserve(&s->old, &s->capold, s->nold, s->nslots + n) < 0 ||
	    master_reserve(&s->undone, &s->capundone, s->nundone, n) < 0 ||
	    master_reserve(&s->failed, &s->capfailed, s->nfailed, n) < 0 ||
	    listener_open(c, &nx->set, &m->set, &d) < 0) {
		char told[600];

		diag_log(&d);
		if (d.errors) {
			log_errx("reload refused: %s has %d error%s; still serving the "
			         "configuration loaded before", m->path, d.errors,
			         d.errors == 1 ? "" : "s");
			snprintf(told, sizeof(told), "reload refused: %s%s", first_error(&d),
			         d.errors > 1 ? " (and more: see the log)" : "");
		} else {
			log_errx("reload refused: out of memory; still serving the "
			         "configuration loaded before");
			snprintf(told, sizeof(told), "reload refused: out of memory");
		}
		master_tell(s, told);
		if (c != NULL && nx != NULL)
			master_free_tls(c, nx->tls);
		cfg_free(c);
		master_reload_free(nx);
		diag_free(&d);
		shared_reload_done(shared_get(), 0, time(NULL));
		return;
	}
	nx->cfg = c;
	nx->nslots = n;
	nx->generation = m->generation + 1;
	nx->deadline = master_now() + READY_LIMIT_S;
	s->next = nx;
	diag_log(&d);      /* warnings */
	diag_free(&d);
	/* Sessions resume across the reload where a listener of the same
	 * name stays: it keeps its ticket keys. */
	for (size_t i = 0; i < c->nlisteners; i++)
		for (size_t j = 0; j < m->cfg->nlisteners; j++)
			if (strcmp(c->listeners[i].name, m->cfg->listeners[j].name) == 0)
				tlsctx_keep_tickets(nx->tls[i], m->tls[j]);
	master_claim_slots(c, m->cfg);
	log_info("reload: starting %u worker%s of the new configuration; the "
	         "running ones serve until they all do", n, n == 1 ? "" : "s");
}

void master_reload_advance(struct sup *s)
{
	struct next *nx = s->next;
	char why[160];
	unsigned i;

	for (i = 0; i < nx->nslots && nx->slots[i].ready; i++)
		;
	if (i == nx->nslots) {
		commit(s);
	} else if (master_now() >= nx->deadline) {
		snprintf(why, sizeof(why), "worker %u (pid %ld) did not report serving "
		         "within %.0fs", i + 1, (long)nx->slots[i].pid, READY_LIMIT_S);
		master_reload_fail(s, why);
	}
}
