#include "starttls_harness.h"

static const struct starttls_params req = { "mx.example.org", 0, 0, NULL };
static const struct starttls_params opt = { "mx.example.org", 1, 0, NULL };

#define GREET "220 mx.example.org ESMTP ready\r\n"
#define EHLO_R "250-mx.example.org\r\n250 STARTTLS\r\n"
#define MUST "530 5.7.0 Must issue a STARTTLS command first\r\n"

static struct h_run r;
static struct h_back b;

static void test_conversations(void)
{
	const struct starttls_driver *d = &starttls_smtp;

	H_SCRIPT(d, &req, "EHLO client.example\r\nSTARTTLS\r\n",
	    GREET EHLO_R "220 2.0.0 Ready to start TLS\r\n", STARTTLS_UPGRADE, &r);
	CHECK(r.left == 0 && r.s.keep_len == 0);
	/* Case, bare LF, HELO, NOOP, RSET, trailing blanks. */
	H_SCRIPT(d, &req, "helo c\nnoop\r\nRSET\r\nStartTLS  \r\n",
	    GREET "250 mx.example.org\r\n250 2.0.0 OK\r\n250 2.0.0 OK\r\n"
	    "220 2.0.0 Ready to start TLS\r\n", STARTTLS_UPGRADE, &r);
	/* STARTTLS with an argument, EHLO without one. */
	H_SCRIPT(d, &req, "EHLO\r\nSTARTTLS now\r\nQUIT\r\n",
	    GREET "501 5.5.4 Syntax: EHLO hostname\r\n"
	    "501 5.5.4 Syntax error (no parameters allowed)\r\n"
	    "221 2.0.0 mx.example.org closing connection\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &r);
	CHECK_STR(starttls_why(&r.s), "client quit");
	/* A partial command waits. */
	H_SCRIPT(d, &req, "EHLO a\r\nSTART", GREET EHLO_R, STARTTLS_AGAIN, &r);
	CHECK(r.left == 5);
}

static void test_attacks(void)
{
	const struct starttls_driver *d = &starttls_smtp;
	char big[700];

	/* CVE-2014-3556: a command pipelined after STARTTLS, in one write and
	 * split (the split runs see it after UPGRADE). */
	H_SCRIPT(d, &req, "EHLO a\r\nSTARTTLS\r\nMAIL FROM:<evil@x>\r\n",
	    GREET EHLO_R "220 2.0.0 Ready to start TLS\r\n",
	    STARTTLS_INJECTION, &r);
	CHECK_STR(starttls_why(&r.s), "command injection attempt");
	H_SCRIPT(d, &opt, "STARTTLS\r\n\r\n",
	    GREET "220 2.0.0 Ready to start TLS\r\n", STARTTLS_INJECTION, &r);

	/* AUTH and mail before TLS are refused, in required mode always. */
	H_SCRIPT(d, &req, "EHLO a\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"
	    "MAIL FROM:<a@b>\r\nXYZZY\r\n\r\n",
	    GREET EHLO_R MUST MUST MUST MUST, STARTTLS_AGAIN, &r);
	H_SCRIPT(d, &req, "HELO a\r\nAUTH LOGIN\r\n", GREET "250 mx.example.org\r\n"
	    MUST, STARTTLS_AGAIN, &r);
	CHECK_STR(starttls_cleartext_auth(&r.s), "AUTH");
	/* Refused mail is not an attempt at credentials. */
	H_SCRIPT(d, &req, "EHLO a\r\nMAIL FROM:<a@b>\r\n", GREET EHLO_R MUST,
	    STARTTLS_AGAIN, &r);
	CHECK(starttls_cleartext_auth(&r.s) == NULL);

	/* The capability list is the same whatever the client says. */
	H_SCRIPT(d, &req, "EHLO PIPELINING AUTH\r\nEHLO x\r\n",
	    GREET EHLO_R EHLO_R, STARTTLS_AGAIN, &r);

	/* Lines over 512 bytes end the session. */
	memset(big, 'A', sizeof(big));
	memcpy(big, "EHLO ", 5);
	big[sizeof(big) - 1] = '\0';
	H_SCRIPT(d, &req, big, GREET "421 4.7.0 mx.example.org too much input, "
	    "closing connection\r\n", STARTTLS_REPLY_AND_CLOSE, &r);
	CHECK_STR(starttls_why(&r.s), "line too long");
	big[510] = '\r';
	big[511] = '\n';
	big[512] = '\0';	/* exactly 512 with CRLF: accepted */
	H_SCRIPT(d, &req, big, GREET EHLO_R, STARTTLS_AGAIN, &r);

	/* Command cap: the eleventh command closes. */
	H_SCRIPT(d, &req, "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n"
	    "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nSTARTTLS\r\n",
	    GREET "250 2.0.0 OK\r\n250 2.0.0 OK\r\n250 2.0.0 OK\r\n"
	    "250 2.0.0 OK\r\n250 2.0.0 OK\r\n250 2.0.0 OK\r\n250 2.0.0 OK\r\n"
	    "250 2.0.0 OK\r\n250 2.0.0 OK\r\n250 2.0.0 OK\r\n"
	    "421 4.7.0 mx.example.org too much input, closing connection\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &r);
	CHECK_STR(starttls_why(&r.s), "too many commands before TLS");
	{
		static const struct starttls_params two = { "h", 0, 2, NULL };
		H_SCRIPT(d, &two, "NOOP\r\nNOOP\r\nNOOP\r\n", "220 h ESMTP ready\r\n"
		    "250 2.0.0 OK\r\n250 2.0.0 OK\r\n421 4.7.0 h too much input, "
		    "closing connection\r\n", STARTTLS_REPLY_AND_CLOSE, &r);
	}
}

/* A backend's EHLO reply with every kind of line: what a client may see
 * before TLS, what it must not (AUTH in both spellings, STARTTLS, XCLIENT,
 * XFORWARD), what filter_smtp could not carry (CHUNKING), case and
 * parameters kept. */
#define B_GREET "220-b.example ESMTP\r\n220 hi\r\n"
#define B_EHLO "250-b.example Hello relay.example [192.0.2.1]\r\n" \
	"250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n" \
	"250-AUTH=LOGIN\r\n250-STARTTLS\r\n250-XCLIENT NAME ADDR\r\n" \
	"250-XFORWARD NAME ADDR\r\n250-8BITMIME\r\n250-CHUNKING\r\n" \
	"250-BINARYMIME\r\n250-VRFY\r\n250-ETRN\r\n250-REQUIRETLS\r\n" \
	"250-X-EXPS GSSAPI\r\n250-smtputf8\r\n250-DSN\r\n" \
	"250 ENHANCEDSTATUSCODES\r\n"
#define MERGED "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n" \
	"250-8BITMIME\r\n250-smtputf8\r\n250-DSN\r\n" \
	"250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n"
#define BYE_421 "421 4.3.0 mx.example.org service not available\r\n"
#define READY "220 2.0.0 Ready to start TLS\r\n"

static void test_optional(void)
{
	const struct starttls_driver *d = &starttls_smtp;
	static struct h_run q, up;
	static struct h_back ans, b2;

	/* Without a hello, no plaintext relay yet. */
	H_SCRIPT(d, &opt, "MAIL FROM:<a@b>\r\n",
	    GREET "503 5.5.1 Send EHLO or HELO first\r\n", STARTTLS_AGAIN, &r);

	/* EHLO asks the backend first (finding 2 of the STARTTLS review):
	 * no reply of portier's own; the pipelined commands wait. */
	H_SCRIPT(d, &opt, "EHLO  relay.example\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n",
	    GREET, STARTTLS_BACKEND, &q);
	CHECK(q.left == strlen("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"));
	CHECK(q.s.keep_len == strlen("EHLO  relay.example\r\n") &&
	    memcmp(q.s.keep, "EHLO  relay.example\r\n", q.s.keep_len) == 0);
	CHECK(!starttls_client_may_flow(&q.s));
	/* Meanwhile the client's bytes stay where they are. */
	{
		struct starttls_session s = q.s;
		struct buf in = {0}, out = {0};
		buf_append(&in, "RSET\r\n", 6);
		CHECK(starttls_client_input(&s, &in, &out) == STARTTLS_AGAIN);
		CHECK(in.len == 6 && out.len == 0);
		buf_reset(&in);
	}

	/* The backend: greeting eaten, the client's EHLO sent as it came,
	 * the reply merged; split at every byte. */
	h_back_script(&q.s, B_GREET B_EHLO, MERGED, STARTTLS_RESUME, &ans);
	CHECK(ans.left == 0 && ans.flow == 0);
	CHECK(ans.server.out_len == strlen("EHLO  relay.example\r\n") &&
	    memcmp(ans.server.out, "EHLO  relay.example\r\n", ans.server.out_len) == 0);
	CHECK(ans.s.keep_len == 0);
	CHECK_STR(starttls_backend_awaited(&q.s), "greeting");
	/* A reply of one line, or a bare code: name and STARTTLS only. */
	h_back_script(&q.s, "220 b\r\n250 b.example\r\n",
	    "250-mx.example.org\r\n250 STARTTLS\r\n", STARTTLS_RESUME, &b);
	h_back_script(&q.s, "220 b\r\n250\r\n",
	    "250-mx.example.org\r\n250 STARTTLS\r\n", STARTTLS_RESUME, &b);
	/* Lines with a control byte (a tab, a CR before the CRLF) and a
	 * keyword that only starts like one are dropped; SIZE comes last
	 * from the backend, but STARTTLS is the last line the client reads. */
	h_back_script(&q.s, "220 b\r\n250-b\r\n250-SIZE\t1\r\n250-SIZES 2\r\n"
	    "250-8BITMIME\r\r\n250 SIZE 3\r\n",
	    "250-mx.example.org\r\n250-SIZE 3\r\n250 STARTTLS\r\n",
	    STARTTLS_RESUME, &b);
	/* Bytes after the reply wait for the next call. */
	h_back_script(&q.s, "220 b\r\n250 b\r\n250 2.1.0 Ok\r\n",
	    "250-mx.example.org\r\n250 STARTTLS\r\n", STARTTLS_RESUME, &b);
	CHECK(b.left == strlen("250 2.1.0 Ok\r\n"));
	/* Greeting only: the EHLO is sent, its reply awaited. */
	h_back_script(&q.s, "220 b\r\n", "", STARTTLS_AGAIN, &b);
	CHECK(b.flow == 0 && b.server.out_len > 0);
	CHECK_STR(starttls_backend_awaited(&b.s), "reply to the client's EHLO or HELO");
	/* Refused: the backend's refusal reaches the client as it came, and
	 * the client is not greeted (it may try HELO, RFC 5321 4.1.4); a
	 * 421 of ours would turn the backend's permanent answer into a
	 * retry. */
	h_back_script(&q.s, "220 b\r\n550-5.7.1 no\r\n550 5.7.1 never\r\n",
	    "550-5.7.1 no\r\n550 5.7.1 never\r\n", STARTTLS_RESUME, &b);
	CHECK(b.left == 0 && b.flow == 0);
	H_SCRIPT_FROM(&b.s, "MAIL FROM:<a@b>\r\n",
	    "503 5.5.1 Send EHLO or HELO first\r\n", STARTTLS_AGAIN, &r);
	h_back_script(&q.s, "220 b\r\n451 4.3.0 later\r\n",
	    "451 4.3.0 later\r\n", STARTTLS_RESUME, &b);
	/* Its 421 (closing), a reply no EHLO gets, garbled or oversized:
	 * 421 of ours, the connection ends. */
	h_back_script(&q.s, "220 b\r\n421 4.3.2 shutting down\r\n", BYE_421,
	    STARTTLS_REPLY_AND_CLOSE, &b);
	CHECK_STR(b.why, "backend closing at the client's EHLO (421)");
	h_back_script(&q.s, "220 b\r\n354 go on\r\n", BYE_421,
	    STARTTLS_REPLY_AND_CLOSE, &b);
	CHECK_STR(b.why, "backend reply to the client's EHLO neither 250 nor a refusal");
	h_back_script(&q.s, "220 b\r\n250-b\r\n251 x\r\n", BYE_421,
	    STARTTLS_REPLY_AND_CLOSE, &b);
	CHECK_STR(b.why, "malformed or oversized backend reply to the client's EHLO");
	/* A code is three digits from 200 to 599 (299 is one: neither 250
	 * nor a refusal; 400 is a refusal); 150, 650 and 25 are none. */
	h_back_script(&q.s, "220 b\r\n299 x\r\n", BYE_421,
	    STARTTLS_REPLY_AND_CLOSE, &b);
	CHECK_STR(b.why, "backend reply to the client's EHLO neither 250 nor a refusal");
	h_back_script(&q.s, "220 b\r\n400 later\r\n", "400 later\r\n",
	    STARTTLS_RESUME, &b);
	{
		static const char *const bad[] = { "220 b\r\n150 x\r\n",
		    "220 b\r\n650 x\r\n", "220 b\r\n25\r\n" };
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			h_back_script(&q.s, bad[i], BYE_421,
			    STARTTLS_REPLY_AND_CLOSE, &b);
			CHECK_STR(b.why, "malformed or oversized backend reply to "
			    "the client's EHLO");
		}
	}
	/* The first line names the backend, whatever it says: not merged. */
	h_back_script(&q.s, "220 b\r\n250-PIPELINING\r\n250 SIZE 10\r\n",
	    "250-mx.example.org\r\n250-SIZE 10\r\n250 STARTTLS\r\n",
	    STARTTLS_RESUME, &b);
	h_back_script(&q.s, "554 5.3.2 go away\r\n", BYE_421,
	    STARTTLS_REPLY_AND_CLOSE, &b);
	{
		static char huge[STARTTLS_REPLY_MAX + 100];
		size_t i;
		memcpy(huge, "220 b\r\n", 7);
		for (i = 7; i + 12 < sizeof(huge); i += 12)
			memcpy(huge + i, "250-SIZE 99\n", 12);
		huge[i] = '\0';
		h_backend(&q.s, huge, strlen(huge), 0, strlen(huge), &b);
		CHECK(b.v == STARTTLS_REPLY_AND_CLOSE);
		CHECK(b.client.out_len == strlen(BYE_421));
	}

	/* Plaintext after the answer: the MAIL line stays for the backend,
	 * and the hand-over has nothing to replay: RELAY at once, no byte
	 * to the backend, none eaten. */
	H_SCRIPT_FROM(&ans.s, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", "",
	    STARTTLS_PLAINTEXT, &r);
	CHECK(r.left == strlen("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n"));
	h_back_script(&r.s, "", "", STARTTLS_RELAY, &b);
	CHECK(b.flow == 1 && b.server.out_len == 0 && b.left == 0);
	h_back_script(&r.s, "250 2.1.0 Ok\r\n", "", STARTTLS_RELAY, &b);
	CHECK(b.flow == 1 && b.server.out_len == 0 &&
	    b.left == strlen("250 2.1.0 Ok\r\n"));

	/* STARTTLS after the answer: the queried backend session knows the
	 * plaintext EHLO (RFC 3207 4.2) and may refuse a second one
	 * (OpenSMTPD: 503 Already identified): the hand-over after TLS is
	 * on a new connection, its greeting eaten, nothing replayed. */
	H_SCRIPT_FROM(&ans.s, "STARTTLS\r\n", READY, STARTTLS_UPGRADE, &up);
	CHECK(up.s.keep_len == 0 && up.s.state[0] == 0);
	h_back_script(&up.s, "", "", STARTTLS_AGAIN, &b);
	CHECK(b.flow == 0 && b.server.out_len == 0);
	h_back_script(&up.s, "220 b\r\n", "", STARTTLS_RELAY, &b);
	CHECK(b.left == 0 && b.flow == 1 && b.server.out_len == 0);
	h_back_script(&up.s, "220 b\r\n250-b\r\n250 STARTTLS\r\n", "",
	    STARTTLS_RELAY, &b);
	CHECK(b.left == strlen("250-b\r\n250 STARTTLS\r\n") && b.flow == 1);
	/* ... and the usual injection rules hold: pipelined behind EHLO. */
	H_SCRIPT(d, &opt, "EHLO a\r\nSTARTTLS\r\n", GREET, STARTTLS_BACKEND, &r);
	CHECK(r.left == 10);
	h_back_script(&r.s, "220 b\r\n250 b\r\n", "250-mx.example.org\r\n"
	    "250 STARTTLS\r\n", STARTTLS_RESUME, &b);
	H_SCRIPT_FROM(&b.s, "STARTTLS\r\n", READY, STARTTLS_UPGRADE, &r);
	H_SCRIPT_FROM(&b.s, "STARTTLS\r\nMAIL FROM:<a@b>\r\n", READY,
	    STARTTLS_INJECTION, &r);

	/* Still refused before TLS: AUTH (noted), and XCLIENT goes to the
	 * relay's filter, never to portier's dialogue. */
	H_SCRIPT_FROM(&ans.s, "AUTH PLAIN AGFAYgBj\r\n", MUST, STARTTLS_AGAIN, &r);
	CHECK_STR(starttls_cleartext_auth(&r.s), "AUTH");

	/* A second EHLO asks again (the backend is greeted: no greeting). */
	H_SCRIPT_FROM(&ans.s, "EHLO again.example\r\n", "", STARTTLS_BACKEND, &r);
	h_back_script(&r.s, "250-b\r\n250 SIZE 5\r\n", "250-mx.example.org\r\n"
	    "250-SIZE 5\r\n250 STARTTLS\r\n", STARTTLS_RESUME, &b2);
	CHECK(b2.server.out_len == strlen("EHLO again.example\r\n"));
	/* A second EHLO the backend refuses (OpenSMTPD: 503 Already
	 * identified): the refusal reaches the client, the first EHLO holds. */
	H_SCRIPT_FROM(&ans.s, "EHLO again.example\r\n", "", STARTTLS_BACKEND, &r);
	h_back_script(&r.s, "503 5.5.1 Invalid command: Already identified\r\n",
	    "503 5.5.1 Invalid command: Already identified\r\n",
	    STARTTLS_RESUME, &b2);
	H_SCRIPT_FROM(&b2.s, "STARTTLS\r\n", READY, STARTTLS_UPGRADE, &r);
	/* A HELO after it asks the backend too, whose refusal (OpenSMTPD's
	 * 503 for a second hello) is the client's answer, not a 421 at the
	 * mail after it: the EHLO holds, plaintext replays nothing. */
	H_SCRIPT_FROM(&ans.s, "HELO c\r\nMAIL FROM:<a@b>\r\n", "",
	    STARTTLS_BACKEND, &r);
	h_back_script(&r.s, "503 5.5.1 Invalid command: Already identified\r\n",
	    "503 5.5.1 Invalid command: Already identified\r\n",
	    STARTTLS_RESUME, &b2);
	CHECK(b2.server.out_len == 8 && memcmp(b2.server.out, "HELO c\r\n", 8) == 0);
	H_SCRIPT_FROM(&b2.s, "MAIL FROM:<a@b>\r\n", "", STARTTLS_PLAINTEXT, &r);
	h_back_script(&r.s, "", "", STARTTLS_RELAY, &b);
	CHECK(b.flow == 1 && b.server.out_len == 0);

	/* A control byte never reaches the backend: one line stays one
	 * command (a bare CR some servers read as a line end). */
	H_SCRIPT(d, &opt, "EHLO a\rRSET\r\nEHLO a\x7f\r\n", GREET
	    "501 5.5.4 Syntax: EHLO hostname\r\n"
	    "501 5.5.4 Syntax: EHLO hostname\r\n", STARTTLS_AGAIN, &r);

	/* HELO (no EHLO) asks the backend as EHLO does: taken, the client
	 * gets portier's name alone (a HELO asks for no extensions, and
	 * the backend's many lines are never passed); the commands behind
	 * it wait, then go on in plaintext with nothing replayed. */
	H_SCRIPT(d, &opt, "HELO a\r\nVRFY x\r\n", GREET, STARTTLS_BACKEND, &q);
	CHECK(q.s.keep_len == 8 && memcmp(q.s.keep, "HELO a\r\n", 8) == 0);
	CHECK(q.left == strlen("VRFY x\r\n"));
	h_back_script(&q.s, B_GREET "250-b\r\n250 SIZE 1\r\n",
	    "250 mx.example.org\r\n", STARTTLS_RESUME, &b);
	CHECK(b.server.out_len == 8 && memcmp(b.server.out, "HELO a\r\n", 8) == 0);
	CHECK(b.left == 0 && b.flow == 0 && b.s.keep_len == 0);
	H_SCRIPT_FROM(&b.s, "VRFY x\r\n", "", STARTTLS_PLAINTEXT, &r);
	h_back_script(&r.s, "250 2.0.0 VRFY\r\n", "", STARTTLS_RELAY, &b2);
	CHECK(b2.left == strlen("250 2.0.0 VRFY\r\n") && b2.flow == 1);
	CHECK(b2.server.out_len == 0);
	/* Refused: as it came, the client not greeted; the backend's 421,
	 * a reply no HELO gets, garbled: 421 of ours, said for HELO. */
	h_back_script(&q.s, "220 b\r\n550 5.7.1 not you\r\n",
	    "550 5.7.1 not you\r\n", STARTTLS_RESUME, &b);
	H_SCRIPT_FROM(&b.s, "VRFY x\r\n",
	    "503 5.5.1 Send EHLO or HELO first\r\n", STARTTLS_AGAIN, &r);
	h_back_script(&q.s, "220 b\r\n421 4.3.2 bye\r\n", BYE_421,
	    STARTTLS_REPLY_AND_CLOSE, &b);
	CHECK_STR(b.why, "backend closing at the client's HELO (421)");
	h_back_script(&q.s, "220 b\r\n221 bye\r\n", BYE_421,
	    STARTTLS_REPLY_AND_CLOSE, &b);
	CHECK_STR(b.why, "backend reply to the client's HELO neither 250 nor a refusal");
	h_back_script(&q.s, "220 b\r\n250-b\r\n550 x\r\n", BYE_421,
	    STARTTLS_REPLY_AND_CLOSE, &b);
	CHECK_STR(b.why, "malformed or oversized backend reply to the client's HELO");
	/* STARTTLS after a HELO query: a new backend session after TLS,
	 * nothing kept of the first. */
	h_back_script(&q.s, "220 b\r\n250 b\r\n", "250 mx.example.org\r\n",
	    STARTTLS_RESUME, &b);
	H_SCRIPT_FROM(&b.s, "STARTTLS\r\n", READY, STARTTLS_UPGRADE, &r);
	CHECK(r.s.keep_len == 0 && r.s.keep[0] == 0 && r.s.state[0] == 0 &&
	    r.s.state[1] == 0);
	h_back_script(&r.s, "220 b\r\n", "", STARTTLS_RELAY, &b);
	CHECK(b.left == 0 && b.server.out_len == 0);
	/* In required mode nothing is kept, and EHLO is portier's alone. */
	H_SCRIPT(d, &req, "EHLO a\r\n", GREET EHLO_R, STARTTLS_AGAIN, &r);
	CHECK(r.s.keep_len == 0);
	/* optional is SMTP's alone. */
	CHECK(starttls_init(&r.s, &starttls_imap, &opt) == -1);
}

static void test_after_tls(void)
{
	const struct starttls_driver *d = &starttls_smtp;
	static struct h_run up;

	H_SCRIPT(d, &req, "EHLO a\r\nSTARTTLS\r\n",
	    GREET EHLO_R "220 2.0.0 Ready to start TLS\r\n", STARTTLS_UPGRADE, &up);
	CHECK(!starttls_client_may_flow(&up.s));

	/* RELAY as soon as the greeting is eaten, before any client byte:
	 * the hand-over never waits on the client's pace. What follows the
	 * greeting is the client's as it is (filter_smtp takes STARTTLS out
	 * of EHLO replies in the relay). */
	h_back_script(&up.s, "220 b ESMTP\r\n", "", STARTTLS_RELAY, &b);
	CHECK(b.left == 0 && b.flow == 1 && b.server.out_len == 0);
	h_back_script(&up.s, "220-b\r\n220 b\r\n250-b\r\n250 STARTTLS\r\n", "",
	    STARTTLS_RELAY, &b);
	CHECK(b.left == strlen("250-b\r\n250 STARTTLS\r\n") && b.flow == 1);
	/* Half a greeting: the hand-over goes on, the client waits. */
	h_back_script(&up.s, "220-b\r\n220 b", "", STARTTLS_AGAIN, &b);
	CHECK(b.flow == 0 && b.server.out_len == 0);

	/* Negative, malformed, oversized greetings: 421 inside TLS. */
	h_back_script(&up.s, "554 5.3.2 go away\r\n",
	    "421 4.3.0 mx.example.org service not available\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &b);
	h_back_script(&up.s, "220-b\r\n250 b\r\n",
	    "421 4.3.0 mx.example.org service not available\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &b);
	h_back_script(&up.s, "hello\r\n",
	    "421 4.3.0 mx.example.org service not available\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &b);
	{
		static char huge[STARTTLS_REPLY_MAX + 100];
		memset(huge, 'x', sizeof(huge) - 1);
		memcpy(huge, "220-", 4);
		h_backend(&up.s, huge, strlen(huge), 0, strlen(huge), &b);
		CHECK(b.v == STARTTLS_REPLY_AND_CLOSE);
	}
	/* Bytes after the upgrade, before the handshake: injection. */
	{
		struct starttls_session s = up.s;
		struct buf in = {0}, out = {0};
		buf_append(&in, "RSET\r\n", 6);
		CHECK(starttls_client_input(&s, &in, &out) == STARTTLS_INJECTION);
		buf_reset(&in);
	}
	CHECK(starttls_looks_like_tls((const uint8_t *)"\x16\x03\x01", 3) == 1);
	CHECK(starttls_looks_like_tls((const uint8_t *)"\x16", 1) == -1);
	CHECK(starttls_looks_like_tls((const uint8_t *)"MAIL", 4) == 0);
	CHECK(starttls_looks_like_tls((const uint8_t *)"\x16\x03\x09", 3) == 0);
}

static void test_bye_and_init(void)
{
	struct starttls_session s;
	struct buf out = {0};
	static const struct starttls_params badhost = { "mx\r\n250 x", 0, 0, NULL };

	CHECK(starttls_init(&s, &starttls_smtp, &req) == 0);
	CHECK(starttls_bye(&s, STARTTLS_BYE_UNAVAILABLE, &out) == 0);
	CHECK(starttls_bye(&s, STARTTLS_BYE_TIMEOUT, &out) == 0);
	CHECK(out.len == strlen("421 4.3.0 mx.example.org service not available\r\n"
	    "421 4.4.2 mx.example.org timeout, closing connection\r\n"));
	buf_reset(&out);
	/* Over a per-client limit: policy, for now (RFC 3463 4.7.0). */
	CHECK(starttls_bye(&s, STARTTLS_BYE_LIMITED, &out) == 0);
	CHECK(out.len == strlen("421 4.7.0 mx.example.org too many connections from "
	    "your address, try again later\r\n") &&
	    memcmp(buf_peek(&out), "421 4.7.0 mx.example.org too many", 33) == 0);
	buf_reset(&out);
	CHECK(starttls_init(&s, &starttls_smtp, &badhost) == -1);
}

/* XCLIENT: after the greeting portier sends EHLO and XCLIENT, checks the
 * backend offers it and takes the new 220, all before any client byte. */
static void test_xclient(void)
{
	const struct starttls_driver *d = &starttls_smtp;
	static const struct starttls_params xc = { "mx.example.org", 0, 0,
	    "ADDR=192.0.2.1 PORT=4711" };
	static const struct starttls_params xco = { "mx.example.org", 1, 0,
	    "ADDR=IPV6:2001:db8::1 PORT=25" };
	static const struct starttls_params bad = { "mx.example.org", 0, 0,
	    "ADDR=1\r\nRSET" };
	static const struct starttls_params ximap = { "mx.example.org", 0, 0,
	    "ADDR=1.2.3.4 PORT=1" };
	static const char sent[] = "EHLO mx.example.org\r\n"
	    "XCLIENT ADDR=192.0.2.1 PORT=4711\r\n";
	static struct h_run up;
	struct starttls_session s;

	H_SCRIPT(d, &xc, "EHLO a\r\nSTARTTLS\r\n",
	    GREET EHLO_R "220 2.0.0 Ready to start TLS\r\n", STARTTLS_UPGRADE, &up);
	h_back_script(&up.s, "220 b\r\n250-b\r\n250 XCLIENT ADDR PORT NAME\r\n"
	    "220 b XCLIENT ok\r\n250-b\r\n250 STARTTLS\r\n", "",
	    STARTTLS_RELAY, &b);
	CHECK(b.server.out_len == strlen(sent) &&
	    memcmp(b.server.out, sent, strlen(sent)) == 0);
	CHECK(b.left == strlen("250-b\r\n250 STARTTLS\r\n") && b.flow == 1);
	/* XCLIENT in any case, not last; RELAY the moment its 220 is eaten. */
	h_back_script(&up.s, "220 b\r\n250-b\r\n250-xclient addr\r\n250 SIZE\r\n"
	    "220 b\r\n", "", STARTTLS_RELAY, &b);
	CHECK(b.left == 0 && b.flow == 1);
	/* Until XCLIENT is accepted, the client's bytes wait. */
	h_back_script(&up.s, "220 b\r\n250-b\r\n250 XCLIENT ADDR\r\n", "",
	    STARTTLS_AGAIN, &b);
	CHECK(b.flow == 0);
	/* Not offered, or refused: the client gets 421, nothing else. */
	h_back_script(&up.s, "220 b\r\n250-b\r\n250 SIZE 10\r\n",
	    "421 4.3.0 mx.example.org service not available\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &b);
	CHECK_STR(b.why, "backend does not offer XCLIENT to portier "
	    "(Postfix: smtpd_authorized_xclient_hosts)");
	/* The server's name, or a longer word, is no offer. */
	h_back_script(&up.s, "220 b\r\n250-XCLIENT.example\r\n250 XCLIENTS\r\n",
	    "421 4.3.0 mx.example.org service not available\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &b);
	CHECK_STR(b.why, "backend does not offer XCLIENT to portier "
	    "(Postfix: smtpd_authorized_xclient_hosts)");
	h_back_script(&up.s, "220 b\r\n250-b\r\n250 XCLIENT ADDR\r\n550 5.7.0 no\r\n",
	    "421 4.3.0 mx.example.org service not available\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &b);
	/* portier's EHLO refused, or answered with no reply at all: the
	 * log says which, and the awaited reply is named plainly. */
	h_back_script(&up.s, "220 b\r\n554 5.7.1 no\r\n",
	    "421 4.3.0 mx.example.org service not available\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &b);
	CHECK_STR(b.why, "backend refused portier's EHLO before XCLIENT");
	h_back_script(&up.s, "220 b\r\n2x0 hi\r\n",
	    "421 4.3.0 mx.example.org service not available\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &b);
	CHECK_STR(b.why, "malformed or oversized backend reply to portier's EHLO "
	    "before XCLIENT");
	h_back_script(&up.s, "220 b\r\n", "", STARTTLS_AGAIN, &b);
	CHECK_STR(starttls_backend_awaited(&b.s), "reply to portier's EHLO (for XCLIENT)");

	/* Optional: XCLIENT first, then the client's EHLO asks the backend,
	 * whose XCLIENT offer (to portier) the client never sees; going on
	 * in plaintext after that sends nothing more. */
	H_SCRIPT(d, &xco, "EHLO client.example\r\nMAIL FROM:<a@b>\r\n",
	    GREET, STARTTLS_BACKEND, &up);
	h_back_script(&up.s, "220 b\r\n250-b\r\n250 XCLIENT ADDR\r\n220 b\r\n"
	    "250-b\r\n250-XCLIENT ADDR\r\n250-XFORWARD ADDR\r\n250 SIZE 9\r\n",
	    "250-mx.example.org\r\n250-SIZE 9\r\n250 STARTTLS\r\n",
	    STARTTLS_RESUME, &b);
	CHECK(b.server.out_len == strlen("EHLO mx.example.org\r\nXCLIENT "
	    "ADDR=IPV6:2001:db8::1 PORT=25\r\nEHLO client.example\r\n") &&
	    h_has(b.server.out, b.server.out_len, "EHLO mx.example.org\r\nXCLIENT "
	    "ADDR=IPV6:2001:db8::1 PORT=25\r\nEHLO client.example\r\n"));
	H_SCRIPT_FROM(&b.s, "MAIL FROM:<a@b>\r\n", "", STARTTLS_PLAINTEXT, &up);
	h_back_script(&up.s, "", "", STARTTLS_RELAY, &b);
	CHECK(b.server.out_len == 0 && b.flow == 1);
	/* XCLIENT refused at the query: 421 at the client's EHLO. */
	H_SCRIPT(d, &xco, "EHLO client.example\r\n", GREET, STARTTLS_BACKEND, &up);
	h_back_script(&up.s, "220 b\r\n250-b\r\n250 SIZE 1\r\n", BYE_421,
	    STARTTLS_REPLY_AND_CLOSE, &b);

	/* A line break can never get into the command; only SMTP has it. */
	CHECK(starttls_init(&s, d, &bad) == -1);
	CHECK(starttls_init(&s, &starttls_imap, &ximap) == -1);
}

int main(void)
{
	test_conversations();
	test_attacks();
	test_optional();
	test_after_tls();
	test_bye_and_init();
	test_xclient();
	return CHECK_DONE();
}
