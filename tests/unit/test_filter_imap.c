#define FILTER_UNDER_TEST filter_imap
#include "filter_harness.h"

#define BAD(tag) tag " BAD TLS is already active\r\n"
/* 65 tag characters; the first 64 of them. */
#define TAGCHARS64 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-"
#define TAGCHARS TAGCHARS64 "_"

static struct result res;

/* One CAPABILITY exchange: the backend's answer as the client must see it. */
static void caps(const char *reply, const char *want)
{
	struct turn t[] = {
		{ 'c', "a CAPABILITY\r\n", 0 },
		{ 'b', reply, 0 },
		{ 'c', "b NOOP\r\n", 0 },
		{ 'b', "b OK\r\n", 0 },
	};
	char w[1024];

	snprintf(w, sizeof(w), "%sb OK\r\n", want);
	SCRIPT(t, w, "a CAPABILITY\r\nb NOOP\r\n", 0, &res);
}

static void test_capability(void)
{
	/* first, middle, last, only; any case; LF endings */
	caps("* CAPABILITY STARTTLS IMAP4rev1 IDLE\r\na OK done\r\n",
	    "* CAPABILITY IMAP4rev1 IDLE\r\na OK done\r\n");
	caps("* CAPABILITY IMAP4rev1 STARTTLS IDLE\r\na OK done\r\n",
	    "* CAPABILITY IMAP4rev1 IDLE\r\na OK done\r\n");
	caps("* CAPABILITY IMAP4rev1 IDLE STARTTLS\r\na OK done\r\n",
	    "* CAPABILITY IMAP4rev1 IDLE\r\na OK done\r\n");
	caps("* CAPABILITY STARTTLS\r\na OK done\r\n",
	    "* CAPABILITY\r\na OK done\r\n");
	caps("* capability IMAP4rev1 starttls StartTls\na OK\n",
	    "* capability IMAP4rev1\na OK\n");
	/* similar atoms and other words stay */
	caps("* CAPABILITY XSTARTTLSX STARTTLSX XSTARTTLS STARTTLS=1 IMAP4rev1 "
	    "LOGINDISABLED\r\na OK STARTTLS\r\n",
	    "* CAPABILITY XSTARTTLSX STARTTLSX XSTARTTLS STARTTLS=1 IMAP4rev1 "
	    "LOGINDISABLED\r\na OK STARTTLS\r\n");
	/* response codes, tagged and untagged, in OK, NO, BAD, PREAUTH */
	caps("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] Ready STARTTLS\r\n"
	    "a OK [CAPABILITY STARTTLS IMAP4rev1] done STARTTLS\r\n",
	    "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Ready STARTTLS\r\n"
	    "a OK [CAPABILITY IMAP4rev1] done STARTTLS\r\n");
	caps("* NO [CAPABILITY STARTTLS] x\r\n* PREAUTH [CAPABILITY IMAP4rev1 "
	    "STARTTLS] y\r\na BAD [CAPABILITY starttls] z\r\n",
	    "* NO [CAPABILITY] x\r\n* PREAUTH [CAPABILITY IMAP4rev1] y\r\n"
	    "a BAD [CAPABILITY] z\r\n");
	/* other codes and data are not capability lists */
	caps("* OK [PERMANENTFLAGS (STARTTLS)] x\r\n* LIST () \"/\" STARTTLS\r\n"
	    "* CAPABILITYX STARTTLS\r\na OK [CAPABILITYX STARTTLS] done\r\n",
	    "* OK [PERMANENTFLAGS (STARTTLS)] x\r\n* LIST () \"/\" STARTTLS\r\n"
	    "* CAPABILITYX STARTTLS\r\na OK [CAPABILITYX STARTTLS] done\r\n");
}

static void test_literals_down(void)
{
	/* A FETCH body: its lines are no responses, however they read. */
	static const struct turn fetch[] = {
		{ 'c', "a FETCH 1 BODY[]\r\nb STARTTLS\r\n", 0 },
		{ 'b', "* 1 FETCH (BODY[] {50}\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\n"
		    "a OK done\r\n {3}\r\n)\r\n", 0 },
		{ 'b', "* 2 FETCH (BODY[] ~{0}\r\n)\r\na OK done\r\n", 0 },
	};

	SCRIPT(fetch, "* 1 FETCH (BODY[] {50}\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\n"
	    "a OK done\r\n {3}\r\n)\r\n* 2 FETCH (BODY[] ~{0}\r\n)\r\na OK done\r\n"
	    BAD("b"), "a FETCH 1 BODY[]\r\n", 0, &res);
}

