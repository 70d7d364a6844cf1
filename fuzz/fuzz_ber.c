#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ber.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reader on raw bytes, with the real limit and with limits around the
 * input's own length; every pointer it hands out must lie inside the input,
 * and every prefix of a whole message must read as "need more". */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t maxes[] = { 8192, 0, 1, 64 };
	struct ber_ldap_msg m, m2;
	uint8_t out[256];
	size_t len;

	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		size_t max = maxes[i] ? maxes[i] : size;
		int r = ber_ldap_read(data, size, max, &m);

		if (r == 0 && size >= max && max >= 6)
			abort();
		if (r != 1)
			continue;
		if (m.len == 0 || m.len > size || m.len > max ||
		    m.msgid > 0x7fffffffu)
			abort();
		if (m.oid != NULL && (m.oid < data ||
		    m.oid + m.oid_len > data + m.len))
			abort();
		if (m.body == NULL || m.body < data || m.body + m.body_len > data + m.len)
			abort();
		if (m.controls != NULL && (m.controls < m.body + m.body_len ||
		    m.controls + m.controls_len > data + m.len))
			abort();
		{
			int c = ber_ldap_critical(&m);
			if (c < -1 || c > 1 || (m.controls == NULL && c != 0))
				abort();
		}
		/* The response readers of `portier probe`, on any op. */
		{
			unsigned code;
			(void)ber_ldap_code(&m, &code);
			if (ber_ldap_entry_has(&m, "supportedExtension",
			    "1.3.6.1.4.1.1466.20037") > 1)
				abort();
		}
		if (ber_ldap_read(data, m.len - 1, max, &m2) != 0)
			abort();
		/* A response to it reads back (an op | 1 of 0x77 would
		 * be an ExtendedRequest, so that maps to 0x78). */
		if (ber_ldap_result(out, sizeof(out), &len, m.msgid,
		    (m.op | 1) == BER_LDAP_EXTENDED_REQ ? BER_LDAP_EXTENDED_RES :
		    m.op | 1, 13, "x", NULL) == 0 &&
		    ber_ldap_read(out, len, sizeof(out), &m2) != 1)
			abort();
	}
	return 0;
}
