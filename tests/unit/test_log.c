/* log: escaping of peer-chosen bytes, and log writes that never wait: a full
 * pipe, socket or syslog socket drops and counts lines, and the first line
 * that gets through again is preceded by one "dropped" warning. */
#include "log.h"
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* A log call that waited on a full target would hang the test: this ends it
 * instead, as a failure (SIGALRM's default action). */
#define GUARD_SECONDS 60

/* The expected escape of one byte, written independently of log.c. */
static void expect_byte(unsigned char b, char *out)
{
	if (b == '\\')
		strcpy(out, "\\\\");
	else if (b == '"')
		strcpy(out, "\\\"");
	else if (b >= 0x20 && b < 0x7f)
		sprintf(out, "%c", b);
	else
		sprintf(out, "\\x%02x", b);
}

static int printable_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

static void test_escape_bytes(void)
{
	char out[8], want[8], all[LOG_ESCAPED_SIZE(256)], joined[LOG_ESCAPED_SIZE(256)];
	unsigned char every[256];
	size_t len = 0;

	for (int b = 0; b < 256; b++) {
		unsigned char c = (unsigned char)b;
		expect_byte(c, want);
		CHECK_STR(log_escape(&c, 1, out, sizeof(out)), want);
		every[b] = c;
		memcpy(joined + len, want, strlen(want));
		len += strlen(want);
	}
	joined[len] = '\0';
	/* All 256 together: the concatenation, one printable line, in exactly
	 * the room LOG_ESCAPED_SIZE promises (at most). */
	CHECK(log_escape(every, sizeof(every), all, sizeof(all)) == all);
	CHECK_STR(all, joined);
	CHECK(printable_line(all));
	CHECK(strlen(all) < sizeof(all));

	/* Bytes are escaped one by one, so an input split anywhere escapes to
	 * the two halves' forms side by side. */
	for (size_t k = 0; k <= sizeof(every); k++) {
		char a[LOG_ESCAPED_SIZE(256)], b[LOG_ESCAPED_SIZE(256)], ab[2 * sizeof(a)];
		log_escape(every, k, a, sizeof(a));
		log_escape(every + k, sizeof(every) - k, b, sizeof(b));
		snprintf(ab, sizeof(ab), "%s%s", a, b);
		CHECK_STR(ab, all);
	}

	CHECK_STR(log_escape_str(NULL, out, sizeof(out)), "-");
	CHECK_STR(log_escape_str("", out, sizeof(out)), "");
	CHECK_STR(log_escape_str("a\"b\\c", out, sizeof(out)), "a\\\"b\\\\c");
	/* A NUL inside counted bytes is shown, not taken as the end. */
	CHECK_STR(log_escape("a\0b", 3, out, sizeof(out)), "a\\x00b");

	/* A key=value field's value: the space escaped too, nothing else
	 * differs, and the cut still falls between whole characters. */
	{
		char f[LOG_ESCAPED_SIZE(256)];
		CHECK_STR(log_escape_field(NULL, f, sizeof(f)), "-");
		CHECK_STR(log_escape_field("-", f, sizeof(f)), "\\x2d");
		CHECK_STR(log_escape_field("--", f, sizeof(f)), "--");
		CHECK_STR(log_escape_field("x up=0 \"\n", f, sizeof(f)), "x\\x20up=0\\x20\\\"\\x0a");
		CHECK_STR(log_escape_field("mail.example.org", f, sizeof(f)), "mail.example.org");
		CHECK_STR(log_escape_field("a b", out, 6), "a...");
	}
}

/* out of outlen bytes, holding the cut form of full (whose character
 * boundaries are marked in at[]): a whole prefix, then as much of "..." as
 * fits, the longest such prefix. */
static int cut_ok(const char *out, size_t outlen, const char *full, const char *at)
{
	size_t n = strlen(out), flen = strlen(full), room = outlen - 1, p, e;

	if (n > room)
		return 0;
	if (flen <= room)
		return strcmp(out, full) == 0;
	e = room < 3 ? room : 3;
	if (n < e || memcmp(out + n - e, "...", e) != 0)
		return 0;
	p = n - e;
	if (!at[p] || memcmp(out, full, p) != 0)
		return 0;
	/* Longest: the next whole character would not have left room. */
	for (size_t q = p + 1; q <= flen; q++)
		if (at[q])
			return q + 3 > room;
	return 0;
}

static void test_escape_truncation(void)
{
	static const unsigned char in[] = "ab\\c\"d\x01\xff" "e\n\r\x7f" "fgh";
	size_t n = sizeof(in) - 1, flen = 0;
	char full[LOG_ESCAPED_SIZE(sizeof(in))], at[sizeof(full) + 1] = {0}, u[8];

	for (size_t i = 0; i < n; i++) {
		at[flen] = 1;
		expect_byte(in[i], u);
		memcpy(full + flen, u, strlen(u));
		flen += strlen(u);
	}
	at[flen] = 1;
	full[flen] = '\0';

	/* Every size from 1 to more than enough, in a block of exactly that
	 * size (an overrun is caught by ASan in the sanitizer build, and by the
	 * canary byte after it here). */
	for (size_t outlen = 1; outlen <= flen + 4; outlen++) {
		char *out = malloc(outlen + 1);
		if (out == NULL)
			abort();
		memset(out, 'Z', outlen + 1);
		CHECK(log_escape(in, n, out, outlen) == out);
		CHECK(memchr(out, '\0', outlen) != NULL);
		CHECK(out[outlen] == 'Z');
		if (!cut_ok(out, outlen, full, at))
			fprintf(stderr, "outlen %zu: bad cut \"%s\"\n", outlen, out);
		CHECK(cut_ok(out, outlen, full, at));
		CHECK(printable_line(out));
		free(out);
	}
	/* Spot checks of the rule, written out. */
	{
		char o[16];
		CHECK_STR(log_escape(in, n, o, 1), "");
		CHECK_STR(log_escape(in, n, o, 3), "..");
		CHECK_STR(log_escape(in, n, o, 4), "...");
		CHECK_STR(log_escape(in, n, o, 6), "ab...");
		/* "ab\\\\" would leave no room for "...": back to "ab". */
		CHECK_STR(log_escape(in, n, o, 7), "ab...");
		CHECK_STR(log_escape(in, n, o, 8), "ab\\\\...");
		CHECK_STR(log_escape(in, n, o, 9), "ab\\\\c...");
	}
	/* outlen 0: nothing is written. */
	{
		char o[2] = {'Z', 'Z'};
		CHECK(log_escape(in, n, o, 0) == o && o[0] == 'Z');
	}
}

static void test_escape_forged_line(void)
{
	/* An SNI a client chose to look like a second log line. */
	static const char sni[] =
		"mail.example.org\nportier: [imaps] close client=10.0.0.1:1 sni=bank.example";
	char out[LOG_ESCAPED_SIZE(sizeof(sni))];

	log_escape_str(sni, out, sizeof(out));
	CHECK(strchr(out, '\n') == NULL && strchr(out, '\r') == NULL);
	CHECK(printable_line(out));
	CHECK(strstr(out, "mail.example.org\\x0aportier: [imaps]") == out);
}

/* Everything readable from fd (non-blocking) into buf, NUL-terminated. */
static size_t drain(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	return len;
}

static int is_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl >= 0 && !(fl & O_NONBLOCK);
}