static void test_literals_up(void)
{
	/* A synchronizing literal waits for the "+": the line inside it is
	 * the literal's, the line after it a command. */
	static const struct turn sync[] = {
		{ 'c', "a LOGIN {12}\r\n", 0 },
		{ 'c', "b STARTTLS\r\n secret\r\nc STARTTLS\r\n", 0 },
		{ 'b', "+ go on\r\n", 0 },
		{ 'b', "a OK logged in\r\n", 0 },
	};
	/* A refused literal never comes: what follows is a command. */
	static const struct turn refused[] = {
		{ 'c', "a LOGIN {12}\r\nb STARTTLS\r\n", 0 },
		{ 'b', "a BAD literal too big\r\n", 0 },
	};
	/* A non-synchronizing one goes at once; so do several, and empty. */
	static const struct turn plus[] = {
		{ 'c', "a LOGIN {12+}\r\nb STARTTLS\r\n {0+}\r\n {4+}\r\nx\r\n\r\n"
		    "c STARTTLS\r\n", 0 },
		{ 'b', "a NO no\r\n", 0 },
	};
	/* Not a literal: not at the line's end, or no digits. */
	static const struct turn not_lit[] = {
		{ 'c', "a X {5} y\r\nb STARTTLS\r\nc X {}\r\nd STARTTLS\r\n", 0 },
		{ 'b', "a BAD\r\n", 0 },
		{ 'b', "c BAD\r\n", 0 },
	};

	SCRIPT(sync, "+ go on\r\na OK logged in\r\n" BAD("c"),
	    "a LOGIN {12}\r\nb STARTTLS\r\n secret\r\n", 0, &res);
	SCRIPT(refused, "a BAD literal too big\r\n" BAD("b"), "a LOGIN {12}\r\n",
	    0, &res);
	SCRIPT(plus, "a NO no\r\n" BAD("c"),
	    "a LOGIN {12+}\r\nb STARTTLS\r\n {0+}\r\n {4+}\r\nx\r\n\r\n", 0, &res);
	SCRIPT(not_lit, "a BAD\r\n" BAD("b") "c BAD\r\n" BAD("d"),
	    "a X {5} y\r\nc X {}\r\n", 0, &res);
}

static void test_starttls(void)
{
	/* Pipelined: the answer comes after the responses to the commands
	 * before it, never inside one, and before those after it. */
	static const struct turn pipelined[] = {
		{ 'c', "a NOOP\r\nb FETCH 1 BODY[]\r\nc STARTTLS\r\nd NOOP\r\n", 0 },
		{ 'b', "a OK\r\n* 1 FETCH (BODY[] {10}\r\nc OK x\r\n\r\n)\r\n", 0 },
		{ 'b', "b OK\r\n", 0 },
		{ 'b', "d OK\r\n", 0 },
	};
	/* Nothing owed: at once. Spellings a server might take for it. */
	static const struct turn spelled[] = {
		{ 'c', "a STARTTLS\r\n  b   starttls\r\nc StartTLS now\r\n"
		    "d\tSTARTTLS\nSTARTTLS\r\ne STARTTLSX\r\nf XSTARTTLS\r\n", 0 },
		{ 'b', "STARTTLS BAD\r\ne BAD\r\nf BAD\r\n", 0 },
	};
	/* A tag we would not echo gets "*": brackets, "+", a control
	 * character, DEL, 8-bit bytes, more than 64 bytes. */
	static const struct turn odd_tag[] = {
		{ 'c', "a[1] STARTTLS\r\n+ STARTTLS\r\na\x01 STARTTLS\r\n"
		    "a\x7f STARTTLS\r\n\xc3\xa9 STARTTLS\r\n", 0 },
	};
	static char tag64[100], tag65[100];
	struct turn long_tags[] = {
		{ 'c', tag64, 0 },
		{ 'c', tag65, 0 },
	};

	SCRIPT(pipelined, "a OK\r\n* 1 FETCH (BODY[] {10}\r\nc OK x\r\n\r\n)\r\n"
	    "b OK\r\n" BAD("c") "d OK\r\n",
	    "a NOOP\r\nb FETCH 1 BODY[]\r\nd NOOP\r\n", 0, &res);
	SCRIPT(spelled, BAD("a") BAD("b") BAD("c") BAD("d")
	    "STARTTLS BAD\r\ne BAD\r\nf BAD\r\n",
	    "STARTTLS\r\ne STARTTLSX\r\nf XSTARTTLS\r\n", 0, &res);
	SCRIPT(odd_tag, BAD("*") BAD("*") BAD("*") BAD("*") BAD("*"), "", 0,
	    &res);
	snprintf(tag64, sizeof(tag64), "%.64s STARTTLS\r\n", TAGCHARS);
	snprintf(tag65, sizeof(tag65), "%.65s STARTTLS\r\n", TAGCHARS);
	SCRIPT(long_tags, TAGCHARS64 " BAD TLS is already active\r\n" BAD("*"),
	    "", 0, &res);
}

