/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* What `updatectl status` shows, read from what is on disk: the slot table,
 * the transaction record and the last check; so the answer is the same after
 * a daemon restart or a power cut. */

#include <stdint.h>

#include "paths.h"
#include "updaterd-conf.h"

#define HISTORY_SHOWN 10

typedef struct BootedInfo {
        char *slot;     /* "a" or "b" */
        char *version;
        char *commit;
        char *kernel;
} BootedInfo;

void status_booted_done(BootedInfo *b);
/* From the kernel command line and the slot table (os-release and uname as fallbacks). */
int status_booted(const char *root, const UpdaterConfig *c, BootedInfo *ret);

typedef struct StatusJob {
        const char *operation;
        const char *step;
        uint64_t bytes, total;
        usec_t auto_commit_at;  /* AutoCommit=: the planned commit, 0 if none */
} StatusJob;

int status_describe(const char *root, const UpdaterConfig *c, const StatusJob *job, char **ret);

/* root + path, for every file the updater touches ("" or NULL root: the running system). */
char *path_prefix(const char *root, const char *path);

/* AutoCommit=: true when the last transaction staged a release into the
 * other slot, which is still staged, and nothing has tried to switch to it
 * since (a failed commit is not retried by itself). Its version in *ret_version. */
bool status_auto_commit_pending(const char *root, const UpdaterConfig *c, char **ret_version);
