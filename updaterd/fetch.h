/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Downloads from the release server with libcurl: whole small files into memory (the channel
 * manifest and its signature). Only what the policy allows is fetched: https:// always, file://
 * (tests, local mirrors) always, plain http:// only when allowed; redirects are followed within
 * the same set, except to file://. Each failure is logged once here, naming the URL, and
 * returned as one of:
 *   -EPROTONOSUPPORT  plain http:// without allow_http, or another scheme (also via a redirect)
 *   -EINVAL           malformed URL
 *   -EFBIG            body larger than max_size (announced or received)
 *   -ENOENT           HTTP 404 or 410, or a missing file:// file
 *   -EREMOTEIO        any other HTTP error status (logged)
 *   -ENXIO            the host name does not resolve
 *   -ECONNREFUSED     connection refused
 *   -EHOSTUNREACH, -ENETUNREACH  no route to the server
 *   -ETIMEDOUT        connect timeout, the transfer stalled (below FETCH_STALL_SPEED for the
 *                     stall timeout), or the deadline passed
 *   -EPIPE            connection closed before the announced Content-Length arrived
 *   -ECONNRESET       connection reset, or closed without any response
 *   -EKEYREJECTED     TLS: the server's certificate is not trusted or does not match its name
 *   -ENOKEY           TLS: the CA bundle could not be loaded
 *   -ECONNABORTED     TLS handshake failed otherwise
 *   -ELOOP            too many redirects
 *   -EIO              anything else */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "time-util.h"

/* A transfer slower than this for the stall timeout fails with -ETIMEDOUT. */
#define FETCH_STALL_SPEED 1024U /* bytes per second */
#define FETCH_STALL_TIMEOUT_DEFAULT (30 * USEC_PER_SEC)
#define FETCH_CONNECT_TIMEOUT_DEFAULT (30 * USEC_PER_SEC)

typedef struct FetchOptions {
        const char *ca_file;   /* NULL: the system's CAs; else the CAs in this PEM bundle too, for
                                * fetches and pulls alike */
        bool allow_http;       /* plain http:// refused unless set */
        uint64_t max_size;     /* fetch_url(): bodies larger are refused; local_repo_pull(): bound on
                                * the bytes one pull downloads. 0: no limit */
        usec_t timeout;        /* connect timeout; 0: FETCH_CONNECT_TIMEOUT_DEFAULT */
        usec_t stall_timeout;  /* 0: FETCH_STALL_TIMEOUT_DEFAULT; rounded up to whole seconds */
        usec_t deadline;       /* CLOCK_MONOTONIC: every transfer has ended by then; 0: none */
        usec_t time_limit;     /* the span the deadline was set for (DownloadTimeout=), for messages */
} FetchOptions;

/* O's stall timeout as libcurl and libostree apply it, in whole seconds. */
usec_t fetch_stall_timeout(const FetchOptions *o);
/* The deadline of O is set and has passed. */
bool fetch_deadline_passed(const FetchOptions *o);

/* Checks URL against the protocol policy of O; -EPROTONOSUPPORT (logged) if refused. */
int fetch_check_url(const char *url, const FetchOptions *o);

/* Downloads URL into a NUL-terminated buffer (the NUL not counted in *ret_size, which may be NULL). */
int fetch_url(const char *url, const FetchOptions *o, char **ret_data, size_t *ret_size);

/* Both files of a channel, SERVER/channels/CHANNEL.json and .json.sig, bounded by
 * MANIFEST_SIZE_MAX and SIGNATURE_SIZE_MAX (and o->max_size if smaller). They are not checked here:
 * verify them with manifest_verify(). CHANNEL must be a plain name (-EINVAL). */
int fetch_channel_manifest(const char *server, const char *channel, const FetchOptions *o,
                           char **ret_manifest, size_t *ret_manifest_size,
                           char **ret_signature, size_t *ret_signature_size);

/* What fetch_url() collects; its libcurl callbacks are here for fuzz/fuzz-fetch.c, which feeds
 * them what a hostile server could send. */
typedef struct Download {
        char *data;
        size_t size, allocated;
        uint64_t max_size;  /* 0: unlimited */
        int64_t announced;  /* Content-Length of the last response, -1: none */
        usec_t time_left;   /* what was left until the deadline when the transfer began, 0: no deadline */
        bool too_large, oom;
} Download;

/* CURLOPT_WRITEFUNCTION: appends to d->data within d->max_size; 0 (abort) beyond it. */
size_t fetch_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata);
/* CURLOPT_HEADERFUNCTION: one header line (not NUL-terminated); notes Content-Length. */
size_t fetch_header_cb(char *buffer, size_t size, size_t nitems, void *userdata);