#define NOCOMPRESS(tag) tag " NO [CANNOT] COMPRESS is not available\r\n"

/* COMPRESS=DEFLATE (RFC 4978) would compress both streams, and the
 * filter could read no command after it: the capability is never shown
 * and the command is answered here, as STARTTLS is. */
static void test_compress(void)
{
	/* What dovecot's imap_zlib says after LOGIN, and the atom in other
	 * places and spellings; an atom that only begins alike stays. */
	caps("* CAPABILITY IMAP4rev1 IDLE MOVE COMPRESS=DEFLATE\r\na OK done\r\n",
	    "* CAPABILITY IMAP4rev1 IDLE MOVE\r\na OK done\r\n");
	caps("* CAPABILITY COMPRESS=DEFLATE STARTTLS compress=x IMAP4rev1\r\n"
	    "a OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE IDLE] done\r\n",
	    "* CAPABILITY IMAP4rev1\r\na OK [CAPABILITY IMAP4rev1 IDLE] done\r\n");
	caps("* CAPABILITY COMPRESS COMPRESS= XCOMPRESS=DEFLATE COMPRESSX=1\r\n"
	    "a OK done\r\n",
	    "* CAPABILITY COMPRESS COMPRESS= XCOMPRESS=DEFLATE COMPRESSX=1\r\n"
	    "a OK done\r\n");

	/* The command, pipelined: answered after what was owed before it,
	 * never passed; the session goes on uncompressed. */
	static const struct turn pipelined[] = {
		{ 'c', "a LOGIN u p\r\nb COMPRESS DEFLATE\r\nc SELECT INBOX\r\n", 0 },
		{ 'b', "a OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] Logged in\r\n", 0 },
		{ 'b', "c OK done\r\n", 0 },
	};
	/* Spellings; a verb that only begins alike passes. */
	static const struct turn spelled[] = {
		{ 'c', "a compress deflate\r\n b  Compress\r\nc COMPRESSX\r\n", 0 },
		{ 'b', "c BAD\r\n", 0 },
	};

	SCRIPT(pipelined, "a OK [CAPABILITY IMAP4rev1] Logged in\r\n" NOCOMPRESS("b")
	    "c OK done\r\n", "a LOGIN u p\r\nc SELECT INBOX\r\n", 0, &res);
	SCRIPT(spelled, NOCOMPRESS("a") NOCOMPRESS("b") "c BAD\r\n", "c COMPRESSX\r\n",
	    0, &res);
}

