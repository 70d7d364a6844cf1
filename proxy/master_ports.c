/*
 * The master's ports_file: written at start and at each reload's commit,
 * removed at stop and when a drain closes the listening sockets, so that
 * what portier probe and admins' scripts read names sockets that listen.
 * As with the pid_file (master_pid.c), the master keeps the path it wrote
 * last, and what it wrote there; only that file is ever removed, never a
 * configured path it could not write, and only while it still holds what
 * the master wrote (another's file put there since stays).
 */

#include "master.h"
#include "listener.h"
#include "log.h"
#include "wfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void forget(struct master *m)
{
	free(m->ports_written);
	free(m->ports_text);
	m->ports_written = NULL;
	m->ports_text = NULL;
}

void master_ports_file_remove(struct master *m)
{
	if (m->ports_written != NULL && wfile_holds(m->ports_written, m->ports_text))
		unlink(m->ports_written);
	forget(m);
}

/* path could not be written (errno e), whose text would have been text
 * (NULL: not even made). The one written before stays if it says the same
 * (a reload that moved no socket, a full disk: the file is still true);
 * else it goes, since a reader could not tell its ports from the ones
 * that listen now. */
static void not_written(struct master *m, const char *path, const char *text, int e)
{
	const char *old = m->ports_written;

	if (old == NULL || !wfile_holds(old, m->ports_text)) {
		/* Gone with its directory, or another's file now. */
		log_warnx("cannot write ports_file %s: %s", path, strerror(e));
		forget(m);
	} else if (text != NULL && strcmp(text, m->ports_text) == 0) {
		log_warnx("cannot write ports_file %s: %s; keeping %s, written before: "
		          "it still names the sockets", path, strerror(e), old);
	} else if (unlink(old) == 0) {
		log_warnx("cannot write ports_file %s: %s; removed %s, written before: "
		          "it named sockets of the configuration before", path,
		          strerror(e), old);
		forget(m);
	} else {
		/* Kept in the books: the stop tries again. */
		log_warn("cannot write ports_file %s: %s; nor remove %s, written "
		         "before, which names sockets of the configuration before",
		         path, strerror(e), old);
	}
}

void master_ports_file(struct master *m, const struct cfg *c)
{
	char *text, *keep = NULL;

	if (c->ports_file == NULL) {
		master_ports_file_remove(m);
		return;
	}
	if ((text = listener_ports_text(c, &m->set)) == NULL ||
	    (keep = strdup(c->ports_file)) == NULL ||
	    listener_write_ports(c->ports_file, text) < 0) {
		int e = errno;

		not_written(m, c->ports_file, text, e);
		free(text);
		free(keep);
		return;
	}
	/* Written; the one before, at another path, is stale now. */
	if (m->ports_written != NULL && strcmp(m->ports_written, keep) != 0 &&
	    wfile_holds(m->ports_written, m->ports_text))
		unlink(m->ports_written);
	forget(m);
	m->ports_written = keep;
	m->ports_text = text;
}
