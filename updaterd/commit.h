/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The worker side of commit and rollback (see worker.h): switch the running
 * system to the other slot, reading as the switch path:
 *
 *   check slots → a fleet slot ([Fleet]) → new transaction → merge /etc into the target → load its
 *   kernel (kexec_file_load) → checkpoint the handed-off services → switch
 *
 * Until the switch nothing is lost: any failure unloads the kernel, brings
 * the checkpointed services back where they were and records why. The new
 * boot finishes the transaction (boot-check.h). */

#include <stdbool.h>

#include "transaction.h"
#include "updater-bus.h" /* CommitFlags */
#include "updaterd-conf.h"
#include "worker.h"

/* Not a bus flag (Commit() refuses it): the boot check's way back from a slot that failed its
 * health check, which never waits for a fleet slot. The switch there holds one already, if the
 * fleet has a strategy; the slot is given back once the old slot is blessed again. */
#define COMMIT_FALLBACK ((CommitFlags) (1U << 30))
/* Nor this: AutoCommit='s commit, which does not switch outside AutoCommitWindow=. A wait for a
 * fleet slot that outlasts the window ends with -ETIME; the commit is tried in the next one. */
#define COMMIT_AUTO ((CommitFlags) (1U << 29))

/* operation: TRANSACTION_COMMIT (to the staged slot) or TRANSACTION_ROLLBACK
 * (to the other slot, which must be good). On success the machine is going
 * down; the reporter has heard DONE. */
int commit_run(const UpdaterConfig *c, TransactionOperation operation, CommitFlags flags, Reporter *r);

/* The dry run of commit_run(): reports as RESULT the plan (JSON: the target, and per opted-in
 * service "carried", "fresh" or "aborts" with the reason, as a dry-run dump finds it now; the
 * login sessions that go along), changing nothing. */
int commit_plan_run(const UpdaterConfig *c, TransactionOperation operation, CommitFlags flags, Reporter *r);
