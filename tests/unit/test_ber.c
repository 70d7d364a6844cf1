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
	/* The messageID at its bounds: sixteen octets with leading zeros,
	 * not seventeen; none at all; 2^31 behind a zero octet. */
	CHECK(rd("30 14 02 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 05 42 00",
	    8192) == 1 && msg.msgid == 5);
	CHECK(rd("30 15 02 11 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 05 42 00",
	    8192) == -1);
	CHECK(rd("30 04 02 00 42 00", 8192) == -1);
	CHECK(rd("30 09 02 05 00 7f ff ff ff 42 00", 8192) == 1 &&
	    msg.msgid == 0x7fffffffu);
	CHECK(rd("30 09 02 05 00 80 00 00 00 42 00", 8192) == -1);
	/* An empty SEQUENCE; five length octets refused before they are all
	 * there; a message of exactly max bytes. */
	CHECK(rd("30 00", 8192) == -1);
	CHECK(rd("30 85 00 00", 8192) == -1);
	CHECK(rd("30 05 02 01 03 42 00", 7) == 1 && msg.len == 7);
	/* A high tag number (31, two identifier octets) is no LDAP op. */
	CHECK(rd("30 06 02 01 03 5f 1f 00", 8192) == 1 && msg.op == 0);
	/* Too little to tell, unless max bytes are there already. */
	CHECK(rd("30", 8192) == 0);
	CHECK(rd("30 84 00 00", 8192) == 0);
	CHECK(rd("30 84 00 00", 5) == 0);
	CHECK(rd("30 84 00 00", 4) == -1);
	CHECK(rd("", 8192) == 0);

	/* resultCode of an LDAPResult: one to three octets, non-negative. */
	unsigned code = 99;
#define BIND_RES(len, rlen, enumerated) \
	"30 " len " 02 01 01 61 " rlen " " enumerated " 04 00 04 00"
	CHECK(rd(BIND_RES("0c", "07", "0a 01 00"), 8192) == 1 &&
	    ber_ldap_code(&msg, &code) == 0 && code == 0);
	CHECK(rd(BIND_RES("0c", "07", "0a 01 0d"), 8192) == 1 &&
	    ber_ldap_code(&msg, &code) == 0 && code == 13);
	CHECK(rd(BIND_RES("0d", "08", "0a 02 01 00"), 8192) == 1 &&
	    ber_ldap_code(&msg, &code) == 0 && code == 256);
	CHECK(rd(BIND_RES("0e", "09", "0a 03 01 00 02"), 8192) == 1 &&
	    ber_ldap_code(&msg, &code) == 0 && code == 0x10002);
	code = 99;
	CHECK(rd(BIND_RES("0f", "0a", "0a 04 00 00 00 31"), 8192) == 1 &&
	    ber_ldap_code(&msg, &code) == -1);
	CHECK(rd(BIND_RES("0b", "06", "0a 00"), 8192) == 1 &&
	    ber_ldap_code(&msg, &code) == -1);
	CHECK(rd(BIND_RES("0c", "07", "0a 01 80"), 8192) == 1 &&
	    ber_ldap_code(&msg, &code) == -1);
	CHECK(rd(BIND_RES("0c", "07", "02 01 00"), 8192) == 1 &&
	    ber_ldap_code(&msg, &code) == -1);
	CHECK(code == 99);
	CHECK(rd("30 05 02 01 01 61 00", 8192) == 1 && ber_ldap_code(&msg, &code) == -1);
	/* Requests and entries carry none. */
	CHECK(rd("30 0c 02 01 02 60 07 02 01 03 04 00 80 00", 8192) == 1 &&
	    ber_ldap_code(&msg, &code) == -1);
	CHECK(rd("30 09 02 01 02 64 04 04 00 30 00", 8192) == 1 &&
	    ber_ldap_code(&msg, &code) == -1);
	/* Every response op portier writes reads back with its code. */
	static const unsigned results[] = {
		BER_LDAP_BIND_RES, BER_LDAP_SEARCH_DONE, BER_LDAP_MODIFY_RES,
		BER_LDAP_ADD_RES, BER_LDAP_DEL_RES, BER_LDAP_MODDN_RES,
		BER_LDAP_COMPARE_RES, BER_LDAP_EXTENDED_RES,
	};
	for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
		CHECK(ber_ldap_result(out, sizeof(out), &len, 3, results[i],
		    (unsigned)(50 + i), "d", NULL) == 0);
		CHECK(ber_ldap_read(out, len, 8192, &msg) == 1 &&
		    msg.op == results[i] && ber_ldap_code(&msg, &code) == 0 &&
		    code == 50 + i);
	}

	/* A SearchResultEntry's attributes: the rootDSE's supportedExtension
	 * with two values, StartTLS's the second. Types match in any case,
	 * values exactly. */
