/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <criu/criu.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-login.h>

#include "fault.h"
#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"
#include "process-util.h"
#include "string-util.h"
#include "time-util.h"
#include "unix-diag.h"

#define JOURNAL_STDOUT_SOCKET "/run/systemd/journal/stdout"
#define CRIU_LOG_LEVEL 4

extern char **environ;

int handoff_try_dump(Handoff *h, const HandoffUnit *u, char **ret_reason) {
        _cleanup_(unit_info_done) UnitInfo info = {};
        _cleanup_strv_free_ char **inodes = NULL, **nulls = NULL;
        _cleanup_free_ char *reason = NULL, *log = NULL;
        char dir[] = HANDOFF_STATE_DIR "/.dry-run.XXXXXX";
        _cleanup_close_ int fd = -EBADF;
        int r;

        *ret_reason = NULL;
        r = handoff_unit_info(h, u->unit, &info);
        if (r < 0)
                return asprintf(ret_reason, "cannot read its state") < 0 ? -ENOMEM : r;
        r = handoff_precheck(h, u->unit, &info, &reason);
        if (r < 0)
                return r;
        if (reason) {
                *ret_reason = TAKE_PTR(reason);
                return -EBUSY;
        }
        r = journal_stream_inodes(info.control_group, &inodes);
        if (r >= 0 && has_own_mount_namespace(info.main_pid))
                r = files_matching(info.control_group, is_dev_null, &nulls);
        if (r < 0)
                return asprintf(ret_reason, "cannot list its sockets and files: %s", strerror(-r)) < 0 ? -ENOMEM : r;

        r = mkdir_p(HANDOFF_STATE_DIR, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", HANDOFF_STATE_DIR);
        if (!mkdtemp(dir))
                return log_error_errno(errno, "Failed to create a directory in %s: %m", HANDOFF_STATE_DIR);
        fd = open_images_dir(dir);
        r = fd < 0 ? fd : criu_dump_to(u, info.main_pid, fd, inodes, nulls, DUMP_DRY_RUN, NULL);
        if (r < 0 && asprintf(&log, "%s/dump.log", dir) >= 0)
                criu_failure_reason(log, ret_reason);
        (void) rm_rf(dir);
        return r;
}

#define PRE_DUMP_DIR "pre"

/* PreDump=yes: the memory first, while the tree keeps running, so that the final dump, with
 * the tree stopped, writes only what changed since. Failing is no reason not to dump: the
 * final dump then writes everything (kernels without soft-dirty tracking, say). */
static int pre_dump(const HandoffUnit *u, pid_t pid, const char *dir, Checkpoint *c) {
        _cleanup_free_ char *pre = NULL, *log = NULL, *reason = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (asprintf(&pre, "%s/" PRE_DUMP_DIR, dir) < 0 || asprintf(&log, "%s/dump.log", pre) < 0)
                return log_oom();
        (void) rm_rf(pre);
        if (mkdir(pre, 0700) < 0)
                return log_unit_warning_errno(u->unit, errno, "Failed to create %s, dumping %s without a pre-dump: %m",
                                              pre, u->unit);
        fd = open_images_dir(pre);
        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        r = fd < 0 ? fd : criu_dump_to(u, pid, fd, c->journal_inodes, NULL, DUMP_PRE, NULL);
        c->pre_dump_usec = now_usec(CLOCK_MONOTONIC) - t0;
        if (r < 0) {
                criu_failure_reason(log, &reason);
                log_unit_warning(u->unit, "Pre-dump of %s failed, dumping it whole: %s", u->unit, strna(reason));
                (void) rm_rf(pre);
                c->pre_dump_usec = 0;
                return r;
        }
        c->pre_dump_bytes = directory_size(pre);
        log_unit_debug(u->unit, "Pre-dumped %s in %.2f s, %.1f MiB.", u->unit, c->pre_dump_usec / 1e6,
                       c->pre_dump_bytes / 1048576.0);
        return 0;
}

/* The dump proper, of the tree rooted at pid into dir, and what goes with it into c: its
 * times, the network lock criu left (saved for a new boot), the size of the synced images. */
static int dump_into(const HandoffUnit *u, pid_t pid, const char *dir, char * const *nulls, Checkpoint *c) {
        _cleanup_strv_free_ char **before = NULL, **after = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        (void) nft_criu_tables(&before);
        fd = open_images_dir(dir);
        if (fd < 0)
                return fd;
        bool parent = u->pre_dump && pre_dump(u, pid, dir, c) >= 0;
        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        r = criu_dump_to(u, pid, fd, c->journal_inodes, nulls, DUMP_FINAL, parent ? PRE_DUMP_DIR : NULL);
        c->dump_usec = now_usec(CLOCK_MONOTONIC) - t0;
        c->dumped_at_usec = now_usec(CLOCK_REALTIME);
        if (r < 0)
                return r;

        if (nft_criu_tables(&after) >= 0)
                STRV_FOREACH(t, after)
                        if (!strv_contains(before, *t)) {
                                c->lock_table = strdup(*t);
                                break;
                        }
        if (c->lock_table) {
                r = save_lock_table(dir, c->lock_table);
                if (r < 0)
                        log_unit_warning_errno(u->unit, r, "Failed to save the network lock %s of %s, its connections "
                                               "may be reset across a reboot: %m", c->lock_table, u->unit);
        }
        if (syncfs(fd) < 0)
                log_unit_warning_errno(u->unit, errno, "Failed to sync the images of %s: %m", u->unit);
        c->image_bytes = directory_size(dir);
        c->result = CHECKPOINT_DUMPED;
        return 0;
}

/* Not checkpointed, but running as before: recorded as "fresh", with the reason. 1, or
 * with OnDumpFailure=abort an error. */
static int dump_skipped(const HandoffUnit *u, const char *dir, Checkpoint *c, const char *reason) {
        int r;

        assert(u);
        assert(dir);
        assert(c);

        c->result = CHECKPOINT_FRESH;
        reason = reason ?: "unknown";
        c->reason = strdup(reason);
        r = write_record(dir, c);
        if (r < 0)
                return r;
        if (u->on_dump_failure == HANDOFF_FAILURE_ABORT)
                return log_unit_error_errno(u->unit, EBADE, "Cannot checkpoint %s (%s), OnDumpFailure=abort.", u->unit, reason);
        log_unit_warning(u->unit, "Cannot checkpoint %s, it will restart fresh: %s", u->unit, reason);
        return 1;
}

/* After the restore drop-in went in: criu resumes the tree when a dump fails; whatever else
 * happened, the unit must end up running, as it normally would. */
static int dump_failed(Handoff *h, const HandoffUnit *u, const char *dir, Checkpoint *c, const char *reason) {
        _cleanup_(unit_info_done) UnitInfo now = {};
        int r;

        assert(h);
        assert(u);

        (void) restore_dropin_remove(h->root, u->unit);
        h->reload_pending = true;
        bool active = handoff_unit_info(h, u->unit, &now) >= 0 && streq(now.active_state, "active");
        /* Running as before: telling systemd can wait for the end of
         * the batch. Not running: it must forget the restore first. */
        if (!active)
                (void) handoff_flush(h);
        r = ensure_running(h, u->unit, false);
        if (r < 0)
                return r;
        return dump_skipped(u, dir, c, reason);
}

int handoff_dump(Handoff *h, const HandoffUnit *u, const char *images_root, DumpStats *ret) {
        _cleanup_(unit_info_done) UnitInfo info = {};
        _cleanup_free_ char *dir = NULL, *reason = NULL, *log = NULL;
        _cleanup_(checkpoint_done) Checkpoint c = {
                .result = CHECKPOINT_FRESH,
                .tcp_established = u->tcp_established,
                .file_locks = u->file_locks,
                .shell_job = u->shell_job,
        };
        int r;

        assert(h);
        assert(images_root);
        assert(ret);

        *ret = (DumpStats) {};
        if (asprintf(&dir, "%s/%s", images_root, u->unit) < 0 || asprintf(&log, "%s/%s/dump.log", images_root, u->unit) < 0)
                return log_oom();
        c.unit = strdup(u->unit);
        if (!c.unit)
                return log_oom();

        /* Images hold process memory: root only, all the way down. */
        r = mkdir_p(images_root, 0700);
        if (r >= 0) {
                (void) rm_rf(dir);
                r = mkdir(dir, 0700) < 0 ? -errno : 0;
        }
        if (r < 0)
                return log_unit_error_errno(u->unit, r, "Failed to create %s: %m", dir);

        r = handoff_unit_info(h, u->unit, &info);
        if (r < 0)
                return dump_skipped(u, dir, &c, "cannot read its state");
        c.main_pid = info.main_pid;
        c.mount_namespace = info.main_pid > 0 && has_own_mount_namespace(info.main_pid);
        c.syslog_identifier = info.syslog_identifier ? strdup(info.syslog_identifier) : NULL;
        r = handoff_precheck(h, u->unit, &info, &reason);
        if (r < 0)
                return r;
        if (reason)
                return dump_skipped(u, dir, &c, reason);

        if (u->pre_dump_hook) {
                const char * const argv[] = { u->pre_dump_hook, u->unit, NULL };
                r = run_command(argv);
                if (r < 0)
                        return dump_skipped(u, dir, &c, "PreDumpHook= failed");
        }

        r = journal_stream_inodes(info.control_group, &c.journal_inodes);
        if (r >= 0 && c.mount_namespace)
                r = files_matching(info.control_group, is_dev_null, &c.null_files);
        if (r >= 0)
                r = private_tmp_dirs(u->unit, &c.tmp_dirs);
        if (r >= 0 && c.mount_namespace)
                r = foreign_runtime_mounts(info.main_pid, u->unit, &c.runtime_mounts);
        if (r < 0) {
                (void) asprintf(&reason, "cannot inspect its sockets and directories: %s", strerror(-r));
                return dump_skipped(u, dir, &c, reason);
        }

        /* Before the freeze: a reload is seconds on a slow machine. Usually
         * handoff_prepare() wrote it already, for all units at once. */
        if (!dropin_is_current(h, u->unit, dir, c.syslog_identifier)) {
                r = write_restore_dropin(h, u->unit, dir, c.syslog_identifier, /* reload= */ true);
                if (r < 0)
                        return dump_failed(h, u, dir, &c, "cannot install the restore drop-in");
        }

        r = dump_into(u, info.main_pid, dir, c.null_files, &c);
        if (r < 0) {
                criu_failure_reason(log, &reason);
                return dump_failed(h, u, dir, &c, reason);
        }
        r = write_record(dir, &c);
        if (r < 0) {
                /* Images without a record are useless: bring the service back now. */
                (void) restore_dropin_remove(h->root, u->unit);
                (void) daemon_reload();
                (void) ensure_running(h, u->unit, false);
                return r;
        }
        *ret = (DumpStats) { .pre_dump_usec = c.pre_dump_usec, .pre_dump_bytes = c.pre_dump_bytes,
                             .dump_usec = c.dump_usec, .image_bytes = c.image_bytes };
        if (c.pre_dump_usec > 0)
                log_unit_info(u->unit, "Checkpointed %s (main PID " PID_FMT ") in %.2f s after a pre-dump of %.2f s, "
                              "%.1f MiB of images (%.1f MiB while it ran).", u->unit, c.main_pid, c.dump_usec / 1e6,
                              c.pre_dump_usec / 1e6, c.image_bytes / 1048576.0, c.pre_dump_bytes / 1048576.0);
        else
                log_unit_info(u->unit, "Checkpointed %s (main PID " PID_FMT ") in %.2f s, %.1f MiB of images.", u->unit,
                              c.main_pid, c.dump_usec / 1e6, c.image_bytes / 1048576.0);
        return 0;
}

/* A restore that failed (error): why, from criu's log; the checkpoint's connections closed;
 * the unit started fresh. 1, or <0 if it could not be started either. */
static int restore_failed(Handoff *h, const char *unit, const char *log, const Checkpoint *c, int error,
                          RestoreStats *ret) {
        _cleanup_(unit_info_done) UnitInfo info = {};
        _cleanup_free_ char *tail = NULL, *reason = NULL;
        int r;

        assert(h);
        assert(c);
        assert(ret);

        (void) criu_log_reason(log, 5, &tail, &reason);
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

int handoff_restore_exec(const char *unit, const char *images_dir, const char *pidfile) {
        _cleanup_(checkpoint_done) Checkpoint c = {};
        pid_t pid;
        int r;

        r = join_machine_mount_namespace(unit);
        if (r < 0)
                return r;
        r = load_dumped_record(images_dir, unit, &c);
        if (r < 0)
                return r;
        r = recreate_tmp_dirs(unit, c.tmp_dirs);
        if (r < 0)
                return r;
        create_runtime_mount_points(unit, c.runtime_mounts);
        fault_power_cut("restoring");
        if (unlink(pidfile) < 0 && errno != ENOENT)
                return log_unit_error_errno(unit, errno, "Failed to remove the stale %s: %m", pidfile);
        _cleanup_free_ char *piddir = strdup(pidfile);
        if (!piddir)
                return log_oom();
        *strrchr(piddir, '/') = 0;
        r = mkdir_p(piddir, 0755);
        if (r < 0)
                return log_unit_error_errno(unit, r, "Failed to create %s: %m", piddir);

        r = restore_images(&c, images_dir, &pid);
        if (r < 0)
                return r;
        r = write_pidfile(pidfile, pid);
        if (r < 0)
                return log_unit_error_errno(unit, r, "Failed to write %s: %m", pidfile);
        log_unit_info(unit, "Restored %s as PID " PID_FMT ".", unit, pid);
        return 0;
}

int handoff_restore_session_exec(const char *images_dir) {
        _cleanup_(checkpoint_done) Checkpoint c = {};
        pid_t pid;
        int r;

        r = load_dumped_record(images_dir, NULL, &c);
        if (r < 0)
                return r;
        if (!c.session)
                return log_error_errno(EINVAL, "%s holds a service's checkpoint, not a session's.", images_dir);
        r = restore_images(&c, images_dir, &pid);
        if (r < 0)
                return r;
        log_unit_info(c.unit, "Restored the login session of %s (leader PID " PID_FMT ").", c.unit, pid);
        return 0;
}

int handoff_gc(Handoff *h, const char *root_dir) {
        unsigned removed = 0, dropins = 0;
        int r = 0;

        root_dir = root_dir ?: HANDOFF_STATE_DIR;
        DIR *d = opendir(root_dir);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d))) {
                        _cleanup_free_ char *sub = NULL;
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        if (asprintf(&sub, "%s/%s", root_dir, de->d_name) < 0)
                                return log_oom();
                        /* A checkpoint set holds one directory per unit, each with a record. */
                        DIR *s = opendir(sub);
                        if (s) {
                                struct dirent *ue;
                                while ((ue = readdir(s))) {
                                        _cleanup_free_ char *rec = NULL;
                                        Checkpoint c = {};
                                        if (ue->d_name[0] == '.' || asprintf(&rec, "%s/%s/" CHECKPOINT_STATE_FILE, sub, ue->d_name) < 0)
                                                continue;
                                        if (access(rec, F_OK) < 0 || checkpoint_load(rec, &c) < 0)
                                                continue;
                                        netlock_remove(&c);
                                        checkpoint_done(&c);
                                }
                                closedir(s);
                        }
                        int k = rm_rf(sub);
                        if (k < 0)
                                r = log_error_errno(k, "Failed to remove %s: %m", sub);
                        else
                                removed++;
                }
                closedir(d);
        } else if (errno != ENOENT)
                return log_error_errno(errno, "Failed to open %s: %m", root_dir);

        /* Restore drop-ins left by an interrupted handoff would turn the
         * unit's next start into a restore of images that are gone. */
        d = opendir(RESTORE_DROPIN_DIR);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d))) {
                        _cleanup_free_ char *unit = NULL;
                        const char *suffix = ".service.d";
                        if (!endswith(de->d_name, suffix))
                                continue;
                        unit = strndup(de->d_name, strlen(de->d_name) - 2);
                        if (!unit)
                                return log_oom();
                        _cleanup_(unit_info_done) UnitInfo info = {};
                        if (handoff_unit_info(h, unit, &info) >= 0 && streq(info.active_state, "activating"))
                                continue;
                        if (restore_dropin_remove(h->root, unit) > 0)
                                dropins++;
                }
                closedir(d);
        }
        if (dropins > 0)
                (void) daemon_reload();
        log_info("Removed %u checkpoint set%s and %u restore drop-in%s.", removed, removed == 1 ? "" : "s", dropins,
                 dropins == 1 ? "" : "s");
        return r;
}

