#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probe_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The parsers `portier probe` runs on a server's bytes. Byte 0 picks the
 * reply kind (and the LDAP message id), byte 1 a split point; the rest is
 * what the server sent. Fed whole and in two pieces, a reader must come to
 * the same verdict, text and leftover; text stays NUL-terminated within
 * its buffer; what the capability readers and the banner namer get must
 * not trip them.
 */

static int feed(struct probe_reply *r, enum probe_rk kind, const uint8_t *p, size_t n,
                size_t split, size_t *took)
{
	size_t used, off = 0;
	int k = 0;

	probe_reply_init(r, kind, "p1");
	if (split > 0 && split < n) {
		k = probe_reply_feed(r, p, split, &used);
		if (used > split)
			abort();
		off = used;
		if (k == 0 && used != split)
			abort();
	}
	if (k == 0) {
		k = probe_reply_feed(r, p + off, n - off, &used);
		if (used > n - off)
			abort();
		off += used;
	}
	*took = off;
	if (r->len >= sizeof(r->text) || strlen(r->text) != r->len)
		abort();
	return k;
}

static int ldap(struct probe_ldap *l, const uint8_t *p, size_t n, size_t split, uint32_t id,
                size_t *took)
{
	size_t used, off = 0;
	int k = 0;

	memset(l, 0, sizeof(*l));
	if (split > 0 && split < n) {
		k = probe_ldap_feed(l, p, split, &used, id);
		if (used > split)
			abort();
		off = used;
	}
	if (k == 0) {
		k = probe_ldap_feed(l, p + off, n - off, &used, id);
		if (used > n - off)
			abort();
		off += used;
	}
	*took = off;
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct probe_reply a, b;
	struct probe_ldap la, lb;
	struct probe_caps c;
	enum probe_rk kind;
	size_t ta, tb, split;
	uint32_t id;
	int ka, kb;

	if (size < 2)
		return 0;
	kind = (enum probe_rk)(data[0] % 6);
	split = data[1];
	id = 1 + (data[0] >> 7);
	data += 2;
	size -= 2;

	ka = feed(&a, kind, data, size, 0, &ta);
	kb = feed(&b, kind, data, size, split, &tb);
	/* A reader that failed on a prefix may have failed on bytes the
	 * whole would not reach; one that finished must agree. */
	if (ka == 1 && (kb != 1 || ta != tb || strcmp(a.text, b.text) != 0 || a.code != b.code))
		abort();
	if (ka == 1) {
		probe_caps_smtp(a.text, &c);
		probe_caps_imap(a.text, &c);
		probe_caps_pop3(a.text, &c);
		probe_caps_ftp(a.text, &c);
		if (c.login_in_clear < -1 || c.login_in_clear > 1)
			abort();
	}
	(void)probe_banner(data, size);

	ka = ldap(&la, data, size, 0, id, &ta);
	kb = ldap(&lb, data, size, split, id, &tb);
	if (ka == 1 && (kb != 1 || ta != tb || la.code != lb.code ||
	                la.starttls_listed != lb.starttls_listed || la.entries != lb.entries))
		abort();
	return 0;
}
