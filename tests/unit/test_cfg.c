#include "cfg.h"
#include "cfg_keys.h"
#include "check.h"

#include <stdlib.h>
#include <unistd.h>

/* Loads text and checks that some diagnostic line contains every one of
 * the needles (file:line, section, key, message). */
static struct cfg *load(const char *text, struct diag *d)
{
	diag_free(d);
	return cfg_load_string("t.ini", text, d);
}

static int said(const struct diag *d, const char *a, const char *b)
{
	for (size_t i = 0; i < d->n; i++)
		if (strstr(d->lines[i], a) && (b == NULL || strstr(d->lines[i], b)))
			return 1;
	fprintf(stderr, "no diagnostic with \"%s\" + \"%s\"; got:\n", a, b ? b : "");
	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "  %s\n", d->lines[i]);
	return 0;
}

#define TLS "[tls]\ncert = /c.pem\n"

/* Whether some diagnostic holds a, without saying so when none does. */
static int said_quiet(const struct diag *d, const char *a)
{
	for (size_t i = 0; i < d->n; i++)
		if (strstr(d->lines[i], a))
			return 1;
	return 0;
}

/* Every duration key, its bounds in ms, and how its help line and its
 * range error say them. */
static const struct {
	const char *key;
	unsigned lo, hi;
	const char *range;
} durations[] = {
	{"drain_timeout", 1000, 7 * 86400000u, "1s to 7 days"},
	{"handshake_timeout", 100, 600000, "100ms to 10m"},
	{"idle_timeout", 1000, 7 * 86400000u, "1s to 7 days"},
	{"connect_timeout", 100, 600000, "100ms to 10m"},
	{"prelude_timeout", 1000, 3600000, "1s to 1h"},
};

/* Loads a good config with one duration key set to value: drain_timeout at
 * t.ini:2 in [portier], the others at t.ini:6 in [a]. */
static struct cfg *load_duration(const char *key, const char *value, struct diag *d)
{
	char text[512];

	if (strcmp(key, "drain_timeout") == 0)
		snprintf(text, sizeof(text), "[portier]\n%s = %s\n" TLS
		         "[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", key, value);
	else
		snprintf(text, sizeof(text), TLS "[a]\nlisten = 1\nbackend = "
		         "127.0.0.1:2\n%s = %s\n", key, value);
	diag_free(d);
	return cfg_load_string("t.ini", text, d);
}

/* Where load_duration's key is reported. */
static const char *duration_where(const char *key, char *out, size_t outlen)
{
	if (strcmp(key, "drain_timeout") == 0)
		snprintf(out, outlen, "t.ini:2: [portier] %s: ", key);
	else
		snprintf(out, outlen, "t.ini:6: [a] %s: ", key);
	return out;
}

static unsigned duration_ms(const struct cfg *c, const char *key)
{
	const struct cfg_listener *l = &c->listeners[0];

	if (strcmp(key, "drain_timeout") == 0)
		return c->drain_timeout_ms;
	if (strcmp(key, "handshake_timeout") == 0)
		return l->handshake_timeout_ms;
	if (strcmp(key, "idle_timeout") == 0)
		return l->idle_timeout_ms;
	if (strcmp(key, "connect_timeout") == 0)
		return l->connect_timeout_ms;
	return l->prelude_timeout_ms;
}

/* value must load as ms for key; 1 if it did. */
static int duration_is(const char *key, const char *value, unsigned ms)
{
	struct diag d = {0};
	struct cfg *c = load_duration(key, value, &d);
	int ok = c != NULL && d.errors == 0 && duration_ms(c, key) == ms;

	if (!ok)
		fprintf(stderr, "%s = %s: wanted %u ms, got %s (%u ms)\n", key, value,
		        ms, c ? "a config" : "an error", c ? duration_ms(c, key) : 0);
	cfg_free(c);
	diag_free(&d);
	return ok;
}

/* value must be refused for key, at its line, with why in the message. */
static int duration_refused(const char *key, const char *value, const char *why)
{
	struct diag d = {0};
	struct cfg *c = load_duration(key, value, &d);
	char where[128];
	int ok = c == NULL && d.errors == 1 &&
	         said(&d, duration_where(key, where, sizeof(where)), why);

	if (!ok)
		fprintf(stderr, "%s = '%s' was not refused with '%s'\n", key, value, why);
	cfg_free(c);
	diag_free(&d);
	return ok;
}

/* A realloc that fails once fail_after calls have succeeded (never when
 * negative), for the diag's allocation seam. */
static int fail_after = -1;

static void *failing_realloc(void *p, size_t n)
{
	if (fail_after == 0)
		return NULL;
	if (fail_after > 0)
		fail_after--;
	return realloc(p, n);
}

/* What diag_print writes. */
static char *printed(const struct diag *d)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (f == NULL)
		return NULL;
	diag_print(d, f);
	fclose(f);
	return out;
}

#define MX "[mx]\nlisten = 2525\nmode = starttls\nprotocol = smtp\nbackend = 127.0.0.1:2\n"

/* The per-client limits: rate in connections a minute, the burst's
 * default, the ranges, and what needs what. */
