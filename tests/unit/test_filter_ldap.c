/* The LDAP stream filter as the relay drives it: client bytes into `in`,
 * split at every byte; what reaches `out` must be the stream without its
 * StartTLS requests, each answered on `back`; a partial message is held
 * while more may come and passed on at the end of the stream. Going down,
 * the backend's messages pass untouched and the answers land between
 * them, never inside one, split at every byte; they wait for room, are
 * bounded, go at once once the backend's bytes are not LDAP, and are
 * delivered at the backend's end. */
#include "ber.h"
#include "check.h"
#include "filter.h"
#include "ldap_guard.h"

#include <stdio.h>

static const uint8_t starttls[] = {
	0x30, 0x1d, 0x02, 0x01, 0x07, 0x77, 0x18, 0x80, 0x16,
	'1', '.', '3', '.', '6', '.', '1', '.', '4', '.', '1', '.', '1', '4', '6', '6',
	'.', '2', '0', '0', '3', '7'};
/* The same request with messageID 7 written in five octets (BER allows
 * leading zeros): still framed, still answered with messageID 7. */
static const uint8_t starttls_long_id[] = {
	0x30, 0x21, 0x02, 0x05, 0x00, 0x00, 0x00, 0x00, 0x07, 0x77, 0x18, 0x80, 0x16,
	'1', '.', '3', '.', '6', '.', '1', '.', '4', '.', '1', '.', '1', '4', '6', '6',
	'.', '2', '0', '0', '3', '7'};
static const uint8_t search[] = {
	0x30, 0x0c, 0x02, 0x01, 0x02, 0x63, 0x07, 0x04, 0x00, 0x0a, 0x01, 0x00, 0x87, 0x00};

struct run {
	struct buf in, out, back;
	_Alignas(16) uint8_t st[256];
};

/* Feeds stream in pieces of step bytes (0: whole), calling the filter as
 * the relay would after every read; eof after the last piece. */
static int feed(struct run *r, const uint8_t *p, size_t n, size_t step, int eof)
{
	const char *why = NULL;
	size_t fed = 0;

	memset(r, 0, sizeof(*r));
	while (fed < n) {
		size_t k = step && n - fed > step ? step : n - fed;
		buf_append(&r->in, p + fed, k);
		fed += k;
		if (filter_ldap.up(r->st, &r->in, &r->out, &r->back, 0, &why) < 0)
			return -1;
	}
	if (eof && filter_ldap.up(r->st, &r->in, &r->out, &r->back, 1, &why) < 0)
		return -1;
	return 0;
}

static void done(struct run *r)
{
	if (filter_ldap.cleanup)
		filter_ldap.cleanup(r->st);
	buf_reset(&r->in);
	buf_reset(&r->out);
	buf_reset(&r->back);
}

/* --- The backend's side: portier's answers go between its messages. --- */

#define BIG 200000

/* Both directions of one connection, as the relay holds them. */
struct pipe {
	_Alignas(16) uint8_t st[256];
	struct buf cin, tob, bin, toc;	/* client in, to backend, backend in, to client */
	uint8_t got[BIG];		/* what reached the client, drained */
	size_t got_len;
};

static void pipe_init(struct pipe *p)
{
	memset(p, 0, sizeof(*p));
	CHECK(filter_ldap.state_size <= sizeof(p->st));
}

static void pipe_done(struct pipe *p)
{
	if (filter_ldap.cleanup)
		filter_ldap.cleanup(p->st);
	/* As the relay frees it: memory it still points to leaks. */
	memset(p->st, 0, sizeof(p->st));
	buf_reset(&p->cin);
	buf_reset(&p->tob);
	buf_reset(&p->bin);
	buf_reset(&p->toc);
}

static int up(struct pipe *p, int eof)
{
	const char *why = NULL;

	return filter_ldap.up(p->st, &p->cin, &p->tob, &p->toc, eof, &why);
}

