/* The LDAP stream filter as the relay drives it: client bytes into `in`,
 * split at every byte; what reaches `out` must be the stream without its
 * StartTLS requests, each answered on `back`; a partial message is held
 * while more may come and passed on at the end of the stream. */
#include "check.h"
#include "filter.h"
#include "ldap_guard.h"

static const uint8_t starttls[] = {
	0x30, 0x1d, 0x02, 0x01, 0x07, 0x77, 0x18, 0x80, 0x16,
	'1', '.', '3', '.', '6', '.', '1', '.', '4', '.', '1', '.', '1', '4', '6', '6',
	'.', '2', '0', '0', '3', '7'};
/* The same request with messageID 7 written in five octets (BER allows
 * leading zeros): still framed, still answered with messageID 7. */
static const uint8_t starttls_long_id[] = {
	0x30, 0x21, 0x02, 0x05, 0x00, 0x00, 0x00, 0x00, 0x07, 0x77, 0x18, 0x80, 0x16,
	'1', '.', '3', '.', '6', '.', '1', '.', '4', '.', '1', '.', '1', '4', '6', '6',
	'.', '2', '0', '0', '3', '7'};
static const uint8_t search[] = {
	0x30, 0x0c, 0x02, 0x01, 0x02, 0x63, 0x07, 0x04, 0x00, 0x0a, 0x01, 0x00, 0x87, 0x00};

struct run {
	struct buf in, out, back;
	uint8_t st[sizeof(struct ldap_guard)];
};

/* Feeds stream in pieces of step bytes (0: whole), calling the filter as
 * the relay would after every read; eof after the last piece. */
static int feed(struct run *r, const uint8_t *p, size_t n, size_t step, int eof)
{
	const char *why = NULL;
	size_t fed = 0;

	memset(r, 0, sizeof(*r));
	while (fed < n) {
		size_t k = step && n - fed > step ? step : n - fed;
		buf_append(&r->in, p + fed, k);
		fed += k;
		if (filter_ldap.up(r->st, &r->in, &r->out, &r->back, 0, &why) < 0)
			return -1;
	}
	if (eof && filter_ldap.up(r->st, &r->in, &r->out, &r->back, 1, &why) < 0)
		return -1;
	return 0;
}

static void done(struct run *r)
{
	buf_reset(&r->in);
	buf_reset(&r->out);
	buf_reset(&r->back);
}

int main(void)
{
	uint8_t stream[256], want[256];
	size_t n = 0, w = 0;
	struct run r;

	CHECK(filter_ldap.down == NULL);   /* replies pass without a copy */
	memcpy(stream + n, search, sizeof(search)); n += sizeof(search);
	memcpy(stream + n, starttls, sizeof(starttls)); n += sizeof(starttls);
	memcpy(stream + n, search, sizeof(search)); n += sizeof(search);
	memcpy(stream + n, starttls_long_id, sizeof(starttls_long_id)); n += sizeof(starttls_long_id);
	memcpy(stream + n, search, sizeof(search)); n += sizeof(search);
	for (int i = 0; i < 3; i++) {
		memcpy(want + w, search, sizeof(search));
		w += sizeof(search);
	}
	for (size_t step = 0; step <= n; step++) {
		CHECK(feed(&r, stream, n, step, 1) == 0);
		CHECK(r.out.len == w && memcmp(buf_peek(&r.out), want, w) == 0);
		CHECK(r.in.len == 0);
		/* Two operationsError responses, both for messageID 7. */
		if (r.back.len > 20) {
			const uint8_t *b = buf_peek(&r.back);
			size_t first = 2 + b[1];
			CHECK(b[0] == 0x30 && b[4] == 7 && b[5] == 0x78);
			CHECK(first < r.back.len && b[first] == 0x30 && b[first + 4] == 7);
		} else {
			CHECK(0);
		}
		done(&r);
	}

	/* A lone 0x30 is a partial header: held (nothing for the backend,
	 * no answer) while the stream goes on, passed on at its end. */
	CHECK(feed(&r, (const uint8_t *)"\x30", 1, 0, 0) == 0);
	CHECK(r.out.len == 0 && r.in.len == 1 && r.back.len == 0);
	{
		const char *why = NULL;
		CHECK(filter_ldap.up(r.st, &r.in, &r.out, &r.back, 1, &why) == 0);
	}
	CHECK(r.out.len == 1 && r.in.len == 0);
	done(&r);

	/* A search split at every byte with the stream going on: every byte
	 * of a complete message is passed before the end. */
	for (size_t step = 1; step <= sizeof(search); step++) {
		CHECK(feed(&r, search, sizeof(search), step, 0) == 0);
		CHECK(r.out.len == sizeof(search) && r.in.len == 0);
		done(&r);
	}
	return CHECK_DONE();
}
