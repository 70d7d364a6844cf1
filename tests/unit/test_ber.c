#include "ber.h"
#include "check.h"

#include <stdlib.h>

/* Hex to bytes, spaces ignored; the tests read like packet dumps. */
static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = 0;
	unsigned v;

	while (*h) {
		if (*h == ' ') {
			h++;
			continue;
		}
		sscanf(h, "%2x", &v);
		out[n++] = (uint8_t)v;
		h += 2;
	}
	return n;
}

static uint8_t m[9000];
static struct ber_ldap_msg msg;

static int rd(const char *hex, size_t max)
{
	size_t n = unhex(hex, m);
	int r = ber_ldap_read(m, n, max, &msg);

	/* Every proper prefix of a whole message is "need more". */
	if (r == 1) {
		size_t whole = msg.len;
		for (size_t k = 0; k < whole; k++)
			if (ber_ldap_read(m, k, max, &msg) != 0)
				return -9;
		ber_ldap_read(m, n, max, &msg);
	}
	return r;
}

#define STARTTLS_OID_HEX "31 2e 33 2e 36 2e 31 2e 34 2e 31 2e 31 34 36 36 2e 32 30 30 33 37"

int main(void)
{
	uint8_t out[256], want[256];
	size_t len, wl;

	/* StartTLS ExtendedRequest, DER. */
	CHECK(rd("30 1d 02 01 01 77 18 80 16 " STARTTLS_OID_HEX, 8192) == 1);
	CHECK(msg.len == 31 && msg.msgid == 1 && msg.op == BER_LDAP_EXTENDED_REQ);
	CHECK(msg.oid_len == 22 && memcmp(msg.oid, "1.3.6.1.4.1.1466.20037", 22) == 0);
	/* The same the way OpenLDAP's liblber writes it: four-octet lengths. */
	CHECK(rd("30 84 00 00 00 21 02 01 07 77 84 00 00 00 18 80 16 "
	    STARTTLS_OID_HEX, 8192) == 1);
	CHECK(msg.msgid == 7 && msg.oid_len == 22 && msg.len == 39);
	/* Simple bind, with controls, and trailing bytes not read. */
	CHECK(rd("30 0c 02 01 02 60 07 02 01 03 04 00 80 00", 8192) == 1);
	CHECK(msg.op == BER_LDAP_BIND_REQ && msg.msgid == 2 && msg.oid == NULL);
	CHECK(rd("30 0e 02 01 02 60 07 02 01 03 04 00 80 00 a0 00", 8192) == 1);
	CHECK(rd("30 0c 02 01 02 60 07 02 01 03 04 00 80 00 30 05", 8192) == 1);
	CHECK(msg.len == 14);
	/* Unbind, abandon, delete: primitive ops. */
	CHECK(rd("30 05 02 01 03 42 00", 8192) == 1 && msg.op == BER_LDAP_UNBIND_REQ);
	CHECK(rd("30 06 02 01 04 50 01 01", 8192) == 1 && msg.op == 0x50);
	CHECK(rd("30 08 02 01 04 4a 03 63 3d 78", 8192) == 1 && msg.op == 0x4a);
	/* Largest and non-minimal messageIDs. */
	CHECK(rd("30 08 02 04 7f ff ff ff 42 00", 8192) == 1 &&
	    msg.msgid == 0x7fffffffu);
	CHECK(rd("30 09 02 05 00 00 00 00 05 42 00", 8192) == 1 && msg.msgid == 5);

	/* Refused: wrong outer tag, indefinite lengths, length octets, too
	 * big, bad messageIDs, trailing junk inside, missing requestName. */
	CHECK(rd("31 05 02 01 03 42 00", 8192) == -1);
	CHECK(rd("30 80 02 01 03 42 00 00 00", 8192) == -1);
	CHECK(rd("30 07 02 01 03 63 80 00 00", 8192) == -1);
	CHECK(rd("30 85 00 00 00 00 05 02 01 03 42 00", 8192) == -1);
	CHECK(rd("30 84 7f ff ff ff 02", 8192) == -1);
	CHECK(rd("30 82 20 01", 8192) == -1);
	CHECK(rd("30 05 02 01 03 42 00", 6) == -1);
	CHECK(rd("30 05 02 01 ff 42 00", 8192) == -1);
	CHECK(rd("30 09 02 05 01 00 00 00 00 42 00", 8192) == -1);
	CHECK(rd("30 05 02 00 42 00 00", 8192) == -1);
	CHECK(rd("30 05 04 01 03 42 00", 8192) == -1);
	CHECK(rd("30 03 02 01 03", 8192) == -1);
	CHECK(rd("30 07 02 01 03 42 00 04 00", 8192) == -1);
	CHECK(rd("30 07 02 01 03 42 00 a0 80", 8192) == -1);
	CHECK(rd("30 09 02 01 03 77 04 81 02 31 32", 8192) == -1);
	CHECK(rd("30 05 02 01 03 77 00", 8192) == -1);
	CHECK(rd("30 06 02 01 03 42 05 00", 8192) == -1);
	/* Too little to tell. */
	CHECK(rd("30", 8192) == 0);
	CHECK(rd("30 84 00 00", 8192) == 0);
	CHECK(rd("", 8192) == 0);

	/* Controls (RFC 4511 4.1.11): which of them are critical. */
#define ST_CTL(len, ctls) "30 " len " 02 01 01 77 18 80 16 " STARTTLS_OID_HEX " a0 " ctls
#define CTL_TYPE "04 07 31 2e 32 2e 33 2e 34"	/* "1.2.3.4" */
	CHECK(rd("30 1d 02 01 01 77 18 80 16 " STARTTLS_OID_HEX, 8192) == 1 &&
	    msg.controls == NULL && ber_ldap_critical(&msg) == 0);
	CHECK(rd(ST_CTL("1f", "00"), 8192) == 1 && ber_ldap_critical(&msg) == 0);
	CHECK(rd(ST_CTL("2d", "0e 30 0c " CTL_TYPE " 01 01 ff"), 8192) == 1);
	CHECK(msg.controls_len == 14 && ber_ldap_critical(&msg) == 1);
	CHECK(rd(ST_CTL("2d", "0e 30 0c " CTL_TYPE " 01 01 01"), 8192) == 1 &&
	    ber_ldap_critical(&msg) == 1);
	CHECK(rd(ST_CTL("2d", "0e 30 0c " CTL_TYPE " 01 01 00"), 8192) == 1 &&
	    ber_ldap_critical(&msg) == 0);
	CHECK(rd(ST_CTL("2a", "0b 30 09 " CTL_TYPE), 8192) == 1 &&
	    ber_ldap_critical(&msg) == 0);
	CHECK(rd(ST_CTL("2e", "0f 30 0d " CTL_TYPE " 04 02 ab cd"), 8192) == 1 &&
	    ber_ldap_critical(&msg) == 0);
	/* A second control, critical, after one that is not; with a value. */
	CHECK(rd(ST_CTL("3f", "20 30 0c " CTL_TYPE " 01 01 00 30 10 " CTL_TYPE
	    " 01 01 ff 04 02 ab cd"), 8192) == 1 && ber_ldap_critical(&msg) == 1);
	/* Malformed: not a SEQUENCE, no controlType, a two-octet BOOLEAN,
	 * something after the value, a constructed value. */
	CHECK(rd(ST_CTL("2d", "0e 31 0c " CTL_TYPE " 01 01 ff"), 8192) == 1 &&
	    ber_ldap_critical(&msg) == -1);
	CHECK(rd(ST_CTL("24", "05 30 03 01 01 ff"), 8192) == 1 &&
	    ber_ldap_critical(&msg) == -1);
	CHECK(rd(ST_CTL("2e", "0f 30 0d " CTL_TYPE " 01 02 00 ff"), 8192) == 1 &&
	    ber_ldap_critical(&msg) == -1);
	CHECK(rd(ST_CTL("30", "11 30 0f " CTL_TYPE " 01 01 00 04 00 04 00"), 8192) == 1 &&
	    ber_ldap_critical(&msg) == -1);
	CHECK(rd(ST_CTL("2e", "0f 30 0d " CTL_TYPE " 24 02 04 00"), 8192) == 1 &&
	    ber_ldap_critical(&msg) == -1);

	/* Writer: the StartTLS success response, byte for byte. */
	CHECK(ber_ldap_result(out, sizeof(out), &len, 1, BER_LDAP_EXTENDED_RES, 0,
	    "", "1.3.6.1.4.1.1466.20037") == 0);
	wl = unhex("30 24 02 01 01 78 1f 0a 01 00 04 00 04 00 8a 16 "
	    STARTTLS_OID_HEX, want);
	CHECK(len == wl && memcmp(out, want, wl) == 0);
	/* confidentialityRequired to a bind. */
	CHECK(ber_ldap_result(out, sizeof(out), &len, 2, BER_LDAP_BIND_RES, 13,
	    "x", NULL) == 0);
	wl = unhex("30 0d 02 01 02 61 08 0a 01 0d 04 00 04 01 78", want);
	CHECK(len == wl && memcmp(out, want, wl) == 0);
	/* Big messageIDs, and what does not fit. */
	CHECK(ber_ldap_result(out, sizeof(out), &len, 0x7fffffff,
	    BER_LDAP_BIND_RES, 13, "", NULL) == 0);
	CHECK(len == 17 && out[3] == 4 && out[4] == 0x7f);
	CHECK(ber_ldap_result(out, 10, &len, 1, BER_LDAP_BIND_RES, 13, "", NULL)
	    == -1);
	CHECK(ber_ldap_result(out, sizeof(out), &len, 1, BER_LDAP_BIND_RES, 200,
	    "", NULL) == -1);
	/* A response is well-formed BER too: it reads back. */
	CHECK(ber_ldap_result(out, sizeof(out), &len, 9, BER_LDAP_SEARCH_DONE, 13,
	    "StartTLS required", NULL) == 0);
	CHECK(ber_ldap_read(out, len, 8192, &msg) == 1 && msg.len == len &&
	    msg.msgid == 9 && msg.op == BER_LDAP_SEARCH_DONE);
	return CHECK_DONE();
}
