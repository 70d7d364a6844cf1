#include "log.h"
#include "log_int.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>             /* severities and LOG_DAEMON; syslog(3) blocks */
#include <time.h>
#include <unistd.h>

/*
 * A log line built whole, in text or JSON, for the target log_target.c
 * holds; a line the target cannot take is dropped and counted, and the
 * next one that gets through is preceded by a warning that says how many.
 */

static int log_quiet;
static int log_as_json;         /* log_format = json */
static char log_tag[48];        /* "worker 2.1: " in a worker, else empty */
/* Lines dropped by this process: in all, and since the last "dropped" line.
 * log_dropper tells a forked child that the counts are its parent's. */
static unsigned long long log_ndropped, log_nunreported;
static pid_t log_dropper;
static _Atomic unsigned long long *log_drop_counter;

void log_count_drops(_Atomic unsigned long long *counter)
{
	log_drop_counter = counter;
}

unsigned long long log_dropped(void)
{
	if (log_ndropped > 0 && log_dropper != getpid())
		log_ndropped = log_nunreported = 0;
	return log_ndropped;
}

void log_set_quiet(int on)
{
	log_quiet = on;
}

void log_set_json(int on)
{
	log_as_json = on;
}

void log_set_worker(unsigned long long generation, unsigned n)
{
	if (n == 0)
		log_tag[0] = '\0';
	else
		snprintf(log_tag, sizeof(log_tag), "worker %llu.%u: ", generation, n);
}

/* A line under construction: text at p[0..len), never more than cap bytes,
 * cut set when something did not fit. */
struct log_line {
	char *p;
	size_t len, cap;
	int cut;
};

static void log_vadd(struct log_line *l, const char *fmt, va_list ap)
{
	size_t room = l->cap - l->len;
	int n = vsnprintf(l->p + l->len, room + 1, fmt, ap);

	if (n < 0)
		return;
	if ((size_t)n > room) {
		l->len = l->cap;
		l->cut = 1;
	} else {
		l->len += (size_t)n;
	}
}

static void log_add(struct log_line *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void log_add(struct log_line *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vadd(l, fmt, ap);
	va_end(ap);
}

/* s[0..n) as the contents of a JSON string: '"', '\\' and every byte
 * outside printable ASCII escaped (a byte b becomes \u00bb: a client's
 * non-UTF-8 SNI stays valid JSON and says which bytes it sent). It stops
 * reserve bytes short of the line's end, the string then ending in "...". */
static void json_str(struct log_line *l, const char *s, size_t n, size_t reserve)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[6];
		size_t k = 0;

		if (c == '"' || c == '\\') {
			e[k++] = '\\';
			e[k++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			memcpy(e, "\\u00", 4);
			e[4] = hex[c >> 4];
			e[5] = hex[c & 15];
			k = 6;
		} else {
			e[k++] = (char)c;
		}
		if (l->len + k + 3 + reserve > l->cap) {
			memcpy(l->p + l->len, "...", 3);
			l->len += 3;
			return;
		}
		memcpy(l->p + l->len, e, k);
		l->len += k;
	}
}

/* ,"name":"value" (null when value is NULL). */
static void json_field(struct log_line *l, const char *name, const char *value, size_t reserve)
{
	if (value == NULL) {
		log_add(l, ",\"%s\":null", name);
		return;
	}
	log_add(l, ",\"%s\":\"", name);
	json_str(l, value, strlen(value), reserve + 1);
	log_add(l, "\"");
}

static const char *level_name(int prio)
{
	switch (prio) {
	case LOG_ERR: return "error";
	case LOG_WARNING: return "warning";
	case LOG_NOTICE: return "notice";
	default: return "info";
	}
}

/* The start every line of the current target has: the syslog header, the
 * file's time stamp, "portier: " on stderr ("<N>" for the journal); then, in text, the worker tag
 * and the level. A JSON line carries those as fields instead. */
