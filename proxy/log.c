#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>             /* severities and LOG_DAEMON; syslog(3) blocks */
#include <time.h>
#include <unistd.h>

/* Process-wide by nature: there is one stderr and one syslog connection per
 * process, whatever number of configs or loops it holds. */
static enum { TO_STDERR, TO_SYSLOG, TO_FILE } log_to = TO_STDERR;
/* Our own descriptor for the target, written with write(2), or with send(2)
 * when log_send is set. -1 before log_open() (or when nothing better could
 * be had): lines then go to plain fd 2 and may block, which is harmless for
 * the start-up messages written before any loop or client exists. */
static int log_fd = -1;
static int log_send;
static struct sockaddr_un log_syslog_addr;  /* what the syslog socket reconnects to */
static char log_ident[32];
static char log_path[PATH_MAX];  /* of the file target, for log_reopen() */
static int log_quiet;
static int log_as_json;         /* log_format = json */
static char log_tag[48];        /* "worker 2.1: " in a worker, else empty */
/* Lines dropped by this process: in all, and since the last "dropped" line.
 * log_dropper tells a forked child that the counts are its parent's. */
static unsigned long long log_ndropped, log_nunreported;
static pid_t log_dropper;
static _Atomic unsigned long long *log_drop_counter;
/* A short write left a line unfinished: the next one starts on a new line. */
static int log_midline;

/* fd moved above 2, so that daemon(3), which points 0..2 at /dev/null,
 * cannot replace it (it may be below 3 when portier started with one of
 * them closed). */
static int log_above2(int fd)
{
	int nfd;

	if (fd < 0 || fd > 2)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return nfd;
}

/* A descriptor of our own for the stream fd, with its send flag. Setting
 * O_NONBLOCK on fd itself would change it for everyone sharing its open
 * file description (the user's terminal, the shell), so a pipe, FIFO or tty
 * is opened anew through /proc. A socket cannot be opened that way, but
 * send(2) takes MSG_DONTWAIT per call. A regular file never waits on a full
 * reader, and a description of its own would have an offset of its own:
 * anything else written through fd (a sanitizer's report) would overwrite
 * our lines unless the file was opened O_APPEND, so it shares fd's.
 * Without /proc, a blocking duplicate is all there is. -1 if fd is not open. */
