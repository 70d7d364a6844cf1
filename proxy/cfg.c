#include "cfg.h"
#include "cfg_check.h"
#include "cfg_keys.h"
#include "cfg_lint.h"
#include "proto.h"
#include "starttls.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * inih as Debian builds it has no line numbers in its handler, joins
 * indented lines to the previous value and cuts lines at 200 bytes. We feed
 * it through our own line reader, which counts lines (so the handler knows
 * where it is) and turns each of those traps into a clear error instead.
 */

/* inih keeps a section's name in a buffer of 50 bytes and cuts a longer
 * one to its first 49 characters before the handler sees it: two long
 * names alike in those would be one section. */
#define SECTION_NAME_MAX 49

struct loader {
	const char *file;
	struct diag *d;
	struct cfg *cfg;
	const struct cfg_load_opts *opts;   /* never NULL */
	/* input */
	FILE *fp;
	int read_errno;      /* reading fp failed: the file is refused */
	const char *text;
	size_t textoff;
	int line;            /* line the handler's current value came from */
	int header_line;     /* line of the last [section] header */
	char header[128];    /* its name, as written */
	int header_keys;     /* key lines read under it */
	/* section state */
	char section[128];
	int in_global, in_tls;
	struct cfg_listener *listener;
	char **seen;         /* section names met so far, to refuse duplicates */
	size_t nseen;
};

/* The next line into out (at most outlen - 1 bytes, NUL-terminated), or
 * NULL at the end or on a read error (ld->read_errno). *toolong: the line
 * did not fit, and the rest of it was skipped; *nul: it held a NUL byte,
 * which would end it early for every string function after this one. */
static char *next_raw_line(struct loader *ld, char *out, size_t outlen, int *toolong,
                           int *nul)
{
	*toolong = 0;
	*nul = 0;
	if (ld->fp) {
		size_t n = 0;
		int ch = EOF;

		/* Byte by byte rather than fgets(): its line cannot be
		 * measured past a NUL, so the newline after one went unseen
		 * and the next line was swallowed as this one's tail. */
		while (n + 1 < outlen && (ch = getc(ld->fp)) != EOF) {
			*nul |= ch == '\0';
			out[n++] = (char)ch;
			if (ch == '\n')
				break;
		}
		out[n] = '\0';
		if (ch == EOF && ferror(ld->fp)) {
			ld->read_errno = errno ? errno : EIO;
			return NULL;
		}
		if (n == 0)
			return NULL;
		if (n + 1 == outlen && out[n - 1] != '\n') {
			*toolong = 1;
			while ((ch = getc(ld->fp)) != EOF && ch != '\n')
				;
			if (ch == EOF && ferror(ld->fp)) {
				ld->read_errno = errno ? errno : EIO;
				return NULL;
			}
		}
		return out;
	}
	if (ld->text[ld->textoff] == '\0')
		return NULL;
	const char *start = ld->text + ld->textoff;
	const char *nl = strchr(start, '\n');
	size_t n = nl ? (size_t)(nl - start + 1) : strlen(start);
	ld->textoff += n;
	if (n >= outlen) {
		*toolong = 1;
		n = outlen - 1;
	}
	memcpy(out, start, n);
	out[n] = '\0';
	return out;
}

static int is_blank_or_comment(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '\0' || *s == '\n' || *s == '\r' || *s == ';' || *s == '#';
}

static int valid_section_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return 0;
	return 1;
}

/* A section without a key never reaches inih's handler, so nothing
 * would be said of it: a listener whose keys are all commented out would
 * vanish without a word ([portier] and [tls] empty are their defaults).
 * Called at the next header and at the end. */
static void section_end(struct loader *ld)
{
	if (ld->header_line > 0 && ld->header_keys == 0 &&
	    strcmp(ld->header, "portier") != 0 && strcmp(ld->header, "tls") != 0)
		diag_add(ld->d, 1, ld->file, ld->header_line, ld->header, NULL,
		         "section has no keys; it is ignored");
}

/* Every [section] header, at its own line: its name, and whether it
 * came before. */
