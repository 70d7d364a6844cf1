/*
 * The socket BIO's read-ahead bookkeeping (proxy/tlsctx_bio.c), against a
 * model of the bytes. The BIO reads a whole record at once and keeps what
 * BoringSSL did not ask for yet; tlsctx_ready() trusts its answer to "is a
 * whole record read ahead?" to decide whether a connection goes on the run
 * queue. A wrong yes spins a worker; a wrong no strands a record until the
 * client sends more; a lost or repeated byte corrupts the stream.
 *
 * The input is a script. Its first bytes give the lengths of up to 32
 * records (two bytes each, up to 2^14 + 2048 as BoringSSL accepts), ended by
 * a zero pair; the records are written in order, their bodies a known
 * pattern. The rest are up to 64 operations, one byte each (plus
 * arguments):
 *   0  the peer writes the next N bytes of the stream (N from two bytes)
 *   1  the poller says readable
 *   2  a reader step, as BoringSSL's SSL_read does: read the header (5
 *      bytes, asking for what is still missing), then exactly the body,
 *      until a record is whole or the BIO says "try later" or EOF
 *   3  the peer half-closes (EOF after what it wrote)
 * After each operation the BIO must agree with the model: every byte
 * delivered once and in order; what it holds ahead = written - delivered -
 * what is still in the kernel; "a whole record is ready" exactly when the
 * reader is between records and the next one is all read ahead; "drained"
 * only when the kernel held nothing, or the peer wrote since; "try later"
 * only when nothing is ahead and the kernel is empty or known drained.
 */
#include <openssl/bio.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "tlsctx_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECORDS 32
#define MAX_BODY (16384 + 2048)
#define STREAM_MAX (MAX_RECORDS * (5 + MAX_BODY))

static uint8_t stream[STREAM_MAX];

struct model {
	size_t total;          /* bytes in the stream */
	size_t written;        /* given to the kernel by the peer */
	size_t delivered;      /* returned by the BIO */
	size_t rec_start;      /* offset of the record the reader is on */
	int shut;              /* the peer half-closed */
	int wrote_since_short; /* the peer wrote after the BIO read short */
};

/* The reader holds part of a record. */
static int in_record(const struct model *m)
{
	return m->delivered != m->rec_start;
}

static size_t kernel_len(int fd)
{
	int n = 0;

	if (ioctl(fd, FIONREAD, &n) < 0 || n < 0)
		abort();
	return (size_t)n;
}

static size_t body_len(size_t rec)
{
	return (size_t)stream[rec + 3] << 8 | stream[rec + 4];
}

/* Bodies are a pattern of the offset, laid down once; each run writes its
 * record headers over it and puts the pattern back after. */
static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 7 + 1);
}

static void restore(size_t total)
{
	for (size_t rec = 0; rec < total; rec += 5 + body_len(rec))
		for (size_t k = 0; k < 5; k++)
			stream[rec + k] = pattern(rec + k);
}

static size_t build_stream(const uint8_t **d, size_t *n)
{
	static int laid;
	size_t total = 0;

	if (!laid) {
		for (size_t i = 0; i < STREAM_MAX; i++)
			stream[i] = pattern(i);
		laid = 1;
	}
	for (int i = 0; i < MAX_RECORDS && *n >= 2; i++) {
		size_t len = ((size_t)(*d)[0] << 8 | (*d)[1]) % (MAX_BODY + 1);

		*d += 2;
		*n -= 2;
		if (len == 0)
			break;
		stream[total] = 23;      /* application data */
		stream[total + 1] = 3;
		stream[total + 2] = 3;
		stream[total + 3] = (uint8_t)(len >> 8);
		stream[total + 4] = (uint8_t)len;
		total += 5 + len;
	}
	return total;
}

