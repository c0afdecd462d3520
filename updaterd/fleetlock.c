/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fleetlock.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"

static char *refusal(const char *url, long status, sd_json_variant *reply) {
        sd_json_variant *kind = reply ? sd_json_variant_by_key(reply, "kind") : NULL;
        sd_json_variant *value = reply ? sd_json_variant_by_key(reply, "value") : NULL;

        if (kind && sd_json_variant_is_string(kind)) {
                _cleanup_free_ char *k = escape_control(sd_json_variant_string(kind));
                _cleanup_free_ char *v = value && sd_json_variant_is_string(value) ?
                        escape_control(sd_json_variant_string(value)) : NULL;
                return strprintf("%s: HTTP %ld, %s%s%s", url, status, strna(k), v ? ": " : "", strempty(v));
        }
        return strprintf("%s: HTTP %ld", url, status);
}

static int fleetlock_call(char * const *servers, const HttpJsonOptions *o, const char *path, const char *group,
                          const char *id, char **ret_error) {
        static char * const headers[] = { (char *) "fleet-lock-protocol: true", NULL };
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *body = NULL;
        _cleanup_free_ char *errors = NULL;
        int r = -EHOSTUNREACH;

        assert(servers && servers[0]);
        assert(group);
        assert(id);
        assert(ret_error);

        *ret_error = NULL;
        r = sd_json_buildo(&body,
                           SD_JSON_BUILD_PAIR("client_params", SD_JSON_BUILD_OBJECT(
                                   SD_JSON_BUILD_PAIR_STRING("id", id),
                                   SD_JSON_BUILD_PAIR_STRING("group", group))));
        if (r < 0)
                return r;
        STRV_FOREACH(s, servers) {
                _cleanup_(sd_json_variant_unrefp) sd_json_variant *reply = NULL;
                _cleanup_free_ char *url = NULL, *error = NULL;
                long status = 0;

                url = http_url(*s, path);
                if (!url)
                        return -ENOMEM;
                r = http_post_json(url, body, headers, o, &status, &reply, &error);
                if (r == -ENOMEM)
                        return r;
                if (r >= 0) {
                        /* The protocol says 200; Zincati takes any 2xx, and so do we. */
                        if (status >= 200 && status < 300)
                                return 1;
                        /* A server that answered has the semaphore's say: another is not asked. */
                        *ret_error = refusal(url, status, reply);
                        return 0;
                }
                log_debug("FleetLock: %s", strna(error));
                if (http_reasons_append(&errors, error) < 0)
                        return -ENOMEM;
        }
        *ret_error = TAKE_PTR(errors);
        return r;
}

int fleetlock_pre_reboot(char * const *servers, const HttpJsonOptions *o, const char *group, const char *id,
                         char **ret_error) {
        return fleetlock_call(servers, o, "/v1/pre-reboot", group, id, ret_error);
}

int fleetlock_steady_state(char * const *servers, const HttpJsonOptions *o, const char *group, const char *id,
                           char **ret_error) {
        return fleetlock_call(servers, o, "/v1/steady-state", group, id, ret_error);
}
