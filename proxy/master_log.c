/*
 * The log after start: SIGUSR1 opens the file again (logrotate moved it
 * away), a reload applies a changed `log`. The master opens the new target
 * and hands it to every worker of the current generation (and of a reload
 * under way) over the worker's channel: a worker has given up root and
 * may not be able to open the file, nor reach its directory, itself.
 *
 * One message per change: a byte for the kind of target ('F' file, 'S'
 * syslog, 'E' stderr), with the file's descriptor attached (SCM_RIGHTS)
 * for 'F'. Workers of earlier generations, draining, keep what they have
 * until they end.
 */

#include "master_int.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The master's current target down one worker's channel, without
 * waiting. 0 or -1 (errno). */
static int send_target(int chan)
{
	union {
		struct cmsghdr h;
		char room[CMSG_SPACE(sizeof(int))];
	} u;
	char kind = log_kind();
	struct iovec iov = {.iov_base = &kind, .iov_len = 1};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	int fd = log_file_fd();

	memset(&u, 0, sizeof(u));
	if (kind == 'F') {
		if (fd < 0) {
			errno = EBADF;
			return -1;
		}
		msg.msg_control = u.room;
		msg.msg_controllen = sizeof(u.room);
		u.h.cmsg_level = SOL_SOCKET;
		u.h.cmsg_type = SCM_RIGHTS;
		u.h.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&u.h), &fd, sizeof(int));
	}
	return sendmsg(chan, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == 1 ? 0 : -1;
}

static void tell_slots(struct slot *sl, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (sl[i].pid != 0 && sl[i].chan >= 0 && send_target(sl[i].chan) < 0)
			log_warn("worker %u (pid %ld) keeps its log: cannot pass it the new "
			         "one", i + 1, (long)sl[i].pid);
}

static void tell_workers(struct sup *s)
{
	tell_slots(s->slots, s->nslots);
	if (s->next != NULL)
		tell_slots(s->next->slots, s->next->nslots);
}

void master_log_reopen(struct sup *s)
{
	char path[4096];

	if (log_kind() != 'F') {
		log_notice("SIGUSR1: the log is not a file; nothing to reopen");
		return;
	}
	snprintf(path, sizeof(path), "%s", log_file_path());
	log_notice("SIGUSR1: reopening the log %s", path);
	if (log_reopen() < 0) {
		int e = errno;
		log_warn("SIGUSR1: cannot reopen the log %s; logging on to the old file",
		         path);
		if (s->log_lost_at == 0) {
			s->log_lost_at = time(NULL);
			s->log_lost_errno = e;
		}
		return;
	}
	log_notice("log reopened (SIGUSR1): %s", path);
	/* That warning went to the old file, which may be gone (its directory
	 * removed): the new one says it, so that the gap is not silent. */
	if (s->log_lost_at != 0) {
		char when[32];
		struct tm tm;

		gmtime_r(&s->log_lost_at, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
		log_warnx("SIGUSR1: the log could not be reopened from %s (%s); the lines "
		          "logged until now went to the file it had before", when,
		          strerror(s->log_lost_errno));
		s->log_lost_at = 0;
	}
	tell_workers(s);
}

/* The target the master logs to, as a `log` value: the one last opened,
 * which is not the configuration's when a reload could not open its own. */
static void current_target(char *out, size_t len)
{
	char k = log_kind();

	snprintf(out, len, "%s", k == 'F' ? log_file_path() : k == 'S' ? "syslog" : "stderr");
}

void master_log_follow(struct sup *s, const char *now)
{
	char was[4096];

	/* Against what is open, not the `log` the last configuration
	 * named: after a reload that could not open its file, the next one
	 * with the same value tries again (its directory may be there now). */
	current_target(was, sizeof(was));
	if (s->m->foreground || strcmp(was, now) == 0)
		return;
	/* Detached, fd 2 is /dev/null: the standard error portier was
	 * started with is kept only while the log goes there, so it cannot
	 * be gone back to. Moving there would lose every line. */
	if (strcmp(now, "stderr") == 0) {
		log_warnx("reload: the log cannot move to stderr: portier has detached from "
		          "the standard error it was started with (start it with log = stderr, "
		          "or run it with -f); logging on to %s", was);
		return;
	}
	log_notice("reload: the log moves to %s", now);
	if (log_open(now, "portier") < 0) {
		log_warn("reload: cannot open log %s; logging on to %s (the next reload tries "
		         "again)", now, was);
		return;
	}
	log_notice("reload: log opened here (it was %s)", was);
	tell_workers(s);
}

int master_log_heard(struct master *m)
{
	for (int k = 0; k < 16; k++) {
		union {
			struct cmsghdr h;
			char room[CMSG_SPACE(sizeof(int))];
		} u;
		char kind;
		struct iovec iov = {.iov_base = &kind, .iov_len = 1};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1,
		                     .msg_control = u.room, .msg_controllen = sizeof(u.room)};
		struct cmsghdr *h;
		int fd = -1;
		ssize_t r = recvmsg(m->chan, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return 1;
		if (r <= 0)
			return 0;
		for (h = CMSG_FIRSTHDR(&msg); h != NULL; h = CMSG_NXTHDR(&msg, h))
			if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
			    h->cmsg_len == CMSG_LEN(sizeof(int)))
				memcpy(&fd, CMSG_DATA(h), sizeof(int));
		if (kind == 'F' && fd >= 0) {
			if (log_adopt_file(fd) < 0)
				log_warn("cannot log to the file the master passed");
			else
				log_notice("log reopened");
			continue;
		}
		if (fd >= 0)
			close(fd);
		if (kind == 'S' || kind == 'E') {
			if (log_open(kind == 'S' ? "syslog" : "stderr", "portier") < 0)
				log_warn("cannot open the log the master asked for");
			else
				log_notice("log reopened");
		}
	}
	return 1;
}
