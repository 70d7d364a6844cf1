#include "starttls_harness.h"

static const struct starttls_params p = { "imap.example.org", 0, 0, NULL };

#define GREET "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"
#define CAPS "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n"
#define BYE_UNAV "* BYE [UNAVAILABLE] Service not available\r\n"

static struct h_run r;
static struct h_back b;

static void test_conversations(void)
{
	const struct starttls_driver *d = &starttls_imap;

	/* What openssl s_client -starttls imap sends. */
	H_SCRIPT(d, &p, ". CAPABILITY\r\n. STARTTLS\r\n",
	    GREET CAPS ". OK CAPABILITY completed\r\n"
	    ". OK Begin TLS negotiation now\r\n", STARTTLS_UPGRADE, &r);
	H_SCRIPT(d, &p, "a1 noop\na2 capability\r\nA3 StartTLS \r\n",
	    GREET "a1 OK NOOP completed\r\n" CAPS "a2 OK CAPABILITY completed\r\n"
	    "A3 OK Begin TLS negotiation now\r\n", STARTTLS_UPGRADE, &r);
	H_SCRIPT(d, &p, "x SELECT INBOX\r\nx STARTTLS now\r\ny LOGOUT\r\n",
	    GREET "x BAD Command not allowed before STARTTLS\r\n"
	    "x BAD Command not allowed before STARTTLS\r\n"
	    "* BYE Logging out\r\ny OK LOGOUT completed\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &r);
	CHECK_STR(starttls_why(&r.s), "client logout");
	/* Bad tags are never echoed. */
	H_SCRIPT(d, &p, "\r\nNOOP\r\n* NOOP\r\n[ALERT] NOOP\r\n+ NOOP\r\n",
	    GREET "* BAD Invalid tag or missing command\r\n"
	    "* BAD Invalid tag or missing command\r\n"
	    "* BAD Invalid tag or missing command\r\n"
	    "* BAD Invalid tag or missing command\r\n"
	    "* BAD Invalid tag or missing command\r\n", STARTTLS_AGAIN, &r);
}

static void test_attacks(void)
{
	const struct starttls_driver *d = &starttls_imap;
	static char big[1100];

	H_SCRIPT(d, &p, "a STARTTLS\r\nb LOGIN user pass\r\n",
	    GREET "a OK Begin TLS negotiation now\r\n", STARTTLS_INJECTION, &r);
	CHECK_STR(starttls_why(&r.s), "command injection attempt");
	/* Injected, not answered: no credentials were refused. */
	CHECK(starttls_cleartext_auth(&r.s) == NULL);

	H_SCRIPT(d, &p, "a LOGIN alice secret\r\nb AUTHENTICATE PLAIN\r\n"
	    "c authenticate plain AGFsaWNlAHNlY3JldA==\r\n",
	    GREET "a NO [PRIVACYREQUIRED] Use STARTTLS first\r\n"
	    "b NO [PRIVACYREQUIRED] Use STARTTLS first\r\n"
	    "c NO [PRIVACYREQUIRED] Use STARTTLS first\r\n", STARTTLS_AGAIN, &r);
	CHECK_STR(starttls_cleartext_auth(&r.s), "LOGIN");

	/* Literals: no "+" continuation ever; a synchronizing one gets BAD,
	 * a non-synchronizing one (its bytes already coming) ends it. */
	H_SCRIPT(d, &p, "a LOGIN {5}\r\n", GREET
	    "a BAD Literals not allowed before STARTTLS\r\n", STARTTLS_AGAIN, &r);
	CHECK(!h_has(r.out, r.out_len, "\r\n+"));
	H_SCRIPT(d, &p, "a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n", GREET
	    "a BAD Literals not allowed before STARTTLS\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &r);
	H_SCRIPT(d, &p, "a APPEND INBOX ~{100}\r\n", GREET
	    "a BAD Literals not allowed before STARTTLS\r\n", STARTTLS_AGAIN, &r);
	/* Not a literal: braces without digits. */
	H_SCRIPT(d, &p, "a X {}\r\n", GREET
	    "a BAD Command not allowed before STARTTLS\r\n", STARTTLS_AGAIN, &r);
	/* Any digits are a literal's size, 0 and 9 too; a "}" alone, or
	 * digits without their "{", announce none. */
	H_SCRIPT(d, &p, "a LOGIN {9}\r\n", GREET
	    "a BAD Literals not allowed before STARTTLS\r\n", STARTTLS_AGAIN, &r);
	H_SCRIPT(d, &p, "a LOGIN {0}\r\n", GREET
	    "a BAD Literals not allowed before STARTTLS\r\n", STARTTLS_AGAIN, &r);
	H_SCRIPT(d, &p, "a X }\r\nb X 5}\r\nc X {5+\r\n", GREET
	    "a BAD Command not allowed before STARTTLS\r\n"
	    "b BAD Command not allowed before STARTTLS\r\n"
	    "c BAD Command not allowed before STARTTLS\r\n", STARTTLS_AGAIN, &r);
	/* CAPABILITY, NOOP and LOGOUT take no argument; a tag ends at a
	 * space, and DEL is no tag character. */
	H_SCRIPT(d, &p, "a CAPABILITY x\r\nb NOOP x\r\nc LOGOUT now\r\n"
	    "d\x7f NOOP\r\ne\r\n", GREET
	    "a BAD Command not allowed before STARTTLS\r\n"
	    "b BAD Command not allowed before STARTTLS\r\n"
	    "c BAD Command not allowed before STARTTLS\r\n"
	    "* BAD Invalid tag or missing command\r\n"
	    "* BAD Invalid tag or missing command\r\n", STARTTLS_AGAIN, &r);

	/* Capabilities never depend on input; no PREAUTH, no ALERT. */
	H_SCRIPT(d, &p, "a ID (\"name\" \"[ALERT] x\")\r\nb CAPABILITY\r\n"
	    "c ENABLE PREAUTH\r\nd CAPABILITY\r\n",
	    GREET "a BAD Command not allowed before STARTTLS\r\n"
	    CAPS "b OK CAPABILITY completed\r\n"
	    "c BAD Command not allowed before STARTTLS\r\n"
	    CAPS "d OK CAPABILITY completed\r\n", STARTTLS_AGAIN, &r);
	CHECK(!h_has(r.out, r.out_len, "PREAUTH"));
	CHECK(!h_has(r.out, r.out_len, "[ALERT]"));

	/* 1024 bytes per line. */
	memset(big, 'a', sizeof(big) - 1);
	big[1] = ' ';
	H_SCRIPT(d, &p, big, GREET "* BYE Too much input\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &r);
	big[1022] = '\r';
	big[1023] = '\n';
	big[1024] = '\0';
	H_SCRIPT(d, &p, big, GREET "a BAD Command not allowed before STARTTLS\r\n",
	    STARTTLS_AGAIN, &r);

	/* Command cap. */
	H_SCRIPT(d, &p, "1 NOOP\r\n2 NOOP\r\n3 NOOP\r\n4 NOOP\r\n5 NOOP\r\n"
	    "6 NOOP\r\n7 NOOP\r\n8 NOOP\r\n9 NOOP\r\n10 NOOP\r\n11 STARTTLS\r\n",
	    GREET "1 OK NOOP completed\r\n2 OK NOOP completed\r\n"
	    "3 OK NOOP completed\r\n4 OK NOOP completed\r\n5 OK NOOP completed\r\n"
	    "6 OK NOOP completed\r\n7 OK NOOP completed\r\n8 OK NOOP completed\r\n"
	    "9 OK NOOP completed\r\n10 OK NOOP completed\r\n* BYE Too much input\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &r);
}

static void test_after_tls(void)
{
	static struct h_run up;

	H_SCRIPT(&starttls_imap, &p, "a STARTTLS\r\n",
	    GREET "a OK Begin TLS negotiation now\r\n", STARTTLS_UPGRADE, &up);
	/* The greeting is eaten, never forwarded; anything after is relayed. */
	h_back_script(&up.s, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot ready.\r\n",
	    "", STARTTLS_RELAY, &b);
	CHECK(b.left == 0 && b.flow == 1);
	h_back_script(&up.s, "* ok hi\r\n* CAPABILITY X\r\n", "", STARTTLS_RELAY, &b);
	CHECK(b.left == strlen("* CAPABILITY X\r\n"));
	h_back_script(&up.s, "* PREAUTH [CAPABILITY IMAP4rev1] logged in\r\n",
	    BYE_UNAV, STARTTLS_REPLY_AND_CLOSE, &b);
	CHECK_STR(starttls_why(&up.s), "no reason");	/* copy was used */
	h_back_script(&up.s, "* BYE busy\r\n", BYE_UNAV, STARTTLS_REPLY_AND_CLOSE, &b);
	h_back_script(&up.s, "+OK\r\n", BYE_UNAV, STARTTLS_REPLY_AND_CLOSE, &b);
	/* "*", one space, the status: two spaces are no greeting. */
	h_back_script(&up.s, "*  OK hi\r\n", BYE_UNAV, STARTTLS_REPLY_AND_CLOSE,
	    &b);
	h_back_script(&up.s, "* OK", "", STARTTLS_AGAIN, &b);
	CHECK(b.flow == 0);
	{
		static char huge[STARTTLS_REPLY_MAX + 10];
		memset(huge, 'x', sizeof(huge) - 1);
		memcpy(huge, "* OK ", 5);
		h_backend(&up.s, huge, strlen(huge), 0, strlen(huge), &b);
		CHECK(b.v == STARTTLS_REPLY_AND_CLOSE);
	}
	/* The PREAUTH reason is what the core logs. */
	{
		struct starttls_session s = up.s;
		struct buf fb = {0}, tb = {0}, tc = {0};
		buf_append(&fb, "* PREAUTH x\r\n", 13);
		CHECK(starttls_backend_input(&s, &fb, &tb, &tc) ==
		    STARTTLS_REPLY_AND_CLOSE);
		CHECK_STR(starttls_why(&s), "backend greeted with PREAUTH");
		buf_reset(&fb);
		buf_reset(&tc);
	}
}

int main(void)
{
	test_conversations();
	test_attacks();
	test_after_tls();
	return CHECK_DONE();
}
