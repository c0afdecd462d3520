/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "paths.h"
#include "string-util.h"
#include "switch-stop.h"

/* The unit types a switch stops that can hang on a process: services, and scopes
 * (login sessions that are not carried, and whatever else runs in a scope). */
static const char *const bound_types[][2] = {
        { "service", "Service" },
        { "scope", "Scope" },
};

static char *dropin_path(const char *root, const char *type) {
        return strprintf("%s" SYSTEMD_RUNTIME_UNIT_DIR "/%s.d/" SWITCH_STOP_DROPIN_NAME, strempty(root), type);
}

int switch_stop_bound_install(const char *root, usec_t timeout, const char *transaction_id) {
        int r;

        assert(timeout > 0 && timeout != USEC_INFINITY);
        for (size_t i = 0; i < ELEMENTSOF(bound_types); i++) {
                _cleanup_free_ char *path = dropin_path(root, bound_types[i][0]);
                _cleanup_free_ char *text = strprintf(
                        "# Written by updaterd for the switch of transaction %s: what it does not carry\n"
                        "# stops within this time or is killed, since the carried services wait frozen\n"
                        "# until the switch is done. Removed if the switch fails; gone with this boot.\n"
                        "[%s]\n"
                        "TimeoutStopSec=%" PRIu64 "ms\n"
                        "SendSIGKILL=yes\n",
                        strna(transaction_id), bound_types[i][1], timeout / USEC_PER_MSEC);
                if (!path || !text)
                        return log_oom();
                r = write_string_file_atomic_mkdir(path, text, 0644);
                if (r < 0)
                        return log_error_errno(r, "Failed to write %s: %m", path);
        }
        return 0;
}

int switch_stop_bound_remove(const char *root) {
        bool removed = false;

        for (size_t i = 0; i < ELEMENTSOF(bound_types); i++) {
                _cleanup_free_ char *path = dropin_path(root, bound_types[i][0]);
                if (!path)
                        return log_oom();
                if (unlink(path) >= 0)
                        removed = true;
                else if (errno != ENOENT)
                        log_warning_errno(errno, "Failed to remove %s: %m", path);
        }
        return removed;
}
