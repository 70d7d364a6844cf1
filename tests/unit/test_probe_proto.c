/* The parsers of `portier probe` over server bytes: replies of each kind,
 * whole and split at every byte, what capabilities say, banners, and the
 * LDAP messages a probe sends and reads. */
#include "check.h"
#include "ber.h"
#include "probe_proto.h"

#include <stdlib.h>

/* Feeds s to a fresh reply of kind in chunks: all at once, then split at
 * every byte into two, then one byte at a time; every way must give the
 * same result (returned), text and code, and leave the same bytes over
 * (*rest). */
static int feed_all(enum probe_rk kind, const char *tag, const char *s, struct probe_reply *out,
                    size_t *rest)
{
	size_t n = strlen(s), used, off;
	int first = -2, r = 0, same = 1;
	static struct probe_reply a;

	for (size_t split = 0; split <= n + 1; split++) {
		probe_reply_init(&a, kind, tag);
		off = 0;
		r = 0;
		while (off < n && r == 0) {
			/* split == n + 1: one byte at a time */
			size_t chunk = split == n + 1 ? 1 : off < split ? split - off : n - off;
			if (chunk == 0)
				chunk = n - off;
			r = probe_reply_feed(&a, (const uint8_t *)s + off, chunk, &used);
			if (r >= 0)
				off += used;
		}
		if (first == -2) {
			first = r;
			*out = a;
			*rest = n - off;
		} else if (r != first || (r == 1 && (strcmp(a.text, out->text) != 0 ||
		           a.code != out->code || n - off != *rest))) {
			same = 0;
		}
	}
	CHECK(same);
	return first;
}

static struct probe_reply r;

static void replies(void)
{
	size_t rest;

	CHECK(feed_all(PROBE_RK_SMTP, NULL, "220 mx.example.org ESMTP\r\n", &r, &rest) == 1);
	CHECK(r.code == 220 && rest == 0);
	CHECK_STR(r.text, "220 mx.example.org ESMTP");
	/* A multi-line reply, and the bytes after it left over. */
	CHECK(feed_all(PROBE_RK_SMTP, NULL, "250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
	               "220 extra\r\n", &r, &rest) == 1);
	CHECK(r.code == 250 && rest == 11 && r.nlines == 3);
	CHECK_STR(r.text, "250-mx\n250-PIPELINING\n250 STARTTLS");
	CHECK(feed_all(PROBE_RK_SMTP, NULL, "250\n", &r, &rest) == 1 && r.code == 250);
	CHECK(feed_all(PROBE_RK_SMTP, NULL, "250-a\r\n", &r, &rest) == 0);
	/* Not SMTP: the greeting of something else, a changing code. */
	CHECK(feed_all(PROBE_RK_SMTP, NULL, "SSH-2.0-OpenSSH_9.2\r\n", &r, &rest) == -1);
	CHECK(feed_all(PROBE_RK_SMTP, NULL, "250-a\r\n251 b\r\n", &r, &rest) == -1);
	CHECK(feed_all(PROBE_RK_SMTP, NULL, "25x ok\r\n", &r, &rest) == -1);
	CHECK(feed_all(PROBE_RK_SMTP, NULL, "250 a\0b\r\n", &r, &rest) == 0);   /* strlen stops */

	CHECK(feed_all(PROBE_RK_LINE, NULL, "* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\nx",
	               &r, &rest) == 1);
	CHECK(r.code == 1 && rest == 1);
	CHECK(feed_all(PROBE_RK_LINE, NULL, "-ERR no\r\n", &r, &rest) == 1 && r.code == 0);

	CHECK(feed_all(PROBE_RK_IMAP, "p1", "* CAPABILITY IMAP4rev1 STARTTLS\r\n"
	               "p1 OK done\r\n", &r, &rest) == 1);
	CHECK(r.code == 1 && r.nlines == 2);
	CHECK(feed_all(PROBE_RK_IMAP, "p1", "p1 NO [PRIVACYREQUIRED] no\r\n", &r, &rest) == 1);
	CHECK(r.code == 0);
	CHECK(feed_all(PROBE_RK_IMAP, "p1", "p10 OK other tag\r\n", &r, &rest) == 0);

	CHECK(feed_all(PROBE_RK_POP3_MULTI, NULL, "+OK\r\nSTLS\r\nUSER\r\n.\r\n", &r, &rest) == 1);
	CHECK(r.code == 1);
	CHECK_STR(r.text, "+OK\nSTLS\nUSER\n.");
	CHECK(feed_all(PROBE_RK_POP3_MULTI, NULL, "-ERR unknown\r\nmore", &r, &rest) == 1);
	CHECK(r.code == 0 && rest == 4);

	CHECK(feed_all(PROBE_RK_FTP, NULL, "220 (vsFTPd 3.0.3)\r\n", &r, &rest) == 1);
	CHECK(r.code == 220);
	CHECK(feed_all(PROBE_RK_FTP, NULL, "211-Features:\r\n AUTH TLS\r\n PBSZ\r\n"
	               "211 End\r\nx", &r, &rest) == 1);
	CHECK(r.code == 211 && rest == 1 && r.nlines == 4);
	/* A line of free text that begins with digits, and another code's
	 * last line, do not end it (RFC 959's own example). */
	CHECK(feed_all(PROBE_RK_FTP, NULL, "123-First\r\n234 A line\r\n123-x\r\n", &r,
	               &rest) == 0);
	CHECK(feed_all(PROBE_RK_FTP, NULL, "123-First\r\n234 A line\r\n123 The last\r\n", &r,
	               &rest) == 1 && r.nlines == 3);
	CHECK(feed_all(PROBE_RK_FTP, NULL, "hello\r\n", &r, &rest) == -1);

	CHECK(feed_all(PROBE_RK_HTTP, NULL, "HTTP/1.1 301 Moved\r\nLocation: https://x/\r\n\r\nbody",
	               &r, &rest) == 1);
	CHECK(r.code == 301 && rest == 4);
	CHECK(feed_all(PROBE_RK_HTTP, NULL, "HTTP/1.1 30x\r\n\r\n", &r, &rest) == -1);
	CHECK(feed_all(PROBE_RK_HTTP, NULL, "SSH-2.0-OpenSSH_9.2\r\n", &r, &rest) == -1);
}

