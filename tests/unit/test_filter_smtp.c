#define FILTER_UNDER_TEST filter_smtp
/* Set while a test plays the relay after a STARTTLS hand-over. */
static int handed_over;
#define FILTER_SETUP(st) (handed_over ? filter_smtp_greeted(st) : (void)0)
#include "filter_harness.h"

#define NOXC "550 5.7.0 XCLIENT is not permitted\r\n"
#define NOXF "550 5.7.0 XFORWARD is not permitted\r\n"
#define LONG "500 5.5.2 Line too long\r\n"
#define SYN "501 5.5.4 Syntax: BDAT size [LAST]\r\n"
#define NOCHUNK "502 5.5.1 BDAT without CHUNKING\r\n"

static struct result res;

static void test_refused_in_order(void)
{
	static const struct turn pipelined[] = {
		{ 'c', "MAIL FROM:<a>\r\nXCLIENT ADDR=1.2.3.4\r\nRCPT TO:<b>\r\n", 0 },
		{ 'b', "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n", 0 },
	};
	static const struct turn first[] = {
		{ 'c', "XFORWARD NAME=spoof ADDR=1.2.3.4\r\nNOOP\r\n", 0 },
		{ 'b', "250 2.0.0 Ok\r\n", 0 },
	};
	/* A multi-line reply is never cut by our answer. */
	static const struct turn multi[] = {
		{ 'c', "HELP\r\nXCLIENT NAME=x\r\nXFORWARD ADDR=2\r\nNOOP\r\n", 0 },
		{ 'b', "214-a\r\n214-b\r\n214 c\r\n250 Ok\r\n", 0 },
	};
	/* Case, leading blanks, a tab, no argument, glued punctuation: all
	 * the verb; a longer word is not. */
	static const struct turn spelled[] = {
		{ 'c', "xclient addr=1.2.3.4\r\n  XClient\tNAME=x\r\nXCLIENT\r\n"
		    "xforward\n\tXCLIENT:ADDR=1\r\nXCLIENTS\r\nXFORWARDER x\r\n"
		    "\v\rXCLIENT\r\n", 0 },
		{ 'b', "500 unknown\r\n500 unknown\r\n", 0 },
	};

	SCRIPT(pipelined, "250 2.1.0 Ok\r\n" NOXC "250 2.1.5 Ok\r\n",
	    "MAIL FROM:<a>\r\nRCPT TO:<b>\r\n", 0, &res);
	SCRIPT(first, NOXF "250 2.0.0 Ok\r\n", "NOOP\r\n", 0, &res);
	SCRIPT(multi, "214-a\r\n214-b\r\n214 c\r\n" NOXC NOXF "250 Ok\r\n",
	    "HELP\r\nNOOP\r\n", 0, &res);
	SCRIPT(spelled, NOXC NOXC NOXC NOXF NOXC "500 unknown\r\n500 unknown\r\n"
	    NOXC,
	    "XCLIENTS\r\nXFORWARDER x\r\n", 0, &res);
}