static void test_limits_per_ip(void)
{
	struct diag d = {0};
	struct cfg *c;
	const char *base = TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\n";
	char text[512];
	static const struct {
		const char *v;
		unsigned per_min, burst;
	} rates[] = {{"5", 300, 5}, {"5/s", 300, 5}, {"90/m", 90, 1},
	             {"600/m", 600, 10}, {"1/m", 1, 1}, {"10000/s", 600000, 10000}};

	c = load(base, &d);
	CHECK(c && c->listeners[0].max_conns_per_ip == 0 &&
	      c->listeners[0].rate_per_min == 0 && c->listeners[0].ipv6_prefix == 0);
	cfg_free(c);
	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		snprintf(text, sizeof(text), "%srate_per_ip = %s\n", base, rates[i].v);
		c = load(text, &d);
		CHECK(c && c->listeners[0].rate_per_min == rates[i].per_min &&
		      c->listeners[0].rate_burst == rates[i].burst);
		cfg_free(c);
	}
	c = load("[portier]\nipv6_prefix = 48\n" TLS "[a]\nlisten = 1\n"
	         "backend = 127.0.0.1:2\nmax_connections_per_ip = 10\nrate_per_ip = 2/s\n"
	         "rate_burst = 20\nipv6_prefix = 56\n", &d);
	CHECK(c && c->ipv6_prefix == 48 && c->listeners[0].ipv6_prefix == 56 &&
	      c->listeners[0].max_conns_per_ip == 10 && c->listeners[0].rate_burst == 20);
	cfg_free(c);
	/* A prefix inside a byte is taken as it is, at either level. */
	c = load("[portier]\nipv6_prefix = 60\n" TLS "[a]\nlisten = 1\n"
	         "backend = 127.0.0.1:2\nmax_connections_per_ip = 1\nipv6_prefix = 33\n", &d);
	CHECK(c && c->ipv6_prefix == 60 && c->listeners[0].ipv6_prefix == 33);
	cfg_free(c);
	c = load("[portier]\nipv6_prefix = 0\n" TLS "[a]\nlisten = 1\n"
	         "backend = 127.0.0.1:2\n", &d);
	CHECK(c == NULL && said(&d, "ipv6_prefix", "from 32 to 128"));
	cfg_free(c);
	static const struct {
		const char *line, *key, *what;
	} bad[] = {
		{"rate_per_ip = 5/h", "rate_per_ip", "N/s or N/m"},
		{"rate_per_ip = /s", "rate_per_ip", "N/s or N/m"},
		{"rate_per_ip = 0", "rate_per_ip", "from 1 to 10000"},
		{"rate_per_ip = 10001/s", "rate_per_ip", "from 1 to 10000"},
		{"rate_per_ip = 600001/m", "rate_per_ip", "from 1 to 600000"},
		{"max_connections_per_ip = 0", "max_connections_per_ip", "from 1 to 1000000"},
		{"rate_burst = 10001\nrate_per_ip = 1", "rate_burst", "from 1 to 10000"},
		{"rate_burst = 5", "rate_burst", "only used with rate_per_ip"},
		/* 0 is what an unset key holds inside (the default): written,
		 * it is refused like any other number out of the range. */
		{"ipv6_prefix = 0", "ipv6_prefix", "from 32 to 128"},
		{"ipv6_prefix = 31", "ipv6_prefix", "from 32 to 128"},
		{"ipv6_prefix = 129", "ipv6_prefix", "from 32 to 128"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s%s\n", base, bad[i].line);
		c = load(text, &d);
		CHECK(c == NULL);
		CHECK(said(&d, bad[i].key, bad[i].what));
		cfg_free(c);
	}
	diag_free(&d);
}

/* A check of keys together (cfg_check.c, cfg_lint.c) says the line of
 * the key it names, so an admin goes straight to it; a key that is
 * missing is said at its section's header. */
static void test_blamed_lines(void)
{
	struct diag d = {0};

	load(TLS "[s]\nlisten = 143\nmode = starttls\nprotocol = imap\n"
	     "backend = 127.0.0.1:2\nstarttls = optional\naccept_proxy = yes\n"
	     "rate_burst = 4\nxclient = yes\naccept_proxy_timeout = 2s\n", &d);
	CHECK(said(&d, "t.ini:8: [s] starttls:", "optional is for SMTP only"));
	/* Missing, so said where the key that asks for it is. */
	CHECK(said(&d, "t.ini:9: [s] accept_proxy_from:", "missing; accept_proxy = yes"));
	CHECK(said(&d, "t.ini:10: [s] rate_burst:", "only used with rate_per_ip"));
	CHECK(said(&d, "t.ini:11: [s] xclient:", "only for mode = starttls"));
	load(TLS "[s]\nlisten = 143\nmode = starttls\n\n; what it speaks\nprotocol = http\n", &d);
	CHECK(said(&d, "t.ini:3: [s] backend:", "missing; expected HOST:PORT"));
	CHECK(said(&d, "t.ini:8: [s] protocol:", "mode = starttls needs the protocol"));
	load("[w]\nlisten = 80\nmode = redirect\nbackend = 127.0.0.1:2\nprotocol = smtp\n"
	     "send_proxy = v1\n[t]\nlisten = 443\nbackend = 127.0.0.1:2\n"
	     "acme_backend = 127.0.0.1:8402\naccept_proxy_timeout = 2s\nmode = plain\n"
	     "starttls = required\n", &d);
	CHECK(said(&d, "t.ini:4: [w] backend:", "mode = redirect answers every request"));
	CHECK(said(&d, "t.ini:5: [w] protocol:", "mode = redirect speaks HTTP"));
	CHECK(said(&d, "t.ini:6: [w] send_proxy:", "connects to no backend"));
	CHECK(said(&d, "t.ini:10: [t] acme_backend:", "only used with mode = redirect"));
	CHECK(said(&d, "t.ini:11: [t] accept_proxy_timeout:", "only used with accept_proxy"));
	CHECK(said(&d, "t.ini:13: [t] starttls:", "only used with mode = starttls"));
	/* A [tls] key missing from a listener: its header too. */
	load("[t]\nlisten = 443\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:1: [t] cert:", "needs a certificate"));
	/* A section given twice: the first line of each key is blamed. */
	load(TLS "[s]\nlisten = 25\nbackend = 127.0.0.1:2\nxclient = yes\n"
	     "[s]\nlisten = 26\n", &d);
	CHECK(said(&d, "t.ini:6: [s] xclient:", "only for mode = starttls"));
	diag_free(&d);
}

/* A ports_file or pid_file whose directory is missing (or no directory)
 * is a warning at the key's line; the config loads. /proc has no such
 * entry and takes none, and /dev/null is no directory, on every Linux. */