static int down(struct pipe *p, int eof)
{
	const char *why = NULL;
	size_t n;

	if (filter_ldap.down != NULL)
		return filter_ldap.down(p->st, &p->bin, &p->toc, &p->tob, eof, &why);
	/* No down side (as it was): the relay reads the backend's bytes
	 * straight into the client-bound buffer, as far as it has room. */
	n = p->bin.len < buf_room(&p->toc) ? p->bin.len : buf_room(&p->toc);
	if (n && buf_append(&p->toc, buf_peek(&p->bin), n) == 0)
		buf_consume(&p->bin, n);
	return 0;
}

/* The client reads everything portier has for it. */
static void client_reads(struct pipe *p)
{
	if (p->toc.len && p->got_len + p->toc.len <= BIG) {
		memcpy(p->got + p->got_len, buf_peek(&p->toc), p->toc.len);
		p->got_len += p->toc.len;
	}
	buf_consume(&p->toc, p->toc.len);
}

/* The backend sends p[0..n) in pieces of step bytes; the relay runs the
 * filter after each and the client reads. */
static void backend_sends(struct pipe *pp, const uint8_t *p, size_t n, size_t step)
{
	for (size_t fed = 0; fed < n;) {
		size_t k = step && n - fed > step ? step : n - fed;
		CHECK(buf_append(&pp->bin, p + fed, k) == 0);
		fed += k;
		CHECK(down(pp, 0) == 0);
		client_reads(pp);
	}
}

static size_t tlv(uint8_t *dst, uint8_t tag, const uint8_t *c, size_t n)
{
	size_t h = 0;

	dst[h++] = tag;
	if (n < 0x80) {
		dst[h++] = (uint8_t)n;
	} else if (n < 0x100) {
		dst[h++] = 0x81;
		dst[h++] = (uint8_t)n;
	} else if (n < 0x10000) {
		dst[h++] = 0x82;
		dst[h++] = (uint8_t)(n >> 8);
		dst[h++] = (uint8_t)n;
	} else {
		dst[h++] = 0x83;
		dst[h++] = (uint8_t)(n >> 16);
		dst[h++] = (uint8_t)(n >> 8);
		dst[h++] = (uint8_t)n;
	}
	memmove(dst + h, c, n);
	return h + n;
}

/* A backend message: messageID 2 (the search), op with body bytes of 'x'. */
static size_t entry(uint8_t *dst, uint8_t op, size_t body)
{
	static uint8_t tmp[BIG], inner[BIG];
	size_t n;

	memset(tmp, 'x', body);
	inner[0] = 0x02;
	inner[1] = 0x01;
	inner[2] = 0x02;
	n = 3 + tlv(inner + 3, op, tmp, body);
	return tlv(dst, 0x30, inner, n);
}

/* The same as OpenLDAP's liblber writes it: every length in four octets
 * (0x84), however short. */
static size_t entry84(uint8_t *dst, uint8_t op, size_t body)
{
	size_t n = 0;

	memcpy(dst, "\x30\x84\x00\x00\x00\x00\x02\x01\x02", 9);
	n = 9;
	dst[n++] = op;
	dst[n++] = 0x84;
	dst[n++] = (uint8_t)(body >> 24);
	dst[n++] = (uint8_t)(body >> 16);
	dst[n++] = (uint8_t)(body >> 8);
	dst[n++] = (uint8_t)body;
	memset(dst + n, 'x', body);
	n += body;
	dst[4] = (uint8_t)((n - 6) >> 8);
	dst[5] = (uint8_t)(n - 6);
	return n;
}

/* A StartTLS with messageID id (two octets, so every one is as long). */
static size_t starttls_id(uint8_t *dst, unsigned id)
{
	uint8_t inner[64];
	size_t n = 0;

	inner[n++] = 0x02;
	inner[n++] = 0x02;
	inner[n++] = (uint8_t)(id >> 8);
	inner[n++] = (uint8_t)id;
	inner[n++] = 0x77;
	inner[n++] = 0x18;
	inner[n++] = 0x80;
	inner[n++] = 0x16;
	memcpy(inner + n, "1.3.6.1.4.1.1466.20037", 22);
	n += 22;
	return tlv(dst, 0x30, inner, n);
}

