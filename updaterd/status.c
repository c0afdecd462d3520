/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <systemd/sd-json.h>

#include "conf-parser.h"
#include "fileio.h"
#include "fleet-turn.h"
#include "handoff-config.h"
#include "log.h"
#include "os-release.h"
#include "slot-status.h"
#include "context.h"
#include "status.h"
#include "string-util.h"
#include "transaction.h"

char *path_prefix(const char *root, const char *path) {
        char *p;
        return asprintf(&p, "%s%s", strempty(root), path) < 0 ? NULL : p;
}

void status_booted_done(BootedInfo *b) {
        free(b->slot);
        free(b->version);
        free(b->commit);
        free(b->kernel);
        *b = (BootedInfo) {};
}

int status_booted(const char *root, const UpdaterConfig *c, BootedInfo *ret) {
        _cleanup_free_ char *slots_path = state_path(root, c, SLOT_TABLE_FILE);
        _cleanup_(slot_table_done) SlotTable t = {};
        BootedInfo b = {};
        Slot slot;
        int r;

        if (!slots_path)
                return -ENOMEM;
        r = booted_slot_read(root, &slot);
        if (r < 0)
                return r;

        b.slot = strdup(slot_to_string(slot));
        if (slot_table_load(slots_path, &t) >= 0) {
                const SlotStatus *s = &t.slots[slot];
                b.version = s->version ? strdup(s->version) : NULL;
                b.commit = s->commit ? strdup(s->commit) : NULL;
                b.kernel = s->kernel ? strdup(s->kernel) : NULL;
        }
        if (!b.version)
                (void) os_release_get(root, "IMAGE_VERSION", &b.version);
        if (!b.kernel) {
                struct utsname u;
                if (uname(&u) >= 0)
                        b.kernel = strdup(u.release);
        }
        *ret = b;
        return 0;
}

/* A state file's JSON as a variant, or NULL (missing or refused: the loader logged why). */
static sd_json_variant *load_json_file(const char *path) {
        _cleanup_free_ char *text = NULL;
        sd_json_variant *v = NULL;

        if (read_file_limited(path, 256 * 1024, &text, NULL) < 0 || sd_json_parse(text, 0, &v, NULL, NULL) < 0)
                return NULL;
        return v;
}

/* The last HISTORY_SHOWN finished transactions, oldest first (file names sort by start time). */
static sd_json_variant *load_history(const char *root, const UpdaterConfig *c) {
        _cleanup_free_ char *dir = state_path(root, c, HISTORY_DIR);
        _cleanup_strv_free_ char **files = NULL;
        sd_json_variant *history = NULL;

        if (!dir)
                return NULL;
        const char * const dirs[] = { dir, NULL };
        if (conf_files_list(dirs, ".json", &files) < 0)
                return NULL;
        size_t n = strv_length(files);
        for (size_t i = n > HISTORY_SHOWN ? n - HISTORY_SHOWN : 0; i < n; i++) {
                _cleanup_(transaction_freep) Transaction *t = NULL;
                _cleanup_free_ char *json = NULL;
                _cleanup_(sd_json_variant_unrefp) sd_json_variant *e = NULL;
                if (transaction_load(files[i], &t) < 0 || transaction_to_json(t, &json) < 0 ||
                    sd_json_parse(json, 0, &e, NULL, NULL) < 0)
                        continue;
                if (sd_json_variant_append_array(&history, e) < 0)
                        break;
        }
        return history;
}