static void test_continuations(void)
{
	/* IDLE: after the "+", DONE is no command. */
	static const struct turn idle[] = {
		{ 'c', "a IDLE\r\nDONE\r\nb STARTTLS\r\n", 0 },
		{ 'b', "+ idling\r\n* 2 EXISTS\r\n", 0 },
		{ 'b', "a OK IDLE done\r\n", 0 },
	};
	/* AUTHENTICATE: every line after a "+" is a SASL response, until
	 * the tagged end. */
	static const struct turn auth[] = {
		{ 'c', "a AUTHENTICATE PLAIN\r\n", 0 },
		{ 'b', "+ \r\n", 0 },
		{ 'c', "AGEAYg==\r\nb STARTTLS\r\n", 0 },
		{ 'b', "a OK [CAPABILITY IMAP4rev1 STARTTLS] done\r\n", 0 },
	};
	/* A verb that only begins with AUTHENTICATE is another command:
	 * a "+" to it (whatever a backend meant) starts no SASL exchange. */
	static const struct turn authx[] = {
		{ 'c', "a AUTHENTICATEX\r\n", 0 },
		{ 'b', "+ \r\n", 0 },
		{ 'c', "b STARTTLS\r\n", 0 },
		{ 'b', "a BAD unknown command\r\n", 0 },
	};
	/* A refused IDLE: no "+", the next line is a command. */
	static const struct turn no_idle[] = {
		{ 'c', "a IDLE\r\nb STARTTLS\r\n", 0 },
		{ 'b', "a BAD no IDLE here\r\n", 0 },
	};

	SCRIPT(idle, "+ idling\r\n* 2 EXISTS\r\na OK IDLE done\r\n" BAD("b"),
	    "a IDLE\r\nDONE\r\n", 0, &res);
	SCRIPT(auth, "+ \r\na OK [CAPABILITY IMAP4rev1] done\r\n" BAD("b"),
	    "a AUTHENTICATE PLAIN\r\nAGEAYg==\r\n", 0, &res);
	SCRIPT(no_idle, "a BAD no IDLE here\r\n" BAD("b"), "a IDLE\r\n", 0, &res);
	SCRIPT(authx, "+ \r\na BAD unknown command\r\n" BAD("b"),
	    "a AUTHENTICATEX\r\n", 0, &res);
}

/* A SASL security layer: after AUTHENTICATE's tagged OK both streams are
 * 4-byte-length buffers, which pass untouched; anything else after that
 * OK, or a NUL after any other success, leaves the filter on. */
