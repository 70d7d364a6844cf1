#include "wfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

FILE *wfile_open(const char *path)
{
	struct stat st;
	FILE *f;
	int fd, e;

	/* What is there is judged first, so that a FIFO or a symlink is
	 * refused for what it is (EINVAL); the open checks again, a FIFO
	 * put there meanwhile failing at once (O_NONBLOCK: ENXIO without a
	 * reader) rather than waiting for one. No O_TRUNC before the type
	 * is known. */
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return NULL;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	if (ftruncate(fd, 0) < 0 || (f = fdopen(fd, "w")) == NULL) {
		e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	return f;
}

int wfile_holds(const char *path, const char *text)
{
	size_t want = strlen(text), got = 0;
	struct stat st;
	char buf[4096];
	ssize_t r;
	int fd, same = 1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (off_t)want != st.st_size) {
		close(fd);
		return 0;
	}
	/* To its end: a file that grew since fstat is not it. */
	while (same && (r = read(fd, buf, sizeof(buf))) > 0) {
		if (got + (size_t)r > want || memcmp(buf, text + got, (size_t)r) != 0)
			same = 0;
		got += (size_t)r;
	}
	close(fd);
	return same && got == want;
}
