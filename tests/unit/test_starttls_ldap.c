#include "starttls_harness.h"
#include "ber.h"

static const struct starttls_params p = { "ldap.example.org", 0, 0, NULL };

static struct h_run r;
static struct h_back b;

/* Builds byte strings from hex dumps, appended to one of two buffers. */
struct bytes {
	uint8_t b[16384];
	size_t n;
};

static struct bytes in, want;

static void hex(struct bytes *x, const char *h)
{
	unsigned v;

	while (*h) {
		if (*h == ' ') {
			h++;
			continue;
		}
		sscanf(h, "%2x", &v);
		x->b[x->n++] = (uint8_t)v;
		h += 2;
	}
}

static void res(struct bytes *x, uint32_t id, unsigned op, unsigned code,
    const char *diag, const char *name)
{
	size_t len;

	CHECK(ber_ldap_result(x->b + x->n, sizeof(x->b) - x->n, &len, id, op,
	    code, diag, name) == 0);
	x->n += len;
}

static void reset(void)
{
	in.n = want.n = 0;
}

#define STARTTLS(id) "30 1d 02 01 " id " 77 18 80 16 31 2e 33 2e 36 2e 31 2e " \
	"34 2e 31 2e 31 34 36 36 2e 32 30 30 33 37"
#define BIND(id)   "30 0c 02 01 " id " 60 07 02 01 03 04 00 80 00"
#define SEARCH(id) "30 25 02 01 " id " 63 20 04 00 0a 01 00 0a 01 00 02 01 00 " \
	"02 01 00 01 01 00 87 0b 6f 62 6a 65 63 74 63 6c 61 73 73 30 00"
#define OID_ST "1.3.6.1.4.1.1466.20037"
#define OID_ND "1.3.6.1.4.1.1466.20036"
#define REQ "StartTLS required"

static void run(enum starttls_verdict v)
{
	h_script(&starttls_ldap, &p, in.b, in.n, want.b, want.n, v, &r);
}

static void test_conversations(void)
{
	/* ldapsearch -ZZ: StartTLS first. */
	reset();
	hex(&in, STARTTLS("01"));
	res(&want, 1, BER_LDAP_EXTENDED_RES, 0, "", OID_ST);
	run(STARTTLS_UPGRADE);

	/* Every operation gets confidentialityRequired in its own response. */
	reset();
	hex(&in, BIND("01"));
	hex(&in, SEARCH("02"));
	hex(&in, "30 0a 02 01 03 66 05 04 00 30 01 00");	/* modify, bad inside */
	hex(&in, "30 09 02 01 04 68 04 04 00 30 00");		/* add */
	hex(&in, "30 06 02 01 05 4a 01 78");			/* del */
	hex(&in, "30 0e 02 01 06 6c 09 04 01 78 04 01 79 01 01 00"); /* moddn */
	hex(&in, "30 0c 02 01 07 6e 07 04 00 30 03 04 01 61");	/* compare */
	hex(&in, "30 0b 02 01 08 77 06 80 04 31 2e 32 33");	/* other ext */
	hex(&in, "30 06 02 01 09 50 01 02");			/* abandon */
	hex(&in, STARTTLS("0a"));
	res(&want, 1, BER_LDAP_BIND_RES, 13, REQ, NULL);
	res(&want, 2, BER_LDAP_SEARCH_DONE, 13, REQ, NULL);
	res(&want, 3, BER_LDAP_MODIFY_RES, 13, REQ, NULL);
	res(&want, 4, BER_LDAP_ADD_RES, 13, REQ, NULL);
	res(&want, 5, BER_LDAP_DEL_RES, 13, REQ, NULL);
	res(&want, 6, BER_LDAP_MODDN_RES, 13, REQ, NULL);
	res(&want, 7, BER_LDAP_COMPARE_RES, 13, REQ, NULL);
	res(&want, 8, BER_LDAP_EXTENDED_RES, 13, REQ, NULL);
	res(&want, 10, BER_LDAP_EXTENDED_RES, 0, "", OID_ST);
	run(STARTTLS_UPGRADE);
	/* An anonymous bind carries no credentials. */
	CHECK(starttls_cleartext_auth(&r.s) == NULL);

	/* A simple bind with a password, and a SASL bind, do: noted for the
	 * log (fail2ban), refused the same way. */
	reset();
	hex(&in, "30 11 02 01 01 60 0c 02 01 03 04 00 80 05 73 65 63 72 74");
	res(&want, 1, BER_LDAP_BIND_RES, 13, REQ, NULL);
	run(STARTTLS_AGAIN);
	CHECK_STR(starttls_cleartext_auth(&r.s), "bind");
	reset();
	hex(&in, "30 13 02 01 01 60 0e 02 01 03 04 00 a3 07 04 05 50 4c 41 49 4e");
	res(&want, 1, BER_LDAP_BIND_RES, 13, REQ, NULL);
	run(STARTTLS_AGAIN);
	CHECK_STR(starttls_cleartext_auth(&r.s), "bind");

	/* Unbind closes, without a reply. */
	reset();
	hex(&in, BIND("01"));
	hex(&in, "30 05 02 01 02 42 00");
	hex(&in, BIND("03"));
	res(&want, 1, BER_LDAP_BIND_RES, 13, REQ, NULL);
	run(STARTTLS_REPLY_AND_CLOSE);
	CHECK_STR(starttls_why(&r.s), "client unbind");
	CHECK(r.left == 14);
}

