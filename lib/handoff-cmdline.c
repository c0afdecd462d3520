/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "handoff-cmdline.h"
#include "handoff-config.h"
#include "proc-cmdline.h"
#include "string-util.h"
#include "transaction.h"

#define KEY_SET "dreamlink.handoff"
#define KEY_UNITS "dreamlink.handoff.units"
#define KEY_PID_FLOOR "dreamlink.handoff.pid_floor"

static bool pid_floor_is_valid(uint64_t floor) {
        return floor >= HANDOFF_PID_FLOOR_MIN && floor <= HANDOFF_PID_FLOOR_MAX;
}

static bool units_are_valid(char * const *units) {
        STRV_FOREACH(u, units)
                if (!unit_name_is_service(*u))
                        return false;
        return true;
}

static int reject(HandoffCmdline *c, const char *key, const char *value) {
        char *w = strprintf("%s=%s", key, value);
        return w ? strv_push(&c->rejected, w) : -ENOMEM;
}

int handoff_cmdline_format(const HandoffCmdline *c, char **ret) {
        _cleanup_free_ char *units = NULL;

        assert(c);
        assert(ret);
        if (!transaction_id_is_valid(c->set_id) || !units_are_valid(c->units) ||
            (c->pid_floor != 0 && !pid_floor_is_valid(c->pid_floor)))
                return -EINVAL;
        STRV_FOREACH(u, c->units) {
                char *n = strprintf("%s%s%s", strempty(units), units ? "," : "", *u);
                if (!n)
                        return -ENOMEM;
                free(units);
                units = n;
        }
        char *s = strprintf(" " KEY_SET "=%s%s%s", c->set_id, units ? " " KEY_UNITS "=" : "", strempty(units));
        if (s && c->pid_floor != 0) {
                char *n = strprintf("%s " KEY_PID_FLOOR "=%" PRIu64, s, c->pid_floor);
                free(s);
                s = n;
        }
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int get(const char *cmdline, const char *key, char **ret) {
        return cmdline ? proc_cmdline_get_key(cmdline, key, ret) : proc_cmdline_get(key, ret);
}

int handoff_cmdline_parse(const char *cmdline, HandoffCmdline *ret) {
        _cleanup_(handoff_cmdline_done) HandoffCmdline c = {};
        _cleanup_free_ char *units = NULL, *floor = NULL;
        int r;

        assert(ret);
        r = get(cmdline, KEY_SET, &c.set_id);
        if (r < 0)
                return r;
        if (!transaction_id_is_valid(c.set_id))
                return -EINVAL;

        r = get(cmdline, KEY_UNITS, &units);
        if (r >= 0) {
                _cleanup_strv_free_ char **all = NULL;
                r = strv_split(units, ",", &all);
                if (r < 0)
                        return r;
                STRV_FOREACH(u, all) {
                        r = unit_name_is_service(*u) ? strv_extend(&c.units, *u) : reject(&c, KEY_UNITS, *u);
                        if (r < 0)
                                return r;
                }
        } else if (r != -ENOENT)
                return r;

        r = get(cmdline, KEY_PID_FLOOR, &floor);
        if (r >= 0) {
                if (parse_uint64(floor, &c.pid_floor) < 0 || !pid_floor_is_valid(c.pid_floor)) {
                        c.pid_floor = 0;
                        r = reject(&c, KEY_PID_FLOOR, floor);
                        if (r < 0)
                                return r;
                }
        } else if (r != -ENOENT)
                return r;

        *ret = c;
        c = (HandoffCmdline) {};
        return 0;
}

void handoff_cmdline_done(HandoffCmdline *c) {
        if (!c)
                return;
        c->set_id = mfree(c->set_id);
        c->units = strv_free(c->units);
        c->rejected = strv_free(c->rejected);
}
