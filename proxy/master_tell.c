/*
 * What the service manager hears from the master while it serves
 * (notify.h): READY=1 once every worker serves, and a STATUS= line of what
 * the current generation serves, told again when the number of workers
 * serving changes. Stopping and reloading tell their own lines.
 */

#include "master_int.h"
#include "log.h"
#include "notify.h"

#include <stdio.h>

/* What the current generation serves, for a STATUS= line. */
static void summary(const struct sup *s, char *out, size_t len)
{
	const struct cfg *c = s->m->cfg;
	unsigned long long gen = s->m->generation;
	unsigned up = master_count_ready(s->slots, s->nslots);
	char workers[48];

	if (up == s->nslots)
		snprintf(workers, sizeof(workers), "%u worker%s", up, up == 1 ? "" : "s");
	else
		snprintf(workers, sizeof(workers), "%u of %u workers", up, s->nslots);
	snprintf(out, len, "serving: %zu listener%s on %zu socket%s, %s, generation %llu",
	         c->nlisteners, c->nlisteners == 1 ? "" : "s", s->m->set.n,
	         s->m->set.n == 1 ? "" : "s", workers, gen);
}

void master_tell(struct sup *s, const char *why)
{
	unsigned up = master_count_ready(s->slots, s->nslots);
	int ready = s->told_ready || up == s->nslots;
	char sum[256];
	int r;

	summary(s, sum, sizeof(sum));
	if (why != NULL)
		r = notify_state(ready ? "READY=1" : NULL, "%s; %s", why, sum);
	else
		r = notify_state(ready ? "READY=1" : NULL, "%s", sum);
	if (r < 0)
		log_warn("cannot tell the service manager%s", ready ? " portier is ready" : "");
	s->told_ready = ready;
	s->told_workers = up;
}

void master_tell_progress(struct sup *s)
{
	unsigned up = master_count_ready(s->slots, s->nslots);
	char sum[256];

	if (s->stopping || s->next != NULL)
		return;
	if (!s->told_ready) {
		if (up == s->nslots)
			master_tell(s, NULL);
		return;
	}
	if (up == s->told_workers)
		return;
	summary(s, sum, sizeof(sum));
	(void)notify_state(NULL, "%s", sum);   /* lost: the last one stays shown */
	s->told_workers = up;
}
