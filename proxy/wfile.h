#ifndef PORTIER_WFILE_H
#define PORTIER_WFILE_H

#include <stdio.h>

/*
 * The files the master writes for others to read (pid_file, ports_file):
 * opened so that the path cannot make the master wait or write elsewhere.
 */

/* wfile_open(path): path opened for writing, emptied, as a stdio stream;
 * NULL (errno) when it cannot be. A FIFO does not block the master (it
 * holds every worker's supervision), a symlink is not followed (a root
 * master writing into a directory others can write could otherwise be
 * led to any file), and anything but a regular file is refused (EINVAL),
 * never truncated. */
FILE *wfile_open(const char *path);

/* wfile_holds(path, text): 1 if path is a regular file (not followed
 * through a symlink, never waited on as a FIFO) whose content is text
 * exactly, as the master wrote it; else 0. The master removes a file it
 * wrote only while it does: another's file put at that path since stays. */
int wfile_holds(const char *path, const char *text);

#endif
