/*
 * filter_ftp: PBSZ/PROT answered, CCC/REIN/AUTH/PORT/EPRT refused, unknown
 * verbs kept from the backend, answers in reply order, 227/229 rewritten,
 * FEAT completed; with active mode on, PORT and EPRT read and handed to
 * the connection, whose command goes to the backend in their place; every
 * script whole, split at every byte and bytewise.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "filter_ftp.h"

static int passive(void *ctx, int epsv, const uint8_t *addr, unsigned port,
    uint8_t pub[4], unsigned *pub_port);

static int busy_now;

static int busy(void *ctx)
{
	(void)ctx;
	return busy_now;
}

/* Each play starts with broken_now broken data connections to report;
 * each is reported once. ABORs are counted. */
static int broken_now, broken_left, aborts;

static int broken(void *ctx)
{
	(void)ctx;
	if (broken_left == 0)
		return 0;
	broken_left--;
	return 1;
}

static void abort_data(void *ctx)
{
	(void)ctx;
	aborts++;
}

/* A model of the connection's active(): the client's own address is
 * 127.0.0.1 or ::1; port 2000 has no data port; the command names what it
 * was given, so the test sees the address as the filter read it. */
static int active(void *ctx, int family, const uint8_t *addr, unsigned port,
    char *cmd, size_t size)
{
	static const uint8_t v6[16] = { [15] = 1 };

	(void)ctx;
	if ((family == AF_INET ? memcmp(addr, "\x7f\0\0\x01", 4) :
	    memcmp(addr, v6, 16)) != 0 || port < 1024)
		return -1;
	if (port == 2000)
		return -2;
	snprintf(cmd, size, "PORT 10,0,0,9,%u,%u\r\n", (port + 1) / 256,
	    (port + 1) % 256);
	return 0;
}

static struct filter_ftp_env env = { 0, NULL, passive, busy, broken, abort_data, NULL };

#define FILTER_UNDER_TEST filter_ftp
#define FILTER_SETUP(st) \
	(filter_ftp_setup(st, &env), broken_left = broken_now, aborts = 0)
#include "filter_harness.h"

/* A model broker: the backend's port plus 1000 at 192.0.2.1; port 9999
 * has no data port, and a PASV to port 9998 is one only EPSV could
 * answer; a PASV address other than 127.0.0.1 is noted. */
static int odd_addr;

static int passive(void *ctx, int epsv, const uint8_t *addr, unsigned port,
    uint8_t pub[4], unsigned *pub_port)
{
	(void)ctx;
	if (!epsv && (addr == NULL || addr[0] != 127 || addr[3] != 1))
		odd_addr = 1;
	if (epsv && addr != NULL)
		odd_addr = 1;
	if (port == 9999)
		return -1;
	if (port == 9998 && !epsv)
		return -2;
	pub[0] = 192, pub[1] = 0, pub[2] = 2, pub[3] = 1;
	*pub_port = port + 1000;
	return 0;
}

static struct result res;

#define PBSZ "200 PBSZ=0\r\n"
#define PROTP "200 Protection level set to Private\r\n"
#define PROTC_NO "534 Data connections must be protected: use PROT P\r\n"
#define ACTIVE "502 Active mode is not available; use PASV or EPSV\r\n"
#define UNKNOWN "502 Command not implemented\r\n"
#define NOREAD "425 Cannot read the server's passive address\r\n"

static void test_login(void)
{
	/* curl's dialogue after AUTH TLS. */
	static const struct turn t[] = {
		{ 'c', "USER anonymous\r\n", 0 },
		{ 'b', "331 Please specify the password.\r\n", 0 },
		{ 'c', "PASS ftp@example.com\r\n", 0 },
		{ 'b', "230 Login successful.\r\n", 0 },
		{ 'c', "PBSZ 0\r\nPROT P\r\nPWD\r\n", 0 },
		{ 'b', "257 \"/\" is the current directory\r\n", 0 },
	};
	SCRIPT(t, "331 Please specify the password.\r\n230 Login successful.\r\n"
	    PBSZ PROTP "257 \"/\" is the current directory\r\n",
	    "USER anonymous\r\nPASS ftp@example.com\r\nPWD\r\n", 0, &res);
}

