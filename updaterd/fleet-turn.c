/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <systemd/sd-json.h>

#include "fileio.h"
#include "fleet-turn.h"
#include "json-record.h"
#include "log.h"
#include "string-util.h"

#define FLEET_TURN_FORMAT_VERSION 1
#define FLEET_TURN_FILE_MAX (64 * 1024)

static const char * const fleet_turn_state_table[_FLEET_TURN_STATE_MAX] = {
        [FLEET_TURN_WAITING] = "waiting",
        [FLEET_TURN_HELD] = "held",
};

DEFINE_STRING_TABLE_LOOKUP(fleet_turn_state, FleetTurnState, fleet_turn_state_table, _FLEET_TURN_STATE_INVALID);

void fleet_turn_done(FleetTurn *t) {
        free(t->group);
        free(t->id);
        free(t->why);
        *t = (FleetTurn) {};
}

typedef struct TurnFields {
        const char *state, *strategy, *group, *id, *why;
        uint64_t since;
} TurnFields;

int fleet_turn_load(const char *path, FleetTurn *ret) {
        static const sd_json_dispatch_field table[] = {
                { "version",  SD_JSON_VARIANT_UNSIGNED, NULL,                          0,                              0 },
                { "state",    SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TurnFields, state),    SD_JSON_MANDATORY },
                { "strategy", SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TurnFields, strategy), SD_JSON_MANDATORY },
                { "group",    SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TurnFields, group),    SD_JSON_MANDATORY },
                { "id",       SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TurnFields, id),       SD_JSON_MANDATORY },
                { "since",    SD_JSON_VARIANT_UNSIGNED, sd_json_dispatch_uint64,       offsetof(TurnFields, since),    0 },
                { "why",      SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TurnFields, why),      0 },
                {}
        };
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        _cleanup_free_ char *text = NULL;
        TurnFields f = {};
        int r;

        assert(path);
        assert(ret);

        r = json_record_read(path, FLEET_TURN_FILE_MAX, "Fleet turn record", &text);
        if (r == -ENOENT || r == -EBADMSG)
                return r;
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", path);
        r = json_record_parse(text, path, "Fleet turn record", FLEET_TURN_FORMAT_VERSION, &v);
        if (r < 0)
                return r;
        r = sd_json_dispatch(v, table, SD_JSON_ALLOW_EXTENSIONS, &f);
        if (r < 0)
                return log_error_errno(EBADMSG, "%s: Fleet turn record lacks a field or has one of the wrong type, refusing it.",
                                       path);
        FleetTurnState state = fleet_turn_state_from_string(f.state);
        FleetStrategy strategy = fleet_strategy_from_string(f.strategy);
        if (state < 0 || strategy < 0)
                return log_error_errno(EBADMSG, "%s: Fleet turn record has state '%s' and strategy '%s', refusing it.",
                                       path, f.state, f.strategy);

        _cleanup_(fleet_turn_done) FleetTurn t = {
                .state = state,
                .strategy = strategy,
                .since = f.since,
                .group = strdup(f.group),
                .id = strdup(f.id),
                .why = f.why ? strdup(f.why) : NULL,
        };
        if (!t.group || !t.id || (f.why && !t.why))
                return log_oom();
        *ret = t;
        t = (FleetTurn) {};
        return 0;
}

int fleet_turn_save(const FleetTurn *t, const char *path) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        _cleanup_free_ char *text = NULL;
        int r;

        assert(t);
        assert(path);

        r = sd_json_buildo(&v,
                        SD_JSON_BUILD_PAIR_UNSIGNED("version", FLEET_TURN_FORMAT_VERSION),
                        SD_JSON_BUILD_PAIR_STRING("state", fleet_turn_state_to_string(t->state)),
                        SD_JSON_BUILD_PAIR_STRING("strategy", fleet_strategy_to_string(t->strategy)),
                        SD_JSON_BUILD_PAIR_STRING("group", t->group),
                        SD_JSON_BUILD_PAIR_STRING("id", t->id),
                        SD_JSON_BUILD_PAIR_UNSIGNED("since", t->since),
                        SD_JSON_BUILD_PAIR_CONDITION(!!t->why, "why", SD_JSON_BUILD_STRING(t->why)));
        if (r >= 0)
                r = sd_json_variant_format(v, SD_JSON_FORMAT_PRETTY | SD_JSON_FORMAT_NEWLINE, &text);
        if (r < 0)
                return log_error_errno(r, "Failed to format the fleet turn record: %m");
        /* World-readable like the other records: status shows it to everyone. */
        r = write_string_file_atomic(path, text, 0644);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        return 0;
}

int fleet_turn_remove(const char *path) {
        assert(path);

        if (unlink(path) < 0) {
                if (errno == ENOENT)
                        return 0;
                return log_error_errno(errno, "Failed to remove %s: %m", path);
        }
        int r = fsync_directory_of(path);
        if (r < 0)
                return log_error_errno(r, "Failed to sync the removal of %s: %m", path);
        return 0;
}
