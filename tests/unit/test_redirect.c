#include "check.h"
#include "redirect.h"

#include <stdlib.h>

/* What run()'s last verdict on the whole input found. */
static struct redirect_req run_rq;

/* Feeds req whole, then one byte at a time (as a slow client would), and
 * checks both give the same verdict, response and head. */
static enum redirect_verdict run(const char *req, int port, int acme, char *resp, size_t resplen)
{
	struct buf out = {0};
	enum redirect_verdict v = REDIRECT_AGAIN, whole;
	size_t len = strlen(req), i;
	struct redirect_req rq;

	whole = redirect_handle((const uint8_t *)req, len, port, acme, &out, &run_rq);
	CHECK(whole == REDIRECT_ACME ? run_rq.head_len > 0 && run_rq.head_off + run_rq.head_len <= len :
	      run_rq.head_len == 0 && run_rq.head_off == 0);
	snprintf(resp, resplen, "%.*s", (int)out.len, out.len ? (const char *)buf_peek(&out) : "");
	buf_reset(&out);
	for (i = 1; i <= len; i++) {
		v = redirect_handle((const uint8_t *)req, i, port, acme, &out, &rq);
		if (v != REDIRECT_AGAIN)
			break;
		CHECK(out.len == 0 && rq.head_len == 0 && rq.refusal == NULL);
	}
	CHECK(v == whole);
	CHECK((rq.refusal == NULL) == (run_rq.refusal == NULL));
	CHECK(rq.head == run_rq.head);
	/* The verdict comes with the head's last byte, and names that byte. */
	if (v == REDIRECT_ACME)
		CHECK(rq.head_off + rq.head_len == i && rq.head_len == run_rq.head_len &&
		      rq.head_off == run_rq.head_off);
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
	CHECK(run_rq.refusal == NULL);