static void test_data(void)
{
	static const struct turn body[] = {
		{ 'c', "MAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\n", 0 },
		{ 'b', "250 Ok\r\n250 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n", 0 },
		{ 'c', "Subject: x\r\n\r\nXCLIENT ADDR=1.2.3.4\r\n..XFORWARD\r\n"
		    ". \r\n.x\r\n.\r\nXCLIENT ADDR=5.6.7.8\r\nQUIT\r\n", 0 },
		{ 'b', "250 2.0.0 queued\r\n221 Bye\r\n", 0 },
	};
	/* Bytes after DATA wait for its reply: content after 354... */
	static const struct turn early[] = {
		{ 'c', "DATA\r\nXCLIENT ADDR=1.2.3.4\r\n", 0 },
		{ 'b', "354 go\r\n", 0 },
		{ 'c', ".\r\n", 0 },
		{ 'b', "250 queued\r\n", 0 },
	};
	/* ...commands after a refusal. */
	static const struct turn refused[] = {
		{ 'c', "DATA\r\nXCLIENT ADDR=1.2.3.4\r\nQUIT\r\n", 0 },
		{ 'b', "554 5.5.1 No valid recipients\r\n", 0 },
		{ 'b', "221 Bye\r\n", 0 },
	};
	static const struct turn held[] = {
		{ 'c', "DATA\r\nXCLIENT ADDR=1.2.3.4\r\n", 0 },
	};
	/* The "." line with bare LFs ends the content as well. */
	static const struct turn lf[] = {
		{ 'c', "DATA\n", 0 },
		{ 'b', "354 go\n", 0 },
		{ 'c', "a\n.\nXCLIENT ADDR=1\n", 0 },
		{ 'b', "250 queued\n", 0 },
	};

	SCRIPT(body, "250 Ok\r\n250 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 queued\r\n" NOXC "221 Bye\r\n",
	    "MAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\nSubject: x\r\n\r\n"
	    "XCLIENT ADDR=1.2.3.4\r\n..XFORWARD\r\n. \r\n.x\r\n.\r\nQUIT\r\n",
	    0, &res);
	SCRIPT(early, "354 go\r\n250 queued\r\n",
	    "DATA\r\nXCLIENT ADDR=1.2.3.4\r\n.\r\n", 0, &res);
	SCRIPT(refused, "554 5.5.1 No valid recipients\r\n" NOXC "221 Bye\r\n",
	    "DATA\r\nQUIT\r\n", 0, &res);
	SCRIPT(held, "", "DATA\r\n", 0, &res);
	CHECK(res.left_up == strlen("XCLIENT ADDR=1.2.3.4\r\n"));
	SCRIPT(lf, "354 go\n250 queued\n" NOXC, "DATA\na\n.\n", 0, &res);
}

#define CHUNK "ab\r\nXCLIENT ADDR=1.2.3.4\r\n"	/* 26 bytes */

static void test_bdat(void)
{
	static const struct turn chunk[] = {
		{ 'c', "EHLO c\r\n", 0 },
		{ 'b', "250-b.example\r\n250-CHUNKING\r\n250 PIPELINING\r\n", 0 },
		{ 'c', "MAIL FROM:<a>\r\nRCPT TO:<b>\r\nBDAT 10\r\n\r\nXCLIENT BDAT 26 LAST\r\n"
		    CHUNK "XCLIENT ADDR=1\r\nQUIT\r\n", 0 },
		{ 'b', "250 Ok\r\n250 Ok\r\n250 Ok\r\n250 queued\r\n221 Bye\r\n", 0 },
	};
	/* No CHUNKING on offer (or not seen: before EHLO): BDAT is answered
	 * here, and what follows is read as commands on both sides. */
	static const struct turn unoffered[] = {
		{ 'c', "BDAT 3\r\n", 0 },
		{ 'c', "EHLO c\r\n", 0 },
		{ 'b', "250-b.example\r\n250 PIPELINING\r\n", 0 },
		{ 'c', "BDAT 26 LAST\r\n" CHUNK, 0 },
		{ 'b', "500 5.5.2 unknown\r\n", 0 },
	};
	/* Any other spelling is answered here too: servers might read it
	 * differently, and a chunk's end may fall inside a line. */
	static const struct turn odd[] = {
		{ 'c', "EHLO c\r\n", 0 },
		{ 'b', "250-b.example\r\n250 CHUNKING\r\n", 0 },
		{ 'c', "BDAT 26 LAST now\r\n" CHUNK "BDAT 1234567890123456789\r\n"
		    "BDAT 05\r\nbdat  5\r\n  BDAT 5\r\nBDAT\t5\r\nBDAT 0 last\r\n"
		    "BDAT 5 LAST \r\n", 0 },
		{ 'b', "500 b\r\n250 c\r\n", 0 },
	};

	/* Leading zeros are answered, whatever the digit after them; 9 and
	 * 18 digits are sizes (what follows is the chunk, XCLIENT lines and
	 * all). */
	static const struct turn sizes[] = {
		{ 'c', "EHLO c\r\n", 0 },
		{ 'b', "250-b.example\r\n250 CHUNKING\r\n", 0 },
		{ 'c', "BDAT 00\r\nBDAT 09\r\nBDAT 9\r\nXCLIENT\r\n"
		    "BDAT 100000000000000000 LAST\r\nXCLIENT ADDR=1\r\n", 0 },
	};

	CHECK(strlen(CHUNK) == 26);
	SCRIPT(chunk, "250-b.example\r\n250-CHUNKING\r\n250 PIPELINING\r\n"
	    "250 Ok\r\n250 Ok\r\n250 Ok\r\n250 queued\r\n" NOXC "221 Bye\r\n",
	    "EHLO c\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nBDAT 10\r\n\r\nXCLIENT "
	    "BDAT 26 LAST\r\n" CHUNK "QUIT\r\n", 0, &res);
	SCRIPT(unoffered, NOCHUNK "250-b.example\r\n250 PIPELINING\r\n" NOCHUNK
	    "500 5.5.2 unknown\r\n" NOXC, "EHLO c\r\nab\r\n", 0, &res);
	SCRIPT(sizes, "250-b.example\r\n250 CHUNKING\r\n" SYN SYN,
	    "EHLO c\r\nBDAT 9\r\nXCLIENT\r\nBDAT 100000000000000000 LAST\r\n"
	    "XCLIENT ADDR=1\r\n", 0, &res);
	SCRIPT(odd, "250-b.example\r\n250 CHUNKING\r\n" SYN "500 b\r\n" NOXC
	    SYN SYN SYN SYN SYN "250 c\r\n" SYN,
	    "EHLO c\r\nab\r\nBDAT 0 last\r\n", 0, &res);
}

