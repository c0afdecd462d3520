/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-json.h>

#include "fileio.h"
#include "json-record.h"
#include "log.h"
#include "proc-cmdline.h"
#include "slot-status.h"
#include "string-util.h"


static const char * const slot_state_table[_SLOT_STATE_MAX] = {
        [SLOT_STATE_EMPTY] = "empty",
        [SLOT_STATE_WRITING] = "writing",
        [SLOT_STATE_STAGED] = "staged",
        [SLOT_STATE_GOOD] = "good",
        [SLOT_STATE_BAD] = "bad",
};
DEFINE_STRING_TABLE_LOOKUP(slot_state, SlotState, slot_state_table, _SLOT_STATE_INVALID);

static bool slot_is_valid(Slot s) {
        return s >= 0 && s < _SLOT_MAX;
}

bool slot_commit_is_valid(const char *s) {
        if (!s || strlen(s) != SLOT_COMMIT_LENGTH)
                return false;
        for (const char *p = s; *p; p++)
                if (!isxdigit((unsigned char) *p) || isupper((unsigned char) *p))
                        return false;
        return true;
}

/* Versions and kernel versions end up in boot entries and status lines: one printable line. */
static bool word_is_valid(const char *s) {
        if (isempty(s) || strlen(s) > 256)
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

static void slot_status_clear(SlotStatus *s) {
        free(s->version);
        free(s->commit);
        free(s->kernel);
        s->version = s->commit = s->kernel = NULL;
        s->counter = 0;
}

void slot_table_init(SlotTable *t) {
        *t = (SlotTable) {};
        for (Slot s = 0; s < _SLOT_MAX; s++)
                t->slots[s].state = SLOT_STATE_EMPTY;
}

void slot_table_done(SlotTable *t) {
        for (Slot s = 0; s < _SLOT_MAX; s++)
                slot_status_clear(&t->slots[s]);
        slot_table_init(t);
}

static int slot_status_to_json(const SlotStatus *s, sd_json_variant **ret) {
        return sd_json_buildo(ret,
                        SD_JSON_BUILD_PAIR_STRING("state", slot_state_to_string(s->state)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!s->version, "version", SD_JSON_BUILD_STRING(s->version)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!s->commit, "commit", SD_JSON_BUILD_STRING(s->commit)),
                        SD_JSON_BUILD_PAIR_UNSIGNED("counter", s->counter),
                        SD_JSON_BUILD_PAIR_CONDITION(!!s->kernel, "kernel", SD_JSON_BUILD_STRING(s->kernel)),
                        SD_JSON_BUILD_PAIR_UNSIGNED("updated_usec", s->updated));
}

int slot_table_to_json(const SlotTable *t, char **ret) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL, *a = NULL, *b = NULL;
        int r;

        r = slot_status_to_json(&t->slots[SLOT_A], &a);
        if (r < 0)
                return r;
        r = slot_status_to_json(&t->slots[SLOT_B], &b);
        if (r < 0)
                return r;
        r = sd_json_buildo(&v,
                        SD_JSON_BUILD_PAIR_UNSIGNED("version", SLOT_TABLE_FORMAT_VERSION),
                        SD_JSON_BUILD_PAIR_UNSIGNED("highest_counter", t->highest_counter),
                        SD_JSON_BUILD_PAIR("slots", SD_JSON_BUILD_OBJECT(
                                        SD_JSON_BUILD_PAIR_VARIANT("a", a),
                                        SD_JSON_BUILD_PAIR_VARIANT("b", b))));
        if (r < 0)
                return r;
        r = sd_json_variant_format(v, SD_JSON_FORMAT_PRETTY | SD_JSON_FORMAT_NEWLINE, ret);
        return r < 0 ? r : 0;
}

typedef struct SlotFields {
        const char *state, *version, *commit, *kernel;
        uint64_t counter, updated;
} SlotFields;

