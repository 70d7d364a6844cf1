#include "filter.h"
#include "filter_ftp.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/*
 * FTP's control channel after TLS (RFC 959, RFC 4217). The client's
 * commands are framed into lines and judged by verb against a list:
 *   - PBSZ and PROT are answered here (the TLS is portier's, not the
 *     backend's); PROT C only with data_protection = optional;
 *   - CCC (back to plaintext), REIN (a new session under the same TLS)
 *     and AUTH again are refused here;
 *   - PORT and EPRT (active mode) are refused here (502) unless the
 *     connection takes active mode (env->active): then their address is
 *     read here and judged there, and what reaches the backend is a PORT
 *     or EPRT of the connection's own, never the client's line;
 *   - a verb not on the list is answered 502 here and never reaches the
 *     backend, so no spelling the filter does not know can carry a
 *     refused command past it (leading blanks and Telnet IAC pairs, as
 *     before ABOR, are skipped to find the verb; a line with a NUL or a
 *     bare CR in it is refused whole).
 * The backend's replies are framed (RFC 959 4.2); 227 and 229 are
 * rewritten to a data port of portier's, and the reply to FEAT gains
 * AUTH TLS, PBSZ and PROT and loses what portier refuses (CCC, and EPRT
 * when active mode is off). A
 * line inside a multi-line reply that starts like a reply of its own is
 * padded with a space, so that no client reads a backend's address there.
 *
 * Replies come in command order, so answers of our own wait behind the
 * replies still owed: a ring holds one entry per command passed (popped by
 * its final reply, 2yz-5yz) or answered here (sent once everything before
 * it was). ABOR during a transfer keeps the count: the transfer's command
 * gets 426, ABOR its own 226. The final reply to a transfer command
 * waits in `in` while the connection says a data connection is open.
 */

#define CMD_MAX		4096	/* a command line with its CRLF (vsftpd's) */
#define LINE_MAX	8192	/* a line of a backend reply */
#define RING		16	/* commands awaiting a reply, answers queued */

enum kind { K_PASS, K_PASV, K_EPSV, K_FEAT, K_XFER, K_ABOR, K_EPRT, K_ANSWER };
enum answer { A_PBSZ, A_PROT_P, A_PROT_C, A_PROT_C_NO, A_PROT_OTHER,
	A_PROT_SYNTAX, A_CCC, A_REIN, A_AUTH, A_ACTIVE, A_UNKNOWN, A_SYNTAX,
	A_SECURITY, A_ACTIVE_SYNTAX, A_ACTIVE_REFUSED, A_NO_DATA_PORT,
	A_EPRT_FAMILY, A_NONE };

static const char *const answers[] = {
	[A_PBSZ] = "200 PBSZ=0\r\n",
	[A_PROT_P] = "200 Protection level set to Private\r\n",
	[A_PROT_C] = "200 Protection level set to Clear\r\n",
	[A_PROT_C_NO] = "534 Data connections must be protected: use PROT P\r\n",
	[A_PROT_OTHER] = "536 Protection level not supported; use PROT P\r\n",
	[A_PROT_SYNTAX] = "501 Syntax: PROT P\r\n",
	[A_CCC] = "533 The control connection stays protected\r\n",
	[A_REIN] = "502 REIN not implemented\r\n",
	[A_AUTH] = "503 TLS is already active\r\n",
	[A_ACTIVE] = "502 Active mode is not available; use PASV or EPSV\r\n",
	[A_UNKNOWN] = "502 Command not implemented\r\n",
	[A_SYNTAX] = "501 Syntax error in command line\r\n",
	[A_SECURITY] = "502 Command not implemented under TLS\r\n",
	[A_ACTIVE_SYNTAX] = "501 Syntax: PORT h1,h2,h3,h4,p1,p2 or EPRT |1|address|port|\r\n",
	[A_ACTIVE_REFUSED] = "504 PORT and EPRT must name your own address and a port above 1023\r\n",
	[A_NO_DATA_PORT] = "425 No data port available\r\n",
	[A_EPRT_FAMILY] = "522 Network protocol not supported, use (1,2)\r\n",
};

/* Verbs passed to the backend (RFC 959, 2389, 2428, 3659, 2640 and the
 * X- forms of RFC 775), and those answered here. */
static const char *const passed[] = {
	"USER", "PASS", "ACCT", "CWD", "CDUP", "SMNT", "QUIT", "PASV", "TYPE",
	"STRU", "MODE", "RETR", "STOR", "STOU", "APPE", "ALLO", "REST", "RNFR",
	"RNTO", "ABOR", "DELE", "RMD", "MKD", "PWD", "LIST", "NLST", "SITE",
	"SYST", "STAT", "HELP", "NOOP", "EPSV", "MLSD", "MLST", "SIZE", "MDTM",
	"FEAT", "OPTS", "LANG", "XCWD", "XCUP", "XMKD", "XRMD", "XPWD", "MFMT",
	"HOST", "CLNT",
};

struct ftp_state {
	const struct filter_ftp_env *env;
	uint8_t ring[RING];	/* enum kind, or K_ANSWER + enum answer */
	uint8_t rhead, rlen;
	uint8_t prot_c;		/* PROT C in force */
	uint8_t dmid;		/* down: inside a multi-line reply */
	uint8_t dfeat;		/* down: that reply answers FEAT */
	uint16_t dcode;		/* down: its code */
	uint8_t xprelim;	/* the transfer at the head had its 1yz */
};

void filter_ftp_setup(void *st, const struct filter_ftp_env *env)
{
	((struct ftp_state *)st)->env = env;
}

int filter_ftp_private(const void *st)
{
	return !((const struct ftp_state *)st)->prot_c;
}

int filter_ftp_transfer_pending(const void *st)
{
	const struct ftp_state *s = st;

	for (unsigned i = 0; i < s->rlen; i++)
		if (s->ring[(s->rhead + i) % RING] == K_XFER)
			return 1;
	return 0;
}

static int letter(uint8_t c)
{
	return filter_upper(c) >= 'A' && filter_upper(c) <= 'Z';
}

/* PROT's answer for the argument p[0..n). */
static enum answer prot(struct ftp_state *st, const uint8_t *p, size_t n)
{
	while (n > 0 && p[n - 1] == ' ')
		n--;
	if (n != 1)
		return A_PROT_SYNTAX;
	switch (filter_upper(p[0])) {
	case 'P':
		st->prot_c = 0;
		return A_PROT_P;
	case 'C':
		if (st->env == NULL || !st->env->prot_c_ok)
			return A_PROT_C_NO;
		st->prot_c = 1;
		return A_PROT_C;
	case 'S':
	case 'E':
		return A_PROT_OTHER;
	default:
		return A_PROT_SYNTAX;
	}
}

/* What to do with the command line p[0..len): *what is the answer given
 * here (A_NONE: pass it, of kind *k). */
static void classify(struct ftp_state *st, const uint8_t *p, size_t len,
    enum kind *k, enum answer *what, size_t *arg)
{
	size_t n = filter_unterminated(p, len), i = 0, v, e;

	*k = K_PASS;
	*what = A_NONE;
	for (size_t j = 0; j < n; j++)
		if (p[j] == '\0' || p[j] == '\r') {
			*what = A_SYNTAX;
			return;
		}
	for (;;) {
		if (i < n && p[i] == ' ')
			i++;
		else if (i + 1 < n && p[i] == 0xff)
			i += 2;
		else
			break;
	}
	for (e = i; e < n && letter(p[e]); e++)
		continue;
	if (e == i || (e < n && p[e] != ' ')) {
		*what = A_UNKNOWN;
		return;
	}
	for (v = e; v < n && p[v] == ' '; v++)
		continue;
	*arg = v;
	/* The verb is p[i..e), its argument p[v..n). */
	{
		if (filter_word_is(p + i, e - i, "PBSZ"))
			*what = A_PBSZ;
		else if (filter_word_is(p + i, e - i, "PROT"))
			*what = prot(st, p + v, n - v);
		else if (filter_word_is(p + i, e - i, "CCC"))
			*what = A_CCC;
		else if (filter_word_is(p + i, e - i, "REIN"))
			*what = A_REIN;
		else if (filter_word_is(p + i, e - i, "AUTH"))
			*what = A_AUTH;
		else if (filter_word_is(p + i, e - i, "ADAT") ||
		    filter_word_is(p + i, e - i, "MIC") ||
		    filter_word_is(p + i, e - i, "CONF") ||
		    filter_word_is(p + i, e - i, "ENC"))
			*what = A_SECURITY;
		else if (filter_word_is(p + i, e - i, "PORT") ||
		    filter_word_is(p + i, e - i, "EPRT"))
			*what = A_ACTIVE;
		else {
			*what = A_UNKNOWN;
			for (size_t j = 0; j < sizeof(passed) / sizeof(passed[0]); j++)
				if (filter_word_is(p + i, e - i, passed[j]))
					*what = A_NONE;
		}
		if (*what == A_ACTIVE && filter_word_is(p + i, e - i, "EPRT"))
			*k = K_EPRT;
		if (*what == A_NONE) {
			if (filter_word_is(p + i, e - i, "PASV"))
				*k = K_PASV;
			else if (filter_word_is(p + i, e - i, "EPSV"))
				*k = K_EPSV;
			else if (filter_word_is(p + i, e - i, "FEAT"))
				*k = K_FEAT;
			else if (filter_word_is(p + i, e - i, "ABOR"))
				*k = K_ABOR;
			else if (filter_word_is(p + i, e - i, "RETR") ||
			    filter_word_is(p + i, e - i, "STOR") ||
			    filter_word_is(p + i, e - i, "STOU") ||
			    filter_word_is(p + i, e - i, "APPE") ||
			    filter_word_is(p + i, e - i, "LIST") ||
			    filter_word_is(p + i, e - i, "NLST") ||
			    filter_word_is(p + i, e - i, "MLSD"))
				*k = K_XFER;
		}
	}
}

static void push(struct ftp_state *st, uint8_t e)
{
	st->ring[(st->rhead + st->rlen) % RING] = e;
	st->rlen++;
}

static void pop(struct ftp_state *st)
{
	st->rhead = (uint8_t)((st->rhead + 1) % RING);
	st->rlen--;
	st->xprelim = 0;
}

static uint8_t head(const struct ftp_state *st)
{
	return st->ring[st->rhead];
}

/* Send the answers at the head of the ring: nothing is owed before them.
 * 1 when none is left at the head, 0 when one waits for room (no backend
 * reply may overtake it), or -1 (*why set). */
static int release(struct ftp_state *st, struct buf *to_client,
    const char **why)
{
	int r;

	while (!st->dmid && st->rlen > 0 && head(st) >= K_ANSWER) {
		const char *a = answers[head(st) - K_ANSWER];
		if ((r = filter_put(to_client, a, strlen(a), why)) <= 0)
			return r;
		pop(st);
	}
	return 1;
}

static enum answer active(struct ftp_state *st, int eprt, const uint8_t *p,
    size_t n, char *cmd, size_t size);

static int ftp_up(void *vst, struct buf *in, struct buf *out,
    struct buf *back, int eof, const char **why)
{
	struct ftp_state *st = vst;
	const uint8_t *p, *lf;
	char cmd[96];
	size_t lim, len, arg;
	enum answer what;
	enum kind k;
	int r;

	if (release(st, back, why) < 0)
		return -1;
	while (in->len > 0) {
		p = buf_peek(in);
		lim = in->len < CMD_MAX ? in->len : CMD_MAX;
		if ((lf = memchr(p, '\n', lim)) == NULL) {
			if (in->len >= CMD_MAX) {
				*why = "command line too long";
				return -1;
			}
			if (eof)	/* a partial command never runs */
				buf_consume(in, in->len);
			return 0;
		}
		if (st->rlen == RING)
			return 0;	/* called again when a reply frees one */
		len = (size_t)(lf - p) + 1;
		classify(st, p, len, &k, &what, &arg);
		cmd[0] = '\0';
		if (what == A_ACTIVE && st->env != NULL && st->env->active != NULL) {
			what = active(st, k == K_EPRT, p + arg,
			    filter_unterminated(p, len) - arg, cmd,
			    sizeof(cmd));
			k = K_PASS;
		}
		if (what == A_NONE) {
			/* The line itself, or the command sent in its place. */
			if ((r = cmd[0] ? filter_put(out, cmd, strlen(cmd),
			    why) : filter_put(out, p, len, why)) <= 0)
				return r;
			push(st, (uint8_t)k);
			if (k == K_ABOR && st->env != NULL && st->env->abort != NULL)
				st->env->abort(st->env->ctx);
		} else if (st->rlen == 0 && !st->dmid) {
			if ((r = filter_put(back, answers[what],
			    strlen(answers[what]), why)) <= 0)
				return r;
		} else {
			push(st, (uint8_t)(K_ANSWER + what));
		}
		buf_consume(in, len);
	}
	return 0;
}

/* The code of a line starting "ddd" followed by ' ', '-' or its end; -1. */
static int line_code(const uint8_t *p, size_t n)
{
	n = filter_unterminated(p, n);
	if (n < 3 || p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9' ||
	    p[2] < '0' || p[2] > '9' || (n > 3 && p[3] != ' ' && p[3] != '-'))
		return -1;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* Up to count numbers of at most max, separated by sep, from p[*i..n). */
static int numbers(const uint8_t *p, size_t n, size_t *i, unsigned *v,
    int count, char sep, unsigned max)
{
	for (int k = 0; k < count; k++) {
		size_t d = 0;
		if (k > 0) {
			if (*i >= n || p[*i] != sep)
				return -1;
			(*i)++;
		}
		for (v[k] = 0; *i < n && p[*i] >= '0' && p[*i] <= '9' && d < 6;
		    (*i)++, d++)
			v[k] = v[k] * 10 + (unsigned)(p[*i] - '0');
		if (d == 0 || v[k] > max)
			return -1;
	}
	return 0;
}

/* PORT's argument "h1,h2,h3,h4,p1,p2" (RFC 959 4.1.2) or EPRT's
 * "<d>af<d>address<d>port<d>" (RFC 2428 2), p[0..n) without its line end:
 * judged by the connection, which fills cmd with the command the backend
 * gets instead (A_NONE), or the answer the client gets. */
static enum answer active(struct ftp_state *st, int eprt, const uint8_t *p,
    size_t n, char *cmd, size_t size)
{
	uint8_t addr[16];
	unsigned v[6], port;
	size_t i = 0, cl;
	int family, r;

	while (n > 0 && p[n - 1] == ' ')
		n--;
	if (!eprt) {
		if (numbers(p, n, &i, v, 6, ',', 255) < 0 || i != n)
			return A_ACTIVE_SYNTAX;
		for (int k = 0; k < 4; k++)
			addr[k] = (uint8_t)v[k];
		family = AF_INET;
		port = v[4] * 256 + v[5];
	} else {
		char text[INET6_ADDRSTRLEN];
		uint8_t d;
		size_t a;
		if (n < 7 || (d = p[0]) < 33 || d > 126)
			return A_ACTIVE_SYNTAX;
		i = 1;
		if (numbers(p, n, &i, v, 1, 0, 65535) < 0 || i >= n || p[i] != d)
			return A_ACTIVE_SYNTAX;
		for (a = ++i; i < n && p[i] != d; i++)
			continue;
		if (i >= n || i == a || i - a >= sizeof(text))
			return A_ACTIVE_SYNTAX;
		memcpy(text, p + a, i - a);
		text[i - a] = '\0';
		i++;
		if (numbers(p, n, &i, v + 1, 1, 0, 65535) < 0 || i + 1 != n ||
		    p[i] != d)
			return A_ACTIVE_SYNTAX;
		if (v[0] != 1 && v[0] != 2)
			return A_EPRT_FAMILY;
		family = v[0] == 1 ? AF_INET : AF_INET6;
		if (inet_pton(family, text, addr) != 1)
			return A_ACTIVE_SYNTAX;
		port = v[1];
	}
	if (port == 0)
		return A_ACTIVE_SYNTAX;
	r = st->env->active(st->env->ctx, family, addr, port, cmd, size);
	if (r == -1)
		return A_ACTIVE_REFUSED;
	if (r < 0 || (cl = strnlen(cmd, size)) == 0 || cl == size ||
	    cmd[cl - 1] != '\n')
		return A_NO_DATA_PORT;
	return A_NONE;
}

/* The new 227 or 229 for the backend's p[0..n) (one line, code known).
 * The address is read as RFC 1123 4.1.2.6 tells clients to: the first
 * digit starts "h1,h2,h3,h4,p1,p2"; EPSV's is "(<d><d><d>port<d>)". */
static void passive(struct ftp_state *st, int code, const uint8_t *p,
    size_t n, char *reply, size_t size)
{
	uint8_t addr[4], pub[4] = {0};
	unsigned v[6], port, pub_port = 0;
	size_t i = 4;
	int epsv = code == 229, r;

	n = filter_unterminated(p, n);
	if (!epsv) {
		while (i < n && (p[i] < '0' || p[i] > '9'))
			i++;
		if (numbers(p, n, &i, v, 6, ',', 255) < 0)
			goto bad;
		for (int k = 0; k < 4; k++)
			addr[k] = (uint8_t)v[k];
		port = v[4] * 256 + v[5];
	} else {
		const uint8_t *o = memchr(p, '(', n);
		uint8_t d;
		if (o == NULL || (size_t)(o - p) + 5 > n)
			goto bad;
		i = (size_t)(o - p) + 1;
		d = p[i];
		if (d < 33 || d > 126 || p[i + 1] != d || p[i + 2] != d)
			goto bad;
		i += 3;
		if (numbers(p, n, &i, v, 1, 0, 65535) < 0 || i >= n || p[i] != d)
			goto bad;
		port = v[0];
	}
	if (port == 0)
		goto bad;
	if (st->env == NULL || st->env->passive == NULL) {
		snprintf(reply, size, "425 Passive mode is not available\r\n");
		return;
	}
	r = st->env->passive(st->env->ctx, epsv, epsv ? NULL : addr, port,
	    pub, &pub_port);
	if (r == -2) {
		snprintf(reply, size, "425 PASV names IPv4 addresses only: use EPSV\r\n");
		return;
	}
	if (r < 0 || pub_port == 0 || pub_port > 65535) {
		snprintf(reply, size, "425 No data port available\r\n");
		return;
	}
	if (epsv)
		snprintf(reply, size, "229 Entering Extended Passive Mode "
		    "(|||%u|)\r\n", pub_port);
	else
		snprintf(reply, size, "227 Entering Passive Mode "
		    "(%u,%u,%u,%u,%u,%u)\r\n", pub[0], pub[1], pub[2], pub[3],
		    pub_port / 256, pub_port % 256);
	return;
bad:
	snprintf(reply, size, "425 Cannot read the server's passive address\r\n");
}

/* A FEAT line of the backend's that portier takes out: what it refuses,
 * and what it says itself. */
static int feat_drop(const struct ftp_state *st, const uint8_t *p, size_t n)
{
	size_t i = 0, e;

	n = filter_unterminated(p, n);
	while (i < n && p[i] == ' ')
		i++;
	for (e = i; e < n && letter(p[e]); e++)
		continue;
	return (filter_word_is(p + i, e - i, "EPRT") &&
	    (st->env == NULL || st->env->active == NULL)) ||
	    filter_word_is(p + i, e - i, "CCC") ||
	    filter_word_is(p + i, e - i, "AUTH") ||
	    filter_word_is(p + i, e - i, "PBSZ") ||
	    filter_word_is(p + i, e - i, "PROT") ||
	    filter_word_is(p + i, e - i, "ADAT");
}

#define OURS " AUTH TLS\r\n PBSZ\r\n PROT\r\n"

static const char cut426[] = "426 Data connection broken; transfer aborted\r\n";

/* A whole reply came back: its command's entry goes. */
static void complete(struct ftp_state *st, int code)
{
	if (code >= 200 && st->rlen > 0 && head(st) < K_ANSWER)
		pop(st);
}

static int ftp_down(void *vst, struct buf *in, struct buf *out,
    struct buf *back, int eof, const char **why)
{
	struct ftp_state *st = vst;
	const uint8_t *p, *lf;
	char reply[128];
	size_t lim, len;
	int code, r, pad, cut;

	(void)back;
	for (;;) {
		if ((r = release(st, out, why)) <= 0)
			return r;
		if (in->len == 0)
			return 0;
		p = buf_peek(in);
		lim = in->len < LINE_MAX ? in->len : LINE_MAX;
		if ((lf = memchr(p, '\n', lim)) == NULL) {
			if (in->len >= LINE_MAX) {
				*why = "backend reply line too long";
				return -1;
			}
			if (eof)	/* cut off: never a whole reply */
				buf_consume(in, in->len);
			return 0;
		}
		len = (size_t)(lf - p) + 1;
		code = line_code(p, len);
		if (st->dmid) {
			int ends = code == st->dcode &&
			    filter_unterminated(p, len) >= 3 &&
			    (filter_unterminated(p, len) == 3 || p[3] == ' ');
			if (st->dfeat && !ends && feat_drop(st, p, len)) {
				buf_consume(in, len);
				continue;
			}
			/* A line inside that a client could take for the end
			 * ("ddd " of another code) is padded (RFC 959 4.2). */
			pad = !ends && code >= 0 &&
			    (filter_unterminated(p, len) == 3 || p[3] == ' ');
			if (buf_room(out) < len + pad)
				return 0;
			if ((pad && filter_put(out, " ", 1, why) < 0) ||
			    filter_put(out, p, len, why) < 0)
				return -1;
			buf_consume(in, len);
			if (ends) {
				st->dmid = 0;
				complete(st, st->dcode);
			}
			continue;
		}
		if (code < 0) {
			*why = "malformed backend reply";
			return -1;
		}
		/* A transfer's end waits for its data connection's, once
		 * the server said (1yz) that it uses one: a refusal without a
		 * 1yz (550 no such file) used none, and the client, whose
		 * data connection may be open and unused, waits for it. */
		if (code >= 100 && code < 200 && st->rlen > 0 && head(st) == K_XFER)
			st->xprelim = 1;
		if (code >= 200 && !eof && st->rlen > 0 && head(st) == K_XFER &&
		    st->xprelim && st->env != NULL && st->env->busy != NULL &&
		    st->env->busy(st->env->ctx))
			return 0;
		if (filter_unterminated(p, len) > 3 && p[3] == '-') {
			if (code == 227 || code == 229) {
				*why = "multi-line passive reply";
				return -1;
			}
			st->dfeat = code == 211 && st->rlen > 0 &&
			    head(st) == K_FEAT;
			if (buf_room(out) < len +
			    (st->dfeat ? strlen(OURS) : 0))
				return 0;
			if (filter_put(out, p, len, why) < 0 || (st->dfeat &&
			    filter_put(out, OURS, strlen(OURS), why) < 0))
				return -1;
			st->dmid = 1;
			st->dcode = (uint16_t)code;
			buf_consume(in, len);
			continue;
		}
		/* A broken data connection is reported once, by the final
		 * reply of the transfer it belonged to, whatever its code;
		 * asked only once the 426 would fit, as asking spends it. */
		cut = code >= 200 && st->rlen > 0 && head(st) == K_XFER &&
		    st->env != NULL && st->env->broken != NULL;
		if (cut && buf_room(out) < sizeof(cut426) - 1)
			return 0;
		cut = cut && st->env->broken(st->env->ctx);
		if (cut && code < 300) {
			if ((r = filter_put(out, cut426, strlen(cut426),
			    why)) <= 0)
				return r;
		} else if (code == 227 || code == 229) {
			/* Never let the backend's own address through. */
			if (buf_room(out) < sizeof(reply))
				return 0;
			passive(st, code, p, len, reply, sizeof(reply));
			if (filter_put(out, reply, strlen(reply), why) < 0)
				return -1;
		} else if ((r = filter_put(out, p, len, why)) <= 0) {
			return r;
		}
		buf_consume(in, len);
		complete(st, code);
	}
}

const struct filter_ops filter_ftp = {
	.name = "ftp",
	.state_size = sizeof(struct ftp_state),
	.up = ftp_up,
	.down = ftp_down,
};
