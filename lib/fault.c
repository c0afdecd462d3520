/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "fault.h"
#include "fileio.h"
#include "log.h"
#include "string-util.h"

void fault_power_cut(const char *point) {
        _cleanup_free_ char *want = NULL;

        if (read_file_limited(FAULT_POWER_CUT_FILE, 256, &want, NULL) < 0 || !streq(strstrip(want), point))
                return;
        if (unlink(FAULT_POWER_CUT_FILE) < 0 || fsync_directory_of(FAULT_POWER_CUT_FILE) < 0)
                return;
        log_warning("TEST: power cut at '%s' (%s).", point, FAULT_POWER_CUT_FILE);
        int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
                (void) write(fd, "o", 1);
                close(fd);
        }
        pause(); /* the machine is going away */
}
