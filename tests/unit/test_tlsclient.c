/* tlsctx in the client role, against tlsctx's own server side over a
 * socketpair: handshake, bytes both ways, close_notify, what the client
 * learns of the server's certificate, verification by CA and by name, the
 * reasons it gives, ALPN. Keys and certificates are made here, in memory,
 * and written to a temporary directory for the server's config. */
#include "check.h"
#include "tlsctx_int.h"

#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HOST "www.example.test"
#define DAY 86400

static char dir[] = "/tmp/test_tlsclient.XXXXXX";
static time_t now;

/* ---- test PKI ---- */

static EVP_PKEY *new_key(void)
{
	EVP_PKEY *k = EVP_PKEY_new();
	EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);

	if (k == NULL || ec == NULL || !EC_KEY_generate_key(ec) ||
	    !EVP_PKEY_assign_EC_KEY(k, ec)) {
		fprintf(stderr, "cannot make a key\n");
		exit(1);
	}
	return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value)) == NULL ||
	    !X509_add_ext(x, ext, -1)) {
		fprintf(stderr, "cannot add extension %s\n", value);
		exit(1);
	}
	X509_EXTENSION_free(ext);
}

/* A certificate for key k, named cn, signed by issuer (itself when NULL)
 * with issuer_key; sans NULL makes a CA. */
static X509 *new_cert(EVP_PKEY *k, const char *cn, long serial, X509 *issuer,
                      EVP_PKEY *issuer_key, const char *sans, time_t nb, time_t na)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	if (x == NULL || name == NULL || !X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), serial) ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	                                (const uint8_t *)"portier tests", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                                (const uint8_t *)cn, -1, -1, 0) ||
	    !X509_set_subject_name(x, name) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) ||
	    !ASN1_TIME_set(X509_getm_notBefore(x), nb) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), na) || !X509_set_pubkey(x, k)) {
		fprintf(stderr, "cannot make certificate %s\n", cn);
		exit(1);
	}
	if (sans == NULL) {
		add_ext(x, issuer ? issuer : x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, issuer ? issuer : x, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, issuer, NID_subject_alt_name, sans);
		add_ext(x, issuer, NID_ext_key_usage, "serverAuth");
	}
	if (!X509_sign(x, issuer_key, EVP_sha256())) {
		fprintf(stderr, "cannot sign %s\n", cn);
		exit(1);
	}
	X509_NAME_free(name);
	return x;
}

static void write_pem(const char *file, X509 *a, X509 *b, EVP_PKEY *k)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if ((f = fopen(path, "w")) == NULL ||
	    (a && !PEM_write_X509(f, a)) || (b && !PEM_write_X509(f, b)) ||
	    (k && !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)) || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s\n", path);
		exit(1);
	}
}

/* ca.pem (the right CA), other-ca.pem (a CA that signed nothing here),
 * leaf.pem + leaf.key (for HOST, by ca, with ca as its chain), many.pem +
 * many.key (20 names, by ca, without a chain). */