static void test_refusals(void)
{
	static const struct turn t[] = {
		{ 'c', "PROT C\r\nprot s\r\nPROT\r\nPROT PP\r\nCCC\r\nREIN\r\n"
		    "AUTH TLS\r\nPORT 127,0,0,1,4,1\r\nEPRT |1|10.0.0.1|80|\r\n"
		    "port 1,2,3,4,5,6\r\n \xff\xf4PORT 1,2,3,4,5,6\r\nADAT x\r\n", 0 },
	};
	/* Nothing unknown reaches the backend, whatever its spelling. */
	static const struct turn u[] = {
		{ 'c', "SITE EXEC x\r\nXYZZY\r\nPORTX 1\r\nPORT\t1,2\r\n"
		    "NOOP\rPORT 1,2,3,4,5,6\r\n9NOOP\r\n\r\n", 0 },
		{ 'b', "500 Unknown SITE command.\r\n", 0 },
	};
	SCRIPT(t, PROTC_NO "536 Protection level not supported; use PROT P\r\n"
	    "501 Syntax: PROT P\r\n501 Syntax: PROT P\r\n"
	    "533 The control connection stays protected\r\n"
	    "502 REIN not implemented\r\n503 TLS is already active\r\n"
	    ACTIVE ACTIVE ACTIVE ACTIVE "502 Command not implemented under TLS\r\n",
	    "", 0, &res);
	SCRIPT(u, "500 Unknown SITE command.\r\n" UNKNOWN UNKNOWN UNKNOWN
	    "501 Syntax error in command line\r\n" UNKNOWN UNKNOWN,
	    "SITE EXEC x\r\n", 0, &res);
}

static void test_prot_c_optional(void)
{
	static const struct turn t[] = {
		{ 'c', "PROT C\r\n", 0 },
	};
	env.prot_c_ok = 1;
	SCRIPT(t, "200 Protection level set to Clear\r\n", "", 0, &res);
	env.prot_c_ok = 0;
}

static void test_order(void)
{
	/* Pipelined: our answers wait for the replies owed before them; a
	 * 1yz reply owes its command's final one; ABOR mid-transfer. */
	static const struct turn t[] = {
		{ 'c', "TYPE I\r\nPBSZ 0\r\nRETR f\r\nPROT P\r\nABOR\r\nCCC\r\n", 0 },
		{ 'b', "200 Switching to Binary mode.\r\n150 Opening\r\n", 0 },
		{ 'b', "426 Failure\r\n226 ABOR successful\r\n", 0 },
	};
	static const struct turn multi[] = {
		{ 'c', "HELP\r\nPBSZ 0\r\n", 0 },
		{ 'b', "214-The following commands are recognized.\r\n ABOR\r\n"
		    "214-x\r\n214 Help OK.\r\n", 0 },
	};
	SCRIPT(t, "200 Switching to Binary mode.\r\n" PBSZ "150 Opening\r\n"
	    "426 Failure\r\n" PROTP "226 ABOR successful\r\n"
	    "533 The control connection stays protected\r\n",
	    "TYPE I\r\nRETR f\r\nABOR\r\n", 0, &res);
	SCRIPT(multi, "214-The following commands are recognized.\r\n ABOR\r\n"
	    "214-x\r\n214 Help OK.\r\n" PBSZ, "HELP\r\n", 0, &res);
}

