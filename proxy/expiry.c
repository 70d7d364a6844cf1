#include "expiry.h"

#include "cfg.h"
#include "log.h"
#include "tlsctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* "2026-12-14 10:00 UTC" */
static const char *utc(long long t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, len, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(out, len, "%lld", t);
	return out;
}

unsigned expiry_warn(const struct cfg *c, struct tlsctx *const *tls, time_t now)
{
	unsigned n = 0;

	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct cfg_listener *l = &c->listeners[i];
		struct tlsctx_cert_info ci;

		for (size_t k = 0; tls[i] != NULL && tlsctx_own_cert(tls[i], k, &ci) == 0; k++) {
			long long left = (long long)ci.not_after - (long long)now;
			char when[40], subj[LOG_ESCAPED_SIZE(64)];
			const char *path = k < l->tls.ncerts ? l->tls.certs[k].cert : "-";

			if (left >= (long long)EXPIRY_WARN_DAYS * 86400)
				continue;
			log_escape_str(ci.subject_cn[0] ? ci.subject_cn : "-", subj, sizeof(subj));
			if (left <= 0)
				log_warnx("[%s] certificate %s (CN=%s, serial %s) expired on %s; "
				          "clients refuse it: renew it", l->name, path, subj,
				          ci.serial, utc((long long)ci.not_after, when, sizeof(when)));
			else
				log_warnx("[%s] certificate %s (CN=%s, serial %s) expires in %lld "
				          "day%s, on %s; renew it", l->name, path, subj, ci.serial,
				          left / 86400, left / 86400 == 1 ? "" : "s",
				          utc((long long)ci.not_after, when, sizeof(when)));
			n++;
		}
	}
	return n;
}

unsigned expiry_staples(const struct cfg *c, struct tlsctx *const *tls, time_t now)
{
	unsigned n = 0;
	time_t until;
	char when[40];

	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct cfg_listener *l = &c->listeners[i];

		for (size_t k = 0; tls[i] != NULL && k < l->tls.ncerts; k++) {
			int r = tlsctx_staple_lapsed(tls[i], k, now, &until);

			if (r != 1 && r != 2)
				continue;
			log_warnx("[%s] OCSP response %s (certificate %s) %s %s%s and is no "
			          "longer stapled; fetch a new one and reload", l->name,
			          l->tls.certs[k].ocsp ? l->tls.certs[k].ocsp : "-",
			          l->tls.certs[k].cert, r == 1 ? "passed its nextUpdate on" :
			          "went out of date on", utc((long long)until, when, sizeof(when)),
			          r == 1 ? "" : ", a day after its thisUpdate (it has no nextUpdate)");
			n++;
		}
	}
	return n;
}

unsigned long long expiry_ocsp_print(const struct cfg *c)
{
	unsigned long long fp = 0;
	struct stat st;

	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct cfg_listener *l = &c->listeners[i];

		for (size_t k = 0; k < l->tls.ncerts; k++) {
			const char *path = l->tls.certs[k].ocsp;
			unsigned long long h;

			if (path == NULL)
				continue;
			/* A file that is gone counts too: its return is a change. */
			if (stat(path, &st) < 0)
				memset(&st, 0, sizeof(st));
			h = (unsigned long long)st.st_ino * 0x9e3779b97f4a7c15ULL ^
			    (unsigned long long)st.st_size * 0xc2b2ae3d27d4eb4fULL ^
			    (unsigned long long)st.st_mtim.tv_sec * 0x165667b19e3779f9ULL ^
			    (unsigned long long)st.st_mtim.tv_nsec;
			fp = (fp ^ h) * 0x100000001b3ULL + 1;
		}
	}
	return fp;
}

double expiry_interval(void)
{
	const char *e = getenv("PORTIER_TEST_EXPIRY_S");
	char *end;
	double v;

	if (e == NULL || *e == '\0')
		return EXPIRY_CHECK_S;
	v = strtod(e, &end);
	return *end == '\0' && v >= 0.1 && v <= EXPIRY_CHECK_S ? v : EXPIRY_CHECK_S;
}
