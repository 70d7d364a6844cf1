#ifndef PORTIER_CFG_CHECK_H
#define PORTIER_CFG_CHECK_H

#include "cfg.h"
#include "diag.h"

/* cfg_check(c, file, opts, d): once c is parsed from file: the hostname
 * defaulted (opts->system_hostname, else the machine's), each listener's
 * TLS settings inherited from [tls], every listener checked, and names and
 * addresses used twice found; each problem goes into d with its line. */
void cfg_check(struct cfg *c, const char *file, const struct cfg_load_opts *opts,
               struct diag *d);

#endif