static int slot_status_from_json(sd_json_variant *v, const char *source, Slot slot, uint64_t highest,
                                 SlotStatus *ret) {
        static const sd_json_dispatch_field table[] = {
                { "state",        SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(SlotFields, state),   SD_JSON_MANDATORY },
                { "version",      SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(SlotFields, version), 0 },
                { "commit",       SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(SlotFields, commit),  0 },
                { "counter",      SD_JSON_VARIANT_UNSIGNED, sd_json_dispatch_uint64,       offsetof(SlotFields, counter), SD_JSON_MANDATORY },
                { "kernel",       SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(SlotFields, kernel),  0 },
                { "updated_usec", SD_JSON_VARIANT_UNSIGNED, sd_json_dispatch_uint64,       offsetof(SlotFields, updated), SD_JSON_MANDATORY },
                {}
        };
        const char *name = slot_to_string(slot), *bad = NULL;
        SlotFields f = {};
        int r;

        if (!v || !sd_json_variant_is_object(v))
                return log_error_errno(EBADMSG, "%s: Slot record has no object for slot %s, refusing it.", source, name);
        r = sd_json_dispatch_full(v, table, NULL, SD_JSON_ALLOW_EXTENSIONS, &f, &bad);
        if (r < 0)
                return log_error_errno(EBADMSG, "%s: Slot %s field '%s' is missing or of the wrong type, refusing the record.",
                                       source, name, strna(bad));

        ret->state = slot_state_from_string(f.state);
        if (ret->state < 0)
                return log_error_errno(EBADMSG, "%s: Slot %s has unknown state '%s', refusing the record.", source, name, f.state);
        if ((f.version && !word_is_valid(f.version)) || (f.kernel && !word_is_valid(f.kernel)))
                return log_error_errno(EBADMSG, "%s: Slot %s has a malformed version or kernel string.", source, name);
        if (f.commit && !slot_commit_is_valid(f.commit))
                return log_error_errno(EBADMSG, "%s: Slot %s commit '%s' is not 64 lowercase hex digits.", source, name, f.commit);
        /* A staged slot was written by us: we know what it holds, and commit relies on it.
         * (A good slot may be one adopted at first boot, knowing less.) */
        if (ret->state == SLOT_STATE_STAGED && (!f.version || !f.commit))
                return log_error_errno(EBADMSG, "%s: Slot %s is %s but names no version or commit.", source, name, f.state);
        if (f.counter > highest)
                return log_error_errno(EBADMSG, "%s: Slot %s has release counter %" PRIu64 " above the highest accepted, %" PRIu64 ".",
                                       source, name, f.counter, highest);

        if (free_and_strdup(&ret->version, f.version) < 0 ||
            free_and_strdup(&ret->commit, f.commit) < 0 ||
            free_and_strdup(&ret->kernel, f.kernel) < 0)
                return -ENOMEM;
        ret->counter = f.counter;
        ret->updated = f.updated;
        return 0;
}

int slot_table_from_json(const char *text, const char *source, SlotTable *ret) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        _cleanup_(slot_table_done) SlotTable t;
        sd_json_variant *e, *slots;
        int r;

        slot_table_init(&t);

        r = json_record_parse(text, source, "Slot record", SLOT_TABLE_FORMAT_VERSION, &v);
        if (r < 0)
                return r;

        e = sd_json_variant_by_key(v, "highest_counter");
        if (!e || !sd_json_variant_is_unsigned(e))
                return log_error_errno(EBADMSG, "%s: Slot record has no highest_counter, refusing it.", source);
        t.highest_counter = sd_json_variant_unsigned(e);

        slots = sd_json_variant_by_key(v, "slots");
        if (!slots || !sd_json_variant_is_object(slots))
                return log_error_errno(EBADMSG, "%s: Slot record has no 'slots' object, refusing it.", source);
        for (Slot s = 0; s < _SLOT_MAX; s++) {
                r = slot_status_from_json(sd_json_variant_by_key(slots, slot_to_string(s)), source, s,
                                          t.highest_counter, &t.slots[s]);
                if (r < 0)
                        return r;
        }

        *ret = t;
        slot_table_init(&t); /* ownership moved to *ret */
        return 0;
}

int slot_table_load(const char *path, SlotTable *ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        slot_table_init(ret);

        r = json_record_read(path, SLOT_TABLE_FILE_MAX, "Slot record", &text);
        if (r == -ENOENT || r == -EBADMSG)
                return r;
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", path);

        return slot_table_from_json(text, path, ret);
}

int slot_table_save(const SlotTable *t, const char *path) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = slot_table_to_json(t, &text);
        if (r < 0)
                return log_error_errno(r, "Failed to format slot record: %m");
        /* World-readable like transaction.json: status is for everyone, no secrets in it. */
        r = write_string_file_atomic(path, text, 0644);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        return 0;
}

static int refuse_transition(const SlotTable *t, Slot slot, SlotState to) {
        return log_error_errno(EINVAL, "Slot %s is %s, it cannot become %s.", slot_to_string(slot),
                               slot_state_to_string(t->slots[slot].state), slot_state_to_string(to));
}

int slot_mark_writing(SlotTable *t, Slot slot, Slot booted) {
        if (!slot_is_valid(slot) || !slot_is_valid(booted))
                return -EINVAL;
        /* The booted slot is never written: it is what we are running from. */
        if (slot == booted)
                return log_error_errno(EBUSY, "Refusing to write slot %s: it is the booted slot.", slot_to_string(slot));

        SlotStatus *s = &t->slots[slot];
        slot_status_clear(s);
        s->state = SLOT_STATE_WRITING;
        s->updated = now_usec(CLOCK_REALTIME);
        return 0;
}

