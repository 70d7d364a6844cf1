#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

/* Process-wide by nature: there is one stderr and one syslog connection per
 * process, whatever number of configs or loops it holds. */
static enum { TO_STDERR, TO_SYSLOG, TO_FILE } log_to = TO_STDERR;
static FILE *log_file;
static int log_quiet;
static char log_tag[32];        /* "worker 2: " in a worker, else empty */

int log_open(const char *target, const char *ident)
{
	FILE *f;

	if (target == NULL || strcmp(target, "stderr") == 0) {
		log_close();
		return 0;
	}
	if (strcmp(target, "syslog") == 0) {
		log_close();
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_to = TO_SYSLOG;
		return 0;
	}
	if ((f = fopen(target, "ae")) == NULL)
		return -1;
	setvbuf(f, NULL, _IOLBF, 0);
	log_close();
	log_file = f;
	log_to = TO_FILE;
	return 0;
}

void log_close(void)
{
	if (log_to == TO_FILE && log_file != NULL)
		fclose(log_file);
	if (log_to == TO_SYSLOG)
		closelog();
	log_file = NULL;
	log_to = TO_STDERR;
}

void log_set_quiet(int on)
{
	log_quiet = on;
}

void log_set_worker(unsigned n)
{
	if (n == 0)
		log_tag[0] = '\0';
	else
		snprintf(log_tag, sizeof(log_tag), "worker %u: ", n);
}

static void log_vemit(int prio, const char *level, const char *errstr,
                      const char *fmt, va_list ap)
{
	char msg[2048];
	FILE *out;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_to == TO_SYSLOG) {
		if (errstr)
			syslog(prio, "%s%s: %s", log_tag, msg, errstr);
		else
			syslog(prio, "%s%s", log_tag, msg);
		return;
	}
	out = log_to == TO_FILE ? log_file : stderr;
	if (log_to == TO_FILE) {
		char stamp[32];
		time_t now = time(NULL);
		struct tm tm;
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S",
		         localtime_r(&now, &tm));
		fprintf(out, "%s ", stamp);
	}
	if (errstr)
		fprintf(out, "portier: %s%s%s: %s\n", log_tag, level, msg, errstr);
	else
		fprintf(out, "portier: %s%s%s\n", log_tag, level, msg);
}

#define LOG_BODY(prio, level, errstr)                                        \
	do {                                                                 \
		va_list ap;                                                  \
		va_start(ap, fmt);                                           \
		log_vemit(prio, level, errstr, fmt, ap);                     \
		va_end(ap);                                                  \
	} while (0)

void log_info(const char *fmt, ...)
{
	if (log_quiet)
		return;
	LOG_BODY(LOG_INFO, "", NULL);
}

void log_notice(const char *fmt, ...)
{
	LOG_BODY(LOG_NOTICE, "", NULL);
}

void log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, "warning: ", NULL);
}

void log_warn(const char *fmt, ...)
{
	const char *e = strerror(errno);
	LOG_BODY(LOG_WARNING, "warning: ", e);
}

void log_errx(const char *fmt, ...)
{
	LOG_BODY(LOG_ERR, "error: ", NULL);
}
