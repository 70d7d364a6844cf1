#ifndef PORTIER_BACKEND_H
#define PORTIER_BACKEND_H

#include "addr.h"

/* backend_connect(a): start a non-blocking connect to a. Returns the
 * socket (connected or in progress: wait for writability, then
 * backend_finish), or -1 with errno. */
int backend_connect(const struct addr *a);

/* backend_finish(fd): the outcome of an in-progress connect: 0 or the
 * errno it failed with. */
int backend_finish(int fd);

/* backend_abort(fd): make the coming close(2) of fd a reset (RST), not an
 * orderly FIN, and drop what is still queued for the backend. */
void backend_abort(int fd);

#endif