static void check(BIO *b, int fd, const struct model *m)
{
	size_t kern = kernel_len(fd);
	size_t ahead = m->written - m->delivered - kern;
	int want_ready = 0;

	if (m->written < m->delivered + kern || ahead > BUF_CAP)
		abort();
	/* Control is back with the caller: the reader is between records, or
	 * holds part of one and nothing is ahead of it. */
	if (in_record(m) && ahead != 0)
		abort();
	if (!in_record(m) && m->delivered < m->total && ahead >= 5)
		want_ready = ahead >= 5 + body_len(m->delivered);
	if (tlsctx_bio_record_ready(b) != want_ready)
		abort();
	if (tlsctx_bio_drained(b) && kern > 0 && !m->wrote_since_short)
		abort();
}

/* One SSL_read's worth of BIO reads. */
static void reader_step(BIO *b, int fd, struct model *m)
{
	uint8_t out[5 + MAX_BODY];
	size_t kern = kernel_len(fd);   /* the kernel's count, kept across reads */

	for (int guard = 0; guard < 64; guard++) {
		size_t have = m->delivered - m->rec_start;
		size_t ahead = m->written - m->delivered - kern;
		int was_drained = tlsctx_bio_drained(b);
		size_t need;
		int r;

		if (m->rec_start >= m->total)
			return;                       /* the stream is all read */
		need = have < 5 ? 5 - have : 5 + body_len(m->rec_start) - have;
		r = BIO_read(b, out, (int)need);
		kern = kernel_len(fd);
		/* Drained right after a read: the kernel was emptied by it (or,
		 * served from ahead, the flag is older than the peer's bytes). */
		if (tlsctx_bio_drained(b) && kern == 0)
			m->wrote_since_short = 0;
		if (r > 0) {
			if ((size_t)r > need ||
			    memcmp(out, stream + m->delivered, (size_t)r) != 0)
				abort();
			m->delivered += (size_t)r;
			if (m->delivered == m->rec_start + 5 + body_len(m->rec_start)) {
				m->rec_start = m->delivered;
				return;               /* a whole record: SSL_read returns */
			}
			continue;
		}
		if (r == 0) {
			/* EOF: only once the peer closed and all of it was read. */
			if (!m->shut || ahead != 0 || kern != 0)
				abort();
			return;
		}
		/* "Try later": nothing ahead, and the kernel had nothing or the
		 * BIO knew it was drained (the poller will say when it is not). */
		if (!BIO_should_retry(b) || ahead != 0 || (kern > 0 && !was_drained))
			abort();
		return;
	}
	abort();    /* a record takes at most a few reads */
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct model m = {0};
	int sv[2];
	BIO *b;

	m.total = build_stream(&d, &n);
	if (m.total == 0)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		abort();
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(sv[1], F_SETFL, O_NONBLOCK) < 0)
		abort();
	if ((b = tlsctx_bio_new(sv[0])) == NULL)
		abort();

	for (size_t ops = 0; n > 0 && ops < 64; ops++) {
		uint8_t op = d[0] % 4;
		d++;
		n--;
		switch (op) {
		case 0: {
			size_t want, left = m.total - m.written;
			ssize_t w;

			if (n < 2 || m.shut)
				break;
			want = ((size_t)d[0] << 8 | d[1]) % 20000 + 1;
			d += 2;
			n -= 2;
			if (want > left)
				want = left;
			if (want == 0)
				break;
			w = write(sv[1], stream + m.written, want);
			if (w < 0 && errno != EAGAIN)
				abort();
			if (w > 0) {
				m.written += (size_t)w;
				m.wrote_since_short = 1;
			}
			break;
		}
		case 1:
			/* From here a read asks the kernel again. */
			tlsctx_bio_readable(b);
			if (tlsctx_bio_drained(b))
				abort();
			break;
		case 2:
			reader_step(b, sv[0], &m);
			break;
		case 3:
			if (!m.shut && shutdown(sv[1], SHUT_WR) == 0)
				m.shut = 1;
			break;
		}
		check(b, sv[0], &m);
	}
	BIO_free(b);
	close(sv[0]);
	close(sv[1]);
	restore(m.total);
	return 0;
}