/* Calls f for each unit directory of a checkpoint set that holds a record. */
static int foreach_checkpoint(const char *set_dir, int (*f)(const char *dir, Checkpoint *c, void *userdata),
                              void *userdata) {
        _cleanup_(closedirp) DIR *d = opendir(set_dir);
        int r = 0;

        if (!d)
                return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                _cleanup_free_ char *dir = NULL, *rec = NULL;
                _cleanup_(checkpoint_done) Checkpoint c = {};
                if (de->d_name[0] == '.')
                        continue;
                if (asprintf(&dir, "%s/%s", set_dir, de->d_name) < 0 || asprintf(&rec, "%s/" CHECKPOINT_STATE_FILE, dir) < 0)
                        return log_oom();
                if (access(rec, F_OK) < 0)
                        continue;
                if (checkpoint_load(rec, &c) < 0)
                        continue; /* logged */
                int k = f(dir, &c, userdata);
                if (k < 0 && r >= 0)
                        r = k;
        }
        return r;
}

static int lock_one(const char *dir, Checkpoint *c, void *userdata) {
        unsigned *n = userdata;
        int r = netlock_load(dir, c);
        if (r > 0)
                (*n)++;
        return r < 0 ? r : 0;
}

int handoff_lock_network(const char *set_dir) {
        unsigned n = 0;
        int r = foreach_checkpoint(set_dir, lock_one, &n);
        if (r == -ENOENT)
                return log_warning_errno(r, "No checkpoint set %s: nothing to lock.", set_dir);
        log_info("Loaded %u network lock%s from %s.", n, n == 1 ? "" : "s", set_dir);
        return r;
}

