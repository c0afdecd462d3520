/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Restoring a service through its own unit: handoff_restore() starts the unit, whose
 * restore drop-in runs handoff_restore_exec() inside it; a unit that cannot be restored is
 * started fresh. */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"
#include "fileio.h"
#include "fs-util.h"
#include "handoff-internal.h"
#include "log.h"
#include "string-util.h"
#include "time-util.h"

/* A restore that failed (error): why, from criu's log; the checkpoint's connections closed;
 * the unit started fresh. 1, or <0 if it could not be started either. */
static int restore_failed(Handoff *h, const char *unit, const char *log, const Checkpoint *c, int error,
                          RestoreStats *ret) {
        _cleanup_(unit_info_done) UnitInfo info = {};
        _cleanup_free_ char *tail = NULL, *criu_error = NULL, *reason = NULL;
        int r;

        assert(h);
        assert(c);
        assert(ret);

        if (criu_log_reason(log, 5, &tail, &criu_error) >= 0 && criu_error)
                (void) criu_explain(criu_error, &reason);
        log_unit_error_errno(unit, error, "Failed to restore %s, starting it fresh: %s%s%s", unit,
                             reason ?: "see the unit's journal", tail ? "\nLast lines of the restore log:\n" : "", strempty(tail));
        /* Packets of the checkpointed connections are dropped until the lock
         * goes: lift it so the peers see them closed, not hanging. */
        netlock_remove(c);
        umount_criu_leftovers();
        r = ensure_running(h, unit, /* restart= */ false);
        ret->fresh = true;
        if (r >= 0 && handoff_unit_info(h, unit, &info) >= 0)
                ret->main_pid = info.main_pid;
        return r < 0 ? r : 1;
}

int handoff_restore(Handoff *h, const char *unit, const char *images_root, RestoreStats *ret) {
        _cleanup_(unit_info_done) UnitInfo info = {};
        _cleanup_free_ char *dir = NULL, *record = NULL, *dropin = NULL, *log = NULL;
        _cleanup_(checkpoint_done) Checkpoint c = {};
        int r;

        assert(h);
        assert(unit);
        assert(ret);

        *ret = (RestoreStats) {};
        if (asprintf(&dir, "%s/%s", images_root, unit) < 0 || asprintf(&record, "%s/" CHECKPOINT_STATE_FILE, dir) < 0 ||
            asprintf(&log, "%s/restore.log", dir) < 0 || restore_dropin_path(h->root, unit, &dropin) < 0)
                return log_oom();

        r = checkpoint_load(record, &c);
        if (r < 0 || c.result == CHECKPOINT_FRESH || !streq(c.unit, unit)) {
                /* Nothing to restore: the unit starts (or restarts) as on any boot. */
                if (r >= 0)
                        log_unit_info(unit, "Restarting %s fresh: %s", unit, strna(c.reason));
                (void) restore_dropin_remove(h->root, unit);
                r = ensure_running(h, unit, /* restart= */ true);
                ret->fresh = true;
                if (r >= 0 && handoff_unit_info(h, unit, &info) >= 0)
                        ret->main_pid = info.main_pid;
                if (r >= 0)
                        (void) rm_rf(dir);
                return r < 0 ? r : 1;
        }
        ret->dumped_at_usec = c.dumped_at_usec;

        /* A new boot has an empty /run: the drop-in comes from the record. */
        if (access(dropin, F_OK) < 0) {
                r = write_restore_dropin(h, unit, dir, c.syslog_identifier, /* reload= */ true);
                if (r < 0)
                        return restore_failed(h, unit, log, &c, r, ret);
        }

        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        (void) systemctl("reset-failed", unit);
        r = systemctl("start", unit);
        ret->restore_usec = now_usec(CLOCK_MONOTONIC) - t0;
        ret->restored_at_usec = now_usec(CLOCK_REALTIME);
        if (r >= 0) {
                r = handoff_unit_info(h, unit, &info);
                if (r >= 0 && (!streq(info.active_state, "active") || info.main_pid <= 0))
                        r = -ESRCH;
        }

        /* The restore is over either way: the unit is itself again. After a
         * success systemd hears of it with the next batch's reload (the
         * units restored after this one are still frozen); after a failure
         * at once, before the fresh start. */
        (void) restore_dropin_remove(h->root, unit);
        h->reload_pending = true;
        if (r < 0) {
                (void) handoff_flush(h);
                return restore_failed(h, unit, log, &c, r, ret);
        }
        ret->main_pid = info.main_pid;
        log_unit_info(unit, "Restored %s (main PID " PID_FMT ") in %.2f s.", unit, info.main_pid,
                      ret->restore_usec / 1e6);
        (void) rm_rf(dir);
        return 0;
}

static int write_pidfile(const char *path, pid_t pid) {
        char buf[32];
        snprintf(buf, sizeof(buf), PID_FMT "\n", pid);
        return write_string_file_atomic(path, buf, 0644);
}