static void test_attacks(void)
{
	/* A bind pipelined behind StartTLS. */
	reset();
	hex(&in, STARTTLS("01"));
	hex(&in, BIND("02"));
	res(&want, 1, BER_LDAP_EXTENDED_RES, 0, "", OID_ST);
	run(STARTTLS_INJECTION);

	/* Malformed BER, indefinite and oversized lengths: Notice of
	 * Disconnection with protocolError (RFC 4511 4.1.1). */
	reset();
	hex(&in, "30 80 02 01 01 42 00 00 00");
	res(&want, 0, BER_LDAP_EXTENDED_RES, 2, "protocol error", OID_ND);
	run(STARTTLS_REPLY_AND_CLOSE);
	CHECK_STR(starttls_why(&r.s), "malformed or oversized LDAP message");
	reset();
	hex(&in, "30 84 00 10 00 00 02 01 01");
	res(&want, 0, BER_LDAP_EXTENDED_RES, 2, "protocol error", OID_ND);
	run(STARTTLS_REPLY_AND_CLOSE);
	reset();
	hex(&in, "16 03 01 00 05 01 00 00 01 00");	/* a ClientHello, too early */
	res(&want, 0, BER_LDAP_EXTENDED_RES, 2, "protocol error", OID_ND);
	run(STARTTLS_REPLY_AND_CLOSE);
	/* Just under the limit and just over it. */
	reset();
	hex(&in, "30 82 1f fc 02 01 01 63 82 1f f5");
	memset(in.b + in.n, 0, 0x1ff5);
	in.n += 0x1ff5;
	res(&want, 1, BER_LDAP_SEARCH_DONE, 13, REQ, NULL);
	CHECK(in.n == 8192);
	run(STARTTLS_AGAIN);
	reset();
	hex(&in, "30 82 1f fd 02 01 01");
	res(&want, 0, BER_LDAP_EXTENDED_RES, 2, "protocol error", OID_ND);
	run(STARTTLS_REPLY_AND_CLOSE);
	/* A response op is not a request. */
	reset();
	hex(&in, "30 0c 02 01 01 61 07 0a 01 00 04 00 04 00");
	res(&want, 0, BER_LDAP_EXTENDED_RES, 2, "protocol error", OID_ND);
	run(STARTTLS_REPLY_AND_CLOSE);
	/* A StartTLS with a control marked critical: portier knows no
	 * control, so it refuses the operation (unavailableCriticalExtension,
	 * as slapd does) and the client may ask again without it. */
	reset();
	hex(&in, "30 2d 02 01 01 77 18 80 16 31 2e 33 2e 36 2e 31 2e 34 2e 31 "
	    "2e 31 34 36 36 2e 32 30 30 33 37 a0 0e 30 0c 04 07 31 2e 32 2e "
	    "33 2e 34 01 01 ff");
	hex(&in, STARTTLS("02"));
	res(&want, 1, BER_LDAP_EXTENDED_RES, 12,
	    "critical extension is not recognized", NULL);
	res(&want, 2, BER_LDAP_EXTENDED_RES, 0, "", OID_ST);
	run(STARTTLS_UPGRADE);
	/* Not critical: upgraded. */
	reset();
	hex(&in, "30 2d 02 01 01 77 18 80 16 31 2e 33 2e 36 2e 31 2e 34 2e 31 "
	    "2e 31 34 36 36 2e 32 30 30 33 37 a0 0e 30 0c 04 07 31 2e 32 2e "
	    "33 2e 34 01 01 00");
	res(&want, 1, BER_LDAP_EXTENDED_RES, 0, "", OID_ST);
	run(STARTTLS_UPGRADE);
	/* Controls that are not Controls: protocolError, as any bad BER. */
	reset();
	hex(&in, "30 24 02 01 01 77 18 80 16 31 2e 33 2e 36 2e 31 2e 34 2e 31 "
	    "2e 31 34 36 36 2e 32 30 30 33 37 a0 05 30 03 01 01 ff");
	res(&want, 0, BER_LDAP_EXTENDED_RES, 2, "protocol error", OID_ND);
	run(STARTTLS_REPLY_AND_CLOSE);
	CHECK_STR(starttls_why(&r.s), "malformed LDAP controls");

	/* The command cap. */
	reset();
	for (int i = 0; i < 11; i++)
		hex(&in, "30 06 02 01 09 50 01 02");
	res(&want, 0, BER_LDAP_EXTENDED_RES, 2, "protocol error", OID_ND);
	run(STARTTLS_REPLY_AND_CLOSE);
	CHECK_STR(starttls_why(&r.s), "too many commands before TLS");
}