/* Caps: a line over the cap, too many lines, too much text, a NUL. */
static void limits(void)
{
	static char big[PROBE_TEXT_MAX * 2];
	size_t used, n;

	memset(big, 'a', PROBE_LINE_MAX + 10);
	memcpy(big, "220 ", 4);
	big[PROBE_LINE_MAX + 10] = '\0';
	probe_reply_init(&r, PROBE_RK_SMTP, NULL);
	CHECK(probe_reply_feed(&r, (const uint8_t *)big, strlen(big), &used) == -1);

	n = 0;
	for (int i = 0; i < PROBE_LINES_MAX + 1; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "250-x\r\n");
	probe_reply_init(&r, PROBE_RK_SMTP, NULL);
	CHECK(probe_reply_feed(&r, (const uint8_t *)big, n, &used) == -1);

	n = 0;
	for (int i = 0; i < 8; i++) {
		memcpy(big + n, "250-", 4);
		memset(big + n + 4, 'y', 600);
		memcpy(big + n + 604, "\r\n", 2);
		n += 606;
	}
	probe_reply_init(&r, PROBE_RK_SMTP, NULL);
	CHECK(probe_reply_feed(&r, (const uint8_t *)big, n, &used) == -1);

	probe_reply_init(&r, PROBE_RK_LINE, NULL);
	CHECK(probe_reply_feed(&r, (const uint8_t *)"+OK\0\r\n", 6, &used) == -1);
	/* A finished reply takes nothing more. */
	probe_reply_init(&r, PROBE_RK_LINE, NULL);
	CHECK(probe_reply_feed(&r, (const uint8_t *)"+OK\r\n+OK\r\n", 10, &used) == 1 && used == 5);
	CHECK(probe_reply_feed(&r, (const uint8_t *)"+OK\r\n", 5, &used) == 1 && used == 0);
}

