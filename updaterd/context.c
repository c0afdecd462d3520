/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <stdlib.h>

#include "context.h"
#include "fileio.h"
#include "log.h"
#include "proc-cmdline.h"
#include "slot-status.h"
#include "status.h"
#include "string-util.h"

int booted_slot_read(const char *root, Slot *ret) {
        _cleanup_free_ char *path = path_prefix(root, "/proc/cmdline"), *cmdline = NULL;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_file_limited(path, PROC_CMDLINE_MAX, &cmdline, NULL);
        if (r < 0)
                return r;
        return slot_from_cmdline(cmdline, ret);
}

int worker_context_load(WorkerContext *w, const UpdaterConfig *c) {
        int r;

        assert(w);
        assert(c);
        *w = (WorkerContext) {
                .config = c,
                .root = strempty(secure_getenv("DREAMLINK_ROOT")),
        };
        w->slots_path = state_path(w->root, c, SLOT_TABLE_FILE);
        w->txn_path = state_path(w->root, c, TRANSACTION_FILE);
        w->esp = path_prefix(w->root, ESP_PATH);
        if (!w->slots_path || !w->txn_path || !w->esp)
                return log_oom();

        r = booted_slot_read(w->root, &w->booted);
        if (r == -ENOENT)
                return log_error_errno(r, "The kernel command line names no dreamlink slot (root=PARTLABEL=root-a or root-b): "
                                       "this system was not installed as an A/B system.");
        if (r < 0)
                return log_error_errno(r, "Failed to read %s/proc/cmdline: %m", w->root);
        w->target = slot_other(w->booted);
        return 0;
}

void worker_context_done(WorkerContext *w) {
        free(w->slots_path);
        free(w->txn_path);
        free(w->esp);
}