typedef struct FinishState {
        Handoff *h;
        const char *set_dir;
        const char *generator_dir;
        char ***results;
        char **fresh;            /* units whose restore failed: started fresh after the reload */
} FinishState;

static int finish_one(const char *dir, Checkpoint *c, void *userdata) {
        FinishState *st = userdata;
        _cleanup_(unit_info_done) UnitInfo info = {};
        const char *result;

        if (c->session && c->result == CHECKPOINT_DUMPED) {
                RestoreStats stats;
                result = handoff_restore_session(st->h, c->unit, st->set_dir, &stats) >= 0 ? "restored" : "lost";
                /* Lost: its peer should see the connection closed, not hanging. */
                if (streq(result, "lost"))
                        netlock_remove(c);
        } else if (c->session)
                result = "lost";
        else if (c->result == CHECKPOINT_FRESH)
                result = "fresh"; /* never had a restore drop-in: it started as on any boot */
        else if (handoff_unit_info(st->h, c->unit, &info) >= 0 && streq(info.active_state, "active") &&
                 info.main_pid > 0) {
                log_unit_info(c->unit, "Restored %s across the switch (main PID " PID_FMT ").", c->unit, info.main_pid);
                result = "restored";
        } else {
                _cleanup_free_ char *log = NULL, *tail = NULL, *error = NULL;
                if (asprintf(&log, "%s/restore.log", dir) >= 0)
                        (void) criu_log_reason(log, 5, &tail, &error);
                log_unit_error(c->unit, "Failed to restore %s across the switch (%s), starting it fresh: %s%s%s", c->unit,
                               strna(info.active_state), error ?: "see the unit's journal",
                               tail ? "\nLast lines of the restore log:\n" : "", strempty(tail));
                netlock_remove(c);
                if (strv_extend(&st->fresh, c->unit) < 0)
                        return log_oom();
                result = "restarted";
        }
        /* The restore drop-in came from the generator: gone with the reload. */
        if (strv_extend(st->results, c->unit) < 0 || strv_extend(st->results, result) < 0)
                return log_oom();
        return 0;
}