static void test_auth(void)
{
	/* The line after a 334 is a SASL response, whatever it says; the
	 * client's bytes wait for the reply that tells. */
	static const struct turn login[] = {
		{ 'c', "AUTH LOGIN\r\n", 0 },
		{ 'b', "334 VXNlcm5hbWU6\r\n", 0 },
		{ 'c', "DATA\r\n", 0 },
		{ 'b', "334 UGFzc3dvcmQ6\r\n", 0 },
		{ 'c', "EHLO\r\nNOOP\r\n", 0 },
		{ 'b', "235 2.7.0 Authentication successful\r\n", 0 },
		{ 'b', "250 Ok\r\n", 0 },
	};
	/* Pipelined after AUTH: held until the 334, then no BDAT (the
	 * backend reads that line as the response and what follows as
	 * commands), and no XCLIENT; a dropped line leaves the backend
	 * still waiting for its response. */
	static const struct turn smuggle[] = {
		{ 'c', "EHLO c\r\n", 0 },
		{ 'b', "250-b.example\r\n250 CHUNKING\r\n", 0 },
		{ 'c', "AUTH PLAIN\r\nBDAT 22\r\nXCLIENT ADDR=6.6.6.6\r\n", 0 },
		{ 'b', "334 \r\n", 0 },
		{ 'c', "AGEAYg==\r\n", 0 },
		{ 'b', "535 5.7.8 no\r\n", 0 },
	};

	/* A SASL response waits for its reply too: another 334 makes the
	 * next line a response again. */
	static const struct turn again[] = {
		{ 'c', "EHLO c\r\n", 0 },
		{ 'b', "250-b.example\r\n250 CHUNKING\r\n", 0 },
		{ 'c', "AUTH LOGIN\r\n", 0 },
		{ 'b', "334 VXNlcm5hbWU6\r\n", 0 },
		{ 'c', "dXNlcg==\r\nBDAT 5\r\nXCLIENT\r\n", 0 },
		{ 'b', "334 UGFzc3dvcmQ6\r\n", 0 },
	};

	SCRIPT(again, "250-b.example\r\n250 CHUNKING\r\n334 VXNlcm5hbWU6\r\n"
	    "334 UGFzc3dvcmQ6\r\n" SYN NOXC,
	    "EHLO c\r\nAUTH LOGIN\r\ndXNlcg==\r\n", 0, &res);
	SCRIPT(login, "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n"
	    "235 2.7.0 Authentication successful\r\n250 Ok\r\n",
	    "AUTH LOGIN\r\nDATA\r\nEHLO\r\nNOOP\r\n", 0, &res);
	SCRIPT(smuggle, "250-b.example\r\n250 CHUNKING\r\n334 \r\n" SYN NOXC
	    "535 5.7.8 no\r\n", "EHLO c\r\nAUTH PLAIN\r\nAGEAYg==\r\n", 0, &res);
}

/* One EHLO exchange: the backend's reply as the client must see it. */
static void ehlo(const char *reply, const char *want)
{
	struct turn t[] = {
		{ 'c', "EHLO client.example\r\n", 0 },
		{ 'b', reply, 0 },
	};

	SCRIPT(t, want, "EHLO client.example\r\n", 0, &res);
}

