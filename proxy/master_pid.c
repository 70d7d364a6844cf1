/*
 * The master's pid_file: written at start and when a reload names another
 * path, removed at stop. The master keeps the path it wrote last, which is
 * the one it removes: not the configured one, which it may have failed to
 * write (and which may then be another process's file).
 */

#include "master.h"
#include "wfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int write_pid(const char *path)
{
	FILE *f = wfile_open(path);
	int bad, e;

	if (f == NULL)
		return -1;
	bad = fprintf(f, "%ld\n", (long)getpid()) < 0;
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
	char *keep;

	if (path == NULL) {
		master_pid_file_remove(m);
		return 0;
	}
	if (m->pid_written != NULL && strcmp(m->pid_written, path) == 0)
		return 0;
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
	if (m->pid_written == NULL)
		return;
	unlink(m->pid_written);
	free(m->pid_written);
	m->pid_written = NULL;
}
