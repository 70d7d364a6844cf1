#include "probe_proto.h"
#include "ber.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

void probe_reply_init(struct probe_reply *r, enum probe_rk kind, const char *tag)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	if (tag != NULL)
		strncpy(r->tag, tag, sizeof(r->tag) - 1);
}

static int starts(const char *s, size_t n, const char *word)
{
	size_t k = strlen(word);

	return n >= k && strncasecmp(s, word, k) == 0;
}

/* The line just finished (without its line end) at text + line_start:
 * does it end the reply? 1 yes, 0 no, -1 malformed. */
static int line_ends_reply(struct probe_reply *r)
{
	const char *s = r->text + r->line_start;
	size_t n = r->len - r->line_start;
	size_t tl;

	switch (r->kind) {
	case PROBE_RK_LINE:
		r->code = starts(s, n, "+OK") || starts(s, n, "* OK");
		return 1;
	case PROBE_RK_SMTP:
		/* RFC 5321 4.2: three digits, then '-' to go on or ' ' (or
		 * nothing) to end; every line of a reply has the same code. */
		if (n < 3 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
		    !isdigit((unsigned char)s[2]) || (n > 3 && s[3] != '-' && s[3] != ' '))
			return -1;
		if (r->nlines > 1 && (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0') != r->code)
			return -1;
		r->code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
		return n == 3 || s[3] == ' ';
	case PROBE_RK_IMAP:
		tl = strlen(r->tag);
		if (n > tl && memcmp(s, r->tag, tl) == 0 && s[tl] == ' ') {
			r->code = starts(s + tl + 1, n - tl - 1, "OK");
			return 1;
		}
		/* Untagged data, or a continuation request, which a probe's
		 * commands never ask for: then the reply is over too. */
		if (n >= 1 && s[0] == '+') {
			r->code = 0;
			return 1;
		}
		return 0;
	case PROBE_RK_POP3_MULTI:
		if (r->nlines == 1) {
			r->code = starts(s, n, "+OK");
			return !r->code;   /* -ERR is a single line */
		}
		return n == 1 && s[0] == '.';
	case PROBE_RK_FTP:
		/* RFC 959 4.2: "ddd-" opens a multi-line reply, which ends
		 * at a line "ddd " with the same code; lines between are
		 * free text (FEAT's start with a space). */
		if (r->nlines == 1) {
			if (n < 3 || !isdigit((unsigned char)s[0]) ||
			    !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]) ||
			    (n > 3 && s[3] != '-' && s[3] != ' '))
				return -1;
			r->code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
			return n == 3 || s[3] == ' ';
		}
		return n >= 4 && s[3] == ' ' && isdigit((unsigned char)s[0]) &&
		       (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0') == r->code &&
		       isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]);
	case PROBE_RK_HTTP:
		if (r->nlines == 1) {
			/* "HTTP/1.1 301 Moved" */
			if (!starts(s, n, "HTTP/") || n < 12 || s[8] != ' ' ||
			    !isdigit((unsigned char)s[9]) || !isdigit((unsigned char)s[10]) ||
			    !isdigit((unsigned char)s[11]))
				return -1;
			r->code = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
			return 0;
		}
		return n == 0;
	}
	return -1;
}

int probe_reply_feed(struct probe_reply *r, const uint8_t *p, size_t n, size_t *used)
{
	size_t i;
	int end;

	*used = 0;
	if (r->done)
		return 1;
	for (i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (c == '\0')
			return -1;
		if (++r->linelen > PROBE_LINE_MAX)
			return -1;
		if (c != '\n') {
			/* Room for this byte, a '\n' between lines and the NUL. */
			if (r->len + 2 >= sizeof(r->text))
				return -1;
			r->text[r->len++] = (char)c;
			continue;
		}
		/* A line ends at LF; a CR before it is part of the line end. */
		if (r->len > r->line_start && r->text[r->len - 1] == '\r')
			r->len--;
		r->text[r->len] = '\0';
		if (++r->nlines > PROBE_LINES_MAX)
			return -1;
		if ((end = line_ends_reply(r)) < 0)
			return -1;
		r->linelen = 0;
		if (end) {
			r->done = 1;
			*used = i + 1;
			return 1;
		}
		r->text[r->len++] = '\n';
		r->line_start = r->len;
	}
	r->text[r->len] = '\0';
	*used = n;
	return 0;
}

/* The next word of s at *pos (words split by spaces and brackets), into
 * w; 0 at the end. */
