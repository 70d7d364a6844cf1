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

#endif