	/* A refusal says why for the log, without the client's bytes. */
	run("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(run_rq.refusal && strcmp(run_rq.refusal, "more than one Host header") == 0);
	run("GET /.well-known/acme-challenge/t?x HTTP/1.1\r\nHost: a\r\n\r\n", 443, 1, r, sizeof(r));
	CHECK(run_rq.refusal && strcmp(run_rq.refusal, "ACME challenge: no query allowed") == 0);
	run("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(run_rq.refusal && strcmp(run_rq.refusal, "malformed request") == 0);

	/* The client's port is dropped, redirect_port added unless 443. */
	run("HEAD / HTTP/1.1\r\nHost: www.example.org:80\r\n\r\n", 8443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 301 ") && has(r, "Location: https://www.example.org:8443/\r\n"));
	run("GET /x HTTP/1.1\r\nhost: [::1]:8080\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "Location: https://[::1]/x\r\n"));

	/* Methods other than GET/HEAD get 308, which keeps the method. */
	run("POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 308 ") && has(r, "Location: https://h/form\r\n"));
	/* Each with its own reason phrase. */
	CHECK(has(r, "HTTP/1.1 308 Permanent Redirect\r\n"));
	run("GET / HTTP/1.1\r\nHost: h\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 301 Moved Permanently\r\n"));

	/* Host: letters a to z in any case, digits, "-", "." and "_"; an IP
	 * literal of hex digits, ":" and "." in brackets; at most 255
	 * bytes. Anything else is a 400, and nothing of it in a Location. */
	run("GET / HTTP/1.1\r\nHost: Zz_z-9.example\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "Location: https://Zz_z-9.example/\r\n"));
	run("GET / HTTP/1.1\r\nHost: [::ffff:192.0.2.1]:80\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "Location: https://[::ffff:192.0.2.1]/\r\n"));
	{
		static char longhost[400];
		static const char *const badhost[] = { "[]", "[::1", "[g::1]",
		    "[::1]x", "a b", "a:b:c", "\x7f" };
		char req[600];

		memset(longhost, 'h', 255);
		snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", longhost);
		run(req, 443, 0, r, sizeof(r));
		CHECK(has(r, "HTTP/1.1 301 ") && has(r, longhost));
		longhost[255] = 'h';
		snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", longhost);
		run(req, 443, 0, r, sizeof(r));
		CHECK(has(r, "HTTP/1.1 400 ") && has(r, "invalid Host"));
		for (size_t k = 0; k < sizeof(badhost) / sizeof(badhost[0]); k++) {
			snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n",
			    badhost[k]);
			run(req, 443, 0, r, sizeof(r));
			CHECK(has(r, "HTTP/1.1 400 ") && has(r, "invalid Host") &&
			    !has(r, "Location"));
		}
	}
	/* A target byte outside visible ASCII (DEL here) is no request. */
	run("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(run_rq.refusal && strcmp(run_rq.refusal, "malformed request") == 0);

	/* Bare LF line ends are accepted. */
	run("GET /lf HTTP/1.0\nHost: h\n\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "301") && has(r, "https://h/lf"));

	/* Absolute form: the URL's host wins over a Host that disagrees
	 * (RFC 9112 §3.2.2), with or without a path. */
	run("GET http://abs.example/p?q HTTP/1.1\r\nHost: other\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 301 ") && has(r, "Location: https://abs.example/p?q\r\n"));
	run("GET HTTP://abs.example:80 HTTP/1.1\r\nHost: abs.example\r\n\r\n", 8443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 301 ") && has(r, "Location: https://abs.example:8443/\r\n"));
	/* HTTP/1.0 may leave Host out when the target names the host... */
	run("GET http://abs.example/p HTTP/1.0\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 301 ") && has(r, "Location: https://abs.example/p\r\n"));
	/* ...but HTTP/1.1 needs one Host, a valid one, whatever the target's
	 * form (RFC 9112 §3.2), and the absolute target's host must be valid. */
	{
		static const struct {
			const char *req, *why;
		} bad[] = {
			{"GET http://abs.example/p HTTP/1.1\r\n\r\n", "no Host header"},
			{"POST http://abs.example/p HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "no Host header"},
			{"GET http://abs.example/p HTTP/1.1\nX-Host: abs.example\n\n", "no Host header"},
			{"GET http://abs.example/p HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", "more than one Host"},
			{"GET http://abs.example/p HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", "more than one Host"},
			{"GET http://abs.example/p HTTP/1.1\r\nHost: a/b\r\n\r\n", "invalid Host"},
			{"GET http://abs.example/p HTTP/1.1\r\nHost:\r\n\r\n", "invalid Host"},
			{"GET http://user@abs.example/p HTTP/1.1\r\nHost: abs.example\r\n\r\n", "invalid Host"},
			{"GET http:///p HTTP/1.1\r\nHost: abs.example\r\n\r\n", "invalid Host"},
			{"GET / HTTP/1.0\r\n\r\n", "no Host header"},
		};
		for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			CHECK(run(bad[k].req, 443, 0, r, sizeof(r)) == REDIRECT_RESPOND);
			CHECK(has(r, "HTTP/1.1 400 Bad Request\r\n"));
			CHECK(has(r, "\r\n\r\nBad Request: ") && has(r, bad[k].why));
			CHECK(!has(r, "Location"));
			/* The same with an ACME backend configured. */
			CHECK(run(bad[k].req, 443, 1, r, sizeof(r)) == REDIRECT_RESPOND);
			CHECK(has(r, "HTTP/1.1 400 ") && has(r, bad[k].why));
		}
	}
	/* Two Hosts in the origin form say so too. */
	run("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "\r\n\r\nBad Request: more than one Host header\n"));

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

	/* A challenge is GET or HEAD of one base64url token; head_len covers
	 * the head, request line through blank line. */
	{
		const char *ok[] = {
			"GET /.well-known/acme-challenge/LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0 HTTP/1.1\r\nHost: h\r\n\r\n",
			"HEAD /.well-known/acme-challenge/aZ09-_ HTTP/1.1\r\nHost: h\r\n\r\n",
			"GET /.well-known/acme-challenge/t HTTP/1.0\nHost: h:80\n\n",
			"GET http://h/.well-known/acme-challenge/abc HTTP/1.1\r\nHost: h\r\n\r\n",
			"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
		};
		for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]); k++) {
			CHECK(run(ok[k], 443, 1, r, sizeof(r)) == REDIRECT_ACME);
			CHECK(run_rq.head_len == strlen(ok[k]));
		}
	}

	/* Pipelined bytes after the head are not part of it, whatever they are. */
	{
		const char *first = "GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: h\r\n\r\n";
		const char *lf = "GET /.well-known/acme-challenge/tok HTTP/1.1\nHost: h\n\n";
		const char *after[] = {
			"GET /admin HTTP/1.1\r\nHost: h\r\n\r\n",
			"GET /adm",
			"\r\n\r\n",
			"\n",
		};
		char two[256];
		for (size_t k = 0; k < sizeof(after) / sizeof(after[0]); k++) {
			snprintf(two, sizeof(two), "%s%s", first, after[k]);
			CHECK(run(two, 443, 1, r, sizeof(r)) == REDIRECT_ACME);
			CHECK(run_rq.head_len == strlen(first));
			snprintf(two, sizeof(two), "%s%s", lf, after[k]);
			CHECK(run(two, 443, 1, r, sizeof(r)) == REDIRECT_ACME);
			CHECK(run_rq.head_len == strlen(lf));
		}
	}

	/* Tokens of 255 characters pass, 256 do not. */
	{
		char tok[300], req[512];
		memset(tok, 'A', sizeof(tok));
		tok[255] = '\0';
		snprintf(req, sizeof(req), "GET /.well-known/acme-challenge/%s HTTP/1.1\r\nHost: h\r\n\r\n", tok);
		CHECK(run(req, 443, 1, r, sizeof(r)) == REDIRECT_ACME);
		CHECK(run_rq.head_len == strlen(req));
		tok[255] = 'A';
		tok[256] = '\0';
		snprintf(req, sizeof(req), "GET /.well-known/acme-challenge/%s HTTP/1.1\r\nHost: h\r\n\r\n", tok);
		CHECK(run(req, 443, 1, r, sizeof(r)) == REDIRECT_RESPOND);
		CHECK(has(r, "HTTP/1.1 400 Bad Request\r\n") && has(r, "1 to 255"));
	}

	/* Anything else under the prefix is a 400 with its reason: never the
	 * backend, never a redirect. */
	{
		static const struct {
			const char *req, *why;
		} bad[] = {
			{"GET /.well-known/acme-challenge/../../admin HTTP/1.1\r\nHost: h\r\n\r\n", "base64url"},
			{"GET /.well-known/acme-challenge/%2e%2e/%2e%2e/admin HTTP/1.1\r\nHost: h\r\n\r\n", "base64url"},
			{"GET /.well-known/acme-challenge/%2E%2e/admin HTTP/1.1\r\nHost: h\r\n\r\n", "base64url"},
			{"GET /.well-known/acme-challenge/..%2fadmin HTTP/1.1\r\nHost: h\r\n\r\n", "base64url"},
			{"GET /.well-known/acme-challenge/..%2Fadmin HTTP/1.1\r\nHost: h\r\n\r\n", "base64url"},
			{"GET /.well-known/acme-challenge/..\\..\\admin HTTP/1.1\r\nHost: h\r\n\r\n", "base64url"},
			{"GET /.well-known/acme-challenge/tok%41 HTTP/1.1\r\nHost: h\r\n\r\n", "base64url"},
			{"GET /.well-known/acme-challenge/./tok HTTP/1.1\r\nHost: h\r\n\r\n", "base64url"},
			{"GET /.well-known/acme-challenge/tok. HTTP/1.1\r\nHost: h\r\n\r\n", "base64url"},
			{"GET /.well-known/acme-challenge/tok/more HTTP/1.1\r\nHost: h\r\n\r\n", "base64url"},
			{"GET /.well-known/acme-challenge/tok#f HTTP/1.1\r\nHost: h\r\n\r\n", "base64url"},
			{"GET http://h/.well-known/acme-challenge/../x HTTP/1.1\r\nHost: h\r\n\r\n", "base64url"},
			{"GET /.well-known/acme-challenge/ HTTP/1.1\r\nHost: h\r\n\r\n", "1 to 255"},
			{"GET /.well-known/acme-challenge/tok?x=1 HTTP/1.1\r\nHost: h\r\n\r\n", "no query"},
			{"GET /.well-known/acme-challenge/tok? HTTP/1.1\r\nHost: h\r\n\r\n", "no query"},
			{"GET /.well-known/acme-challenge/?tok HTTP/1.1\r\nHost: h\r\n\r\n", "no query"},
			{"POST /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "GET or HEAD"},
			{"get /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: h\r\n\r\n", "GET or HEAD"},
			{"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", "no request body"},
			{"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: h\r\ncontent-length: 00\r\nContent-Length: 1\r\n\r\n", "no request body"},
			{"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", "no request body"},
			{"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: h\r\nContent-Length: -0\r\n\r\n", "no request body"},
			{"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "no request body"},
			{"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: h\r\nTRANSFER-ENCODING: identity\r\n\r\n", "no request body"},
			{"GET http://h/.well-known/acme-challenge/tok HTTP/1.0\r\n\r\n", "exactly one Host"},
			{"GET http://h/.well-known/acme-challenge/tok HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host"},
			{"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", "more than one Host"},
			{"GET http://h/.well-known/acme-challenge/tok HTTP/1.1\r\n\r\n", "no Host header"},
			{"GET /.well-known/acme-challenge/tok HTTP/1.1\r\n\r\n", "no Host header"},
			{"GET http://h/.well-known/acme-challenge/tok HTTP/1.1\r\nHost: a/b\r\n\r\n", "invalid Host"},
		};
		for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			CHECK(run(bad[k].req, 443, 1, r, sizeof(r)) == REDIRECT_RESPOND);
			CHECK(has(r, "HTTP/1.1 400 Bad Request\r\n"));
			CHECK(has(r, "\r\n\r\nBad Request: ACME challenge: ") && has(r, bad[k].why));
			CHECK(!has(r, "Location"));
			if (!has(r, bad[k].why))
				fprintf(stderr, "  case %zu: %s\n", k, r);
		}
		/* Without acme_backend those paths are redirected like any other:
		 * https:// is where they would be served, not port 80. */
		CHECK(run(bad[0].req, 443, 0, r, sizeof(r)) == REDIRECT_RESPOND);
		CHECK(has(r, "HTTP/1.1 301 ") && has(r, "Location: https://h/.well-known/acme-challenge/../../admin\r\n"));
	}

	/* Near misses of the prefix are ordinary paths, redirected. */
	run("GET /.well-known/acme-challenge HTTP/1.1\r\nHost: h\r\n\r\n", 443, 1, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 301 ") && has(r, "Location: https://h/.well-known/acme-challenge\r\n"));
	run("GET /.well-known/acme-challengeX/t HTTP/1.1\r\nHost: h\r\n\r\n", 443, 1, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 301 "));

	/* Empty lines before the request line are skipped (RFC 9112 §2.2),
	 * CRLF or LF; a bare CR is not one. */
	run("\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 301 ") && has(r, "Location: https://h/a\r\n"));
	run("\n\r\n\nHEAD /a HTTP/1.0\nHost: h\n\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 301 ") && has(r, "Location: https://h/a\r\n") && run_rq.head);
	run("\rGET /a HTTP/1.1\r\nHost: h\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 400 ") && run_rq.refusal &&
	      strcmp(run_rq.refusal, "malformed request") == 0);
	run("\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(r[0] == '\0' && run_rq.refusal == NULL);   /* AGAIN: no request yet */
	/* ... and are not part of the head an ACME backend gets. */
	{
		const char *ch = "GET /.well-known/acme-challenge/t HTTP/1.1\r\nHost: h\r\n\r\n";
		char req[256];
		snprintf(req, sizeof(req), "\r\n\n%sGET /x", ch);
		CHECK(run(req, 443, 1, r, sizeof(r)) == REDIRECT_ACME);
		CHECK(run_rq.head_off == 3 && run_rq.head_len == strlen(ch) && !run_rq.head);
	}
	/* They count towards the head's bound: no endless stream of them. */
	{
		static char lines[REDIRECT_MAX_HEAD + 64];
		for (size_t k = 0; k + 2 <= REDIRECT_MAX_HEAD; k += 2)
			memcpy(lines + k, "\r\n", 2);
		strcpy(lines + REDIRECT_MAX_HEAD - 2, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
		run(lines, 443, 0, r, sizeof(r));
		CHECK(has(r, "HTTP/1.1 431 ") && run_rq.refusal &&
		      strcmp(run_rq.refusal, "request head over 8192 bytes") == 0);
	}

	/* HEAD is known from the request's first bytes: its 400 and 431 are
	 * a head alone, their Content-Length what GET's body would be. */
	run("HEAD / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 400 ") && run_rq.head && strlen(r) > 4 &&
	      strcmp(r + strlen(r) - 4, "\r\n\r\n") == 0);
	CHECK(has(r, "Content-Length: 39\r\n"));
	run("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "\r\n\r\nBad Request: more than one Host header\n") && !run_rq.head);
	CHECK(has(r, "Content-Length: 39\r\n"));
	run("HEADER / HTTP/1.1\r\nHost: a\r\n\r\n", 443, 0, r, sizeof(r));
	CHECK(has(r, "HTTP/1.1 308 ") && !run_rq.head);

	/* Oversized heads: 431, whether the end never comes or comes late. */
	{
		static char big[REDIRECT_MAX_HEAD + 200];
		struct buf out = {0};
		memset(big, 'a', sizeof(big));
		memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
		struct redirect_req rq;
		CHECK(redirect_handle((uint8_t *)big, REDIRECT_MAX_HEAD - 1, 443, 0, &out, &rq) == REDIRECT_AGAIN);
		CHECK(rq.refusal == NULL);
		CHECK(redirect_handle((uint8_t *)big, REDIRECT_MAX_HEAD, 443, 0, &out, &rq) == REDIRECT_RESPOND);
		CHECK(rq.refusal && strcmp(rq.refusal, "request head over 8192 bytes") == 0);
		CHECK(out.len && has((const char *)buf_peek(&out), "431"));
		buf_reset(&out);
		memcpy(big + sizeof(big) - 4, "\r\n\r\n", 4);
		CHECK(redirect_handle((uint8_t *)big, sizeof(big), 443, 0, &out, &rq) == REDIRECT_RESPOND);
		CHECK(rq.head_len == 0);
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
