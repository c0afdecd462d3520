/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "curl-util.h"
#include "fetch.h"
#include "log.h"
#include "macro.h"
#include "manifest.h"
#include "string-util.h"

#define REDIRECTS_MAX 10L

static bool url_has_scheme(const char *url, const char *scheme) {
        return strncasecmp(url, scheme, strlen(scheme)) == 0;
}

int fetch_check_url(const char *url, const FetchOptions *o) {
        if (url_has_scheme(url, "https://") || url_has_scheme(url, "file://"))
                return 0;
        if (url_has_scheme(url, "http://")) {
                if (o->allow_http)
                        return 0;
                return log_error_errno(EPROTONOSUPPORT, "Refusing to fetch %s: plain HTTP is not allowed (AllowHTTP=no).",
                                       url);
        }
        return log_error_errno(EPROTONOSUPPORT,
                               "Refusing to fetch %s: only https://, http:// and file:// URLs are supported.", url);
}

usec_t fetch_stall_timeout(const FetchOptions *o) {
        usec_t t = o->stall_timeout > 0 ? o->stall_timeout : FETCH_STALL_TIMEOUT_DEFAULT;
        return (t + USEC_PER_SEC - 1) / USEC_PER_SEC * USEC_PER_SEC; /* libcurl counts whole seconds */
}

bool fetch_deadline_passed(const FetchOptions *o) {
        return o->deadline > 0 && now_usec(CLOCK_MONOTONIC) >= o->deadline;
}

static void download_done(Download *d) {
        free(d->data);
}

/* Keeps one byte spare for the terminating NUL. */
size_t fetch_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Download *d = userdata;
        size_t n = size * nmemb; /* size is 1, says libcurl */

        /* Counting here covers bodies without Content-Length (chunked, or up to the close). */
        if (d->max_size > 0 && n > d->max_size - d->size) {
                d->too_large = true;
                return 0; /* aborts the transfer */
        }
        if (n >= SIZE_MAX - d->size) {
                d->oom = true;
                return 0;
        }
        if (d->size + n + 1 > d->allocated) {
                size_t a = MAX(d->size + n + 1, d->allocated * 2);
                char *p = realloc(d->data, a);
                if (!p) {
                        d->oom = true;
                        return 0;
                }
                d->data = p;
                d->allocated = a;
        }
        memcpy(d->data + d->size, ptr, n);
        d->size += n;
        return n;
}

/* Remembers Content-Length for the log: libcurl forgets it when it refuses the size up front. */
size_t fetch_header_cb(char *buffer, size_t size, size_t nitems, void *userdata) {
        Download *d = userdata;
        size_t n = size * nitems;
        char value[32];

        if (n > 5 && strncmp(buffer, "HTTP/", 5) == 0) /* a new response (after a redirect) */
                d->announced = -1;
        else if (n > 15 && strncasecmp(buffer, "Content-Length:", 15) == 0) {
                size_t k = MIN(n - 15, sizeof(value) - 1);
                memcpy(value, buffer + 15, k);
                value[k] = 0;
                char *end;
                errno = 0;
                unsigned long long v = strtoull(value, &end, 10);
                d->announced = errno == 0 && end != value && v <= INT64_MAX ? (int64_t) v : -1;
        }
        return n;
}

#define SETOPT(c, option, value)                                                                     \
        do {                                                                                         \
                CURLcode _cc_ = curl_easy_setopt((c), option, value);                                \
                if (_cc_ != CURLE_OK)                                                                \
                        return log_error_errno(curl_errno(_cc_),                     \
                                               "Failed to set libcurl option " #option ": %s",       \
                                               curl_easy_strerror(_cc_));                            \
        } while (0)

