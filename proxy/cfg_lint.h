#ifndef PORTIER_CFG_LINT_H
#define PORTIER_CFG_LINT_H

#include "cfg.h"
#include "diag.h"

#include <stddef.h>

/* cfg_lint(c, d): warn about a ports_file or pid_file whose directory is
 * missing; about well-known ports used with the other encryption model
 * (993 with starttls, 25 with tls, ...), the mismatch that causes most
 * "wrong version number" and hanging-client reports; and about xclient =
 * yes beside send_proxy, which replaces it. */
void cfg_lint(const struct cfg *c, struct diag *d);

/* cfg_lint_plaintext_hint(port, proto, out, outlen): the log reason for a
 * client that spoke plaintext on implicit-TLS port `port` of a `proto`
 * listener, naming the scheme or port it should use. Returns out. */
const char *cfg_lint_plaintext_hint(int port, enum cfg_proto proto, char *out,
                                    size_t outlen);

#endif
