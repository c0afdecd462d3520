/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-json.h>

#include "fleetlock-server.h"
#include "macro.h"
#include "string-util.h"

static char *reply(const char *kind, const char *value) {
        return strprintf("{\"kind\":\"%s\",\"value\":\"%s\"}", kind, value);
}

void fleetlock_server_handler(const char *path, const char *headers, const char *body, size_t size,
                              unsigned *ret_status, char **ret_body, void *userdata) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        LockServer *s = userdata;
        bool pre = streq(path, "/v1/pre-reboot"), steady = streq(path, "/v1/steady-state");
        const char *id = NULL, *group = NULL;

        *ret_status = 400;
        if (!pre && !steady) {
                *ret_status = 404;
                s->bad_requests++;
                return;
        }
        if (!strcasestr(headers, "fleet-lock-protocol: true")) {
                s->bad_requests++;
                *ret_body = reply("missing_header", "fleet-lock-protocol");
                return;
        }
        sd_json_variant *params = NULL;
        if (sd_json_parse(body, 0, &v, NULL, NULL) >= 0)
                params = sd_json_variant_by_key(v, "client_params");
        if (params) {
                sd_json_variant *i = sd_json_variant_by_key(params, "id"), *g = sd_json_variant_by_key(params, "group");
                id = i && sd_json_variant_is_string(i) ? sd_json_variant_string(i) : NULL;
                group = g && sd_json_variant_is_string(g) ? sd_json_variant_string(g) : NULL;
        }
        if (isempty(id) || isempty(group)) {
                s->bad_requests++;
                *ret_body = reply("invalid_body", "client_params with id and group expected");
                return;
        }
        if (!streq(group, s->group)) {
                *ret_body = reply("unknown_group", group);
                return;
        }
        if (steady) {
                s->steady_state++;
                char **to = s->holders;
                for (char **h = s->holders; h && *h; h++)
                        if (streq(*h, id))
                                free(*h);
                        else
                                *to++ = *h;
                if (to)
                        *to = NULL;
                *ret_status = 200;
                return;
        }
        s->pre_reboot++;
        if (!strv_contains(s->holders, id)) {
                if (strv_length(s->holders) >= s->max) {
                        _cleanup_free_ char *list = strv_join(s->holders, ",");
                        _cleanup_free_ char *value = strprintf("semaphore currently held by %s", list);
                        *ret_status = 409;
                        *ret_body = reply("failed_lock", value);
                        return;
                }
                if (strv_extend(&s->holders, id) < 0) {
                        *ret_status = 500;
                        return;
                }
        }
        *ret_status = 200;
}
