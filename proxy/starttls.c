#include "starttls.h"

#include <string.h>
#include <strings.h>

/*
 * The engine: framing, the command cap, the injection rule and the wipe at
 * upgrade live here once, so a driver cannot forget them.
 */

enum phase {
	PH_PRE,		/* portier speaks the protocol itself */
	PH_TLS_WAIT,	/* UPGRADE said; backend greeting next */
	PH_PLAIN_WAIT,	/* PLAINTEXT said; the relay once the backend is
			   ready (a query before left it so) */
	PH_QUERY,	/* BACKEND said: greeting (once), XCLIENT (once),
			   then the client's EHLO or HELO goes to it */
	PH_QUERY_REPLY,	/* its reply next, answered to the client */
	PH_XC_EHLO,	/* SMTP XCLIENT: portier's EHLO answered next */
	PH_XC_REPLY,	/* SMTP XCLIENT: the new 220 greeting next */
	PH_RELAY,	/* the relay (and its filter) both ways */
	PH_CLOSED	/* a closing verdict was given */
};

/* The hostname goes into protocol replies verbatim: allow only what a DNS
 * name holds, so a config value can never inject a line. */
int starttls_hostname_ok(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > STARTTLS_HOST_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		/* Not isalnum(): the rule must not follow the locale. */
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

int starttls_init(struct starttls_session *s, const struct starttls_driver *drv,
    const struct starttls_params *params)
{
	if (drv == NULL || params == NULL || drv->state_size > STARTTLS_STATE_MAX)
		return -1;
	if (params->hostname != NULL && !starttls_hostname_ok(params->hostname))
		return -1;
	if (params->optional && !drv->optional_ok)
		return -1;
	if (params->xclient != NULL && (!drv->xclient_ok ||
	    strlen(params->xclient) > 200 || strpbrk(params->xclient, "\r\n")))
		return -1;
	memset(s, 0, sizeof(*s));
	s->drv = drv;
	s->params = params;
	s->max_commands = params->max_commands ? params->max_commands
	    : STARTTLS_MAX_COMMANDS;
	s->phase = PH_PRE;
	s->xc_done = params->xclient == NULL;
	return 0;
}

int starttls_greeting(struct starttls_session *s, struct buf *out)
{
	return s->drv->greeting(s, out);
}

void starttls_note_auth(struct starttls_session *s, const char *verb)
{
	if (s->auth == NULL)
		s->auth = verb;
}

const char *starttls_cleartext_auth(const struct starttls_session *s)
{
	return s->auth;
}

/* RFC 3207 section 4.2: forget everything learnt before TLS. */
static void wipe(struct starttls_session *s)
{
	memset(s->state, 0, sizeof(s->state));
	memset(s->keep, 0, sizeof(s->keep));
	s->keep_len = 0;
	s->ncommands = 0;
}

static enum starttls_verdict close_with(struct starttls_session *s,
    enum starttls_bye why, const char *reason, struct buf *out)
{
	s->phase = PH_CLOSED;
	s->why = reason;
	if (s->drv->bye(s, why, out) == -1) {
		s->why = "output buffer full";
		return STARTTLS_ERROR;
	}
	return STARTTLS_REPLY_AND_CLOSE;
}

enum starttls_verdict starttls_client_input(struct starttls_session *s,
    struct buf *in, struct buf *out)
{
	const struct starttls_driver *d = s->drv;
	enum starttls_verdict v;
	const char *why = NULL;
	size_t len;
	int r;

	switch (s->phase) {
	case PH_PRE:
		break;
	case PH_TLS_WAIT:
		/* Plaintext that arrived after STARTTLS but before the
		 * handshake: the same attack as pipelining (CVE-2014-3556). */
		if (in->len == 0)
			return STARTTLS_AGAIN;
		s->phase = PH_CLOSED;
		s->why = "command injection attempt";
		return STARTTLS_INJECTION;
	case PH_PLAIN_WAIT:
		/* The client's bytes are the backend's now; leave them. */
		return STARTTLS_AGAIN;
	case PH_QUERY:
	case PH_QUERY_REPLY:
		/* Pipelined after the EHLO: its answer comes first. */
		return STARTTLS_AGAIN;
	default:
		s->phase = PH_CLOSED;
		s->why = "client input after the hand-over";
		return STARTTLS_ERROR;
	}

	while (in->len > 0) {
		r = d->frame(buf_peek(in), in->len, d->max_msg, &len, &why);
		if (r == 0)
			return STARTTLS_AGAIN;
		if (r < 0)
			return close_with(s, r == -1 ? STARTTLS_BYE_LIMIT :
			    STARTTLS_BYE_PROTOCOL, why, out);
		if (s->ncommands >= s->max_commands)
			return close_with(s, STARTTLS_BYE_LIMIT,
			    "too many commands before TLS", out);
		s->ncommands++;

		v = d->command(s, buf_peek(in), len, out);
		if (v == STARTTLS_PLAINTEXT) {
			s->phase = PH_PLAIN_WAIT;
			s->why = "client continues without TLS";
			return v;
		}
		buf_consume(in, len);
		switch (v) {
		case STARTTLS_AGAIN:
			continue;
		case STARTTLS_BACKEND:
			/* The line to send is kept; the backend answers it
			 * before the client's next command is read. */
			if (d->query_reply == NULL || s->keep_len == 0) {
				s->phase = PH_CLOSED;
				s->why = "driver asked the backend with nothing to send";
				return STARTTLS_ERROR;
			}
			s->phase = PH_QUERY;
			return v;
		case STARTTLS_UPGRADE:
			wipe(s);
			/* A backend asked for the EHLO before is no good after
			 * TLS: its session knows the plaintext EHLO (RFC 3207
			 * 4.2), and a server may refuse the client's second
			 * one (OpenSMTPD: "503 Already identified"). The
			 * hand-over starts on a new connection, greeting and
			 * XCLIENT included. */
			s->greeted = 0;
			s->xc_done = s->params->xclient == NULL;
			if (in->len > 0) {
				s->phase = PH_CLOSED;
				s->why = "command injection attempt";
				return STARTTLS_INJECTION;
			}
			s->phase = PH_TLS_WAIT;
			return v;
		default:
			s->phase = PH_CLOSED;
			if (s->why == NULL)
				s->why = v == STARTTLS_ERROR ?
				    "output buffer full" : "closed by client";
			return v == STARTTLS_REPLY_AND_CLOSE ? v : STARTTLS_ERROR;
		}
	}
	return STARTTLS_AGAIN;
}

int starttls_looks_like_tls(const uint8_t *p, size_t n)
{
	/* A TLS handshake record: type 22, version 3.x (x at most 4). */
	if (n >= 1 && p[0] != 0x16)
		return 0;
	if (n >= 2 && p[1] != 0x03)
		return 0;
	if (n >= 3 && p[2] > 0x04)
		return 0;
	return n >= 3 ? 1 : -1;
}

static enum starttls_verdict refuse(struct starttls_session *s,
    const char *reason, struct buf *to_client)
{
	return close_with(s, STARTTLS_BYE_UNAVAILABLE, reason, to_client);
}

/* Consume the backend's greeting; 1 done, 0 need more, -1 refused. */
static int eat_greeting(struct starttls_session *s, struct buf *from)
{
	const char *why = "backend greeting refused";
	size_t len = 0;
	int r;

	if (s->drv->backend_greeting == NULL || s->greeted)
		return 1;
	if (from->len == 0)
		return 0;
	r = s->drv->backend_greeting(buf_peek(from), from->len, &len, &why);
	if (r == 1) {
		buf_consume(from, len);
		s->greeted = 1;
	} else if (r < 0)
		s->why = why;
	return r;
}

/* Forget the kept line once the backend has it, and only that: the
 * driver's state (the client said hello) stays for the rest of the
 * dialogue. */
static void forget_kept(struct starttls_session *s)
{
	memset(s->keep, 0, sizeof(s->keep));
	s->keep_len = 0;
}

/* Before the client's first command reaches the backend: tell it who the
 * client really is (Postfix XCLIENT), or it sees only portier's address. */
static int start_xclient(struct starttls_session *s, struct buf *to_backend)
{
	s->xc_return = s->phase;
	s->phase = PH_XC_EHLO;
	return buf_appendf(to_backend, "EHLO %s\r\n", starttls_hostname(s));
}

static int offers_xclient(const uint8_t *p, size_t len)
{
	static const char kw[] = "XCLIENT";
	size_t k = sizeof(kw) - 1, i;

	/* A line of the EHLO reply after the first (the server's name):
	 * "250-XCLIENT NAME ADDR ...", the keyword as a whole word. */
	for (i = 1; i + 4 + k < len; i++)
		if (p[i - 1] == '\n' &&
		    strncasecmp((const char *)p + i + 4, kw, k) == 0 &&
		    (p[i + 4 + k] == ' ' || p[i + 4 + k] == '\r' ||
		    p[i + 4 + k] == '\n'))
			return 1;
	return 0;
}

/* One reply of the backend through a driver's parser: 1 when a whole
 * positive reply is at the front (*len long, not consumed yet), 0 when more
 * bytes are needed, -1 refused (*why set). */
static int peek_reply(const struct buf *from, int (*parse)(const uint8_t *,
    size_t, size_t *, const char **), size_t *len, const char **why)
{
	if (from->len == 0)
		return 0;
	return parse(buf_peek(from), from->len, len, why);
}

/* XCLIENT needs the backend's say-so in its EHLO reply. */
static const char *xclient_refusal(int r, const char *why,
    const struct buf *from, size_t len)
{
	if (r < 0)
		return why;	/* the driver's: refused, or no reply at all */
	if (!offers_xclient(buf_peek(from), len))
		return "backend does not offer XCLIENT to portier "
		    "(Postfix: smtpd_authorized_xclient_hosts)";
	return NULL;
}

enum starttls_verdict starttls_backend_input(struct starttls_session *s,
    struct buf *from_backend, struct buf *to_backend, struct buf *to_client)
{
	const struct starttls_driver *d = s->drv;
	const char *why = "backend refused";
	size_t len = 0;
	int r;

	for (;;) {
		switch (s->phase) {
		case PH_TLS_WAIT:
		case PH_PLAIN_WAIT:
		case PH_QUERY:
			if ((r = eat_greeting(s, from_backend)) <= 0) {
				why = s->why;
				goto not_done;
			}
			if (!s->xc_done) {
				if (start_xclient(s, to_backend) < 0)
					return refuse(s, "output buffer full", to_client);
				break;
			}
			if (s->phase == PH_QUERY) {
				if (buf_append(to_backend, s->keep, s->keep_len) == -1)
					return refuse(s, "output buffer full", to_client);
				forget_kept(s);
				s->phase = PH_QUERY_REPLY;
				break;
			}
			/* After TLS the client speaks first: nothing of its
			 * own to wait for (SMTP's filter_smtp keeps the
			 * backend's EHLO replies clean from here on). In
			 * plaintext the client's hello was the backend's to
			 * answer (the query): its session is the client's
			 * already, nothing to replay. */
			s->phase = PH_RELAY;
			break;
		case PH_QUERY_REPLY:
			if (from_backend->len == 0)
				return STARTTLS_AGAIN;
			r = d->query_reply(s, buf_peek(from_backend),
			    from_backend->len, &len, to_client, &why);
			if (r <= 0)
				goto not_done;
			buf_consume(from_backend, len);
			/* Back to portier's own dialogue; whatever the backend
			 * sent after its reply waits in from_backend. */
			s->phase = PH_PRE;
			return STARTTLS_RESUME;
		case PH_XC_EHLO:
			r = peek_reply(from_backend, d->ehlo_reply, &len, &why);
			if (r == 0)
				return STARTTLS_AGAIN;
			if ((why = xclient_refusal(r, why, from_backend, len)) != NULL)
				return refuse(s, why, to_client);
			buf_consume(from_backend, len);
			if (buf_appendf(to_backend, "XCLIENT %s\r\n",
			    s->params->xclient) < 0)
				return refuse(s, "output buffer full", to_client);
			s->phase = PH_XC_REPLY;
			break;
		case PH_XC_REPLY:
			/* Accepted, XCLIENT starts a new session: a 220. */
			if ((r = peek_reply(from_backend, d->backend_greeting, &len,
			    &why)) <= 0) {
				why = "backend refused XCLIENT";
				goto not_done;
			}
			buf_consume(from_backend, len);
			s->xc_done = 1;
			s->phase = s->xc_return;
			break;
		case PH_RELAY:
			return STARTTLS_RELAY;
		default:
			s->phase = PH_CLOSED;
			s->why = "backend input outside the hand-over";
			return STARTTLS_ERROR;
		}
	}

not_done:
	if (r == 0)
		return STARTTLS_AGAIN;
	return refuse(s, why, to_client);
}

const char *starttls_backend_awaited(const struct starttls_session *s)
{
	switch (s->phase) {
	case PH_XC_EHLO:
		return "reply to portier's EHLO (for XCLIENT)";
	case PH_XC_REPLY:
		return "reply to XCLIENT";
	case PH_QUERY_REPLY:
		return "reply to the client's EHLO or HELO";
	default:
		return "greeting";
	}
}

int starttls_client_may_flow(const struct starttls_session *s)
{
	return s->phase == PH_RELAY;
}

int starttls_bye(const struct starttls_session *s, enum starttls_bye why,
    struct buf *out)
{
	return s->drv->bye(s, why, out);
}

const char *starttls_hostname(const struct starttls_session *s)
{
	return s->params->hostname ? s->params->hostname : "localhost";
}

const char *starttls_why(const struct starttls_session *s)
{
	return s->why ? s->why : "no reason";
}

int starttls_line(const uint8_t *p, size_t n, size_t max, size_t *len,
    const char **why)
{
	const uint8_t *lf = memchr(p, '\n', n < max ? n : max);

	if (lf != NULL) {
		*len = (size_t)(lf - p) + 1;
		return 1;
	}
	if (n >= max) {
		*why = "line too long";
		return -1;
	}
	return 0;
}

size_t starttls_line_trim(const uint8_t *p, size_t len)
{
	if (len > 0 && p[len - 1] == '\n')
		len--;
	if (len > 0 && p[len - 1] == '\r')
		len--;
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	return len;
}

enum starttls_verdict starttls_say(const char *text, enum starttls_verdict v,
    struct buf *out)
{
	return buf_appendf(out, "%s\r\n", text) ? STARTTLS_ERROR : v;
}

int starttls_bye_line(const struct starttls_session *s, enum starttls_bye why,
    struct buf *out)
{
	const struct starttls_bye_words *w = s->drv->bye_words;
	const char *text = w->text[STARTTLS_BYE_PROTOCOL];

	if ((unsigned)why <= STARTTLS_BYE_PROTOCOL && w->text[why] != NULL)
		text = w->text[why];
	return buf_appendf(out, "%s %s\r\n", w->prefix, text);
}

int starttls_greeting_line(const uint8_t *p, size_t n, size_t *len,
    size_t *cl, const char **why)
{
	int r = starttls_line(p, n, STARTTLS_REPLY_MAX, len, why);

	if (r < 0)
		*why = "oversized backend greeting";
	else if (r == 1)
		*cl = starttls_line_trim(p, *len);
	return r;
}

static int lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

int starttls_word(const uint8_t *p, size_t n, const char *kw, size_t *arg)
{
	size_t k = strlen(kw), i;

	if (n < k)
		return 0;
	for (i = 0; i < k; i++)
		if (lower(p[i]) != lower((unsigned char)kw[i]))
			return 0;
	if (i < n && p[i] != ' ')
		return 0;
	while (i < n && p[i] == ' ')
		i++;
	*arg = i;
	return 1;
}

int starttls_keep(struct starttls_session *s, const uint8_t *p, size_t n)
{
	if (n + 2 > sizeof(s->keep))
		return -1;
	memcpy(s->keep, p, n);
	memcpy(s->keep + n, "\r\n", 2);
	s->keep_len = n + 2;
	return 0;
}
