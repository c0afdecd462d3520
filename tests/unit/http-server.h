/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A small HTTP/1.1 server for tests: a thread serving the files below a directory on 127.0.0.1
 * (an ephemeral port), optionally over TLS. GET and HEAD, with Content-Length (or chunked), one
 * request per connection ("Connection: close"), each connection in a thread of its own. No Range
 * requests, If-None-Match or the like: libostree's libcurl fetcher asks only plain GETs, and
 * a 200 with the whole file is a valid answer to those anyway. Knobs make it misbehave. POST goes to
 * a handler the test sets (a protocol server's, FleetLock's say), one request at a time. */

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

typedef struct HttpServer HttpServer;

typedef struct HttpFaults {
        const char *match;       /* faults apply to request paths containing this; NULL: to all */
        unsigned skip;           /* … except the first SKIP requests that match */
        unsigned status;         /* answer with this HTTP status instead of the file (0: off) */
        const char *redirect;    /* answer "302 Found" with this Location */
        bool truncate;           /* announce the full Content-Length, send only TRUNCATE_AFTER bytes */
        uint64_t truncate_after; /* of the body, then close the connection */
        bool stall;              /* after STALL_AFTER bytes of the body, send nothing for STALL_USEC */
        uint64_t stall_after;
        uint64_t stall_usec;
        bool chunked;            /* chunked transfer encoding: no Content-Length */
        bool endless;            /* a body that never ends: the file over and over, without a length
                                  * (chunked, or up to a close that never comes) */
        uint64_t trickle_bps;    /* send the body at about this many bytes a second (0: at once) */
} HttpFaults;

/* Serves ROOT; with CERT_FILE and KEY_FILE (PEM) over TLS, else plain HTTP. Returns -errno. */
int http_server_start(const char *root, const char *cert_file, const char *key_file, HttpServer **ret);
/* Stops the thread and frees; NULL is fine. */
void http_server_stop(HttpServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpServer *, http_server_stop);
#define _cleanup_http_server_ _cleanup_(http_server_stopp)

uint16_t http_server_port(HttpServer *s);
/* "http://127.0.0.1:PORT/PATH" (https:// with TLS); PATH may be "" or start with '/'. Free it. */
char *http_server_url(HttpServer *s, const char *path);

/* A self-signed certificate for 127.0.0.1 in DIR (cert.pem, key.pem); false without the openssl tool. */
bool http_server_make_certificate(const char *dir, char **ret_cert, char **ret_key);

/* Replaces the faults (copied; NULL: behave), restarts the SKIP count and ends a stall. */
void http_server_set_faults(HttpServer *s, const HttpFaults *f);

/* What was served since the start or the last reset: body bytes sent, requests answered, and the
 * paths requested (in order; complete_only: those whose body was sent in full), a strv to free. */
void http_server_reset_stats(HttpServer *s);
uint64_t http_server_bytes_sent(HttpServer *s);
unsigned http_server_requests(HttpServer *s);
char **http_server_paths(HttpServer *s, bool complete_only);

/* POST PATH: HEADERS (the request's header lines, "\r\n"-separated) and BODY in; the status and a
 * JSON body (malloc'ed, may stay NULL) out. Called with the server's lock held. */
typedef void (*http_post_handler_t)(const char *path, const char *headers, const char *body, size_t size,
                                    unsigned *ret_status, char **ret_body, void *userdata);
void http_server_set_post_handler(HttpServer *s, http_post_handler_t handler, void *userdata);
