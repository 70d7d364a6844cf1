/* libFuzzer target for filter_smtp, the SMTP stream filter of the relay.
 *
 * The input is a client's byte stream and the choices of a model backend:
 *
 *   byte 0     flags: bit 0 the backend offers CHUNKING, bit 1 it says yes
 *              to STARTTLS, bit 2 its EHLO reply ends in STARTTLS (else in
 *              PIPELINING), bit 3 it ends its side once the client has,
 *              bit 4 it greets first (no hand-over took its greeting; else
 *              the filter is told, as a STARTTLS listener's relay tells it)
 *   byte 1     how many of the following bytes the client sends
 *   then       the client's bytes, then choices: chunk sizes (1 to 64; the
 *              rest at once when they are spent) for either
 *              side, and the answers the backend gives (354 or 554 to
 *              DATA, one line or several, success or not)
 *
 * The model backend reads what the filter lets through the way a lenient
 * server does (blanks before a verb, bare LF line ends, a "." line with
 * either ending, BDAT chunks in looser spellings when it offered CHUNKING,
 * read even when refused, a SASL response after each 334), written apart
 * from the filter. abort() marks a broken rule:
 *   - XCLIENT or XFORWARD never arrives where the backend reads a command;
 *   - the client never sees XCLIENT, XFORWARD or STARTTLS but in our own
 *     refusals (the backend names them only in its EHLO reply), never sees
 *     the backend's yes to STARTTLS nor a 220 it sends unasked (the model
 *     says one to any other command, by choice), and never gets our
 *     answer inside a multi-line reply;
 *   - what reaches the backend is never more than what the client sent,
 *     and what reaches the client never more than what the backend sent
 *     plus one short answer per client line (or per 1000 bytes of one).
 */
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOXC "550 5.7.0 XCLIENT is not permitted\r\n"
#define NOXF "550 5.7.0 XFORWARD is not permitted\r\n"
#define ANSWER_MAX 40

/* p[0..n) starts with keyword kw as a whole word, any case. */
static int starts(const uint8_t *p, size_t n, const char *kw)
{
	size_t k = strlen(kw), i;

	if (n < k)
		return 0;
	for (i = 0; i < k; i++)
		if (upper(p[i]) != kw[i])
			return 0;
	return i == n || !alnum(p[i]);
}

/* Occurrences of s in b, overlapping ones too. memmem, not a memcmp per
 * byte: each of those went through the sanitizers' memcmp hooks. */
static size_t count(const struct fz_bytes *b, const char *s)
{
	const uint8_t *p = fz_peek(b), *end = p + b->len, *q;
	size_t k = strlen(s), c = 0;

	while ((q = memmem(p, (size_t)(end - p), s, k)) != NULL) {
		c++;
		p = q + 1;
	}
	return c;
}

/* The model backend. */
struct server {
	enum { S_CMD, S_DATA, S_CHUNK, S_SASL, S_TLS } mode;
	uint64_t chunk;
	int chunking, tls_yes, starttls_last;
	struct fz_bytes line;	/* the line being read */
	struct fz_bytes out;	/* its replies, not yet delivered */
};

static void say(struct server *s, const char *text)
{
	fz_append(&s->out, text, strlen(text));
}

/* BDAT's size the way a server reads it: digits, then LAST or nothing. */
static int bdat(const uint8_t *p, size_t n, uint64_t *size)
{
	size_t i = 4, d = 0;

	if (i >= n || (p[i] != ' ' && p[i] != '\t'))
		return 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	for (*size = 0; i < n && p[i] >= '0' && p[i] <= '9' && d < 19; i++, d++)
		*size = *size * 10 + (uint64_t)(p[i] - '0');
	if (d == 0 || d > 18)
		return 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i < n && starts(p + i, n - i, "LAST"))
		i += 4;
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
		i++;
	return i == n;
}

static void command(struct server *s, const uint8_t *p, size_t n,
    struct choices *c)
{
	size_t i = 0;
	uint64_t size;