static void test_written_files(void)
{
	struct diag d = {0};
	struct cfg *c;

	c = load("[portier]\nports_file = /proc/portier-none/ports\n"
	         "pid_file = /dev/null/portier.pid\nlog = /proc/portier-none/portier.log\n" TLS
	         "[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(c != NULL && d.errors == 0 && d.warnings == 3);
	/* The log too (its open then fails the start, without a line). */
	CHECK(said(&d, "t.ini:4: [portier] log: '/proc/portier-none/portier.log' cannot be "
	           "written: directory '/proc/portier-none' does not exist", NULL));
	CHECK(said(&d, "t.ini:2: [portier] ports_file: '/proc/portier-none/ports' cannot be "
	           "written: directory '/proc/portier-none' does not exist", NULL));
	CHECK(said(&d, "t.ini:3: [portier] pid_file: '/dev/null/portier.pid' cannot be "
	           "written: '/dev/null' is not a directory", NULL));
	cfg_free(c);
	/* What is at the path already: a directory, or a pid_file that is
	 * no regular file, is not written. */
	c = load("[portier]\nports_file = /tmp\npid_file = /dev/null\n" TLS
	         "[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(c != NULL && d.errors == 0 && d.warnings == 2);
	CHECK(said(&d, "t.ini:2: [portier] ports_file: '/tmp' is a directory", NULL));
	CHECK(said(&d, "t.ini:3: [portier] pid_file: '/dev/null' is not a regular file (a "
	           "device or a socket); portier writes its pid_file only as one", NULL));
	cfg_free(c);
	/* Directories that exist, the root among them, say nothing. */
	c = load("[portier]\nports_file = /tmp/portier.ports\npid_file = /portier.pid\n"
	         "log = /tmp/portier.log\n" TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(c != NULL && d.errors == 0 && d.warnings == 0);
	cfg_free(c);
	diag_free(&d);
}

#define BASE TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\n"

/* bytes[0..n) as a file, loaded; its name is left in path (removed). */
static struct cfg *load_file(const char *bytes, size_t n, char *path, size_t plen,
                             struct diag *d)
{
	struct cfg *c = NULL;
	int fd;

	snprintf(path, plen, "/tmp/portier-test-cfg-XXXXXX");
	diag_free(d);
	if ((fd = mkstemp(path)) < 0)
		return NULL;
	if (write(fd, bytes, n) == (ssize_t)n)
		c = cfg_load_file(path, d);
	close(fd);
	unlink(path);
	return c;
}

/* A diagnostic of path at line that says what. */
static int said_at(const struct diag *d, const char *path, int line, const char *what)
{
	char at[128];

	snprintf(at, sizeof(at), "%s:%d:", path, line);
	return said(d, at, what);
}

/* The file reader, byte by byte: a NUL byte, a line at inih's bound (198
 * bytes of text) and past it, a last line without its newline, a
 * byte-order mark first and elsewhere; each later line keeps its number.
 * A file that cannot be read is refused as such. */
static void test_file_lines(void)
{
	static char text[1024], line[256];
	char path[64];
	struct diag d = {0};
	struct cfg *c;
	size_t n;

	n = (size_t)snprintf(text, sizeof(text), BASE "hostname = x\n");
	text[n - 4] = '\0';                     /* "hostname = \0\n" */
	n += (size_t)snprintf(text + n, sizeof(text) - n, "bakend = x\n");
	c = load_file(text, n, path, sizeof(path), &d);
	CHECK(c == NULL && said_at(&d, path, 6, "line holds a NUL byte") &&
	      said_at(&d, path, 7, "did you mean 'backend'"));
	CHECK(d.errors == 2);

	/* 198 bytes and its newline: read. 199: refused, the rest of it
	 * skipped, the next line the next number. */
	for (size_t len = 198; len <= 200; len++) {
		memset(line, 'a', sizeof(line));
		memcpy(line, "hostname = ", 11);
		line[len] = '\0';
		n = (size_t)snprintf(text, sizeof(text), BASE "%s\nbakend = x\n", line);
		cfg_free(load_file(text, n, path, sizeof(path), &d));
		CHECK(said_at(&d, path, 7, "did you mean 'backend'"));
		if (len == 198)
			CHECK(d.errors == 1);
		else
			CHECK(d.errors == 2 && said_at(&d, path, 6, "line longer than 198 bytes"));
	}
	/* The last line without its newline; a line of a newline alone. */
	n = (size_t)snprintf(text, sizeof(text), BASE "\nbakend = x");
	cfg_free(load_file(text, n, path, sizeof(path), &d));
	CHECK(d.errors == 1 && said_at(&d, path, 7, "did you mean 'backend'"));
	/* A byte-order mark is skipped at the start only. */
	n = (size_t)snprintf(text, sizeof(text), "\xef\xbb\xbf" BASE);
	c = load_file(text, n, path, sizeof(path), &d);
	CHECK(c != NULL && d.errors == 0);
	cfg_free(c);
	n = (size_t)snprintf(text, sizeof(text), TLS "\xef\xbb\xbf[a]\nlisten = 1\n"
	                     "backend = 127.0.0.1:2\n");
	cfg_free(load_file(text, n, path, sizeof(path), &d));
	CHECK(said_at(&d, path, 3, "not a 'key = value' line"));
	/* A directory opens but does not read. */
	diag_free(&d);
	CHECK(cfg_load_file("/tmp", &d) == NULL && said(&d, "/tmp:", "cannot read:") &&
	      d.errors == 1);
	diag_free(&d);
}

/* Lines that say nothing, and section headers: what may follow the ']',
 * which names are names, their bound, and which sections may be empty. */
static void test_headers(void)
{
	struct diag d = {0};
	struct cfg *c;
	char text[512], name[160];

	c = load("  ; a comment\n\t# another\n\r\n   \n" TLS
	         "[a-b_c.9] ; the listener\nlisten = 1\nbackend = 127.0.0.1:2\n"
	         "[d]\t\r\nlisten = 2\nbackend = 127.0.0.1:2\n"
	         "[e] # note\nlisten = 3\nbackend = 127.0.0.1:2\n", &d);
	CHECK(c != NULL && d.n == 0);
	cfg_free(c);
	load(BASE "[f]x\nlisten = 4\nbackend = 127.0.0.1:2\n", &d);
	CHECK(d.errors == 1 && said(&d, "t.ini:6: [f]", "text after the section header"));
	load(BASE "[f]\tx\nlisten = 4\nbackend = 127.0.0.1:2\n", &d);
	CHECK(d.errors == 1 && said(&d, "t.ini:6: [f]", "text after the section header"));
	c = load(BASE "[f]\r;\nlisten = 4\nbackend = 127.0.0.1:2\n", &d);
	CHECK(c != NULL && d.n == 0);
	cfg_free(c);
	for (const char *bad = "/ :+"; *bad; bad++) {
		snprintf(text, sizeof(text), BASE "[f%cg]\nlisten = 4\nbackend = 127.0.0.1:2\n", *bad);
		load(text, &d);
		CHECK(said(&d, "t.ini:6:", "section names may hold"));
	}
	/* 49 characters are a name; 50 are cut by inih, so refused. */
	for (size_t len = 49; len <= 50; len++) {
		memset(name, 'n', len);
		name[len] = '\0';
		snprintf(text, sizeof(text), BASE "[%s]\nlisten = 4\nbackend = 127.0.0.1:2\n", name);
		c = load(text, &d);
		if (len == 49)
			CHECK(c != NULL && d.n == 0);
		else
			CHECK(c == NULL && said(&d, "t.ini:6:", "longer than 49 characters"));
		cfg_free(c);
	}
	/* [portier] and [tls] may be empty (their defaults); a listener
	 * section may not. */
	c = load("[portier]\n; nothing\n" TLS "[tls]\n" "[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(!said_quiet(&d, "section has no keys"));
	cfg_free(c);
	c = load("[portier]\n" BASE "[b]\n; all commented out\n[c]\nlisten = 5\n"
	         "backend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:7: [b]", "section has no keys"));
	cfg_free(c);
	/* An indented line; a line that is neither key nor header. */
	load(BASE " x = 1\nnonsense\n", &d);
	CHECK(said(&d, "t.ini:6:", "indented line") && said(&d, "t.ini:7:", "not a 'key = value'"));
	/* No name at all; a name longer than the reader's copy of it. */
	load(BASE "[]\nlisten = 4\n", &d);
	CHECK(said(&d, "t.ini:6:", "section names may hold"));
	memset(name, 'n', sizeof(name));
	for (int len = 127; len <= 150; len += len < 129 ? 1 : 21) {
		snprintf(text, sizeof(text), BASE "[%.*s]\nlisten = 4\n", len, name);
		load(text, &d);
		CHECK(said(&d, "t.ini:6:", "longer than 49 characters"));
	}
	/* Past a bad line, the parse goes on: every problem is told. */
	load("hostname = x\n" BASE "listen = 2\nlisten_x = 1\n", &d);
	CHECK(said(&d, "t.ini:1:", "key outside any section") &&
	      said(&d, "t.ini:8: [a] listen_x:", "unknown key"));
	load(BASE "backend = 127.0.0.1:3\nbakend = 1\n", &d);
	CHECK(said(&d, "t.ini:6: [a] backend:", "given twice") &&
	      said(&d, "t.ini:7: [a] bakend:", "did you mean"));
	diag_free(&d);
}

/* The same bound when the text comes from memory: 198 bytes of a line
 * are read, 199 and more are refused (the copy stays inside the line's
 * buffer: the ASan build sees a write past it). */
static void test_string_lines(void)
{
	struct diag d = {0};
	static char text[1024], line[256];
	struct cfg *c;

	for (size_t len = 198; len <= 250; len += len < 200 ? 1 : 50) {
		memset(line, 'a', sizeof(line));
		memcpy(line, "hostname = ", 11);
		line[len] = '\0';
		snprintf(text, sizeof(text), BASE "%s\nbakend = x\n", line);
		c = load(text, &d);
		CHECK(c == NULL && said(&d, "t.ini:7:", "did you mean 'backend'"));
		if (len == 198)
			CHECK(d.errors == 1);
		else
			CHECK(d.errors == 2 && said(&d, "t.ini:6:", "line longer than 198 bytes"));
	}
	diag_free(&d);
}

int main(void)
{
	struct diag d = {0};
	struct cfg *c;

	test_limits_per_ip();
	test_blamed_lines();
	test_written_files();
	test_file_lines();
	test_headers();
	test_string_lines();
	/* A good config, with defaults and [tls] inherited. */
	c = load("[portier]\nlog = stderr\n"
	         "[tls]\ncert = /a.pem\nkey = /a.key\ncert = /b.pem\n"
	         "[imaps]\nlisten = 993\nlisten = [::1]:9993\nprotocol = imap\n"
	         "backend = 127.0.0.1:143\n"
	         "[web]\nlisten = 127.0.0.1:8443 ; a comment\nprotocol = http\n"
	         "backend = unix:/run/app.sock\nmin_version = 1.3\nidle_timeout = 90s\n"
	         "[http]\nlisten = 80\nmode = redirect\nredirect_port = 8443\n"
	         "acme_backend = 127.0.0.1:8402\n", &d);
	CHECK(c != NULL && d.errors == 0);
	if (c) {
		const struct cfg_listener *imaps = &c->listeners[0], *web = &c->listeners[1];
		CHECK(c->nlisteners == 3);
		CHECK_STR(imaps->name, "imaps");
		CHECK(imaps->nlisten == 2 && imaps->listen[0].addr.any && imaps->listen[0].addr.port == 993);
		CHECK(imaps->mode == CFG_MODE_TLS && imaps->proto == CFG_PROTO_IMAP);
		CHECK_STR(imaps->alpn, "imap");
		CHECK(imaps->idle_timeout_ms == 1800000 && imaps->handshake_timeout_ms == 10000);
		CHECK(imaps->tls.ncerts == 2 && imaps->tls.min_version == 0x0303);
		CHECK_STR(imaps->tls.certs[0].key, "/a.key");
		CHECK(imaps->tls.certs[1].key == NULL);
		CHECK_STR(imaps->tls.curves, "X25519:P-256:P-384");
		CHECK(web->tls.min_version == 0x0304 && c->tls.min_version == 0x0303);
		CHECK(web->idle_timeout_ms == 90000);
		CHECK_STR(web->alpn, "http/1.1");
		CHECK(c->listeners[2].proto == CFG_PROTO_HTTP && c->listeners[2].redirect_port == 8443);
		CHECK_STR(c->log, "stderr");
	}
	cfg_free(c);

	/* Unknown key, with and without a near miss; key in the wrong section. */
	c = load(TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\nbakend = x\n", &d);
	CHECK(c == NULL && said(&d, "t.ini:6: [a] bakend:", "did you mean 'backend'"));
	load(TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\nfrobnicate = 1\n", &d);
	CHECK(said(&d, "t.ini:6: [a] frobnicate:", "unknown key"));
	load(TLS "[portier]\nlisten = 5\n[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:4: [portier] listen:", "not allowed in this section"));
	load("[tls]\ncert = /c.pem\nuser = x\n[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:3: [tls] user:", "[portier]"));

	/* A misspelt [tls] section is named as such. */
	load("[tsl]\ncert = /c.pem\n[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:1: [tsl]", "did you mean [tls]"));

	/* Bad values, each with file:line, section and key. */
	load(TLS "[a]\nlisten = 70000\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:4: [a] listen:", "0-65535"));
	load(TLS "[a]\nlisten = example.org:443\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:4: [a] listen:", "numeric IP"));
	load(TLS "[a]\nlisten = 1\nmode = tsl\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:5: [a] mode:", "tls, starttls, redirect, plain"));
	load(TLS "[a]\nlisten = 1\nprotocol = gopher\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:5: [a] protocol:", "not one of"));
	load(TLS "[a]\nlisten = 1\nbackend = 127.0.0.1\n", &d);
	CHECK(said(&d, "t.ini:5: [a] backend:", "HOST:PORT"));
	load(TLS "[a]\nlisten = 1\nbackend = unix:relative\n", &d);
	CHECK(said(&d, "t.ini:5: [a] backend:", "unix:/absolute/path"));
	load(TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\nidle_timeout = soon\n", &d);
	CHECK(said(&d, "t.ini:6: [a] idle_timeout:", "duration"));
	load(TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\nmax_connections = -3\n", &d);
	CHECK(said(&d, "t.ini:6: [a] max_connections:", "number"));
	load("[tls]\ncert = /c.pem\nmin_version = 1.1\n[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:3: [tls] min_version:", "1.2 or 1.3"));
	load("[tls]\ncert = /c.pem\ncurves = X25519:P-999\n[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:3: [tls] curves:", "P-999"));
	load("[tls]\nkey = /k.pem\n[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:2: [tls] key:", "cert line before it"));
	/* ocsp pairs with the cert line before it, once; [tls]'s are inherited. */
	load("[tls]\nocsp = /o.der\n[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:2: [tls] ocsp:", "cert line before it"));
	load("[tls]\ncert = /c.pem\nocsp = /o.der\nocsp = /p.der\n[a]\nlisten = 1\n"
	     "backend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:4: [tls] ocsp:", "cert line before it"));
	c = load("[tls]\ncert = /c.pem\nocsp = /o.der\ncert = /d.pem\n[a]\nlisten = 1\n"
	         "backend = 127.0.0.1:2\n", &d);
	CHECK(c != NULL && d.errors == 0);
	if (c) {
		CHECK_STR(c->listeners[0].tls.certs[0].ocsp, "/o.der");
		CHECK(c->listeners[0].tls.certs[0].ocsp_line == 3);
		CHECK(c->listeners[0].tls.certs[1].ocsp == NULL);
	}
	cfg_free(c);
	load("[portier]\nlog = relative.log\n" TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:2: [portier] log:", "absolute path"));
	load(TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\nalpn = h2,http/1.1\n", &d);
	CHECK(said(&d, "t.ini:6: [a] alpn:", "one protocol id"));
	load(TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\nidle_timeout =\n", &d);
	CHECK(said(&d, "t.ini:6: [a] idle_timeout:", "empty value"));

	/* Structure: missing pieces, duplicates, stray lines. */
	load(TLS "[a]\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:3: [a] listen:", "missing"));
	load(TLS "[a]\nlisten = 1\n", &d);
	CHECK(said(&d, "t.ini:3: [a] backend:", "missing"));
	load("[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:1: [a] cert:", "needs a certificate"));
	load(TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\nmode = tls\nmode = plain\n", &d);
	CHECK(said(&d, "t.ini:7: [a] mode:", "twice"));
	load(TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\n[a]\nlisten = 3\n", &d);
	CHECK(said(&d, "t.ini:6: [a]", "section appears twice"));
	load(TLS "[a]\nlisten = 127.0.0.1:8443\nbackend = 127.0.0.1:2\n"
	     "[b]\nlisten = 8443\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:7: [b] listen:", "already taken by [a] at line 4"));
	/* stats: an address as listen takes, not one a listener has. */
	c = load("[portier]\nstats = 127.0.0.1:9120\n" TLS
	         "[a]\nlisten = 127.0.0.1:0\nbackend = 127.0.0.1:2\n", &d);
	CHECK(c != NULL && d.warnings == 0 && c->stats.text != NULL &&
	      c->stats.addr.port == 9120 && c->stats.line == 2);
	cfg_free(c);
	c = load(TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(c != NULL && c->stats.text == NULL);
	cfg_free(c);
	load("[portier]\nstats = 9120\n" TLS "[a]\nlisten = 127.0.0.1:9120\n"
	     "backend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:2: [portier] stats:", "already taken by [a] at line 6"));
	load("[portier]\nstats = localhost:9120\n" TLS "[a]\nlisten = 1\n"
	     "backend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:2: [portier] stats:", NULL));
	c = load("[portier]\nstats = [::]:9120\n" TLS "[a]\nlisten = 1\n"
	         "backend = 127.0.0.1:2\n", &d);
	CHECK(c != NULL && said(&d, "t.ini:2: [portier] stats:", "not a loopback address"));
	cfg_free(c);
	c = load("[portier]\nstats = [::1]:9120\n" TLS "[a]\nlisten = 1\n"
	         "backend = 127.0.0.1:2\n", &d);
	CHECK(c != NULL && d.warnings == 0);
	cfg_free(c);
	load(TLS "[a]\nlisten = 1\n   backend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:5:", "indented line"));
	load(TLS "[a]\nlisten = 1\nthis is not ini\nbackend = 127.0.0.1:2\nnor this\n", &d);
	CHECK(said(&d, "t.ini:5:", "not a 'key = value' line"));
	CHECK(said(&d, "t.ini:7:", "not a 'key = value' line"));
	load(TLS "[a\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:3:", "section header without ']'"));
	{
		char text[600];
		char longv[300];
		memset(longv, 'x', sizeof(longv) - 1);
		longv[sizeof(longv) - 1] = '\0';
		snprintf(text, sizeof(text), TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\nuser = %s\n", longv);
		load(text, &d);
		CHECK(said(&d, "t.ini:6:", "line longer than"));
	}
	load("listen = 1\n" TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:1:", "outside any section"));
	load("[portier]\nlog = stderr\n", &d);
	CHECK(said(&d, "t.ini:", "no listener sections"));
	load(TLS "[a]\nlisten = 1\nmode = starttls\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "[a] protocol:", "needs the protocol"));
	load(TLS "[a]\nlisten = 1\nmode = redirect\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "[a] backend:", "remove the backend"));
	load(TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\nredirect_port = 8443\n", &d);
	CHECK(said(&d, "[a] redirect_port:", "only used with mode = redirect"));

	/* Every problem is reported, not just the first. */
	c = load("[tls]\ncert = /c.pem\nmin_version = 1.0\n[a]\nlisten = x\nmode = nope\nbackend = 127.0.0.1:2\n", &d);
	CHECK(c == NULL && d.errors >= 3);
	CHECK(said(&d, "t.ini:3:", "min_version") && said(&d, "t.ini:5:", "listen") &&
	      said(&d, "t.ini:6:", "mode"));

	/* Lint: well-known ports with the other model are warnings, and the
	 * config still loads. */
	c = load(TLS "[imaps]\nlisten = 993\nmode = starttls\nprotocol = imap\nbackend = 127.0.0.1:143\n"
	         "[smtp]\nlisten = 25\nprotocol = smtp\nbackend = 127.0.0.1:2525\n"
	         "[web]\nlisten = 80\nbackend = 127.0.0.1:8080\n", &d);
	CHECK(c != NULL && d.errors == 0 && d.warnings == 3);
	CHECK(said(&d, "t.ini:4: [imaps] listen:", "port 993 is IMAPS"));
	CHECK(said(&d, "t.ini:9: [smtp] listen:", "use mode = starttls"));
	CHECK(said(&d, "t.ini:13: [web] listen:", "port 80 is plain HTTP"));
	cfg_free(c);

	/* STARTTLS: optional only for SMTP; port 25 should not require TLS. */
	load(TLS "[a]\nlisten = 143\nmode = starttls\nprotocol = imap\nstarttls = optional\n"
	     "backend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "[a] starttls:", "SMTP only"));
	c = load(TLS "[mx]\nlisten = 25\nmode = starttls\nprotocol = smtp\nbackend = 127.0.0.1:2\n", &d);
	CHECK(c != NULL && said(&d, "t.ini:4: [mx] starttls:", "starttls = optional"));
	cfg_free(c);
	c = load(TLS "[mx]\nlisten = 25\nmode = starttls\nprotocol = smtp\nstarttls = optional\n"
	         "backend = 127.0.0.1:2\n", &d);
	CHECK(c != NULL && d.warnings == 0);
	cfg_free(c);
	/* FTP behind TLS, both models, with its data ports; a plain relay
	 * of it needs none. */
	c = load(TLS "[f]\nlisten = 21\nmode = starttls\nprotocol = ftp\nbackend = 127.0.0.1:2\n"
	         "data_ports = 50000-50100\n", &d);
	CHECK(c != NULL && d.errors == 0);
	cfg_free(c);
	c = load(TLS "[f]\nlisten = 990\nprotocol = ftp\nbackend = 127.0.0.1:2\n"
	         "data_ports = 50000-50100\n", &d);
	CHECK(c != NULL && d.errors == 0);
	cfg_free(c);
	c = load(TLS "[f]\nlisten = 2121\nmode = plain\nprotocol = ftp\nbackend = 127.0.0.1:2\n", &d);
	CHECK(c != NULL && d.errors == 0);
	cfg_free(c);
	/* FTP's keys: data_ports is asked for behind TLS; each key parsed
	 * and range-checked; all of them refused on other protocols. */
	load(TLS "[f]\nlisten = 21\nmode = starttls\nprotocol = ftp\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "t.ini:3: [f] data_ports:", "missing; FTP behind TLS needs"));
	c = load(TLS "[f]\nlisten = 21\nmode = starttls\nprotocol = ftp\nbackend = 127.0.0.1:2\n"
	         "data_ports = 50000-50100\n", &d);
	CHECK(c != NULL && d.n == 0);
	cfg_free(c);
	/* Behind a PROXY-speaking balancer, data connections that come
	 * through it too would fail the peer check: a warning, gone with
	 * data_peer_check = no. */
	c = load(TLS "[f]\nlisten = 21\nmode = starttls\nprotocol = ftp\nbackend = 127.0.0.1:2\n"
	         "data_ports = 50000-50100\naccept_proxy = yes\naccept_proxy_from = 10.0.0.1\n", &d);
	CHECK(c != NULL && d.errors == 0 && d.warnings == 1);
	CHECK(said(&d, "t.ini:9: [f] accept_proxy:", "data connections carry no PROXY header"));
	cfg_free(c);
	c = load(TLS "[f]\nlisten = 21\nmode = starttls\nprotocol = ftp\nbackend = 127.0.0.1:2\n"
	         "data_ports = 50000-50100\naccept_proxy = yes\naccept_proxy_from = 10.0.0.1\n"
	         "data_peer_check = no\n", &d);
	CHECK(c != NULL && d.n == 0);
	cfg_free(c);
	c = load(TLS "[f]\nlisten = 2121\nmode = plain\nprotocol = ftp\nbackend = 127.0.0.1:2\n"
	         "data_ports = 50000-50100\npublic_address = 203.0.113.10\n"
	         "data_protection = optional\ndata_peer_check = no\n"
	         "require_session_reuse = no\nmax_data_connections = 8\nactive = yes\n", &d);
	/* Parsed (a typo is still an error), but unused with mode = plain:
	 * each says so at its own line (8 to 14), as a warning (the eighth:
	 * the [tls] cert no listener uses). */
	CHECK(c != NULL && d.errors == 0 && d.warnings == 8);
	{
		static const char *const keys[] = {"data_ports", "public_address",
			"data_protection", "data_peer_check", "require_session_reuse",
			"max_data_connections", "active"};
		char want[64];
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			snprintf(want, sizeof(want), "t.ini:%zu: [f] %s:", 8 + i, keys[i]);
			CHECK(said(&d, want, "unused with mode = plain"));
		}
	}
	if (c != NULL) {
		const struct cfg_listener *l = &c->listeners[0];
		CHECK(l->ftp_data_low == 50000 && l->ftp_data_high == 50100);
		CHECK(memcmp(l->ftp_public_v4, "\xcb\x00\x71\x0a", 4) == 0);
		CHECK(l->ftp_prot_c_ok == 1 && l->ftp_peer_check == 0 &&
		      l->ftp_session_reuse == 0 && l->ftp_max_data == 8 && l->ftp_active == 1);
	}
	cfg_free(c);
	c = load(TLS "[f]\nlisten = 2121\nmode = plain\nprotocol = ftp\nbackend = 127.0.0.1:2\n", &d);
	CHECK(c != NULL && c->listeners[0].ftp_prot_c_ok == 0 &&
	      c->listeners[0].ftp_peer_check == 1 && c->listeners[0].ftp_session_reuse == 1 &&
	      c->listeners[0].ftp_max_data == 2 && c->listeners[0].ftp_data_low == 0 &&
	      c->listeners[0].ftp_active == 0 &&
	      c->listeners[0].idle_timeout_ms == 15 * 60000);   /* FTP's control idle */
	cfg_free(c);
	{
		static const char *const bad[][2] = {
			{"data_ports", "50100-50000"}, {"data_ports", "80-90"},
			{"data_ports", "50000"}, {"data_ports", "50000-70000"},
			{"data_ports", "50000-"}, {"data_ports", "-5"},
			{"data_ports", "50000-50100x"}, {"public_address", "::1"},
			{"public_address", "ftp.example.org"}, {"public_address", "0.0.0.0"},
			{"data_protection", "clear"}, {"data_peer_check", "maybe"},
			{"require_session_reuse", "1"}, {"max_data_connections", "0"},
			{"max_data_connections", "65"}, {"active", "on"},
		};
		char text[512], want[64];
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(text, sizeof(text), TLS "[f]\nlisten = 2121\nmode = plain\n"
			         "protocol = ftp\nbackend = 127.0.0.1:2\n%s = %s\n",
			         bad[i][0], bad[i][1]);
			snprintf(want, sizeof(want), "t.ini:8: [f] %s:", bad[i][0]);
			CHECK(load(text, &d) == NULL && said(&d, want, ""));
		}
	}
	load(TLS "[s]\nlisten = 993\nprotocol = imap\nbackend = 127.0.0.1:2\n"
	     "max_data_connections = 3\n", &d);
	CHECK(said(&d, "t.ini:7: [s] max_data_connections:", "only used with protocol = ftp"));
	load(TLS "[s]\nlisten = 993\nprotocol = imap\nbackend = 127.0.0.1:2\nactive = yes\n", &d);
	CHECK(said(&d, "t.ini:7: [s] active:", "only used with protocol = ftp"));

	/* Durations: only the documented syntax (digits, optional fraction,
	 * optional unit), each key within its own range, for every key. */
	for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		static const char *const bad[] = {
			"nan", "NAN", "inf", "infinity", "-1", "+5", "1e400", "1e3",
			"0x10", "1e-9", "5 s", ".5", "5.", "1,5", "5sec",
			"10d", "s", "ms", "1..5", "5mss", "1h30m", "5\tm",
		};
		const char *k = durations[i].key;
		char v[64];

		for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++)
			CHECK(duration_refused(k, bad[j], "is not a duration"));
		CHECK(duration_refused(k, "", "empty value"));
		/* The bounds, a millisecond either side of them, and values
		 * that would overflow 32 or 64 bits of milliseconds. */
		snprintf(v, sizeof(v), "%ums", durations[i].lo);
		CHECK(duration_is(k, v, durations[i].lo));
		snprintf(v, sizeof(v), "%ums", durations[i].lo - 1);
		CHECK(duration_refused(k, v, "out of range"));
		snprintf(v, sizeof(v), "%ums", durations[i].hi);
		CHECK(duration_is(k, v, durations[i].hi));
		snprintf(v, sizeof(v), "%ums", durations[i].hi + 1);
		CHECK(duration_refused(k, v, durations[i].range));
		CHECK(cfg_key_find(k) != NULL && strstr(cfg_key_find(k)->help, durations[i].range));
		CHECK(duration_refused(k, "0", "out of range"));
		CHECK(duration_refused(k, "4294968s", "out of range"));
		CHECK(duration_refused(k, "4294967296ms", "out of range"));
		CHECK(duration_refused(k, "18446744073709551617h", "out of range"));
		CHECK(duration_refused(k, "99999999999999999999999999999999", "out of range"));
		CHECK(duration_refused(k, "1.0005s", "finer than a millisecond"));
		CHECK(duration_refused(k, "1.5ms", "finer than a millisecond"));
		CHECK(duration_refused(k, "1.0000000001h", "finer than a millisecond"));
		/* Good forms, inside every key's range. */
		CHECK(duration_is(k, "2", 2000));
		CHECK(duration_is(k, "2s", 2000));
		CHECK(duration_is(k, "1.5", 1500));
		CHECK(duration_is(k, "1.25s", 1250));
		CHECK(duration_is(k, "1500ms", 1500));
		CHECK(duration_is(k, "010s", 10000));
		CHECK(duration_is(k, "1.000000000000s", 1000));
		CHECK(duration_is(k, "5m", 300000));
		CHECK(duration_is(k, "5min", 300000));
		CHECK(duration_is(k, "0.5m", 30000));
		CHECK(duration_is(k, "0.1h", 360000));
		CHECK(duration_is(k, "0.0005h", 1800));
	}
	/* Ranges differ by key, and the message names the key's own. */
	CHECK(duration_is("idle_timeout", "2h", 7200000));
	CHECK(duration_refused("prelude_timeout", "2h", "expected from 1s to 1h"));
	CHECK(duration_refused("handshake_timeout", "50ms", "expected from 100ms to 10m"));
	CHECK(duration_refused("idle_timeout", "8d", "is not a duration"));
	CHECK(duration_refused("idle_timeout", "169h", "expected from 1s to 7 days"));
	CHECK(duration_is("drain_timeout", "168h", 7 * 86400000u));
	CHECK(duration_is("handshake_timeout", "0.1", 100));

	/* The STARTTLS greeting name: one rule, shared with starttls_init. */
	{
		char name[300];
		CHECK(cfg_hostname_ok("mx1.example.org") && cfg_hostname_ok("a") &&
		      cfg_hostname_ok("MAIL-1"));
		CHECK(!cfg_hostname_ok("") && !cfg_hostname_ok("mail_1") &&
		      !cfg_hostname_ok("mail 1") && !cfg_hostname_ok("mail\r\n250 x") &&
		      !cfg_hostname_ok("m\xc3\xa9l") && !cfg_hostname_ok("a/b"));
		memset(name, 'x', 253);
		name[253] = '\0';
		CHECK(cfg_hostname_ok(name));
		name[253] = 'x';
		name[254] = '\0';
		CHECK(!cfg_hostname_ok(name));
	}
	{
		struct cfg_load_opts bad = {.system_hostname = "mail_1"};
		struct cfg_load_opts good = {.system_hostname = "mx1.example.org"};
		struct cfg_load_opts unknown = {.system_hostname = ""};

		/* A system name starttls_init would refuse fails the load, at
		 * each STARTTLS listener that would use it. */
		diag_free(&d);
		c = cfg_load_string_opts("t.ini", TLS MX, &bad, &d);
		CHECK(c == NULL && d.errors == 1);
		CHECK(said(&d, "t.ini:3: [mx] hostname: the system's host name 'mail_1'",
		           "set 'hostname =' in [portier] or in this listener"));
		diag_free(&d);
		c = cfg_load_string_opts("t.ini", TLS MX "[ok]\nlisten = 2526\nmode = starttls\n"
		                         "protocol = imap\nbackend = 127.0.0.1:2\n"
		                         "hostname = imap.example.org\n"
		                         "[web]\nlisten = 8443\nbackend = 127.0.0.1:2\n", &bad, &d);
		CHECK(c == NULL && d.errors == 1 && said(&d, "t.ini:3: [mx] hostname:", "'mail_1'"));
		diag_free(&d);
		c = cfg_load_string_opts("t.ini", TLS MX, &unknown, &d);
		CHECK(c == NULL && said(&d, "t.ini:3: [mx] hostname:", "cannot be read"));
		/* ... but not when the file names one, or nothing needs one. */
		diag_free(&d);
		c = cfg_load_string_opts("t.ini", "[portier]\nhostname = mx.example.org\n"
		                         TLS MX, &bad, &d);
		CHECK(c != NULL && d.errors == 0);
		if (c)
			CHECK_STR(c->hostname, "mx.example.org");
		cfg_free(c);
		diag_free(&d);
		c = cfg_load_string_opts("t.ini", TLS MX "hostname = mx.example.org\n", &bad, &d);
		CHECK(c != NULL && d.errors == 0);
		if (c)
			CHECK_STR(c->listeners[0].hostname, "mx.example.org");
		cfg_free(c);
		diag_free(&d);
		c = cfg_load_string_opts("t.ini", TLS "[web]\nlisten = 8443\nbackend = 127.0.0.1:2\n",
		                         &bad, &d);
		CHECK(c != NULL && d.errors == 0);
		cfg_free(c);
		diag_free(&d);
		c = cfg_load_string_opts("t.ini", TLS MX, &good, &d);
		CHECK(c != NULL && d.errors == 0);
		if (c)
			CHECK_STR(c->hostname, "mx1.example.org");
		cfg_free(c);
		/* A bad name in the file is blamed at its line, and the system
		 * name it stood in for is not blamed as well. */
		diag_free(&d);
		c = cfg_load_string_opts("t.ini", "[portier]\nhostname = mail_2\n" TLS MX, &bad, &d);
		CHECK(c == NULL && d.errors == 1 &&
		      said(&d, "t.ini:2: [portier] hostname: 'mail_2' is not a host name", NULL));
		diag_free(&d);
		c = cfg_load_string_opts("t.ini", TLS MX "hostname = mail_2\n", &bad, &d);
		CHECK(c == NULL && d.errors == 1 &&
		      said(&d, "t.ini:8: [mx] hostname: 'mail_2' is not a host name", NULL));
		load(TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\nhostname = a b\n", &d);
		CHECK(said(&d, "t.ini:6: [a] hostname:", "not a host name"));
	}

	/* A problem the diag cannot store is still counted, makes the load
	 * fail, and is reported as lost. Each of its three allocations may
	 * be the one that fails. */
	{
		struct diag od = {.realloc_fn = failing_realloc};
		char *out;

		for (int n = 0; n < 3; n++) {
			fail_after = n;
			diag_add(&od, 0, "t.ini", 1, "a", "k", "problem %d", n);
		}
		fail_after = -1;
		CHECK(od.n == 0 && od.errors == 3 && od.warnings == 0 && od.lost == 3);
		diag_add(&od, 1, "t.ini", 2, NULL, NULL, "kept");
		CHECK(od.n == 1 && od.warnings == 1 && od.lost == 3);
		out = printed(&od);
		CHECK(out != NULL && strcmp(out, "warning: t.ini:2: kept\n"
		      "3 further problems not recorded (out of memory)\n") == 0);
		free(out);
		diag_free(&od);
		CHECK(od.lost == 0 && od.errors == 0 && od.realloc_fn == failing_realloc);
		fail_after = 0;
		diag_add(&od, 1, "t.ini", 2, NULL, NULL, "lost warning");
		fail_after = -1;
		CHECK(od.n == 0 && od.warnings == 1 && od.errors == 0 && od.lost == 1);
		out = printed(&od);
		CHECK(out != NULL && strcmp(out, "1 further problem not recorded "
		      "(out of memory)\n") == 0);
		free(out);
		diag_free(&od);
		/* A config with an error is refused although no line is kept. */
		fail_after = 0;
		c = cfg_load_string("t.ini", TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\n"
		                    "idle_timeout = nan\n", &od);
		fail_after = -1;
		CHECK(c == NULL && od.errors == 1 && od.lost == 1 && od.n == 0);
		cfg_free(c);
		diag_free(&od);
	}

	/* send_proxy: none by default, v1 or v2; beside xclient a warning
	 * that PROXY replaces it; on a redirect listener only with an ACME
	 * backend, the one backend it has. */
	c = load(TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\n"
	         "[b]\nlisten = 3\nbackend = 127.0.0.1:2\nsend_proxy = v1\n"
	         "[c]\nlisten = 4\nbackend = unix:/b.sock\nsend_proxy = v2\n", &d);
	CHECK(c != NULL && d.errors == 0 && d.warnings == 0);
	if (c)
		CHECK(c->listeners[0].send_proxy == 0 && c->listeners[1].send_proxy == 1 &&
		      c->listeners[2].send_proxy == 2);
	cfg_free(c);
	load(TLS "[a]\nlisten = 1\nbackend = 127.0.0.1:2\nsend_proxy = 2\n", &d);
	CHECK(said(&d, "t.ini:6: [a] send_proxy:", "'2' is not one of none, v1, v2"));
	c = load(TLS "[sub]\nlisten = 587\nmode = starttls\nprotocol = smtp\n"
	         "backend = 127.0.0.1:2\nxclient = yes\nsend_proxy = v2\n", &d);
	CHECK(c != NULL && d.errors == 0 && d.warnings == 1 &&
	      said(&d, "t.ini:8: [sub] xclient:", "PROXY replaces XCLIENT"));
	cfg_free(c);
	load("[web]\nlisten = 80\nmode = redirect\nsend_proxy = v1\n", &d);
	CHECK(d.errors == 1 && said(&d, "t.ini:4: [web] send_proxy:", "acme_backend"));

	/* xclient = yes has the backend trust portier's address: another
	 * listener to it without the SMTP filter (plain, or not smtp) lets a
	 * client's own XCLIENT through, a warning at that listener. A
	 * filtered one, another backend, or PROXY in place of XCLIENT: none. */
	c = load(TLS "[sub]\nlisten = 587\nmode = starttls\nprotocol = smtp\n"
	         "backend = 127.0.0.1:25\nxclient = yes\n"
	         "[raw]\nlisten = 2525\nmode = plain\nprotocol = smtp\nbackend = 127.0.0.1:25\n"
	         "[tcp]\nlisten = 4650\nbackend = 127.0.0.1:25\n"
	         "[smtps]\nlisten = 465\nprotocol = smtp\nbackend = 127.0.0.1:25\n"
	         "[other]\nlisten = 2526\nmode = plain\nbackend = 127.0.0.1:26\n", &d);
	CHECK(c != NULL && d.errors == 0 && d.warnings == 2 &&
	      said(&d, "t.ini:13: [raw] backend:", "127.0.0.1:25 is also [sub]'s") &&
	      said(&d, "t.ini:16: [tcp] backend:", "passes a client's own XCLIENT"));
	cfg_free(c);
	c = load(TLS "[sub]\nlisten = 587\nmode = starttls\nprotocol = smtp\n"
	         "backend = unix:/s.sock\nxclient = yes\n"
	         "[raw]\nlisten = 2525\nmode = plain\nbackend = unix:/s.sock\n", &d);
	CHECK(c != NULL && d.warnings == 1 && said(&d, "[raw] backend:", "unix:/s.sock is also"));
	cfg_free(c);
	c = load(TLS "[sub]\nlisten = 587\nmode = starttls\nprotocol = smtp\n"
	         "backend = 127.0.0.1:25\nxclient = yes\nsend_proxy = v1\n"
	         "[raw]\nlisten = 2525\nmode = plain\nbackend = 127.0.0.1:25\n", &d);
	CHECK(c != NULL && d.warnings == 1 && !said(&d, "[raw] backend:", NULL));
	cfg_free(c);

	/* Edit distance and the key table. */
	CHECK(cfg_edit_distance("backend", "bakend") == 1);
	CHECK(cfg_edit_distance("listen", "listen") == 0);
	CHECK(cfg_key_find("handshake_timeout") != NULL);
	CHECK(cfg_key_find("nope") == NULL);

	diag_free(&d);
	return CHECK_DONE();
}