/* Fills the stream behind the current target with log lines until one is
 * dropped; returns the number that went through. */
static unsigned fill(void)
{
	unsigned long long before = log_dropped();
	unsigned ok = 0;

	for (unsigned i = 0; i < 1000000 && log_dropped() == before; i++)
		log_info("filler line %u, long enough to fill a pipe in a few hundred", i);
	if (log_dropped() == before + 1) {
		ok = 1;
	}
	return ok;
}

/* Reads a drained stream of log lines: every line ended and one of ours (or
 * the start of one, cut by a short write); returns how many, or -1. */
static int count_lines(const char *s, size_t len)
{
	int n = 0;
	size_t l;

	if (len == 0)
		return 0;
	if (s[len - 1] != '\n')
		return -1;
	for (const char *p = s; p < s + len; p += l + 1, n++) {
		l = strcspn(p, "\n");
		if (l == 0 || strncmp(p, "portier: ", l < 9 ? l : 9) != 0)
			return -1;
	}
	return n;
}

static char big[1 << 20];

/* Where log_count_drops() adds (the shared region's counter in portier). */
static _Atomic unsigned long long drops_counted;

/* The part of a JSON line after its variable head (time and pid), or NULL
 * when the head is not what it must be. */
static const char *json_after_head(const char *line, const char *level, const char *process)
{
	char want[128];
	const char *p = line;
	size_t n;

	if (strncmp(p, "{\"time\":\"", 9) != 0)
		return NULL;
	p += 9;
	/* 2026-12-05T02:10:58.123Z */
	for (n = 0; n < 24; n++)
		if (p[n] == '\0' || (strchr("0123456789", p[n]) == NULL &&
		    p[n] != "0000-00-00T00:00:00.000Z"[n]))
			return NULL;
	p += 24;
	snprintf(want, sizeof(want), "\",\"level\":\"%s\",\"process\":\"%s\",\"pid\":", level,
	         process);
	if (strncmp(p, want, strlen(want)) != 0)
		return NULL;
	p += strlen(want);
	if (*p < '1' || *p > '9')
		return NULL;
	while (*p >= '0' && *p <= '9')
		p++;
	return p;
}