	while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
		n--;
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' ||
	    p[i] == '\v' || p[i] == '\f'))
		i++;
	p += i;
	n -= i;
	if (starts(p, n, "XCLIENT") || starts(p, n, "XFORWARD"))
		abort();	/* the authority reached the backend */
	if (starts(p, n, "EHLO")) {
		say(s, "250-fake.example\r\n250-XCLIENT NAME ADDR PORT\r\n");
		say(s, s->chunking ? "250-CHUNKING\r\n" : "250-SIZE 1000\r\n");
		say(s, "250-XFORWARD NAME ADDR\r\n");
		say(s, s->starttls_last ? "250-PIPELINING\r\n250 STARTTLS\r\n" :
		    "250-STARTTLS\r\n250 PIPELINING\r\n");
	} else if (starts(p, n, "DATA")) {
		if (pick(c) & 1) {
			say(s, "354 go ahead\r\n");
			s->mode = S_DATA;
		} else {
			say(s, "554 5.5.1 no valid recipients\r\n");
		}
	} else if (starts(p, n, "BDAT")) {
		if (!s->chunking) {
			say(s, "502 5.5.2 unknown command\r\n");
		} else if (!bdat(p, n, &size)) {
			say(s, "501 5.5.4 syntax\r\n");
		} else if (size > 0) {
			s->chunk = size;	/* read even if it fails */
			s->mode = S_CHUNK;
		} else {
			say(s, "250 2.0.0 chunk\r\n");
		}
	} else if (starts(p, n, "STARTTLS")) {
		if (s->tls_yes) {
			say(s, "220 2.0.0 Ready to start TLS\r\n");
			s->mode = S_TLS;
		} else {
			say(s, "454 4.7.0 TLS not available\r\n");
		}
	} else if (starts(p, n, "AUTH")) {
		say(s, "334 \r\n");
		s->mode = S_SASL;
	} else {
		switch (pick(c) % 4) {
		case 0: say(s, "250 2.0.0 ok\r\n"); break;
		case 1: say(s, "250-one\r\n250-two\r\n250 three\r\n"); break;
		case 2: say(s, "500 5.5.2 what\r\n"); break;
		default:
			/* A backend that starts TLS (or a new session) of its
			 * own accord: after the greeting, and as the first
			 * reply after a hand-over, no 220 is one. */
			say(s, "220 2.0.0 Ready to start TLS\r\n");
			s->mode = S_TLS;
			break;
		}
	}
}

/* Read what reached the backend: all of it, then drop it at once. */
static void serve(struct server *s, struct buf *from, struct choices *c)
{
	const uint8_t *p, *lf, *in = buf_peek(from);
	size_t n = from->len, i = 0, k;

	while (i < n) {
		if (s->mode == S_TLS)
			break;	/* opaque from here */
		if (s->mode == S_CHUNK) {
			k = n - i < s->chunk ? n - i : (size_t)s->chunk;
			i += k;
			if ((s->chunk -= k) == 0) {
				say(s, "250 2.0.0 chunk\r\n");
				s->mode = S_CMD;
			}
			continue;
		}
		lf = memchr(in + i, '\n', n - i);
		k = lf ? (size_t)(lf - (in + i)) + 1 : n - i;
		fz_append(&s->line, in + i, k);
		i += k;
		if (lf == NULL)
			break;
		p = fz_peek(&s->line);
		k = s->line.len;
		if (s->mode == S_DATA) {
			if ((k == 2 && p[0] == '.') ||
			    (k == 3 && p[0] == '.' && p[1] == '\r')) {
				say(s, "250 2.0.0 queued\r\n");
				s->mode = S_CMD;
			}
		} else if (s->mode == S_SASL) {
			if (pick(c) & 1) {
				say(s, "334 more\r\n");
			} else {
				say(s, "535 5.7.8 no\r\n");
				s->mode = S_CMD;
			}
		} else {
			command(s, p, k, c);
		}
		fz_reset(&s->line);
	}
	buf_consume(from, n);
}

