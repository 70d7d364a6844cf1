#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy_header.h"
#include "proxy_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int same_addr(const struct conn_addr *a, const struct conn_addr *b)
{
	return a->family == b->family && a->port == b->port &&
	       memcmp(a->ip, b->ip, a->family == AF_INET ? 4 : 16) == 0;
}

/* The PROXY header reader on raw bytes. Oracles: a header is whole within
 * the input and within its version's bound; no prefix of it is anything
 * but "need more"; one byte less never turns an error into a header or
 * changes a header; "need more" only below the longest header; and an
 * address read back through portier's own writer reads the same. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_parsed p, q;
	const char *why, *why2;
	enum proxy_parse_result r = proxy_parse(data, size, &p, &why);

	if (size > 0) {
		enum proxy_parse_result r2 = proxy_parse(data, size - 1, &q, &why2);
		if (r2 == PROXY_PARSE_OK && (r != PROXY_PARSE_OK || q.len != p.len))
			abort();
		if (r2 == PROXY_PARSE_ERROR && r != PROXY_PARSE_ERROR)
			abort();
	}
	if (r == PROXY_PARSE_AGAIN) {
		if (size >= PROXY_PARSE_MAX)
			abort();
		return 0;
	}
	if (r == PROXY_PARSE_ERROR) {
		if (why == NULL)
			abort();
		return 0;
	}
	if (r != PROXY_PARSE_OK || p.len > size || p.len == 0 ||
	    (p.version == 1 && p.len > PROXY_V1_MAX) ||
	    (p.version == 2 && p.len > PROXY_PARSE_MAX) ||
	    (p.version != 1 && p.version != 2))
		abort();
	if (proxy_parse(data, p.len - 1, &q, &why2) != PROXY_PARSE_AGAIN)
		abort();
	if (p.local)
		return 0;
	if ((p.src.family != AF_INET && p.src.family != AF_INET6) ||
	    p.src.family != p.dst.family)
		abort();
	/* The writer makes a mapped address IPv4 again: compare the rest. */
	if (p.src.family == AF_INET6 && (memcmp(p.src.ip, v4_mapped, 12) == 0 ||
	    memcmp(p.dst.ip, v4_mapped, 12) == 0))
		return 0;
	{
		struct buf b = {0};
		if (proxy_header(&b, (enum proxy_version)p.version, &p.src, &p.dst, NULL) < 0)
			abort();
		if (proxy_parse(buf_peek(&b), b.len, &q, &why2) != PROXY_PARSE_OK ||
		    q.len != b.len || q.local || !same_addr(&p.src, &q.src) ||
		    !same_addr(&p.dst, &q.dst))
			abort();
		buf_reset(&b);
	}
	return 0;
}