static void test_json(void)
{
	int fds[2];
	char *buf = big, *nl;
	const char *rest;
	size_t len;
	struct log_conn lc = {.listener = "web", .client = "127.0.0.1:5", .sni = "a\nb\xff",
	                      .tls = "TLSv1.3", .cipher = "TLS_AES_128_GCM_SHA256",
	                      .resumed = 1, .up = 1, .down = 2, .secs = 1.5,
	                      .reason = "client closed", .reason_code = "client_closed"};

	CHECK(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
	CHECK(log_open_fd(fds[1]) == 0);
	log_set_json(1);

	log_info("hello \"x\" \\ \x01 \xc3\xa9");
	log_warnx("careful");
	log_conn(&lc);
	lc = (struct log_conn){.handshake_failed = 1, .listener = "imaps",
	                       .client = "[::1]:7", .reason = "no shared cipher suite",
	                       .reason_code = "handshake_failed", .secs = 0.0004};
	log_set_worker(2, 1);
	log_conn(&lc);
	memset(big + (1 << 19), '"', 5000);
	big[(1 << 19) + 5000] = '\0';
	log_info("%s", big + (1 << 19));
	log_set_worker(0, 0);

	len = drain(fds[0], buf, (1 << 19));
	CHECK(len > 0 && buf[len - 1] == '\n');
	nl = strchr(buf, '\n');
	*nl = '\0';
	rest = json_after_head(buf, "info", "master");
	CHECK(rest && strcmp(rest, ",\"msg\":\"hello \\\"x\\\" \\\\ \\u0001 \\u00c3\\u00a9\"}") == 0);
	buf = nl + 1;
	nl = strchr(buf, '\n');
	*nl = '\0';
	rest = json_after_head(buf, "warning", "master");
	CHECK(rest && strcmp(rest, ",\"msg\":\"careful\"}") == 0);
	buf = nl + 1;
	nl = strchr(buf, '\n');
	*nl = '\0';
	rest = json_after_head(buf, "info", "master");
	CHECK(rest && strcmp(rest, ",\"event\":\"close\",\"listener\":\"web\","
	      "\"client\":\"127.0.0.1:5\",\"control\":null,\"sni\":\"a\\u000ab\\u00ff\",\"tls\":\"TLSv1.3\","
	      "\"cipher\":\"TLS_AES_128_GCM_SHA256\",\"resumed\":true,\"up\":1,\"down\":2,"
	      "\"ms\":1500,\"reason_code\":\"client_closed\",\"reason\":\"client closed\"}") == 0);
	buf = nl + 1;
	nl = strchr(buf, '\n');
	*nl = '\0';
	rest = json_after_head(buf, "info", "worker 2.1");
	CHECK(rest && strcmp(rest, ",\"event\":\"handshake_failed\",\"listener\":\"imaps\","
	      "\"client\":\"[::1]:7\",\"control\":null,\"sni\":null,\"tls\":null,\"cipher\":null,"
	      "\"resumed\":null,\"up\":0,\"down\":0,\"ms\":0,"
	      "\"reason_code\":\"handshake_failed\",\"reason\":\"no shared cipher suite\"}") == 0);
	/* A message longer than a line: cut inside its string, which still
	 * ends, as does the object; never half an escape. */
	buf = nl + 1;
	nl = strchr(buf, '\n');
	CHECK(nl != NULL && nl[1] == '\0');
	*nl = '\0';
	CHECK(strlen(buf) <= PIPE_BUF - 2);
	rest = json_after_head(buf, "info", "worker 2.1");
	CHECK(rest && strncmp(rest, ",\"msg\":\"\\\"\\\"", 12) == 0);
	len = rest ? strlen(rest) : 0;
	CHECK(len > 5 && strcmp(rest + len - 7, "\\\"...\"}") == 0);

	/* The text form of a connection's line is the one portier always wrote. */
	log_set_json(0);
	lc = (struct log_conn){.listener = "web", .client = "127.0.0.1:5", .sni = "a\nb\xff",
	                       .tls = "TLSv1.3", .cipher = "TLS_AES_128_GCM_SHA256",
	                       .resumed = 1, .up = 1, .down = 2, .secs = 1.5,
	                       .reason = "client closed", .reason_code = "client_closed"};
	log_conn(&lc);
	lc.tls = NULL;
	lc.reason = "backend down";
	log_conn(&lc);
	lc.handshake_failed = 1;
	lc.reason = "no shared cipher suite";
	log_conn(&lc);
	drain(fds[0], big, sizeof(big));
	CHECK_STR(big, "portier: [web] close client=127.0.0.1:5 sni=a\\x0ab\\xff tls=TLSv1.3 "
	          "cipher=TLS_AES_128_GCM_SHA256 resumed=yes up=1 down=2 time=1.500s: "
	          "client closed\n"
	          "portier: [web] close client=127.0.0.1:5 sni=- tls=- cipher=- resumed=- "
	          "up=1 down=2 time=1.500s: backend down\n"
	          "portier: [web] handshake failed client=127.0.0.1:5: no shared cipher suite\n");
	log_close();
	close(fds[0]);
}

static void test_pipe(void)
{
	int fds[2];
	unsigned long long d0 = log_dropped();
	char line[PIPE_BUF + 100];
	size_t len;

	CHECK(pipe2(fds, O_CLOEXEC) == 0);
	CHECK(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);   /* the test's own end */
	CHECK(log_open_fd(fds[1]) == 0);
	log_count_drops(&drops_counted);
	/* Our descriptor is not the caller's: its mode is left alone. */
	CHECK(is_blocking(fds[1]));

	log_set_worker(4, 3);
	errno = ENOENT;
	log_warn("cannot open %s", "x");
	CHECK(errno == ENOENT);
	log_errx("bad %d", 7);
	log_set_worker(0, 0);
	log_info("a %s b", "one\ntwo\r\x1b[31m");
	drain(fds[0], big, sizeof(big));
	CHECK_STR(big, "portier: worker 4.3: warning: cannot open x: No such file or directory\n"
	               "portier: worker 4.3: error: bad 7\n"
	               "portier: a one?two??[31m b\n");

	/* Quiet drops the per-connection lines, never notices. */
	log_set_quiet(1);
	log_info("not shown");
	log_notice("shown");
	log_set_quiet(0);
	drain(fds[0], big, sizeof(big));
	CHECK_STR(big, "portier: shown\n");

	/* A line longer than PIPE_BUF is cut, so that it stays one atomic
	 * write (PIPE_BUF - 1: a byte is kept for the newline that ends a line
	 * a short write cut off). */
	memset(big, 'x', 10000);
	big[10000] = '\0';
	log_notice("%s", big);
	len = drain(fds[0], line, sizeof(line));
	CHECK(len == PIPE_BUF - 1);
	CHECK(len == PIPE_BUF - 1 && memcmp(line + len - 4, "...\n", 4) == 0);
	CHECK(strncmp(line, "portier: xxxx", 13) == 0);

	/* Fill the pipe: the call that finds it full returns (or the alarm
	 * ends the test), and the line is counted. */
	CHECK(fill());
	log_info("lost 1");
	log_warnx("lost 2");
	log_notice("lost 3");
	CHECK(log_dropped() == d0 + 4);
	CHECK(drops_counted == 4);
	CHECK(is_blocking(fds[1]));
	len = drain(fds[0], big, sizeof(big));
	CHECK(count_lines(big, len) > 100);
	CHECK(strstr(big, "lost") == NULL);

	/* Room again: one warning with the count, then the line. */
	log_info("after");
	log_info("again");
	drain(fds[0], big, sizeof(big));
	CHECK_STR(big, "portier: warning: 4 log lines dropped (log target not keeping up)\n"
	               "portier: after\nportier: again\n");
	CHECK(log_dropped() == d0 + 4);

	/* One line lost: said in the singular. */
	CHECK(fill());
	drain(fds[0], big, sizeof(big));
	log_info("after one");
	drain(fds[0], big, sizeof(big));
	CHECK_STR(big, "portier: warning: 1 log line dropped (log target not keeping up)\n"
	               "portier: after one\n");
	CHECK(log_dropped() == d0 + 5);
	CHECK(drops_counted == 5);

	/* A process about to end says what it dropped without another line;
	 * owing nothing, it says nothing. */
	CHECK(fill());
	CHECK(log_dropped() == d0 + 6);
	drain(fds[0], big, sizeof(big));
	log_flush_drops();
	drain(fds[0], big, sizeof(big));
	CHECK_STR(big, "portier: warning: 1 log line dropped (log target not keeping up)\n");
	log_flush_drops();
	CHECK(drain(fds[0], big, sizeof(big)) == 0);
	log_info("next");
	drain(fds[0], big, sizeof(big));
	CHECK_STR(big, "portier: next\n");
	CHECK(drops_counted == 6);
	log_count_drops(NULL);

	/* A reader that went away: lines fail (EPIPE, SIGPIPE ignored as
	 * portier does) and are counted, without waiting. */
	close(fds[0]);
	log_info("nobody reads");
	CHECK(log_dropped() == d0 + 7);
	log_close();
	close(fds[1]);
}

static void test_socket(void)
{
	int sv[2];
	unsigned long long d0 = log_dropped();
	size_t len;
	int n;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);
	/* A socket (journald's stream) cannot be opened again through /proc:
	 * each send is non-blocking instead. */
	CHECK(log_open_fd(sv[0]) == 0);
	CHECK(is_blocking(sv[0]));
	/* The line the pipe test lost last is reported here: the count is
	 * the process's, not the target's. */
	log_notice("over a socket");
	drain(sv[1], big, sizeof(big));
	CHECK_STR(big, "portier: warning: 1 log line dropped (log target not keeping up)\n"
	               "portier: over a socket\n");

	CHECK(fill());
	log_info("lost");
	CHECK(log_dropped() == d0 + 2);
	CHECK(is_blocking(sv[0]));
	len = drain(sv[1], big, sizeof(big));
	log_info("back");
	len += drain(sv[1], big + len, sizeof(big) - len);
	/* A stream socket may take part of a line; whatever it took, the
	 * warning starts a line of its own and every line is one of ours. */
	n = count_lines(big, len);
	CHECK(n > 2);
	CHECK(len > 0 && strstr(big, "portier: warning: 2 log lines dropped (log target not "
	                             "keeping up)\nportier: back\n") != NULL);
	{
		char *w = strstr(big, "portier: warning: 2 log lines dropped");
		CHECK(w != NULL && (w == big || w[-1] == '\n'));
		CHECK(w != NULL && strcmp(w + strcspn(w, "\n") + 1, "portier: back\n") == 0);
	}
	log_close();
	close(sv[0]);
	close(sv[1]);
}

