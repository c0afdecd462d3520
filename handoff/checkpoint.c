/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The checkpoint record beside the images (CHECKPOINT_STATE_FILE), and the restore
 * drop-in that turns the unit's next start into a restore: written before the dump,
 * recognised when it is the current one, and systemd told in one reload per batch. Their
 * texts are dropin.c's. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"
#include "string-util.h"

int write_record(const char *dir, const Checkpoint *c) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (asprintf(&path, "%s/" CHECKPOINT_STATE_FILE, dir) < 0)
                return log_oom();
        r = checkpoint_to_text(c, &text);
        if (r < 0)
                return log_unit_error_errno(c->unit, r, "Failed to format the checkpoint record: %m");
        r = write_string_file_atomic(path, text, 0600);
        if (r < 0)
                return log_unit_error_errno(c->unit, r, "Failed to write %s: %m", path);
        return 0;
}

int load_dumped_record(const char *images_dir, const char *unit, Checkpoint *ret) {
        _cleanup_free_ char *record = NULL;
        int r;

        if (asprintf(&record, "%s/" CHECKPOINT_STATE_FILE, images_dir) < 0)
                return log_oom();
        r = checkpoint_load(record, ret);
        if (r < 0)
                return r;
        if ((unit && !streq(ret->unit, unit)) || ret->result != CHECKPOINT_DUMPED) {
                checkpoint_done(ret);
                return log_unit_error_errno(unit, EINVAL, "%s holds no checkpoint of %s, refusing.", images_dir,
                                            unit ?: "a session");
        }
        return 0;
}

static char *pidfile_of(const char *unit) {
        char *p;
        return asprintf(&p, HANDOFF_RUN_DIR "/%s.pid", unit) < 0 ? NULL : p;
}

int write_restore_dropin(Handoff *h, const char *unit, const char *dir, const char *ident, bool reload) {
        _cleanup_free_ char *pidfile = pidfile_of(unit);
        if (!pidfile)
                return log_oom();
        RestoreDropin d = {
                .unit = unit,
                .helper = h->helper,
                .images_dir = dir,
                .pidfile = pidfile,
                .syslog_identifier = ident,
        };
        int r = restore_dropin_write(h->root, &d);
        if (r < 0)
                return r;
        if (!reload) {
                h->reload_pending = true;
                return 0;
        }
        h->reload_pending = false;
        return daemon_reload();
}

/* Whether the unit's drop-in is the one for this dump (handoff_prepare()
 * wrote it and reloaded), not one left by an earlier, interrupted handoff. */
bool dropin_is_current(Handoff *h, const char *unit, const char *dir, const char *ident) {
        _cleanup_free_ char *pidfile = pidfile_of(unit), *path = NULL, *want = NULL, *have = NULL;
        if (!pidfile || restore_dropin_path(h->root, unit, &path) < 0)
                return false;
        RestoreDropin d = {
                .unit = unit,
                .helper = h->helper,
                .images_dir = dir,
                .pidfile = pidfile,
                .syslog_identifier = ident,
        };
        return restore_dropin_text(&d, &want) >= 0 && read_file_limited(path, 65536, &have, NULL) >= 0 &&
               streq(want, have);
}

int handoff_flush(Handoff *h) {
        if (!h->reload_pending)
                return 0;
        h->reload_pending = false;
        return daemon_reload();
}

int handoff_prepare(Handoff *h, HandoffUnit * const *units, const char *images_root) {
        bool probed = false;

        for (HandoffUnit * const *u = units; u && *u; u++) {
                _cleanup_(unit_info_done) UnitInfo info = {};
                _cleanup_free_ char *dir = NULL;
                if (handoff_unit_info(h, (*u)->unit, &info) < 0 || !streq(info.active_state, "active") ||
                    info.main_pid <= 0)
                        continue; /* handoff_dump() says why */
                /* criu's first run in a boot probes the kernel (seconds under emulation) before
                 * it freezes anything, all the same inside the first dump's time: done here, once
                 * for the set, while the services still run. Cached for the boot after that. */
                if (!probed) {
                        usec_t t;
                        int k = criu_probe_kernel(&t, NULL);
                        if (k < 0)
                                log_debug_errno(k, "criu could not probe the kernel before the dumps, the first one will: %m");
                        else
                                log_debug("criu probed the kernel in %.2f s, before the dumps.", t / 1e6);
                        probed = true;
                }
                if (asprintf(&dir, "%s/%s", images_root, (*u)->unit) < 0)
                        return log_oom();
                (void) write_restore_dropin(h, (*u)->unit, dir, info.syslog_identifier, /* reload= */ false);
        }
        return handoff_flush(h);
}
