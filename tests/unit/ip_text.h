#ifndef PORTIER_TEST_IP_TEXT_H
#define PORTIER_TEST_IP_TEXT_H

/* An address written as text (IPv4 or IPv6), as the socket address a
 * connection would carry, for the tests of what is counted per client. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static struct sockaddr_storage ip_text_ss;

/* The address of text, in storage the next call reuses. */
static inline const struct sockaddr *ip(const char *text)
{
	memset(&ip_text_ss, 0, sizeof(ip_text_ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ip_text_ss;
		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, text, &a->sin6_addr);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ip_text_ss;
		a->sin_family = AF_INET;
		inet_pton(AF_INET, text, &a->sin_addr);
	}
	return (const struct sockaddr *)&ip_text_ss;
}

#endif
