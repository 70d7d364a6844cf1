#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int privdrop_lookup(const char *user, struct privdrop *pd, char *err, size_t errlen)
{
	struct passwd *pw;

	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(err, errlen, "no such user '%s'%s%s", user,
		         errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	if (strlen(pw->pw_name) >= sizeof(pd->name)) {
		snprintf(err, errlen, "user name '%s' is too long", user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "'%s' is root: name an unprivileged account, "
		         "or leave 'user' out", user);
		return -1;
	}
	strcpy(pd->name, pw->pw_name);
	pd->uid = pw->pw_uid;
	pd->gid = pw->pw_gid;
	return 0;
}

int privdrop_apply(const struct privdrop *pd)
{
	uid_t r, e, s;

	/* Groups first: once the uid is not root, they cannot change. */
	if (initgroups(pd->name, pd->gid) < 0 || setresgid(pd->gid, pd->gid, pd->gid) < 0 ||
	    setresuid(pd->uid, pd->uid, pd->uid) < 0)
		return -1;
	/* Trust, but verify: a way back to root must not exist. */
	if (getresuid(&r, &e, &s) < 0 || r != pd->uid || e != pd->uid || s != pd->uid ||
	    setuid(0) == 0) {
		errno = EPERM;
		return -1;
	}
	return 0;
}