int handoff_finish_boot(Handoff *h, const char *set_dir, char ***ret_results) {
        _cleanup_strv_free_ char **results = NULL;
        FinishState st = { .h = h, .set_dir = set_dir, .results = &results };
        int r;

        r = foreach_checkpoint(set_dir, finish_one, &st);
        if (r == -ENOENT) {
                log_warning("No checkpoint set %s: the restores have nothing to report.", set_dir);
                r = 0;
        }

        /* The generator stops writing restore drop-ins, so a later start of
         * the unit is an ordinary one again. */
        int k = mkdir_p(HANDOFF_RUN_DIR, 0755);
        if (k >= 0)
                k = write_string_file_atomic(HANDOFF_FINISHED_FILE, "finished\n", 0644);
        if (k < 0)
                log_error_errno(k, "Failed to write %s: %m", HANDOFF_FINISHED_FILE);
        (void) daemon_reload();
        umount_criu_leftovers();

        STRV_FOREACH(u, st.fresh)
                if (ensure_running(h, *u, /* restart= */ false) < 0 && r >= 0)
                        r = -ESRCH;
        strv_free(st.fresh);

        if (rm_rf(set_dir) < 0)
                log_warning("Failed to remove the checkpoint set %s: it holds process memory, remove it by hand.", set_dir);
        if (ret_results)
                *ret_results = TAKE_PTR(results);
        return r;
}