/* The PID file systemd reads the restored main process from: none stale, its directory there. */
static int prepare_pidfile(const char *unit, const char *pidfile) {
        if (unlink(pidfile) < 0 && errno != ENOENT)
                return log_unit_error_errno(unit, errno, "Failed to remove the stale %s: %m", pidfile);
        _cleanup_free_ char *piddir = strdup(pidfile);
        if (!piddir)
                return log_oom();
        *strrchr(piddir, '/') = 0;
        _cleanup_close_ int piddir_fd = mkdir_p_verified(AT_FDCWD, piddir, 0755);
        if (piddir_fd < 0)
                return log_unit_error_errno(unit, piddir_fd, "Failed to create %s: %m", piddir);
        return 0;
}

/* A quadlet unit's container, imported by podman inside the unit: conmon is its main process. The
 * ports held since the dump are let go once it listens again. */
static int restore_container_exec(const Checkpoint *c, const char *images_dir, const char *pidfile) {
        pid_t conmon;
        int r;

        fault_power_cut("restoring");
        r = prepare_pidfile(c->unit, pidfile);
        if (r < 0)
                return r;
        r = conntrack_restore(c->unit, images_dir);
        if (r < 0)
                return r;
        r = container_restore(c, images_dir, &conmon);
        if (r < 0)
                return r;
        r = write_pidfile(pidfile, conmon);
        if (r < 0)
                return log_unit_error_errno(c->unit, r, "Failed to write %s: %m", pidfile);
        netlock_lift(c);
        return 0;
}

int handoff_restore_exec(const char *unit, const char *images_dir, const char *pidfile) {
        _cleanup_(checkpoint_done) Checkpoint c = {};
        usec_t t_start = now_usec(CLOCK_MONOTONIC);
        pid_t pid;
        int r;

        r = join_machine_mount_namespace(unit);
        if (r < 0)
                return r;
        r = load_dumped_record(images_dir, unit, &c);
        if (r < 0)
                return r;
        r = apparmor_load_saved(unit, images_dir);
        if (r < 0)
                return r;
        if (c.container_id)
                return restore_container_exec(&c, images_dir, pidfile);
        /* The disk reads the memory, and systemd mounts what is behind the automounts the
         * service holds files below (restored early in the boot, before anything there used
         * /efi, say), while we wait for the addresses and set the rest up. The machine's late
         * mounts it holds nothing below are bound into its namespace at the end of criu's
         * restore, from what we open here. */
        images_readahead_start(unit, images_dir);
        _cleanup_(late_mounts_done) LateMounts late = {};
        late_mounts_open(&late, c.rebind_mounts);
        _cleanup_(automounts_trigger_finish) AutomountsTrigger automounts = {};
        automounts_trigger_start(&automounts, unit, c.automounts);
        /* The unit starts as early as the boot allows, not after network-online.target
         * (handoff-generator.c): its sockets need their addresses, nothing more. */
        usec_t t_addresses = now_usec(CLOCK_MONOTONIC);
        (void) addresses_wait(unit, c.addresses, ADDRESSES_TIMEOUT);
        t_addresses = now_usec(CLOCK_MONOTONIC) - t_addresses;
        r = recreate_tmp_dirs(AT_FDCWD, unit, c.tmp_dirs);
        if (r < 0)
                return r;
        create_runtime_mount_points(AT_FDCWD, unit, c.runtime_mounts);
        usec_t t_automounts = now_usec(CLOCK_MONOTONIC);
        automounts_trigger_finish(&automounts);
        t_automounts = now_usec(CLOCK_MONOTONIC) - t_automounts;
        r = run_dirs_recreate(AT_FDCWD, unit, c.run_dirs);
        if (r < 0)
                return r;
        fault_power_cut("restoring");
        r = prepare_pidfile(unit, pidfile);
        if (r < 0)
                return r;

        _cleanup_strv_free_ char **written = NULL;
        r = run_files_restore(AT_FDCWD, unit, images_dir, c.run_files, &written);
        if (r < 0)
                return r;
        usec_t t_criu = now_usec(CLOCK_MONOTONIC);
        r = restore_images(&c, &late, images_dir, &pid);
        if (r < 0) {
                run_files_remove(AT_FDCWD, unit, written);
                return r;
        }
        t_criu = now_usec(CLOCK_MONOTONIC) - t_criu;
        r = write_pidfile(pidfile, pid);
        if (r < 0)
                return log_unit_error_errno(unit, r, "Failed to write %s: %m", pidfile);
        /* Where an early restore's time went, for whoever tunes the boot (make bench quotes it):
         * its setup before criu is mostly waiting, for the addresses, then for what the
         * automounts still had to mount. */
        log_unit_info(unit, "Restored %s as PID " PID_FMT ": criu %.2f s, after %.2f s of setup (waiting %.2f s "
                      "for the addresses, %.2f s more for the automounts).", unit, pid, t_criu / 1e6,
                      (now_usec(CLOCK_MONOTONIC) - t_start - t_criu) / 1e6, t_addresses / 1e6, t_automounts / 1e6);
        return 0;
}