/* The length of portier's answer to a StartTLS with messageID id. */
static size_t alen(uint32_t id)
{
	uint8_t out[128];
	size_t len = 0;

	CHECK(ber_ldap_result(out, sizeof(out), &len, id, BER_LDAP_EXTENDED_RES, 1,
	    "TLS is already active", "1.3.6.1.4.1.1466.20037") == 0);
	return len;
}

struct frame {
	size_t at, len;
	unsigned op;
	uint32_t msgid;
};

/* The client's stream p[0..n) read as LDAPMessages, as a client reads it:
 * how many frames (at most max into f), or -1 if a frame is not one or
 * the stream does not end on a boundary. */
static int frames(const uint8_t *p, size_t n, struct frame *f, int max)
{
	int k = 0;

	for (size_t at = 0; at < n; k++) {
		size_t h = 2, len = 0, i;
		uint32_t id = 0;

		if (n - at < 2 || p[at] != 0x30)
			return -1;
		if (p[at + 1] < 0x80) {
			len = p[at + 1];
		} else {
			size_t ll = p[at + 1] & 0x7f;
			if (ll < 1 || ll > 4 || n - at < 2 + ll)
				return -1;
			for (size_t j = 0; j < ll; j++)
				len = len << 8 | p[at + 2 + j];
			h += ll;
		}
		if (n - at < h + len || len < 4 || p[at + h] != 0x02)
			return -1;
		for (i = 0; i < p[at + h + 1]; i++)
			id = id << 8 | p[at + h + 2 + i];
		if (k < max) {
			f[k].at = at;
			f[k].len = h + len;
			f[k].msgid = id;
			f[k].op = p[at + h + 2 + i];
		}
		at += h + len;
	}
	return k;
}

/* Is frame f portier's answer to a StartTLS with messageID id? */
static int is_answer(const uint8_t *p, const struct frame *f, uint32_t id)
{
	static const char text[] = "TLS is already active";

	return f->op == 0x78 && f->msgid == id && f->len < 128 &&
	    memmem(p + f->at, f->len, text, sizeof(text) - 1) != NULL;
}

/* The backend's stream split at every byte with a StartTLS answer
 * pending: the answer comes out exactly between two messages, at the
 * first boundary the backend reaches, and the backend's bytes are
 * otherwise untouched. Every length form of the framing is in it. */
