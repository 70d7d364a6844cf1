/* What the IMAP and POP3 filter targets share: the relay's buffers as
 * they drive them, emptied without freeing and read slowly. */
#ifndef PORTIER_FUZZ_RELAY_H
#define PORTIER_FUZZ_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "fuzz_util.h"

/* Empty a buffer the filter wrote and the harness has read, keeping its
 * memory. buf_consume() would free it, as the relay must (an idle
 * connection holds no buffer); here that was a 64 KiB malloc and free
 * per buffer per round, which under ASan (shadow poisoning, malloc fill,
 * quarantine) took a quarter of the POP3 target's time. The filter sees
 * what it would: an empty buffer with all its room. The buffers it
 * empties itself (the client's and the backend's bytes) still free, so a
 * filter that read its input after consuming it is still caught. */
static inline void drain(struct buf *b)
{
	b->off = b->len = 0;
}

/*
 * A slow reader (each target's flags bit 3): the filter writes into
 * buffers that hold all but `room` bytes the other side has not read yet
 * (zeros), so its lines, responses and answers meet a full buffer and
 * must wait for room. The room is the input's choice after a round in
 * which something moved, a power of two from 1 to 2048 (all of it once
 * the choices are spent: a byte a round took some inputs thousands of
 * rounds), and twice as much after one in which nothing did: next_room().
 * What a call wrote past the unread bytes goes on to the harness's own
 * buffer `to`, whose free space also bounds the room. Unread bytes are
 * dropped from the end, not read from the front: they are all alike, and
 * the filter's bytes then land where they did (no 64 KiB move per call).
 * squeeze() returns how many unread bytes f holds.
 */
static inline size_t squeeze(struct buf *f, size_t room, const struct buf *to)
{
	static const uint8_t unread[4096];
	size_t want, k;

	if (room > BUF_CAP - to->len)
		room = BUF_CAP - to->len;
	want = BUF_CAP - room;
	if (f->len > want)
		buf_truncate(f, want);
	while (f->len < want) {
		k = want - f->len < sizeof(unread) ? want - f->len :
		    sizeof(unread);
		buf_append(f, unread, k);
	}
	return want;
}

/* What a call wrote into f past its `unread` bytes, moved on to `to`. */
static inline void pass_on(struct buf *f, size_t unread, struct buf *to)
{
	if (f->len > unread) {
		buf_append(to, buf_peek(f) + unread, f->len - unread);
		buf_truncate(f, unread);
	}
}

/* The room for the next round. */
static inline size_t next_room(size_t room, int moved, struct choices *c)
{
	if (!moved)
		return room < BUF_CAP / 2 ? room * 2 : BUF_CAP;
	return c->n > 0 ? (size_t)1 << pick(c) % 12 : BUF_CAP;
}

#endif
