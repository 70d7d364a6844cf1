#define FILTER_UNDER_TEST filter_pop3
/* Clear while a test plays an implicit-TLS listener, where the backend's
 * greeting comes through the relay. */
static int handed_over = 1;
#define FILTER_SETUP(st) (handed_over ? filter_pop3_greeted(st) : (void)0)
#include "filter_harness.h"

#define NOTLS "-ERR TLS already active\r\n"
#define LONG "-ERR Line too long\r\n"
#define CAPA_HEAD "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\n"

static struct result res;

/* One CAPA exchange: the backend's list as the client must see it. */
static void capa(const char *reply, const char *want)
{
	struct turn t[] = {
		{ 'c', "CAPA\r\n", 0 },
		{ 'b', reply, 0 },
		{ 'c', "NOOP\r\n", 0 },
		{ 'b', "+OK\r\n", 0 },
	};
	char w[1024];

	snprintf(w, sizeof(w), "%s+OK\r\n", want);
	SCRIPT(t, w, "CAPA\r\nNOOP\r\n", 0, &res);
}

static void test_capa(void)
{
	/* first, middle, last, only; any case; LF endings */
	capa("+OK\r\nSTLS\r\nTOP\r\n.\r\n", "+OK\r\nTOP\r\n.\r\n");
	capa(CAPA_HEAD "STLS\r\nUSER\r\n.\r\n", CAPA_HEAD "USER\r\n.\r\n");
	capa(CAPA_HEAD "STLS\r\n.\r\n", CAPA_HEAD ".\r\n");
	capa("+OK Capability list follows\r\nSTLS\r\n.\r\n",
	    "+OK Capability list follows\r\n.\r\n");
	capa("+OK\nUSER\nstls\nSASL PLAIN\n.\n", "+OK\nUSER\nSASL PLAIN\n.\n");
	capa("+OK\r\nStLs\r\nSTLS \r\n.\r\n", "+OK\r\n.\r\n");
	/* with parameters after a blank or a tab (a client splitting on
	 * white space would read either as STLS) */
	capa("+OK\r\nSTLS x\r\nSTLS\tx\r\nTOP\r\n.\r\n", "+OK\r\nTOP\r\n.\r\n");
	/* similar words stay; so do STLS in another line's words and a
	 * dot-stuffed one */
	capa("+OK\r\nSTLSX\r\nXSTLS\r\nSTL\r\nSASL STLS\r\n..STLS\r\n.\r\n",
	    "+OK\r\nSTLSX\r\nXSTLS\r\nSTL\r\nSASL STLS\r\n..STLS\r\n.\r\n");
	/* a refusal is one line */
	capa("-ERR no CAPA here\r\n", "-ERR no CAPA here\r\n");
}

static void test_other_responses(void)
{
	/* RETR and TOP bodies, LIST and UIDL without an argument: multi-line,
	 * passed byte for byte, STLS lines and all. */
	static const struct turn t[] = {
		{ 'c', "RETR 1\r\nTOP 1 0\r\nLIST\r\nLIST 1\r\nUIDL\r\nUIDL 1\r\n", 0 },
		{ 'b', "+OK 30 octets\r\nSTLS\r\n..\r\n+OK x\r\n.\r\n", 0 },
		{ 'b', "+OK\r\nSTLS\r\n.\r\n+OK\r\n1 30\r\n.\r\n+OK 1 30\r\n", 0 },
		{ 'b', "+OK\r\n1 a\r\n.\r\n+OK 1 a\r\n", 0 },
		{ 'c', "CAPA\r\n", 0 },
		{ 'b', "+OK\r\nSTLS\r\n.\r\n", 0 },
	};
	/* Errors are one line, also to multi-line commands. */
	static const struct turn err[] = {
		{ 'c', "RETR 9\r\nLIST\r\nCAPA\r\n", 0 },
		{ 'b', "-ERR no such message\r\n-ERR x\r\n+OK\r\nSTLS\r\n.\r\n", 0 },
	};

	SCRIPT(t, "+OK 30 octets\r\nSTLS\r\n..\r\n+OK x\r\n.\r\n"
	    "+OK\r\nSTLS\r\n.\r\n+OK\r\n1 30\r\n.\r\n+OK 1 30\r\n"
	    "+OK\r\n1 a\r\n.\r\n+OK 1 a\r\n+OK\r\n.\r\n",
	    "RETR 1\r\nTOP 1 0\r\nLIST\r\nLIST 1\r\nUIDL\r\nUIDL 1\r\nCAPA\r\n",
	    0, &res);
	SCRIPT(err, "-ERR no such message\r\n-ERR x\r\n+OK\r\n.\r\n",
	    "RETR 9\r\nLIST\r\nCAPA\r\n", 0, &res);
}

