/* ticket_keys = FILE: the key file's reader (each problem as file:line),
 * and the checks on the file itself before it is read. */
#include "check.h"
#include "tlsctx_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* 80 bytes 0x00..0x4f and 48 bytes 0xa0..0xcf, base64. */
#define K80 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk8="
#define K48 "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr/AwcLDxMXGx8jJysvMzc7P"
/* 80 bytes of 0x11 and 0x22. */
#define K80B "ERERERERERERERERERERERERERERERERERERERERERERERERERERERESIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiIiI="

static int parse(const char *text, struct tlsticket_file *f, struct diag *d)
{
	return tlsticket_file_parse("t.keys", text, strlen(text), f, d);
}

/* text is refused, and the first message is want. */
static void refused(const char *text, const char *want)
{
	struct diag d = {0};
	struct tlsticket_file f;

	CHECK(parse(text, &f, &d) == -1);
	CHECK(f.keys == NULL && f.n == 0);
	CHECK(d.n >= 1);
	CHECK_STR(d.n ? d.lines[0] : NULL, want);
	diag_free(&d);
}

static void test_parse(void)
{
	struct diag d = {0};
	struct tlsticket_file f;

	CHECK(parse(K80 "\n", &f, &d) == 0 && d.errors == 0 && f.n == 1);
	for (int i = 0; i < 16; i++)
		CHECK(f.keys[0].name[i] == i);
	/* nginx's order: name, HMAC key, AES key. */
	CHECK(f.keys[0].hmac_len == 32 && f.keys[0].aes_len == 32);
	CHECK(f.keys[0].hmac[0] == 16 && f.keys[0].hmac[31] == 47);
	CHECK(f.keys[0].aes[0] == 48 && f.keys[0].aes[31] == 79);
	tlsticket_file_free(&f);
	CHECK(f.keys == NULL && f.n == 0);

	/* Order kept; 48-byte keys (name, AES-128, HMAC); CRLF, blanks,
	 * comments, no final newline. */
	CHECK(parse("# rotated hourly\r\n" K48 "\r\n\r\n  " K80 "  \n#\n" K80B, &f, &d) == 0);
	CHECK(d.errors == 0 && f.n == 3);
	CHECK(f.keys[0].name[0] == 0xa0 && f.keys[0].aes_len == 16 && f.keys[0].hmac_len == 16);
	CHECK(f.keys[0].aes[0] == 0xb0 && f.keys[0].hmac[0] == 0xc0 && f.keys[0].hmac[15] == 0xcf);
	CHECK(f.keys[1].name[0] == 0 && f.keys[2].name[0] == 0x11);
	tlsticket_file_free(&f);
	diag_free(&d);

	refused("", "t.keys:1: no keys; write one with 'openssl rand 80 | openssl base64 -A'");
	refused("# nothing yet\n\n", "t.keys:2: no keys; write one with "
	        "'openssl rand 80 | openssl base64 -A'");
	refused(K80 "\n" "not*base64\n", "t.keys:2: not base64");
	refused(K80 "\n\n" "AAAA\n", "t.keys:3: not a key: expected base64 of 80 (or 48) "
	        "bytes, as 'openssl rand 80 | openssl base64 -A' writes");
	refused(K80 K80 "\n", "t.keys:1: not a key: expected base64 of 80 (or 48) "
	        "bytes, as 'openssl rand 80 | openssl base64 -A' writes");
	refused(K80 "\n" K80B "\n" K80 "\n", "t.keys:3: the same key name as line 1: "
	        "every key needs its own");
	refused("AAECAwQF BgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1"
	        "Njc4OTo7PD0+P0BBQkNERUZHSElKS0xNTk8=\n", "t.keys:1: not base64");
	{
		char many[(sizeof(K48) + 1) * 70];
		size_t n = 0;
		/* 65 distinct names: the first byte of each differs. */
		for (int i = 0; i < 65; i++) {
			char line[sizeof(K48)];
			memcpy(line, K48, sizeof(K48));
			line[0] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64];
			line[1] = i < 64 ? 'A' : 'B';
			memcpy(many + n, line, sizeof(K48) - 1);
			n += sizeof(K48) - 1;
			many[n++] = '\n';
		}
		many[n] = '\0';
		refused(many, "t.keys:65: more than 64 keys; rotation keeps a few");
	}
}

static const char *write_file(const char *dir, const char *text, mode_t mode)
{
	static char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/k", dir);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	close(fd);
	chmod(path, mode);
	return path;
}

static void load_refused(const char *path, const char *want_tail)
{
	struct diag d = {0};
	struct tlsticket_file f;
	char want[512];

	CHECK(tlsticket_file_load(path, &f, "p.ini", 7, "tls", &d) == -1);
	CHECK(f.n == 0 && d.n == 1);
	snprintf(want, sizeof(want), "p.ini:7: [tls] ticket_keys: %s%s", path, want_tail);
	CHECK_STR(d.n ? d.lines[0] : NULL, want);
	diag_free(&d);
}

static void test_load(void)
{
	char dir[] = "/tmp/portier-ticketfile-XXXXXX";
	struct diag d = {0};
	struct tlsticket_file f;
	const char *p;

	if (mkdtemp(dir) == NULL)
		abort();
	p = write_file(dir, K80 "\n" K48 "\n", 0640);
	CHECK(tlsticket_file_load(p, &f, "p.ini", 7, "tls", &d) == 0 && f.n == 2 && d.n == 0);
	tlsticket_file_free(&f);
	p = write_file(dir, K80 "\n", 0644);
	load_refused(p, " is readable by everyone; chmod o-rwx it (0600 or 0640)");
	/* Not readable, but anyone could put a key of theirs first. */
	p = write_file(dir, K80 "\n", 0602);
	load_refused(p, " is writable by everyone; chmod o-rwx it (0600 or 0640)");
	p = write_file(dir, "", 0600);
	load_refused(p, " is empty; write a key with 'openssl rand 80 | openssl base64 -A'");
	load_refused(dir, ": not a regular file");
	unlink(p);
	load_refused(p, ": No such file or directory");
	/* A problem inside the file names the file and its line. */
	p = write_file(dir, K80 "\nx\n", 0600);
	CHECK(tlsticket_file_load(p, &f, "p.ini", 7, "tls", &d) == -1 && d.n == 1);
	{
		char want[300];
		snprintf(want, sizeof(want), "%s:2: not a key: expected base64 of 80 (or 48) "
		         "bytes, as 'openssl rand 80 | openssl base64 -A' writes", p);
		CHECK_STR(d.n ? d.lines[0] : NULL, want);
	}
	diag_free(&d);
	unlink(p);
	rmdir(dir);
}

int main(void)
{
	test_parse();
	test_load();
	return CHECK_DONE();
}
