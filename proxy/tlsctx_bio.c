#include "tlsctx_int.h"
#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* BoringSSL reads a record's 5-byte header, then its body: two read(2)s
 * per record on a plain socket BIO. This one reads up to a whole record at
 * once and keeps what BoringSSL did not ask for yet, in memory held only
 * while there is some. */
#define READ_AHEAD BUF_CAP    /* what is kept must fit one buf */

struct sockbio {
	int fd;
	/* drained: the last read(2) got less than it asked for, and no
	 * readable event came since; spoke: a read(2) ever returned bytes.
	 * Bits, so the struct stays in glibc's smallest chunk. */
	unsigned drained : 1, spoke : 1;
	struct buf ahead;
};

static BIO_METHOD *sockbio_method;

static int sockbio_read(BIO *b, char *out, int len)
{
	struct sockbio *s = BIO_get_data(b);
	uint8_t tmp[READ_AHEAD + 1];
	ssize_t r;
	size_t n;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	if (s->ahead.len) {
		n = s->ahead.len < (size_t)len ? s->ahead.len : (size_t)len;
		memcpy(out, buf_peek(&s->ahead), n);
		buf_consume(&s->ahead, n);
		return (int)n;
	}
	/* Known empty: answer "try later" without asking the kernel (after a
	 * flight, BoringSSL reads at once for the peer's reply). */
	if (s->drained) {
		BIO_set_retry_read(b);
		return -1;
	}
	if ((size_t)len >= sizeof(tmp)) {
		r = read(s->fd, out, (size_t)len);
		s->drained = r < len;
	} else {
		/* At most READ_AHEAD bytes are left over to keep. */
		size_t want = (size_t)len + READ_AHEAD < sizeof(tmp)
		              ? (size_t)len + READ_AHEAD : sizeof(tmp);
		r = read(s->fd, tmp, want);
		s->drained = r < (ssize_t)want;
		if (r > len && buf_append(&s->ahead, tmp + len, (size_t)r - (size_t)len) < 0)
			return -1;
		if (r > 0)
			memcpy(out, tmp, r > len ? (size_t)len : (size_t)r);
		if (r > len)
			r = len;
	}
	if (r > 0)
		s->spoke = 1;
	if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
		s->drained = 1;
		BIO_set_retry_read(b);
	}
	return (int)r;
}

static int sockbio_write(BIO *b, const char *in, int len)
{
	struct sockbio *s = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	r = send(s->fd, in, (size_t)len, MSG_NOSIGNAL);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)r;
}

static long sockbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int sockbio_destroy(BIO *b)
{
	struct sockbio *s = BIO_get_data(b);

	if (s != NULL) {
		buf_reset(&s->ahead);
		free(s);
	}
	BIO_set_data(b, NULL);
	return 1;
}

static BIO *sockbio_new(int fd)
{
	struct sockbio *s;
	BIO *b;

	if (sockbio_method == NULL) {
		BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOCKET, "portier socket");
		if (m == NULL || !BIO_meth_set_read(m, sockbio_read) ||
		    !BIO_meth_set_write(m, sockbio_write) ||
		    !BIO_meth_set_ctrl(m, sockbio_ctrl) ||
		    !BIO_meth_set_destroy(m, sockbio_destroy)) {
			BIO_meth_free(m);
			return NULL;
		}
		sockbio_method = m;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((b = BIO_new(sockbio_method)) == NULL) {
		free(s);
		return NULL;
	}
	s->fd = fd;
	BIO_set_data(b, s);
	BIO_set_init(b, 1);
	return b;
}
BIO *tlsctx_bio_new(int fd)
{
	return sockbio_new(fd);
}

int tlsctx_bio_fd(BIO *b)
{
	const struct sockbio *s = BIO_get_data(b);
	return s ? s->fd : -1;
}

int tlsctx_bio_record_ready(BIO *b)
{
	const struct sockbio *s = BIO_get_data(b);
	const uint8_t *p;

	if (s == NULL || s->ahead.len < 5)
		return 0;
	/* What is read ahead starts at a record boundary: BoringSSL asks for
	 * a header, then exactly its body. */
	p = buf_peek(&s->ahead);
	return s->ahead.len >= 5 + ((size_t)p[3] << 8 | p[4]);
}

void tlsctx_bio_readable(BIO *b)
{
	struct sockbio *s = BIO_get_data(b);
	if (s != NULL)
		s->drained = 0;
}

int tlsctx_bio_spoke(BIO *b)
{
	const struct sockbio *s = BIO_get_data(b);
	return s != NULL && s->spoke;
}

int tlsctx_bio_drained(BIO *b)
{
	const struct sockbio *s = BIO_get_data(b);
	return s != NULL && s->drained;
}