static void section_header_check(struct loader *ld, const char *s)
{
	const char *close = strchr(s, ']');
	char name[128];
	size_t n, written;

	if (close == NULL)
		return;    /* inih reports it */
	n = (size_t)(close - s - 1);
	written = n;
	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, s + 1, n);
	name[n] = '\0';
	section_end(ld);
	snprintf(ld->header, sizeof(ld->header), "%s", name);
	ld->header_keys = 0;
	/* inih ignores what follows the ']': "[web]garbage" would be [web]
	 * without a word. A comment may follow, after blanks. */
	for (const char *t = close + 1; *t != '\0' && *t != '\n'; t++) {
		if (*t == ';' || *t == '#')
			break;
		if (*t != ' ' && *t != '\t' && *t != '\r') {
			diag_add(ld->d, 0, ld->file, ld->line, name, NULL,
			         "text after the section header's ']'; only a "
			         "comment may follow it");
			break;
		}
	}
	if (written > SECTION_NAME_MAX) {
		diag_add(ld->d, 0, ld->file, ld->line, name, NULL,
		         "section name longer than %d characters; shorten it",
		         SECTION_NAME_MAX);
		return;
	}
	if (!valid_section_name(name))
		diag_add(ld->d, 0, ld->file, ld->line, name, NULL,
		         "section names may hold letters, digits, '-', '_' and '.'");
	for (size_t i = 0; i < ld->nseen; i++) {
		if (strcmp(ld->seen[i], name) == 0) {
			diag_add(ld->d, 0, ld->file, ld->line, name, NULL,
			         "section appears twice; merge the two into one");
			return;
		}
	}
	char **seen = realloc(ld->seen, (ld->nseen + 1) * sizeof(*seen));
	if (seen == NULL)
		return;
	ld->seen = seen;
	ld->seen[ld->nseen++] = strdup(name);
}

/* Reports a problem of line ld->line and hands inih a blank line in its
 * place, so that each bad line is said once, by us, with its reason. */
static char *refuse_line(struct loader *ld, char *str, const char *why)
{
	diag_add(ld->d, 0, ld->file, ld->line, NULL, NULL, "%s", why);
	strcpy(str, "\n");
	return str;
}

/* The ini_reader: one line per call, with the traps above reported here
 * (inih itself would only tell the first bad line, without a reason). */
static char *reader(char *str, int num, void *stream)
{
	struct loader *ld = stream;
	int toolong, nul;

	if (next_raw_line(ld, str, (size_t)num, &toolong, &nul) == NULL)
		return NULL;
	ld->line++;
	/* A UTF-8 byte-order mark, which Windows editors put first: inih
	 * itself skips it, but our checks below would see it before the
	 * first '[' or key. */
	if (ld->line == 1 && strncmp(str, "\xef\xbb\xbf", 3) == 0)
		memmove(str, str + 3, strlen(str + 3) + 1);
	if (nul)
		return refuse_line(ld, str, "line holds a NUL byte; remove it "
		                   "(is this a text file?)");
	if (toolong) {
		char why[64];
		snprintf(why, sizeof(why), "line longer than %d bytes; shorten it", num - 2);
		return refuse_line(ld, str, why);
	}
	if (is_blank_or_comment(str))
		return str;
	if (str[0] == ' ' || str[0] == '\t')
		return refuse_line(ld, str, "indented line would be read as the "
		                   "continuation of the value above; remove the "
		                   "indentation");
	if (str[0] == '[') {
		if (strchr(str, ']') == NULL)
			return refuse_line(ld, str, "section header without ']'");
		section_header_check(ld, str);   /* ends the section before */
		ld->header_line = ld->line;
		return str;
	}
	if (strpbrk(str, "=:") == NULL)
		return refuse_line(ld, str, "not a 'key = value' line or a "
		                   "[section] header");
	ld->header_keys++;
	return str;
}

static void set_listener_defaults(struct cfg_listener *l)
{
	l->mode = CFG_MODE_TLS;
	l->proto = CFG_PROTO_TCP;
	l->handshake_timeout_ms = 10000;
	l->connect_timeout_ms = 5000;
	l->prelude_timeout_ms = 30000;
	l->accept_proxy_timeout_ms = 5000;
	l->max_connections = 10000;
	l->redirect_port = 443;
	l->ftp_peer_check = 1;
	l->ftp_session_reuse = 1;
	l->ftp_max_data = 2;
}

