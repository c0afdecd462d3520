/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The kernel command line: root= (which slot is booted) and the handoff's
 * words, which the boot a switch went into reads. */
#include <string.h>

#include "fuzz.h"
#include "handoff-cmdline.h"
#include "handoff-config.h"
#include "macro.h"
#include "proc-cmdline.h"
#include "slot-status.h"
#include "string-util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *cmdline = fuzz_strndup(data, size), *root = NULL, *formatted = NULL;
        _cleanup_(handoff_cmdline_done) HandoffCmdline c = {}, again = {};
        Slot slot;

        if (proc_cmdline_get_key(cmdline, "root", &root) >= 0)
                /* The quotes are the kernel's syntax, never part of a value. */
                fuzz_assert(!strchr(root, '"'));
        if (slot_from_cmdline(cmdline, &slot) >= 0)
                fuzz_assert(slot >= 0 && slot < _SLOT_MAX);

        if (handoff_cmdline_parse(cmdline, &c) < 0)
                return 0;
        STRV_FOREACH(u, c.units)
                fuzz_assert(unit_name_is_service(*u));
        /* What was read is what a commit writes: formatted, it reads back the same. */
        fuzz_assert(handoff_cmdline_format(&c, &formatted) >= 0);
        fuzz_assert(handoff_cmdline_parse(formatted, &again) >= 0);
        fuzz_assert(streq(again.set_id, c.set_id) && again.pid_floor == c.pid_floor);
        fuzz_assert(strv_length(again.units) == strv_length(c.units) && !again.rejected);
        return 0;
}
