#ifndef PORTIER_LOG_H
#define PORTIER_LOG_H

#include <stdatomic.h>
#include <stddef.h>

/*
 * Logging, relayd style: log_warn() appends strerror(errno), log_warnx()
 * does not. Messages go to syslog, stderr or a file, chosen once at start
 * by log_open(); before that they go to plain stderr.
 *
 * After log_open() no log call ever waits: each line is built whole, at most
 * PIPE_BUF bytes (longer ones end in "..."), and goes out in one
 * non-blocking write(2) or send(2). A line the target cannot take at once is
 * dropped and counted; the next line that gets through is preceded by one
 * "N log lines dropped" warning. Control bytes in a message become '?', so a
 * call makes exactly one line whatever its arguments hold; strings a peer
 * chose should still go through log_escape(), which keeps them readable.
 */

/* log_open(target, ident): target is "syslog", "stderr" or a file path.
 * The descriptors it opens are our own, above 2 and close-on-exec, so they
 * outlive daemon(3) and are shared by the processes forked after it; a
 * second call replaces the target. Returns 0, or -1 with errno set if the
 * file cannot be opened (the target stays as it was). */
int log_open(const char *target, const char *ident);

/* log_open_fd(fd): log as log_open("stderr") does, to fd instead of fd 2,
 * through a descriptor of our own: fd's open file description, and so its
 * blocking mode, is left as it is (tests use it with a pipe or a socket).
 * Returns 0, or -1 with errno set (fd not open). */
int log_open_fd(int fd);

/* log_open_syslog(path, ident): log_open("syslog", ident) to the datagram
 * socket at path instead of /dev/log (tests; a chroot's own log socket).
 * Returns 0, or -1 with errno set if no socket can be made. */
int log_open_syslog(const char *path, const char *ident);

/* log_reopen(): the file target opened again at its path (after logrotate
 * moved it away: a new file is created). 1 if reopened, 0 if the target is
 * not a file opened by path, -1 with errno if the path cannot be opened
 * (the target stays as it was). */
int log_reopen(void);

/* log_adopt_file(fd): log to the regular file open on fd, as log_open(path)
 * would (fd taken over; a worker gets it from the master, which could open
 * the path). 0, or -1 with errno (fd is closed then). */
int log_adopt_file(int fd);

/* log_kind(): the current target: 'F' a file, 'S' syslog, 'E' stderr. */
char log_kind(void);

/* log_file_fd(): the descriptor of the file target (still ours), or -1
 * when the target is not a file. */
int log_file_fd(void);

/* log_file_path(): the path the file target was opened at; "" if none. */
const char *log_file_path(void);

/* log_close(): close the current target, back to plain stderr. */
void log_close(void);

/* log_dropped(): lines this process has dropped because the target would
 * have blocked or failed (a forked child counts from zero). */
unsigned long long log_dropped(void);

/* log_flush_drops(): say the "N log lines dropped" warning now if one is
 * owed (it otherwise goes out before the next line): for a process about
 * to end, whose drops would else go unsaid. One try, never waiting. */
void log_flush_drops(void);

/* log_count_drops(counter): every line dropped from now on, by this process
 * and the children it forks, is also added to *counter (an atomic in the
 * shared region, so the metrics sum every process); NULL stops it. */
void log_count_drops(_Atomic unsigned long long *counter);

/* log_share_midline(flag): *flag (an atomic in the shared region) says,
 * for every process that writes to the same file or stream, that a short
 * write left a line unfinished: whichever process writes next starts on a
 * new line, not just the one whose write was cut (a disk that filled, a
 * journald socket with room for half a line). NULL: this process's own
 * record only. Syslog targets keep a connection a process, and their own
 * record. */
void log_share_midline(_Atomic unsigned *flag);

/* Room log_escape() needs for n bytes to be shown whole, NUL included. */
#define LOG_ESCAPED_SIZE(n) (4 * (size_t)(n) + 1)

/* log_escape(p, n, out, outlen): writes into out the n bytes at p as one
 * printable line: printable ASCII stays, except backslash and double quote
 * (\\ and \"), every other byte is \xHH. Always NUL-terminated when outlen
 * is not 0; when out is too small, the form is cut at a whole character and
 * ends in "...". Returns out. */
const char *log_escape(const void *p, size_t n, char *out, size_t outlen);

/* log_escape_str(s, out, outlen): log_escape() of the string s, or "-" when
 * s is NULL. Returns out. */
const char *log_escape_str(const char *s, char *out, size_t outlen);

/* log_escape_field(s, out, outlen): log_escape_str() with the space escaped
 * too (\x20), for a value in a text line's key=value fields: it stays one
 * field whatever the peer put in it; a value of "-" itself is \x2d, "-"
 * being the field's "none". Returns out. */
const char *log_escape_field(const char *s, char *out, size_t outlen);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_notice: life-cycle events (start, stop, signals), kept by
 * log_set_quiet(). */
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One connection's end, for log_conn(). Strings may be NULL where said. */
struct log_conn {
	int handshake_failed;   /* the TLS handshake failed: "handshake failed" */
	const char *listener;
	const char *client;     /* "addr:port", "[v6]:port" */
	const char *control;    /* an FTP data connection: its control
	                           connection's client; else NULL */
	const char *sni;        /* as the client sent it (escaped here); NULL none */
	const char *tls;        /* "TLSv1.3"; NULL when no TLS session */
	const char *cipher;     /* with tls */
	int resumed;            /* with tls */
	unsigned long long up, down;   /* bytes client to backend, and back */
	double secs;            /* how long the connection lived */
	const char *reason;     /* what happened, in words */
	const char *reason_code;    /* conn_why_name(): stable, for tools */
};

/* log_conn(c): the line for a connection's end, at info level: in text
 * "[L] close client=... up=N down=N time=Ns: REASON" (or "[L] handshake
 * failed client=...: REASON"; an FTP data connection's "[L] data close
 * client=... control client=... tls=... resumed=... up=..."), with
 * log_format = json one object with the fields event, listener, client,
 * control, sni, tls, cipher, resumed, up, down, ms, reason_code and
 * reason. */
void log_conn(const struct log_conn *c);

/* log_set_json(on): log_format = json: every line one JSON object
 * {"time","level","process","pid", then "msg" or log_conn()'s fields}; on
 * syslog after the usual header. Off: the text form. */
void log_set_json(int on);

/* log_set_quiet(on): drop log_info() lines (one per connection), keep
 * warnings and errors. */
void log_set_quiet(int on);

/* log_set_worker(generation, n): prefix every line with "worker G.N: ",
 * the configuration generation the worker serves and its number, so that
 * old and new workers can be told apart during a reload's drain (n 0:
 * no prefix). */
void log_set_worker(unsigned long long generation, unsigned n);

#endif
