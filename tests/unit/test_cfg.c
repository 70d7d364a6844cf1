#include "cfg.h"
#include "cfg_keys.h"
#include "check.h"

#include <stdlib.h>

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

int main(void)
{
	struct diag d = {0};
	struct cfg *c;

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
	load(TLS "[f]\nlisten = 21\nmode = starttls\nprotocol = ftp\nbackend = 127.0.0.1:2\n", &d);
	CHECK(said(&d, "[f] mode:", "not implemented yet"));

	/* Edit distance and the key table. */
	CHECK(cfg_edit_distance("backend", "bakend") == 1);
	CHECK(cfg_edit_distance("listen", "listen") == 0);
	CHECK(cfg_key_find("handshake_timeout") != NULL);
	CHECK(cfg_key_find("nope") == NULL);

	diag_free(&d);
	return CHECK_DONE();
}