#define WRAPPED_UP "\0\0\0\x0c" "b STARTTLS\r\n"
#define WRAPPED_DOWN "\0\0\0\x19" "* CAPABILITY STARTTLS\r\n\xff\0"
static void test_sasl_layer(void)
{
	static const struct turn digest[] = {
		{ 'c', "a AUTHENTICATE DIGEST-MD5\r\n", 0 },
		{ 'b', "+ bm9uY2U9IngiLHFvcD0iYXV0aC1jb25mIg==\r\n", 0 },
		{ 'c', "dXNlcm5hbWU9ImFsaWNlIg==\r\n", 0 },
		{ 'b', "+ cnNwYXV0aD0x\r\n", 0 },
		{ 'c', "\r\n", 0 },
		{ 'b', "a OK Success (privacy protection)\r\n", 0 },
		{ 'c', WRAPPED_UP, 0, sizeof(WRAPPED_UP) - 1 },
		{ 'b', WRAPPED_DOWN, 0, sizeof(WRAPPED_DOWN) - 1 },
		{ 'c', "\0\0\0\x05" "c X\r\n", 0, 9 },
	};
	/* With an initial response (RFC 4959); the backend's wrapped bytes
	 * may come first. */
	static const struct turn down_first[] = {
		{ 'c', "a AUTHENTICATE GSSAPI YII=\r\n", 0 },
		{ 'b', "a OK [CAPABILITY IMAP4rev1 STARTTLS] done\r\n" WRAPPED_DOWN,
		    0, 43 + sizeof(WRAPPED_DOWN) - 1 },
		{ 'c', WRAPPED_UP, 0, sizeof(WRAPPED_UP) - 1 },
	};
	/* A failed AUTHENTICATE, or LOGIN, opens no window: a NUL before
	 * the tag is read as a blank, the STARTTLS answered here. */
	static const struct turn failed[] = {
		{ 'c', "a AUTHENTICATE PLAIN AGEAYg==\r\n", 0 },
		{ 'b', "a NO [AUTHENTICATIONFAILED] failed\r\n", 0 },
		{ 'c', "\0b STARTTLS\r\n", 0, 13 },
	};
	static const struct turn login[] = {
		{ 'c', "a LOGIN alice pw\r\n", 0 },
		{ 'b', "a OK Logged in\r\n", 0 },
		{ 'c', "\0b STARTTLS\r\n", 0, 13 },
	};
	/* A command after the OK closes the window for good; so does a line
	 * from the backend. */
	static const struct turn cmd_first[] = {
		{ 'c', "a AUTHENTICATE PLAIN AGEAYg==\r\n", 0 },
		{ 'b', "a OK\r\n", 0 },
		{ 'c', "b NOOP\r\n\0c STARTTLS\r\n", 0, 21 },
		{ 'b', "b OK\r\n", 0 },
	};
	static const struct turn line_first[] = {
		{ 'c', "a AUTHENTICATE PLAIN AGEAYg==\r\n", 0 },
		{ 'b', "a OK\r\n* 1 EXISTS\r\n", 0 },
		{ 'c', "\0b STARTTLS\r\n", 0, 13 },
	};

	SCRIPT_BIN(digest, "+ bm9uY2U9IngiLHFvcD0iYXV0aC1jb25mIg==\r\n"
	    "+ cnNwYXV0aD0x\r\na OK Success (privacy protection)\r\n"
	    WRAPPED_DOWN, "a AUTHENTICATE DIGEST-MD5\r\n"
	    "dXNlcm5hbWU9ImFsaWNlIg==\r\n\r\n" WRAPPED_UP "\0\0\0\x05" "c X\r\n",
	    0, &res);
	SCRIPT_BIN(down_first, "a OK [CAPABILITY IMAP4rev1] done\r\n"
	    WRAPPED_DOWN, "a AUTHENTICATE GSSAPI YII=\r\n" WRAPPED_UP, 0, &res);
	SCRIPT(failed, "a NO [AUTHENTICATIONFAILED] failed\r\n" BAD("b"),
	    "a AUTHENTICATE PLAIN AGEAYg==\r\n", 0, &res);
	SCRIPT(login, "a OK Logged in\r\n" BAD("b"), "a LOGIN alice pw\r\n", 0,
	    &res);
	SCRIPT(cmd_first, "a OK\r\nb OK\r\n" BAD("c"),
	    "a AUTHENTICATE PLAIN AGEAYg==\r\nb NOOP\r\n", 0, &res);
	SCRIPT(line_first, "a OK\r\n* 1 EXISTS\r\n" BAD("b"),
	    "a AUTHENTICATE PLAIN AGEAYg==\r\n", 0, &res);
}

/* A line without a valid tag gets "* BAD" (RFC 9051 7.1.5): it owes no
 * tagged response, and its literal is none. */