/* A terminal takes what fits of a line and says how much: the cut line is
 * ended before the next one, so the warning still starts a line. */
static void test_tty(void)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), s = -1;
	unsigned long long d0 = log_dropped();
	struct termios t;
	size_t len = 0, want;
	int cut = 0;
	char *w;

	CHECK(m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0);
	if (m < 0 || (s = open(ptsname(m), O_WRONLY | O_NOCTTY | O_CLOEXEC)) < 0) {
		CHECK(!"no pseudo-terminal");
		return;
	}
	/* Raw: what is written is what the other side reads ("\n" as is). */
	CHECK(tcgetattr(s, &t) == 0);
	cfmakeraw(&t);
	CHECK(tcsetattr(s, TCSANOW, &t) == 0);
	CHECK(fcntl(m, F_SETFL, O_NONBLOCK) == 0);
	CHECK(log_open_fd(s) == 0);
	CHECK(is_blocking(s));
	CHECK(fill());
	CHECK(log_dropped() == d0 + 1);
	len = drain(m, big, sizeof(big));
	log_info("back");
	len += drain(m, big + len, sizeof(big) - len);
	CHECK(count_lines(big, len) > 2);
	w = strstr(big, "portier: warning: 1 log line dropped (log target not keeping up)\n");
	CHECK(w != NULL && (w == big || w[-1] == '\n'));
	CHECK(w != NULL && strcmp(w + strcspn(w, "\n") + 1, "portier: back\n") == 0);
	/* Whether the last line was cut depends on the room the terminal had
	 * left; said here so that a run where it was not is visible. */
	want = strlen("portier: filler line NNN, long enough to fill a pipe in a few hundred");
	for (char *p = big; w != NULL && p < w; p = strchr(p, '\n') + 1)
		cut |= strcspn(p, "\n") < want - 3;
	printf("tty: %s\n", cut ? "a line was cut and ended" : "no line was cut this time");
	log_close();
	close(s);
	close(m);
}