static int log_stream_fd(int fd, int *send_flag)
{
	char path[32];
	struct stat st;
	int nfd;

	*send_flag = 0;
	if (fstat(fd, &st) < 0)
		return -1;
	if (S_ISSOCK(st.st_mode))
		*send_flag = 1;
	if (S_ISSOCK(st.st_mode) || S_ISREG(st.st_mode))
		return fcntl(fd, F_DUPFD_CLOEXEC, 3);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = log_above2(open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
	if (nfd < 0)
		nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	return nfd;
}

int log_open_fd(int fd)
{
	int send_flag, nfd = log_stream_fd(fd, &send_flag);

	if (nfd < 0)
		return -1;
	log_close();
	log_fd = nfd;
	log_send = send_flag;
	return 0;
}

int log_open_syslog(const char *path, const char *ident)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	int fd;

	if (len >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, len + 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if ((fd = log_above2(fd)) < 0)
		return -1;
	/* No syslogd yet is no reason to refuse to start (openlog(3) never
	 * did): each line tries to connect again until one is there. */
	(void)connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	log_close();
	log_fd = fd;
	log_send = 1;
	log_syslog_addr = sa;
	snprintf(log_ident, sizeof(log_ident), "%s", ident ? ident : "portier");
	log_to = TO_SYSLOG;
	return 0;
}

int log_open(const char *target, const char *ident)
{
	int fd;

	if (target == NULL || strcmp(target, "stderr") == 0) {
		/* With fd 2 closed there is nothing better than plain fd 2,
		 * whose failing writes are counted. */
		if (log_open_fd(STDERR_FILENO) < 0)
			log_close();
		return 0;
	}
	if (strcmp(target, "syslog") == 0)
		return log_open_syslog("/dev/log", ident);
	/* O_NONBLOCK matters when the path is a FIFO; a FIFO without a reader
	 * is refused (ENXIO) rather than waited for. */
	fd = open(target, O_WRONLY | O_CREAT | O_APPEND | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
	          0666);
	if ((fd = log_above2(fd)) < 0)
		return -1;
	log_close();
	log_fd = fd;
	log_to = TO_FILE;
	if (target != log_path)
		snprintf(log_path, sizeof(log_path), "%s", target);
	return 0;
}

int log_reopen(void)
{
	if (log_to != TO_FILE)
		return 0;
	return log_open(log_path, NULL) < 0 ? -1 : 1;
}

int log_adopt_file(int fd)
{
	if ((fd = log_above2(fd)) < 0)
		return -1;
	log_close();
	log_fd = fd;
	log_to = TO_FILE;
	log_path[0] = '\0';
	return 0;
}

char log_kind(void)
{
	return log_to == TO_FILE ? 'F' : log_to == TO_SYSLOG ? 'S' : 'E';
}

int log_file_fd(void)
{
	return log_to == TO_FILE ? log_fd : -1;
}

const char *log_file_path(void)
{
	return log_to == TO_FILE ? log_path : "";
}

void log_close(void)
{
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
	log_send = 0;
	log_to = TO_STDERR;
}

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

static const char hexdigits[] = "0123456789abcdef";

/* The escaped form of byte b into u (at most 4 bytes); returns its length. */
static size_t log_escape_byte(unsigned char b, char *u)
{
	if (b == '\\' || b == '"') {
		u[0] = '\\';
		u[1] = (char)b;
		return 2;
	}
	if (b >= 0x20 && b <= 0x7e) {
		u[0] = (char)b;
		return 1;
	}
	u[0] = '\\';
	u[1] = 'x';
	u[2] = hexdigits[b >> 4];
	u[3] = hexdigits[b & 0xf];
	return 4;
}

const char *log_escape(const void *p, size_t n, char *out, size_t outlen)
{
	const unsigned char *s = p;
	size_t room, o = 0, keep = 0, u, e;
	char unit[4];

	if (outlen == 0)
		return out;
	room = outlen - 1;
	for (size_t i = 0; i < n; i++) {
		u = log_escape_byte(s[i], unit);
		if (o + u > room) {
			/* Back to the last whole character after which "..."
			 * fits (a buffer under 4 bytes gets what it can of it). */
			e = room - keep < 3 ? room - keep : 3;
			memcpy(out + keep, "...", e);
			out[keep + e] = '\0';
			return out;
		}
		memcpy(out + o, unit, u);
		o += u;
		if (o + 3 <= room)
			keep = o;
	}
	out[o] = '\0';
	return out;
}

const char *log_escape_str(const char *s, char *out, size_t outlen)
{
	if (s == NULL)
		return log_escape("-", 1, out, outlen);
	return log_escape(s, strlen(s), out, outlen);
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
 * file's time stamp, "portier: " on stderr; then, in text, the worker tag
 * and the level. A JSON line carries those as fields instead. */
static void log_head(struct log_line *l, int prio, const char *level)
{
	static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct timespec ts;
	struct tm tm;
	size_t tag;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (log_to == TO_SYSLOG) {
		localtime_r(&ts.tv_sec, &tm);
		log_add(l, "<%d>%s %2d %02d:%02d:%02d %s[%ld]: ", LOG_DAEMON | prio,
		        months[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		        log_ident, (long)getpid());
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
	if (log_to == TO_SYSLOG) {
		log_add(l, "%s", log_tag);
	} else if (log_to == TO_FILE) {
		localtime_r(&ts.tv_sec, &tm);
		log_add(l, "%04d-%02d-%02dT%02d:%02d:%02d portier: %s%s", tm.tm_year + 1900,
		        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, log_tag,
		        level);
	} else {
		log_add(l, "portier: %s%s", log_tag, level);
	}
}

/* Ends the line: "..." over a cut text line (JSON strings cut themselves),
 * the newline a stream wants. Returns its length. */
static size_t log_end(struct log_line *l)
{
	if (l->cut && !log_as_json)
		memcpy(l->p + l->len - 3, "...", 3);
	if (log_to != TO_SYSLOG)
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
		        c->tls ? log_escape_str(c->sni, sni, sizeof(sni)) : "-",
		        c->tls ? c->tls : "-", c->tls ? c->cipher : "-",
		        c->tls ? (c->resumed ? "yes" : "no") : "-", c->up, c->down, c->secs,
		        c->reason);
	for (size_t i = body; i < l.len; i++)
		if ((unsigned char)l.p[i] < 0x20 || l.p[i] == 0x7f)
			l.p[i] = '?';
	return log_end(&l);
}

/* One line out in one call that never waits (but on plain fd 2, before
 * log_open). A stalled syslogd is told apart from a restarted one, whose new
 * socket needs a new connect. 0 or -1. */
static int log_put(char *buf, size_t len)
{
	const char *p = buf + 1;
	ssize_t n;

	if (log_midline) {
		p = buf;
		buf[0] = '\n';
		len++;
	}
	if (log_fd < 0) {
		n = write(STDERR_FILENO, p, len);
	} else if (!log_send) {
		n = write(log_fd, p, len);
	} else {
		n = send(log_fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && log_to == TO_SYSLOG && (errno == ECONNREFUSED || errno == ENOTCONN) &&
		    connect(log_fd, (struct sockaddr *)&log_syslog_addr,
		            sizeof(log_syslog_addr)) == 0)
			n = send(log_fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	if (n == (ssize_t)len) {
		log_midline = 0;
		return 0;
	}
	if (n > 0)
		log_midline = 1;
	return -1;
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

/* Out with line[0..len) (built with line[0] free, as log_put() wants),
 * after the "N log lines dropped" warning if one is owed. */
static void log_emit(char *line, size_t len)
{
	char buf[PIPE_BUF];     /* one write of at most PIPE_BUF is atomic on a pipe */
	unsigned long long n;
	size_t wlen;

	(void)log_dropped();    /* forgets the parent's count after a fork */
	if (log_nunreported > 0) {
		n = log_nunreported;
		wlen = log_buildf(buf, LOG_WARNING, "warning: ",
		                  "%llu log line%s dropped (log target not keeping up)", n,
		                  n == 1 ? "" : "s");
		if (log_put(buf, wlen) == 0)
			log_nunreported = 0;
	}
	/* While the warning cannot go out, neither can the line after it. */
	if (log_nunreported > 0 || log_put(line, len) < 0) {
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
