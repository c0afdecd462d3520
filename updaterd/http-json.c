/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "curl-util.h"
#include "http-json.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"

typedef struct Reply {
        char *data;
        size_t size;
        bool too_large, oom;
} Reply;

static size_t reply_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Reply *r = userdata;
        size_t n = size * nmemb;

        if (n > HTTP_JSON_REPLY_MAX - r->size) {
                r->too_large = true;
                return 0;
        }
        char *p = realloc(r->data, r->size + n + 1);
        if (!p) {
                r->oom = true;
                return 0;
        }
        memcpy(p + r->size, ptr, n);
        r->size += n;
        p[r->size] = 0;
        r->data = p;
        return n;
}

static inline void curl_slist_free_allp(struct curl_slist **l) {
        curl_slist_free_all(*l);
}

#define SETOPT(c, option, value)                                                                     \
        do {                                                                                         \
                if (curl_easy_setopt((c), option, value) != CURLE_OK)                               \
                        return -EIO;                                                                 \
        } while (0)

static int setup(CURL *c, const char *url, const char *body, struct curl_slist *headers,
                 const HttpJsonOptions *o, Reply *reply, char *errbuf) {
        usec_t timeout = o->timeout > 0 ? o->timeout : HTTP_JSON_TIMEOUT_DEFAULT;

        SETOPT(c, CURLOPT_URL, url);
        SETOPT(c, CURLOPT_ERRORBUFFER, errbuf);
        SETOPT(c, CURLOPT_NOSIGNAL, 1L);
        SETOPT(c, CURLOPT_USERAGENT, DREAMLINK_USER_AGENT);
        /* A fleet server that could send us elsewhere could also answer for someone else. */
        SETOPT(c, CURLOPT_PROTOCOLS_STR, "https,http");
        SETOPT(c, CURLOPT_FOLLOWLOCATION, 0L);
        SETOPT(c, CURLOPT_POSTFIELDS, body);
        SETOPT(c, CURLOPT_HTTPHEADER, headers);
        SETOPT(c, CURLOPT_TIMEOUT_MS, (long) MAX(timeout / USEC_PER_MSEC, 1U));
        SETOPT(c, CURLOPT_CONNECTTIMEOUT_MS, (long) MAX(timeout / USEC_PER_MSEC, 1U));
        if (o->ca_file)
                SETOPT(c, CURLOPT_CAINFO, o->ca_file);
        if (o->cert_file)
                SETOPT(c, CURLOPT_SSLCERT, o->cert_file);
        if (o->key_file)
                SETOPT(c, CURLOPT_SSLKEY, o->key_file);
        SETOPT(c, CURLOPT_WRITEFUNCTION, reply_write_cb);
        SETOPT(c, CURLOPT_WRITEDATA, reply);
        return 0;
}

int http_post_json(const char *url, sd_json_variant *body, char * const *headers, const HttpJsonOptions *o,
                   long *ret_status, sd_json_variant **ret_reply, char **ret_error) {
        _cleanup_(curl_easy_cleanupp) CURL *c = NULL;
        _cleanup_(curl_slist_free_allp) struct curl_slist *list = NULL;
        _cleanup_free_ char *text = NULL;
        Reply reply = {};
        char errbuf[CURL_ERROR_SIZE] = "";
        int r;

        assert(url);
        assert(body);
        assert(o);
        assert(ret_error);

        *ret_error = NULL;
        r = curl_util_init();
        if (r < 0)
                return r;
        r = sd_json_variant_format(body, 0, &text);
        if (r < 0)
                return r;
        list = curl_slist_append(NULL, "Content-Type: application/json");
        if (!list)
                return -ENOMEM;
        STRV_FOREACH(h, headers) {
                struct curl_slist *l = curl_slist_append(list, *h);
                if (!l)
                        return -ENOMEM;
                list = l;
        }
        c = curl_easy_init();
        if (!c)
                return -ENOMEM;
        r = setup(c, url, text, list, o, &reply, errbuf);
        if (r < 0) {
                *ret_error = strdup("cannot set up libcurl");
                return r;
        }

        CURLcode cc = curl_easy_perform(c);
        _cleanup_free_ char *data = reply.data;
        if (reply.oom)
                return -ENOMEM;
        if (reply.too_large) {
                *ret_error = strprintf("%s: the reply is larger than %u bytes", url, HTTP_JSON_REPLY_MAX);
                return -EFBIG;
        }
        if (cc != CURLE_OK) {
                long os_errno = 0;
                r = curl_errno(cc);
                if (cc == CURLE_COULDNT_CONNECT) {
                        /* Refused and unreachable look alike to libcurl; the socket's errno tells. */
                        (void) curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
                        if (os_errno > 0)
                                r = -(int) os_errno;
                }
                *ret_error = strprintf("%s: %s", url, !isempty(errbuf) ? errbuf : curl_easy_strerror(cc));
                return r;
        }

        long status = 0;
        (void) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        if (data && ret_reply)
                (void) sd_json_parse(data, 0, &v, NULL, NULL);
        if (ret_status)
                *ret_status = status;
        if (ret_reply)
                *ret_reply = TAKE_PTR(v);
        return 0;
}

char *http_url(const char *base, const char *path) {
        size_t len = strlen(base);
        while (len > 0 && base[len - 1] == '/')
                len--;
        return strprintf("%.*s%s", (int) len, base, path);
}

int http_reasons_append(char **reasons, const char *reason) {
        char *joined = strprintf("%s%s%s", strempty(*reasons), *reasons ? "; " : "", strna(reason));
        if (!joined)
                return -ENOMEM;
        free(*reasons);
        *reasons = joined;
        return 0;
}
