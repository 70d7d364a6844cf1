#include "starttls_harness.h"

static const struct starttls_params p = { "pop.example.org", 0, 0, NULL };

#define GREET "+OK POP3 ready\r\n"
#define CAPA "+OK Capability list follows\r\nSTLS\r\n.\r\n"
#define MUST "-ERR Must issue STLS first\r\n"
#define UNAV "-ERR [SYS/TEMP] Service not available\r\n"

static struct h_run r;
static struct h_back b;

static void test_conversations(void)
{
	const struct starttls_driver *d = &starttls_pop3;

	H_SCRIPT(d, &p, "CAPA\r\nSTLS\r\n", GREET CAPA
	    "+OK Begin TLS negotiation\r\n", STARTTLS_UPGRADE, &r);
	H_SCRIPT(d, &p, "capa\nstls\n", GREET CAPA
	    "+OK Begin TLS negotiation\r\n", STARTTLS_UPGRADE, &r);
	H_SCRIPT(d, &p, "STLS x\r\nSTAT\r\nQUIT\r\n", GREET "-ERR Syntax error\r\n"
	    "-ERR Unknown command; issue STLS first\r\n+OK Bye\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &r);
	CHECK(!h_has(r.out, r.out_len, "<"));	/* no APOP timestamp */
}

static void test_attacks(void)
{
	const struct starttls_driver *d = &starttls_pop3;
	char big[300];

	H_SCRIPT(d, &p, "STLS\r\nUSER alice\r\n",
	    GREET "+OK Begin TLS negotiation\r\n", STARTTLS_INJECTION, &r);
	H_SCRIPT(d, &p, "USER alice\r\nPASS secret\r\nAPOP alice 0123\r\n"
	    "AUTH PLAIN\r\nCAPA USER\r\nCAPA\r\n",
	    GREET MUST MUST MUST MUST "-ERR Unknown command; issue STLS first\r\n"
	    CAPA, STARTTLS_AGAIN, &r);
	CHECK_STR(starttls_cleartext_auth(&r.s), "USER");
	H_SCRIPT(d, &p, "CAPA\r\nAUTH PLAIN\r\n", GREET CAPA MUST, STARTTLS_AGAIN,
	    &r);
	CHECK_STR(starttls_cleartext_auth(&r.s), "AUTH");
	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\0';
	H_SCRIPT(d, &p, big, GREET "-ERR Too much input\r\n",
	    STARTTLS_REPLY_AND_CLOSE, &r);
	big[253] = '\r';
	big[254] = '\n';
	big[255] = '\0';
	H_SCRIPT(d, &p, big, GREET "-ERR Unknown command; issue STLS first\r\n",
	    STARTTLS_AGAIN, &r);
	H_SCRIPT(d, &p, "CAPA\r\nCAPA\r\nCAPA\r\nCAPA\r\nCAPA\r\nCAPA\r\nCAPA\r\n"
	    "CAPA\r\nCAPA\r\nCAPA\r\nSTLS\r\n",
	    GREET CAPA CAPA CAPA CAPA CAPA CAPA CAPA CAPA CAPA CAPA
	    "-ERR Too much input\r\n", STARTTLS_REPLY_AND_CLOSE, &r);
}

static void test_after_tls(void)
{
	static struct h_run up;
	struct buf out = {0};

	H_SCRIPT(&starttls_pop3, &p, "STLS\r\n",
	    GREET "+OK Begin TLS negotiation\r\n", STARTTLS_UPGRADE, &up);
	h_back_script(&up.s, "+OK Dovecot ready. <1.2@host>\r\n", "",
	    STARTTLS_RELAY, &b);
	CHECK(b.left == 0 && b.flow == 1);
	h_back_script(&up.s, "-ERR no\r\n", UNAV, STARTTLS_REPLY_AND_CLOSE, &b);
	h_back_script(&up.s, "* OK\r\n", UNAV, STARTTLS_REPLY_AND_CLOSE, &b);
	h_back_script(&up.s, "+OKAY\r\n", UNAV, STARTTLS_REPLY_AND_CLOSE, &b);
	h_back_script(&up.s, "+O", "", STARTTLS_AGAIN, &b);
	CHECK(starttls_bye(&up.s, STARTTLS_BYE_TIMEOUT, &out) == 0);
	CHECK(out.len == strlen("-ERR Timeout\r\n"));
	buf_reset(&out);
}

int main(void)
{
	test_conversations();
	test_attacks();
	test_after_tls();
	return CHECK_DONE();
}