static void test_answer_between_messages(void)
{
	static uint8_t b[BIG], st7[64];
	static struct pipe p;
	static struct frame f[8];
	size_t n = 0, bound[8], nb = 0, s7 = starttls_id(st7, 7), a7 = alen(7);
	size_t steps[] = {0, 1, 7};

	bound[nb++] = 0;
	n += entry(b + n, 0x64, 10);		/* short form */
	bound[nb++] = n;
	n += entry(b + n, 0x64, 200);		/* 0x81 */
	bound[nb++] = n;
	n += entry(b + n, 0x64, 300);		/* 0x82 */
	bound[nb++] = n;
	n += entry(b + n, 0x64, 70000);		/* 0x83, more than a buffer */
	bound[nb++] = n;
	n += entry84(b + n, 0x64, 20);		/* 0x84, as liblber writes */
	bound[nb++] = n;
	n += entry(b + n, 0x65, 7);		/* the search's end */
	bound[nb++] = n;
	CHECK(b[bound[1]] == 0x30 && b[bound[1] + 1] == 0x81 &&
	    b[bound[4]] == 0x30 && b[bound[4] + 1] == 0x84);
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		for (size_t cut = 0; cut <= n; cut += cut < 400 || n - cut < 400 ? 1 : 997) {
			size_t pos, i, want_lo = 0, want_hi = n;
			int k;

			pipe_init(&p);
			backend_sends(&p, b, cut, 4096);
			/* The StartTLS comes now, the stream cut at `cut`. */
			CHECK(buf_append(&p.cin, st7, s7) == 0);
			CHECK(up(&p, 0) == 0);
			CHECK(p.cin.len == 0 && p.tob.len == 0);
			client_reads(&p);
			/* Split at every byte (or 7) around the cut, where
			 * the framing is at stake; the rest as it comes. */
			pos = n - cut < 1024 ? n - cut : 1024;
			backend_sends(&p, b + cut, pos, steps[s]);
			backend_sends(&p, b + cut + pos, n - cut - pos, 4096);
			CHECK(down(&p, 1) == 0);
			client_reads(&p);
			k = frames(p.got, p.got_len, f, 8);
			CHECK(k == 7 && p.got_len == n + a7);
			if (k != 7) {
				fprintf(stderr, "cut %zu step %zu: %d frames\n", cut, steps[s], k);
				pipe_done(&p);
				continue;
			}
			for (i = 0; i < 7 && !is_answer(p.got, &f[i], 7); i++)
				continue;
			CHECK(i < 7);
			pos = i < 7 ? f[i].at : 0;
			/* Between the boundaries around the cut: at most the
			 * partial header held back comes after the cut. */
			for (size_t j = 0; j < nb; j++) {
				if (bound[j] <= cut)
					want_lo = bound[j];
				if (bound[j] >= cut && want_hi == n)
					want_hi = bound[j];
			}
			CHECK(pos >= want_lo && pos <= want_hi);
			/* Without the answer, the backend's stream as it was. */
			CHECK(memcmp(p.got, b, pos) == 0);
			CHECK(memcmp(p.got + pos + f[i].len, b + pos, n - pos) == 0);
			pipe_done(&p);
		}
	}
}

/* With the client-bound buffer full the answer waits, whole, for room
 * (it was dropped), and nothing of the backend's next message passes it. */
static void test_answer_waits_for_room(void)
{
	static uint8_t m1[2048], m2[64], st7[64], junk[BUF_CAP];
	static struct pipe p;
	static struct frame f[8];
	size_t n1 = entry(m1, 0x64, 1000), n2 = entry(m2, 0x65, 7);
	size_t s7 = starttls_id(st7, 7), pre = BUF_CAP - n1 - 10;
	int k;

	pipe_init(&p);
	/* Earlier whole messages the client has not read yet: an answer
	 * would not fit once m1 is in. */
	memset(junk, 0, sizeof(junk));
	CHECK(buf_append(&p.toc, junk, pre) == 0);
	CHECK(buf_append(&p.bin, m1, 500) == 0);
	CHECK(down(&p, 0) == 0);
	CHECK(buf_append(&p.cin, st7, s7) == 0);
	CHECK(up(&p, 0) == 0);
	CHECK(p.cin.len == 0 && p.toc.len == pre + 500);	/* mid-message */
	CHECK(buf_append(&p.bin, m1 + 500, n1 - 500) == 0);
	CHECK(buf_append(&p.bin, m2, n2) == 0);
	CHECK(down(&p, 0) == 0);
	CHECK(up(&p, 0) == 0);
	/* m1 is through; 10 bytes of room: the answer and m2 wait. */
	CHECK(p.toc.len == pre + n1 && p.bin.len == n2);
	/* The client reads the earlier messages: room again. */
	buf_consume(&p.toc, pre);
	CHECK(down(&p, 0) == 0);
	client_reads(&p);
	k = frames(p.got, p.got_len, f, 8);
	CHECK(k == 3 && p.bin.len == 0);
	CHECK(k == 3 && f[0].len == n1 && is_answer(p.got, &f[1], 7) && f[2].op == 0x65);
	pipe_done(&p);
}

/* StartTLS after StartTLS while the backend is mid-message: at most 16
 * answers (1 KiB) are held; the rest of the client's stream waits in its
 * buffer, and every one is answered, in order, once the message ends. */