int handoff_unit_sessions(Handoff *h, const char *unit, char ***ret) {
        _cleanup_(unit_info_done) UnitInfo info = {};
        _cleanup_strv_free_ char **ids = NULL, **mine = NULL;
        int r;

        *ret = NULL;
        r = handoff_unit_info(h, unit, &info);
        if (r < 0)
                return r;
        if (info.main_pid <= 0)
                return 0;
        r = sd_get_sessions(&ids);
        if (r < 0)
                return log_unit_error_errno(unit, r, "Failed to list the login sessions: %m");
        STRV_FOREACH(id, ids) {
                _cleanup_free_ char *scope = NULL;
                pid_t leader;
                /* sshd's listener forks the session's leader ("sshd-session: USER [priv]"). */
                if (sd_session_get_leader(*id, &leader) < 0 || parent_of(leader) != info.main_pid)
                        continue;
                if (asprintf(&scope, "session-%s.scope", *id) < 0 || strv_push(&mine, TAKE_PTR(scope)) < 0)
                        return log_oom();
        }

        /* Sessions an earlier switch restored: logind does not know them any more. */
        _cleanup_(closedirp) DIR *d = opendir("/sys/fs/cgroup/" RESTORED_SESSION_SLICE);
        struct dirent *de;
        while (d && (de = readdir(d)))
                if (startswith(de->d_name, RESTORED_SESSION_PREFIX) && endswith(de->d_name, ".scope") &&
                    strv_extend(&mine, de->d_name) < 0)
                        return log_oom();
        *ret = TAKE_PTR(mine);
        return 0;
}

