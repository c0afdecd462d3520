/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* JSON over HTTP(S) POST, as the fleet's servers speak it (etcd's JSON gateway, FleetLock): one
 * request, its status and its JSON reply. Transport failures are not logged here: the caller
 * tries another endpoint or waits, and says so once; *ret_error holds the one-line reason. */

#include <systemd/sd-json.h>

#include "time-util.h"

/* A fleet server's reply is a small document; anything larger is not one. */
#define HTTP_JSON_REPLY_MAX (4U << 20)

typedef struct HttpJsonOptions {
        const char *ca_file;   /* NULL: the system's CAs */
        const char *cert_file; /* a TLS client certificate, and its key */
        const char *key_file;
        usec_t timeout;        /* the whole request; 0: HTTP_JSON_TIMEOUT_DEFAULT */
} HttpJsonOptions;

#define HTTP_JSON_TIMEOUT_DEFAULT (15 * USEC_PER_SEC)

/* POSTs body (with each "Name: value" of headers, may be NULL) to url. On an answer, 0 with its
 * HTTP status, and its body parsed (NULL if empty or not JSON). Else the errno of fetch.h's list
 * (-ECONNREFUSED, -ETIMEDOUT, -EKEYREJECTED, -EFBIG, ...), and the reason in *ret_error. */
int http_post_json(const char *url, sd_json_variant *body, char * const *headers, const HttpJsonOptions *o,
                   long *ret_status, sd_json_variant **ret_reply, char **ret_error);

/* base, without its trailing slashes, and path. */
char *http_url(const char *base, const char *path);
/* Adds "; reason" to *reasons: what each server said, for the one message when none answered. */
int http_reasons_append(char **reasons, const char *reason);
