#ifndef PORTIER_EXPIRY_H
#define PORTIER_EXPIRY_H

#include <time.h>

struct cfg;
struct tlsctx;

/*
 * Certificate expiry while portier runs. Loading warns about a certificate
 * that expires within 30 days (at start and on reload, with the config
 * line); a daemon that runs for months needs the same words again when no
 * one restarts it, so the master calls expiry_warn() once a day.
 */

#define EXPIRY_WARN_DAYS 30
#define EXPIRY_CHECK_S 86400.0   /* how often the master looks */

/* expiry_warn(c, tls, now): one warning line per certificate of c's
 * listeners (tls[i] is listener i's server context, NULL if none) that
 * expires within EXPIRY_WARN_DAYS of now or has expired. Returns how many
 * lines it wrote. */
unsigned expiry_warn(const struct cfg *c, struct tlsctx *const *tls, time_t now);

/* expiry_staples(c, tls, now): one warning line per OCSP response of c's
 * listeners found past its nextUpdate at now (one without: a day past its
 * thisUpdate), the first time only (the
 * workers stopped stapling it by themselves). The master calls it on every
 * wake-up. Returns how many lines it wrote. */
unsigned expiry_staples(const struct cfg *c, struct tlsctx *const *tls, time_t now);

/* expiry_ocsp_print(c): a fingerprint of c's ocsp files as they are on
 * disk (inode, size, modification time): it changes when one is replaced
 * or rewritten. 0 when c has none. */
unsigned long long expiry_ocsp_print(const struct cfg *c);

/* expiry_interval(): EXPIRY_CHECK_S, or the seconds in
 * PORTIER_TEST_EXPIRY_S (tests only; documented in ARCHITECTURE.md beside
 * PORTIER_TEST_WORKER_FAIL). */
double expiry_interval(void);

#endif