static void test_passive(void)
{
	static const struct turn t[] = {
		{ 'c', "PASV\r\n", 0 },
		{ 'b', "227 Entering Passive Mode (127,0,0,1,195,80).\r\n", 0 },
		{ 'c', "EPSV\r\n", 0 },
		{ 'b', "229 Entering Extended Passive Mode (|||50001|)\r\n", 0 },
		{ 'c', "PASV\r\n", 0 },
		{ 'b', "227 =127,0,0,1,39,16\r\n", 0 },
		{ 'c', "EPSV\r\n", 0 },
		{ 'b', "229 ok (!!!9999!)\r\n", 0 },
		{ 'c', "EPSV\r\nPASV\r\nPASV\r\nEPSV\r\n", 0 },
		{ 'b', "229 (|||0|)\r\n227 (1,2,3,4,5)\r\n227 (127,0,0,1,256,1)\r\n"
		    "229 (||1|)\r\n", 0 },
		{ 'c', "PASV\r\n", 0 },
		{ 'b', "227 (127,0,0,1,39,14)\r\n", 0 },
	};
	static const struct turn multi[] = {
		{ 'c', "PASV\r\n", 0 },
		{ 'b', "227-Entering\r\n227 (127,0,0,1,195,80)\r\n", 0 },
	};
	/* EPSV's delimiter is any of 33 to 126, three times, and again after
	 * the port; a port up to 65535, a published one too; numbers up to
	 * six digits. */
	static const struct turn edges[] = {
		{ 'c', "EPSV\r\nEPSV\r\nEPSV\r\nEPSV\r\nEPSV\r\nEPSV\r\n"
		    "EPSV\r\nEPSV\r\nEPSV\r\nPASV\r\nPASV\r\n", 0 },
		{ 'b', "229 (~~~5000~)\r\n229 (\x7f\x7f\x7f" "5000\x7f)\r\n"
		    "229 (   5000 )\r\n229 (|!|5000|)\r\n229 (||!5000|)\r\n"
		    "229 (|||5000!)\r\n229 (|||5000\r\n229 (|||64535|)\r\n"
		    "229 (|||65536|)\r\n227 (127,0,0,1,000195,80)\r\n"
		    "227 (127,0,0,1,0000195,80)\r\n", 0 },
	};
	odd_addr = 0;
	SCRIPT(t, "227 Entering Passive Mode (192,0,2,1,199,56)\r\n"
	    "229 Entering Extended Passive Mode (|||51001|)\r\n"
	    "227 Entering Passive Mode (192,0,2,1,42,248)\r\n"
	    "425 No data port available\r\n"
	    "425 Cannot read the server's passive address\r\n"
	    "425 Cannot read the server's passive address\r\n"
	    "425 Cannot read the server's passive address\r\n"
	    "425 Cannot read the server's passive address\r\n"
	    "425 PASV names IPv4 addresses only: use EPSV\r\n",
	    "PASV\r\nEPSV\r\nPASV\r\nEPSV\r\nEPSV\r\nPASV\r\nPASV\r\nEPSV\r\nPASV\r\n",
	    0, &res);
	CHECK(odd_addr == 0);
	CHECK(strstr(res.client, "127,0,0,1") == NULL);
	SCRIPT(multi, "", "PASV\r\n", -1, &res);
	CHECK_STR(res.why, "multi-line passive reply");
	SCRIPT(edges, "229 Entering Extended Passive Mode (|||6000|)\r\n"
	    NOREAD NOREAD NOREAD NOREAD NOREAD NOREAD
	    "229 Entering Extended Passive Mode (|||65535|)\r\n" NOREAD
	    "227 Entering Passive Mode (192,0,2,1,199,56)\r\n" NOREAD,
	    "EPSV\r\nEPSV\r\nEPSV\r\nEPSV\r\nEPSV\r\nEPSV\r\nEPSV\r\nEPSV\r\n"
	    "EPSV\r\nPASV\r\nPASV\r\n", 0, &res);
}

static void test_feat(void)
{
	static const struct turn t[] = {
		{ 'c', "FEAT\r\n", 0 },
		{ 'b', "211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n PASV\r\n"
		    " AUTH SSL\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n"
		    "211 End\r\n", 0 },
		{ 'c', "STAT\r\n", 0 },
		{ 'b', "211-Status:\r\n EPRT means nothing here\r\n"
		    "227 (10,0,0,1,4,1)\r\n200\r\n211-still\r\n211 End\r\n", 0 },
	};
	SCRIPT(t, "211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n EPSV\r\n"
	    " MDTM\r\n PASV\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n"
	    "211 End\r\n211-Status:\r\n EPRT means nothing here\r\n"
	    " 227 (10,0,0,1,4,1)\r\n 200\r\n211-still\r\n211 End\r\n",
	    "FEAT\r\nSTAT\r\n", 0, &res);
}