static void test_after_tls(void)
{
	static struct h_run up;
	struct buf out = {0};
	struct bytes nd = {{0}, 0};

	reset();
	hex(&in, STARTTLS("05"));
	res(&want, 5, BER_LDAP_EXTENDED_RES, 0, "", OID_ST);
	h_script(&starttls_ldap, &p, in.b, in.n, want.b, want.n,
	    STARTTLS_UPGRADE, &up);
	/* No greeting in LDAP: relay at once, even on connect. */
	h_back_script(&up.s, "", "", STARTTLS_RELAY, &b);
	CHECK(b.flow == 1);
	/* Notice of Disconnection when the backend is down. */
	CHECK(starttls_bye(&up.s, STARTTLS_BYE_UNAVAILABLE, &out) == 0);
	res(&nd, 0, BER_LDAP_EXTENDED_RES, 52, "service not available", OID_ND);
	CHECK(out.len == nd.n && memcmp(buf_peek(&out), nd.b, nd.n) == 0);
	CHECK(nd.b[2] == 0x02 && nd.b[3] == 0x01 && nd.b[4] == 0x00);
	buf_reset(&out);
	/* The same notice for a client over a per-client limit. */
	CHECK(starttls_bye(&up.s, STARTTLS_BYE_LIMITED, &out) == 0);
	CHECK(out.len == nd.n && memcmp(buf_peek(&out), nd.b, nd.n) == 0);
	buf_reset(&out);
}

int main(void)
{
	test_conversations();
	test_attacks();
	test_after_tls();
	return CHECK_DONE();
}