static int next_word(const char *s, size_t *pos, char *w, size_t wlen)
{
	size_t i = *pos, k = 0;

	while (s[i] == ' ' || s[i] == '[' || s[i] == ']' || s[i] == '\t')
		i++;
	if (s[i] == '\0' || s[i] == '\n') {
		*pos = i;
		return 0;
	}
	while (s[i] != '\0' && s[i] != ' ' && s[i] != '[' && s[i] != ']' && s[i] != '\t' &&
	       s[i] != '\n') {
		if (k + 1 < wlen)
			w[k++] = s[i];
		i++;
	}
	w[k] = '\0';
	*pos = i;
	return 1;
}

void probe_caps_smtp(const char *text, struct probe_caps *c)
{
	const char *line = strchr(text, '\n');   /* the first line greets */
	char w[64];
	size_t pos;

	memset(c, 0, sizeof(*c));
	c->login_in_clear = 0;
	for (; line != NULL; line = strchr(line + 1, '\n')) {
		const char *s = line + 1;

		if (strlen(s) < 4)
			continue;
		c->have_caps = 1;
		pos = 4;
		if (!next_word(s, &pos, w, sizeof(w)))
			continue;
		if (strcasecmp(w, "STARTTLS") == 0)
			c->starttls = 1;
		else if (strcasecmp(w, "AUTH") == 0 && next_word(s, &pos, w, sizeof(w)))
			c->login_in_clear = 1;
	}
}

void probe_caps_imap(const char *text, struct probe_caps *c)
{
	const char *at;
	char w[64];
	size_t pos;
	int login_disabled = 0;

	memset(c, 0, sizeof(*c));
	c->login_in_clear = -1;
	/* "* OK [CAPABILITY a b] text" or "* CAPABILITY a b" */
	for (at = text; at != NULL && *at != '\0'; at = strchr(at, '\n') ? strchr(at, '\n') + 1 : NULL) {
		const char *cap = NULL;

		if (starts(at, strlen(at), "* CAPABILITY "))
			cap = at + 13;
		else if (starts(at, strlen(at), "* OK [CAPABILITY "))
			cap = at + 17;
		if (cap == NULL)
			continue;
		c->have_caps = 1;
		pos = 0;
		while (next_word(cap, &pos, w, sizeof(w))) {
			if (strcasecmp(w, "STARTTLS") == 0)
				c->starttls = 1;
			else if (strcasecmp(w, "LOGINDISABLED") == 0)
				login_disabled = 1;
			if (cap[pos] == ']')
				break;
		}
	}
	if (c->have_caps)
		c->login_in_clear = !login_disabled;
}

void probe_caps_pop3(const char *text, struct probe_caps *c)
{
	const char *line = strchr(text, '\n');
	char w[64];
	size_t pos;

	memset(c, 0, sizeof(*c));
	c->login_in_clear = -1;
	if (strncmp(text, "+OK", 3) != 0)
		return;
	c->have_caps = 1;
	c->login_in_clear = 0;
	for (; line != NULL; line = strchr(line + 1, '\n')) {
		pos = 0;
		if (!next_word(line + 1, &pos, w, sizeof(w)))
			continue;
		if (strcasecmp(w, "STLS") == 0)
			c->starttls = 1;
		else if (strcasecmp(w, "USER") == 0)
			c->login_in_clear = 1;
		else if (strcasecmp(w, "SASL") == 0 && next_word(line + 1, &pos, w, sizeof(w)))
			c->login_in_clear = 1;
	}
}

void probe_caps_ftp(const char *text, struct probe_caps *c)
{
	const char *line = strchr(text, '\n');   /* "211-Features:" */
	char w[64], w2[64];
	size_t pos;

	memset(c, 0, sizeof(*c));
	c->login_in_clear = -1;
	if (strncmp(text, "211", 3) != 0)
		return;
	c->have_caps = 1;
	for (; line != NULL; line = strchr(line + 1, '\n')) {
		pos = 0;
		/* " AUTH TLS" or " AUTH SSL;TLS": the mechanisms may be
		 * listed with semicolons. */
		if (next_word(line + 1, &pos, w, sizeof(w)) && strcasecmp(w, "AUTH") == 0 &&
		    next_word(line + 1, &pos, w2, sizeof(w2))) {
			char *save = NULL;
			for (char *m = strtok_r(w2, ";", &save); m; m = strtok_r(NULL, ";", &save))
				if (strcasecmp(m, "TLS") == 0)
					c->starttls = 1;
		}
	}
}

