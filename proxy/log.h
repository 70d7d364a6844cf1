#ifndef PORTIER_LOG_H
#define PORTIER_LOG_H

/*
 * Logging, relayd style: log_warn() appends strerror(errno), log_warnx()
 * does not. Messages go to syslog, stderr or a file, chosen once at start
 * by log_open(); before that, and with -f, they go to stderr.
 */

/* log_open(target, ident): target is "syslog", "stderr" or a file path.
 * Returns 0, or -1 with errno set if the file cannot be opened. */
int log_open(const char *target, const char *ident);

/* log_close(): flush and close the current target, back to stderr. */
void log_close(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_notice: life-cycle events (start, stop, signals), never dropped. */
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* log_set_quiet(on): drop log_info() lines (one per connection), keep
 * warnings and errors. */
void log_set_quiet(int on);

/* log_set_worker(n): prefix every line with "worker n: " (0: none). */
void log_set_worker(unsigned n);

#endif
