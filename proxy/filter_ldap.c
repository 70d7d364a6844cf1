#include "filter.h"
#include "ldap_guard.h"

#include <string.h>

/*
 * LDAP after TLS (LDAPS, or after StartTLS): the client's messages pass
 * through ldap_guard, which frames them and takes out a second StartTLS
 * (answered with operationsError, RFC 4511 4.14.1). The backend's replies
 * pass untouched: no down filter.
 */

/* Copies up to ok cleared bytes from in to out; how many it moved. */
static size_t pass(struct ldap_guard *g, struct buf *in, struct buf *out, size_t ok,
                   const char **why)
{
	size_t moved = 0, room;
	uint8_t *p;

	while (ok > 0) {
		if ((p = buf_space(out, &room)) == NULL) {
			*why = "out of memory";
			return (size_t)-1;
		}
		if (room == 0)
			break;
		if (room > ok)
			room = ok;
		memcpy(p, buf_peek(in), room);
		buf_commit(out, room);
		buf_consume(in, room);
		ldap_guard_sent(g, room);
		ok -= room;
		moved += room;
	}
	return moved;
}

static int ldap_up(void *st, struct buf *in, struct buf *out, struct buf *back,
                   int eof, const char **why)
{
	struct ldap_guard *g = st;
	size_t ok, drop, moved;

	/* Until nothing moves: a StartTLS behind other messages reaches
	 * the front only once those have gone. */
	for (;;) {
		ok = ldap_guard_scan(g, buf_peek(in), in->len, &drop, back);
		if (drop > 0) {
			buf_consume(in, drop);
			continue;
		}
		if (ok == 0)
			break;
		if ((moved = pass(g, in, out, ok, why)) == (size_t)-1)
			return -1;
		if (moved < ok)
			return 0;   /* out is full: called again */
	}
	/* At the end, a partial message goes on as it is: the backend
	 * judges it, and sees the end of the stream after it. */
	if (eof && in->len && pass(g, in, out, in->len, why) == (size_t)-1)
		return -1;
	return 0;
}

const struct filter_ops filter_ldap = {
	.name = "ldap",
	.state_size = sizeof(struct ldap_guard),
	.up = ldap_up,
	.down = NULL,
};
