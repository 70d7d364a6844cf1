/* libFuzzer target for filter_ftp, the FTP control-channel filter: its
 * command framing and verb judgement, the reply framing and the PASV/EPSV
 * rewriter.
 *
 *   byte 0     flags: bit 0 PROT C allowed, bit 1 the broker has no port,
 *              bit 2 active mode on (bit 3: its broker refuses, bit 4:
 *              it has no port)
 *   byte 1     where the client's bytes end and the backend's begin
 *              (that share of the rest)
 *   byte 2     chunk-size seed
 *   then       the client's bytes, then the backend's
 *
 * Both sides are fed in chunks, the filter pumped until nothing moves, as
 * the relay does. abort() marks a broken rule, each judged apart from the
 * filter's code:
 *   - every line the backend gets is whole and its verb (after blanks and
 *     Telnet IAC pairs) is letters only, then a space or the end, and is
 *     none of PORT EPRT CCC REIN PBSZ PROT AUTH (but for the PORT line
 *     the active-mode broker wrote, exactly, and only with it on); it
 *     holds no NUL or CR before its end;
 *   - the backend never gets more than the client sent, the broker's PORT
 *     lines aside, nor more of those than PORT or EPRT lines the client
 *     sent;
 *   - every line the client gets that starts "227 " or "229 " (how a
 *     client finds the end of a reply) names the broker's address and
 *     port, never one of the backend's;
 *   - held bytes stay within the filter's bounds.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "filter.h"
#include "filter_ftp.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REC_MAX (1 << 18)

static int refuse_all, active_refuse, active_noport;

#define OUR_PORT "PORT 10,0,0,9,4,1\r\n"

static int active(void *ctx, int family, const uint8_t *addr, unsigned port,
    char *cmd, size_t size)
{
	(void)ctx;
	(void)addr;
	if ((family != AF_INET && family != AF_INET6) || port == 0 || port > 65535)
		abort();	/* AF_INET, AF_INET6; a port the filter checked */
	if (active_refuse)
		return -1;
	if (active_noport)
		return -2;
	memcpy(cmd, OUR_PORT, sizeof(OUR_PORT) < size ? sizeof(OUR_PORT) : size);
	return 0;
}

static int broker(void *ctx, int epsv, const uint8_t *addr, unsigned port,
    uint8_t pub[4], unsigned *pub_port)
{
	(void)ctx;
	(void)epsv;
	(void)addr;
	(void)port;
	if (refuse_all)
		return -1;
	pub[0] = 192, pub[1] = 0, pub[2] = 2, pub[3] = 1;
	*pub_port = 50000;
	return 0;
}

struct rec {
	uint8_t b[REC_MAX];
	size_t n;
};

static struct rec to_backend, to_client;

static void drain(struct buf *b, struct rec *r)
{
	size_t n = b->len;

	if (n > REC_MAX - r->n)
		n = REC_MAX - r->n;
	if (n == 0)
		return;
	memcpy(r->b + r->n, buf_peek(b), n);
	r->n += n;
	buf_consume(b, b->len);
}

static size_t ours;	/* the broker's PORT lines the backend got */

static void judge_command(const uint8_t *p, size_t n, int active_on)
{
	static const char *const refused[] = { "PORT", "EPRT", "CCC", "REIN",
	    "PBSZ", "PROT", "AUTH" };
	size_t i = 0, e, end = n;

	if (end > 0 && p[end - 1] == '\n')
		end--;
	if (end > 0 && p[end - 1] == '\r')
		end--;
	if (n == strlen(OUR_PORT) && memcmp(p, OUR_PORT, n) == 0) {
		if (!active_on)
			abort();
		ours++;
		return;
	}
	for (size_t j = 0; j < end; j++)
		if (p[j] == 0 || p[j] == '\r')
			abort();
	while (i < end && (p[i] == ' ' || (p[i] == 0xff && i + 1 < end)))
		i += p[i] == 0xff ? 2 : 1;
	for (e = i; e < end && ((upper(p[e]) >= 'A' && upper(p[e]) <= 'Z')); e++)
		continue;
	if (e == i || (e < end && p[e] != ' '))
		abort();
	for (size_t k = 0; k < sizeof(refused) / sizeof(refused[0]); k++)
		if (word(p + i, e - i, refused[k]))
			abort();
}

