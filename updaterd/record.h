/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The transaction record of the operation in progress (TRANSACTION_FILE) and
 * the history of finished ones (HISTORY_DIR, one file each, for status). */

#include "transaction.h"
#include "updaterd-conf.h"
#include "status.h"
#include "worker.h"

/* Moves t to step, writes it atomically to path and tells the reporter (may be NULL). */
int record_step(Transaction *t, const char *path, TransactionStep step, Reporter *r);
/* Writes t as it is now. */
int record_save(Transaction *t, const char *path);
/* Ends t with outcome (error says why, may be NULL), writes it and keeps a
 * copy in the history. */
int record_finish(Transaction *t, const char *path, TransactionOutcome outcome, const char *error, const char *root,
                  const UpdaterConfig *c);

/* A cancelled stage: the worker was stopped before it could say so. Ends the stage transaction ID
 * in the record, if it is still in progress there, as cancelled. Returns 1 if it did, 0 if there
 * was nothing to end. */
int record_stage_cancelled(const char *root, const UpdaterConfig *c, const char *id);