/* The root of a restored session's tree: the process whose parent is not in the scope. */
static pid_t restored_session_leader(const char *cgroup) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;

        if (cgroup_pids(cgroup, &pids, &n) < 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                pid_t parent = parent_of(pids[i]);
                bool inside = false;
                for (size_t j = 0; j < n && !inside; j++)
                        inside = pids[j] == parent;
                if (!inside)
                        return pids[i];
        }
        return -1;
}

static int cgroup_of(pid_t pid, char **ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (asprintf(&path, "/proc/" PID_FMT "/cgroup", pid) < 0)
                return -ENOMEM;
        r = read_file_limited(path, 4096, &text, NULL);
        if (r < 0)
                return r;
        const char *cg = startswith(strstrip(text), "0::"); /* the unified hierarchy */
        if (!cg)
                return -ENOMEDIUM;
        char *c = strdup(cg);
        if (!c)
                return -ENOMEM;
        *ret = c;
        return 0;
}

/* criu resumes a tree it failed to dump: the session goes on until the switch ends it. */
static int session_not_dumped(const char *scope, const char *dir, Checkpoint *c, const char *reason) {
        assert(c);

        c->reason = strdup(strna(reason));
        (void) write_record(dir, c);
        log_unit_warning(scope, "Cannot checkpoint login %s, it ends with the switch: %s", scope, strna(reason));
        return 1;
}

