/*
 * ocsp = FILE: the OCSP response stapled to one certificate's handshakes.
 * The master reads it (at start, on -t and on each reload) and checks it
 * with tlsctx_ocsp.c before it goes on the certificate's context; workers
 * inherit the context. A response is only good until its nextUpdate: from
 * then on the status callback declines to staple it (one comparison, on
 * handshakes whose client asked), and the master says so once
 * (tlsctx_staple_lapsed).
 *
 * A response without nextUpdate is the responder saying newer information
 * is always there (RFC 6960 4.2.2.1). Clients do not hold it good for ever:
 * NSS, and so Firefox, takes it as too old a day after its thisUpdate and
 * refuses a handshake that staples it then. Portier staples it for that day
 * and no longer, as if that were its nextUpdate.
 */

#include "tlsctx_int.h"
#include "tlsctx_ocsp.h"

#include <stdio.h>
#include <time.h>

#define SECTION(l, cc) ((cc)->inherited ? "tls" : (l)->name)

#define NO_NEXT_GOOD_S 86400  /* a response without nextUpdate: from thisUpdate */

/* BoringSSL's server-side status callback, used only to veto: the
 * response on the context is sent unless it has lapsed. */
static int staple_cb(SSL *ssl, void *arg)
{
	const struct tlscert *tc = arg;

	if ((int64_t)time(NULL) >= tc->staple_until)
		return SSL_TLSEXT_ERR_NOACK;
	return SSL_TLSEXT_ERR_OK;
}

int tlsctx_staple_load(struct tlscert *tc, STACK_OF(X509) *chain, const struct cfg *c,
                       const struct cfg_listener *l, const struct cfg_cert *cc,
                       int reload, struct diag *d)
{
	const char *path = cc->ocsp;
	struct tlsocsp_result res = {0};
	struct tlsfile f = {0};
	char why[256];
	int rc = -1;

	if (sk_X509_num(chain) < 2) {
		snprintf(why, sizeof(why), "%s holds no issuer certificate after the leaf, "
		         "and the response cannot be checked without it; append the issuer",
		         cc->cert);
	} else if (tlsctx_file_read(path, TLSOCSP_MAX_BYTES, "an OCSP response", &f, why,
	                            sizeof(why)) < 0) {
		/* why says it */
	} else if (f.len == 0) {
		snprintf(why, sizeof(why), "empty");
	} else if (tlsocsp_check(f.p, f.len, sk_X509_value(chain, 0), sk_X509_value(chain, 1),
	                         (int64_t)time(NULL), &res, why, sizeof(why)) == 0) {
		int64_t until = res.has_next ? res.next_update : res.this_update + NO_NEXT_GOOD_S;
		char when[40];

		if (until <= (int64_t)time(NULL)) {
			/* Only a response without nextUpdate gets here: the
			 * check refused one past its nextUpdate. */
			snprintf(why, sizeof(why), "out of date: it has no nextUpdate and its "
			         "thisUpdate %s is more than a day old; fetch a new one",
			         tlsocsp_utc(res.this_update, when, sizeof(when)));
			res.stale = 1;
		} else if (!SSL_CTX_set_ocsp_response(tc->ctx, f.p, f.len)) {
			snprintf(why, sizeof(why), "out of memory");
		} else {
			tc->stapled = 1;
			tc->staple_until = until;
			tc->staple_no_next = !res.has_next;
			SSL_CTX_set_tlsext_status_cb(tc->ctx, staple_cb);
			SSL_CTX_set_tlsext_status_arg(tc->ctx, tc);
			rc = 0;
		}
	}
	/* A reload warns and goes on (a new certificate with last week's
	 * response must still be served). So does a start with a response
	 * that fits but is out of date: a fetch that failed for a few days
	 * must not keep the whole service down for want of a staple. */
	if (rc < 0)
		diag_add(d, reload || res.stale, c->file, cc->ocsp_line, SECTION(l, cc), "ocsp",
		         "%s: %s%s", path, why, reload || res.stale ?
		         "; this certificate goes without a staple" : "");
	tlsctx_file_free(&f);
	return rc;
}

int tlsctx_staple_lapsed(struct tlsctx *t, size_t i, time_t now, time_t *until)
{
	struct tlscert *tc;

	if (t == NULL || i >= t->ncerts)
		return -1;
	tc = &t->certs[i];
	if (!tc->stapled || tc->staple_lapsed ||
	    (int64_t)now < tc->staple_until)
		return 0;
	tc->staple_lapsed = 1;
	*until = (time_t)tc->staple_until;
	return tc->staple_no_next ? 2 : 1;
}