static void test_stls(void)
{
	/* Alone, and pipelined: the answer comes between the backend's
	 * responses, in command order, never inside a multi-line one. */
	static const struct turn alone[] = {
		{ 'c', "STLS\r\n", 0 },
		{ 'c', "NOOP\r\n", 0 },
		{ 'b', "+OK\r\n", 0 },
	};
	static const struct turn pipelined[] = {
		{ 'c', "USER a\r\nRETR 1\r\nSTLS\r\nCAPA\r\nstls\r\nNOOP\r\n", 0 },
		{ 'b', "+OK\r\n+OK 5\r\nab\r\n.\r\n+OK\r\nSTLS\r\n.\r\n+OK\r\n", 0 },
	};
	/* Spellings a server might read as STLS: all answered here; longer
	 * words are not STLS. */
	static const struct turn spelled[] = {
		{ 'c', "stls\r\n  STLS\r\nSTLS now\r\nSTLS\n\tStLs\r\n\r\nSTLSX\r\n"
		    "XSTLS\r\n", 0 },
		{ 'b', "-ERR a\r\n-ERR b\r\n-ERR c\r\n", 0 },
	};
	/* Nothing owed: the answer goes at once, even while the backend is
	 * silent. */
	static const struct turn first[] = {
		{ 'c', "STLS\r\n", 0 },
	};
	/* LIST, UIDL and LANG (RFC 6856) without an argument answer with a
	 * list, with one a line: each answer waits for the list's end. */
	static const struct turn lists[] = {
		{ 'c', "LIST\r\nSTLS\r\nUIDL\r\nSTLS\r\nLANG\r\nSTLS\r\n"
		    "LIST 1\r\nSTLS\r\n", 0 },
		{ 'b', "+OK\r\n1 30\r\n.\r\n+OK\r\n1 a\r\n.\r\n"
		    "+OK\r\nen English\r\n.\r\n+OK 1 30\r\n", 0 },
	};
	/* Nothing owed, but the backend is saying something unasked (a
	 * server's notice before it closes): the answer waits for the end
	 * of that line, which answers nothing. */
	static const struct turn unasked[] = {
		{ 'b', "-ERR idle tim", 0 },
		{ 'c', "STLS\r\n", 0 },
		{ 'b', "eout\r\n", 0 },
		{ 'c', "NOOP\r\n", 0 },
		{ 'b', "+OK\r\n", 0 },
	};

	SCRIPT(alone, NOTLS "+OK\r\n", "NOOP\r\n", 0, &res);
	SCRIPT(pipelined, "+OK\r\n+OK 5\r\nab\r\n.\r\n" NOTLS "+OK\r\n.\r\n"
	    NOTLS "+OK\r\n", "USER a\r\nRETR 1\r\nCAPA\r\nNOOP\r\n", 0, &res);
	SCRIPT(spelled, NOTLS NOTLS NOTLS NOTLS NOTLS "-ERR a\r\n-ERR b\r\n"
	    "-ERR c\r\n", "\r\nSTLSX\r\nXSTLS\r\n", 0, &res);
	SCRIPT(first, NOTLS, "", 0, &res);
	SCRIPT(lists, "+OK\r\n1 30\r\n.\r\n" NOTLS "+OK\r\n1 a\r\n.\r\n"
	    NOTLS "+OK\r\nen English\r\n.\r\n" NOTLS "+OK 1 30\r\n" NOTLS,
	    "LIST\r\nUIDL\r\nLANG\r\nLIST 1\r\n", 0, &res);
	SCRIPT(unasked, "-ERR idle timeout\r\n" NOTLS "+OK\r\n", "NOOP\r\n", 0,
	    &res);
}

