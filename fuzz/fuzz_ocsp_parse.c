#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsctx_ocsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* span lies within [data, data + size). */
static int inside(const CBS *span, const uint8_t *data, size_t size)
{
	return CBS_len(span) == 0 ||
	       (CBS_data(span) >= data && CBS_len(span) <= size &&
	        CBS_data(span) - data <= (ptrdiff_t)(size - CBS_len(span)));
}

/* A GeneralizedTime of years 0000..9999, in seconds. */
static int plausible(int64_t t)
{
	return t >= -62167219200LL && t < 253402300800LL;
}

/* The OCSP response reader on raw bytes (a staple file an admin fetched).
 * Oracles: every span it returns lies within the input; counts within
 * their bounds and at least one SingleResponse; a refusal says why; times
 * are of years 0000 to 9999; the input with a byte more or a byte less is
 * no response (DER has one length and nothing after it). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tlsocsp o, q;
	const char *why = NULL, *why2;
	uint8_t *more;

	if (tlsocsp_parse(data, size, &o, &why) < 0) {
		if (why == NULL)
			abort();
		return 0;
	}
	if (o.nsingles == 0 || o.nsingles > TLSOCSP_MAX_SINGLES || o.ncerts > TLSOCSP_MAX_CERTS ||
	    !inside(&o.tbs, data, size) || !inside(&o.sig, data, size) ||
	    !inside(&o.sig_oid, data, size) || !inside(&o.sig_params, data, size) ||
	    !inside(&o.responder, data, size) || CBS_len(&o.tbs) == 0 ||
	    CBS_data(&o.tbs)[0] != 0x30 || CBS_len(&o.sig) == 0 || !plausible(o.produced_at))
		abort();
	for (size_t i = 0; i < o.ncerts; i++)
		if (!inside(&o.certs[i], data, size) || CBS_len(&o.certs[i]) < 2)
			abort();
	for (size_t i = 0; i < o.nsingles; i++) {
		const struct tlsocsp_single *s = &o.singles[i];
		if (!inside(&s->hash_oid, data, size) || !inside(&s->name_hash, data, size) ||
		    !inside(&s->key_hash, data, size) || !inside(&s->serial, data, size) ||
		    CBS_len(&s->serial) < 3 || !plausible(s->this_update) ||
		    (s->has_next && !plausible(s->next_update)) ||
		    (s->status == TLSOCSP_REVOKED && !plausible(s->revoked_at)))
			abort();
	}
	if (size > 0 && tlsocsp_parse(data, size - 1, &q, &why2) == 0)
		abort();
	if ((more = malloc(size + 1)) == NULL)
		return 0;
	memcpy(more, data, size);
	more[size] = 0;
	if (tlsocsp_parse(more, size + 1, &q, &why2) == 0)
		abort();
	free(more);
	return 0;
}