static void caps(void)
{
	struct probe_caps c;

	probe_caps_smtp("220 x\n250-mx.example.org\n250-PIPELINING\n250-STARTTLS\n"
	                "250 AUTH PLAIN LOGIN", &c);
	CHECK(c.have_caps && c.starttls && c.login_in_clear == 1);
	probe_caps_smtp("250-mx\n250 STARTTLS", &c);
	CHECK(c.starttls && c.login_in_clear == 0);
	probe_caps_smtp("250-mx\n250-AUTH\n250 8BITMIME", &c);   /* AUTH without mechanisms */
	CHECK(!c.starttls && c.login_in_clear == 0);
	probe_caps_smtp("250 mx", &c);
	CHECK(!c.have_caps);

	probe_caps_imap("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready", &c);
	CHECK(c.have_caps && c.starttls && c.login_in_clear == 0);
	probe_caps_imap("* OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS AUTH=PLAIN] Dovecot ready.", &c);
	CHECK(c.have_caps && c.starttls && c.login_in_clear == 1);
	probe_caps_imap("* OK ready", &c);
	CHECK(!c.have_caps && c.login_in_clear == -1);
	probe_caps_imap("* CAPABILITY IMAP4rev1 LOGINDISABLED\np1 OK done", &c);
	CHECK(c.have_caps && !c.starttls && c.login_in_clear == 0);
	/* A word after the bracket is text, not a capability. */
	probe_caps_imap("* OK [CAPABILITY IMAP4rev1] STARTTLS", &c);
	CHECK(c.have_caps && !c.starttls);

	probe_caps_pop3("+OK\nCAPA\nTOP\nSTLS\nUSER\n.", &c);
	CHECK(c.have_caps && c.starttls && c.login_in_clear == 1);
	probe_caps_pop3("+OK\nSTLS\nSASL\n.", &c);
	CHECK(c.starttls && c.login_in_clear == 0);
	probe_caps_pop3("+OK\nSASL PLAIN\n.", &c);
	CHECK(!c.starttls && c.login_in_clear == 1);
	probe_caps_pop3("-ERR no", &c);
	CHECK(!c.have_caps && c.login_in_clear == -1);

	probe_caps_ftp("211-Features:\n EPRT\n AUTH TLS\n PBSZ\n211 End", &c);
	CHECK(c.have_caps && c.starttls && c.login_in_clear == -1);
	probe_caps_ftp("211-Features:\n AUTH SSL;TLS\n211 End", &c);
	CHECK(c.starttls);
	probe_caps_ftp("211-Features:\n AUTH SSL\n MDTM\n211 End", &c);
	CHECK(c.have_caps && !c.starttls);
	probe_caps_ftp("500 FEAT not understood", &c);
	CHECK(!c.have_caps && !c.starttls);
}

static void banners(void)
{
	static const uint8_t mysql[] = { 0x4a, 0, 0, 0, 10, '8', '.', '0', 0 };

#define B(s) probe_banner((const uint8_t *)(s), strlen(s))
	CHECK_STR(B("SSH-2.0-OpenSSH_9.2p1 Debian\r\n"), "ssh");
	CHECK_STR(B("220 mx ESMTP Postfix\r\n"), "smtp");
	CHECK_STR(B("220 (vsFTPd 3.0.3)\r\n"), "ftp");
	CHECK_STR(B("* OK [CAPABILITY IMAP4rev1] hi\r\n"), "imap");
	CHECK_STR(B("* PREAUTH hi\r\n"), "imap");
	CHECK_STR(B("+OK POP3 ready\r\n"), "pop3");
	CHECK_STR(B("RFB 003.008\n"), "vnc");
	CHECK_STR(B("HTTP/1.1 400 Bad Request\r\n"), "http");
	CHECK_STR(probe_banner(mysql, sizeof(mysql)), "mysql");
	CHECK(B("hello") == NULL);
	CHECK(B("* PR") == NULL);
	CHECK(B("") == NULL);
	/* Exactly their signature's length; what only looks like one. */
	{
		static const char *const exact[][2] = {
			{"SSH-", "ssh"}, {"220 ", "smtp"}, {"220-mx ESMTP\r\n", "smtp"},
			{"220 SMTP relay, no FTP here\r\n", "smtp"}, {"* OK", "imap"},
			{"* PREAUTH", "imap"}, {"+OK", "pop3"}, {"RFB ", "vnc"}, {"HTTP/", "http"},
		};
		for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
			CHECK_STR(B(exact[i][0]), exact[i][1]);
	}
	CHECK(B("220x") == NULL);
	CHECK(B("hello world") == NULL);
#undef B
	{
		/* MySQL: six bytes whose length covers them; then one thing
		 * wrong at a time. */
		static const uint8_t ok6[] = {2, 0, 0, 0, 10, '8'};
		static const uint8_t seq1[] = {0x4a, 0, 0, 1, 10, '8', '.', '0', 0};
		static const uint8_t v9[] = {0x4a, 0, 0, 0, 9, '8', '.', '0', 0};
		static const uint8_t shortlen[] = {1, 0, 0, 0, 10, '8', '.', '0', 0};
		static const uint8_t notdigit[] = {0x4a, 0, 0, 0, 10, 'x', '.', '0', 0};
		static const uint8_t zero3[] = {1, 2, 3, 0, 5, 6};

		CHECK_STR(probe_banner(ok6, sizeof(ok6)), "mysql");
		CHECK(probe_banner(ok6, 5) == NULL);
		CHECK(probe_banner(seq1, sizeof(seq1)) == NULL);
		CHECK(probe_banner(v9, sizeof(v9)) == NULL);
		CHECK(probe_banner(shortlen, sizeof(shortlen)) == NULL);
		CHECK(probe_banner(notdigit, sizeof(notdigit)) == NULL);
		CHECK(probe_banner(zero3, sizeof(zero3)) == NULL);
	}
}