static void test_auth(void)
{
	/* After AUTH the client's bytes wait for the answer: a "+ " makes
	 * the next line a SASL response (a multi-line CAPA in base64 is
	 * none), the end makes it a command again. */
	static const struct turn login[] = {
		{ 'c', "AUTH LOGIN\r\nCAPA\r\n", 0 },
		{ 'b', "+ VXNlcm5hbWU6\r\n", 0 },
		{ 'b', "+ UGFzc3dvcmQ6\r\n", 0 },
		{ 'c', "cGFzcw==\r\nCAPA\r\n", 0 },
		{ 'b', "+OK Logged in.\r\n", 0 },
		{ 'b', "+OK\r\nSTLS\r\nUSER\r\n.\r\n", 0 },
	};
	/* STLS is taken out even as a SASL response; the backend still
	 * waits for one. */
	static const struct turn sasl_stls[] = {
		{ 'c', "AUTH PLAIN\r\n", 0 },
		{ 'b', "+ \r\n", 0 },
		{ 'c', "STLS\r\nAGEAYg==\r\n", 0 },
		{ 'b', "-ERR [AUTH] failed\r\n", 0 },
	};
	/* AUTH without an argument lists the mechanisms (dovecot). */
	static const struct turn list[] = {
		{ 'c', "AUTH\r\nCAPA\r\n", 0 },
		{ 'b', "+OK\r\nPLAIN\r\n.\r\n+OK\r\nSTLS\r\n.\r\n", 0 },
	};

	SCRIPT(login, "+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n+OK Logged in.\r\n"
	    "+OK\r\nUSER\r\n.\r\n", "AUTH LOGIN\r\nCAPA\r\ncGFzcw==\r\nCAPA\r\n",
	    0, &res);
	SCRIPT(sasl_stls, "+ \r\n" NOTLS "-ERR [AUTH] failed\r\n",
	    "AUTH PLAIN\r\nAGEAYg==\r\n", 0, &res);
	SCRIPT(list, "+OK\r\nPLAIN\r\n.\r\n+OK\r\n.\r\n", "AUTH\r\nCAPA\r\n", 0,
	    &res);
}

/* A SASL security layer: after AUTH's +OK both streams are 4-byte-length
 * buffers, which pass untouched; anything else after that +OK, or a NUL
 * after any other success, leaves the filter on. */
#define WRAPPED_UP "\0\0\0\x0c" "STLS\r\nCAPA\r\n"
#define WRAPPED_DOWN "\0\0\0\x10" "+OK\r\nSTLS\r\n.\r\n\xff\0"
static void test_sasl_layer(void)
{
	static const struct turn digest[] = {
		{ 'c', "AUTH DIGEST-MD5\r\n", 0 },
		{ 'b', "+ bm9uY2U9IngiLHFvcD0iYXV0aC1jb25mIg==\r\n", 0 },
		{ 'c', "dXNlcm5hbWU9ImFsaWNlIg==\r\n", 0 },
		{ 'b', "+ cnNwYXV0aD0x\r\n", 0 },
		{ 'c', "\r\n", 0 },
		{ 'b', "+OK Logged in.\r\n", 0 },
		{ 'c', WRAPPED_UP, 0, sizeof(WRAPPED_UP) - 1 },
		{ 'b', WRAPPED_DOWN, 0, sizeof(WRAPPED_DOWN) - 1 },
		{ 'c', "\0\0\0\x06STLS\r\n", 0, 10 },
	};
	/* The backend's wrapped bytes may come first. */
	static const struct turn down_first[] = {
		{ 'c', "AUTH GSSAPI YII=\r\n", 0 },
		{ 'b', "+OK\r\n" WRAPPED_DOWN, 0, 5 + sizeof(WRAPPED_DOWN) - 1 },
		{ 'c', WRAPPED_UP, 0, sizeof(WRAPPED_UP) - 1 },
	};
	/* A failed AUTH, or a login by PASS, opens no window: a NUL before
	 * the verb is read as a blank, the STLS answered here. */
	static const struct turn failed[] = {
		{ 'c', "AUTH PLAIN AGEAYg==\r\n", 0 },
		{ 'b', "-ERR [AUTH] failed\r\n", 0 },
		{ 'c', "\0STLS\r\n", 0, 7 },
	};
	static const struct turn pass[] = {
		{ 'c', "USER a\r\nPASS b\r\n", 0 },
		{ 'b', "+OK\r\n+OK Logged in.\r\n", 0 },
		{ 'c', "\0STLS\r\n", 0, 7 },
	};
	/* A command after the +OK closes the window for good; so does a
	 * line from the backend. */
	static const struct turn cmd_first[] = {
		{ 'c', "AUTH PLAIN AGEAYg==\r\n", 0 },
		{ 'b', "+OK\r\n", 0 },
		{ 'c', "CAPA\r\n\0STLS\r\n", 0, 13 },
		{ 'b', "+OK\r\nSTLS\r\n.\r\n", 0 },
	};
	static const struct turn line_first[] = {
		{ 'c', "AUTH PLAIN AGEAYg==\r\n", 0 },
		{ 'b', "+OK\r\n* notice\r\n", 0 },
		{ 'c', "\0STLS\r\n", 0, 7 },
	};

	SCRIPT_BIN(digest, "+ bm9uY2U9IngiLHFvcD0iYXV0aC1jb25mIg==\r\n"
	    "+ cnNwYXV0aD0x\r\n+OK Logged in.\r\n" WRAPPED_DOWN,
	    "AUTH DIGEST-MD5\r\ndXNlcm5hbWU9ImFsaWNlIg==\r\n\r\n" WRAPPED_UP
	    "\0\0\0\x06STLS\r\n", 0, &res);
	SCRIPT_BIN(down_first, "+OK\r\n" WRAPPED_DOWN,
	    "AUTH GSSAPI YII=\r\n" WRAPPED_UP, 0, &res);
	SCRIPT(failed, "-ERR [AUTH] failed\r\n" NOTLS, "AUTH PLAIN AGEAYg==\r\n",
	    0, &res);
	SCRIPT(pass, "+OK\r\n+OK Logged in.\r\n" NOTLS, "USER a\r\nPASS b\r\n",
	    0, &res);
	SCRIPT(cmd_first, "+OK\r\n+OK\r\n.\r\n" NOTLS,
	    "AUTH PLAIN AGEAYg==\r\nCAPA\r\n", 0, &res);
	SCRIPT(line_first, "+OK\r\n* notice\r\n" NOTLS,
	    "AUTH PLAIN AGEAYg==\r\n", 0, &res);
}