static void make_pki(void)
{
	EVP_PKEY *cak = new_key(), *otherk = new_key(), *leafk = new_key();
	X509 *ca, *other, *leaf, *many;
	char sans[1024];
	size_t n = 0;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	ca = new_cert(cak, "Portier Test Root", 1, NULL, cak, NULL, now - DAY, now + 3650 * DAY);
	other = new_cert(otherk, "Some Other Root", 1, NULL, otherk, NULL, now - DAY,
	                 now + 3650 * DAY);
	leaf = new_cert(leafk, HOST, 0x1234abcdL, ca, cak,
	                "DNS:" HOST ",DNS:example.test,IP:127.0.0.1", now - 3600,
	                now + 400 * DAY);
	for (int i = 0; i < 20; i++)
		n += (size_t)snprintf(sans + n, sizeof(sans) - n, "%sDNS:n%d.example.test",
		                      i ? "," : "", i);
	many = new_cert(leafk, "many.example.test", 7, ca, cak, sans, now - 3600,
	                now + 400 * DAY);
	write_pem("ca.pem", ca, NULL, NULL);
	write_pem("other-ca.pem", other, NULL, NULL);
	write_pem("leaf.pem", leaf, ca, NULL);
	write_pem("leaf.key", NULL, NULL, leafk);
	write_pem("many.pem", many, NULL, NULL);   /* no chain: the issuer unknown */
	write_pem("many.key", NULL, NULL, leafk);
	/* odd.pem: control characters and DEL in its CN; names of 255
	 * bytes (kept whole) and of 254 + a two-byte character + 1 (cut
	 * before the character); an IPv6 name. */
	{
		char long_name[300], cut_name[300], odd_sans[800];
		X509 *odd;

		memset(long_name, 'l', 255);
		long_name[255] = '\0';
		memset(cut_name, 'c', 254);
		memcpy(cut_name + 254, "\xc3\xa9" "d", 4);
		snprintf(odd_sans, sizeof(odd_sans), "DNS:%s,DNS:%s,IP:2001:db8::7,DNS:" HOST,
		         long_name, cut_name);
		odd = new_cert(leafk, "odd\x01name\x7f", 9, ca, cak, odd_sans, now - 3600,
		               now + 400 * DAY);
		write_pem("odd.pem", odd, ca, NULL);
		write_pem("odd.key", NULL, NULL, leafk);
		X509_free(odd);
	}
	X509_free(ca);
	X509_free(other);
	X509_free(leaf);
	X509_free(many);
	EVP_PKEY_free(cak);
	EVP_PKEY_free(otherk);
	EVP_PKEY_free(leafk);
}

static void remove_pki(void)
{
	static const char *files[] = { "ca.pem", "other-ca.pem", "leaf.pem", "leaf.key",
	                               "many.pem", "many.key" };
	char path[256];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

static const char *in_dir(const char *file)
{
	static char path[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", dir, file);
	return path[i];
}

/* ---- both ends ---- */

/* A server tlsctx the way server_prepare() makes one: from a config. */
static struct tlsctx *server_ctx(struct cfg **cp, const char *cert)
{
	char text[1024];
	struct diag d = {0};
	struct tlsctx *t = NULL;

	snprintf(text, sizeof(text),
	         "[tls]\ncert = %s/%s.pem\nkey = %s/%s.key\n"
	         "[web]\nlisten = 127.0.0.1:0\nprotocol = http\nbackend = 127.0.0.1:9\n",
	         dir, cert, dir, cert);
	*cp = cfg_load_string("t.ini", text, &d);
	if (*cp != NULL)
		t = tlsctx_new_server(*cp, &(*cp)->listeners[0], 0, &d);
	if (t == NULL)
		diag_print(&d, stderr);
	diag_free(&d);
	return t;
}

static struct tlsctx *client_ctx(const char *cafile, int verify, const char *alpn)
{
	struct tlsctx_client_opts o = { cafile, verify, 1, alpn, 0 };
	struct diag d = {0};
	struct tlsctx *t = tlsctx_new_client(&o, &d);

	if (t == NULL)
		diag_print(&d, stderr);
	diag_free(&d);
	return t;
}

struct pair {
	int fd[2];               /* [0] server, [1] client */
	struct tlsconn *s, *c;
	enum tlsctx_io rs, rc;   /* the last handshake results */
	char why_s[256], why_c[256];
};

/* The client's reason as tlsctx_error() will give it once it asks
 * tlsctx_client_reason() first. */
static void client_error(struct tlsconn *tc, char *out, size_t outlen)
{
	if (tlsctx_client_reason(tc, out, outlen) == NULL)
		tlsctx_error(tc, out, outlen);
}

static int open_pair(struct pair *p, struct tlsctx *srv, struct tlsctx *cli, const char *sni)
{
	memset(p, 0, sizeof(*p));
	p->fd[0] = p->fd[1] = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd) < 0) {
		perror("socketpair");
		return -1;
	}
	p->s = srv ? tlsctx_accept(srv, p->fd[0]) : NULL;
	p->c = tlsctx_connect(cli, p->fd[1], sni);
	p->rs = p->rc = TLSCTX_WANT_READ;
	CHECK(p->c != NULL && (srv == NULL || p->s != NULL));
	return p->c != NULL ? 0 : -1;
}

