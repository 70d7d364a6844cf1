/* The session-ticket key ratchet: processes that share a starting secret
 * (a master and the workers it forked) must derive the same keys period by
 * period, whichever way each one gets there, and never go back. */
#include "check.h"
#include "tlsctx_int.h"

#define H TLSTICKET_PERIOD_S

static int same_keys(const struct ticket_keys *a, const struct ticket_keys *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static int same(const struct tlsticket *a, const struct tlsticket *b)
{
	return a->period == b->period && memcmp(a->secret, b->secret, 32) == 0 &&
	       same_keys(&a->cur, &b->cur) && a->have_prev == b->have_prev &&
	       (!a->have_prev || same_keys(&a->prev, &b->prev));
}

int main(void)
{
	const uint64_t t0 = (uint64_t)490000 * H + 17;
	struct tlsticket master, a, b, c, before;
	static const uint8_t zero[sizeof(struct tlsticket)];

	CHECK(tlsticket_init(&master, t0) == 0);
	CHECK(tlsticket_init(&c, t0) == 0);
	/* Two starts never share keys. */
	CHECK(memcmp(master.cur.name, c.cur.name, sizeof(c.cur.name)) != 0);
	CHECK(!master.have_prev && master.period == t0 / H);

	/* Within a period nothing moves. */
	a = master;
	tlsticket_advance(&a, t0 + H - 18);
	CHECK(same(&a, &master));

	/* The next period: new keys; the old ones kept for decryption only;
	 * the secret itself replaced. */
	tlsticket_advance(&a, t0 + H);
	CHECK(a.period == master.period + 1 && a.have_prev);
	CHECK(same_keys(&a.prev, &master.cur));
	CHECK(!same_keys(&a.cur, &master.cur));
	CHECK(memcmp(a.secret, master.secret, 32) != 0);
	CHECK(memcmp(a.cur.name, a.prev.name, sizeof(a.cur.name)) != 0);

	/* "Forked" copies agree whatever steps they took: one period at a
	 * time, or five at once. */
	a = master;
	b = master;
	tlsticket_advance(&a, t0 + 5 * H);
	for (int i = 1; i <= 5; i++)
		tlsticket_advance(&b, t0 + (uint64_t)i * H + (uint64_t)i);
	CHECK(same(&a, &b));
	CHECK(a.have_prev && a.period == master.period + 5);
	/* ...and the previous keys are the fourth period's current ones. */
	c = master;
	tlsticket_advance(&c, t0 + 4 * H);
	CHECK(same_keys(&a.prev, &c.cur));

	/* The clock going back changes nothing. */
	before = a;
	tlsticket_advance(&a, t0);
	tlsticket_advance(&a, t0 + 4 * H);
	CHECK(same(&a, &before));

	/* A jump of years: still the same in every copy, without old keys. */
	a = master;
	b = master;
	tlsticket_advance(&a, t0 + (uint64_t)20 * 8784 * H);
	tlsticket_advance(&b, t0 + (uint64_t)20 * 8784 * H + 5);
	CHECK(same(&a, &b));
	CHECK(!a.have_prev && !same_keys(&a.cur, &master.cur));
	/* After the jump it ratchets one period at a time again. */
	tlsticket_advance(&a, t0 + ((uint64_t)20 * 8784 + 1) * H);
	CHECK(a.have_prev && same_keys(&a.prev, &b.cur));

	tlsticket_wipe(&a);
	CHECK(memcmp(&a, zero, sizeof(a)) == 0);
	return CHECK_DONE();
}