static void test_ehlo(void)
{
	/* first, middle, last line */
	ehlo("250-b.example\r\n250-XCLIENT NAME ADDR PORT\r\n250-SIZE 10\r\n"
	    "250 8BITMIME\r\n", "250-b.example\r\n250-SIZE 10\r\n250 8BITMIME\r\n");
	ehlo("250-b.example\r\n250-SIZE 10\r\n250-XFORWARD NAME ADDR\r\n"
	    "250 8BITMIME\r\n", "250-b.example\r\n250-SIZE 10\r\n250 8BITMIME\r\n");
	ehlo("250-b.example\r\n250-SIZE 10\r\n250 STARTTLS\r\n",
	    "250-b.example\r\n250 SIZE 10\r\n");
	/* several, the last two, all of them, in any case */
	ehlo("250-b.example\r\n250-xclient addr\r\n250-PIPELINING\r\n"
	    "250-XFORWARD NAME\r\n250 starttls\r\n",
	    "250-b.example\r\n250 PIPELINING\r\n");
	ehlo("250-b.example\r\n250-STARTTLS\r\n250 XCLIENT ADDR\r\n",
	    "250 b.example\r\n");
	/* LF endings kept; similar words and the server's name stay */
	ehlo("250-XCLIENT.example\n250-XCLIENTS\n250 XCLIENT\n",
	    "250-XCLIENT.example\n250 XCLIENTS\n");
	ehlo("250 b.example\r\n", "250 b.example\r\n");
	/* a refusal is not a list */
	ehlo("550-no XCLIENT\r\n550 STARTTLS\r\n", "550-no XCLIENT\r\n550 STARTTLS\r\n");
	/* a bare "250" ends a list as it is */
	ehlo("250-b.example\r\n250-XCLIENT ADDR\r\n250\r\n",
	    "250-b.example\r\n250\r\n");
}

