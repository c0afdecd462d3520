/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The worker side of check and stage (see worker.h). stage_run() reads as the
 * update path, one named step after the other:
 *
 *   load context → fetch + verify manifest → plan (resume or new transaction)
 *   → check space → pull → write slot → install boot entry → mark staged
 *
 * Each step is recorded in the transaction record before the next begins;
 * the passive slot loses its boot entry before it is written and gets a new
 * one only after its content is verified and synced, so a crash at any point
 * leaves the booted system untouched and no half-written slot bootable. */

#include "updaterd-conf.h"
#include "worker.h"

int check_run(const UpdaterConfig *c, Reporter *r);
int stage_run(const UpdaterConfig *c, const char *version, Reporter *r);

/* The worker's entry point (manager.h: worker_main_t). */
int updater_worker_main(JobOperation op, const UpdaterConfig *c, const char *version, uint64_t flags, Reporter *r);