/* The client's side: our answers never split a multi-line reply. */
static void client_check(const struct buf *b, int *multi)
{
	const uint8_t *p = buf_peek(b);
	size_t i = 0, k;

	while (i < b->len) {
		const uint8_t *lf = memchr(p + i, '\n', b->len - i);
		k = lf ? (size_t)(lf - (p + i)) + 1 : b->len - i;
		if (*multi && ((k == strlen(NOXC) && memcmp(p + i, NOXC, k) == 0) ||
		    (k == strlen(NOXF) && memcmp(p + i, NOXF, k) == 0)))
			abort();
		if (k >= 4)
			*multi = p[i + 3] == '-';
		i += k;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static _Alignas(16) uint8_t st[1024];
	static struct server s;
	static struct fz_bytes seen;
	struct buf cin = {0}, bin = {0}, tob = {0}, toc = {0};
	struct choices c;
	const uint8_t *client;
	size_t nclient, fed = 0, consumed = 0, lines = 0, to_backend = 0;
	size_t from_backend = 0, to_client = 0;
	const char *why = NULL;
	int ceof = 0, beof = 0, multi = 0, rc = 0, round;
	uint8_t flags;

	if (size < 2 || filter_smtp.state_size > sizeof(st))
		return 0;
	flags = data[0];
	nclient = data[1] < size - 2 ? data[1] : size - 2;
	client = data + 2;
	c.p = data + 2 + nclient;
	c.n = size - 2 - nclient;
	memset(st, 0, sizeof(st));
	/* Field by field: a memset would clear the stores' arrays too. */
	s.mode = S_CMD;
	s.chunk = 0;
	fz_reset(&s.line);
	fz_reset(&s.out);
	fz_reset(&seen);
	s.chunking = flags & 1;
	s.tls_yes = (flags >> 1) & 1;
	s.starttls_last = (flags >> 2) & 1;
	if (flags & 16)
		say(&s, "220-fake.example ESMTP\r\n220 hello\r\n");
	else
		filter_smtp_greeted(st);   /* conn_relay_start() after a hand-over */

	for (round = 0; round < 4096 && rc == 0; round++) {
		size_t before_c, before_b, k;
		int moved = 0;

		/* the client sends a piece */
		if (fed < nclient) {
			k = pick_chunk(&c);
			if (k > nclient - fed)
				k = nclient - fed;
			if (k > BUF_CAP - cin.len)
				k = BUF_CAP - cin.len;
			buf_append(&cin, client + fed, k);
			fed += k;
			moved = 1;
		}
		ceof = fed == nclient;
		before_c = cin.len;
		rc = filter_smtp.up(st, &cin, &tob, &toc, ceof, &why);
		if (rc < 0)
			break;
		for (size_t i = 0; i < before_c - cin.len; i++)
			lines += client[consumed + i] == '\n';
		consumed += before_c - cin.len;
		to_backend += tob.len;
		if (to_backend > consumed)
			abort();
		moved |= tob.len > 0 || before_c != cin.len;
		serve(&s, &tob, &c);

		/* the backend answers a piece */
		if (s.out.len > 0) {
			k = pick_chunk(&c);
			if (k > s.out.len)
				k = s.out.len;
			if (k > BUF_CAP - bin.len)
				k = BUF_CAP - bin.len;
			buf_append(&bin, fz_peek(&s.out), k);
			fz_consume(&s.out, k);
			from_backend += k;
			moved = 1;
		}
		beof = (flags & 8) && ceof && s.out.len == 0;
		before_b = bin.len;
		rc = filter_smtp.down(st, &bin, &toc, &tob, beof, &why);
		moved |= before_b != bin.len || toc.len > 0;

		/* the client reads */
		to_client += toc.len;
		if (to_client > from_backend + ANSWER_MAX * (lines + consumed / 1000 + 1))
			abort();
		client_check(&toc, &multi);
		fz_append(&seen, buf_peek(&toc), toc.len);
		buf_consume(&toc, toc.len);
		if (!moved && ceof && s.out.len == 0)
			break;
	}
	if (count(&seen, "XCLIENT") != count(&seen, NOXC) ||
	    count(&seen, "XFORWARD") != count(&seen, NOXF) ||
	    count(&seen, "STARTTLS") != 0 || count(&seen, "Ready to start TLS"))
		abort();
	buf_reset(&cin);
	buf_reset(&bin);
	buf_reset(&tob);
	buf_reset(&toc);
	return 0;
}
