/*
 * A generation's config made ready to serve, the same at start (main.c)
 * and on reload (master_reload.c): every listener's TLS contexts, the
 * account the workers switch to, the listeners' counter slots in the
 * shared region; and the contexts' release.
 */

#include "master_int.h"
#include "log.h"
#include "server.h"
#include "shared.h"
#include "tlsctx.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int master_prepare(struct cfg *c, int reload, struct tlsctx ***tls, struct privdrop *pd,
                   int *drop, struct diag *d)
{
	char err[160];

	*drop = 0;
	if ((*tls = server_prepare(c, reload, d)) == NULL)
		return -1;
	if (c->user) {
		if (privdrop_lookup(c->user, pd, err, sizeof(err)) < 0) {
			diag_add(d, 0, c->file, 0, "portier", "user", "%s", err);
			return -1;
		}
		*drop = geteuid() != pd->uid;
		if (*drop && geteuid() != 0) {
			diag_add(d, 0, c->file, 0, "portier", "user", "only root can "
			         "switch to another account (running as uid %ld)",
			         (long)geteuid());
			return -1;
		}
	}
	return 0;
}

void master_free_tls(const struct cfg *c, struct tlsctx **tls)
{
	if (tls == NULL)
		return;
	for (size_t i = 0; i < c->nlisteners; i++)
		tlsctx_free(tls[i]);
	free(tls);
}

static int has_listener(const struct cfg *c, const char *name)
{
	for (size_t i = 0; c != NULL && i < c->nlisteners; i++)
		if (strcmp(c->listeners[i].name, name) == 0)
			return 1;
	return 0;
}

struct claim_keep {
	const struct cfg *c, *running;
};

static int in_use(const char *name, void *arg)
{
	const struct claim_keep *k = arg;

	return has_listener(k->c, name) || has_listener(k->running, name);
}

void master_claim_slots(const struct cfg *c, const struct cfg *running)
{
	struct claim_keep keep = {c, running};

	for (size_t i = 0; i < c->nlisteners && shared_get() != NULL; i++)
		if (shared_slot_claim(shared_get(), c->listeners[i].name, in_use, &keep) == NULL)
			log_warnx("[%s] no free counter slot (all %d are of listeners "
			          "configured or still holding connections); its "
			          "connections are not counted and its per-client limits "
			          "are off", c->listeners[i].name, SHARED_SLOTS);
}
