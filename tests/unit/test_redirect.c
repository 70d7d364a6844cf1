#include "check.h"
#include "redirect.h"

#include <stdlib.h>

/* Feeds req whole, then one byte at a time (as a slow client would), and
 * checks both give the same verdict and response. */
static enum redirect_verdict run(const char *req, int port, int acme, char *resp, size_t resplen)
{
	struct buf out = {0};
	enum redirect_verdict v = REDIRECT_AGAIN, whole;
	size_t len = strlen(req), i;

	whole = redirect_handle((const uint8_t *)req, len, port, acme, &out);
	snprintf(resp, resplen, "%.*s", (int)out.len, out.len ? (const char *)buf_peek(&out) : "");
	buf_reset(&out);
	for (i = 1; i <= len; i++) {
		v = redirect_handle((const uint8_t *)req, i, port, acme, &out);
		if (v != REDIRECT_AGAIN)
			break;
		CHECK(out.len == 0);
	}
	CHECK(v == whole);
	if (v == REDIRECT_RESPOND)
		CHECK(out.len == strlen(resp) && memcmp(buf_peek(&out), resp, out.len) == 0);
	buf_reset(&out);
	return whole;
}

static int has(const char *s, const char *needle)
{
	return strstr(s, needle) != NULL;
}

int main(void)
{
	char r[16384];

	CHECK(run("GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: www.example.org\r\n\r\n", 443, 0, r, sizeof(r)) == REDIRECT_RESPOND);
	CHECK(has(r, "HTTP/1.1 301 "));
	CHECK(has(r, "\r\nLocation: https://www.example.org/a/b?x=1&y=2\r\n"));

	/* The client's port is dropped, redirect_port added unless 443. */
	run("HEAD / HTTP/1.1\r\nHost: www.example.org:80\r\n\r\n", 8443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 301 ") && has(r, "Location: https://www.example.org:8443/\r\n"));
	run("GET /x HTTP/1.1\r\nhost: [::1]:8080\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "Location: https://[::1]/x\r\n"));

	/* Methods other than GET/HEAD get 308, which keeps the method. */
	run("POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 308 ") && has(r, "Location: https://h/form\r\n"));

	/* Bare LF line ends are accepted. */
	run("GET /lf HTTP/1.0\nHost: h\n\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "301") && has(r, "https://h/lf"));

	/* Absolute form: the URL's host wins. */
	run("GET http://abs.example/p?q HTTP/1.1\r\nHost: other\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "Location: https://abs.example/p?q\r\n"));

	/* 400: no Host, two Hosts, bad Host, bad request line, folding. */
	run("GET / HTTP/1.1\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 400 ") && has(r, "no Host"));
	run("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 400 "));
	run("GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 400 "));
	run("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 400 "));
	run("GARBAGE\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 400 "));
	run("GET / SMTP/1.0\r\nHost: a\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 400 "));
	run("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 400 "));
	run("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 400 "));

	/* ACME challenges go to the backend only when one is configured. */
	CHECK(run("GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: h\r\n\r\n", 443, 1, r, sizeof(r)) == REDIRECT_ACME);
	CHECK(run("GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: h\r\n\r\n", 443, 0, r, sizeof(r)) == REDIRECT_RESPOND);
	CHECK(has(r, "https://h/.well-known/acme-challenge/tok"));

	/* Oversized heads: 431, whether the end never comes or comes late. */
	{
		static char big[REDIRECT_MAX_HEAD + 200];
		struct buf out = {0};
		memset(big, 'a', sizeof(big));
		memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
		CHECK(redirect_handle((uint8_t *)big, REDIRECT_MAX_HEAD - 1, 443, 0, &out) == REDIRECT_AGAIN);
		CHECK(redirect_handle((uint8_t *)big, REDIRECT_MAX_HEAD, 443, 0, &out) == REDIRECT_RESPOND);
		CHECK(out.len && has((const char *)buf_peek(&out), "431"));
		buf_reset(&out);
		memcpy(big + sizeof(big) - 4, "\r\n\r\n", 4);
		CHECK(redirect_handle((uint8_t *)big, sizeof(big), 443, 0, &out) == REDIRECT_RESPOND);
		buf_reset(&out);
	}

	/* A long but legal target is carried whole into Location. */
	{
		static char req[REDIRECT_MAX_HEAD];
		char path[6000];
		memset(path, 'p', sizeof(path) - 1);
		path[0] = '/';
		path[sizeof(path) - 1] = '\0';
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", path);
		run(req, 443, 0, r, sizeof(r));
		CHECK(has(r, path));
	}
	return CHECK_DONE();
}
