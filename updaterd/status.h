/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What `updatectl status` shows, read from what is on disk: the slot table,
 * the transaction record and the last check; so the answer is the same after
 * a daemon restart or a power cut. */

#include <stdint.h>

#include "updaterd-conf.h"

#define LAST_CHECK_FILE "last-check.json"
#define TRANSACTION_FILE "transaction.json"
#define HISTORY_DIR "history" /* finished transactions, one file each */
#define HISTORY_SHOWN 10
#define SLOT_TABLE_FILE "slots.json"
#define LOCAL_REPO "repo" /* bare: the trees of both slots */
#define ESP_PATH "/efi"

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
} StatusJob;

int status_describe(const char *root, const UpdaterConfig *c, const StatusJob *job, char **ret);

/* root + path, for every file the updater touches ("" or NULL root: the running system). */
char *path_prefix(const char *root, const char *path);
char *state_path(const char *root, const UpdaterConfig *c, const char *name);
