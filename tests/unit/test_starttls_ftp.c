#include "starttls_harness.h"
#include "ftp.h"

static const struct starttls_params p = { "ftp.example.org", 0, 0, NULL };

#define GREET "220 ftp.example.org FTP ready (AUTH TLS required)\r\n"
#define FEAT "211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n211 End\r\n"
#define GO "234 AUTH TLS successful\r\n"
#define LOGIN "530 Issue AUTH TLS first\r\n"
#define UNKNOWN "502 Command not implemented; issue AUTH TLS first\r\n"
#define UNAV "421 Service not available, closing control connection\r\n"

static struct h_run r;
static struct h_back b;

static void test_conversations(void)
{
	const struct starttls_driver *d = &starttls_ftp;

	H_SCRIPT(d, &p, "FEAT\r\nAUTH TLS\r\n", GREET FEAT GO,
	    STARTTLS_UPGRADE, &r);
	H_SCRIPT(d, &p, "feat\nauth tls\n", GREET FEAT GO, STARTTLS_UPGRADE, &r);
	H_SCRIPT(d, &p, "AUTH SSL\r\n", GREET GO, STARTTLS_UPGRADE, &r);
	H_SCRIPT(d, &p, "AUTH TLS-C\r\n", GREET GO, STARTTLS_UPGRADE, &r);
	H_SCRIPT(d, &p, "AUTH TLS-P\r\n", GREET GO, STARTTLS_UPGRADE, &r);
	/* Each mechanism alone: anything after it is another request. */
	H_SCRIPT(d, &p, "AUTH TLS x\r\nAUTH TLS-C x\r\nAUTH TLS-P x\r\n"
	    "AUTH SSL x\r\n", GREET
	    "504 Security mechanism not understood; use AUTH TLS\r\n"
	    "504 Security mechanism not understood; use AUTH TLS\r\n"
	    "504 Security mechanism not understood; use AUTH TLS\r\n"
	    "504 Security mechanism not understood; use AUTH TLS\r\n",
	    STARTTLS_AGAIN, &r);
	H_SCRIPT(d, &p, "NOOP\r\nAUTH\r\nAUTH KERBEROS_V4\r\nAUTH TLSX\r\n"
	    "FEAT x\r\nPBSZ 0\r\nPROT P\r\nQUIT\r\n", GREET "200 NOOP ok\r\n"
	    "501 Syntax error: AUTH TLS\r\n"
	    "504 Security mechanism not understood; use AUTH TLS\r\n"
	    "504 Security mechanism not understood; use AUTH TLS\r\n"
	    "501 No arguments allowed\r\n"
	    "503 Issue AUTH TLS first\r\n503 Issue AUTH TLS first\r\n"
	    "221 Goodbye\r\n", STARTTLS_REPLY_AND_CLOSE, &r);
	CHECK_STR(starttls_why(&r.s), "client quit");
	/* The greeting names the configured host; without one, localhost. */
	{
		static const struct starttls_params none = { NULL, 0, 0, NULL };
		H_SCRIPT(d, &none, "", "220 localhost FTP ready (AUTH TLS "
		    "required)\r\n", STARTTLS_AGAIN, &r);
	}
}

static void test_refusals(void)
{
	const struct starttls_driver *d = &starttls_ftp;

	/* RFC 4217: no login, no file command before TLS. */
	H_SCRIPT(d, &p, "USER alice\r\nPASS secret\r\nACCT x\r\nLIST\r\n"
	    "PASV\r\nRETR /etc/passwd\r\nCCC\r\n", GREET LOGIN LOGIN LOGIN
	    LOGIN LOGIN LOGIN LOGIN, STARTTLS_AGAIN, &r);
	CHECK_STR(starttls_cleartext_auth(&r.s), "USER");
	H_SCRIPT(d, &p, "XYZZY\r\nUSERS\r\n\r\n", GREET UNKNOWN UNKNOWN UNKNOWN,
	    STARTTLS_AGAIN, &r);
	CHECK(starttls_cleartext_auth(&r.s) == NULL);   /* USERS is not USER */
	/* Nothing the client sent is ever echoed. */
	H_SCRIPT(d, &p, "211 forged\r\nAUTH 234 forged\r\n", GREET UNKNOWN
	    "504 Security mechanism not understood; use AUTH TLS\r\n",
	    STARTTLS_AGAIN, &r);
	CHECK(!h_has(r.out, r.out_len, "forged"));
}

