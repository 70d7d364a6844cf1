#include "log.h"
#include "log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/*
 * Where log lines go: stderr, a file or syslog's socket, through a
 * descriptor of our own that never blocks, and the one write of a line
 * (log.c builds it).
 */

/* Process-wide by nature: there is one stderr and one syslog connection per
 * process, whatever number of configs or loops it holds. */
static enum { TO_STDERR, TO_SYSLOG, TO_FILE } log_to = TO_STDERR;
/* Our own descriptor for the target, written with write(2), or with send(2)
 * when log_send is set. -1 before log_open() (or when nothing better could
 * be had): lines then go to plain fd 2 and may block, which is harmless for
 * the start-up messages written before any loop or client exists. */
static int log_fd = -1;
static int log_send;
static int log_journal;   /* log_fd is fd 2, which is the journal's stream */
static struct sockaddr_un log_syslog_addr;  /* what the syslog socket reconnects to */
/* The syslog socket is a stream (syslog-ng's unix-stream(), some BSD-style
 * daemons) rather than the usual datagram socket: messages then end with
 * a NUL, as glibc's syslog(3) ends them, since the stream has no other
 * boundary. */
static int log_syslog_stream;
/* The process whose connection the stream socket is: a forked child makes
 * its own, or its lines and its parent's would share one byte stream, and
 * a line one cut short would run into the other's next. */
static pid_t log_syslog_pid;
static char log_ident[32];
static char log_path[PATH_MAX];  /* of the file target, for log_reopen() */
/* A short write left a line unfinished: the next one starts on a new line. */
static int log_midline;
/* The same for the file or stream every process shares (log_share_midline). */
static _Atomic unsigned *log_midline_shared;

void log_share_midline(_Atomic unsigned *flag)
{
	log_midline_shared = flag;
}

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

/* Whether fd is the stream systemd connected standard error to the
 * journal with: JOURNAL_STREAM holds its device and inode (systemd.exec(5)),
 * which a descriptor pointing elsewhere (a redirect, a pipe) does not
 * share. */
static int stream_is_journal(int fd)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	if (v == NULL || sscanf(v, "%llu:%llu%n", &dev, &ino, &end) != 2 || v[end] != '\0' ||
	    fstat(fd, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
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

/* A new socket connected to sa, of the kind *stream says, or of the other
 * kind if the socket there is (EPROTOTYPE), *stream then changed. Without a
 * syslogd listening the socket is kept unconnected, and the next line tries
 * again. The descriptor, or -1 if none could be had at all. */
static int syslog_socket(const struct sockaddr_un *sa, int *stream)
{
	for (int tries = 0; tries < 2; tries++) {
		int fd = socket(AF_UNIX, (*stream ? SOCK_STREAM : SOCK_DGRAM) |
		                SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if ((fd = log_above2(fd)) < 0)
			return -1;
		/* A stream connect that finds the daemon's backlog full
		 * (EAGAIN) stays unconnected too: sends fail with ENOTCONN
		 * and the line after tries again; nothing here waits. */
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ||
		    errno != EPROTOTYPE || tries == 1)
			return fd;
		close(fd);
		*stream = !*stream;
	}
	return -1;
}

int log_open_syslog(const char *path, const char *ident)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	int fd, stream = 0;

	if (len >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, len + 1);
	/* No syslogd yet is no reason to refuse to start (openlog(3) never
	 * did): each line tries to connect again until one is there. */
	if ((fd = syslog_socket(&sa, &stream)) < 0)
		return -1;
	log_close();
	log_fd = fd;
	log_send = 1;
	log_syslog_addr = sa;
	log_syslog_stream = stream;
	log_syslog_pid = getpid();
	log_midline = 0;
	snprintf(log_ident, sizeof(log_ident), "%s", ident ? ident : "portier");
	log_to = TO_SYSLOG;
	return 0;
}

/* The syslog socket's peer went away (syslogd restarted, or is not there
 * yet) or never was: a new socket, connected if a syslogd now listens, of
 * whatever kind it is. 0 when there is a new socket (connected or not). */
static int syslog_reconnect(void)
{
	int fd = syslog_socket(&log_syslog_addr, &log_syslog_stream);

	if (fd < 0)
		return -1;
	close(log_fd);
	log_fd = fd;
	log_syslog_pid = getpid();
	log_midline = 0;        /* a new stream starts clean */
	return 0;
}

/* What a send to the syslog socket fails with when there is no syslogd at
 * its end (any more): unlike EAGAIN (a stalled one), a reconnect helps. */
static int syslog_gone(int err)
{
	return err == ECONNREFUSED || err == ENOTCONN || err == EPIPE ||
	       err == ECONNRESET || err == EDESTADDRREQ;
}

int log_open(const char *target, const char *ident)
{
	int fd;

	if (target == NULL || strcmp(target, "stderr") == 0) {
		/* With fd 2 closed there is nothing better than plain fd 2,
		 * whose failing writes are counted. */
		if (log_open_fd(STDERR_FILENO) < 0)
			log_close();
		log_journal = stream_is_journal(STDERR_FILENO);
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
	log_journal = 0;
	log_syslog_stream = 0;
	log_to = TO_STDERR;
}

const char *log_target_ident(void)
{
	return log_ident;
}

int log_target_journal(void)
{
	return log_to == TO_STDERR && log_journal;
}

/* A line to syslog's socket: one datagram, or on a stream socket the line
 * and its NUL (after a NUL that ends a line a short send cut). A syslogd
 * that is gone (restarted, or not there yet) is tried once more through a
 * new socket, of whatever kind it now has; a stalled one (EAGAIN) is not.
 * buf[1 + len] is free for the NUL (log.c leaves it so). 0 or -1. */
static int syslog_put(char *buf, size_t len)
{
	if (log_syslog_stream && log_syslog_pid != getpid() && syslog_reconnect() < 0)
		return -1;
	for (int tries = 0; tries < 2; tries++) {
		char *p = buf + 1;
		size_t n = len;
		ssize_t sent;

		if (log_syslog_stream) {
			p[n++] = '\0';
			if (log_midline) {
				*--p = '\0';
				n++;
			}
		}
		sent = send(log_fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (sent == (ssize_t)n) {
			log_midline = 0;
			return 0;
		}
		if (sent > 0) {         /* only a stream takes part of a line */
			log_midline = 1;
			return -1;
		}
		if (tries == 1 || !syslog_gone(errno) || syslog_reconnect() < 0)
			return -1;
	}
	return -1;
}

/* One line out in one call that never waits (but on plain fd 2, before
 * log_open). 0 or -1. */
int log_target_put(char *buf, size_t len)
{
	const char *p = buf + 1;
	ssize_t n;
	int cut;

	if (log_to == TO_SYSLOG)
		return syslog_put(buf, len);
	/* Taken, not just read: two processes that both saw it would each
	 * start with an empty line. */
	cut = log_midline_shared != NULL ? (int)atomic_exchange(log_midline_shared, 0u) : log_midline;
	if (cut) {
		p = buf;
		buf[0] = '\n';
		len++;
	}
	if (log_fd < 0)
		n = write(STDERR_FILENO, p, len);
	else if (!log_send)
		n = write(log_fd, p, len);
	else
		n = send(log_fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n == (ssize_t)len)
		cut = 0;
	else if (n > 0)
		cut = 1;        /* else nothing went out: as unfinished as before */
	if (log_midline_shared != NULL && cut)
		atomic_store(log_midline_shared, 1);
	log_midline = cut;
	return n == (ssize_t)len ? 0 : -1;
}