static void test_untagged(void)
{
	static const struct turn bad_tag[] = {
		{ 'c', " a NOOP\r\n\r\nb+ X {5}\r\nc STARTTLS\r\n", 0 },
		{ 'b', "* BAD invalid tag\r\n* BAD invalid tag\r\n* BAD invalid tag\r\n", 0 },
	};
	/* An untagged BAD does not end a command: a literal refused so
	 * still waits for its "+" or the tagged end (an earlier line's
	 * "* BAD" must not turn literal bytes into commands). */
	static const struct turn lit_bad[] = {
		{ 'c', "\r\na X {12}\r\nc STARTTLS\r\n\r\n", 0 },
		{ 'b', "* BAD invalid tag\r\n", 0 },
		{ 'b', "+ go\r\n", 0 },
		{ 'b', "a OK\r\n", 0 },
	};

	/* A backend that takes a tag RFC 9051 does not ("a+") and answers
	 * it tagged: the wait for the next command's "+" goes on. */
	static const struct turn lenient[] = {
		{ 'c', "a+ NOOP\r\nb X {12}\r\nc STARTTLS\r\n\r\n", 0 },
		{ 'b', "a+ OK\r\n", 0 },
		{ 'b', "+ go\r\nb OK\r\n", 0 },
	};

	/* Tags with a control character, DEL or 8-bit bytes get "* BAD"
	 * and owe nothing: the answer does not wait for them. */
	static const struct turn ctl_tag[] = {
		{ 'c', "a\x01 NOOP\r\nb\x7f NOOP\r\nc\xc3\xa9 NOOP\r\nd STARTTLS\r\n",
		    0 },
		{ 'b', "* BAD invalid tag\r\n* BAD invalid tag\r\n* BAD invalid tag\r\n", 0 },
	};
	/* A backend that says a tagged response twice: the second answers
	 * no command, and the answer still waits for b's. */
	static const struct turn dup[] = {
		{ 'c', "a NOOP\r\n", 0 },
		{ 'b', "a OK\r\na OK\r\n", 0 },
		{ 'c', "b NOOP\r\nc STARTTLS\r\n", 0 },
		{ 'b', "b OK\r\n", 0 },
	};

	/* A tag used twice: the first command's end is not the second's. */
	static const struct turn twice[] = {
		{ 'c', "a NOOP\r\na X {12}\r\nc STARTTLS\r\n\r\n", 0 },
		{ 'b', "a OK\r\n", 0 },
		{ 'b', "+ go\r\na OK\r\n", 0 },
	};

	SCRIPT(twice, "a OK\r\n+ go\r\na OK\r\n",
	    "a NOOP\r\na X {12}\r\nc STARTTLS\r\n\r\n", 0, &res);
	SCRIPT(lenient, "a+ OK\r\n+ go\r\nb OK\r\n",
	    "a+ NOOP\r\nb X {12}\r\nc STARTTLS\r\n\r\n", 0, &res);
	SCRIPT(bad_tag, BAD("c") "* BAD invalid tag\r\n* BAD invalid tag\r\n"
	    "* BAD invalid tag\r\n", " a NOOP\r\n\r\nb+ X {5}\r\n", 0, &res);
	SCRIPT(lit_bad, "* BAD invalid tag\r\n+ go\r\na OK\r\n",
	    "\r\na X {12}\r\nc STARTTLS\r\n\r\n", 0, &res);
	SCRIPT(ctl_tag, BAD("d") "* BAD invalid tag\r\n* BAD invalid tag\r\n"
	    "* BAD invalid tag\r\n", "a\x01 NOOP\r\nb\x7f NOOP\r\nc\xc3\xa9 NOOP\r\n",
	    0, &res);
	SCRIPT(dup, "a OK\r\na OK\r\nb OK\r\n" BAD("c"),
	    "a NOOP\r\nb NOOP\r\n", 0, &res);
}

static void test_eof(void)
{
	/* A command without its line end is none. */
	static const struct turn partial[] = {
		{ 'c', "a NOOP\r\nb STARTTLS", 1 },
		{ 'b', "a OK\r\n", 0 },
	};
	/* The backend ends: a partial capability line loses STARTTLS too,
	 * and what waited for a "+" goes on. */
	static const struct turn cut[] = {
		{ 'c', "a CAPABILITY\r\n", 0 },
		{ 'b', "* CAPABILITY IMAP4rev1 STARTTLS ID", 1 },
	};
	static const struct turn gone[] = {
		{ 'c', "a LOGIN {3}\r\nb STARTTLS\r\n", 0 },
		{ 'b', "* BYE", 1 },
	};

	SCRIPT(partial, "a OK\r\n", "a NOOP\r\n", 0, &res);
	CHECK(res.left_up == 0);
	SCRIPT(cut, "* CAPABILITY IMAP4rev1 ID", "a CAPABILITY\r\n", 0, &res);
	CHECK(res.left_down == 0);
	SCRIPT(gone, "* BYE" BAD("b"), "a LOGIN {3}\r\n", 0, &res);
}

/* A script that must end the session with `why`, fed whole, in two
 * pieces cut at every byte of every turn, and one byte at a time. The
 * client and the backend get a prefix of `client` and `backend`: whole,
 * exactly the first client_min and backend_min bytes; split, perhaps more
 * of the offending line (a line streams once its start is known), never
 * all of it. */