static void test_attacks(void)
{
	const struct starttls_driver *d = &starttls_ftp;
	char big[600];

	/* Injection: a command after AUTH TLS in the same read. */
	H_SCRIPT(d, &p, "AUTH TLS\r\nUSER alice\r\n", GREET GO,
	    STARTTLS_INJECTION, &r);
	CHECK_STR(starttls_why(&r.s), "command injection attempt");
	H_SCRIPT(d, &p, "AUTH TLS\r\nX", GREET GO, STARTTLS_INJECTION, &r);
	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	H_SCRIPT(d, &p, big, GREET "421 Too much input\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &r);
	/* 512 bytes with CRLF is the longest line taken. */
	big[510] = '\r';
	big[511] = '\n';
	big[512] = '\0';
	H_SCRIPT(d, &p, big, GREET UNKNOWN, STARTTLS_AGAIN, &r);
	big[511] = 'x';
	big[512] = '\n';
	big[513] = '\0';
	H_SCRIPT(d, &p, big, GREET "421 Too much input\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &r);
	H_SCRIPT(d, &p, "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n"
	    "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nAUTH TLS\r\n", GREET
	    "200 NOOP ok\r\n200 NOOP ok\r\n200 NOOP ok\r\n200 NOOP ok\r\n"
	    "200 NOOP ok\r\n200 NOOP ok\r\n200 NOOP ok\r\n200 NOOP ok\r\n"
	    "200 NOOP ok\r\n200 NOOP ok\r\n421 Too much input\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &r);
}

static void test_after_tls(void)
{
	static struct h_run up;
	struct buf out = {0};

	H_SCRIPT(&starttls_ftp, &p, "AUTH TLS\r\n", GREET GO, STARTTLS_UPGRADE,
	    &up);
	/* The backend's 220 is eaten, one line or several. */
	h_back_script(&up.s, "220 (vsFTPd 3.0.3)\r\n", "", STARTTLS_RELAY, &b);
	CHECK(b.left == 0 && b.flow == 1);
	h_back_script(&up.s, "220-Welcome\r\n220-to this\r\n 220 not yet\r\n"
	    "220 server\r\n", "", STARTTLS_RELAY, &b);
	CHECK(b.left == 0);
	h_back_script(&up.s, "120 in 5 minutes\r\n220 ready\r\n", "",
	    STARTTLS_RELAY, &b);
	CHECK(b.left == 0);
	h_back_script(&up.s, "421 Too many users\r\n", UNAV,
	    STARTTLS_REPLY_AND_CLOSE, &b);
	h_back_script(&up.s, "120 later\r\n120 later\r\n", UNAV,
	    STARTTLS_REPLY_AND_CLOSE, &b);
	h_back_script(&up.s, "SSH-2.0-OpenSSH\r\n", UNAV,
	    STARTTLS_REPLY_AND_CLOSE, &b);
	CHECK_STR(b.why, "malformed backend greeting");
	h_back_script(&up.s, "220-multi\r\n220-line", "", STARTTLS_AGAIN, &b);
	CHECK(starttls_bye(&up.s, STARTTLS_BYE_TIMEOUT, &out) == 0);
	CHECK(out.len == strlen("421 Timeout\r\n"));
	buf_reset(&out);
}

static void test_reply_framing(void)
{
	static const char *const whole[] = { "200 ok\r\n", "200\r\n", "226\n",
	    "211-a\r\n b\r\n211-c\r\n211 d\r\n", "211-a\n211 d\n" };
	size_t len;
	int code;

	for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++) {
		const uint8_t *w = (const uint8_t *)whole[i];
		size_t n = strlen(whole[i]);
		code = 0;
		CHECK(ftp_reply(w, n, 4096, &len, &code) == 1 && len == n);
		CHECK(code == (w[0] - '0') * 100 + (w[1] - '0') * 10 + w[2] - '0');
		for (size_t k = 0; k < n; k++)
			CHECK(ftp_reply(w, k, 4096, &len, &code) == 0);
		/* Followed by more: the first reply only. */
		CHECK(ftp_reply((const uint8_t *)"200 ok\r\n331 x\r\n", 15, 4096,
		    &len, &code) == 1 && len == 8 && code == 200);
	}
	CHECK(ftp_reply((const uint8_t *)"20 x\r\n", 6, 4096, &len, &code) == -2);
	CHECK(ftp_reply((const uint8_t *)"200x\r\n", 6, 4096, &len, &code) == -2);
	CHECK(ftp_reply((const uint8_t *)"2000 x\r\n", 8, 4096, &len, &code) == -2);
	CHECK(ftp_reply((const uint8_t *)"200-a\r\n201 b\r\n", 14, 4096, &len,
	    &code) == 0);
	CHECK(ftp_reply((const uint8_t *)"200-a\r\n201 b\r\n", 14, 10, &len,
	    &code) == -1);
	CHECK(ftp_reply((const uint8_t *)"200 abcdefgh", 12, 10, &len,
	    &code) == -1);
}

int main(void)
{
	test_conversations();
	test_refusals();
	test_attacks();
	test_after_tls();
	test_reply_framing();
	return CHECK_DONE();
}