static void test_active(void)
{
	/* PORT and EPRT of the client's own address: the backend gets the
	 * connection's PORT, the client the backend's answer. */
	static const struct turn t[] = {
		{ 'c', "PORT 127,0,0,1,195,80\r\n", 0 },
		{ 'b', "200 PORT command successful.\r\n", 0 },
		{ 'c', "EPRT |2|::1|50001|\r\neprt !1!127.0.0.1!4096! \r\n", 0 },
		{ 'b', "200 EPRT ok.\r\n200 EPRT ok.\r\n", 0 },
		{ 'c', "RETR f\r\n", 0 },
		{ 'b', "150 Opening\r\n226 Done\r\n", 0 },
	};
	/* Refused: another host, a low port, bad arguments, an unknown
	 * family, no data port; answered here, in order, nothing passed. */
	static const struct turn u[] = {
		{ 'c', "PORT 127,0,0,2,195,80\r\nPORT 127,0,0,1,3,255\r\n"
		    "EPRT |1|10.0.0.1|5000|\r\nPORT 127,0,0,1,195\r\n"
		    "PORT 127,0,0,1,256,1\r\nPORT 127,0,0,1,0,0\r\n"
		    "PORT 127,0,0,1,1,1,1\r\nPORT\r\nEPRT |1|127.0.0.1|\r\n"
		    "EPRT |1|nonsense|5000|\r\nEPRT |1|127.0.0.1|5000\r\n"
		    "EPRT |3|127.0.0.1|5000|\r\nEPRT |1|::1|5000|\r\n"
		    "PORT 127,0,0,1,7,208\r\n", 0 },
	};
	/* EPRT's delimiter is any of 33 to 126, and must end it; an
	 * address of 1 to 45 characters; a port up to 65535. */
	static char longaddr[100];
	struct turn w[] = {
		{ 'c', "EPRT ~1~127.0.0.1~5000~\r\nEPRT \x7f" "1\x7f" "127.0.0.1\x7f"
		    "5000\x7f\r\nEPRT |1|127.0.0.1|5000|x\r\nEPRT |1||5000|\r\n"
		    "EPRT |1|127.0.0.1|65535|\r\nEPRT |1|127.0.0.1|65536|\r\n"
		    "EPRT |1|\r\n", 0 },
		{ 'c', longaddr, 0 },
		{ 'b', "200 a\r\n200 b\r\n", 0 },
	};
	/* FEAT keeps the backend's EPRT when active mode is on. */
	static const struct turn v[] = {
		{ 'c', "FEAT\r\n", 0 },
		{ 'b', "211-Features:\r\n EPRT\r\n EPSV\r\n211 End\r\n", 0 },
	};
#define REFUSED "504 PORT and EPRT must name your own address and a port above 1023\r\n"
#define SYNTAX "501 Syntax: PORT h1,h2,h3,h4,p1,p2 or EPRT |1|address|port|\r\n"

	env.active = active;
	SCRIPT(t, "200 PORT command successful.\r\n200 EPRT ok.\r\n"
	    "200 EPRT ok.\r\n150 Opening\r\n226 Done\r\n",
	    "PORT 10,0,0,9,195,81\r\nPORT 10,0,0,9,195,82\r\n"
	    "PORT 10,0,0,9,16,1\r\nRETR f\r\n", 0, &res);
	SCRIPT(u, REFUSED REFUSED REFUSED SYNTAX SYNTAX SYNTAX SYNTAX SYNTAX
	    SYNTAX SYNTAX SYNTAX "522 Network protocol not supported, use (1,2)\r\n"
	    SYNTAX "425 No data port available\r\n", "", 0, &res);
	SCRIPT(v, "211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n EPRT\r\n"
	    " EPSV\r\n211 End\r\n", "FEAT\r\n", 0, &res);
	snprintf(longaddr, sizeof(longaddr), "EPRT |2|%s|5000|\r\n",
	    "0000:0000:0000:0000:0000:0000:0000:0000:0001");
	/* (The model's PORT names the port plus one: 65536 is 256,0.) */
	SCRIPT(w, "200 a\r\n" SYNTAX SYNTAX SYNTAX "200 b\r\n" SYNTAX SYNTAX SYNTAX,
	    "PORT 10,0,0,9,19,137\r\nPORT 10,0,0,9,256,0\r\n", 0, &res);
	env.active = NULL;
#undef REFUSED
#undef SYNTAX
}

