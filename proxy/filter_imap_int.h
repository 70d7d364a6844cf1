#ifndef PORTIER_FILTER_IMAP_INT_H
#define PORTIER_FILTER_IMAP_INT_H

#include <stdint.h>

#include "filter.h"

/*
 * Inside filter_imap: the state both directions share. filter_imap.c says
 * what the filter does and frames lines and literals for both sides;
 * filter_imap_up.c reads the client's commands, filter_imap_down.c the
 * backend's responses.
 */

enum kind { K_UNDECIDED, K_STARTTLS, K_COMPRESS, K_IDLE, K_AUTH, K_OTHER };
enum umode { U_START, U_LINE, U_LIT, U_CONT, U_DROP };
enum dmode { D_START, D_LINE, D_LIT, D_CAP };
/* What the client's bytes wait for: the backend's "+" (or the end of the
 * command: its tagged response, by count and tag). */
enum wait { W_NONE, W_LIT, W_CONT };
enum cap { CAP_LIST, CAP_CODE };

/* Where a line stands on the way to a literal's announcement. */
struct lit {
	uint64_t n;		/* the size read so far */
	uint8_t st;		/* 0 none, 1 in braces, 2 after +, 3 after }, 4 after CR */
	uint8_t digits;
	uint8_t plus;		/* non-synchronizing */
};

struct imap_state {
	uint64_t sent;		/* commands passed; each owes a tagged response */
	uint64_t done;		/* tagged responses back (never more than sent) */
	uint64_t cmd_tag;	/* imap_tag_hash() of the command being passed */
	uint64_t wait_tag;	/* ...of the one whose "+" or end is awaited */
	uint64_t wait_seq;	/* `sent` when that one went */
	uint64_t dtag;		/* ...of the tagged response being read */
	uint64_t ulit, dlit;	/* literal bytes still to pass, each way */
	struct lit ul, dl;
	uint16_t cap_off;	/* D_CAP: where the capability atoms start */
	uint8_t umode, dmode;	/* enum umode, enum dmode */
	uint8_t wait;		/* enum wait */
	uint8_t cmd;		/* enum kind of the command being passed */
	uint8_t cap;		/* enum cap */
	uint8_t tagged;		/* down: the line is a tagged response */
	uint8_t cont;		/* down: the line is a "+" continuation */
	uint8_t ok;		/* down: the line is a tagged OK */
	uint8_t layer;		/* enum filter_layer */
	uint8_t ended;		/* the backend ended, all it sent passed */
	uint8_t counted;	/* up: the command has a valid tag */
};

/* imap_tag_hash(p, n): a tag's fingerprint (the bytes up to a space or
 * the line's end), to know the waiting command's end. */
uint64_t imap_tag_hash(const uint8_t *p, size_t n);

/* imap_pass_line(l, in, out, lit, eol, toobig, why): pass the line at the
 * front of in, as much as out takes, up to its end or the end of a
 * literal's announcement read with l (NULL: this line announces none).
 * *lit set when one was announced (its size in l->n), else *eol when the
 * line ended. 1 moved, 0 nothing to move, -1 error (*why: toobig for a
 * size over 18 digits). */
int imap_pass_line(struct lit *l, struct buf *in, struct buf *out, int *lit,
    int *eol, const char *toobig, const char **why);

/* The two directions, for the filter_ops in filter_imap.c. */
int imap_up(void *st, struct buf *in, struct buf *out, struct buf *back,
    int eof, const char **why);
int imap_down(void *st, struct buf *in, struct buf *out, struct buf *back,
    int eof, const char **why);

#endif