/* Lines the client sent whose verb is PORT or EPRT (a rough count: at
 * least those the filter could have taken for one). */
static size_t client_active_lines(const uint8_t *c, size_t n)
{
	size_t count = 0, s = 0;

	for (size_t i = 0; i < n; i++)
		if (c[i] == '\n') {
			for (size_t k = s; k + 4 <= i; k++)
				if (word(c + k, 4, "PORT") || word(c + k, 4, "EPRT")) {
					count++;
					break;
				}
			s = i + 1;
		}
	return count;
}

static void judge(int active_on)
{
	size_t s = 0;

	ours = 0;
	for (size_t i = 0; i < to_backend.n; i++)
		if (to_backend.b[i] == '\n') {
			judge_command(to_backend.b + s, i + 1 - s, active_on);
			s = i + 1;
		}
	if (s != to_backend.n)
		abort();	/* a partial command reached the backend */
	s = 0;
	for (size_t i = 0; i < to_client.n; i++)
		if (to_client.b[i] == '\n') {
			const uint8_t *l = to_client.b + s;
			size_t n = i + 1 - s;
			static const char p227[] =
			    "227 Entering Passive Mode (192,0,2,1,195,80)\r\n";
			static const char p229[] =
			    "229 Entering Extended Passive Mode (|||50000|)\r\n";
			if (n >= 4 && memcmp(l, "227 ", 4) == 0 &&
			    (n != strlen(p227) || memcmp(l, p227, n) != 0))
				abort();
			if (n >= 4 && memcmp(l, "229 ", 4) == 0 &&
			    (n != strlen(p229) || memcmp(l, p229, n) != 0))
				abort();
			s = i + 1;
		}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static _Alignas(16) uint8_t st[256];
	struct filter_ftp_env env = { .passive = broker };
	struct buf cin = {0}, bin = {0}, tob = {0}, toc = {0};
	const uint8_t *c, *b;
	size_t nc, nb, pc = 0, pb = 0;
	unsigned seed;
	const char *why;
	int rc = 0;

	if (size < 3 || filter_ftp.state_size > sizeof(st))
		return 0;
	env.prot_c_ok = data[0] & 1;
	refuse_all = (data[0] >> 1) & 1;
	env.active = (data[0] >> 2) & 1 ? active : NULL;
	active_refuse = (data[0] >> 3) & 1;
	active_noport = (data[0] >> 4) & 1;
	nc = (size - 3) * data[1] / 255;
	seed = data[2];
	c = data + 3;
	nb = size - 3 - nc;
	b = c + nc;
	memset(st, 0, sizeof(st));
	filter_ftp_setup(st, &env);
	to_backend.n = to_client.n = 0;

	for (int turn = 0; rc == 0 && (pc < nc || pb < nb) && turn < 4096; turn++) {
		size_t k = 1 + (seed = seed * 1103515245u + 12345u) % 97;
		if (turn & 1) {
			if (k > nb - pb)
				k = nb - pb;
			if (k > BUF_CAP - bin.len)
				k = BUF_CAP - bin.len;
			buf_append(&bin, b + pb, k);
			pb += k;
		} else {
			if (k > nc - pc)
				k = nc - pc;
			if (k > BUF_CAP - cin.len)
				k = BUF_CAP - cin.len;
			buf_append(&cin, c + pc, k);
			pc += k;
		}
		for (int round = 0; round < 64 && rc == 0; round++) {
			size_t before = cin.len + bin.len;
			why = NULL;
			rc = filter_ftp.up(st, &cin, &tob, &toc, pc == nc, &why);
			if (rc == 0)
				rc = filter_ftp.down(st, &bin, &toc, &tob, pb == nb,
				    &why);
			if (rc != 0 && why == NULL)
				abort();
			int moved = tob.len || toc.len || cin.len + bin.len != before;
			drain(&tob, &to_backend);
			drain(&toc, &to_client);
			if (!moved)
				break;
		}
		if (cin.len > 4096 || bin.len > 8192)
			abort();	/* held beyond the bounds */
	}
	judge(env.active != NULL);
	if (to_backend.n > nc + ours * strlen(OUR_PORT) ||
	    ours > client_active_lines(c, nc))
		abort();
	buf_reset(&cin);
	buf_reset(&bin);
	buf_reset(&tob);
	buf_reset(&toc);
	return 0;
}
