#include "check.h"
#include "ldap_guard.h"

/* LDAPMessages as a client would send them. */
static const uint8_t starttls[] = {
	0x30, 0x1d, 0x02, 0x01, 0x07, 0x77, 0x18, 0x80, 0x16,
	'1', '.', '3', '.', '6', '.', '1', '.', '4', '.', '1', '.', '1', '4', '6', '6',
	'.', '2', '0', '0', '3', '7'};
/* search request, messageID 2 (body content irrelevant to the guard) */
static const uint8_t search[] = {
	0x30, 0x0c, 0x02, 0x01, 0x02, 0x63, 0x07, 0x04, 0x00, 0x0a, 0x01, 0x00, 0x87, 0x00};
/* whoami extended request (1.3.6.1.4.1.4203.1.11.3): passes */
static const uint8_t whoami[] = {
	0x30, 0x1e, 0x02, 0x01, 0x03, 0x77, 0x19, 0x80, 0x17,
	'1', '.', '3', '.', '6', '.', '1', '.', '4', '.', '1', '.', '4', '2', '0', '3',
	'.', '1', '.', '1', '1', '.', '3'};

/* The same two with the messageID's length in the long form, which BER
 * allows and slapd reads: the guard must frame them as slapd does. */
static const uint8_t starttls_long[] = {
	0x30, 0x1e, 0x02, 0x81, 0x01, 0x07, 0x77, 0x18, 0x80, 0x16,
	'1', '.', '3', '.', '6', '.', '1', '.', '4', '.', '1', '.', '1', '4', '6', '6',
	'.', '2', '0', '0', '3', '7'};
static const uint8_t search_long[] = {
	0x30, 0x0e, 0x02, 0x82, 0x00, 0x01, 0x02, 0x63, 0x07, 0x04, 0x00, 0x0a, 0x01, 0x00,
	0x87, 0x00};

/* msg (short-form outer length) with ctl appended inside its SEQUENCE, the
 * outer length then in the two-octet long form: written at dst, its size. */
static size_t with_controls(uint8_t *dst, const uint8_t *msg, size_t n,
                            const uint8_t *ctl, size_t nctl)
{
	size_t body = n - 2 + nctl;

	dst[0] = 0x30;
	dst[1] = 0x82;
	dst[2] = (uint8_t)(body >> 8);
	dst[3] = (uint8_t)body;
	memcpy(dst + 4, msg + 2, n - 2);
	memcpy(dst + 4 + n - 2, ctl, nctl);
	return 4 + body;
}

/* A StartTLS ExtendedRequest, messageID id (< 128), its requestName under
 * the ntag tag octets given: written at dst, its size. */
static size_t starttls_tagged(uint8_t *dst, uint8_t id, const uint8_t *tag,
                              size_t ntag)
{
	size_t op = ntag + 1 + 22;

	dst[0] = 0x30;
	dst[1] = (uint8_t)(3 + 2 + op);
	dst[2] = 0x02; dst[3] = 0x01; dst[4] = id;
	dst[5] = 0x77;
	dst[6] = (uint8_t)op;
	memcpy(dst + 7, tag, ntag);
	dst[7 + ntag] = 0x16;
	memcpy(dst + 8 + ntag, "1.3.6.1.4.1.1466.20037", 22);
	return 2 + 3 + 2 + op;
}

/* Runs the guard over stream as the relay would, feeding the first `cut`
 * bytes (none: 0), then `step` bytes at a time (all: 0), and sending
 * everything cleared; returns what reached the backend. */
static size_t run_cut(const uint8_t *stream, size_t n, size_t cut, size_t step,
                      uint8_t *sent, struct buf *reply)
{
	struct ldap_guard g = {0};
	struct buf up = {0};
	size_t fed = 0, nsent = 0, ok, drop;

	while (fed < n || up.len) {
		size_t k = step && n - fed > step ? step : n - fed;
		if (fed == 0 && cut > 0 && cut < n)
			k = cut;
		buf_append(&up, stream + fed, k);
		fed += k;
		for (;;) {
			ok = ldap_guard_scan(&g, buf_peek(&up), up.len, &drop, reply);
			if (!drop)
				break;
			buf_consume(&up, drop);
		}
		if (ok) {
			memcpy(sent + nsent, buf_peek(&up), ok);
			nsent += ok;
			buf_consume(&up, ok);
			ldap_guard_sent(&g, ok);
		} else if (fed == n && up.len) {
			break;   /* held: an incomplete message at the end */
		}
	}
	buf_reset(&up);
	return nsent;
}

