/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"

/* gRPC's codes, as the gateway reports them in an error body's "code". */
#define GRPC_OUT_OF_RANGE 11

void etcd_value_done(EtcdValue *v) {
        free(v->value);
        *v = (EtcdValue) {};
}

/* A 64-bit number as the gateway writes it: a string, or left out when 0. */
static int json_int64(sd_json_variant *object, const char *field, int64_t *ret) {
        sd_json_variant *v = object ? sd_json_variant_by_key(object, field) : NULL;
        uint64_t u;

        if (!v) {
                *ret = 0;
                return 0;
        }
        if (sd_json_variant_is_string(v)) {
                if (parse_uint64(sd_json_variant_string(v), &u) < 0)
                        return -EBADMSG;
        } else if (sd_json_variant_is_unsigned(v))
                u = sd_json_variant_unsigned(v);
        else
                return -EBADMSG;
        if (u > INT64_MAX)
                return -EBADMSG;
        *ret = (int64_t) u;
        return 0;
}

/* "what went wrong" from an error body: {"code": N, "message": ...} (upstream adds "error"). */
static char *reply_error(const char *url, long status, sd_json_variant *reply, int64_t *ret_code) {
        sd_json_variant *m = reply ? sd_json_variant_by_key(reply, "message") : NULL;
        if (!m && reply)
                m = sd_json_variant_by_key(reply, "error");
        if (ret_code && json_int64(reply, "code", ret_code) < 0)
                *ret_code = 0;
        if (m && sd_json_variant_is_string(m)) {
                _cleanup_free_ char *safe = escape_control(sd_json_variant_string(m));
                return strprintf("%s: HTTP %ld, %s", url, status, strna(safe));
        }
        return strprintf("%s: HTTP %ld", url, status);
}

/* POSTs body to path on each member in turn, from the preferred one, until one answers 200. */
static int etcd_call(EtcdClient *e, const char *path, sd_json_variant *body, sd_json_variant **ret_reply,
                     char **ret_error) {
        _cleanup_free_ char *errors = NULL;
        size_t n = strv_length(e->endpoints);
        int r = -EHOSTUNREACH;

        assert(n > 0);
        for (size_t i = 0; i < n; i++) {
                size_t k = (e->preferred + i) % n;
                _cleanup_(sd_json_variant_unrefp) sd_json_variant *reply = NULL;
                _cleanup_free_ char *url = NULL, *error = NULL;
                long status = 0;

                url = http_url(e->endpoints[k], path);
                if (!url)
                        return -ENOMEM;
                e->requests++;
                r = http_post_json(url, body, NULL, &e->http, &status, &reply, &error);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0 && status == 200 && reply) {
                        e->preferred = k;
                        *ret_reply = TAKE_PTR(reply);
                        return 0;
                }
                if (r >= 0) {
                        int64_t code = 0;
                        free(error);
                        error = reply_error(url, status, reply, &code);
                        if (code == GRPC_OUT_OF_RANGE) {
                                /* The same on every member: a revision compacted away or not there yet. */
                                *ret_error = TAKE_PTR(error);
                                return -ESTALE;
                        }
                        /* Another member may well be able to: no leader here, or not in the quorum. */
                        r = -EREMOTEIO;
                }
                log_debug("etcd: %s", strna(error));
                if (http_reasons_append(&errors, error) < 0)
                        return -ENOMEM;
        }
        *ret_error = TAKE_PTR(errors);
        return r;
}

