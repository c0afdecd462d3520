/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "policy.h"
#include "string-util.h"

void update_policy_init(ManifestPolicy *ret, const SlotTable *t, Slot booted, const char *os,
                        const char *channel, usec_t now) {
        const SlotStatus *s = &t->slots[booted];

        *ret = (ManifestPolicy) {
                .now = now,
                .os = os,
                .channel = channel,
                .min_counter = MAX(t->highest_counter, s->counter),
                .booted_version = s->version,
        };
}

static const char * const update_state_table[_UPDATE_STATE_MAX] = {
        [UPDATE_RUNNING] = "running",
        [UPDATE_STAGED] = "staged",
        [UPDATE_AVAILABLE] = "available",
};
DEFINE_STRING_TABLE_LOOKUP(update_state, UpdateState, update_state_table, _UPDATE_STATE_INVALID);

UpdateState update_state_of(const SlotTable *t, Slot booted, const Manifest *m) {
        const SlotStatus *b = &t->slots[booted], *o = &t->slots[slot_other(booted)];

        if (streq_ptr(b->commit, m->commit))
                return UPDATE_RUNNING;
        if (streq_ptr(o->commit, m->commit) && IN_SET(o->state, SLOT_STATE_STAGED, SLOT_STATE_GOOD))
                return UPDATE_STAGED;
        return UPDATE_AVAILABLE;
}

bool stage_can_resume(const Transaction *existing, const Manifest *m, Slot target) {
        return existing && existing->operation == TRANSACTION_STAGE && existing->outcome == OUTCOME_IN_PROGRESS &&
               existing->to_slot == target && streq_ptr(existing->to_commit, m->commit);
}

uint64_t stage_space_needed(const Manifest *m, const char *booted_commit) {
        uint64_t download = m->tree_size;

        for (size_t i = 0; i < m->n_deltas; i++)
                if (streq_ptr(m->deltas[i].from_commit, booted_commit))
                        download = m->deltas[i].size;
        /* The download, and its objects uncompressed in the bare repository, up to three times its
         * size (a delta's objects are mostly shared with the booted commit). The sizes are the
         * server's: saturate rather than wrap around to a small figure that would pass. */
        uint64_t needed;
        if (__builtin_mul_overflow(download, 4, &needed) || __builtin_add_overflow(needed, 64ULL << 20, &needed))
                return UINT64_MAX;
        return needed;
}