static void test_other_replies(void)
{
	/* Replies to anything but EHLO pass as they are, also after one. */
	static const struct turn t[] = {
		{ 'c', "HELP\r\n", 0 },
		{ 'b', "214-XCLIENT XFORWARD STARTTLS\r\n214-XCLIENT\r\n214 STARTTLS\r\n", 0 },
		{ 'c', "EHLO a\r\n", 0 },
		{ 'b', "250-b\r\n250 XCLIENT\r\n", 0 },
		{ 'c', "NOOP\r\nHELO a\r\n", 0 },
		{ 'b', "250-Ok\r\n250 XCLIENT\r\n250 XFORWARD\r\n", 0 },
	};
	/* A backend that accepts STARTTLS would hide the commands. */
	static const struct turn tls[] = {
		{ 'c', "STARTTLS\r\nXCLIENT ADDR=1\r\n", 0 },
		{ 'b', "220-2.0.0 Ready\r\n220 to start TLS\r\n", 0 },
	};
	static const struct turn notls[] = {
		{ 'c', "STARTTLS\r\nNOOP\r\n", 0 },
		{ 'b', "454 4.7.0 TLS not available\r\n", 0 },
		{ 'b', "250 Ok\r\n", 0 },
	};
	/* The EHLO reply is known by holding what follows EHLO. */
	static const struct turn ehlo_held[] = {
		{ 'c', "EHLO a\r\nXCLIENT ADDR=1\r\nNOOP\r\n", 0 },
		{ 'b', "250-b\r\n250 XCLIENT\r\n", 0 },
		{ 'b', "250 XCLIENT\r\n", 0 },
	};
	/* 220 is only ever a greeting: a new session or TLS. */
	static const struct turn greeting[] = {
		{ 'c', "NOOP\r\n", 0 },
		{ 'b', "250 Ok\r\n", 0 },
		{ 'c', "NOOP\r\n", 0 },
		{ 'b', "220 b.example ESMTP\r\n", 0 },
	};
	/* The very first reply, before any command, may be the backend's
	 * own greeting (no hand-over ate it); not a second one. */
	static const struct turn first[] = {
		{ 'b', "220-b.example ESMTP\r\n220 hi\r\n", 0 },
		{ 'c', "EHLO a\r\n", 0 },
		{ 'b', "250-b.example\r\n250 STARTTLS\r\n", 0 },
	};
	static const struct turn second[] = {
		{ 'b', "220 b.example ESMTP\r\n", 0 },
		{ 'b', "220 b.example ESMTP\r\n", 0 },
	};
	/* A client that speaks before the greeting: the greeting answers
	 * nothing, the next reply is its EHLO's... */
	static const struct turn early[] = {
		{ 'c', "EHLO a\r\nXCLIENT ADDR=1\r\n", 0 },
		{ 'b', "220 b.example ESMTP\r\n", 0 },
		{ 'b', "250-b.example\r\n250 XCLIENT\r\n", 0 },
	};
	/* ...but a 220 that may answer STARTTLS is never a greeting. */
	static const struct turn early_tls[] = {
		{ 'c', "STARTTLS\r\n", 0 },
		{ 'b', "220 b.example ESMTP\r\n", 0 },
	};
	static const struct turn bad[] = {
		{ 'c', "NOOP\r\n", 0 },
		{ 'b', "hello\r\n", 0 },
	};
	/* Bare codes are replies, and any digits from 2xx to 5xx; a code
	 * out of that range, a letter in it or after it is not. */
	static const struct turn bare[] = {
		{ 'c', "NOOP\r\nNOOP\r\nNOOP\r\n", 0 },
		{ 'b', "250\r\n250\n299 x\r\n", 0 },
	};
	static const char *const malformed[] = { "150 x\r\n", "650 x\r\n",
	    "2x0 x\r\n", "25x x\r\n", "250x\r\n", "25\r\n" };
	struct turn one[] = {
		{ 'c', "NOOP\r\n", 0 },
		{ 'b', NULL, 0 },
	};
	/* A pipelined NOOP's 250 is not a yes to the STARTTLS after it. */
	static const struct turn before_tls[] = {
		{ 'c', "NOOP\r\nSTARTTLS\r\n", 0 },
		{ 'b', "250 Ok\r\n454 4.7.0 TLS not available\r\n", 0 },
	};

	SCRIPT(t, "214-XCLIENT XFORWARD STARTTLS\r\n214-XCLIENT\r\n214 STARTTLS\r\n"
	    "250 b\r\n250-Ok\r\n250 XCLIENT\r\n250 XFORWARD\r\n",
	    "HELP\r\nEHLO a\r\nNOOP\r\nHELO a\r\n", 0, &res);
	SCRIPT(tls, "", "STARTTLS\r\n", -1, &res);
	CHECK(res.why != NULL && strstr(res.why, "STARTTLS") != NULL);
	SCRIPT(notls, "454 4.7.0 TLS not available\r\n250 Ok\r\n",
	    "STARTTLS\r\nNOOP\r\n", 0, &res);
	SCRIPT(ehlo_held, "250 b\r\n" NOXC "250 XCLIENT\r\n", "EHLO a\r\nNOOP\r\n",
	    0, &res);
	SCRIPT(greeting, "250 Ok\r\n", "NOOP\r\nNOOP\r\n", -1, &res);
	SCRIPT(first, "220-b.example ESMTP\r\n220 hi\r\n250 b.example\r\n",
	    "EHLO a\r\n", 0, &res);
	SCRIPT(second, "220 b.example ESMTP\r\n", "", -1, &res);
	SCRIPT(early, "220 b.example ESMTP\r\n250 b.example\r\n" NOXC,
	    "EHLO a\r\n", 0, &res);
	SCRIPT(early_tls, "", "STARTTLS\r\n", -1, &res);
	SCRIPT(bad, "", "NOOP\r\n", -1, &res);
	CHECK_STR(res.why, "malformed SMTP reply from the backend");
	SCRIPT(bare, "250\r\n250\n299 x\r\n", "NOOP\r\nNOOP\r\nNOOP\r\n", 0,
	    &res);
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		one[1].bytes = malformed[i];
		SCRIPT(one, "", "NOOP\r\n", -1, &res);
		CHECK_STR(res.why, "malformed SMTP reply from the backend");
	}
	SCRIPT(before_tls, "250 Ok\r\n454 4.7.0 TLS not available\r\n",
	    "NOOP\r\nSTARTTLS\r\n", 0, &res);
}

