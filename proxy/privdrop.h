#ifndef PORTIER_PRIVDROP_H
#define PORTIER_PRIVDROP_H

#include <sys/types.h>

/*
 * Giving up root: the account named by `user`, looked up once at start
 * (before any fork, while the system's user database is certainly
 * reachable), and applied in each worker before it serves a byte.
 */

struct privdrop {
	char name[64];
	uid_t uid;
	gid_t gid;
};

/* privdrop_lookup(user, pd, err, errlen): the account's ids. 0, or -1
 * with a message in err. */
int privdrop_lookup(const char *user, struct privdrop *pd, char *err, size_t errlen);

/* privdrop_apply(pd): the account's groups, group and user, for good:
 * afterwards neither the real, effective nor saved ids are root's. 0, or
 * -1 with errno. */
int privdrop_apply(const struct privdrop *pd);

#endif