bool status_auto_commit_pending(const char *root, const UpdaterConfig *c, char **ret_version) {
        _cleanup_free_ char *slots_path = state_path(root, c, SLOT_TABLE_FILE),
                            *txn_path = state_path(root, c, TRANSACTION_FILE);
        _cleanup_(transaction_freep) Transaction *t = NULL;
        _cleanup_(slot_table_done) SlotTable table = {};
        _cleanup_(status_booted_done) BootedInfo b = {};
        Slot booted;

        if (!slots_path || !txn_path || status_booted(root, c, &b) < 0 || !b.slot)
                return false;
        booted = slot_from_string(b.slot);
        if (booted < 0 || transaction_load(txn_path, &t) < 0 || slot_table_load(slots_path, &table) < 0)
                return false;
        Slot other = slot_other(booted);
        if (t->operation != TRANSACTION_STAGE || t->outcome != OUTCOME_SUCCEEDED || t->to_slot != other ||
            table.slots[other].state != SLOT_STATE_STAGED)
                return false;
        if (ret_version && !(*ret_version = strdup(strempty(table.slots[other].version))))
                return false;
        return true;
}

/* [Fleet] and this machine's turn in it (fleet-turn.h): whether a switch waits for a slot, and why. */
static sd_json_variant *describe_fleet(const char *root, const UpdaterConfig *c) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL, *turn = NULL;
        _cleanup_(fleet_turn_done) FleetTurn t = {};
        _cleanup_free_ char *path = state_path(root, c, FLEET_TURN_FILE);

        if (path && fleet_turn_load(path, &t) >= 0 &&
            sd_json_buildo(&turn,
                           SD_JSON_BUILD_PAIR_STRING("state", fleet_turn_state_to_string(t.state)),
                           SD_JSON_BUILD_PAIR_STRING("strategy", fleet_strategy_to_string(t.strategy)),
                           SD_JSON_BUILD_PAIR_STRING("group", t.group),
                           SD_JSON_BUILD_PAIR_STRING("id", t.id),
                           SD_JSON_BUILD_PAIR_UNSIGNED("since_usec", t.since),
                           SD_JSON_BUILD_PAIR_CONDITION(!!t.why, "why", SD_JSON_BUILD_STRING(t.why))) < 0)
                return NULL;
        if (sd_json_buildo(&v,
                           SD_JSON_BUILD_PAIR_STRING("strategy", fleet_strategy_to_string(c->fleet_strategy)),
                           SD_JSON_BUILD_PAIR_STRING("group", c->fleet_group),
                           SD_JSON_BUILD_PAIR_CONDITION(!!c->fleet_id, "id", SD_JSON_BUILD_STRING(c->fleet_id)),
                           SD_JSON_BUILD_PAIR_UNSIGNED("slots", c->fleet_slots),
                           SD_JSON_BUILD_PAIR_STRV("endpoints", c->fleet_endpoints),
                           SD_JSON_BUILD_PAIR_CONDITION(!!turn, "turn", SD_JSON_BUILD_VARIANT(turn))) < 0)
                return NULL;
        return TAKE_PTR(v);
}