static void close_pair(struct pair *p)
{
	tlsctx_conn_free(p->s);
	tlsctx_conn_free(p->c);
	close(p->fd[0]);
	close(p->fd[1]);
}

static int wants(enum tlsctx_io r)
{
	return r == TLSCTX_WANT_READ || r == TLSCTX_WANT_WRITE;
}

/* Each side takes a step in turn, as a level-triggered poller would wake
 * it, until neither waits any more (or 100 rounds: a stall). A failing
 * side's reason is taken at once, before the other side's step. */
static void handshake(struct pair *p)
{
	for (int round = 0; round < 100 && (wants(p->rs) || wants(p->rc)); round++) {
		if (p->s != NULL && wants(p->rs)) {
			tlsctx_readable(p->s);
			if ((p->rs = tlsctx_handshake(p->s)) == TLSCTX_ERROR)
				tlsctx_error(p->s, p->why_s, sizeof(p->why_s));
		}
		if (wants(p->rc)) {
			tlsctx_readable(p->c);
			if ((p->rc = tlsctx_handshake(p->c)) == TLSCTX_ERROR)
				client_error(p->c, p->why_c, sizeof(p->why_c));
		}
		/* A side that failed without telling the other leaves it
		 * waiting for bytes that never come. */
		if (p->rs == TLSCTX_ERROR || p->rc == TLSCTX_ERROR)
			if (round > 10)
				break;
	}
	ERR_clear_error();
}

/* Sends n bytes from a to b and checks they arrive whole and in order. */
static int transfer(struct tlsconn *a, struct tlsconn *b, size_t n)
{
	uint8_t *out = malloc(n), *in = malloc(n);
	size_t put = 0, got = 0, k;
	int ok;

	if (out == NULL || in == NULL) {
		free(out);
		free(in);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(i * 7 + i / 251);
	for (int round = 0; round < 10000 && got < n; round++) {
		if (put < n) {
			enum tlsctx_io r = tlsctx_write(a, out + put, n - put, &k);
			if (r == TLSCTX_OK)
				put += k;
			else if (!wants(r))
				break;
		}
		tlsctx_readable(b);
		for (;;) {
			enum tlsctx_io r = tlsctx_read(b, in + got, n - got, &k);
			if (r != TLSCTX_OK || k == 0)
				break;
			got += k;
			if (got == n)
				break;
		}
	}
	ok = got == n && memcmp(in, out, n) == 0;
	free(out);
	free(in);
	return ok;
}

/* a sends close_notify; b's next read says the stream ended cleanly. */
static int closes(struct tlsconn *a, struct tlsconn *b)
{
	uint8_t x;
	size_t k;
	enum tlsctx_io r = TLSCTX_WANT_READ;

	if (tlsctx_close_notify(a) != TLSCTX_OK)
		return 0;
	for (int round = 0; round < 100 && wants(r); round++) {
		tlsctx_readable(b);
		r = tlsctx_read(b, &x, 1, &k);
	}
	return r == TLSCTX_CLOSED;
}

static int has_san(const struct tlsctx_cert_info *ci, const char *name)
{
	for (size_t i = 0; i < ci->nsans; i++)
		if (strcmp(ci->sans[i], name) == 0)
			return 1;
	return 0;
}

static int contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle))
		return 1;
	fprintf(stderr, "\"%s\" does not contain \"%s\"\n", hay, needle);
	return 0;
}

/* ---- the cases ---- */

