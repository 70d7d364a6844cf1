#ifndef PORTIER_ADDR_H
#define PORTIER_ADDR_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

/* A socket address as written in the config: a listen address or a backend. */
struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
	int any;          /* "993": every address, v4 and v6, on one socket */
	int port;         /* as configured; 0 for unix sockets */
};

/* addr_parse_listen(a, text, err, errlen): "PORT", "ADDR:PORT" or
 * "[V6ADDR]:PORT" with numeric addresses only (a listener must not depend
 * on DNS). Port 0 asks the kernel for one. An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) is refused: no socket of portier's can bind it. Returns
 * 0 or -1 with a reason. */
int addr_parse_listen(struct addr *a, const char *text, char *err, size_t errlen);

/* addr_parse_backend(a, text, err, errlen): "HOST:PORT", "[V6]:PORT" or
 * "unix:/path". A host name is resolved now, once (getaddrinfo), so the
 * event loop never waits on DNS. Returns 0 or -1 with a reason. */
int addr_parse_backend(struct addr *a, const char *text, char *err, size_t errlen);

/* addr_split_hostport(text, host, hostlen, port): "HOST:PORT" or
 * "[V6]:PORT" into host (NUL-terminated, not empty) and *port, the text
 * after the colon (not checked); -1 when text is neither or host does not
 * fit. */
int addr_split_hostport(const char *text, char *host, size_t hostlen,
                        const char **port);

/* addr_format(sa, len, out, outlen): "1.2.3.4:5", "[::1]:5" or "unix:/p". */
const char *addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen);

#define ADDR_STRLEN (INET6_ADDRSTRLEN + 16 > 120 ? INET6_ADDRSTRLEN + 16 : 120)

#endif
