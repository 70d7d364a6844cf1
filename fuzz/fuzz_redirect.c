/* libFuzzer target for the redirect listener's request-head parser.
 * Growing prefixes of the input (every one of a short input, at most 64 of
 * a long one), the whole input last, are offered as bytes arriving one read
 * at a time would be; the response must stay well-formed whatever the client sent,
 * only a strict http-01 challenge head may be passed to acme_backend, and
 * a HEAD request's response is a head alone. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redirect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PREFIX "/.well-known/acme-challenge/"

/* An independent reading of what may reach acme_backend: the head ends
 * with its first blank line, its request line is GET or HEAD of PREFIX
 * plus 1..255 base64url characters (after "http://host" in the absolute
 * form), and it has exactly one Host line (RFC 9112 §3.2, whatever the
 * target's form). Aborts if the parser let anything else through. */
static void check_acme(const uint8_t *data, size_t n, size_t head_len)
{
	const char *p = (const char *)data, *sp1, *sp2, *t;
	size_t tn;
	int hosts = 0;

	if (head_len == 0 || head_len > n || p[head_len - 1] != '\n')
		abort();
	if (memmem(p, head_len - 1, "\n\n", 2) || memmem(p, head_len - 1, "\n\r\n", 3))
		abort();   /* an earlier blank line: head_len takes in a second request */
	if ((sp1 = memchr(p, ' ', head_len)) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', head_len - (size_t)(sp1 + 1 - p))) == NULL)
		abort();
	if (!((sp1 - p == 3 && memcmp(p, "GET", 3) == 0) ||
	      (sp1 - p == 4 && memcmp(p, "HEAD", 4) == 0)))
		abort();
	t = sp1 + 1;
	tn = (size_t)(sp2 - t);
	if (tn > 7 && strncasecmp(t, "http://", 7) == 0) {
		const char *slash = memchr(t + 7, '/', tn - 7);
		if (slash == NULL)
			abort();
		tn -= (size_t)(slash - t);
		t = slash;
	}
	if (tn <= strlen(PREFIX) || tn > strlen(PREFIX) + 255 ||
	    memcmp(t, PREFIX, strlen(PREFIX)) != 0)
		abort();
	for (size_t i = strlen(PREFIX); i < tn; i++)
		if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z') ||
		      (t[i] >= '0' && t[i] <= '9') || t[i] == '-' || t[i] == '_'))
			abort();
	for (size_t i = 0; i + 6 <= head_len; i++)
		if (p[i] == '\n' && strncasecmp(p + i + 1, "host:", 5) == 0)
			hosts++;
	if (hosts != 1)
		abort();
}

/* Empty lines (CRLF or LF) at the start of p[0..n), as bytes. */
static size_t skipped(const uint8_t *p, size_t n)
{
	size_t i = 0;

	for (;;) {
		if (i < n && p[i] == '\n')
			i++;
		else if (i + 1 < n && p[i] == '\r' && p[i + 1] == '\n')
			i += 2;
		else
			return i;
	}
}

/* The response in out answers a HEAD (head) or not: a HEAD's is the head
 * alone; any other's 4xx carries its reason in a body, a redirect none. */
static void check_body(const struct buf *out, const char *head_end, int head)
{
	const char *p = (const char *)buf_peek(out);
	size_t body = out->len - (size_t)(head_end + 4 - p);

	if (head ? body != 0 : (p[9] == '4') != (body > 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A bounded number of prefixes keeps each run fast on long inputs; the
	 * last one is always the whole input, whatever the step. */
	size_t step = size / 64 + 1;

	for (size_t n = 0; n < size;) {
		struct buf out = {0};
		struct redirect_req rq = {1, 1, -1, ""};
		enum redirect_verdict v;
		size_t off;
		int head;

		n = size - n > step ? n + step : size;
		v = redirect_handle(data, n, 8443, n & 1, &out, &rq);
		off = skipped(data, n);
		head = n - off >= 5 && memcmp(data + off, "HEAD ", 5) == 0;
		if (rq.head != head)
			abort();
		if (v == REDIRECT_RESPOND) {
			const char *p = (const char *)buf_peek(&out);
			const char *head_end;
			if (p == NULL || out.len < 12 || memcmp(p, "HTTP/1.1 ", 9) != 0)
				abort();
			/* The log says why of a refusal, and of nothing else. */
			if ((rq.refusal == NULL) != (p[9] == '3'))
				abort();
			/* No header injection: exactly one blank line, at the end
			 * of the head, and no bare CR or LF inside it. */
			head_end = memmem(p, out.len, "\r\n\r\n", 4);
			if (head_end == NULL)
				abort();
			for (const char *q = p; q < head_end; q++)
				if ((*q == '\n' && q[-1] != '\r') || (*q == '\r' && q[1] != '\n'))
					abort();
			check_body(&out, head_end, head);
			if (rq.head_off != 0 || rq.head_len != 0)
				abort();
		} else if (out.len != 0 || rq.refusal != NULL) {
			abort();
		} else if (v == REDIRECT_ACME) {
			struct redirect_req again = {1, 1, -1, ""};
			/* The head starts after the empty lines, and only there. */
			if (rq.head_off != off)
				abort();
			check_acme(data + off, n - off, rq.head_len);
			/* The head alone, without what was before or follows it,
			 * gets the same verdict. */
			if (redirect_handle(data + off, rq.head_len, 8443, 1, &out,
			    &again) != REDIRECT_ACME || again.head_off != 0 ||
			    again.head_len != rq.head_len || again.head != head)
				abort();
		} else if (rq.head_off != 0 || rq.head_len != 0) {
			abort();
		}
		buf_reset(&out);
		if (v != REDIRECT_AGAIN)
			break;
	}
	return 0;
}
