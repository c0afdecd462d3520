/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The decisions of check and stage, as pure functions of what is on disk and
 * what the server says, so they are tested without a machine to update. */

#include <stdbool.h>
#include <stdint.h>

#include "manifest.h"
#include "slot-status.h"
#include "transaction.h"

/* What the checks of a manifest are measured against: the release counter may
 * not go below any accepted before (anti-rollback across slots and reboots),
 * and the from-version is the booted one. */
void update_policy_init(ManifestPolicy *ret, const SlotTable *t, Slot booted, const char *os,
                        const char *channel, usec_t now);

typedef enum UpdateState {
        UPDATE_RUNNING,   /* the booted slot holds this release */
        UPDATE_STAGED,    /* the other slot holds it, staged or good */
        UPDATE_AVAILABLE, /* nothing holds it yet */
        _UPDATE_STATE_MAX,
        _UPDATE_STATE_INVALID = -EINVAL,
} UpdateState;

const char *update_state_to_string(UpdateState s);
UpdateState update_state_from_string(const char *s);
UpdateState update_state_of(const SlotTable *t, Slot booted, const Manifest *m);

/* Whether a stage of M into TARGET may pick up the transaction left on disk
 * (same operation, target and commit, still in progress), or starts anew. */
bool stage_can_resume(const Transaction *existing, const Manifest *m, Slot target);

/* Bytes a stage needs on /var: the delta from the booted commit when the
 * release has one, else the whole tree; plus room for unpacking. */
uint64_t stage_space_needed(const Manifest *m, const char *booted_commit);