/* After a STARTTLS hand-over, which ate the backend's greeting, no 220
 * is a greeting: the first reply too ends the connection. */
static void test_handed_over(void)
{
	static const struct turn first[] = {
		{ 'c', "NOOP\r\n", 0 },
		{ 'b', "220 b.example ESMTP\r\n", 0 },
	};
	static const struct turn unasked[] = {
		{ 'b', "220-b.example ESMTP\r\n220 again\r\n", 0 },
	};
	static const struct turn ehlo[] = {
		{ 'c', "EHLO a\r\n", 0 },
		{ 'b', "250-b.example\r\n250 STARTTLS\r\n", 0 },
	};

	handed_over = 1;
	SCRIPT(first, "", "NOOP\r\n", -1, &res);
	CHECK(res.why != NULL && strstr(res.why, "new session") != NULL);
	SCRIPT(unasked, "", "", -1, &res);
	SCRIPT(ehlo, "250 b.example\r\n", "EHLO a\r\n", 0, &res);
	handed_over = 0;
}

static void test_eof(void)
{
	/* A command without its line end is none: dropped at the end. */
	static const struct turn partial[] = {
		{ 'c', "NOOP\r\nXCLIENT ADDR=1.2.3.4", 1 },
		{ 'b', "250 Ok\r\n", 0 },
	};
	static const struct turn partial2[] = {
		{ 'c', "MAIL FROM:<a>", 1 },
	};
	/* The backend ends: a partial reply passes, answers owed go. */
	static const struct turn backend_gone[] = {
		{ 'c', "MAIL FROM:<a>\r\nXCLIENT ADDR=1\r\n", 0 },
		{ 'b', "421 4.3.0 shutting do", 1 },
	};
	/* ...but not a partial EHLO reply. */
	static const struct turn ehlo_cut[] = {
		{ 'c', "EHLO a\r\n", 0 },
		{ 'b', "250-b\r\n250-XCLIENT ADDR\r\n250-SIZE", 1 },
	};
	/* Content passes at the end as it is. */
	static const struct turn content[] = {
		{ 'c', "DATA\r\n", 0 },
		{ 'b', "354 go\r\n", 0 },
		{ 'c', "XCLIENT ADDR=1.2.3.4", 1 },
	};

	SCRIPT(partial, "250 Ok\r\n", "NOOP\r\n", 0, &res);
	CHECK(res.left_up == 0);
	SCRIPT(partial2, "", "", 0, &res);
	CHECK(res.left_up == 0);
	SCRIPT(backend_gone, "421 4.3.0 shutting do" NOXC, "MAIL FROM:<a>\r\n", 0,
	    &res);
	CHECK(res.left_down == 0);
	SCRIPT(ehlo_cut, "", "EHLO a\r\n", 0, &res);
	CHECK(res.left_down == 0);
	SCRIPT(content, "354 go\r\n", "DATA\r\nXCLIENT ADDR=1.2.3.4", 0, &res);
}