/* The whole life of a verified connection, both sides looked at. */
static void full_connection(struct tlsctx *srv)
{
	struct tlsctx *cli = client_ctx(in_dir("ca.pem"), 1, "h2,http/1.1");
	struct tlsctx_info is, ic;
	struct tlsctx_cert_info ci;
	struct pair p;
	char alpn[64];

	CHECK(cli != NULL);
	if (cli == NULL || open_pair(&p, srv, cli, HOST) < 0)
		return;
	/* Nothing to report before the server has spoken. */
	CHECK(tlsctx_peer_cert(p.c, &ci) == -1);
	/* The connection holds its own reference to the context. */
	tlsctx_free(cli);

	handshake(&p);
	CHECK(p.rs == TLSCTX_OK && p.rc == TLSCTX_OK);
	if (p.rs != TLSCTX_OK || p.rc != TLSCTX_OK) {
		fprintf(stderr, "server: %s; client: %s\n", p.why_s, p.why_c);
		close_pair(&p);
		return;
	}

	tlsctx_describe(p.s, &is);
	tlsctx_describe(p.c, &ic);
	CHECK_STR(is.version, "TLSv1.3");
	CHECK_STR(ic.version, "TLSv1.3");
	CHECK_STR(ic.cipher, is.cipher);
	CHECK(strncmp(ic.cipher, "TLS_", 4) == 0);
	CHECK_STR(is.sni, HOST);
	CHECK_STR(ic.sni, HOST);
	CHECK(!is.resumed && !ic.resumed);

	/* The server's ALPN id, picked from the two the client offered. */
	CHECK_STR(tlsctx_alpn_selected(p.c, alpn, sizeof(alpn)), "http/1.1");
	CHECK_STR(tlsctx_alpn_selected(p.s, alpn, sizeof(alpn)), "http/1.1");

	CHECK(tlsctx_peer_cert(p.c, &ci) == 0);
	CHECK_STR(ci.subject_cn, HOST);
	CHECK(ci.nsans == 3 && ci.nsans_total == 3);
	CHECK(has_san(&ci, HOST) && has_san(&ci, "example.test") && has_san(&ci, "127.0.0.1"));
	CHECK(strcasecmp(ci.serial, "1234ABCD") == 0);
	CHECK(ci.not_before == now - 3600);
	CHECK(ci.not_after == now + 400 * DAY);
	CHECK(contains(ci.issuer, "CN=Portier Test Root"));
	CHECK(contains(ci.issuer, "O=portier tests"));
	CHECK_STR(ci.key_type, "EC");
	CHECK(ci.key_bits == 256);
	CHECK(ci.verified && ci.verify_error[0] == '\0');
	/* The server side asked for no client certificate. */
	CHECK(tlsctx_peer_cert(p.s, &ci) == -1);

	/* Bytes both ways: a short request, then a reply of several records. */
	CHECK(transfer(p.c, p.s, 19));
	CHECK(transfer(p.s, p.c, 100000));
	CHECK(transfer(p.c, p.s, 70000));
	/* Half-closes each way, client first. */
	CHECK(closes(p.c, p.s));
	CHECK(transfer(p.s, p.c, 5));
	CHECK(closes(p.s, p.c));
	close_pair(&p);   /* drops the last reference to cli: ASan would see */
}

/* Runs one handshake of a fresh client context against srv. */
static void try_client(struct tlsctx *srv, const char *cafile, int verify, const char *alpn,
                       const char *sni, struct pair *p, struct tlsctx_cert_info *ci,
                       int *have_cert)
{
	struct tlsctx *cli = client_ctx(cafile, verify, alpn);

	memset(p, 0, sizeof(*p));
	memset(ci, 0, sizeof(*ci));   /* failed checks below must read something */
	p->fd[0] = p->fd[1] = -1;
	*have_cert = 0;
	CHECK(cli != NULL);
	if (cli == NULL)
		return;
	if (open_pair(p, srv, cli, sni) == 0) {
		handshake(p);
		*have_cert = tlsctx_peer_cert(p->c, ci) == 0;
	}
	tlsctx_free(cli);
	close_pair(p);
}

