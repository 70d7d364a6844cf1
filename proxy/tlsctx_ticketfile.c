/*
 * ticket_keys = FILE: session-ticket keys shared by several nodes, in the
 * format HAProxy's tls-ticket-keys and nginx's ssl_session_ticket_key
 * files hold: one key per line, base64 of 80 random bytes (`openssl rand
 * 80 | openssl base64 -A`) or of 48. The first line encrypts new tickets,
 * every line decrypts; rotation writes a new first line and drops the
 * last, then reloads every node. Read by the master (as root) at start and
 * on each reload, before any privilege is dropped.
 */

#include "tlsctx_int.h"

#include <openssl/base64.h>
#include <openssl/mem.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/* One base64 line into k; 0, or -1 with *why. */
static int decode_key(const char *b64, size_t n, struct ticket_filekey *k, const char **why)
{
	uint8_t raw[96];
	size_t max, len;

	for (size_t i = 0; i < n; i++)
		if (!((b64[i] >= 'A' && b64[i] <= 'Z') || (b64[i] >= 'a' && b64[i] <= 'z') ||
		      (b64[i] >= '0' && b64[i] <= '9') || b64[i] == '+' || b64[i] == '/' ||
		      b64[i] == '=')) {
			*why = "not base64";
			return -1;
		}
	if (!EVP_DecodedLength(&max, n) || max > sizeof(raw) ||
	    !EVP_DecodeBase64(raw, &len, sizeof(raw), (const uint8_t *)b64, n)) {
		*why = "not a key: expected base64 of 80 (or 48) bytes, as "
		       "'openssl rand 80 | openssl base64 -A' writes";
		return -1;
	}
	memset(k, 0, sizeof(*k));
	if (len == 80) {
		memcpy(k->name, raw, 16);
		memcpy(k->hmac, raw + 16, 32);
		memcpy(k->aes, raw + 48, 32);
		k->hmac_len = k->aes_len = 32;
	} else if (len == 48) {
		memcpy(k->name, raw, 16);
		memcpy(k->aes, raw + 16, 16);
		memcpy(k->hmac, raw + 32, 16);
		k->hmac_len = k->aes_len = 16;
	} else {
		*why = "not a key: expected base64 of 80 (or 48) bytes, as "
		       "'openssl rand 80 | openssl base64 -A' writes";
		OPENSSL_cleanse(raw, sizeof(raw));
		return -1;
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

int tlsticket_file_parse(const char *name, const char *text, size_t len,
                         struct tlsticket_file *out, struct diag *d)
{
	struct ticket_filekey *keys = calloc(TLSTICKET_FILE_MAX_KEYS, sizeof(*keys));
	int lines[TLSTICKET_FILE_MAX_KEYS];
	size_t n = 0, pos = 0;
	int line = 0, errors = d->errors;

	memset(out, 0, sizeof(*out));
	if (keys == NULL) {
		diag_add(d, 0, name, 0, NULL, NULL, "out of memory");
		return -1;
	}
	while (pos < len) {
		const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - s) : len - pos;
		const char *why;

		pos += ll + (nl != NULL);
		line++;
		while (ll > 0 && is_space(s[0])) {
			s++;
			ll--;
		}
		while (ll > 0 && is_space(s[ll - 1]))
			ll--;
		if (ll == 0 || s[0] == '#')
			continue;
		if (memchr(s, '\0', ll) != NULL) {
			diag_add(d, 0, name, line, NULL, NULL, "a NUL byte: not a key file");
			continue;
		}
		if (n == TLSTICKET_FILE_MAX_KEYS) {
			diag_add(d, 0, name, line, NULL, NULL, "more than %d keys; "
			         "rotation keeps a few", TLSTICKET_FILE_MAX_KEYS);
			break;
		}
		if (decode_key(s, ll, &keys[n], &why) < 0) {
			diag_add(d, 0, name, line, NULL, NULL, "%s", why);
			continue;
		}
		for (size_t i = 0; i < n; i++)
			if (memcmp(keys[i].name, keys[n].name, 16) == 0) {
				diag_add(d, 0, name, line, NULL, NULL, "the same key name "
				         "as line %d: every key needs its own", lines[i]);
				break;
			}
		lines[n++] = line;
	}
	if (d->errors == errors && n == 0)
		diag_add(d, 0, name, line ? line : 1, NULL, NULL, "no keys; write one "
		         "with 'openssl rand 80 | openssl base64 -A'");
	if (d->errors > errors) {
		OPENSSL_cleanse(keys, TLSTICKET_FILE_MAX_KEYS * sizeof(*keys));
		free(keys);
		return -1;
	}
	out->keys = keys;
	out->n = n;
	return 0;
}

int tlsticket_file_load(const char *path, struct tlsticket_file *out,
                        const char *cfgfile, int line, const char *section,
                        struct diag *d)
{
	struct tlsfile f;
	char why[128];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (tlsctx_file_read(path, TLSTICKET_FILE_MAX_BYTES,
	                     "a ticket key file (a few lines)", &f, why, sizeof(why)) < 0) {
		diag_add(d, 0, cfgfile, line, section, "ticket_keys", "%s: %s", path, why);
		return -1;
	}
	/* Whoever reads the keys can decrypt every recorded session they
	 * protected; whoever writes one there, every session from then on
	 * (the first key seals), and resume as any client. The group is the
	 * admin's to choose (0640 lets it read), everyone is not. */
	if (f.mode & S_IROTH)
		diag_add(d, 0, cfgfile, line, section, "ticket_keys", "%s is readable by "
		         "everyone; chmod o-rwx it (0600 or 0640)", path);
	else if (f.mode & S_IWOTH)
		diag_add(d, 0, cfgfile, line, section, "ticket_keys", "%s is writable by "
		         "everyone; chmod o-rwx it (0600 or 0640)", path);
	else if (f.len == 0)
		diag_add(d, 0, cfgfile, line, section, "ticket_keys", "%s is empty; write a "
		         "key with 'openssl rand 80 | openssl base64 -A'", path);
	else
		rc = tlsticket_file_parse(path, (const char *)f.p, f.len, out, d);
	tlsctx_file_free(&f);
	return rc;
}

void tlsticket_file_free(struct tlsticket_file *f)
{
	if (f->keys != NULL) {
		OPENSSL_cleanse(f->keys, TLSTICKET_FILE_MAX_KEYS * sizeof(*f->keys));
		free(f->keys);
	}
	f->keys = NULL;
	f->n = 0;
}