static int setup_handle(CURL *c, const char *url, const FetchOptions *o, Download *d, char *errbuf) {
        usec_t connect_timeout = o->timeout > 0 ? o->timeout : FETCH_CONNECT_TIMEOUT_DEFAULT;
        usec_t stall = fetch_stall_timeout(o);

        SETOPT(c, CURLOPT_URL, url);
        SETOPT(c, CURLOPT_ERRORBUFFER, errbuf);
        /* A daemon with its own signal handling: no SIGALRM for DNS timeouts, no SIGPIPE. */
        SETOPT(c, CURLOPT_NOSIGNAL, 1L);
        SETOPT(c, CURLOPT_USERAGENT, DREAMLINK_USER_AGENT);
        SETOPT(c, CURLOPT_PROTOCOLS_STR, o->allow_http ? "https,http,file" : "https,file");
        /* A server cannot send us to a local file, nor to plain HTTP unless that is allowed. */
        SETOPT(c, CURLOPT_FOLLOWLOCATION, 1L);
        SETOPT(c, CURLOPT_MAXREDIRS, REDIRECTS_MAX);
        SETOPT(c, CURLOPT_REDIR_PROTOCOLS_STR, o->allow_http ? "https,http" : "https");
        /* Error statuses fail the transfer before any body is stored. */
        SETOPT(c, CURLOPT_FAILONERROR, 1L);
        SETOPT(c, CURLOPT_CONNECTTIMEOUT_MS, (long) MAX(connect_timeout / USEC_PER_MSEC, 1U));
        SETOPT(c, CURLOPT_LOW_SPEED_LIMIT, (long) FETCH_STALL_SPEED);
        SETOPT(c, CURLOPT_LOW_SPEED_TIME, (long) (stall / USEC_PER_SEC));
        /* A body that trickles in just above the stall speed would otherwise never end. */
        if (o->deadline > 0) {
                usec_t ms = (o->deadline - MIN(now_usec(CLOCK_MONOTONIC), o->deadline) + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
                d->time_left = MAX(ms, 1U) * USEC_PER_MSEC;
                SETOPT(c, CURLOPT_TIMEOUT_MS, (long) (d->time_left / USEC_PER_MSEC));
        }
        if (o->max_size > 0)
                /* Refuses an announced Content-Length up front; fetch_write_cb() counts the rest. */
                SETOPT(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) MIN(o->max_size, (uint64_t) INT64_MAX));
        if (o->ca_file)
                /* Replaces the system bundle file; the system's hashed CA directory (CAPATH) still
                 * counts, so the CA is trusted besides the system's, as libostree's pulls do. */
                SETOPT(c, CURLOPT_CAINFO, o->ca_file);
        SETOPT(c, CURLOPT_WRITEFUNCTION, fetch_write_cb);
        SETOPT(c, CURLOPT_WRITEDATA, d);
        SETOPT(c, CURLOPT_HEADERFUNCTION, fetch_header_cb);
        SETOPT(c, CURLOPT_HEADERDATA, d);
        return 0;
}

/* The one log line for a failed transfer, with the most precise errno we can tell. */
static int log_transfer_error(CURL *c, const char *url, const FetchOptions *o, CURLcode cc, const Download *d,
                              const char *errbuf) {
        const char *detail = !isempty(errbuf) ? errbuf : curl_easy_strerror(cc);
        int64_t length = d->announced;
        long status = 0, os_errno = 0;
        int r;

        if (d->too_large || cc == CURLE_FILESIZE_EXCEEDED) {
                if (length >= 0)
                        return log_error_errno(EFBIG, "Refusing %s: it is %" PRIi64 " bytes, the limit is %" PRIu64 ".",
                                               url, (int64_t) length, o->max_size);
                return log_error_errno(EFBIG, "Refusing %s: it is larger than the limit of %" PRIu64 " bytes.", url,
                                       o->max_size);
        }
        if (d->oom)
                return log_error_errno(ENOMEM, "Failed to fetch %s: out of memory.", url);

        r = curl_errno(cc);
        switch (cc) {
        case CURLE_HTTP_RETURNED_ERROR:
                (void) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
                if (status == 404 || status == 410)
                        return log_error_errno(ENOENT, "Failed to fetch %s: not found on the server (HTTP %ld).", url,
                                               status);
                return log_error_errno(EREMOTEIO, "Failed to fetch %s: the server answered HTTP %ld.", url, status);

        case CURLE_FILE_COULDNT_READ_FILE:
                return log_error_errno(ENOENT, "Failed to fetch %s: no such file.", url);

        case CURLE_COULDNT_CONNECT:
                /* Refused and unreachable look alike to libcurl; the socket's errno tells them apart. */
                (void) curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
                if (os_errno > 0)
                        r = -(int) os_errno;
                return log_error_errno(r, "Failed to connect to the server of %s: %m", url);

        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return log_error_errno(r, "Failed to fetch %s: cannot resolve the host name (%s).", url, detail);

        case CURLE_OPERATION_TIMEDOUT: {
                char span[FORMAT_TIMESPAN_MAX];
                curl_off_t connected = 0, total = 0;

                /* libcurl counts in milliseconds, and may give up a little before our clock says the
                 * deadline is there: ask it how long the transfer took. */
                (void) curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &total);
                if (fetch_deadline_passed(o) || (d->time_left > 0 && (usec_t) total + USEC_PER_MSEC >= d->time_left))
                        return log_error_errno(r, "Failed to fetch %s: the download exceeded its wall-clock limit of %s (DownloadTimeout=).",
                                               url, format_timespan(span, sizeof(span), o->time_limit));
                (void) curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connected);
                if (connected > 0)
                        return log_error_errno(r, "Failed to fetch %s: no data for %s (less than %u bytes a second), giving up.",
                                               url, format_timespan(span, sizeof(span), fetch_stall_timeout(o)),
                                               FETCH_STALL_SPEED);
                return log_error_errno(r, "Failed to fetch %s: timed out (%s).", url, detail);
        }

        case CURLE_PARTIAL_FILE:
                return log_error_errno(r, "Failed to fetch %s: the connection closed after %zu of %" PRIi64 " bytes.",
                                       url, d->size, (int64_t) length);

        case CURLE_UNSUPPORTED_PROTOCOL:
                return log_error_errno(r, "Refusing to fetch %s: it redirects to a protocol that is not allowed (%s).",
                                       url, detail);

        case CURLE_SSL_CACERT_BADFILE:
                return log_error_errno(r, "Failed to fetch %s: cannot load the CA bundle %s (%s).", url,
                                       strna(o->ca_file), detail);

        default:
                if (r == -EKEYREJECTED)
                        return log_error_errno(r, "Refusing %s: the server's TLS certificate is not trusted (%s).", url,
                                               detail);
                return log_error_errno(r, "Failed to fetch %s: %s", url, detail);
        }
}