/* Implicit TLS: the greeting comes through, and comes first. */
static void test_greeting(void)
{
	static const struct turn early[] = {
		{ 'c', "STLS\r\nCAPA\r\n", 0 },
		{ 'b', "+OK Dovecot ready.\r\n", 0 },
		{ 'b', "+OK\r\nSTLS\r\n.\r\n", 0 },
	};
	static const struct turn normal[] = {
		{ 'b', "+OK Dovecot ready.\r\n", 0 },
		{ 'c', "CAPA\r\n", 0 },
		{ 'b', "+OK\r\nUSER\r\nSTLS\r\n.\r\n", 0 },
	};

	handed_over = 0;
	SCRIPT(early, "+OK Dovecot ready.\r\n" NOTLS "+OK\r\n.\r\n", "CAPA\r\n",
	    0, &res);
	SCRIPT(normal, "+OK Dovecot ready.\r\n+OK\r\nUSER\r\n.\r\n", "CAPA\r\n",
	    0, &res);
	handed_over = 1;
}

static void test_unknown_lines(void)
{
	/* A line where a status is due with neither "+" nor "-" passes and
	 * answers nothing; the order of what follows holds. */
	static const struct turn t[] = {
		{ 'c', "NOOP\r\nSTLS\r\n", 0 },
		{ 'b', "* notice\r\n+OK\r\n", 0 },
	};

	SCRIPT(t, "* notice\r\n+OK\r\n" NOTLS, "NOOP\r\n", 0, &res);
}

static void test_eof(void)
{
	/* A command without its line end is none: dropped at the end. */
	static const struct turn partial[] = {
		{ 'c', "NOOP\r\nSTLS", 1 },
		{ 'b', "+OK\r\n", 0 },
	};
	/* The backend ends: what it sent passes, answers owed go. */
	static const struct turn gone[] = {
		{ 'c', "RETR 1\r\nSTLS\r\n", 0 },
		{ 'b', "+OK\r\npart of a mess", 1 },
	};
	/* ...but a piece of a CAPA line that may be STLS does not. */
	static const struct turn capa_cut[] = {
		{ 'c', "CAPA\r\n", 0 },
		{ 'b', "+OK\r\nUSER\r\nST", 1 },
	};
	/* After AUTH the backend ended: what waited for it goes on. */
	static const struct turn auth_gone[] = {
		{ 'c', "AUTH PLAIN\r\nQUIT\r\n", 0 },
		{ 'b', "+", 1 },
	};

	SCRIPT(partial, "+OK\r\n", "NOOP\r\n", 0, &res);
	CHECK(res.left_up == 0);
	SCRIPT(gone, "+OK\r\npart of a mess" NOTLS, "RETR 1\r\n", 0, &res);
	CHECK(res.left_down == 0);
	SCRIPT(capa_cut, "+OK\r\nUSER\r\n", "CAPA\r\n", 0, &res);
	CHECK(res.left_down == 0);
	SCRIPT(auth_gone, "+", "AUTH PLAIN\r\nQUIT\r\n", 0, &res);
	CHECK(res.left_up == 0);
}