/* stderr redirected to a file (the shell's "> file 2>&1"): our lines and
 * whatever else is written through the same descriptor (a sanitizer's
 * report) follow one another, none overwrites another. */
/* The file at path into big, NUL-terminated (empty if unreadable). */
static void slurp(const char *path)
{
	int rd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = rd >= 0 ? read(rd, big, sizeof(big) - 1) : -1;

	CHECK(rd >= 0);
	big[n > 0 ? n : 0] = '\0';
	if (rd >= 0)
		close(rd);
}

static void test_shared_file(const char *dir)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/stderr.out", dir);
	CHECK((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0);
	CHECK(write(fd, "start\n", 6) == 6);
	CHECK(log_open_fd(fd) == 0);
	log_notice("a");
	CHECK(write(fd, "mid\n", 4) == 4);
	log_notice("b");
	log_close();
	close(fd);
	slurp(path);
	CHECK_STR(big, "start\nportier: a\nmid\nportier: b\n");
	unlink(path);
}

/* Two processes write one file; the child's line is cut short (the disk
 * "fills": a file size limit). Only with the shared record does the
 * parent's next line start on a line of its own; with each process's own,
 * it runs on from the child's fragment. */
static void test_cut_line_shared(const char *dir, int shared)
{
	_Atomic unsigned *flag = mmap(NULL, sizeof(*flag), PROT_READ | PROT_WRITE,
	                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char path[256];
	int fd, st = 0;
	pid_t pid;

	CHECK(flag != MAP_FAILED);
	if (flag == MAP_FAILED)
		return;
	snprintf(path, sizeof(path), "%s/cut.log", dir);
	CHECK((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600)) >= 0);
	CHECK(write(fd, "start\n", 6) == 6);
	CHECK(log_open_fd(fd) == 0);
	log_share_midline(shared ? flag : NULL);
	if ((pid = fork()) == 0) {
		struct rlimit lim = {16, 16};   /* "start\n" and 10 bytes more */
		signal(SIGXFSZ, SIG_IGN);
		setrlimit(RLIMIT_FSIZE, &lim);
		log_notice("from the child, longer than ten bytes");
		_exit(0);
	}
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st));
	log_notice("from the parent");
	log_share_midline(NULL);
	log_close();
	close(fd);
	slurp(path);
	if (shared)
		CHECK_STR(big, "start\nportier: f\nportier: from the parent\n");
	else
		CHECK_STR(big, "start\nportier: fportier: from the parent\n");
	unlink(path);
	munmap((void *)flag, sizeof(*flag));
}