static int enter_section(struct loader *ld, const char *section)
{
	struct cfg *c = ld->cfg;
	struct cfg_listener *ls;

	snprintf(ld->section, sizeof(ld->section), "%s", section);
	ld->in_global = strcmp(section, "portier") == 0;
	ld->in_tls = strcmp(section, "tls") == 0;
	ld->listener = NULL;
	if (ld->in_global || ld->in_tls)
		return 0;
	for (size_t i = 0; i < c->nlisteners; i++) {
		if (strcmp(c->listeners[i].name, section) == 0) {
			ld->listener = &c->listeners[i];
			return 0;
		}
	}
	if ((ls = realloc(c->listeners, (c->nlisteners + 1) * sizeof(*ls))) == NULL)
		return -1;
	c->listeners = ls;
	ld->listener = &ls[c->nlisteners++];
	memset(ld->listener, 0, sizeof(*ld->listener));
	set_listener_defaults(ld->listener);
	ld->listener->line = ld->header_line;
	if ((ld->listener->name = strdup(section)) == NULL)
		return -1;
	return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;
	const struct cfg_key *k;
	struct cfg_ctx ctx;
	unsigned where;
	char err[512];
	uint64_t *setmask, *refused;

	if (section[0] == '\0') {
		diag_add(ld->d, 0, ld->file, ld->line, NULL, name,
		         "key outside any section; put it under [portier], [tls] "
		         "or a listener section");
		return 1;
	}
	if (strcmp(section, ld->section) != 0 && enter_section(ld, section) < 0)
		return 0;
	where = ld->in_global ? CFG_SEC_GLOBAL : ld->in_tls ? CFG_SEC_TLS
	                                                    : CFG_SEC_LISTENER | CFG_SEC_TLS;
	k = cfg_key_find(name);
	if (k == NULL || !(k->where & where)) {
		const char *near = cfg_key_nearest(name, where);
		if (k != NULL)
			diag_add(ld->d, 0, ld->file, ld->line, section, name,
			         "not allowed in this section; it belongs in %s",
			         k->where & CFG_SEC_GLOBAL ? "[portier]" :
			         k->where & CFG_SEC_TLS ? "[tls] or a listener section" :
			         "a listener section");
		else if (near)
			diag_add(ld->d, 0, ld->file, ld->line, section, name,
			         "unknown key; did you mean '%s'?", near);
		else
			diag_add(ld->d, 0, ld->file, ld->line, section, name,
			         "unknown key (see portier.ini(5) for the keys)");
		return 1;
	}

	ctx.cfg = ld->cfg;
	ctx.listener = ld->listener;
	ctx.tls = ld->listener ? &ld->listener->tls : &ld->cfg->tls;
	ctx.line = ld->line;
	if ((k->where & CFG_SEC_TLS) && !(k->where & where & ~CFG_SEC_TLS)) {
		setmask = &ctx.tls->set;
		refused = &ctx.tls->refused;
	} else if (ld->listener) {
		setmask = &ld->listener->set;
		refused = &ld->listener->refused;
	} else {
		setmask = &ld->cfg->set;
		refused = &ld->cfg->refused;
	}

	if (!k->repeatable && (*setmask & (1ull << cfg_key_index(k)))) {
		diag_add(ld->d, 0, ld->file, ld->line, section, name,
		         "given twice in one section; keep one");
		return 1;
	}
	err[0] = '\0';
	if (value[0] == '\0' && k->set != NULL) {
		diag_add(ld->d, 0, ld->file, ld->line, section, name,
		         "empty value; expected %s", k->type);
		*refused |= 1ull << cfg_key_index(k);
		return 1;
	}
	if (k->set(&ctx, value, err, sizeof(err)) < 0) {
		diag_add(ld->d, 0, ld->file, ld->line, section, name, "%s",
		         err[0] ? err : strerror(errno));
		*refused |= 1ull << cfg_key_index(k);
		return 1;
	}
	*setmask |= 1ull << cfg_key_index(k);
	if (ld->listener != NULL && ld->listener->key_line[cfg_key_index(k)] == 0)
		ld->listener->key_line[cfg_key_index(k)] = ld->line;
	return 1;
}

static struct cfg *load(struct loader *ld)
{
	struct cfg *c = ld->cfg;
	int rc;

	c->tls.policy = CFG_POLICY_INTERMEDIATE;
	c->tls.min_version = 0x0303;
	c->tls.curves = strdup("X25519:P-256:P-384");
	c->log = strdup("syslog");
	c->workers = 1;
	c->drain_timeout_ms = 1800000;

	/* The reader has blanked every line inih could fault; anything it
	 * still refuses gets at least its line number. */
	rc = ini_parse_stream(reader, ld, handler, ld);
	section_end(ld);
	if (rc > 0)
		diag_add(ld->d, 0, ld->file, rc, NULL, NULL, "cannot be read as INI");

