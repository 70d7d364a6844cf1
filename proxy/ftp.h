#ifndef PORTIER_FTP_H
#define PORTIER_FTP_H

#include <stddef.h>
#include <stdint.h>

/*
 * FTP's framing (RFC 959 section 4.2), shared by the STARTTLS driver and
 * the control-channel filter: pure functions over bytes.
 */

/* ftp_reply(p, n, max, len, code): frame the reply at the start of
 * p[0..n): "ddd text" on one line, or "ddd-text" ... up to a line that
 * starts with the same "ddd " (RFC 959 4.2). Lines end in LF (CRLF or bare
 * LF). 1 with *len (the whole reply, terminator included) and *code; 0
 * need more; -1 longer than max; -2 the first line does not start with
 * three digits and ' ', '-' or the line end. */
int ftp_reply(const uint8_t *p, size_t n, size_t max, size_t *len, int *code);

#endif