int slot_mark_staged(SlotTable *t, Slot slot, const char *version, const char *commit, uint64_t counter,
                     const char *kernel) {
        _cleanup_free_ char *v = NULL, *c = NULL, *k = NULL;

        if (!slot_is_valid(slot))
                return -EINVAL;
        if (!word_is_valid(version) || !slot_commit_is_valid(commit) || (kernel && !word_is_valid(kernel)))
                return log_error_errno(EINVAL, "Refusing to stage slot %s: malformed version, commit or kernel.",
                                       slot_to_string(slot));
        if (t->slots[slot].state != SLOT_STATE_WRITING)
                return refuse_transition(t, slot, SLOT_STATE_STAGED);
        if (counter < t->highest_counter)
                return log_error_errno(ESTALE,
                                       "Refusing to stage slot %s: release counter %" PRIu64 " is lower than %" PRIu64 ", already accepted.",
                                       slot_to_string(slot), counter, t->highest_counter);

        v = strdup(version);
        c = strdup(commit);
        k = kernel ? strdup(kernel) : NULL;
        if (!v || !c || (kernel && !k))
                return -ENOMEM;

        SlotStatus *s = &t->slots[slot];
        slot_status_clear(s);
        s->version = TAKE_PTR(v);
        s->commit = TAKE_PTR(c);
        s->kernel = TAKE_PTR(k);
        s->counter = counter;
        s->state = SLOT_STATE_STAGED;
        s->updated = now_usec(CLOCK_REALTIME);
        t->highest_counter = counter;
        return 0;
}

int slot_table_raise_floor(SlotTable *t, uint64_t counter) {
        if (counter <= t->highest_counter)
                return 0;
        t->highest_counter = counter;
        return 1;
}

int slot_mark_good(SlotTable *t, Slot slot) {
        if (!slot_is_valid(slot))
                return -EINVAL;
        SlotStatus *s = &t->slots[slot];
        if (s->state != SLOT_STATE_STAGED && s->state != SLOT_STATE_GOOD)
                return refuse_transition(t, slot, SLOT_STATE_GOOD);
        s->state = SLOT_STATE_GOOD;
        s->updated = now_usec(CLOCK_REALTIME);
        return 0;
}

int slot_mark_bad(SlotTable *t, Slot slot) {
        if (!slot_is_valid(slot))
                return -EINVAL;
        SlotStatus *s = &t->slots[slot];
        if (s->state == SLOT_STATE_EMPTY)
                return refuse_transition(t, slot, SLOT_STATE_BAD);
        /* What was in it stays recorded: status shows which release failed. */
        s->state = SLOT_STATE_BAD;
        s->updated = now_usec(CLOCK_REALTIME);
        return 0;
}

int slot_adopt_booted(SlotTable *t, Slot booted, const char *version, const char *commit, uint64_t counter,
                      const char *kernel) {
        _cleanup_free_ char *v = NULL, *c = NULL, *k = NULL;

        if (!slot_is_valid(booted))
                return -EINVAL;
        if (t->slots[booted].state != SLOT_STATE_EMPTY)
                return 0;
        /* Whatever the booted OS knows about itself; what it does not know stays unset. */
        if ((version && !word_is_valid(version)) || (commit && !slot_commit_is_valid(commit)) ||
            (kernel && !word_is_valid(kernel)))
                return log_error_errno(EINVAL, "Refusing to record booted slot %s: malformed version, commit or kernel.",
                                       slot_to_string(booted));
        if (counter < t->highest_counter)
                return log_error_errno(ESTALE,
                                       "Booted slot %s has release counter %" PRIu64 ", lower than %" PRIu64 ", already accepted.",
                                       slot_to_string(booted), counter, t->highest_counter);

        if ((version && !(v = strdup(version))) || (commit && !(c = strdup(commit))) ||
            (kernel && !(k = strdup(kernel))))
                return -ENOMEM;

        SlotStatus *s = &t->slots[booted];
        slot_status_clear(s);
        s->version = TAKE_PTR(v);
        s->commit = TAKE_PTR(c);
        s->kernel = TAKE_PTR(k);
        s->counter = counter;
        s->state = SLOT_STATE_GOOD; /* proven by running */
        s->updated = now_usec(CLOCK_REALTIME);
        t->highest_counter = counter;
        return 0;
}

int slot_from_cmdline(const char *proc_cmdline, Slot *ret) {
        _cleanup_free_ char *root = NULL;
        int r;

        r = proc_cmdline_get_key(proc_cmdline, "root", &root);
        if (r < 0)
                return r;

        const char *label = startswith(root, "PARTLABEL=") ?: startswith(root, "/dev/disk/by-partlabel/");
        if (!label)
                return -ENOENT;
        for (Slot s = 0; s < _SLOT_MAX; s++) {
                const char *suffix = startswith(label, "root-");
                if (suffix && streq(suffix, slot_to_string(s))) {
                        *ret = s;
                        return 0;
                }
        }
        return -ENOENT;
}

const char *slot_partition_path(Slot slot) {
        switch (slot) {
        case SLOT_A:
                return "/dev/disk/by-partlabel/root-a";
        case SLOT_B:
                return "/dev/disk/by-partlabel/root-b";
        default:
                return NULL;
        }
}