static size_t run(const uint8_t *stream, size_t n, size_t step, uint8_t *sent,
                  struct buf *reply)
{
	return run_cut(stream, n, 0, step, sent, reply);
}

int main(void)
{
	uint8_t stream[256], sent[256], want[256];
	struct buf reply = {0};
	size_t n = 0, w = 0, got;

	memcpy(stream + n, search, sizeof(search)); n += sizeof(search);
	memcpy(stream + n, starttls, sizeof(starttls)); n += sizeof(starttls);
	memcpy(stream + n, whoami, sizeof(whoami)); n += sizeof(whoami);
	memcpy(stream + n, search, sizeof(search)); n += sizeof(search);
	memcpy(want + w, search, sizeof(search)); w += sizeof(search);
	memcpy(want + w, whoami, sizeof(whoami)); w += sizeof(whoami);
	memcpy(want + w, search, sizeof(search)); w += sizeof(search);

	/* Whole, then every chunk size: the StartTLS never reaches the
	 * backend, everything else does, in order, and the client gets one
	 * operationsError ExtendedResponse with messageID 7. */
	for (size_t step = 0; step <= n; step++) {
		got = run(stream, n, step, sent, &reply);
		CHECK(got == w && memcmp(sent, want, w) == 0);
		CHECK(reply.len > 10);
		if (reply.len > 10) {
			const uint8_t *r = buf_peek(&reply);
			CHECK(r[0] == 0x30 && r[2] == 0x02 && r[3] == 0x01 && r[4] == 7);
			CHECK(r[5] == 0x78);
			/* resultCode ENUMERATED operationsError (1) */
			CHECK(r[7] == 0x0a && r[8] == 0x01 && r[9] == 0x01);
		}
		buf_reset(&reply);
	}

	/* A long-form messageID length keeps the guard on: the StartTLS
	 * after such a message is still taken out, at every chunk size. */
	n = w = 0;
	memcpy(stream + n, search_long, sizeof(search_long)); n += sizeof(search_long);
	memcpy(stream + n, starttls_long, sizeof(starttls_long)); n += sizeof(starttls_long);
	memcpy(stream + n, search, sizeof(search)); n += sizeof(search);
	memcpy(want + w, search_long, sizeof(search_long)); w += sizeof(search_long);
	memcpy(want + w, search, sizeof(search)); w += sizeof(search);
	for (size_t step = 0; step <= n; step++) {
		got = run(stream, n, step, sent, &reply);
		CHECK(got == w && memcmp(sent, want, w) == 0);
		CHECK(reply.len > 10 && buf_peek(&reply)[4] == 7 &&
		      buf_peek(&reply)[5] == 0x78 && buf_peek(&reply)[9] == 0x01);
		buf_reset(&reply);
	}

	/* A StartTLS that slapd would take as one however it is dressed:
	 * 600 bytes of controls after it (longer than any StartTLS the
	 * guard used to read whole), or its requestName under another tag
	 * (slapd reads the element whatever its tag). Each is taken out as
	 * it comes, at every chunk size, and answered once; a whoami with
	 * the same controls, and a StartTLS with a negative messageID
	 * (slapd refuses it as a protocol error), pass. */
	{
		static uint8_t s2[2048], sent2[2048], want2[2048];
		uint8_t ctl[612];
		size_t m = 0, k = 0, at;

		/* controls [0] { SEQUENCE { OCTET STRING "x" * 600 } } */
		memcpy(ctl, "\xa0\x82\x02\x60" "\x30\x82\x02\x5c" "\x04\x82\x02\x58", 12);
		memset(ctl + 12, 'x', sizeof(ctl) - 12);
		/* StartTLS, messageID 9, with the controls */
		m += with_controls(s2 + m, starttls, sizeof(starttls), ctl, sizeof(ctl));
		s2[6] = 9;
		memcpy(s2 + m, search, sizeof(search)); m += sizeof(search);
		memcpy(want2 + k, search, sizeof(search)); k += sizeof(search);
		/* StartTLS, messageID 7, its requestName tagged 0x04 */
		memcpy(s2 + m, starttls, sizeof(starttls)); s2[m + 7] = 0x04; m += sizeof(starttls);
		/* whoami with the same controls: passes whole */
		at = m;
		m += with_controls(s2 + m, whoami, sizeof(whoami), ctl, sizeof(ctl));
		memcpy(want2 + k, s2 + at, m - at); k += m - at;
		/* StartTLS with messageID -1: passes */
		memcpy(s2 + m, starttls, sizeof(starttls)); s2[m + 4] = 0xff;
		memcpy(want2 + k, s2 + m, sizeof(starttls)); k += sizeof(starttls);
		m += sizeof(starttls);
		for (size_t step = 0; step <= m; step += step < 64 ? 1 : 97) {
			got = run(s2, m, step, sent2, &reply);
			CHECK(got == k && memcmp(sent2, want2, k) == 0);
			/* two answers of one length: messageIDs 9, then 7 */
			CHECK(reply.len > 20 && buf_peek(&reply)[4] == 9 &&
			      buf_peek(&reply)[5] == 0x78 &&
			      reply.len == 2 * (size_t)(buf_peek(&reply)[1] + 2) &&
			      buf_peek(&reply)[reply.len / 2 + 4] == 7);
			buf_reset(&reply);
		}
	}

	/* A message whose length ends inside the ExtendedRequest's header is
	 * no StartTLS, whatever bytes follow: it passes for slapd to judge. */
	{
		uint8_t cut[sizeof(starttls)], out[sizeof(starttls)];
		memcpy(cut, starttls, sizeof(cut));
		cut[1] = 0x04;
		for (size_t step = 0; step <= sizeof(cut); step++) {
			got = run(cut, sizeof(cut), step, out, &reply);
			CHECK(got == sizeof(cut) && memcmp(out, cut, got) == 0 && reply.len == 0);
			buf_reset(&reply);
		}
	}

	/* A requestName tag in the high-tag-number form (first octet 0x9f,
	 * then octets with 0x80 set but the last): the guard skips it
	 * without reading its number, and reads tags of up to 8 octets, as
	 * slapd does. [0] so written (0x9f 0x00, where DER would write 0x80)
	 * is a StartTLS, and so is [0] padded to 5 octets (0x9f 0x80 0x80
	 * 0x80 0x00). A 9-octet tag, which slapd 2.5 refuses ("decoding
	 * error"), is past the guard's bound: no StartTLS to it (is_starttls
	 * -1), so the message passes whole and unanswered, and the guard
	 * stays on: a plain StartTLS after it is still taken out. The 8-octet
	 * forms are below. Every chunk size, and every cut into two
	 * pieces. */
	{
		static const uint8_t tag2[] = {0x9f, 0x00};
		static const uint8_t tag5[] = {0x9f, 0x80, 0x80, 0x80, 0x00};
		static const uint8_t tag9[] = {0x9f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
		                               0x80, 0x00};
		uint8_t s3[256], sent3[256], want3[256];
		size_t m = 0, k = 0, at, one;

		memcpy(s3 + m, search, sizeof(search)); m += sizeof(search);
		m += starttls_tagged(s3 + m, 7, tag2, sizeof(tag2));
		memcpy(s3 + m, search, sizeof(search)); m += sizeof(search);
		m += starttls_tagged(s3 + m, 8, tag5, sizeof(tag5));
		at = m;
		m += starttls_tagged(s3 + m, 9, tag9, sizeof(tag9));
		memcpy(s3 + m, starttls, sizeof(starttls)); s3[m + 4] = 10;
		m += sizeof(starttls);
		memcpy(s3 + m, search, sizeof(search)); m += sizeof(search);
		memcpy(want3 + k, search, sizeof(search)); k += sizeof(search);
		memcpy(want3 + k, search, sizeof(search)); k += sizeof(search);
		memcpy(want3 + k, s3 + at, 39); k += 39;
		memcpy(want3 + k, search, sizeof(search)); k += sizeof(search);
		CHECK(s3[at + 1] == 37 && s3[at + 6] == 32);   /* 39 bytes, built right */
		for (size_t step = 0; step <= m; step++) {
			for (size_t cut = 0; cut < m; cut += step == 0 ? 1 : m) {
				got = run_cut(s3, m, cut, step, sent3, &reply);
				CHECK(got == k && memcmp(sent3, want3, k) == 0);
				/* three answers of one length: 7, 8, then 10 */
				one = reply.len > 2 ? (size_t)buf_peek(&reply)[1] + 2 : 0;
				CHECK(one > 10 && reply.len == 3 * one &&
				      buf_peek(&reply)[4] == 7 && buf_peek(&reply)[5] == 0x78 &&
				      buf_peek(&reply)[9] == 0x01 &&
				      buf_peek(&reply)[one + 4] == 8 &&
				      buf_peek(&reply)[2 * one + 4] == 10);
				buf_reset(&reply);
			}
		}
	}

	/* Every encoding slapd reads is the guard's to read: a requestName
	 * tag of 8 octets, a requestName length and an operation length of 8
	 * octets after the first (liblber's widths; before, the guard took 5
	 * and 4, and these three reached slapd as StartTLS requests). Each
	 * is taken out and answered; the search after them passes. */
	{
		static const uint8_t tag8[] = {0x9f, 0x80, 0x80, 0x80, 0x80, 0x80,
		                               0x80, 0x00};
		static const uint8_t oid[] = "1.3.6.1.4.1.1466.20037";
		uint8_t s4[256], sent4[256];
		size_t m = 0, one;

		m += starttls_tagged(s4 + m, 21, tag8, sizeof(tag8));
		CHECK(m == 38 && s4[1] == 36);
		/* requestName length 88 00..00 16 */
		memcpy(s4 + m, "\x30\x25\x02\x01\x16\x77\x20\x80\x88", 9);
		memset(s4 + m + 9, 0, 7);
		s4[m + 16] = 0x16;
		memcpy(s4 + m + 17, oid, 22);
		m += 39;
		/* operation length 88 00..00 18 */
		memcpy(s4 + m, "\x30\x25\x02\x01\x17\x77\x88", 7);
		memset(s4 + m + 7, 0, 7);
		s4[m + 14] = 0x18;
		s4[m + 15] = 0x80;
		s4[m + 16] = 0x16;
		memcpy(s4 + m + 17, oid, 22);
		m += 39;
		memcpy(s4 + m, search, sizeof(search));
		m += sizeof(search);
		for (size_t step = 0; step <= m; step++) {
			for (size_t cut = 0; cut < m; cut += step == 0 ? 1 : m) {
				got = run_cut(s4, m, cut, step, sent4, &reply);
				CHECK(got == sizeof(search) &&
				      memcmp(sent4, search, sizeof(search)) == 0);
				one = reply.len > 2 ? (size_t)buf_peek(&reply)[1] + 2 : 0;
				CHECK(one > 10 && reply.len == 3 * one &&
				      buf_peek(&reply)[4] == 21 && buf_peek(&reply)[5] == 0x78 &&
				      buf_peek(&reply)[one + 4] == 22 &&
				      buf_peek(&reply)[2 * one + 4] == 23);
				buf_reset(&reply);
			}
		}
	}

	/* A length of 9 octets, or of 4 GiB or more, is none slapd takes:
	 * a requestName so long is no StartTLS (its message passes), and
	 * an outer length so long is not LDAP (the guard turns off). */
	{
		static const uint8_t oid[] = "1.3.6.1.4.1.1466.20037";
		uint8_t s5[128], sent5[128];
		size_t m;

		/* requestName length 89 00..00 16: 9 octets after the first */
		memcpy(s5, "\x30\x26\x02\x01\x18\x77\x21\x80\x89", 9);
		memset(s5 + 9, 0, 8);
		s5[17] = 0x16;
		memcpy(s5 + 18, oid, 22);
		m = 40;
		got = run(s5, m, 0, sent5, &reply);
		CHECK(got == m && memcmp(sent5, s5, m) == 0 && reply.len == 0);
		/* requestName length 85 01 00 00 00 16: 4 GiB and more */
		memcpy(s5, "\x30\x22\x02\x01\x19\x77\x1d\x80\x85\x01\x00\x00\x00\x16", 14);
		memcpy(s5 + 14, oid, 22);
		m = 36;
		got = run(s5, m, 0, sent5, &reply);
		CHECK(got == m && memcmp(sent5, s5, m) == 0 && reply.len == 0);
	}

	/* Bounds of the messageID, each at every chunk size: 127 octets
	 * (zeros, then 7) are read, 128 are not LDAP (the guard turns off and
	 * the message passes); none at all is not LDAP either; 2^31-1 is a
	 * messageID, 2^31 as five octets and -128 are none slapd takes (the
	 * StartTLS passes for slapd to refuse). */
	{
		static uint8_t s6[256], sent6[256];
		static const uint8_t tail[] = "\x77\x18\x80\x16" "1.3.6.1.4.1.1466.20037";
		size_t m;

		for (size_t octets = 127; octets <= 128; octets++) {
			m = 0;
			s6[m++] = 0x30;
			s6[m++] = 0x81;
			s6[m++] = (uint8_t)(2 + octets + (octets > 127) + 26);
			s6[m++] = 0x02;
			if (octets > 127)
				s6[m++] = 0x81;
			s6[m++] = (uint8_t)octets;
			memset(s6 + m, 0, octets - 1);
			m += octets - 1;
			s6[m++] = 7;
			memcpy(s6 + m, tail, 26);
			m += 26;
			CHECK(m == 3 + (size_t)s6[2]);
			for (size_t step = 0; step <= m; step += step < 40 ? 1 : 23) {
				got = run(s6, m, step, sent6, &reply);
				if (octets == 127)
					CHECK(got == 0 && reply.len > 10 &&
					      buf_peek(&reply)[4] == 7 &&
					      buf_peek(&reply)[5] == 0x78);
				else
					CHECK(got == m && memcmp(sent6, s6, m) == 0 &&
					      reply.len == 0);
				buf_reset(&reply);
			}
		}
		static const struct {
			const char *msg;
			size_t len;
			int taken;
		} ids[] = {
			{"\x30\x1c\x02\x00\x77\x18\x80\x16" "1.3.6.1.4.1.1466.20037", 30, 0},
			{"\x30\x20\x02\x04\x7f\xff\xff\xff\x77\x18\x80\x16"
			 "1.3.6.1.4.1.1466.20037", 34, 1},
			{"\x30\x21\x02\x05\x7f\xff\xff\xff\x00\x77\x18\x80\x16"
			 "1.3.6.1.4.1.1466.20037", 35, 0},
			{"\x30\x1d\x02\x01\x80\x77\x18\x80\x16" "1.3.6.1.4.1.1466.20037", 31, 0},
		};
		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			const uint8_t *msg = (const uint8_t *)ids[i].msg;
			for (size_t step = 0; step <= ids[i].len; step++) {
				got = run(msg, ids[i].len, step, sent6, &reply);
				if (ids[i].taken)
					CHECK(got == 0 && reply.len > 10 &&
					      memcmp(buf_peek(&reply) + 2,
					             "\x02\x04\x7f\xff\xff\xff\x78", 7) == 0);
				else
					CHECK(got == ids[i].len &&
					      memcmp(sent6, msg, got) == 0 && reply.len == 0);
				buf_reset(&reply);
			}
		}
	}

	/* Not a StartTLS, at every chunk size: a requestName of 22 octets
	 * that is another OID, and the StartTLS OID in an operation four
	 * octets long (the requestName runs past it). Both pass whole,
	 * unanswered. A StartTLS that ends the stream is answered at once. */
	{
		static const uint8_t other[] = "\x30\x1d\x02\x01\x07\x77\x18\x80\x16"
		                               "1.3.6.1.4.1.1466.20038";
		static const uint8_t short_op[] = "\x30\x1d\x02\x01\x07\x77\x04\x80\x16"
		                                  "1.3.6.1.4.1.1466.20037";
		uint8_t out[64];

		for (size_t step = 0; step <= 31; step++) {
			got = run(other, 31, step, out, &reply);
			CHECK(got == 31 && memcmp(out, other, 31) == 0 && reply.len == 0);
			got = run(short_op, 31, step, out, &reply);
			CHECK(got == 31 && memcmp(out, short_op, 31) == 0 && reply.len == 0);
			buf_reset(&reply);
			got = run(starttls, sizeof(starttls), step, out, &reply);
			CHECK(got == 0 && reply.len > 10 && buf_peek(&reply)[4] == 7);
			buf_reset(&reply);
		}
	}

	/* Bytes go as soon as the guard can tell what they are: a search's
	 * header as far as its operation's tag; the short operation above as
	 * far as its requestName's length, in the short and the long form. */
	{
		static const uint8_t short_op_long[] = "\x30\x1e\x02\x01\x07\x77\x05\x80\x81\x16"
		                                       "1.3.6.1.4.1.1466.20037";
		struct ldap_guard g = {0};
		size_t drop;

		CHECK(ldap_guard_scan(&g, search, 5, &drop, &reply) == 0);
		CHECK(ldap_guard_scan(&g, search, 6, &drop, &reply) == 6 && drop == 0);
		memset(&g, 0, sizeof(g));
		CHECK(ldap_guard_scan(&g, (const uint8_t *)"\x30\x1d\x02\x01\x07\x77\x04\x80\x16",
		                      9, &drop, &reply) == 9 && drop == 0 && !g.off);
		memset(&g, 0, sizeof(g));
		CHECK(ldap_guard_scan(&g, short_op_long, 9, &drop, &reply) == 0);
		CHECK(ldap_guard_scan(&g, short_op_long, 10, &drop, &reply) == 10 &&
		      drop == 0 && !g.off);
		CHECK(reply.len == 0);
	}

	/* An outer length just under 4 GiB is read (the message passes as it
	 * comes, the guard stays on); 4 GiB is not LDAP. One byte that is not
	 * a SEQUENCE's tag turns the guard off at once. */
	{
		struct ldap_guard g = {0};
		size_t drop;
		const uint8_t big4[] = {0x30, 0x84, 0xff, 0xff, 0xff, 0x00, 0x02, 0x01, 0x05, 0x63};
		const uint8_t big5[] = {0x30, 0x85, 0x01, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x05, 0x63};

		CHECK(ldap_guard_scan(&g, big4, sizeof(big4), &drop, &reply) == sizeof(big4));
		CHECK(!g.off && g.skip == 6 + 0xffffff00u - sizeof(big4));
		memset(&g, 0, sizeof(g));
		CHECK(ldap_guard_scan(&g, big5, sizeof(big5), &drop, &reply) == sizeof(big5));
		CHECK(g.off);
		memset(&g, 0, sizeof(g));
		CHECK(ldap_guard_scan(&g, (const uint8_t *)"G", 1, &drop, &reply) == 1 && g.off);
	}

	/* Something that is not LDAP switches the guard off: it passes. */
	{
		struct ldap_guard g = {0};
		size_t drop;
		CHECK(ldap_guard_scan(&g, (const uint8_t *)"GET / HTTP/1.0\r\n", 16, &drop, &reply) == 16);
		CHECK(g.off && drop == 0);
	}
	/* An indefinite length is not LDAP either. */
	{
		struct ldap_guard g = {0};
		size_t drop;
		const uint8_t indef[] = {0x30, 0x80, 0x02, 0x01, 0x01};
		CHECK(ldap_guard_scan(&g, indef, sizeof(indef), &drop, &reply) == sizeof(indef));
	}
	/* A large message passes as it arrives; only its header is held. */
	{
		static uint8_t big[70000];
		struct ldap_guard g = {0};
		size_t drop, ok;
		big[0] = 0x30; big[1] = 0x83; big[2] = 0x01; big[3] = 0x11; big[4] = 0x09;
		big[5] = 0x02; big[6] = 0x01; big[7] = 0x05; big[8] = 0x68;
		CHECK(ldap_guard_scan(&g, big, 3, &drop, &reply) == 0);
		ok = ldap_guard_scan(&g, big, 5000, &drop, &reply);
		CHECK(ok == 5000);
		ldap_guard_sent(&g, ok);
		CHECK(g.cleared == 0 && g.skip == 5 + 0x11109 - 5000);
	}
	CHECK(reply.len == 0);
	return CHECK_DONE();
}
