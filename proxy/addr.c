#include "addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Digits only: strtol() would also take a sign and leading blanks
 * ("+8443", "-0", " 25"), which portier.ini(5) does not promise. */
static int parse_port(const char *s, int *port)
{
	long v = 0;

	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
		if (v > 65535)
			return -1;
	}
	*port = (int)v;
	return 0;
}

int addr_split_hostport(const char *text, char *host, size_t hostlen,
                        const char **port)
{
	const char *colon;
	size_t n;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		n = (size_t)(close - text - 1);
		if (n == 0 || n >= hostlen)
			return -1;
		memcpy(host, text + 1, n);
		host[n] = '\0';
		*port = close + 2;
		return 0;
	}
	if ((colon = strrchr(text, ':')) == NULL || strchr(text, ':') != colon)
		return -1;
	n = (size_t)(colon - text);
	if (n == 0 || n >= hostlen)
		return -1;
	memcpy(host, text, n);
	host[n] = '\0';
	*port = colon + 1;
	return 0;
}

static int set_numeric(struct addr *a, const char *host, int port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

	memset(&a->ss, 0, sizeof(a->ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		a->len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		a->len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

int addr_parse_listen(struct addr *a, const char *text, char *err, size_t errlen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *porttext;

	memset(a, 0, sizeof(*a));
	if (strchr(text, ':') == NULL) {
		if (parse_port(text, &a->port) < 0)
			goto badport;
		/* One v6 socket with V6ONLY off serves v4 too; the listener
		 * falls back to 0.0.0.0 where v6 is disabled. */
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons((uint16_t)a->port);
		a->len = sizeof(*sin6);
		a->any = 1;
		return 0;
	}
	if (addr_split_hostport(text, host, sizeof(host), &porttext) < 0) {
		snprintf(err, errlen, "'%s' is not a listen address; expected PORT, "
		         "ADDR:PORT or [V6ADDR]:PORT", text);
		return -1;
	}
	if (parse_port(porttext, &a->port) < 0)
		goto badport;
	if (set_numeric(a, host, a->port) < 0) {
		snprintf(err, errlen, "'%s' is not a numeric IP address; a listener "
		         "binds to an address, not a name", host);
		return -1;
	}
	/* An IPv6 socket bound to a mapped address is refused by the kernel
	 * (EINVAL: listener.c makes it IPv6-only); refused here, at the
	 * line, rather than taken as the IPv4 address: the file would say
	 * one socket and portier open another. */
	if (a->ss.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&a->ss)->sin6_addr)) {
		char v4[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &((struct sockaddr_in6 *)&a->ss)->sin6_addr.s6_addr[12],
		          v4, sizeof(v4));
		snprintf(err, errlen, "'%s' is an IPv4-mapped IPv6 address, which "
		         "cannot be bound; write the IPv4 address, %s:%d", host, v4,
		         a->port);
		return -1;
	}
	return 0;
badport:
	snprintf(err, errlen, "'%s' has no valid port; expected a number 0-65535", text);
	return -1;
}

int addr_parse_backend(struct addr *a, const char *text, char *err, size_t errlen)
{
	char host[256];
	const char *porttext;
	struct addrinfo hints, *res;
	int rc;

	memset(a, 0, sizeof(*a));
	if (strncmp(text, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&a->ss;
		const char *path = text + 5;
		if (path[0] != '/' || strlen(path) >= sizeof(sun->sun_path)) {
			snprintf(err, errlen, "'%s': expected unix:/absolute/path of at "
			         "most %zu bytes", text, sizeof(sun->sun_path) - 1);
			return -1;
		}
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, path);
		a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
		return 0;
	}
	if (addr_split_hostport(text, host, sizeof(host), &porttext) < 0) {
		snprintf(err, errlen, "'%s' is not a backend address; expected "
		         "HOST:PORT, [V6ADDR]:PORT or unix:/path", text);
		return -1;
	}
	if (parse_port(porttext, &a->port) < 0 || a->port == 0) {
		snprintf(err, errlen, "'%s' has no valid port; expected a number 1-65535", text);
		return -1;
	}
	if (set_numeric(a, host, a->port) == 0)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, NULL, &hints, &res)) != 0) {
		snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
		return -1;
	}
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	if (a->ss.ss_family == AF_INET)
		((struct sockaddr_in *)&a->ss)->sin_port = htons((uint16_t)a->port);
	else
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons((uint16_t)a->port);
	freeaddrinfo(res);
	return 0;
}

const char *addr_format(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN];

	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(out, outlen, "%s:%u", host, ntohs(sin->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], host, sizeof(host));
			snprintf(out, outlen, "%s:%u", host, ntohs(sin6->sin6_port));
		} else {
			inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
			snprintf(out, outlen, "[%s]:%u", host, ntohs(sin6->sin6_port));
		}
		break;
	}
	case AF_UNIX: {
		const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
		if (len > offsetof(struct sockaddr_un, sun_path) && sun->sun_path[0])
			snprintf(out, outlen, "unix:%s", sun->sun_path);
		else
			snprintf(out, outlen, "unix:");
		break;
	}
	default:
		snprintf(out, outlen, "?");
	}
	return out;
}