#define T_SUPEXT "04 12 73 75 70 70 6f 72 74 65 64 45 78 74 65 6e 73 69 6f 6e"
#define T_NAMING "04 0e 6e 61 6d 69 6e 67 43 6f 6e 74 65 78 74 73"
#define V_WHOAMI "04 17 31 2e 33 2e 36 2e 31 2e 34 2e 31 2e 34 32 30 33 2e 31 2e 31 31 2e 31"
#define V_STARTTLS "04 16 " STARTTLS_OID_HEX
	CHECK(rd("30 52 02 01 02 64 4d 04 00 30 49 30 47 " T_SUPEXT " 31 31 "
	    V_WHOAMI " " V_STARTTLS, 8192) == 1);
	CHECK(ber_ldap_entry_has(&msg, "supportedExtension", "1.3.6.1.4.1.1466.20037") == 1);
	CHECK(ber_ldap_entry_has(&msg, "SUPPORTEDextension", "1.3.6.1.4.1.1466.20037") == 1);
	CHECK(ber_ldap_entry_has(&msg, "supportedExtension", "1.3.6.1.4.1.4203.1.11.1") == 1);
	CHECK(ber_ldap_entry_has(&msg, "supportedExtension", "1.3.6.1.4.1.1466.2003") == 0);
	CHECK(ber_ldap_entry_has(&msg, "supportedExtension", "1.3.6.1.4.1.1466.200370") == 0);
	CHECK(ber_ldap_entry_has(&msg, "supportedExtensio", "1.3.6.1.4.1.1466.20037") == 0);
	CHECK(ber_ldap_entry_has(&msg, "supportedExtensions", "1.3.6.1.4.1.1466.20037") == 0);
	/* The match after another attribute and an empty value set. */
	CHECK(rd("30 71 02 01 02 64 6c 04 00 30 68 30 1e " T_NAMING
	    " 31 0c 04 0a 64 63 3d 65 78 61 6d 70 6c 65 30 16 " T_SUPEXT " 31 00 30 2e "
	    T_SUPEXT " 31 18 " V_STARTTLS, 8192) == 1);
	CHECK(ber_ldap_entry_has(&msg, "supportedExtension", "1.3.6.1.4.1.1466.20037") == 1);
	CHECK(ber_ldap_entry_has(&msg, "namingcontexts", "dc=example") == 1);
	CHECK(ber_ldap_entry_has(&msg, "namingContexts", "DC=example") == 0);
	CHECK(ber_ldap_entry_has(&msg, "namingContexts", "1.3.6.1.4.1.1466.20037") == 0);
	/* No attributes. */
	CHECK(rd("30 09 02 01 02 64 04 04 00 30 00", 8192) == 1 &&
	    ber_ldap_entry_has(&msg, "supportedExtension", "x") == 0);
	/* Malformed: objectName not an OCTET STRING, attributes not a
	 * SEQUENCE or missing, an attribute not a SEQUENCE or without values,
	 * its type not an OCTET STRING, its values not a SET, a value not an
	 * OCTET STRING or cut short; not an entry at all. */
	CHECK(rd("30 09 02 01 02 64 04 0c 00 30 00", 8192) == 1 &&
	    ber_ldap_entry_has(&msg, "a", "b") == -1);
	CHECK(rd("30 09 02 01 02 64 04 04 00 31 00", 8192) == 1 &&
	    ber_ldap_entry_has(&msg, "a", "b") == -1);
	CHECK(rd("30 07 02 01 02 64 02 04 00", 8192) == 1 &&
	    ber_ldap_entry_has(&msg, "a", "b") == -1);
	CHECK(rd("30 0b 02 01 02 64 06 04 00 30 02 31 00", 8192) == 1 &&
	    ber_ldap_entry_has(&msg, "a", "b") == -1);
	CHECK(rd("30 0f 02 01 02 64 0a 04 00 30 06 31 04 04 00 31 00", 8192) == 1 &&
	    ber_ldap_entry_has(&msg, "", "") == -1);
	CHECK(rd("30 0d 02 01 02 64 08 04 00 30 04 30 02 04 00", 8192) == 1 &&
	    ber_ldap_entry_has(&msg, "a", "b") == -1);
	CHECK(rd("30 0f 02 01 02 64 0a 04 00 30 06 30 04 02 00 31 00", 8192) == 1 &&
	    ber_ldap_entry_has(&msg, "a", "b") == -1);
	CHECK(rd("30 0f 02 01 02 64 0a 04 00 30 06 30 04 04 00 30 00", 8192) == 1 &&
	    ber_ldap_entry_has(&msg, "a", "b") == -1);
	CHECK(rd("30 11 02 01 02 64 0c 04 00 30 08 30 06 04 00 31 02 02 00", 8192) == 1 &&
	    ber_ldap_entry_has(&msg, "", "") == -1);
	CHECK(rd("30 11 02 01 02 64 0c 04 00 30 08 30 06 04 00 31 02 04 05", 8192) == 1 &&
	    ber_ldap_entry_has(&msg, "", "") == -1);
	CHECK(rd("30 1d 02 01 01 77 18 80 16 " STARTTLS_OID_HEX, 8192) == 1 &&
	    ber_ldap_entry_has(&msg, "a", "b") == -1);

	/* A BindRequest's credentials (RFC 4511 4.2): an empty simple
	 * password is none; a password, any SASL bind, a constructed simple
	 * one are. */
	CHECK(rd("30 0c 02 01 02 60 07 02 01 03 04 00 80 00", 8192) == 1 &&
	    ber_ldap_bind_has_credentials(&msg) == 0);
	CHECK(rd("30 0f 02 01 02 60 0a 02 01 03 04 00 80 03 61 62 63", 8192) == 1 &&
	    ber_ldap_bind_has_credentials(&msg) == 1);
	CHECK(rd("30 16 02 01 02 60 11 02 01 03 04 00 a3 0a 04 08 45 58 54 45 52 4e 41 4c",
	    8192) == 1 && ber_ldap_bind_has_credentials(&msg) == 1);
	CHECK(rd("30 0c 02 01 02 60 07 02 01 03 04 00 a0 00", 8192) == 1 &&
	    ber_ldap_bind_has_credentials(&msg) == 1);
	/* Malformed: the version not an INTEGER, the name not an OCTET
	 * STRING, no authentication; not a bind. */
	CHECK(rd("30 0c 02 01 02 60 07 04 01 03 04 00 80 00", 8192) == 1 &&
	    ber_ldap_bind_has_credentials(&msg) == -1);
	CHECK(rd("30 0c 02 01 02 60 07 02 01 03 02 00 80 00", 8192) == 1 &&
	    ber_ldap_bind_has_credentials(&msg) == -1);
	CHECK(rd("30 0a 02 01 02 60 05 02 01 03 04 00", 8192) == 1 &&
	    ber_ldap_bind_has_credentials(&msg) == -1);
	CHECK(rd("30 1d 02 01 01 77 18 80 16 " STARTTLS_OID_HEX, 8192) == 1 &&
	    ber_ldap_bind_has_credentials(&msg) == -1);

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
	CHECK(ber_ldap_result(out, sizeof(out), &len, 1, BER_LDAP_BIND_RES, 128,
	    "", NULL) == -1);
	CHECK(ber_ldap_result(out, sizeof(out), &len, 1, BER_LDAP_BIND_RES, 127,
	    "", NULL) == 0 && out[9] == 127);
	CHECK(ber_ldap_result(out, sizeof(out), &len, 0x80000000u,
	    BER_LDAP_BIND_RES, 13, "", NULL) == -1);
	/* A response is well-formed BER too: it reads back. */
	CHECK(ber_ldap_result(out, sizeof(out), &len, 9, BER_LDAP_SEARCH_DONE, 13,
	    "StartTLS required", NULL) == 0);
	CHECK(ber_ldap_read(out, len, 8192, &msg) == 1 && msg.len == len &&
	    msg.msgid == 9 && msg.op == BER_LDAP_SEARCH_DONE);
	return CHECK_DONE();
}
