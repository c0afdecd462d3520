/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The on-disk record of an update in progress: what is being done (stage,
 * commit, rollback), between which slots, and the last step that completed.
 * Every step is written atomically before the next begins, so that after a
 * crash or power cut the record says what to resume or undo. JSON, versioned;
 * a record that is corrupt or of an unknown version is refused, never guessed at. */

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"
#include "slot.h"
#include "time-util.h"

#define TRANSACTION_FORMAT_VERSION 1
#define TRANSACTION_FILE_MAX (64U * 1024U)
#define TRANSACTION_ID_LENGTH 32 /* hex digits of a random 128-bit id */
/* Also the name of the transaction's checkpoint set (HANDOFF_STATE_DIR/ID). */
bool transaction_id_is_valid(const char *s);

typedef enum TransactionOperation {
        TRANSACTION_STAGE,
        TRANSACTION_COMMIT,
        TRANSACTION_ROLLBACK,
        _TRANSACTION_OPERATION_MAX,
        _TRANSACTION_OPERATION_INVALID = -EINVAL,
} TransactionOperation;

/* Steps in the order an operation passes them; each names what is done. */
typedef enum TransactionStep {
        STEP_STARTED,
        STEP_MANIFEST_VERIFIED,
        STEP_PULLED,
        STEP_SLOT_WRITTEN,
        STEP_STAGED,
        STEP_KERNEL_LOADED,
        STEP_SERVICES_DUMPED,
        STEP_SWITCHING,
        STEP_BOOTED,
        STEP_SERVICES_RESTORED,
        STEP_HEALTHY,
        STEP_DONE,
        _TRANSACTION_STEP_MAX,
        _TRANSACTION_STEP_INVALID = -EINVAL,
} TransactionStep;

typedef enum TransactionOutcome {
        OUTCOME_IN_PROGRESS,
        OUTCOME_SUCCEEDED,
        OUTCOME_FAILED,
        OUTCOME_CANCELLED,
        OUTCOME_ROLLED_BACK,
        _TRANSACTION_OUTCOME_MAX,
        _TRANSACTION_OUTCOME_INVALID = -EINVAL,
} TransactionOutcome;

typedef struct Transaction {
        char id[TRANSACTION_ID_LENGTH + 1];
        TransactionOperation operation;
        TransactionStep step;
        TransactionOutcome outcome;
        Slot from_slot;
        Slot to_slot;
        char *from_version;
        char *to_version;
        char *to_commit;    /* ostree checksum of the target tree */
        char *boot_id;      /* of the boot that last wrote the record */
        char *error;        /* why it failed, for status and the journal */
        char **services;    /* handed-off services and what became of each: UNIT, RESULT, UNIT, RESULT…
                             * (RESULT: "checkpointed", "fresh", "restored", "restarted"; login sessions also "lost") */
        usec_t started;     /* CLOCK_REALTIME */
        usec_t updated;
} Transaction;

const char *transaction_operation_to_string(TransactionOperation o);
TransactionOperation transaction_operation_from_string(const char *s);
const char *transaction_step_to_string(TransactionStep s);
TransactionStep transaction_step_from_string(const char *s);
const char *transaction_outcome_to_string(TransactionOutcome o);
TransactionOutcome transaction_outcome_from_string(const char *s);

int transaction_new(TransactionOperation operation, Slot from, Slot to, Transaction **ret);
Transaction *transaction_free(Transaction *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Transaction *, transaction_free);

/* Moves to a later step (never back) and stamps the time; -EINVAL otherwise. */
int transaction_set_step(Transaction *t, TransactionStep step);
int transaction_finish(Transaction *t, TransactionOutcome outcome, const char *error);

/* Records (or updates) what became of a handed-off service. */
int transaction_set_service(Transaction *t, const char *unit, const char *result);
const char *transaction_get_service(const Transaction *t, const char *unit);
int transaction_to_json(const Transaction *t, char **ret);
/* Logs what is wrong (naming source) and returns -EBADMSG for a corrupt
 * record, -EPROTONOSUPPORT for an unknown format version. */
int transaction_from_json(const char *text, const char *source, Transaction **ret);

int transaction_save(Transaction *t, const char *path);
/* -ENOENT when there is no record; see transaction_from_json() for the rest. */
int transaction_load(const char *path, Transaction **ret);