static void ends(const struct turn *t, size_t nt, const char *why,
    const char *client, size_t client_min, const char *backend,
    size_t backend_min)
{
	size_t runs = 0;

	for (size_t i = 0; i <= nt; i++)
		for (size_t cut = 0; cut < (i < nt ? strlen(t[i].bytes) : 2); cut++) {
			/* i == nt: whole (cut 0), then bytewise (cut 1) */
			if (i < nt && cut == 0)
				continue;
			play(t, nt, i, cut, i == nt && cut == 1, &res);
			runs++;
			CHECK(res.rc == -1);
			CHECK_STR(res.why, why);
			CHECK(res.client_len >= client_min &&
			    res.client_len <= strlen(client) &&
			    memcmp(res.client, client, res.client_len) == 0);
			CHECK(res.backend_len >= backend_min &&
			    res.backend_len <= strlen(backend) &&
			    memcmp(res.backend, backend, res.backend_len) == 0);
			if (i == nt && cut == 0)
				CHECK(res.client_len == client_min &&
				    res.backend_len == backend_min);
		}
	CHECK(runs > nt);
}

/* A literal's size is read to 18 digits (any more could overflow): an
 * announcement with a 19th ends the session, from either side, at its LF
 * (the LF never passes, so no literal starts). 18 digits, leading zeros
 * included, are a literal like any other; more digits in braces anywhere
 * but a line's end are text (a quoted subject, a password). */
static void test_literal_size(void)
{
	static const struct turn up18[] = {
		{ 'c', "a APPEND INBOX {000000000000000003}\r\n", 0 },
		{ 'b', "+ go\r\n", 0 },
		{ 'c', "abc\r\nb STARTTLS\r\n", 0 },
		{ 'b', "a OK\r\n", 0 },
	};
	/* All 18 digits count: the 13 bytes after the "+" are the literal,
	 * a STARTTLS line in them included. */
	static const struct turn up18_whole[] = {
		{ 'c', "a APPEND INBOX {000000000000000013}\r\n", 0 },
		{ 'b', "+ go\r\n", 0 },
		{ 'c', "x\r\nc STARTTLS\r\n", 0 },
		{ 'b', "a OK\r\n", 0 },
	};
	static const struct turn up19[] = {
		{ 'c', "a NOOP\r\n", 0 },
		{ 'b', "a OK\r\n", 0 },
		{ 'c', "b APPEND INBOX {0000000000000000003}\r\nabc\r\n"
		    "c STARTTLS\r\n", 0 },
	};
	static const struct turn down18[] = {
		{ 'c', "a FETCH 1 BODY[]\r\nb STARTTLS\r\n", 0 },
		{ 'b', "* 1 FETCH (BODY[] {000000000000000003}\r\nabc)\r\n"
		    "a OK\r\n", 0 },
	};
	static const struct turn down19[] = {
		{ 'c', "a FETCH 1 BODY[]\r\nb STARTTLS\r\n", 0 },
		{ 'b', "* 1 FETCH (BODY[] {1234567890123456789}\r\nabc)\r\n"
		    "a OK\r\n", 0 },
	};

	SCRIPT(up18, "+ go\r\na OK\r\n" BAD("b"),
	    "a APPEND INBOX {000000000000000003}\r\nabc\r\n", 0, &res);
	SCRIPT(up18_whole, "+ go\r\na OK\r\n",
	    "a APPEND INBOX {000000000000000013}\r\nx\r\nc STARTTLS\r\n", 0, &res);
	SCRIPT(down18, "* 1 FETCH (BODY[] {000000000000000003}\r\nabc)\r\n"
	    "a OK\r\n" BAD("b"), "a FETCH 1 BODY[]\r\n", 0, &res);
	/* The client's 19 digits: its NOOP went, and at most the line up to
	 * its LF; no answer to the STARTTLS after it. */
	ends(up19, sizeof(up19) / sizeof(up19[0]), "client literal size over 18 digits", "a OK\r\n", 6,
	    "a NOOP\r\nb APPEND INBOX {0000000000000000003}\r", 8);
	/* The backend's: the client gets at most the line up to its LF,
	 * and no answer to its STARTTLS. */
	ends(down19, sizeof(down19) / sizeof(down19[0]), "backend literal size over 18 digits",
	    "* 1 FETCH (BODY[] {1234567890123456789}\r", 0,
	    "a FETCH 1 BODY[]\r\n", 18);
	/* Braces with 19 digits and more inside a line are text: a subject
	 * a sender chose, in the backend's ENVELOPE, and a client's quoted
	 * password; both pass whole, and the session goes on (the STARTTLS
	 * after them answered). These ended the session. */
	{
		static const struct turn text[] = {
			{ 'c', "a LOGIN joe \"{1234567890123456789\"\r\n", 0 },
			{ 'b', "a OK\r\n", 0 },
			{ 'c', "b FETCH 1 ENVELOPE\r\nc STARTTLS\r\n", 0 },
			{ 'b', "* 1 FETCH (ENVELOPE (NIL \"see {12345678901234567890123} x\" "
			    "NIL NIL NIL NIL NIL NIL NIL NIL))\r\n"
			    "* 2 FETCH (ENVELOPE (NIL \"{99999999999999999999}{1}\" "
			    "NIL NIL NIL NIL NIL NIL NIL NIL))\r\nb OK\r\n", 0 },
		};
		SCRIPT(text, "a OK\r\n"
		    "* 1 FETCH (ENVELOPE (NIL \"see {12345678901234567890123} x\" "
		    "NIL NIL NIL NIL NIL NIL NIL NIL))\r\n"
		    "* 2 FETCH (ENVELOPE (NIL \"{99999999999999999999}{1}\" "
		    "NIL NIL NIL NIL NIL NIL NIL NIL))\r\nb OK\r\n" BAD("c"),
		    "a LOGIN joe \"{1234567890123456789\"\r\nb FETCH 1 ENVELOPE\r\n",
		    0, &res);
	}
}