/* log_open("stderr") keeps writing where fd 2 pointed when it was called,
 * after daemon(3) has pointed fd 2 at /dev/null. */
static void test_stderr_survives_detach(void)
{
	int fds[2], saved = dup(2), null = open("/dev/null", O_WRONLY);

	CHECK(saved >= 0 && null >= 0);
	CHECK(pipe2(fds, O_CLOEXEC) == 0);
	CHECK(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);
	CHECK(dup2(fds[1], 2) == 2);
	CHECK(log_open("stderr", "portier") == 0);
	CHECK(dup2(null, 2) == 2);                /* what daemon(3) does */
	log_notice("after detach");
	log_close();
	log_notice("to fd 2 again");               /* now /dev/null */
	CHECK(dup2(saved, 2) == 2);
	close(saved);
	close(null);
	close(fds[1]);
	drain(fds[0], big, sizeof(big));
	CHECK_STR(big, "portier: after detach\n");
	close(fds[0]);
}

static void test_file(const char *dir)
{
	char path[256], *nl;
	int fd, saved0;
	FILE *f;
	size_t len;

	snprintf(path, sizeof(path), "%s/portier.log", dir);
	f = fopen(path, "w");
	CHECK(f != NULL && fputs("earlier\n", f) >= 0 && fclose(f) == 0);
	/* Started with fd 0 closed: the log's descriptor must not take it,
	 * or daemon(3) would replace it with /dev/null. */
	saved0 = dup(0);
	close(0);
	CHECK(log_open(path, "portier") == 0);
	CHECK(fcntl(0, F_GETFD) == -1 && errno == EBADF);
	CHECK(dup2(saved0, 0) == 0);
	close(saved0);
	log_warnx("to the file");
	log_info("second");
	log_close();

	CHECK((fd = open(path, O_RDONLY)) >= 0);
	len = (size_t)read(fd, big, sizeof(big) - 1);
	big[len] = '\0';
	close(fd);
	CHECK(strncmp(big, "earlier\n", 8) == 0);
	nl = big + 8;
	/* YYYY-MM-DDTHH:MM:SS, then the stderr form. */
	CHECK(strlen(nl) > 20 && nl[4] == '-' && nl[7] == '-' && nl[10] == 'T' && nl[13] == ':' &&
	      nl[16] == ':' && nl[19] == ' ');
	CHECK(strncmp(nl + 20, "portier: warning: to the file\n", 30) == 0);
	nl = strchr(nl, '\n') + 1;
	CHECK(strlen(nl) > 20 && strcmp(nl + 20, "portier: second\n") == 0);

	/* A path that cannot be opened is refused with errno, and the target
	 * stays as it was. */
	snprintf(path, sizeof(path), "%s/no/such/dir/log", dir);
	errno = 0;
	CHECK(log_open(path, "portier") == -1 && errno == ENOENT);
}

static int dgram_bind(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	return fd;
}

/* One datagram, NUL-terminated, or "" when none is waiting. */
static const char *dgram(int fd)
{
	static char d[PIPE_BUF + 1];
	ssize_t n = recv(fd, d, sizeof(d) - 1, MSG_DONTWAIT);

	d[n > 0 ? n : 0] = '\0';
	return d;
}

/* "<PRI>Mmm dd hh:mm:ss ident[pid]: message" with the given PRI and message. */
static int syslog_ok(const char *d, const char *pri, const char *msg)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char head[64];
	size_t pl = strlen(pri);
	const char *m = d + pl;

	if (strncmp(d, pri, pl) != 0 || strlen(m) < 16)
		return 0;
	/* Month, space-padded day, time. */
	if (strstr(months, (char[]){m[0], m[1], m[2], 0}) == NULL || m[3] != ' ' ||
	    !(m[4] == ' ' || (m[4] >= '1' && m[4] <= '3')) || m[5] < '0' || m[5] > '9' ||
	    m[6] != ' ' || m[9] != ':' || m[12] != ':' || m[15] != ' ')
		return 0;
	snprintf(head, sizeof(head), "test-ident[%ld]: ", (long)getpid());
	return strncmp(m + 16, head, strlen(head)) == 0 &&
	       strcmp(m + 16 + strlen(head), msg) == 0;
}

