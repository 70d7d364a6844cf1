#ifndef PORTIER_LOG_INT_H
#define PORTIER_LOG_INT_H

#include <stddef.h>

/*
 * Between log.c, which builds and counts lines, and log_target.c, which
 * owns where they go.
 */

/* log_target_put(buf, len): one line, buf[1..len] (buf[0] free for the
 * newline, or NUL, that ends a line a short write cut off; buf[len + 1]
 * free for the NUL that ends a line on a stream syslog socket), out in one
 * call that never waits (but on plain fd 2, before log_open()). 0, or -1
 * when the target did not take all of it. */
int log_target_put(char *buf, size_t len);

/* log_target_ident(): the syslog ident ("portier" unless told). */
const char *log_target_ident(void);

/* log_target_journal(): 1 when lines go to standard error and that is the
 * journal's stream (portier run by systemd with -f): the journal names the
 * process itself, and takes a line's "<N>" start as its priority. */
int log_target_journal(void);

#endif