static void test_limits(void)
{
	static char fill[70000], longline[3000], tag[2000], capline[20000],
	    big[60000];
	struct turn long_cmd[] = {
		{ 'c', longline, 0 },
		{ 'b', "a OK\r\n", 0 },
	};
	struct turn long_tag[] = {
		{ 'c', tag, 0 },
	};
	struct turn long_cap[] = {
		{ 'c', "a CAPABILITY\r\n", 0 },
		{ 'b', capline, 0 },
	};
	struct turn body[] = {
		{ 'c', "a FETCH 1 BODY[]\r\nb STARTTLS\r\n", 0 },
		{ 'b', big, 0 },
		{ 'b', ")\r\na OK\r\n", 0 },
	};
	size_t n;

	memset(fill, 'x', sizeof(fill) - 1);
	/* A long command line streams: its verb is known early. */
	snprintf(longline, sizeof(longline), "a SEARCH TEXT %.2900s\r\n", fill);
	SCRIPT(long_cmd, "a OK\r\n", longline, 0, &res);
	/* No verb in the first 1024 bytes: the connection ends. */
	snprintf(tag, sizeof(tag), "%.1500s STARTTLS\r\n", fill);
	play(long_tag, 1, 1, 0, 0, &res);
	CHECK(res.rc == -1 && res.backend_len == 0);
	CHECK_STR(res.why, "client command with no verb in its first 1024 bytes");
	/* A capability line over 16 KiB ends it too. */
	snprintf(capline, sizeof(capline), "* CAPABILITY %.17000s\r\n", fill);
	play(long_cap, 2, 2, 0, 0, &res);
	CHECK(res.rc == -1 && res.client_len == 0);
	CHECK_STR(res.why, "backend CAPABILITY response over 16 KiB");
	/* A literal bigger than anything held streams, byte for byte. */
	n = (size_t)snprintf(big, sizeof(big), "* 1 FETCH (BODY[] {%d}\r\n",
	    (int)(sizeof(big) - 40));
	memset(big + n, '*', sizeof(big) - 40);
	memcpy(big + n, "\r\n* CAPABILITY STARTTLS\r\n", 25);
	big[n + sizeof(big) - 40] = '\0';
	play(body, 3, 3, 0, 0, &res);
	CHECK(res.rc == 0 && res.left_down == 0 &&
	    res.client_len == strlen(big) + 9 + strlen(BAD("b")) &&
	    memcmp(res.client, big, strlen(big)) == 0 &&
	    memcmp(res.client + strlen(big) + 9, BAD("b"), strlen(BAD("b"))) == 0);
}

int main(void)
{
	test_capability();
	test_literals_down();
	test_literals_up();
	test_starttls();
	test_compress();
	test_continuations();
	test_sasl_layer();
	test_untagged();
	test_eof();
	test_limits();
	test_literal_size();
	return CHECK_DONE();
}
