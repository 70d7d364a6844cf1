/*
 * The master's pid_file: written at start, and on reload when it names
 * another path or no longer holds the master's pid (a tmpfiles cleaner or
 * a logrotate mistake deleted it); removed at stop. The master keeps the
 * path it wrote last, which is the one it removes: not the configured one,
 * which it may have failed to write (and which may then be another
 * process's file), and only while it still holds the master's pid.
 */

#include "master.h"
#include "wfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What the pid_file says: the master's pid, one line. */
static void pid_text(char *out, size_t len)
{
	snprintf(out, len, "%ld\n", (long)getpid());
}

static int write_pid(const char *path)
{
	FILE *f = wfile_open(path);
	char text[32];
	int bad, e;

	if (f == NULL)
		return -1;
	pid_text(text, sizeof(text));
	bad = fputs(text, f) < 0;
	if (fclose(f) != 0)
		bad = 1;
	if (bad) {
		/* A full disk: the file is truncated and names nobody. It
		 * goes rather than stay beside the one kept (wfile_open took
		 * a regular file only). */
		e = errno;
		unlink(path);
		errno = e;
		return -1;
	}
	return 0;
}

int master_pid_file(struct master *m, const char *path)
{
	char *keep, text[32];

	if (path == NULL) {
		master_pid_file_remove(m);
		return 0;
	}
	/* The same path: a reload makes sure it still names the master,
	 * and writes it again if not (wfile_open follows no symlink put
	 * there meanwhile). It stays the path written last either way. */
	if (m->pid_written != NULL && strcmp(m->pid_written, path) == 0) {
		pid_text(text, sizeof(text));
		return wfile_holds(path, text) ? 0 : write_pid(path);
	}
	/* The one written before stays until this one is: a reload that
	 * names a path it cannot write leaves a pid_file that is right. */
	if (write_pid(path) < 0 || (keep = strdup(path)) == NULL)
		return -1;
	master_pid_file_remove(m);
	m->pid_written = keep;
	return 0;
}

void master_pid_file_remove(struct master *m)
{
	char text[32];

	if (m->pid_written == NULL)
		return;
	/* Another process's pid there now (a second instance given the
	 * same path) is its file, not ours to take. */
	pid_text(text, sizeof(text));
	if (wfile_holds(m->pid_written, text))
		unlink(m->pid_written);
	free(m->pid_written);
	m->pid_written = NULL;
}
