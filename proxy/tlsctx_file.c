/*
 * Reading the files the TLS module is given (cert, key, ocsp,
 * ticket_keys): the master reads them at start, on -t and on every reload,
 * with the workers it supervises waiting on it. So a file is opened without
 * blocking and refused unless it is a regular file (a FIFO or a device
 * named by mistake would hold the master, /dev/urandom would feed the PEM
 * reader for ever), its length is bounded, and it is read once, whole:
 * what is checked is what is served, even if the file is replaced meanwhile.
 */

#include "tlsctx_int.h"

#include <openssl/mem.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tlsctx_file_read(const char *path, size_t max, const char *holds,
                     struct tlsfile *f, char *why, size_t whylen)
{
	struct stat st;
	ssize_t r = 0;
	size_t want;
	int fd;

	memset(f, 0, sizeof(*f));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		goto fail;
	}
	if ((uintmax_t)st.st_size > max) {
		/* Most likely another file named by mistake: say what this
		 * one should hold. */
		snprintf(why, whylen, "longer than %zu bytes, too long for %s", max, holds);
		goto fail;
	}
	f->mode = st.st_mode;
	want = (size_t)st.st_size;
	/* One byte more, for a NUL: text readers may take it as a string. */
	if ((f->p = malloc(want + 1)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	while (f->len < want &&
	       ((r = read(fd, f->p + f->len, want - f->len)) > 0 ||
	        (r < 0 && errno == EINTR)))
		if (r > 0)
			f->len += (size_t)r;
	if (r < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		goto fail;
	}
	f->p[f->len] = '\0';
	close(fd);
	return 0;
fail:
	tlsctx_file_free(f);
	close(fd);
	return -1;
}

void tlsctx_file_free(struct tlsfile *f)
{
	/* Key and ticket files are secrets: wiped whatever they were. */
	if (f->p != NULL) {
		OPENSSL_cleanse(f->p, f->len);
		free(f->p);
	}
	f->p = NULL;
	f->len = 0;
}