static void log_head(struct log_line *l, int prio, const char *level)
{
	static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct timespec ts;
	struct tm tm;
	size_t tag;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* The journal stores "<N>" as the line's priority (journalctl -p)
	 * and drops it; it names the process itself, so no "portier: "
	 * either (it made fail2ban's journal lines "portier[PID]: portier:"). */
	if (log_target_journal())
		log_add(l, "<%d>", prio);
	if (log_kind() == 'S') {
		localtime_r(&ts.tv_sec, &tm);
		log_add(l, "<%d>%s %2d %02d:%02d:%02d %s[%ld]: ", LOG_DAEMON | prio,
		        months[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		        log_target_ident(), (long)getpid());
	}
	if (log_as_json) {
		gmtime_r(&ts.tv_sec, &tm);
		tag = strlen(log_tag);
		log_add(l, "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
		        "\"process\":\"%.*s\",\"pid\":%ld", tm.tm_year + 1900, tm.tm_mon + 1,
		        tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		        level_name(prio), tag ? (int)(tag - 2) : 6, tag ? log_tag : "master",
		        (long)getpid());
		return;
	}
	if (log_kind() == 'S') {
		log_add(l, "%s", log_tag);
	} else if (log_kind() == 'F') {
		localtime_r(&ts.tv_sec, &tm);
		log_add(l, "%04d-%02d-%02dT%02d:%02d:%02d portier: %s%s", tm.tm_year + 1900,
		        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, log_tag,
		        level);
	} else {
		log_add(l, "%s%s%s", log_target_journal() ? "" : "portier: ", log_tag, level);
	}
}

/* Ends the line: "..." over a cut text line (JSON strings cut themselves),
 * the newline a stream wants. Returns its length. */
static size_t log_end(struct log_line *l)
{
	if (l->cut && !log_as_json)
		memcpy(l->p + l->len - 3, "...", 3);
	if (log_kind() != 'S')
		l->p[l->len++] = '\n';
	return l->len;
}

/* The whole line for the current target into buf (PIPE_BUF bytes); returns
 * its length. buf[0] is left free for the newline that ends a line a short
 * write cut off, so the text starts at buf + 1. The stamp and the syslog
 * header are built by hand: strftime's %b follows the locale, and the
 * traditional syslog format wants English month names. */
static size_t log_build(char *buf, int prio, const char *level, const char *errstr,
                        const char *fmt, va_list ap)
{
	struct log_line l = {buf + 1, 0, PIPE_BUF - 2, 0};
	char msg[PIPE_BUF];
	size_t body;
	int n;

	log_head(&l, prio, level);
	if (log_as_json) {
		n = vsnprintf(msg, sizeof(msg), fmt, ap);
		if (n < 0)
			n = 0;
		if ((size_t)n >= sizeof(msg))
			n = sizeof(msg) - 1;
		if (errstr)
			snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", errstr);
		log_add(&l, ",\"msg\":\"");
		json_str(&l, msg, strlen(msg), 2);
		log_add(&l, "\"}");
		return log_end(&l);
	}
	body = l.len;
	log_vadd(&l, fmt, ap);
	if (errstr)
		log_add(&l, ": %s", errstr);
	/* One call, one line: nothing the arguments hold may start another. */
	for (size_t i = body; i < l.len; i++)
		if ((unsigned char)l.p[i] < 0x20 || l.p[i] == 0x7f)
			l.p[i] = '?';
	return log_end(&l);
}

/* A connection's end (log_conn()) as one line: the text portier always
 * wrote, or one JSON object with the same facts as fields. */
static size_t log_build_conn(char *buf, const struct log_conn *c)
{
	struct log_line l = {buf + 1, 0, PIPE_BUF - 2, 0};
	char sni[LOG_ESCAPED_SIZE(255)];
	size_t body;
	int hs = c->handshake_failed;

	log_head(&l, LOG_INFO, "");
	if (log_as_json) {
		log_add(&l, ",\"event\":\"%s\"", hs ? "handshake_failed" : "close");
		json_field(&l, "listener", c->listener, 200);
		json_field(&l, "client", c->client, 200);
		json_field(&l, "control", c->control, 200);
		json_field(&l, "sni", c->sni, 200);
		json_field(&l, "tls", c->tls, 200);
		json_field(&l, "cipher", c->cipher, 200);
		log_add(&l, ",\"resumed\":%s", c->tls == NULL ? "null" : c->resumed ? "true" : "false");
		log_add(&l, ",\"up\":%llu,\"down\":%llu,\"ms\":%llu", c->up, c->down,
		        (unsigned long long)(c->secs * 1000.0 + 0.5));
		json_field(&l, "reason_code", c->reason_code, 2);
		json_field(&l, "reason", c->reason, 2);
		log_add(&l, "}");
		return log_end(&l);
	}
	body = l.len;
	if (hs && c->control)
		log_add(&l, "[%s] data handshake failed client=%s control client=%s: %s",
		        c->listener, c->client, c->control, c->reason);
	else if (hs)
		log_add(&l, "[%s] handshake failed client=%s: %s", c->listener, c->client,
		        c->reason);
	else if (c->control)
		log_add(&l, "[%s] data close client=%s control client=%s tls=%s resumed=%s "
		        "up=%llu down=%llu time=%.3fs: %s", c->listener, c->client, c->control,
		        c->tls ? c->tls : "-", c->tls ? (c->resumed ? "yes" : "no") : "-",
		        c->up, c->down, c->secs, c->reason);
	else
		log_add(&l, "[%s] close client=%s sni=%s tls=%s cipher=%s resumed=%s "
		        "up=%llu down=%llu time=%.3fs: %s", c->listener, c->client,
		        c->tls ? log_escape_field(c->sni, sni, sizeof(sni)) : "-",
		        c->tls ? c->tls : "-", c->tls ? c->cipher : "-",
		        c->tls ? (c->resumed ? "yes" : "no") : "-", c->up, c->down, c->secs,
		        c->reason);
	for (size_t i = body; i < l.len; i++)
		if ((unsigned char)l.p[i] < 0x20 || l.p[i] == 0x7f)
			l.p[i] = '?';
	return log_end(&l);
}

static size_t log_buildf(char *buf, int prio, const char *level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static size_t log_buildf(char *buf, int prio, const char *level, const char *fmt, ...)
{
	va_list ap;
	size_t len;

	va_start(ap, fmt);
	len = log_build(buf, prio, level, NULL, fmt, ap);
	va_end(ap);
	return len;
}

/* The "N log lines dropped" warning, if one is owed and the target takes it. */
static void log_say_drops(void)
{
	char buf[PIPE_BUF];     /* one write of at most PIPE_BUF is atomic on a pipe */
	unsigned long long n;
	size_t wlen;

	(void)log_dropped();    /* forgets the parent's count after a fork */
	if (log_nunreported == 0)
		return;
	n = log_nunreported;
	wlen = log_buildf(buf, LOG_WARNING, "warning: ",
	                  "%llu log line%s dropped (log target not keeping up)", n,
	                  n == 1 ? "" : "s");
	if (log_target_put(buf, wlen) == 0)
		log_nunreported = 0;
}

void log_flush_drops(void)
{
	int saved = errno;

	log_say_drops();
	errno = saved;
}

/* Out with line[0..len) (built with line[0] free, as log_target_put() wants),
 * after the "N log lines dropped" warning if one is owed. */
static void log_emit(char *line, size_t len)
{
	log_say_drops();
	/* While the warning cannot go out, neither can the line after it. */
	if (log_nunreported > 0 || log_target_put(line, len) < 0) {
		log_ndropped++;
		log_nunreported++;
		if (log_drop_counter != NULL)
			atomic_fetch_add_explicit(log_drop_counter, 1, memory_order_relaxed);
		log_dropper = getpid();
	}
}

static void log_vemit(int prio, const char *level, const char *errstr,
                      const char *fmt, va_list ap)
{
	char line[PIPE_BUF];
	int saved = errno;

	log_emit(line, log_build(line, prio, level, errstr, fmt, ap));
	errno = saved;
}

void log_conn(const struct log_conn *c)
{
	char line[PIPE_BUF];
	int saved = errno;

	if (log_quiet)
		return;
	log_emit(line, log_build_conn(line, c));
	errno = saved;
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
