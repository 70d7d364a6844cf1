#include "stats.h"

#include <string.h>

/*
 * The metrics endpoint's reading of a request line: pure, so that the
 * fuzzer (fuzz/fuzz_stats_request.c) and the unit tests call it as the
 * worker does. Only the first line counts; headers are not read.
 */

int stats_reply(const char *req, size_t len, int *head_only)
{
	const char *sp1, *sp2, *end = memchr(req, '\n', len);
	size_t mlen, plen;

	*head_only = 0;
	/* The version is compared within the line, by length: the head is
	 * not NUL-terminated, and strncmp() may read on past a mismatch
	 * (the fuzzer's hook of it did, off the end of a short input). */
	if (end == NULL || (sp1 = memchr(req, ' ', (size_t)(end - req))) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1))) == NULL ||
	    (size_t)(end - sp2 - 1) < 7 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return 400;
	mlen = (size_t)(sp1 - req);
	plen = (size_t)(sp2 - sp1 - 1);
	/* A query string changes nothing: Prometheus may add one. */
	for (size_t i = 0; i < plen; i++)
		if (sp1[1 + i] == '?')
			plen = i;
	if (!(plen == 8 && memcmp(sp1 + 1, "/metrics", 8) == 0))
		return 404;
	if (mlen == 4 && memcmp(req, "HEAD", 4) == 0)
		*head_only = 1;
	else if (!(mlen == 3 && memcmp(req, "GET", 3) == 0))
		return 405;
	return 200;
}
