/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What every job of the worker (check, stage, commit, rollback) and the boot
 * check start from: the configuration, where the state is, which slot runs
 * and which one is the other. One loader, so that the test root, the paths
 * and the booted slot are found the same way everywhere. */

#include "slot.h"
#include "updaterd-conf.h"

typedef struct WorkerContext {
        const UpdaterConfig *config;
        const char *root;       /* $DREAMLINK_ROOT: the tests' machine under a directory; "" on a machine */
        char *slots_path;
        char *txn_path;
        char *esp;
        Slot booted;            /* from the kernel command line (root=PARTLABEL=root-X) */
        Slot target;            /* the other slot */
} WorkerContext;

/* Logs what is wrong (a system not installed as A/B, say). */
int worker_context_load(WorkerContext *w, const UpdaterConfig *c);
void worker_context_done(WorkerContext *w);

/* The slot root/proc/cmdline boots; -ENOENT when it names neither. Does not log. */
int booted_slot_read(const char *root, Slot *ret);
