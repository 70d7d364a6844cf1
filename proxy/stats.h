#ifndef PORTIER_STATS_H
#define PORTIER_STATS_H

/*
 * The metrics endpoint ([portier] stats = ADDR:PORT): a worker accepts
 * from the stats socket the master bound, like any listening socket, and
 * answers one HTTP/1.x request per connection: GET or HEAD of /metrics
 * gets the exposition (metrics.h); another path 404, another method 405,
 * a malformed head 400, one longer than 2 KiB 431, then the connection closes. The request
 * is read and the reply written without blocking, under one deadline, with
 * a few scrapes at most at a time per worker; a scraper that reads slowly
 * costs a timer and a buffer, never the worker's loop.
 */

#include <stddef.h>

struct server;

/* stats_accept(srv, fd): serve the scrape on accepted socket fd (taken
 * over: closed when it is done, or at once if too many are open). */
void stats_accept(struct server *srv, int fd);

/* stats_busy(srv): srv has scrapes open (a draining worker waits for them
 * as for its connections, so that a reload cuts no scrape short). */
int stats_busy(const struct server *srv);

/* stats_stop_all(srv): close every scrape still open (the loop is over). */
void stats_stop_all(struct server *srv);

/* stats_reply(req, len, head_only): what the request head req (len bytes,
 * complete) asks for, by its first line: 200 for GET or HEAD of /metrics
 * (with *head_only for HEAD; a query string is ignored), else 400, 404 or
 * 405. Pure (stats_request.c). */
int stats_reply(const char *req, size_t len, int *head_only);

#endif