static void verification(struct tlsctx *srv)
{
	struct tlsctx_cert_info ci;
	struct pair p;
	int cert;

	/* A CA that did not sign the server's chain: the handshake fails
	 * and says why; the certificate can still be looked at. */
	try_client(srv, in_dir("other-ca.pem"), 1, NULL, HOST, &p, &ci, &cert);
	CHECK(p.rc == TLSCTX_ERROR);
	CHECK(contains(p.why_c, "server certificate did not verify"));
	CHECK(contains(p.why_c, "self signed certificate in certificate chain"));
	CHECK(cert && !ci.verified && strcmp(ci.subject_cn, HOST) == 0);
	CHECK(contains(ci.verify_error, "self signed certificate in certificate chain"));
	CHECK(!ci.verify_dates_only);
	/* The server hears the client's alert. */
	CHECK(p.rs == TLSCTX_ERROR);
	CHECK(contains(p.why_s, "client sent alert"));

	/* The right CA, a name the certificate does not carry. */
	try_client(srv, in_dir("ca.pem"), 1, NULL, "mail.example.test", &p, &ci, &cert);
	CHECK(p.rc == TLSCTX_ERROR);
	CHECK(contains(p.why_c, "server certificate did not verify"));
	CHECK(contains(p.why_c, "Hostname mismatch"));
	CHECK(cert && !ci.verified);

	/* The right CA and an address the certificate names (no SNI sent). */
	try_client(srv, in_dir("ca.pem"), 1, NULL, "127.0.0.1", &p, &ci, &cert);
	CHECK(p.rc == TLSCTX_OK && p.rs == TLSCTX_OK);
	CHECK(cert && ci.verified);
	/* ...and one it does not. */
	try_client(srv, in_dir("ca.pem"), 1, NULL, "::1", &p, &ci, &cert);
	CHECK(p.rc == TLSCTX_ERROR);
	CHECK(contains(p.why_c, "IP address mismatch"));

	/* Without verification the handshake goes on and the result is
	 * reported instead: wrong CA, then wrong name, then all right. */
	try_client(srv, in_dir("other-ca.pem"), 0, NULL, HOST, &p, &ci, &cert);
	CHECK(p.rc == TLSCTX_OK && p.rs == TLSCTX_OK);
	CHECK(cert && !ci.verified);
	CHECK(contains(ci.verify_error, "self signed certificate in certificate chain"));
	try_client(srv, in_dir("ca.pem"), 0, NULL, "mail.example.test", &p, &ci, &cert);
	CHECK(p.rc == TLSCTX_OK);
	CHECK(cert && !ci.verified);
	CHECK(contains(ci.verify_error, "Hostname mismatch"));
	try_client(srv, in_dir("ca.pem"), 0, NULL, HOST, &p, &ci, &cert);
	CHECK(p.rc == TLSCTX_OK);
	CHECK(cert && ci.verified);
}

static void alpn(struct tlsctx *srv)
{
	struct tlsctx *cli = client_ctx(in_dir("ca.pem"), 1, NULL);
	struct tlsctx_cert_info ci;
	struct pair p;
	char id[64];
	int cert;

	/* Offered by the server only: nothing agreed, no failure. */
	CHECK(cli != NULL);
	if (cli != NULL && open_pair(&p, srv, cli, HOST) == 0) {
		handshake(&p);
		CHECK(p.rc == TLSCTX_OK && p.rs == TLSCTX_OK);
		CHECK_STR(tlsctx_alpn_selected(p.c, id, sizeof(id)), "");
		CHECK_STR(tlsctx_alpn_selected(p.s, id, sizeof(id)), "");
		close_pair(&p);
	}
	tlsctx_free(cli);

	/* Only a protocol foreign to the listener: the server refuses
	 * (ALPACA defence) and the client says what it was told. */
	try_client(srv, in_dir("ca.pem"), 1, "h2", HOST, &p, &ci, &cert);
	CHECK(p.rs == TLSCTX_ERROR && p.rc == TLSCTX_ERROR);
	CHECK(contains(p.why_c, "server sent alert: no application protocol"));
}