static void test_limits(void)
{
	static char fill[12400], longline[1300], exact[1001], sasl[5001],
	    huge[12400], want[6000], reply[70000];
	struct turn t[] = {
		{ 'c', longline, 0 },
		{ 'b', "250 Ok\r\n250 Ok\r\n", 0 },
	};
	struct turn e[] = {
		{ 'c', exact, 0 },
		{ 'b', "250 Ok\r\n", 0 },
	};
	struct turn auth[] = {
		{ 'c', "AUTH GSSAPI\r\n", 0 },
		{ 'b', "334 \r\n", 0 },
		{ 'c', sasl, 0 },
		{ 'b', "235 2.7.0 Authentication successful\r\n", 0 },
	};
	struct turn auth_huge[] = {
		{ 'c', "AUTH GSSAPI\r\n", 0 },
		{ 'b', "334 \r\n", 0 },
		{ 'c', huge, 0 },
		{ 'c', "BDAT 5\r\n*\r\n", 0 },	/* still the response due */
		{ 'b', "501 5.5.2 cancelled\r\n", 0 },
	};
	struct turn no_auth[] = {
		{ 'c', sasl, 0 },
	};
	static char initial[1600], initial_huge[12400];
	struct turn auth_ir[] = {
		{ 'c', initial, 0 },
		{ 'b', "235 2.7.0 Authentication successful\r\n", 0 },
	};
	struct turn auth_ir_huge[] = {
		{ 'c', initial_huge, 0 },
		{ 'c', "NOOP\r\n", 0 },
		{ 'b', "250 Ok\r\n", 0 },
	};
	struct turn q[] = {
		{ 'c', "MAIL FROM:<a>\r\nXCLIENT\r\nXCLIENT\r\nXCLIENT\r\nXCLIENT\r\n"
		    "XCLIENT\r\nXCLIENT\r\nXCLIENT\r\nXCLIENT\r\nXCLIENT\r\nRCPT TO:<b>\r\n", 0 },
		{ 'b', "250 Ok\r\n", 0 },
		{ 'b', "250 Ok\r\n", 0 },
	};
	struct turn big[] = {
		{ 'c', "NOOP\r\n", 0 },
		{ 'b', reply, 0 },
	};

	/* Over 1000 bytes: answered, dropped to its end, in order. */
	memset(fill, 'a', sizeof(fill) - 1);
	snprintf(longline, sizeof(longline), "MAIL FROM:<a>\r\nRCPT TO:<%.1100s>"
	    "\r\nRSET\r\n", fill);
	SCRIPT(t, "250 Ok\r\n" LONG "250 Ok\r\n", "MAIL FROM:<a>\r\nRSET\r\n", 0,
	    &res);
	CHECK(res.left_up == 0);
	/* Exactly 1000 with its CRLF passes. */
	snprintf(exact, sizeof(exact), "NOOP %.993s\r\n", fill);
	CHECK(strlen(exact) == 1000);
	SCRIPT(e, "250 Ok\r\n", exact, 0, &res);

	/* A SASL response after 334 may be longer (RFC 4954 4), up to
	 * 12288; a command may not. */
	snprintf(sasl, sizeof(sasl), "%.4998s\r\n", fill);
	snprintf(want, sizeof(want), "AUTH GSSAPI\r\n%s", sasl);
	SCRIPT(auth, "334 \r\n235 2.7.0 Authentication successful\r\n", want, 0,
	    &res);
	snprintf(huge, sizeof(huge), "%.12300s\r\n", fill);
	SCRIPT(auth_huge, "334 \r\n" LONG SYN "501 5.5.2 cancelled\r\n",
	    "AUTH GSSAPI\r\n*\r\n", 0, &res);
	SCRIPT(no_auth, LONG, "", 0, &res);
	/* An AUTH command's initial response is a SASL response too: an
	 * XOAUTH2 token past 1000 bytes passes, up to 12288. */
	snprintf(initial, sizeof(initial), "auth XOAUTH2 %.1500s\r\n", fill);
	SCRIPT(auth_ir, "235 2.7.0 Authentication successful\r\n", initial, 0, &res);
	snprintf(initial_huge, sizeof(initial_huge), "AUTH XOAUTH2 %.12290s\r\n", fill);
	SCRIPT(auth_ir_huge, LONG "250 Ok\r\n", "NOOP\r\n", 0, &res);

	/* Queue full: the ninth answer and what follows it wait for a
	 * reply, in `in`. */
	SCRIPT(q, "250 Ok\r\n" NOXC NOXC NOXC NOXC NOXC NOXC NOXC NOXC NOXC
	    "250 Ok\r\n", "MAIL FROM:<a>\r\nRCPT TO:<b>\r\n", 0, &res);
	play(q, 1, 1, 0, 0, &res);
	CHECK(res.rc == 0 && res.client_len == 0 &&
	    res.backend_len == strlen("MAIL FROM:<a>\r\n"));
	CHECK(res.left_up == strlen("XCLIENT\r\nRCPT TO:<b>\r\n"));

	/* A reply that fills the relay's buffer without ending. */
	memset(reply, 'x', sizeof(reply) - 1);
	memcpy(reply, "250-", 4);
	play(big, 2, 2, 0, 0, &res);
	CHECK(res.rc == -1);
	CHECK_STR(res.why, "backend reply too long for the SMTP filter");
}

int main(void)
{
	test_refused_in_order();
	test_data();
	test_bdat();
	test_auth();
	test_ehlo();
	test_other_replies();
	test_handed_over();
	test_eof();
	test_limits();
	return CHECK_DONE();
}