static int key_value_from_reply(sd_json_variant *reply, EtcdValue *ret) {
        sd_json_variant *kvs = sd_json_variant_by_key(reply, "kvs");
        sd_json_variant *header = sd_json_variant_by_key(reply, "header");
        EtcdValue v = {};
        int r;

        r = json_int64(header, "revision", &v.revision);
        if (r < 0)
                return r;
        if (kvs && sd_json_variant_elements(kvs) > 0) {
                sd_json_variant *kv = sd_json_variant_by_index(kvs, 0);
                sd_json_variant *value = sd_json_variant_by_key(kv, "value");
                _cleanup_free_ void *data = NULL;
                size_t size = 0;

                r = json_int64(kv, "mod_revision", &v.mod_revision);
                if (r < 0)
                        return r;
                /* An empty value is left out. */
                if (value && sd_json_variant_unbase64(value, &data, &size) < 0)
                        return -EBADMSG;
                v.value = malloc(size + 1);
                if (!v.value)
                        return -ENOMEM;
                if (size > 0)
                        memcpy(v.value, data, size);
                v.value[size] = 0;
                v.size = size;
        }
        *ret = v;
        return 0;
}

int etcd_get(EtcdClient *e, const char *key, int64_t revision, EtcdValue *ret, char **ret_error) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *body = NULL, *reply = NULL;
        _cleanup_free_ char *rev = NULL;
        int r;

        assert(e);
        assert(key);
        assert(ret);
        assert(ret_error);

        *ret_error = NULL;
        if (revision > 0 && !(rev = strprintf("%" PRIi64, revision)))
                return -ENOMEM;
        r = sd_json_buildo(&body,
                           SD_JSON_BUILD_PAIR_BASE64("key", key, strlen(key)),
                           SD_JSON_BUILD_PAIR_CONDITION(!!rev, "revision", SD_JSON_BUILD_STRING(rev)));
        if (r < 0)
                return r;
        r = etcd_call(e, "/v3/kv/range", body, &reply, ret_error);
        if (r < 0)
                return r;
        r = key_value_from_reply(reply, ret);
        if (r == -EBADMSG)
                *ret_error = strdup("etcd answered a range request with something that is not one");
        return r;
}

int etcd_put_if_unchanged(EtcdClient *e, const char *key, int64_t mod_revision, const char *value,
                          int64_t *ret_revision, char **ret_error) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *body = NULL, *reply = NULL;
        _cleanup_free_ char *rev = strprintf("%" PRIi64, mod_revision);
        int64_t revision = 0;
        int r;

        assert(e);
        assert(key);
        assert(value);
        assert(ret_error);

        *ret_error = NULL;
        if (!rev)
                return -ENOMEM;
        /* A key that does not exist compares as mod_revision 0: the same request creates it. */
        r = sd_json_buildo(&body,
                           SD_JSON_BUILD_PAIR("compare", SD_JSON_BUILD_ARRAY(SD_JSON_BUILD_OBJECT(
                                   SD_JSON_BUILD_PAIR_BASE64("key", key, strlen(key)),
                                   SD_JSON_BUILD_PAIR_STRING("result", "EQUAL"),
                                   SD_JSON_BUILD_PAIR_STRING("target", "MOD"),
                                   SD_JSON_BUILD_PAIR_STRING("mod_revision", rev)))),
                           SD_JSON_BUILD_PAIR("success", SD_JSON_BUILD_ARRAY(SD_JSON_BUILD_OBJECT(
                                   SD_JSON_BUILD_PAIR("request_put", SD_JSON_BUILD_OBJECT(
                                           SD_JSON_BUILD_PAIR_BASE64("key", key, strlen(key)),
                                           SD_JSON_BUILD_PAIR_BASE64("value", value, strlen(value))))))));
        if (r < 0)
                return r;
        r = etcd_call(e, "/v3/kv/txn", body, &reply, ret_error);
        if (r < 0)
                return r;
        sd_json_variant *succeeded = sd_json_variant_by_key(reply, "succeeded");
        if (json_int64(sd_json_variant_by_key(reply, "header"), "revision", &revision) < 0) {
                *ret_error = strdup("etcd answered a transaction with something that is not an answer to one");
                return -EBADMSG;
        }
        if (ret_revision)
                *ret_revision = revision;
        /* false is left out. */
        return succeeded && sd_json_variant_is_boolean(succeeded) && sd_json_variant_boolean(succeeded);
}