static void test_many_starttls_bounded(void)
{
	static uint8_t big[BIG], req[64];
	static struct pipe p;
	static struct frame f[1100];
	size_t nb = entry(big, 0x64, 5000), nr = 0, total = 0;
	unsigned sent = 0;
	int k, ok = 1;

	pipe_init(&p);
	backend_sends(&p, big, 100, 0);
	for (sent = 1; sent <= 1000; sent++) {
		nr = starttls_id(req, sent);
		CHECK(buf_append(&p.cin, req, nr) == 0);
		total += nr;
	}
	for (int i = 0; i < 10; i++)
		CHECK(up(&p, 0) == 0);
	/* Held: at most 1 KiB of answers taken out, nothing for anyone. */
	CHECK(total - p.cin.len <= 16 * nr && p.cin.len > 0);
	CHECK(p.tob.len == 0 && p.toc.len == 0);
	/* The same at the end of the client's stream: what the cap holds
	 * waits for the backend's side, not passed to the backend. */
	CHECK(up(&p, 1) == 0);
	CHECK(total - p.cin.len <= 16 * nr && p.tob.len == 0);
	/* The message ends: the relay runs both sides until all is out. */
	backend_sends(&p, big + 100, nb - 100, 0);
	for (int round = 0; round < 200 && (p.cin.len || p.toc.len); round++) {
		CHECK(up(&p, 1) == 0);
		CHECK(down(&p, 0) == 0);
		client_reads(&p);
	}
	CHECK(p.cin.len == 0 && p.tob.len == 0);
	k = frames(p.got, p.got_len, f, 1100);
	CHECK(k == 1001);
	if (k == 1001) {
		CHECK(f[0].len == nb);
		for (int i = 1; i <= 1000; i++)
			ok = ok && is_answer(p.got, &f[i], (uint32_t)i);
		CHECK(ok);
	}
	pipe_done(&p);
}

/* Bytes from the backend that are not LDAP framing turn the down side
 * off: they pass untouched, and answers then go at once. A pending answer
 * still gets its boundary when the malformed bytes follow a message. */
static void test_malformed_backend(void)
{
	static uint8_t m[2048], st7[64], st8[64];
	static struct pipe p;
	static const uint8_t http[] = "HTTP/1.0 400 Bad Request\r\n\r\n";
	static const uint8_t indef[] = {0x30, 0x80, 0x02, 0x01, 0x02, 0x65, 0x00, 0x00, 0x00};
	static const uint8_t toolong[] = {0x30, 0x85, 0x00, 0x00, 0x00, 0x00, 0x05};
	const struct { const uint8_t *p; size_t n; } bad[] = {
		{http, sizeof(http) - 1}, {indef, sizeof(indef)}, {toolong, sizeof(toolong)}};
	size_t nm = entry(m, 0x64, 1000), s7 = starttls_id(st7, 7), s8 = starttls_id(st8, 8),
	    a7 = alen(7), a8 = alen(8);
	struct frame f[4];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* At the start: untouched, split at every byte. */
		for (size_t step = 1; step <= bad[i].n; step++) {
			pipe_init(&p);
			backend_sends(&p, bad[i].p, bad[i].n, step);
			CHECK(p.got_len == bad[i].n && memcmp(p.got, bad[i].p, bad[i].n) == 0);
			/* Off: an answer goes at once, whatever came before. */
			CHECK(buf_append(&p.cin, st7, s7) == 0);
			CHECK(up(&p, 0) == 0);
			client_reads(&p);
			CHECK(p.got_len == bad[i].n + a7 &&
			    frames(p.got + bad[i].n, p.got_len - bad[i].n, f, 4) == 1 &&
			    is_answer(p.got + bad[i].n, &f[0], 7));
			pipe_done(&p);
		}
		/* After a message the answer waits for: it goes at its end,
		 * then the malformed bytes, then the framing is off. */
		pipe_init(&p);
		backend_sends(&p, m, 50, 0);
		CHECK(buf_append(&p.cin, st7, s7) == 0);
		CHECK(up(&p, 0) == 0);
		CHECK(p.got_len == 50);
		CHECK(buf_append(&p.bin, m + 50, nm - 50) == 0);
		CHECK(buf_append(&p.bin, bad[i].p, bad[i].n) == 0);
		CHECK(down(&p, 0) == 0);
		client_reads(&p);
		CHECK(p.got_len == nm + a7 + bad[i].n);
		CHECK(frames(p.got, nm + a7, f, 4) == 2 && is_answer(p.got, &f[1], 7));
		CHECK(memcmp(p.got + nm + a7, bad[i].p, bad[i].n) == 0);
		CHECK(buf_append(&p.cin, st8, s8) == 0);
		CHECK(up(&p, 0) == 0);
		client_reads(&p);
		CHECK(p.got_len == nm + a7 + bad[i].n + a8);
		pipe_done(&p);
	}
}

