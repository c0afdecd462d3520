/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What every libcurl user in updaterd shares: one global initialization, the handle cleanup and
 * the User-Agent the release server and the fleet's servers see. */

#include <curl/curl.h>

#define DREAMLINK_USER_AGENT "dreamlink/" PACKAGE_VERSION

/* curl_global_init() once per process, thread-safe; -EIO (logged) if it failed. */
int curl_util_init(void);

/* The errno for a libcurl error code, as fetch.h lists them (an int: libostree's own libcurl
 * fetcher only gives the code). */
int curl_errno(int code);

static inline void curl_easy_cleanupp(CURL **c) {
        if (*c)
                curl_easy_cleanup(*c);
}