/* An LDAPMessage: SEQUENCE { msgid, op } with op's contents body. */
static size_t ldap_msg(uint8_t *out, uint8_t msgid, uint8_t op, const uint8_t *body, size_t n)
{
	out[0] = 0x30;
	out[1] = (uint8_t)(n + 5);
	out[2] = 0x02;
	out[3] = 0x01;
	out[4] = msgid;
	out[5] = op;
	out[6] = (uint8_t)n;
	memcpy(out + 7, body, n);
	return n + 7;
}

static void ldap(void)
{
	struct ber_ldap_msg m;
	struct probe_ldap l;
	uint8_t buf[512];
	size_t n = 0, used;
	/* SearchResultEntry "" { supportedExtension: 1.3.6.1.4.1.1466.20037 } */
	static const uint8_t entry[] = {
		0x04, 0x00, 0x30, 0x38, 0x30, 0x36, 0x04, 0x12,
		's', 'u', 'p', 'p', 'o', 'r', 't', 'e', 'd', 'E', 'x', 't', 'e', 'n', 's', 'i', 'o', 'n',
		0x31, 0x20, 0x04, 0x06, '1', '.', '2', '.', '3', '4', 0x04, 0x14 + 2,
		'1', '.', '3', '.', '6', '.', '1', '.', '4', '.', '1', '.',
		'1', '4', '6', '6', '.', '2', '0', '0', '3', '7',
	};
	static const uint8_t done0[] = { 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00 };
	static const uint8_t done13[] = { 0x0a, 0x01, 0x0d, 0x04, 0x00, 0x04, 0x02, 'n', 'o' };

	/* What the probe sends is what it means to send. */
	CHECK(ber_ldap_read(probe_ldap_rootdse, probe_ldap_rootdse_len, 1024, &m) == 1);
	CHECK(m.len == probe_ldap_rootdse_len && m.msgid == 1 && m.op == BER_LDAP_SEARCH_REQ);
	CHECK(ber_ldap_read(probe_ldap_starttls, probe_ldap_starttls_len, 1024, &m) == 1);
	CHECK(m.len == probe_ldap_starttls_len && m.msgid == 2 && m.op == BER_LDAP_EXTENDED_REQ);
	CHECK(m.oid_len == 22 && memcmp(m.oid, "1.3.6.1.4.1.1466.20037", 22) == 0);

	n = ldap_msg(buf, 1, 0x64, entry, sizeof(entry));
	n += ldap_msg(buf + n, 1, 0x65, done0, sizeof(done0));
	buf[n++] = 0x30;   /* the start of what follows */
	for (size_t split = 0; split <= n; split++) {
		size_t off;
		int rc;

		memset(&l, 0, sizeof(l));
		rc = probe_ldap_feed(&l, buf, split, &used, 1);
		off = used;
		if (rc == 0)
			rc = probe_ldap_feed(&l, buf + off, n - off, &used, 1), off += used;
		CHECK(rc == 1 && l.done && l.code == 0 && l.starttls_listed && l.entries == 1 &&
		      off == n - 1);
	}
	/* confidentialityRequired, and no StartTLS listed. */
	n = ldap_msg(buf, 1, 0x65, done13, sizeof(done13));
	memset(&l, 0, sizeof(l));
	CHECK(probe_ldap_feed(&l, buf, n, &used, 1) == 1 && l.code == 13 && !l.starttls_listed);
	/* Another message's answer; and not LDAP at all (a TLS alert). */
	memset(&l, 0, sizeof(l));
	CHECK(probe_ldap_feed(&l, buf, n, &used, 2) == -1);
	memset(&l, 0, sizeof(l));
	CHECK(probe_ldap_feed(&l, (const uint8_t *)"\x15\x03\x03\x00\x02\x02\x28", 7, &used, 1) == -1);
	/* Sixteen entries are read; a seventeenth is more than a root DSE
	 * search returns. */
	for (int k = 16; k <= 17; k++) {
		static uint8_t many[2048];
		size_t len = 0;

		for (int i = 0; i < k; i++)
			len += ldap_msg(many + len, 1, 0x64, entry, sizeof(entry));
		len += ldap_msg(many + len, 1, 0x65, done0, sizeof(done0));
		memset(&l, 0, sizeof(l));
		if (k == 16)
			CHECK(probe_ldap_feed(&l, many, len, &used, 1) == 1 && l.entries == 16 &&
			      used == len);
		else
			CHECK(probe_ldap_feed(&l, many, len, &used, 1) == -1);
	}
	/* A response op without a result code. */
	n = ldap_msg(buf, 1, 0x65, (const uint8_t *)"\x04\x00", 2);
	memset(&l, 0, sizeof(l));
	CHECK(probe_ldap_feed(&l, buf, n, &used, 1) == -1);
}

