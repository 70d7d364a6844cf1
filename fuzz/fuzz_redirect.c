/* libFuzzer target for the redirect listener's request-head parser. Every
 * prefix of the input is offered, as bytes arriving one read at a time
 * would be; the response must stay well-formed whatever the client sent. */
#include <stdlib.h>
#include <string.h>

#include "redirect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A bounded number of prefixes keeps each run fast on long inputs. */
	size_t step = size / 64 + 1;

	for (size_t n = 1; n <= size; n += (n == size ? 1 : step)) {
		struct buf out = {0};
		enum redirect_verdict v = redirect_handle(data, n < size ? n : size, 8443,
		                                          n & 1, &out);
		if (v == REDIRECT_RESPOND) {
			const char *p = (const char *)buf_peek(&out);
			const char *head_end;
			if (p == NULL || out.len < 12 || memcmp(p, "HTTP/1.1 ", 9) != 0)
				abort();
			/* No header injection: exactly one blank line, at the end
			 * of the head, and no bare CR or LF inside it. */
			head_end = memmem(p, out.len, "\r\n\r\n", 4);
			if (head_end == NULL)
				abort();
			for (const char *q = p; q < head_end; q++)
				if ((*q == '\n' && q[-1] != '\r') || (*q == '\r' && q[1] != '\n'))
					abort();
		} else if (out.len != 0) {
			abort();
		}
		buf_reset(&out);
		if (v != REDIRECT_AGAIN)
			break;
		if (n == size)
			break;
	}
	return 0;
}