	for (size_t i = 0; i < ld->nseen; i++)
		free(ld->seen[i]);
	free(ld->seen);

	/* What was read is part of a file: checking it would blame the part
	 * not read ("no listener sections" for a directory). */
	if (ld->read_errno) {
		diag_add(ld->d, 0, ld->file, 0, NULL, NULL, "cannot read: %s",
		         strerror(ld->read_errno));
		cfg_free(c);
		return NULL;
	}

	cfg_check(c, ld->file, ld->opts, ld->d);
	if (ld->d->errors == 0)
		cfg_lint(c, ld->d);
	if (ld->d->errors && !ld->opts->keep_with_errors) {
		cfg_free(c);
		return NULL;
	}
	return c;
}

static struct cfg *loader_init(struct loader *ld, const char *file,
                               const struct cfg_load_opts *opts, struct diag *d)
{
	static const struct cfg_load_opts defaults;

	memset(ld, 0, sizeof(*ld));
	ld->file = file;
	ld->d = d;
	ld->opts = opts ? opts : &defaults;
	if ((ld->cfg = calloc(1, sizeof(*ld->cfg))) == NULL)
		return NULL;
	if ((ld->cfg->file = strdup(file)) == NULL) {
		free(ld->cfg);
		return NULL;
	}
	return ld->cfg;
}

struct cfg *cfg_load_file(const char *path, struct diag *d)
{
	return cfg_load_file_opts(path, NULL, d);
}

struct cfg *cfg_load_file_opts(const char *path, const struct cfg_load_opts *opts,
                               struct diag *d)
{
	struct loader ld;
	struct cfg *c;

	if (loader_init(&ld, path, opts, d) == NULL)
		return NULL;
	if ((ld.fp = fopen(path, "re")) == NULL) {
		diag_add(d, 0, path, 0, NULL, NULL, "cannot open: %s", strerror(errno));
		cfg_free(ld.cfg);
		return NULL;
	}
	c = load(&ld);
	fclose(ld.fp);
	return c;
}

struct cfg *cfg_load_string(const char *name, const char *text, struct diag *d)
{
	return cfg_load_string_opts(name, text, NULL, d);
}

struct cfg *cfg_load_string_opts(const char *name, const char *text,
                                 const struct cfg_load_opts *opts, struct diag *d)
{
	struct loader ld;

	if (loader_init(&ld, name, opts, d) == NULL)
		return NULL;
	ld.text = text;
	return load(&ld);
}

int cfg_hostname_ok(const char *h)
{
	/* The greeting's own rule, so -t and the connection never disagree. */
	return starttls_hostname_ok(h);
}

static void free_tls(struct cfg_tls *t)
{
	for (size_t i = 0; i < t->ncerts; i++) {
		free(t->certs[i].cert);
		free(t->certs[i].key);
		free(t->certs[i].ocsp);
	}
	free(t->certs);
	free(t->curves);
	free(t->ticket_keys);
}

void cfg_free(struct cfg *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nlisteners; i++) {
		struct cfg_listener *l = &c->listeners[i];
		for (size_t j = 0; j < l->nlisten; j++)
			free(l->listen[j].text);
		free(l->listen);
		free(l->name);
		free(l->backend_text);
		free(l->acme_backend_text);
		free(l->alpn);
		free(l->hostname);
		free(l->proxy_from);
		free_tls(&l->tls);
	}
	free(c->listeners);
	free_tls(&c->tls);
	free(c->file);
	free(c->log);
	free(c->user);
	free(c->ports_file);
	free(c->stats.text);
	free(c->pid_file);
	free(c->hostname);
	free(c);
}

const char *cfg_mode_name(enum cfg_mode m)
{
	static const char *const names[] = {"tls", "starttls", "redirect", "plain"};
	return names[m];
}

const char *cfg_proto_name(enum cfg_proto p)
{
	return proto_get(p)->name;
}

int cfg_listener_port(const struct cfg_listener *l)
{
	return l->nlisten ? l->listen[0].addr.port : 0;
}

int cfg_listener_line(const struct cfg_listener *l, const char *key)
{
	const struct cfg_key *k = key != NULL ? cfg_key_find(key) : NULL;
	int line = k != NULL ? l->key_line[cfg_key_index(k)] : 0;

	return line > 0 ? line : l->line;
}