static void test_bounds(void)
{
	static char big[4200], line[9000];
	static struct turn t[] = { { 'c', big, 0 } };
	static struct turn d[] = { { 'c', "STAT /\r\n", 0 }, { 'b', line, 0 } };
	static const struct turn bad[] = { { 'b', "hello\r\n", 0 } };
	/* A reply is three digits, then a space, a hyphen or its end. */
	static const char *const malformed[] = { "2x0 a\r\n", "20x a\r\n",
	    "x00 a\r\n", "/00 a\r\n", "2:0 a\r\n", "20/ a\r\n", "200x\r\n",
	    "20\r\n" };
	struct turn one[] = { { 'c', "NOOP\r\n", 0 }, { 'b', NULL, 0 } };
	static const struct turn nines[] = {
		{ 'c', "NOOP\r\nNOOP\r\nNOOP\r\n", 0 },
		{ 'b', "999 a\r\n290 b\r\n209\r\n", 0 },
	};
	static const struct turn cut[] = {
		{ 'c', "NOOP", 1 }, { 'b', "200 partial", 1 },
	};

	memset(big, 'A', sizeof(big) - 1);
	memcpy(big, "NOOP ", 5);
	SCRIPT(t, "", "", -1, &res);
	CHECK_STR(res.why, "command line too long");
	memset(line, 'x', sizeof(line) - 1);
	memcpy(line, "211-", 4);
	SCRIPT(d, "", "STAT /\r\n", -1, &res);
	CHECK_STR(res.why, "backend reply line too long");
	SCRIPT(bad, "", "", -1, &res);
	CHECK_STR(res.why, "malformed backend reply");
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		one[1].bytes = malformed[i];
		SCRIPT(one, "", "NOOP\r\n", -1, &res);
		CHECK_STR(res.why, "malformed backend reply");
	}
	SCRIPT(nines, "999 a\r\n290 b\r\n209\r\n", "NOOP\r\nNOOP\r\nNOOP\r\n",
	    0, &res);
	/* Partial lines at the end go nowhere. */
	SCRIPT(cut, "", "", 0, &res);
}

static void test_held(void)
{
	/* Seventeen commands without a reply: the sixteenth waits in the
	 * client's buffer until the backend answers. */
	static char many[17 * 6 + 1];
	static struct turn t[] = {
		{ 'c', many, 0 },
		{ 'b', "200 a\r\n", 0 },
	};
	for (int i = 0; i < 17; i++)
		memcpy(many + i * 6, "NOOP\r\n", 6);
	SCRIPT(t, "200 a\r\n", "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n"
	    "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n"
	    "NOOP\r\nNOOP\r\nNOOP\r\n", 0, &res);
}