int probe_has_word(const uint8_t *p, size_t n, const char *word)
{
	size_t k = strlen(word);

	for (size_t i = 0; i + k <= n; i++)
		if (strncasecmp((const char *)p + i, word, k) == 0)
			return 1;
	return 0;
}

const char *probe_banner(const uint8_t *p, size_t n)
{
	const char *s = (const char *)p;

	if (n >= 4 && memcmp(s, "SSH-", 4) == 0)
		return "ssh";
	if (n >= 4 && memcmp(s, "220", 3) == 0 && (s[3] == ' ' || s[3] == '-'))
		return probe_has_word(p, n, "FTP") && !probe_has_word(p, n, "SMTP") ? "ftp" : "smtp";
	if (n >= 4 && (memcmp(s, "* OK", 4) == 0 || (n >= 9 && memcmp(s, "* PREAUTH", 9) == 0)))
		return "imap";
	if (n >= 3 && memcmp(s, "+OK", 3) == 0)
		return "pop3";
	if (n >= 4 && memcmp(s, "RFB ", 4) == 0)
		return "vnc";
	if (n >= 5 && memcmp(s, "HTTP/", 5) == 0)
		return "http";
	/* MySQL's handshake: a 3-byte little-endian length, sequence 0,
	 * protocol version 10, a NUL-terminated server version. */
	if (n >= 6 && p[3] == 0 && p[4] == 10 &&
	    (size_t)p[0] + ((size_t)p[1] << 8) + ((size_t)p[2] << 16) + 4 >= n &&
	    isdigit(p[5]))
		return "mysql";
	return NULL;
}

#define OID_STARTTLS "1.3.6.1.4.1.1466.20037"

/* SearchRequest, messageID 1: base "", scope baseObject, derefAliases
 * never, no limits, typesOnly FALSE, (objectClass=*), attributes
 * supportedExtension. */
const uint8_t probe_ldap_rootdse[] = {
	0x30, 0x39, 0x02, 0x01, 0x01, 0x63, 0x34,
	0x04, 0x00, 0x0a, 0x01, 0x00, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00,
	0x02, 0x01, 0x00, 0x01, 0x01, 0x00,
	0x87, 0x0b, 'o', 'b', 'j', 'e', 'c', 't', 'C', 'l', 'a', 's', 's',
	0x30, 0x14, 0x04, 0x12, 's', 'u', 'p', 'p', 'o', 'r', 't', 'e', 'd',
	'E', 'x', 't', 'e', 'n', 's', 'i', 'o', 'n',
};
const size_t probe_ldap_rootdse_len = sizeof(probe_ldap_rootdse);

/* ExtendedRequest, messageID 2: requestName the StartTLS OID. */
const uint8_t probe_ldap_starttls[] = {
	0x30, 0x1d, 0x02, 0x01, 0x02, 0x77, 0x18, 0x80, 0x16,
	'1', '.', '3', '.', '6', '.', '1', '.', '4', '.', '1', '.',
	'1', '4', '6', '6', '.', '2', '0', '0', '3', '7',
};
const size_t probe_ldap_starttls_len = sizeof(probe_ldap_starttls);

/* The largest LDAP answer a probe reads: a root DSE entry fits well. */
#define LDAP_MSG_MAX 16384

int probe_ldap_feed(struct probe_ldap *l, const uint8_t *p, size_t n, size_t *used,
                    uint32_t msgid)
{
	struct ber_ldap_msg m;
	size_t off = 0;
	int r;

	*used = 0;
	while (!l->done) {
		if ((r = ber_ldap_read(p + off, n - off, LDAP_MSG_MAX, &m)) <= 0) {
			*used = off;
			return r;
		}
		off += m.len;
		/* messageID 0 is an unsolicited notification (the server
		 * going away), which answers nothing. */
		if (m.msgid != msgid)
			return -1;
		if (m.op == BER_LDAP_SEARCH_ENTRY) {
			if (++l->entries > 16)
				return -1;
			if (ber_ldap_entry_has(&m, "supportedExtension", OID_STARTTLS) == 1)
				l->starttls_listed = 1;
			continue;
		}
		if (m.op == 0x73)   /* SearchResultReference: not for the root DSE */
			continue;
		if (ber_ldap_code(&m, &l->code) < 0)
			return -1;
		l->done = 1;
	}
	*used = off;
	return 1;
}
