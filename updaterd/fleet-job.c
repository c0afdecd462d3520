/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "context.h"
#include "fleet.h"
#include "fleet-job.h"
#include "fleet-turn.h"
#include "log.h"
#include "slot-status.h"
#include "status.h"
#include "string-util.h"
#include "transaction.h"

bool fleet_turn_pending(const char *root, const UpdaterConfig *c) {
        _cleanup_free_ char *path = state_path(root, c, FLEET_TURN_FILE);
        return path && access(path, F_OK) >= 0;
}

bool fleet_release_due(const char *root, const UpdaterConfig *c) {
        _cleanup_free_ char *slots_path = state_path(root, c, SLOT_TABLE_FILE),
                            *txn_path = state_path(root, c, TRANSACTION_FILE);
        _cleanup_(transaction_freep) Transaction *t = NULL;
        _cleanup_(slot_table_done) SlotTable slots;
        Slot booted;

        slot_table_init(&slots);
        if (!slots_path || !txn_path || booted_slot_read(root, &booted) < 0)
                return false;
        int r = transaction_load(txn_path, &t);
        if (r < 0 && r != -ENOENT)
                return false;
        /* A switch still open: its boot check has yet to bless a slot, or a commit waits or runs. */
        if (t && t->outcome == OUTCOME_IN_PROGRESS && t->operation != TRANSACTION_STAGE)
                return false;
        return slot_table_load(slots_path, &slots) >= 0 && slots.slots[booted].state == SLOT_STATE_GOOD;
}

int fleet_release_run(const UpdaterConfig *c, Reporter *rep) {
        _cleanup_(fleet_done) Fleet f = {};
        _cleanup_free_ char *why = NULL;
        const char *root = strempty(secure_getenv("DREAMLINK_ROOT"));
        _cleanup_free_ char *turn = state_path(root, c, FLEET_TURN_FILE);
        int r;

        if (!turn)
                return log_oom();
        if (!fleet_release_due(root, c))
                return log_error_errno(EAGAIN, "Not giving back the fleet slot yet: no slot has been blessed healthy since the switch.");
        r = fleet_init(&f, c, root);
        if (r < 0)
                return r;
        r = fleet_give_back(&f, turn, &why);
        if (r < 0)
                return r == -ENOMEM ? log_oom() : r;
        if (r == 0)
                return log_error_errno(EAGAIN, "Could not give back the fleet slot yet: %s", why);
        reporter_done(rep, 0, "The fleet slot is given back.");
        return 0;
}