static void test_syslog(const char *dir)
{
	char path[256];
	int rx;
	unsigned long long d0 = log_dropped();
	const char *d;
	int n;

	snprintf(path, sizeof(path), "%s/dev-log", dir);
	rx = dgram_bind(path);
	CHECK(log_open_syslog(path, "test-ident") == 0);
	/* Facility daemon (3): PRI 24 + severity; no level words, as syslog
	 * carries the severity itself; no newline. */
	log_warnx("w %d", 1);
	CHECK(syslog_ok(dgram(rx), "<28>", "w 1"));
	log_info("i");
	CHECK(syslog_ok(dgram(rx), "<30>", "i"));
	log_notice("n");
	CHECK(syslog_ok(dgram(rx), "<29>", "n"));
	log_set_worker(1, 2);
	log_errx("e");
	log_set_worker(0, 0);
	CHECK(syslog_ok(dgram(rx), "<27>", "worker 1.2: e"));
	errno = EACCES;
	log_warn("denied");
	CHECK(syslog_ok(dgram(rx), "<28>", "denied: Permission denied"));

	/* syslogd restarted: a new socket at the same path. */
	close(rx);
	rx = dgram_bind(path);
	log_info("after restart");
	CHECK(syslog_ok(dgram(rx), "<30>", "after restart"));
	CHECK(log_dropped() == d0);

	/* A syslogd that does not read: its queue fills, lines are dropped. */
	CHECK(fill());
	log_info("lost");
	CHECK(log_dropped() == d0 + 2);
	for (n = 0; *dgram(rx); n++)
		;
	CHECK(n > 2);
	log_info("back");
	CHECK(syslog_ok(dgram(rx), "<28>", "2 log lines dropped (log target not keeping up)"));
	CHECK(syslog_ok(dgram(rx), "<30>", "back"));
	CHECK(*dgram(rx) == '\0');
	close(rx);
	unlink(path);
	log_close();

	/* No syslogd yet at log_open: it still succeeds (as openlog did), the
	 * lines are dropped, and the first syslogd to appear gets them again. */
	snprintf(path, sizeof(path), "%s/later", dir);
	CHECK(log_open_syslog(path, "test-ident") == 0);
	log_info("nobody there");
	CHECK(log_dropped() == d0 + 3);
	rx = dgram_bind(path);
	log_info("somebody");
	d = dgram(rx);
	CHECK(syslog_ok(d, "<28>", "1 log line dropped (log target not keeping up)"));
	CHECK(syslog_ok(dgram(rx), "<30>", "somebody"));
	log_close();
	close(rx);
	unlink(path);
}

/* The counts belong to the process: a forked worker starts from zero and
 * does not report its parent's losses. */
