/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "fileio.h"
#include "log.h"
#include "record.h"
#include "status.h"
#include "string-util.h"

int record_save(Transaction *t, const char *path) {
        int r = transaction_save(t, path);
        if (r < 0)
                return log_error_errno(r, "Failed to write the transaction record %s: %m", path);
        return 0;
}

int record_step(Transaction *t, const char *path, TransactionStep step, Reporter *r) {
        int q = transaction_set_step(t, step);
        if (q >= 0)
                q = transaction_save(t, path);
        if (q < 0)
                return log_error_errno(q, "Failed to record step %s in %s: %m", transaction_step_to_string(step), path);
        if (r)
                reporter_step(r, transaction_step_to_string(step));
        return 0;
}

static void record_archive(const Transaction *t, const char *root, const UpdaterConfig *c) {
        _cleanup_free_ char *dir = state_path(root, c, HISTORY_DIR), *path = NULL, *json = NULL;

        if (!dir || mkdir_p(dir, 0755) < 0 || asprintf(&path, "%s/%016" PRIx64 "-%s.json", dir, t->started, t->id) < 0 ||
            transaction_to_json(t, &json) < 0 || write_string_file_atomic(path, json, 0644) < 0)
                log_warning("Failed to keep transaction %s in the history.", t->id);
}

int record_finish(Transaction *t, const char *path, TransactionOutcome outcome, const char *error, const char *root,
                  const UpdaterConfig *c) {
        int r = transaction_finish(t, outcome, error);
        if (r >= 0)
                r = transaction_save(t, path);
        if (r < 0)
                return log_error_errno(r, "Failed to record the end of transaction %s: %m", t->id);
        record_archive(t, root, c);
        return 0;
}

int record_stage_cancelled(const char *root, const UpdaterConfig *c, const char *id) {
        _cleanup_free_ char *path = state_path(root, c, TRANSACTION_FILE);
        _cleanup_(transaction_freep) Transaction *t = NULL;
        int r;

        if (!path)
                return log_oom();
        r = transaction_load(path, &t);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r; /* logged */
        if (!streq_ptr(t->id, id) || t->operation != TRANSACTION_STAGE || t->outcome != OUTCOME_IN_PROGRESS)
                return 0;
        r = record_finish(t, path, OUTCOME_CANCELLED, "cancelled; what was downloaded is kept for the next attempt", root, c);
        return r < 0 ? r : 1;
}