static void test_transfer_end_held(void)
{
	/* While the data connection is open, the transfer's final reply
	 * waits (150 does not, nor replies to other commands); at the
	 * backend's end it goes. */
	static const struct turn t[] = {
		{ 'c', "TYPE I\r\nRETR f\r\n", 0 },
		{ 'b', "200 Binary\r\n150 Opening\r\n226 Done\r\n", 0 },
	};
	static const struct turn e[] = {
		{ 'c', "RETR f\r\n", 0 },
		{ 'b', "150 Opening\r\n226 Done\r\n", 1 },
	};
	/* A refusal without a 1yz used no data connection: it goes at once,
	 * though the client's (connected, unused) one is open; so does a
	 * STOR's. The next transfer's end, after its 150, waits again. */
	static const struct turn refused[] = {
		{ 'c', "RETR missing\r\n", 0 },
		{ 'b', "550 Failed to open file.\r\n", 0 },
		{ 'c', "STOR ro/x\r\n", 0 },
		{ 'b', "553 Could not create file.\r\n", 0 },
		{ 'c', "RETR f\r\n", 0 },
		{ 'b', "150 Opening\r\n226 Done\r\n", 0 },
	};
	busy_now = 1;
	SCRIPT(t, "200 Binary\r\n150 Opening\r\n", "TYPE I\r\nRETR f\r\n", 0, &res);
	CHECK(res.left_down == strlen("226 Done\r\n"));
	SCRIPT(e, "150 Opening\r\n226 Done\r\n", "RETR f\r\n", 0, &res);
	SCRIPT(refused, "550 Failed to open file.\r\n553 Could not create file.\r\n"
	    "150 Opening\r\n", "RETR missing\r\nSTOR ro/x\r\nRETR f\r\n", 0, &res);
	CHECK(res.left_down == strlen("226 Done\r\n"));
	busy_now = 0;
	SCRIPT(t, "200 Binary\r\n150 Opening\r\n226 Done\r\n",
	    "TYPE I\r\nRETR f\r\n", 0, &res);
	/* A data connection that broke off: the transfer's 2yz becomes 426
	 * (not the 200 to TYPE, nor a 5yz). */
	broken_now = 1;
	SCRIPT(t, "200 Binary\r\n150 Opening\r\n426 Data connection broken; "
	    "transfer aborted\r\n", "TYPE I\r\nRETR f\r\n", 0, &res);
	SCRIPT(e, "150 Opening\r\n426 Data connection broken; transfer "
	    "aborted\r\n", "RETR f\r\n", 0, &res);
	/* Reported once, by the transfer's own final reply even when that
	 * already says failure: the next transfer's 226 stays. */
	{
		static const struct turn two[] = {
			{ 'c', "RETR f\r\n", 0 },
			{ 'b', "150 Opening\r\n426 Failure writing\r\n", 0 },
			{ 'c', "RETR g\r\n", 0 },
			{ 'b', "150 Opening\r\n226 Done\r\n", 0 },
		};
		SCRIPT(two, "150 Opening\r\n426 Failure writing\r\n"
		    "150 Opening\r\n226 Done\r\n", "RETR f\r\nRETR g\r\n", 0, &res);
	}
	broken_now = 0;
}

/* Whether a transfer command waits for its final reply: what decides
 * that a data connection breaking off now is a transfer's (ftp_data.c
 * charges the cut only then). Wherever the command is among those
 * waiting, until its final reply and not at its 1yz. */
static void test_transfer_pending(void)
{
	static struct relay r;
	static struct result out;
	static const char *const feed[][2] = {
		{ "c", "TYPE I\r\n" },		/* 0: no transfer */
		{ "b", "200 Binary\r\n" },		/* 0 */
		{ "c", "NOOP\r\nLIST\r\n" },	/* 1: behind the NOOP */
		{ "b", "200 NOOP ok\r\n" },		/* 1 */
		{ "b", "150 Here comes the listing\r\n" },	/* 1: a 1yz */
		{ "b", "226 Directory send OK\r\n" },	/* 0 */
		{ "c", "EPSV\r\n" },			/* 0 */
	};
	static const int want[] = { 0, 0, 1, 1, 1, 0, 0 };

	memset(&r, 0, sizeof(r));
	memset(&out, 0, sizeof(out));
	FILTER_SETUP(r.st);
	CHECK(filter_ftp_transfer_pending(r.st) == 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		buf_append(feed[i][0][0] == 'c' ? &r.cin : &r.bin, feed[i][1],
		    strlen(feed[i][1]));
		pump(&r, &out);
		CHECK(out.rc == 0);
		CHECK(filter_ftp_transfer_pending(r.st) == want[i]);
	}
	buf_reset(&r.cin);
	buf_reset(&r.bin);
	buf_reset(&r.tob);
	buf_reset(&r.toc);
}

static void test_abor(void)
{
	static const struct turn t[] = {
		{ 'c', "RETR f\r\n", 0 },
		{ 'b', "150 Opening\r\n", 0 },
		{ 'c', "\xff\xf4\xff\xf2" "ABOR\r\n", 0 },
		{ 'b', "426 Failure\r\n226 ABOR ok\r\n", 0 },
	};
	SCRIPT(t, "150 Opening\r\n426 Failure\r\n226 ABOR ok\r\n",
	    "RETR f\r\n\xff\xf4\xff\xf2" "ABOR\r\n", 0, &res);
	CHECK(aborts == 1);
}