static void test_limits(void)
{
	static char fill[70000], longcmd[2100], blanks[700], want[2100],
	    body[60000];
	struct turn long_arg[] = {
		{ 'c', longcmd, 0 },
		{ 'b', "+OK\r\n", 0 },
	};
	struct turn too_long[] = {
		{ 'c', blanks, 0 },
		{ 'b', "+OK\r\n", 0 },
	};
	struct turn long_stls[] = {
		{ 'c', want, 0 },
		{ 'b', "+OK\r\n", 0 },
	};
	struct turn ring[] = {
		{ 'c', fill, 0 },
		{ 'b', "+OK\r\n", 0 },
	};
	struct turn big[] = {
		{ 'c', "RETR 1\r\nSTLS\r\n", 0 },
		{ 'b', body, 0 },
	};
	size_t i;

	/* A line past CMD_MAX whose verb is known streams on: an AUTH with
	 * a long initial response (XOAUTH2) reaches the backend whole. */
	memset(fill, 'a', 2000);
	fill[2000] = '\0';
	snprintf(longcmd, sizeof(longcmd), "AUTH XOAUTH2 %.2000s\r\nNOOP\r\n", fill);
	SCRIPT(long_arg, "+OK\r\n", longcmd, 0, &res);
	play(long_arg, 1, 1, 0, 0, &res);
	CHECK(res.left_up == strlen("NOOP\r\n"));	/* waits for AUTH's answer */
	/* Undecided at CMD_MAX (blanks before the verb): answered, dropped
	 * to its end, nothing of it reaches the backend. */
	memset(blanks, ' ', 600);
	snprintf(blanks + 600, sizeof(blanks) - 600, "STLS\r\nNOOP\r\n");
	SCRIPT(too_long, LONG "+OK\r\n", "NOOP\r\n", 0, &res);
	/* A long STLS line is dropped whole. */
	snprintf(want, sizeof(want), "STLS %.2000s\r\nNOOP\r\n", fill);
	SCRIPT(long_stls, NOTLS "+OK\r\n", "NOOP\r\n", 0, &res);
	/* 32 answers wait behind an outstanding command; the rest waits in
	 * `in` for the backend. */
	fill[0] = '\0';
	strcat(fill, "NOOP\r\n");
	for (i = 0; i < 40; i++)
		strcat(fill, "STLS\r\n");
	play(ring, 1, 1, 0, 0, &res);
	CHECK(res.rc == 0 && res.client_len == 0 &&
	    res.backend_len == strlen("NOOP\r\n"));
	CHECK(res.left_up == 9 * strlen("STLS\r\n"));
	play(ring, 2, 2, 0, 0, &res);
	CHECK(res.rc == 0 && res.left_up == 0 &&
	    res.client_len == strlen("+OK\r\n") + 40 * strlen(NOTLS));
	/* A body larger than a buffer streams; the answer comes after it. */
	memset(body, 'x', sizeof(body) - 1);
	memcpy(body, "+OK\r\n", 5);
	memcpy(body + sizeof(body) - 6, "\r\n.\r\n", 6);
	play(big, 2, 2, 0, 0, &res);
	CHECK(res.rc == 0 && res.left_down == 0 &&
	    res.client_len == sizeof(body) - 1 + strlen(NOTLS) &&
	    memcmp(res.client + sizeof(body) - 1, NOTLS, strlen(NOTLS)) == 0);
}

int main(void)
{
	test_capa();
	test_other_responses();
	test_stls();
	test_auth();
	test_sasl_layer();
	test_greeting();
	test_unknown_lines();
	test_eof();
	test_limits();
	return CHECK_DONE();
}