/* A server that answers in plaintext: SMTP's greeting. */
static void plaintext_server(void)
{
	static const char greeting[] = "220 mail.example.test ESMTP ready\r\n";
	struct tlsctx *cli = client_ctx(in_dir("ca.pem"), 1, NULL);
	struct tlsctx_cert_info ci;
	struct pair p;

	CHECK(cli != NULL);
	if (cli == NULL || open_pair(&p, NULL, cli, HOST) < 0) {
		tlsctx_free(cli);
		return;
	}
	CHECK(write(p.fd[0], greeting, sizeof(greeting) - 1) == (ssize_t)sizeof(greeting) - 1);
	p.rs = TLSCTX_OK;
	handshake(&p);
	CHECK(p.rc == TLSCTX_ERROR);
	CHECK(contains(p.why_c, "did not answer with TLS"));
	CHECK(tlsctx_peer_cert(p.c, &ci) == -1);
	tlsctx_free(cli);
	close_pair(&p);
}

/* More names than the list holds: the first are kept, all counted. And a
 * server that sends no chain, to a client without its CA. */
static void many_names(void)
{
	struct cfg *c = NULL;
	struct tlsctx *srv = server_ctx(&c, "many");
	struct tlsctx_cert_info ci;
	struct pair p;
	int cert;

	CHECK(srv != NULL);
	if (srv != NULL) {
		try_client(srv, in_dir("ca.pem"), 1, NULL, "n19.example.test", &p, &ci, &cert);
		CHECK(p.rc == TLSCTX_OK);
		CHECK(cert && ci.nsans == TLSCTX_CERT_MAX_SANS && ci.nsans_total == 20);
		CHECK_STR(ci.sans[0], "n0.example.test");
		CHECK_STR(ci.sans[TLSCTX_CERT_MAX_SANS - 1], "n15.example.test");
		CHECK(!has_san(&ci, "n16.example.test"));

		try_client(srv, in_dir("other-ca.pem"), 1, NULL, "n0.example.test", &p, &ci, &cert);
		CHECK(p.rc == TLSCTX_ERROR);
		CHECK(contains(p.why_c, "server certificate did not verify: "
		                        "unable to get local issuer certificate"));
		CHECK(cert && !ci.verified && strcmp(ci.subject_cn, "many.example.test") == 0);
	}
	tlsctx_free(srv);
	cfg_free(c);
}

/* What a certificate's names become on the probe's report: control
 * characters and DEL replaced, a name of 255 bytes whole, a longer one cut
 * where a character starts; IP names as addresses. And an address is
 * never sent as SNI, with or without the name checked apart. */
static void odd_names(void)
{
	struct cfg *c = NULL;
	struct tlsctx *srv = server_ctx(&c, "odd");
	struct tlsctx_cert_info ci;
	struct tlsctx_info is;
	struct pair p;
	int cert;
	char want[300];

	CHECK(srv != NULL);
	if (srv == NULL) {
		cfg_free(c);
		return;
	}
	try_client(srv, in_dir("ca.pem"), 1, NULL, HOST, &p, &ci, &cert);
	CHECK(p.rc == TLSCTX_OK && cert && ci.nsans == 4);
	CHECK_STR(ci.subject_cn, "odd?name?");
	memset(want, 'l', 255);
	want[255] = '\0';
	CHECK_STR(ci.sans[0], want);
	memset(want, 'c', 254);
	want[254] = '\0';
	CHECK_STR(ci.sans[1], want);
	CHECK_STR(ci.sans[2], "2001:db8::7");
	for (int apart = 0; apart <= 1; apart++) {
		struct tlsctx_client_opts o = { NULL, 0, 1, NULL, apart };
		struct diag d = {0};
		struct tlsctx *cli = tlsctx_new_client(&o, &d);
		static const char *const names[] = { "127.0.0.1", "::1", HOST };

		CHECK(cli != NULL);
		diag_free(&d);
		for (size_t i = 0; cli != NULL && i < 3; i++) {
			if (open_pair(&p, srv, cli, names[i]) != 0)
				continue;
			handshake(&p);
			CHECK(p.rs == TLSCTX_OK);
			tlsctx_describe(p.s, &is);
			if (i < 2)
				CHECK(is.sni == NULL);
			else
				CHECK(is.sni != NULL && strcmp(is.sni, HOST) == 0);
			close_pair(&p);
		}
		tlsctx_free(cli);
	}
	tlsctx_free(srv);
	cfg_free(c);
}

