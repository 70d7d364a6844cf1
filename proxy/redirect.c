#include "redirect.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define ACME_PREFIX "/.well-known/acme-challenge/"
#define ACME_PREFIX_LEN (sizeof(ACME_PREFIX) - 1)
/* RFC 8555 §8.3 puts no bound on a token; 255 is far above the 43
 * characters real CAs send and keeps the forwarded target short. */
#define ACME_TOKEN_MAX 255

struct span {
	const char *p;
	size_t n;
};

struct request {
	struct span method, target, host;
	int hosts;
	int http10; /* HTTP/1.0, the one version that may leave out Host */
	int body;   /* a Content-Length other than 0, or a Transfer-Encoding */
};

/* How many bytes of empty lines (CRLF or LF) come before the request
 * line: RFC 9112 §2.2 has a server ignore at least one. A CR not (yet)
 * followed by LF is not skipped: with more bytes it may be. */
static size_t empty_lines(const uint8_t *in, size_t len)
{
	size_t i = 0;

	while (i < len && (in[i] == '\n' ||
	    (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')))
		i += in[i] == '\r' ? 2 : 1;
	return i;
}

/* Whether the request is a HEAD, decided here alone and from its first
 * bytes: a 431 comes before the request line could be parsed. A parsed
 * method is "HEAD" exactly when the line starts so. */
static int is_head(const uint8_t *p, size_t n)
{
	return n >= 5 && memcmp(p, "HEAD ", 5) == 0;
}

static int is_get(struct span method)
{
	return method.n == 3 && memcmp(method.p, "GET", 3) == 0;
}

/* Offset just past the blank line ending the head, or 0 if not there. */
static size_t head_end(const uint8_t *in, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (in[i] != '\n')
			continue;
		if (in[i + 1] == '\n')
			return i + 2;
		if (in[i + 1] == '\r' && i + 2 < len && in[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static int is_tchar(int c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Characters we copy into Location: visible ASCII only, so nothing the
 * client sent can break the header. */
static int is_target_char(int c)
{
	return c > 0x20 && c < 0x7f;
}

/* Host = uri-host [ ":" port ] (RFC 9110 §7.2): an IP literal in brackets
 * or a name, then at most a colon and digits. Anything else (":80", "[]",
 * "[::1", "a:b:c", a NUL) would leave Location with no host, an unclosed
 * literal or a host cut short where the redirect drops the port. */
static int host_ok(struct span h)
{
	size_t i = 0;

	if (h.n == 0 || h.n > 255)
		return 0;
	if (h.p[0] == '[') {
		for (i = 1; i < h.n && h.p[i] != ']'; i++)
			if (!isxdigit((unsigned char)h.p[i]) && h.p[i] != ':' && h.p[i] != '.')
				return 0;
		if (i == 1 || i == h.n)
			return 0;
		i++;
	} else {
		for (; i < h.n && h.p[i] != ':'; i++) {
			int c = (unsigned char)h.p[i];
			if (!isalnum(c) && c != '-' && c != '.' && c != '_')
				return 0;
		}
		if (i == 0)
			return 0;
	}
	if (i < h.n && h.p[i++] != ':')
		return 0;
	for (; i < h.n; i++)
		if (!isdigit((unsigned char)h.p[i]))
			return 0;
	return 1;
}

/* Whether the header name p[0..n) is want, in any case. */
static int name_is(const char *p, size_t n, const char *want)
{
	return n == strlen(want) && strncasecmp(p, want, n) == 0;
}

/* A Content-Length that announces no body: digits, all of them 0. An empty
 * or odd value counts as a body, so it is refused rather than guessed at. */
static int no_length(struct span v)
{
	if (v.n == 0)
		return 0;
	for (size_t i = 0; i < v.n; i++)
		if (v.p[i] != '0')
			return 0;
	return 1;
}

static struct span trim(const char *p, size_t n)
{
	while (n && (*p == ' ' || *p == '\t'))
		p++, n--;
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
		n--;
	return (struct span){p, n};
}

/* Parses the request line and headers; -1 if malformed. */
static int parse(const char *p, size_t len, struct request *r)
{
	const char *end = p + len, *eol, *sp1, *sp2;

	memset(r, 0, sizeof(*r));
	eol = memchr(p, '\n', len);
	if ((sp1 = memchr(p, ' ', (size_t)(eol - p))) == NULL)
		return -1;
	if ((sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1))) == NULL)
		return -1;
	r->method = (struct span){p, (size_t)(sp1 - p)};
	r->target = (struct span){sp1 + 1, (size_t)(sp2 - sp1 - 1)};
	if (r->method.n == 0 || r->target.n == 0)
		return -1;
	for (size_t i = 0; i < r->method.n; i++)
		if (!is_tchar((unsigned char)r->method.p[i]))
			return -1;
	for (size_t i = 0; i < r->target.n; i++)
		if (!is_target_char((unsigned char)r->target.p[i]))
			return -1;
	struct span ver = trim(sp2 + 1, (size_t)(eol - sp2 - 1));
	if (ver.n != 8 || memcmp(ver.p, "HTTP/1.", 7) != 0 ||
	    !isdigit((unsigned char)ver.p[7]))
		return -1;
	r->http10 = ver.p[7] == '0';

	for (p = eol + 1; p < end; p = eol + 1) {
		const char *colon;
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return -1;
		if (eol == p || (eol == p + 1 && *p == '\r'))
			break;   /* the blank line */
		if ((colon = memchr(p, ':', (size_t)(eol - p))) == NULL || colon == p)
			return -1;
		for (const char *q = p; q < colon; q++)
			if (!is_tchar((unsigned char)*q))
				return -1;   /* also refuses obsolete line folding */
		/* RFC 9110 §5.5: no NUL or bare CR in a value, which a backend
		 * could read as the end of a line portier never saw. */
		for (const char *q = colon + 1; q < eol; q++)
			if (*q == '\0' || (*q == '\r' && q + 1 != eol))
				return -1;
		struct span value = trim(colon + 1, (size_t)(eol - colon - 1));
		size_t namelen = (size_t)(colon - p);
		if (name_is(p, namelen, "host")) {
			r->host = value;
			r->hosts++;
		} else if (name_is(p, namelen, "transfer-encoding") ||
		           (name_is(p, namelen, "content-length") && !no_length(value))) {
			r->body = 1;
		}
	}
	return 0;
}

/* Why the request's Host may not stand, or NULL. RFC 9112 §3.2: more
 * than one Host, or an invalid one, is a 400 whatever the target's form,
 * and so is an HTTP/1.1 request without Host: an absolute-form target
 * needs one too, although its own host wins and a Host that disagrees is
 * ignored (§3.2.2). Only HTTP/1.0 may leave Host out, and only where the
 * target names the host. host is the one the redirect would name. */
static const char *host_refusal(const struct request *r, int absolute,
                                struct span host)
{
	if (r->hosts > 1)
		return "more than one Host header";
	if (r->hosts == 1 && !host_ok(r->host))
		return "invalid Host";
	if (r->hosts == 0 && !(r->http10 && absolute))
		return "no Host header";
	if (!host_ok(host))
		return "invalid Host";
	return NULL;
}

/* The reason phrase goes on the status line; detail, when given, only into
 * the body, where a person reads why. A HEAD request gets the head alone
 * (RFC 9110 §9.3.2), its Content-Length the body's that GET would get. */
static void respond_error(struct buf *out, int head, int code,
                          const char *phrase, const char *detail)
{
	buf_appendf(out, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
	            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
	            code, phrase,
	            strlen(phrase) + (detail ? 2 + strlen(detail) : 0) + 1);
	if (!head)
		buf_appendf(out, "%s%s%s\n", phrase, detail ? ": " : "",
		            detail ? detail : "");
}

static int is_base64url(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Why a request under the ACME prefix may not go to acme_backend, or NULL
 * for a real http-01 challenge. Only the exact form a CA sends (RFC 8555
 * §8.3) passes, so no dot segment, encoding, backslash or query can make
 * the backend serve anything but a challenge file. A query is not part of
 * http-01, and a body has no place in a GET: both are refused rather than
 * passed on for the backend to interpret. */
static const char *acme_refusal(const struct request *r, int head,
                                struct span path)
{
	const char *tok = path.p + ACME_PREFIX_LEN;
	size_t n = path.n - ACME_PREFIX_LEN;

	if (!is_get(r->method) && !head)
		return "ACME challenge: method must be GET or HEAD";
	if (r->body)
		return "ACME challenge: no request body allowed";
	if (r->hosts != 1)   /* an HTTP/1.0 absolute form may have none */
		return "ACME challenge: exactly one Host header";
	if (memchr(tok, '?', n))
		return "ACME challenge: no query allowed";
	if (n == 0 || n > ACME_TOKEN_MAX)
		return "ACME challenge: token must be 1 to 255 characters";
	for (size_t i = 0; i < n; i++)
		if (!is_base64url((unsigned char)tok[i]))
			return "ACME challenge: token must be base64url [A-Za-z0-9_-]";
	return NULL;
}

/* Sets rq->refusal to why, with its 4xx response in out. */
static enum redirect_verdict refuse(struct buf *out, struct redirect_req *rq,
                                    int code, const char *why, const char *detail)
{
	respond_error(out, rq->head, code, code == 431 ?
	              "Request Header Fields Too Large" : "Bad Request", detail);
	rq->refusal = why;
	return REDIRECT_RESPOND;
}

enum redirect_verdict redirect_handle(const uint8_t *in, size_t len, int port,
                                      int acme, struct buf *out,
                                      struct redirect_req *rq)
{
	size_t skip = empty_lines(in, len);
	size_t n = head_end(in + skip, len - skip);
	struct request r;
	struct span host, path;
	int code, absolute, challenge;
	char portbuf[16] = "";
	const char *why;

	*rq = (struct redirect_req){.head = is_head(in + skip, len - skip)};
	if (n == 0 && len < REDIRECT_MAX_HEAD)
		return REDIRECT_AGAIN;
	if (n == 0 || skip + n > REDIRECT_MAX_HEAD)
		return refuse(out, rq, 431, "request head over 8192 bytes", NULL);
	in += skip;
	if (parse((const char *)in, n, &r) < 0)
		return refuse(out, rq, 400, "malformed request", NULL);
	path = r.target;
	host = r.host;
	/* Absolute form "http://host/path": the target's host names the
	 * redirect (RFC 9112 §3.2.2). The host ends at "/" or at "?" (an
	 * empty path with a query); an empty path is "/" in Location. */
	absolute = path.n > 7 && strncasecmp(path.p, "http://", 7) == 0;
	if (absolute) {
		const char *a = path.p + 7, *end = path.p + path.n, *e = a;
		while (e < end && *e != '/' && *e != '?')
			e++;
		host = (struct span){a, (size_t)(e - a)};
		path = (struct span){e, (size_t)(end - e)};
	} else if (path.p[0] != '/') {
		return refuse(out, rq, 400, "malformed request", NULL);
	}
	challenge = acme && path.n >= ACME_PREFIX_LEN &&
	            memcmp(path.p, ACME_PREFIX, ACME_PREFIX_LEN) == 0;
	if ((why = host_refusal(&r, absolute, host)) != NULL) {
		char detail[64];
		snprintf(detail, sizeof(detail), "%s%s",
		         challenge ? "ACME challenge: " : "", why);
		return refuse(out, rq, 400, why, detail);
	}
	if (challenge) {
		if ((why = acme_refusal(&r, rq->head, path)) != NULL)
			return refuse(out, rq, 400, why, why);
		rq->head_off = skip;
		rq->head_len = n;
		return REDIRECT_ACME;
	}

	/* Drop the client's port from Host; ours comes from redirect_port. */
	if (host.p[0] == '[') {
		const char *close = memchr(host.p, ']', host.n);
		if (close)
			host.n = (size_t)(close - host.p) + 1;
	} else {
		const char *colon = memchr(host.p, ':', host.n);
		if (colon)
			host.n = (size_t)(colon - host.p);
	}
	if (port != 443)
		snprintf(portbuf, sizeof(portbuf), ":%d", port);
	code = is_get(r.method) || rq->head ? 301 : 308;
	buf_appendf(out, "HTTP/1.1 %d %s\r\nLocation: https://%.*s%s%s%.*s\r\n"
	            "Content-Length: 0\r\nConnection: close\r\n\r\n", code,
	            code == 301 ? "Moved Permanently" : "Permanent Redirect",
	            (int)host.n, host.p, portbuf,
	            path.n && path.p[0] == '/' ? "" : "/", (int)path.n, path.p);
	return REDIRECT_RESPOND;
}
