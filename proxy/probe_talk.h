#ifndef PORTIER_PROBE_TALK_H
#define PORTIER_PROBE_TALK_H

#include "cfg.h"
#include "probe_io.h"
#include "probe_proto.h"

/*
 * The client side of each protocol up to TLS, for `portier probe`: the
 * greeting, the capabilities, the STARTTLS verb, a polite goodbye. Only
 * commands that change nothing on the server are sent (EHLO, CAPABILITY,
 * CAPA, FEAT, a root DSE search, HEAD /, STARTTLS, STLS, AUTH TLS,
 * QUIT/LOGOUT): never a login (AUTH PLAIN, USER, LOGIN), MAIL or a bind.
 */

struct probe_talk {
	char greeting[PROBE_LINE_MAX];   /* the first line, raw */
	struct probe_caps caps;          /* .starttls, .login_in_clear */
	int http_status;                 /* HEAD / */
	char http_location[256];         /* raw */
	char why[256];                   /* what went wrong */
	int ehlo_refused;                /* SMTP: EHLO got a 5xx, as FTP
	                                  * servers answer it */
};

#define PROBE_TALK_NOT_PROTO (-4)    /* the bytes are not this protocol */
#define PROBE_TALK_REFUSED (-5)      /* the protocol, saying no (SMTP 554) */

/* probe_talk_greeting(io, proto, t, deadline): read a server-first
 * protocol's greeting into t->greeting. 0; PROBE_TALK_REFUSED (t->why
 * says how); PROBE_TALK_NOT_PROTO (also on an end of stream);
 * PROBE_IO_TIMEOUT; -1. */
int probe_talk_greeting(struct probe_io *io, enum cfg_proto proto, struct probe_talk *t,
                        long long deadline);

/* probe_talk_caps(io, proto, host, t, deadline): ask what the server
 * offers before TLS (EHLO, CAPABILITY unless the greeting said, CAPA,
 * FEAT, the root DSE, HEAD / with Host host). Results as above. */
int probe_talk_caps(struct probe_io *io, enum cfg_proto proto, const char *host,
                    struct probe_talk *t, long long deadline);

/* probe_talk_starttls(io, proto, t, deadline): send the STARTTLS verb;
 * 0 when the server agreed and sent nothing after its answer, -1 with
 * t->why otherwise (PROBE_IO_TIMEOUT on the deadline). */
int probe_talk_starttls(struct probe_io *io, enum cfg_proto proto, struct probe_talk *t,
                        long long deadline);

/* probe_talk_bye(io, proto, deadline): QUIT or LOGOUT in plaintext,
 * without waiting for an answer. */
void probe_talk_bye(struct probe_io *io, enum cfg_proto proto, long long deadline);

#endif