/* Bad options are reported, not half-applied. */
static void bad_options(void)
{
	static const char *bad_alpn[] = { "", ",", "h2,", ",h2", "h2,,http/1.1" };
	struct tlsctx_client_opts o = { NULL, 1, 1, NULL, 0 };
	struct diag d = {0};
	char longid[300];
	struct tlsctx *t;

	o.cafile = in_dir("missing.pem");
	CHECK(tlsctx_new_client(&o, &d) == NULL);
	CHECK(d.errors == 1 && d.n == 1 && contains(d.lines[0], "missing.pem") &&
	      contains(d.lines[0], strerror(ENOENT)));
	diag_free(&d);

	/* A file that holds no certificate (a key). */
	o.cafile = in_dir("leaf.key");
	CHECK(tlsctx_new_client(&o, &d) == NULL);
	CHECK(d.errors == 1 && contains(d.lines[0], "no PEM certificate"));
	diag_free(&d);

	o.cafile = in_dir("ca.pem");
	for (size_t i = 0; i < sizeof(bad_alpn) / sizeof(bad_alpn[0]); i++) {
		o.alpn = bad_alpn[i];
		CHECK(tlsctx_new_client(&o, &d) == NULL);
		CHECK(d.errors == 1 && contains(d.lines[0], "alpn"));
		diag_free(&d);
	}
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	o.alpn = longid;
	CHECK(tlsctx_new_client(&o, &d) == NULL);
	CHECK(d.errors == 1);
	diag_free(&d);
	longid[255] = '\0';   /* the longest id there can be */
	t = tlsctx_new_client(&o, &d);
	CHECK(t != NULL && d.errors == 0);
	tlsctx_free(t);
	diag_free(&d);

	/* Probing old servers: a floor below TLS 1.2 still meets ours on 1.3. */
	o.alpn = NULL;
	o.min_version_12 = 0;
	t = tlsctx_new_client(&o, &d);
	CHECK(t != NULL && d.errors == 0);
	tlsctx_free(t);
	tlsctx_free(NULL);
}

static void old_floor(struct tlsctx *srv)
{
	struct tlsctx_client_opts o = { NULL, 1, 0, NULL, 0 };
	struct diag d = {0};
	struct tlsctx *cli;
	struct tlsctx_info ic;
	struct pair p;

	o.cafile = in_dir("ca.pem");
	cli = tlsctx_new_client(&o, &d);
	CHECK(cli != NULL);
	diag_free(&d);
	if (cli != NULL && open_pair(&p, srv, cli, HOST) == 0) {
		handshake(&p);
		CHECK(p.rc == TLSCTX_OK && p.rs == TLSCTX_OK);
		tlsctx_describe(p.c, &ic);
		CHECK_STR(ic.version, "TLSv1.3");
		close_pair(&p);
	}
	tlsctx_free(cli);
}

/* What `portier probe` asks: one exact version per connection, the
 * session's group, the name apart from the chain. The server's floor is
 * TLS 1.2 (portier's default). */