int fetch_url(const char *url, const FetchOptions *o, char **ret_data, size_t *ret_size) {
        _cleanup_(curl_easy_cleanupp) CURL *c = NULL;
        _cleanup_(download_done) Download d = { .max_size = o->max_size, .announced = -1 };
        char errbuf[CURL_ERROR_SIZE] = "";
        CURLcode cc;
        int r;

        r = fetch_check_url(url, o);
        if (r < 0)
                return r;
        if (fetch_deadline_passed(o)) {
                char span[FORMAT_TIMESPAN_MAX];
                return log_error_errno(ETIMEDOUT, "Not fetching %s: the download exceeded its wall-clock limit of %s (DownloadTimeout=).",
                                       url, format_timespan(span, sizeof(span), o->time_limit));
        }
        r = curl_util_init();
        if (r < 0)
                return r;
        c = curl_easy_init();
        if (!c)
                return log_oom();
        r = setup_handle(c, url, o, &d, errbuf);
        if (r < 0)
                return r;

        cc = curl_easy_perform(c);
        if (cc != CURLE_OK)
                return log_transfer_error(c, url, o, cc, &d, errbuf);

        if (!d.data) { /* an empty body */
                d.data = malloc(1);
                if (!d.data)
                        return log_oom();
        }
        d.data[d.size] = 0;
        log_debug("Fetched %s, %zu bytes.", url, d.size);
        if (ret_size)
                *ret_size = d.size;
        *ret_data = TAKE_PTR(d.data);
        return 0;
}

/* As updaterd.conf's Channel=: the name becomes part of a URL path. */
static bool channel_name_is_valid(const char *s) {
        return filename_is_valid(s) &&
               strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == strlen(s);
}

static uint64_t min_limit(uint64_t a, uint64_t b) {
        return a == 0 ? b : MIN(a, b);
}

int fetch_channel_manifest(const char *server, const char *channel, const FetchOptions *o,
                           char **ret_manifest, size_t *ret_manifest_size,
                           char **ret_signature, size_t *ret_signature_size) {
        _cleanup_free_ char *manifest_url = NULL, *signature_url = NULL, *manifest = NULL, *signature = NULL;
        size_t manifest_size, signature_size, n;
        FetchOptions limited = *o;
        int r;

        if (isempty(channel) || !channel_name_is_valid(channel))
                return log_error_errno(EINVAL, "Invalid channel name '%s'.", strempty(channel));

        /* "https://example.org/" and "https://example.org" name the same server. */
        n = strlen(server);
        while (n > 0 && server[n - 1] == '/')
                n--;
        if (asprintf(&manifest_url, "%.*s/channels/%s.json", (int) n, server, channel) < 0) {
                manifest_url = NULL;
                return log_oom();
        }
        if (asprintf(&signature_url, "%s.sig", manifest_url) < 0) {
                signature_url = NULL;
                return log_oom();
        }

        limited.max_size = min_limit(o->max_size, MANIFEST_SIZE_MAX);
        r = fetch_url(manifest_url, &limited, &manifest, &manifest_size);
        if (r < 0)
                return r;
        limited.max_size = min_limit(o->max_size, SIGNATURE_SIZE_MAX);
        r = fetch_url(signature_url, &limited, &signature, &signature_size);
        if (r < 0)
                return r;

        *ret_manifest = TAKE_PTR(manifest);
        if (ret_manifest_size)
                *ret_manifest_size = manifest_size;
        *ret_signature = TAKE_PTR(signature);
        if (ret_signature_size)
                *ret_signature_size = signature_size;
        return 0;
}