/* Fill b with junk until only `leave` bytes of room are left. */
static void fill_to(struct buf *b, size_t leave)
{
	static char junk[BUF_CAP];

	memset(junk, 'x', sizeof(junk));
	buf_append(b, junk, buf_room(b) - leave);
}

static void put(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

/* The bytes of b after its first skip ones are text. */
static int holds(const struct buf *b, size_t skip, const char *text)
{
	return b->len - skip == strlen(text) &&
	    memcmp(buf_peek(b) + skip, text, strlen(text)) == 0;
}

/* A client that leaves its control connection unread: the client-bound
 * buffer nearly full. Nothing is lost or reordered for it. */
static void test_little_room(void)
{
	_Alignas(16) static uint8_t st[1024];
	struct buf cin = {0}, bin = {0}, tob = {0}, toc = {0};
	const char *why = NULL;
	size_t mark;

	/* A broken transfer's 426 does not fit: the mark is not spent, the
	 * 226 waits, and becomes the 426 once there is room. */
	memset(st, 0, sizeof(st));
	filter_ftp_setup(st, &env);
	put(&cin, "RETR f\r\n");
	CHECK(filter_ftp.up(st, &cin, &tob, &toc, 0, &why) == 0);
	put(&bin, "150 Opening\r\n");
	CHECK(filter_ftp.down(st, &bin, &toc, &tob, 0, &why) == 0);
	buf_reset(&toc);
	broken_left = 1;
	fill_to(&toc, 30);              /* a 226 would fit, the 426 does not */
	put(&bin, "226 Transfer complete.\r\n");
	CHECK(filter_ftp.down(st, &bin, &toc, &tob, 0, &why) == 0);
	CHECK(broken_left == 1 && bin.len == strlen("226 Transfer complete.\r\n"));
	buf_reset(&toc);                /* the client reads */
	CHECK(filter_ftp.down(st, &bin, &toc, &tob, 0, &why) == 0);
	CHECK(holds(&toc, 0, "426 Data connection broken; transfer aborted\r\n"));
	CHECK(broken_left == 0 && bin.len == 0);
	buf_reset(&toc);
	buf_reset(&tob);

	/* An answer of portier's that does not fit holds back the backend's
	 * later replies, however short: the client gets them in order, and
	 * the transfer after them is still known as one (held, 426). */
	memset(st, 0, sizeof(st));
	filter_ftp_setup(st, &env);
	put(&cin, "NOOP\r\nPBSZ 0\r\nNOOP\r\nRETR f\r\n");
	CHECK(filter_ftp.up(st, &cin, &tob, &toc, 0, &why) == 0);
	CHECK(holds(&tob, 0, "NOOP\r\nNOOP\r\nRETR f\r\n"));
	fill_to(&toc, 17);              /* "200 A": then 10 bytes, PBSZ's is 12 */
	mark = toc.len;
	put(&bin, "200 A\r\n200 B\r\n");
	CHECK(filter_ftp.down(st, &bin, &toc, &tob, 0, &why) == 0);
	CHECK(holds(&toc, mark, "200 A\r\n"));
	buf_reset(&toc);
	CHECK(filter_ftp.down(st, &bin, &toc, &tob, 0, &why) == 0);
	CHECK(holds(&toc, 0, "200 PBSZ=0\r\n200 B\r\n"));
	CHECK(filter_ftp_transfer_pending(st));
	buf_reset(&toc);
	broken_left = 1;
	put(&bin, "150 Opening\r\n226 Transfer complete.\r\n");
	CHECK(filter_ftp.down(st, &bin, &toc, &tob, 0, &why) == 0);
	CHECK(holds(&toc, 0, "150 Opening\r\n426 Data connection broken; transfer "
	    "aborted\r\n"));
	CHECK(!filter_ftp_transfer_pending(st));
	buf_reset(&toc);
	buf_reset(&tob);
	buf_reset(&bin);
	buf_reset(&cin);
	broken_left = 0;
}

int main(void)
{
	test_little_room();
	test_transfer_end_held();
	test_abor();
	test_transfer_pending();
	test_login();
	test_refusals();
	test_prot_c_optional();
	test_order();
	test_passive();
	test_feat();
	test_active();
	test_bounds();
	test_held();
	return CHECK_DONE();
}