static void probing(struct tlsctx *srv)
{
	struct tlsctx_client_opts o = { NULL, 0, 0, NULL, 1 };
	struct tlsctx_session ss;
	struct tlsctx_cert_info ci;
	struct diag d = {0};
	struct tlsctx *cli;
	struct pair p;
	char why[256];
	int not_tls;

	o.cafile = in_dir("ca.pem");
	cli = tlsctx_new_client(&o, &d);
	CHECK(cli != NULL);
	diag_free(&d);
	if (cli == NULL)
		return;
	/* Pinned to 1.2: 1.2 it is, with an ECDHE group. */
	if (open_pair(&p, srv, cli, HOST) == 0) {
		CHECK(tlsctx_pin_version(p.c, 0x0303) == 0);
		handshake(&p);
		CHECK(p.rc == TLSCTX_OK);
		tlsctx_session(p.c, &ss);
		CHECK_STR(ss.version, "TLSv1.2");
		CHECK(ss.version_id == 0x0303 && ss.cipher[0] != '\0' && ss.group[0] != '\0');
		CHECK(!ss.ocsp_stapled);
		close_pair(&p);
	}
	/* Pinned to 1.1: the server refuses, and it is TLS that refuses. */
	if (open_pair(&p, srv, cli, HOST) == 0) {
		CHECK(tlsctx_pin_version(p.c, 0x0302) == 0);
		for (int round = 0; round < 100 && wants(p.rc); round++) {
			if (wants(p.rs)) {
				tlsctx_readable(p.s);
				p.rs = tlsctx_handshake(p.s);
			}
			tlsctx_readable(p.c);
			p.rc = tlsctx_handshake(p.c);
		}
		CHECK(p.rc == TLSCTX_ERROR);
		tlsctx_client_failure(p.c, why, sizeof(why), &not_tls);
		CHECK(!not_tls && why[0] != '\0');
		ERR_clear_error();
		close_pair(&p);
	}
	CHECK(open_pair(&p, NULL, cli, HOST) == 0 && tlsctx_pin_version(p.c, 0x0300) == -1);
	close_pair(&p);
	/* A name the certificate does not carry: with name_apart the chain
	 * still verifies, and the name is reported apart. */
	if (open_pair(&p, srv, cli, "mail.example.test") == 0) {
		handshake(&p);
		CHECK(p.rc == TLSCTX_OK);
		CHECK(tlsctx_peer_cert(p.c, &ci) == 0 && ci.verified);
		CHECK(tlsctx_peer_name_matches(p.c, "mail.example.test") == 0);
		CHECK(tlsctx_peer_name_matches(p.c, HOST) == 1);
		CHECK(tlsctx_peer_name_matches(p.c, "127.0.0.1") == 1);
		CHECK(tlsctx_peer_name_matches(p.c, "::1") == 0);
		close_pair(&p);
	}
	/* Not TLS at all. */
	if (open_pair(&p, NULL, cli, HOST) == 0) {
		CHECK(write(p.fd[0], "* OK IMAP ready\r\n", 17) == 17);
		p.rs = TLSCTX_OK;
		for (int round = 0; round < 10 && wants(p.rc); round++) {
			tlsctx_readable(p.c);
			p.rc = tlsctx_handshake(p.c);
		}
		CHECK(p.rc == TLSCTX_ERROR);
		tlsctx_client_failure(p.c, why, sizeof(why), &not_tls);
		CHECK(not_tls);
		CHECK(tlsctx_peer_name_matches(p.c, HOST) == -1);
		close_pair(&p);
	}
	tlsctx_free(cli);
}

int main(void)
{
	struct cfg *c = NULL;
	struct tlsctx *srv;

	now = time(NULL);
	make_pki();
	/* First, while no server context exists in the process: `portier
	 * probe` makes none, and tlsctx.c's per-connection flags start with
	 * the first server context. */
	plaintext_server();
	srv = server_ctx(&c, "leaf");
	CHECK(srv != NULL);
	if (srv != NULL) {
		full_connection(srv);
		verification(srv);
		alpn(srv);
		old_floor(srv);
		probing(srv);
	}
	many_names();
	odd_names();
	bad_options();
	tlsctx_free(srv);
	cfg_free(c);
	remove_pki();
	return CHECK_DONE();
}