int handoff_dump_session(Handoff *h, const char *scope, const char *images_root, DumpStats *ret) {
        _cleanup_free_ char *dir = NULL, *log = NULL, *cgroup = NULL, *reason = NULL, *id = NULL;
        _cleanup_(checkpoint_done) Checkpoint c = { .result = CHECKPOINT_FRESH, .session = true, .tcp_established = true };
        pid_t leader = -1;
        int r;

        *ret = (DumpStats) {};
        if (asprintf(&dir, "%s/%s", images_root, scope) < 0 || asprintf(&log, "%s/dump.log", dir) < 0 ||
            !(c.unit = strdup(scope)))
                return log_oom();
        r = mkdir_p(images_root, 0700);
        if (r >= 0) {
                (void) rm_rf(dir);
                r = mkdir(dir, 0700) < 0 ? -errno : 0;
        }
        if (r < 0)
                return log_unit_error_errno(scope, r, "Failed to create %s: %m", dir);

        const char *logind = startswith(scope, "session-");
        if (logind) {
                id = strndup(logind, strlen(logind) - strlen(".scope"));
                r = id ? sd_session_get_leader(id, &leader) : -ENOMEM;
                if (r >= 0)
                        r = cgroup_of(leader, &cgroup);
        } else {
                cgroup = strprintf("/" RESTORED_SESSION_SLICE "/%s", scope);
                leader = cgroup ? restored_session_leader(cgroup) : -1;
                r = !cgroup ? -ENOMEM : leader < 0 ? -ESRCH : 0;
        }
        if (r >= 0) {
                c.main_pid = leader;
                r = journal_stream_inodes(cgroup, &c.journal_inodes);
        }
        if (r >= 0)
                r = files_matching(cgroup, is_session_ref, &c.session_refs);
        if (r < 0) {
                (void) asprintf(&reason, "cannot inspect it: %s", strerror(-r));
                return session_not_dumped(scope, dir, &c, reason);
        }

        /* The session's unix sockets to the outside (syslog, logind) reconnect or are
         * left behind; its reference FIFO is replaced at the restore. */
        HandoffUnit u = {
                .unit = c.unit,
                .tcp_established = true,
                .ext_unix_sk = true,
                .external = c.session_refs,
        };
        r = dump_into(&u, leader, dir, NULL, &c);
        if (r < 0) {
                criu_failure_reason(log, &reason);
                return session_not_dumped(scope, dir, &c, reason);
        }
        r = write_record(dir, &c);
        if (r < 0)
                return r; /* the session is gone with its dump: nothing to bring back without a record */
        *ret = (DumpStats) { .dump_usec = c.dump_usec, .image_bytes = c.image_bytes };
        log_unit_info(scope, "Checkpointed login %s (leader PID " PID_FMT ") in %.2f s, %.1f MiB of images.", scope,
                      leader, c.dump_usec / 1e6, c.image_bytes / 1048576.0);
        return 0;
}