/* Each bound met exactly, and each test of a line's shape on its own. */
static void edges(void)
{
	static char big[PROBE_TEXT_MAX * 2];
	size_t rest, used, n;
	struct probe_caps c;

	/* An IMAP tag of the most bytes kept, NUL-terminated. */
	probe_reply_init(&r, PROBE_RK_IMAP, "abcdefghij");
	CHECK(strlen(r.tag) == sizeof(r.tag) - 1 && r.tag[sizeof(r.tag) - 1] == '\0');

	/* SMTP and FTP: each of the three digits, the fourth byte. */
	CHECK(feed_all(PROBE_RK_SMTP, NULL, "x50 hi\r\n", &r, &rest) == -1);
	CHECK(feed_all(PROBE_RK_SMTP, NULL, "2x0 hi\r\n", &r, &rest) == -1);
	CHECK(feed_all(PROBE_RK_SMTP, NULL, "25\r\n", &r, &rest) == -1);
	CHECK(feed_all(PROBE_RK_FTP, NULL, "220\r\n", &r, &rest) == 1 && r.code == 220);
	CHECK(feed_all(PROBE_RK_FTP, NULL, "x20 hi\r\n", &r, &rest) == -1);
	CHECK(feed_all(PROBE_RK_FTP, NULL, "2x0 hi\r\n", &r, &rest) == -1);
	CHECK(feed_all(PROBE_RK_FTP, NULL, "22x hi\r\n", &r, &rest) == -1);
	CHECK(feed_all(PROBE_RK_FTP, NULL, "22\r\n", &r, &rest) == -1);
	CHECK(feed_all(PROBE_RK_FTP, NULL, "220x hi\r\n", &r, &rest) == -1);
	/* The last line of a multi-line reply may be the code and a space. */
	CHECK(feed_all(PROBE_RK_FTP, NULL, "211-Features:\r\n X\r\n211 \r\nx", &r,
	               &rest) == 1 && r.nlines == 3 && rest == 1);

	/* IMAP: a continuation request ends the reply, however short. */
	CHECK(feed_all(PROBE_RK_IMAP, "p1", "+ go ahead\r\nx", &r, &rest) == 1 &&
	      r.code == 0 && rest == 1);
	CHECK(feed_all(PROBE_RK_IMAP, "p1", "+\r\n", &r, &rest) == 1 && r.code == 0);
	/* POP3: only a line of one dot ends a list; a dot-stuffed line and
	 * a line of one other byte do not. */
	CHECK(feed_all(PROBE_RK_POP3_MULTI, NULL, "+OK\r\n..x\r\nx\r\n.\r\n", &r,
	               &rest) == 1 && r.nlines == 4);

	/* HTTP: the shortest status line; the name, the space and each digit. */
	CHECK(feed_all(PROBE_RK_HTTP, NULL, "HTTP/1.1 301\r\n\r\n", &r, &rest) == 1 &&
	      r.code == 301);
	CHECK(feed_all(PROBE_RK_HTTP, NULL, "HTTQ/1.1 301 Moved\r\n\r\n", &r, &rest) == -1);
	CHECK(feed_all(PROBE_RK_HTTP, NULL, "HTTP/1.1x301 Moved\r\n\r\n", &r, &rest) == -1);
	CHECK(feed_all(PROBE_RK_HTTP, NULL, "HTTP/1.1 3x1 Moved\r\n\r\n", &r, &rest) == -1);
	CHECK(feed_all(PROBE_RK_HTTP, NULL, "HTTP/1.1 x01 Moved\r\n\r\n", &r, &rest) == -1);

	/* A line of PROBE_LINE_MAX bytes with its CRLF is read; one more
	 * byte is not. */
	memcpy(big, "250 ", 4);
	memset(big + 4, 'a', PROBE_LINE_MAX - 6);
	memcpy(big + PROBE_LINE_MAX - 2, "\r\n", 2);
	probe_reply_init(&r, PROBE_RK_SMTP, NULL);
	CHECK(probe_reply_feed(&r, (const uint8_t *)big, PROBE_LINE_MAX, &used) == 1 &&
	      used == PROBE_LINE_MAX && r.len == PROBE_LINE_MAX - 2);
	memset(big + 4, 'a', PROBE_LINE_MAX - 5);
	memcpy(big + PROBE_LINE_MAX - 1, "\r\n", 2);
	probe_reply_init(&r, PROBE_RK_SMTP, NULL);
	CHECK(probe_reply_feed(&r, (const uint8_t *)big, PROBE_LINE_MAX + 1, &used) == -1);
	/* PROBE_LINES_MAX lines are read. */
	n = 0;
	for (int i = 0; i < PROBE_LINES_MAX - 1; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "250-x\r\n");
	n += (size_t)snprintf(big + n, sizeof(big) - n, "250 x\r\n");
	probe_reply_init(&r, PROBE_RK_SMTP, NULL);
	CHECK(probe_reply_feed(&r, (const uint8_t *)big, n, &used) == 1 &&
	      r.nlines == PROBE_LINES_MAX);
	/* The text kept: PROBE_TEXT_MAX - 2 bytes (room for the NUL and a
	 * line's end) are read, one more is not. Four lines of 1,000 bytes,
	 * a fifth of 90 or 91, joined by '\n': 4,094 or 4,095. */
	for (size_t last = 90; last <= 91; last++) {
		n = 0;
		for (int i = 0; i < 4; i++) {
			memcpy(big + n, "250-", 4);
			memset(big + n + 4, 'y', 996);
			big[n + 1000] = '\n';
			n += 1001;
		}
		memcpy(big + n, "250 ", 4);
		memset(big + n + 4, 'z', last - 4);
		big[n + last] = '\n';
		n += last + 1;
		probe_reply_init(&r, PROBE_RK_SMTP, NULL);
		if (last == 90)
			CHECK(probe_reply_feed(&r, (const uint8_t *)big, n, &used) == 1 &&
			      r.len == PROBE_TEXT_MAX - 2 && strlen(r.text) == r.len);
		else
			CHECK(probe_reply_feed(&r, (const uint8_t *)big, n, &used) == -1);
	}

	/* Capabilities: words split at tabs and brackets too; a word longer
	 * than the probe keeps is cut, not matched; a line of just the code
	 * and a space is a capability line. */
	probe_caps_smtp("220 x\n250-mx\n250 \t[STARTTLS]", &c);
	CHECK(c.have_caps && c.starttls);
	memset(big, 0, sizeof(big));
	strcpy(big, "220 x\n250-mx\n250 STARTTLS");
	memset(big + strlen(big), 'X', 100);
	probe_caps_smtp(big, &c);
	CHECK(c.have_caps && !c.starttls);
	probe_caps_smtp("220 x\n250 ", &c);
	CHECK(c.have_caps && !c.starttls);
	probe_caps_smtp("220 x\n250", &c);
	CHECK(!c.have_caps);

	/* Words at the very end. */
	CHECK(probe_has_word((const uint8_t *)"220 x FTP", 9, "FTP") == 1);
	CHECK(probe_has_word((const uint8_t *)"220 x FTP", 8, "FTP") == 0);

}

int main(void)
{
	replies();
	edges();
	limits();
	caps();
	banners();
	ldap();
	return CHECK_DONE();
}