int status_describe(const char *root, const UpdaterConfig *c, const StatusJob *job, char **ret) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL, *slots = NULL, *txn = NULL, *check = NULL;
        _cleanup_free_ char *slots_path = state_path(root, c, SLOT_TABLE_FILE),
                            *txn_path = state_path(root, c, TRANSACTION_FILE),
                            *check_path = state_path(root, c, LAST_CHECK_FILE),
                            *slots_json = NULL, *txn_json = NULL;
        _cleanup_(transaction_freep) Transaction *t = NULL;
        _cleanup_(slot_table_done) SlotTable table = {};
        _cleanup_(status_booted_done) BootedInfo b = {};
        int r;

        if (!slots_path || !txn_path || !check_path)
                return -ENOMEM;

        (void) status_booted(root, c, &b);

        /* Only validated records are shown: a corrupt one reads as absent (and was logged). */
        if (slot_table_load(slots_path, &table) >= 0 && slot_table_to_json(&table, &slots_json) >= 0)
                (void) sd_json_parse(slots_json, 0, &slots, NULL, NULL);
        if (transaction_load(txn_path, &t) >= 0 && transaction_to_json(t, &txn_json) >= 0)
                (void) sd_json_parse(txn_json, 0, &txn, NULL, NULL);
        check = load_json_file(check_path);
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *history = load_history(root, c);
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *fleet = describe_fleet(root, c);

        /* The services a commit would carry over (whether CRIU can take them now is
         * `dreamlink-handoff list`'s business: finding out freezes them). */
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *handoff = NULL;
        HandoffUnit **units = NULL;
        if (handoff_config_load(root, &units) >= 0) {
                for (HandoffUnit **u = units; *u; u++)
                        if (sd_json_variant_append_arraybo(&handoff,
                                        SD_JSON_BUILD_PAIR_STRING("unit", (*u)->unit),
                                        SD_JSON_BUILD_PAIR_BOOLEAN("enabled", (*u)->enabled)) < 0)
                                break;
                handoff_config_free(units);
        }

        char window[32];
        snprintf(window, sizeof(window), "%02u:%02u-%02u:%02u", c->auto_commit_window.start / 60,
                 c->auto_commit_window.start % 60, c->auto_commit_window.end / 60, c->auto_commit_window.end % 60);

        sd_json_variant *slot_map = slots ? sd_json_variant_by_key(slots, "slots") : NULL;
        r = sd_json_buildo(&v,
                        SD_JSON_BUILD_PAIR_STRING("operation", job->operation),
                        SD_JSON_BUILD_PAIR_CONDITION(!!job->step, "step", SD_JSON_BUILD_STRING(job->step)),
                        SD_JSON_BUILD_PAIR_OBJECT("progress",
                                SD_JSON_BUILD_PAIR_UNSIGNED("bytes", job->bytes),
                                SD_JSON_BUILD_PAIR_UNSIGNED("total", job->total)),
                        SD_JSON_BUILD_PAIR_STRING("channel", c->channel),
                        SD_JSON_BUILD_PAIR_OBJECT("auto_commit",
                                SD_JSON_BUILD_PAIR_BOOLEAN("enabled", c->auto_commit),
                                SD_JSON_BUILD_PAIR_CONDITION(c->has_auto_commit_window, "window",
                                                             SD_JSON_BUILD_STRING(window)),
                                SD_JSON_BUILD_PAIR_CONDITION(job->auto_commit_at > 0, "next_usec",
                                                             SD_JSON_BUILD_UNSIGNED(job->auto_commit_at))),
                        SD_JSON_BUILD_PAIR_CONDITION(!!c->server, "server", SD_JSON_BUILD_STRING(c->server)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!fleet, "fleet", SD_JSON_BUILD_VARIANT(fleet)),
                        SD_JSON_BUILD_PAIR_OBJECT("booted",
                                SD_JSON_BUILD_PAIR_CONDITION(!!b.slot, "slot", SD_JSON_BUILD_STRING(b.slot)),
                                SD_JSON_BUILD_PAIR_CONDITION(!!b.version, "version", SD_JSON_BUILD_STRING(b.version)),
                                SD_JSON_BUILD_PAIR_CONDITION(!!b.commit, "commit", SD_JSON_BUILD_STRING(b.commit)),
                                SD_JSON_BUILD_PAIR_CONDITION(!!b.kernel, "kernel", SD_JSON_BUILD_STRING(b.kernel))),
                        SD_JSON_BUILD_PAIR_CONDITION(!!slot_map, "slots", SD_JSON_BUILD_VARIANT(slot_map)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!slots, "highest_counter",
                                SD_JSON_BUILD_UNSIGNED(table.highest_counter)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!check, "last_check", SD_JSON_BUILD_VARIANT(check)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!txn, "transaction", SD_JSON_BUILD_VARIANT(txn)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!history, "history", SD_JSON_BUILD_VARIANT(history)),
                        SD_JSON_BUILD_PAIR_CONDITION(c->handoff && !!handoff, "handoff", SD_JSON_BUILD_VARIANT(handoff)));
        if (r < 0)
                return r;
        r = sd_json_variant_format(v, 0, ret);
        return r < 0 ? r : 0;
}