int handoff_restore_session(Handoff *h, const char *scope, const char *images_root, RestoreStats *ret) {
        _cleanup_free_ char *dir = NULL, *images = NULL, *description = NULL, *log = NULL, *name = NULL;
        int r;

        *ret = (RestoreStats) {};
        /* Named so that the next switch finds it again (handoff_unit_sessions()). */
        const char *original = startswith(scope, RESTORED_SESSION_PREFIX) ?: scope;
        if (asprintf(&dir, "%s/%s", images_root, scope) < 0 || asprintf(&images, "--images=%s", dir) < 0 ||
            asprintf(&description, "--description=Login %s, restored by dreamlink handoff", original) < 0 ||
            asprintf(&name, "--unit=" RESTORED_SESSION_PREFIX "%s", original) < 0 ||
            asprintf(&log, "%s/restore.log", dir) < 0)
                return log_oom();
        /* A scope of its own: criu leaves the restored tree in its cgroup, and the
         * scope lives on once criu is gone. */
        const char * const argv[] = { "systemd-run", "--scope", "--quiet", "--collect", name,
                                       "--slice=" RESTORED_SESSION_SLICE, description, h->helper, "restore-session",
                                       images, NULL };
        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        r = run_command(argv);
        ret->restore_usec = now_usec(CLOCK_MONOTONIC) - t0;
        ret->restored_at_usec = now_usec(CLOCK_REALTIME);
        if (r < 0) {
                _cleanup_free_ char *error = NULL;
                (void) criu_log_reason(log, 5, NULL, &error);
                return log_unit_error_errno(scope, r, "Failed to restore login %s, it is lost: %s", scope,
                                            error ?: "see the journal");
        }
        log_unit_info(scope, "Restored login %s in %.2f s.", scope, ret->restore_usec / 1e6);
        return 0;
}

typedef struct RestoreSetState {
        Handoff *h;
        const char *set_dir;
        char ***results;
} RestoreSetState;

static int restore_one(const char *dir, Checkpoint *c, void *userdata) {
        RestoreSetState *st = userdata;
        RestoreStats stats;
        const char *result;

        if (c->session)
                result = c->result == CHECKPOINT_DUMPED &&
                         handoff_restore_session(st->h, c->unit, st->set_dir, &stats) >= 0 ? "restored" : "lost";
        else {
                int r = handoff_restore(st->h, c->unit, st->set_dir, &stats);
                result = r < 0 ? "failed" : r == 0 ? "restored" : "restarted";
        }
        if (strv_extend(st->results, c->unit) < 0 || strv_extend(st->results, result) < 0)
                return log_oom();
        return 0;
}

int handoff_restore_set(Handoff *h, const char *set_dir, char ***ret_results) {
        _cleanup_strv_free_ char **results = NULL;
        RestoreSetState st = { .h = h, .set_dir = set_dir, .results = &results };

        int r = foreach_checkpoint(set_dir, restore_one, &st);
        if (r == -ENOENT)
                r = 0;
        (void) handoff_flush(h);
        umount_criu_leftovers();
        if (rm_rf(set_dir) < 0)
                log_warning("Failed to remove the checkpoint set %s: it holds process memory, remove it by hand.", set_dir);
        if (ret_results)
                *ret_results = TAKE_PTR(results);
        return r;
}