static void test_fork(void)
{
	int fds[2], status = -1;
	pid_t pid;

	CHECK(pipe2(fds, O_CLOEXEC) == 0);
	CHECK(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);
	CHECK(log_open_fd(fds[1]) == 0);
	CHECK(fill());
	CHECK(log_dropped() > 0);
	drain(fds[0], big, sizeof(big));
	pid = fork();
	if (pid == 0) {
		int ok = log_dropped() == 0;
		log_notice("child");
		_exit(ok ? 0 : 1);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	drain(fds[0], big, sizeof(big));
	CHECK_STR(big, "portier: child\n");
	log_notice("parent");
	drain(fds[0], big, sizeof(big));
	CHECK_STR(big, "portier: warning: 1 log line dropped (log target not keeping up)\n"
	               "portier: parent\n");
	log_close();
	close(fds[0]);
	close(fds[1]);
}

/* Whether got starts with the time of some second from t0 to t1 as fmt
 * writes it (UTC or local): the stamp says when the line was made. */
static int stamp_between(const char *got, const char *fmt, int utc, time_t t0, time_t t1)
{
	char want[64];
	struct tm tm;

	for (time_t t = t0; t <= t1; t++) {
		if (utc)
			gmtime_r(&t, &tm);
		else
			localtime_r(&t, &tm);
		strftime(want, sizeof(want), fmt, &tm);
		if (strncmp(got, want, strlen(want)) == 0)
			return 1;
	}
	fprintf(stderr, "stamp \"%.30s\" is not %s between %ld and %ld\n", got, fmt,
	        (long)t0, (long)t1);
	return 0;
}

/* The time stamps say the time (each form: JSON in UTC, a file's and
 * syslog's in local time); the journal gets each line's priority as
 * "<N>"; what the text form replaces, a JSON string escapes (DEL too); a
 * line exactly as long as a line may be is not cut. */
static void test_stamps_and_prefixes(const char *dir)
{
	char path[256], jenv[64];
	int fds[2], fd, rx;
	time_t t0, t1;
	size_t len;
	struct stat st;
	struct log_conn lc = {.listener = "web", .client = "127.0.0.1:5", .reason = "a\nb\x7f",
	                      .reason_code = "x"};

	CHECK(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
	CHECK(log_open_fd(fds[1]) == 0);
	log_set_json(1);
	t0 = time(NULL);
	log_info("del \x7f");
	t1 = time(NULL);
	log_set_json(0);
	drain(fds[0], big, sizeof(big));
	CHECK(strncmp(big, "{\"time\":\"", 9) == 0 &&
	      stamp_between(big + 9, "%Y-%m-%dT%H:%M:%S.", 1, t0, t1));
	CHECK(strstr(big, ",\"msg\":\"del \\u007f\"}\n") != NULL);
	/* The text form: control bytes and DEL in a connection's line. */
	log_conn(&lc);
	drain(fds[0], big, sizeof(big));
	CHECK(strstr(big, ": a?b?\n") != NULL);
	/* Exactly a line's room (PIPE_BUF - 2 with "portier: "): whole. */
	memset(big, 'x', PIPE_BUF);
	big[PIPE_BUF - 2 - 9] = '\0';
	log_notice("%s", big);
	len = drain(fds[0], big + PIPE_BUF, sizeof(big) - PIPE_BUF);
	CHECK(len == PIPE_BUF - 1 && memcmp(big + PIPE_BUF + len - 4, "xxx\n", 4) == 0);
	log_close();

	/* Standard error that is the journal's stream (JOURNAL_STREAM names
	 * it), in a child whose fd 2 is the pipe. */
	CHECK(fstat(fds[1], &st) == 0);
	snprintf(jenv, sizeof(jenv), "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	{
		pid_t pid = fork();
		int wst = -1;

		if (pid == 0) {
			if (dup2(fds[1], STDERR_FILENO) < 0)
				_exit(2);
			setenv("JOURNAL_STREAM", jenv, 1);
			log_open("stderr", "portier");
			log_info("one");
			log_warnx("two");
			log_errx("three");
			_exit(0);
		}
		CHECK(pid > 0 && waitpid(pid, &wst, 0) == pid && WIFEXITED(wst) &&
		      WEXITSTATUS(wst) == 0);
	}
	drain(fds[0], big, sizeof(big));
	CHECK_STR(big, "<6>one\n<4>warning: two\n<3>error: three\n");
	close(fds[0]);
	close(fds[1]);

	/* A file's stamp. */
	snprintf(path, sizeof(path), "%s/stamp.log", dir);
	unlink(path);
	CHECK(log_open(path, "portier") == 0);
	t0 = time(NULL);
	log_notice("stamped");
	t1 = time(NULL);
	log_close();
	CHECK((fd = open(path, O_RDONLY)) >= 0);
	len = (size_t)read(fd, big, 200);
	big[len > 0 ? len : 0] = '\0';
	close(fd);
	unlink(path);
	CHECK(stamp_between(big, "%Y-%m-%dT%H:%M:%S portier: stamped", 0, t0, t1));

	/* syslog's: English month (the test runs in the C locale, as strftime
	 * here needs), day padded with a space. */
	snprintf(path, sizeof(path), "%s/stamp-log", dir);
	rx = dgram_bind(path);
	CHECK(log_open_syslog(path, "test-ident") == 0);
	t0 = time(NULL);
	log_notice("stamped");
	t1 = time(NULL);
	log_close();
	CHECK(stamp_between(dgram(rx) + 4, "%b %e %H:%M:%S test-ident[", 0, t0, t1));
	close(rx);
	unlink(path);
}

int main(void)
{
	char dir[] = "/tmp/portier-test-log-XXXXXX";

	signal(SIGPIPE, SIG_IGN);        /* as main.c does */
	alarm(GUARD_SECONDS);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_escape_bytes();
	test_escape_truncation();
	test_escape_forged_line();
	test_json();
	test_pipe();
	test_socket();
	test_tty();
	test_stderr_survives_detach();
	test_shared_file(dir);
	test_cut_line_shared(dir, 0);
	test_cut_line_shared(dir, 1);
	test_file(dir);
	test_syslog(dir);
	test_stamps_and_prefixes(dir);
	test_fork();
	{
		char p[300];
		snprintf(p, sizeof(p), "%s/portier.log", dir);
		unlink(p);
		rmdir(dir);
	}
	return CHECK_DONE();
}