/* The backend's end delivers what waits: after a message it cut, and
 * before a header it cut (which passes as it is). */
static void test_eof_delivers(void)
{
	static uint8_t m[2048], st7[64];
	static struct pipe p;
	size_t nm = entry(m, 0x64, 1000), s7 = starttls_id(st7, 7), a7 = alen(7);
	struct frame f[4];

	pipe_init(&p);
	backend_sends(&p, m, 300, 0);
	CHECK(buf_append(&p.cin, st7, s7) == 0);
	CHECK(up(&p, 0) == 0);
	CHECK(p.got_len == 300);
	CHECK(down(&p, 1) == 0);
	client_reads(&p);
	CHECK(p.got_len == 300 + a7 && frames(p.got + 300, a7, f, 4) == 1 &&
	    is_answer(p.got + 300, &f[0], 7));
	pipe_done(&p);

	/* A whole message, then two bytes of a header the end cuts. */
	pipe_init(&p);
	backend_sends(&p, m, 50, 0);
	CHECK(buf_append(&p.cin, st7, s7) == 0);
	CHECK(up(&p, 0) == 0);
	CHECK(buf_append(&p.bin, m + 50, nm - 50) == 0);
	CHECK(buf_append(&p.bin, "\x30\x82", 2) == 0);
	CHECK(down(&p, 0) == 0);
	client_reads(&p);
	CHECK(p.got_len == nm + a7 && p.bin.len == 2);	/* the header waits */
	CHECK(down(&p, 1) == 0);
	client_reads(&p);
	CHECK(p.got_len == nm + a7 + 2 && p.bin.len == 0);
	CHECK(frames(p.got, nm + a7, f, 4) == 2 && is_answer(p.got, &f[1], 7));
	pipe_done(&p);
}

/* A connection that ends with answers waiting gives their memory back
 * (cleanup; the ASan build's leak check sees it otherwise). */
static void test_cleanup_with_answers_pending(void)
{
	static uint8_t m[2048], st7[64];
	static struct pipe p;

	size_t s7 = starttls_id(st7, 7);

	entry(m, 0x64, 1000);
	pipe_init(&p);
	backend_sends(&p, m, 300, 0);
	CHECK(buf_append(&p.cin, st7, s7) == 0);
	CHECK(up(&p, 0) == 0);
	CHECK(p.got_len == 300 && p.toc.len == 0);	/* the answer waits */
	pipe_done(&p);
}

/* A header goes as soon as it is whole: the down side holds the bytes of
 * a partial header and nothing else, in every length form, the backend's
 * stream cut at every byte with no answer waiting. */
static void test_down_holds_only_partial_headers(void)
{
	static uint8_t b[1024];
	static struct pipe p;
	size_t n = 0, at[4], head[4] = {2, 3, 4, 6}, nb = 0;

	at[nb++] = n;
	n += entry(b + n, 0x64, 10);
	at[nb++] = n;
	n += entry(b + n, 0x64, 200);
	at[nb++] = n;
	n += entry(b + n, 0x64, 300);
	at[nb++] = n;
	n += entry84(b + n, 0x65, 7);
	for (size_t cut = 1; cut <= n; cut++) {
		size_t want = cut;

		/* A cut inside a message's header holds that header's bytes. */
		for (size_t j = 0; j < nb; j++)
			if (cut > at[j] && cut < at[j] + head[j])
				want = at[j];
		pipe_init(&p);
		backend_sends(&p, b, cut, 0);
		CHECK(p.got_len == want && memcmp(p.got, b, want) == 0);
		if (p.got_len != want)
			fprintf(stderr, "cut %zu: %zu bytes through, not %zu\n", cut,
			    p.got_len, want);
		pipe_done(&p);
	}
}

/* The down side copies nothing when the client keeps up: a buffer the
 * backend filled becomes the client's whole. */
static void test_down_no_copy(void)
{
	static uint8_t m[4096];
	static struct pipe p;
	size_t nm = entry(m, 0x64, 3000);
	const uint8_t *data;

	pipe_init(&p);
	CHECK(buf_append(&p.bin, m, nm) == 0);
	data = buf_peek(&p.bin);
	CHECK(down(&p, 0) == 0);
	CHECK(p.toc.len == nm && buf_peek(&p.toc) == data && p.bin.data == NULL);
	pipe_done(&p);
}

int main(void)
{
	uint8_t stream[256], want[256];
	size_t n = 0, w = 0;
	struct run r;

	CHECK(filter_ldap.state_size <= sizeof(r.st));
	memcpy(stream + n, search, sizeof(search)); n += sizeof(search);
	memcpy(stream + n, starttls, sizeof(starttls)); n += sizeof(starttls);
	memcpy(stream + n, search, sizeof(search)); n += sizeof(search);
	memcpy(stream + n, starttls_long_id, sizeof(starttls_long_id)); n += sizeof(starttls_long_id);
	memcpy(stream + n, search, sizeof(search)); n += sizeof(search);
	for (int i = 0; i < 3; i++) {
		memcpy(want + w, search, sizeof(search));
		w += sizeof(search);
	}
	for (size_t step = 0; step <= n; step++) {
		CHECK(feed(&r, stream, n, step, 1) == 0);
		CHECK(r.out.len == w && memcmp(buf_peek(&r.out), want, w) == 0);
		CHECK(r.in.len == 0);
		/* Two operationsError responses, both for messageID 7. */
		if (r.back.len > 20) {
			const uint8_t *b = buf_peek(&r.back);
			size_t first = 2 + b[1];
			CHECK(b[0] == 0x30 && b[4] == 7 && b[5] == 0x78);
			CHECK(first < r.back.len && b[first] == 0x30 && b[first + 4] == 7);
		} else {
			CHECK(0);
		}
		done(&r);
	}

	/* A lone 0x30 is a partial header: held (nothing for the backend,
	 * no answer) while the stream goes on, passed on at its end. */
	CHECK(feed(&r, (const uint8_t *)"\x30", 1, 0, 0) == 0);
	CHECK(r.out.len == 0 && r.in.len == 1 && r.back.len == 0);
	{
		const char *why = NULL;
		CHECK(filter_ldap.up(r.st, &r.in, &r.out, &r.back, 1, &why) == 0);
	}
	CHECK(r.out.len == 1 && r.in.len == 0);
	done(&r);

	/* A search split at every byte with the stream going on: every byte
	 * of a complete message is passed before the end. */
	for (size_t step = 1; step <= sizeof(search); step++) {
		CHECK(feed(&r, search, sizeof(search), step, 0) == 0);
		CHECK(r.out.len == sizeof(search) && r.in.len == 0);
		done(&r);
	}
	test_answer_between_messages();
	test_answer_waits_for_room();
	test_many_starttls_bounded();
	test_malformed_backend();
	test_eof_delivers();
	test_cleanup_with_answers_pending();
	test_down_no_copy();
	test_down_holds_only_partial_headers();
	return CHECK_DONE();
}
