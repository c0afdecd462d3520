/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Dumping a service: the dry run (handoff_try_dump()), and the dump proper, with its
 * pre-dump, the restore drop-in in place before the freeze, and a unit that cannot be
 * dumped kept running and recorded as fresh. */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"
#include "process-util.h"
#include "string-util.h"
#include "time-util.h"
#include "unit-file.h"

bool unit_is_container(const char *unit) {
        _cleanup_free_ char *source = NULL;
        return unit_quadlet_source(NULL, unit, &source) > 0;
}

/* The container of a quadlet unit (container.c), found, inspected and judged: 0 with *ret_id and
 * *ret_info, or 1 with *ret_reason when it cannot be carried. */
static int find_container(const HandoffUnit *u, char **ret_id, ContainerInfo *ret_info, char **ret_reason) {
        _cleanup_free_ char *id = NULL;
        int r;

        *ret_reason = NULL;
        r = unit_container(u->unit, &id);
        if (r == -ESRCH)
                *ret_reason = strdup("podman runs no container of it");
        else if (r == -ENOTUNIQ)
                *ret_reason = strdup("podman runs more than one container of it (a pod?): only a unit's one container is carried");
        else if (r < 0)
                *ret_reason = strprintf("cannot ask podman for its container: %s", strerror(-r));
        else {
                r = container_inspect(u->unit, id, ret_info);
                if (r < 0)
                        *ret_reason = strprintf("cannot inspect its container: %s", strerror(-r));
                else {
                        r = container_precheck(u->unit, ret_info, ret_reason);
                        if (r < 0)
                                return r;
                        if (!*ret_reason) {
                                *ret_id = TAKE_PTR(id);
                                return 0;
                        }
                        container_info_done(ret_info);
                }
        }
        return *ret_reason ? 1 : -ENOMEM;
}

/* podman's own dry run: the checkpoint, the container left running, into a directory deleted after. */
static int try_dump_container(const HandoffUnit *u, char **ret_reason) {
        _cleanup_(container_info_done) ContainerInfo info = {};
        _cleanup_free_ char *id = NULL;
        char dir[] = HANDOFF_STATE_DIR "/.dry-run.XXXXXX";
        int r;

        r = find_container(u, &id, &info, ret_reason);
        if (r != 0)
                return r < 0 ? r : -EBUSY;
        r = mkdir_p(HANDOFF_STATE_DIR, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", HANDOFF_STATE_DIR);
        if (!mkdtemp(dir))
                return log_error_errno(errno, "Failed to create a directory in %s: %m", HANDOFF_STATE_DIR);
        r = container_checkpoint(u, id, dir, /* leave_running= */ true, ret_reason);
        (void) rm_rf(dir);
        return r;
}

int handoff_try_dump(Handoff *h, const HandoffUnit *u, char **ret_reason) {
        _cleanup_(unit_info_done) UnitInfo info = {};
        _cleanup_(checkpoint_done) Checkpoint ext = {};
        _cleanup_free_ char *reason = NULL, *log = NULL;
        char dir[] = HANDOFF_STATE_DIR "/.dry-run.XXXXXX";
        _cleanup_close_ int fd = -EBADF;
        int r;

        *ret_reason = NULL;
        r = handoff_unit_info(h, u->unit, &info);
        if (r < 0)
                return asprintf(ret_reason, "cannot read its state") < 0 ? -ENOMEM : r;
        if (unit_is_container(u->unit))
                return try_dump_container(u, ret_reason);
        r = handoff_precheck(h, u->unit, &info, &reason);
        if (r < 0)
                return r;
        if (reason) {
                *ret_reason = TAKE_PTR(reason);
                return -EBUSY;
        }
        r = external_unix_sockets(info.control_group, &ext.journal_inodes, &ext.datagram_inodes);
        if (r >= 0 && has_own_mount_namespace(info.root_pid))
                r = files_matching(info.control_group, is_dev_null, &ext.null_files);
        /* The same mounts left out as the dump would leave out. */
        if (r >= 0 && has_own_mount_namespace(info.root_pid))
                r = foreign_runtime_mounts(info.root_pid, u->unit, &ext.skipped_mounts);
        if (r < 0)
                return asprintf(ret_reason, "cannot list its sockets, files and mounts: %s", strerror(-r)) < 0 ? -ENOMEM : r;

        r = mkdir_p(HANDOFF_STATE_DIR, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", HANDOFF_STATE_DIR);
        if (!mkdtemp(dir))
                return log_error_errno(errno, "Failed to create a directory in %s: %m", HANDOFF_STATE_DIR);
        fd = open_images_dir(dir);
        r = fd < 0 ? fd : criu_dump_to(u, info.root_pid, fd, &ext, DUMP_DRY_RUN, NULL);
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
        r = fd < 0 ? fd : criu_dump_to(u, pid, fd, c, DUMP_PRE, NULL);
        /* On disk while the tree still runs: the sync after the final dump, with the tree
         * stopped, is then only that dump's. */
        if (r >= 0 && syncfs(fd) < 0)
                (void) log_unit_warning_errno(u->unit, errno, "Failed to sync the pre-dump of %s: %m", u->unit);
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

/* The local addresses of the connections criu locked, after the freeze: one accepted since
 * socket_addresses() ran may be on an address none of the others had. The lock holds both ends of
 * each connection; the machine's own are the local ones. */
static void add_locked_addresses(const char *unit, const char *lock_text, char ***addresses) {
        _cleanup_strv_free_ char **locked = NULL;
        int r;

        r = lock_table_addresses(lock_text, &locked);
        if (r >= 0 && locked)
                r = addresses_on_machine(&locked);
        STRV_FOREACH(a, locked)
                if (r >= 0 && !strv_contains(*addresses, *a))
                        r = strv_extend(addresses, *a);
        if (r < 0)
                log_unit_warning_errno(unit, r, "Failed to read the addresses of the connections of %s, its restore may "
                                       "not wait for all of them: %m", unit);
        strv_sort(*addresses);
}

/* The dump proper, of the tree rooted at pid into dir, and what goes with it into c: its
 * times, the network lock criu left (saved for a new boot), the size of the synced images. */
int dump_into(const HandoffUnit *u, pid_t pid, const char *dir, Checkpoint *c) {
        _cleanup_strv_free_ char **before = NULL, **after = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        (void) nft_criu_tables(&before);
        fd = open_images_dir(dir);
        if (fd < 0)
                return fd;
        bool parent = u->pre_dump && pre_dump(u, pid, dir, c) >= 0;
        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        Writeback *w = NULL;
        if (writeback_start(fd, &w) < 0)
                log_unit_debug(u->unit, "No writeback of the images of %s during the dump: the sync at its end writes them.",
                               u->unit);
        r = criu_dump_to(u, pid, fd, c, DUMP_FINAL, parent ? PRE_DUMP_DIR : NULL);
        w = writeback_stop(w);
        if (r < 0)
                return r;

        if (nft_criu_tables(&after) >= 0)
                STRV_FOREACH(t, after)
                        if (!strv_contains(before, *t)) {
                                c->lock_table = strdup(*t);
                                break;
                        }
        if (c->lock_table) {
                _cleanup_free_ char *text = NULL;
                r = save_lock_table(dir, c->lock_table, &text);
                if (r < 0)
                        log_unit_warning_errno(u->unit, r, "Failed to save the network lock %s of %s, its connections "
                                               "may be reset across a reboot: %m", c->lock_table, u->unit);
                else
                        add_locked_addresses(u->unit, text, &c->addresses);
        }
        usec_t t_sync = now_usec(CLOCK_MONOTONIC);
        if (syncfs(fd) < 0)
                log_unit_warning_errno(u->unit, errno, "Failed to sync the images of %s: %m", u->unit);
        c->sync_usec = now_usec(CLOCK_MONOTONIC) - t_sync;
        /* The tree is gone since criu's kill, and the images count only once on disk: the
         * service's time without a process runs on until here. */
        c->dump_usec = now_usec(CLOCK_MONOTONIC) - t0;
        c->dumped_at_usec = now_usec(CLOCK_REALTIME);
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

/* A complete dump: its record, which makes the images restorable, and its figures. */
static int dump_done(Handoff *h, const HandoffUnit *u, const char *dir, const Checkpoint *c, DumpStats *ret) {
        int r = write_record(dir, c);
        if (r < 0) {
                /* Images without a record are useless: bring the service back now. */
                netlock_remove(c);
                (void) restore_dropin_remove(h->root, u->unit);
                (void) daemon_reload();
                (void) ensure_running(h, u->unit, false);
                return r;
        }
        *ret = (DumpStats) { .pre_dump_usec = c->pre_dump_usec, .pre_dump_bytes = c->pre_dump_bytes,
                             .dump_usec = c->dump_usec, .image_bytes = c->image_bytes,
                             .sync_usec = c->sync_usec };
        CriuDumpStats cs;
        if (!c->container_id && criu_dump_stats(dir, &cs) >= 0) {
                ret->memory_bytes = cs.pages_written_bytes;
                ret->memory_usec = cs.memdump_usec;
                ret->memory_write_usec = cs.memwrite_usec;
                log_unit_debug(u->unit, "criu on %s: frozen %.2f s, %.1f MiB of memory in %.2f s, written in %.2f s.",
                               u->unit, cs.frozen_usec / 1e6, cs.pages_written_bytes / 1048576.0, cs.memdump_usec / 1e6,
                               cs.memwrite_usec / 1e6);
        }
        if (c->container_id)
                log_unit_info(u->unit, "Checkpointed the container %.12s of %s with podman in %.2f s, %.1f MiB of images.",
                              c->container_id, u->unit, c->dump_usec / 1e6, c->image_bytes / 1048576.0);
        else if (c->pre_dump_usec > 0)
                log_unit_info(u->unit, "Checkpointed %s (main PID " PID_FMT ") in %.2f s after a pre-dump of %.2f s, "
                              "%.1f MiB of images (%.1f MiB while it ran).", u->unit, c->main_pid, c->dump_usec / 1e6,
                              c->pre_dump_usec / 1e6, c->image_bytes / 1048576.0, c->pre_dump_bytes / 1048576.0);
        else
                log_unit_info(u->unit, "Checkpointed %s (main PID " PID_FMT ") in %.2f s, %.1f MiB of images.", u->unit,
                              c->main_pid, c->dump_usec / 1e6, c->image_bytes / 1048576.0);
        return 0;
}

/* Podman is done with the container, conmon is not: it runs podman's cleanup first, then
 * systemd the unit's stop commands. A restore in this boot (a switch that failed, `cycle`) must
 * find the unit down and the container gone, not start into their remains. Waited for, not
 * stopped: a stop would take the units that Requires= it along. The bound only keeps a hung
 * cleanup from holding the commit: the switch ends it anyway. */
#define CONTAINER_DOWN_USEC (5 * 60 * USEC_PER_SEC)

static void wait_container_unit_down(Handoff *h, const char *unit) {
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + CONTAINER_DOWN_USEC;

        for (;;) {
                _cleanup_(unit_info_done) UnitInfo now = {};
                int r = handoff_unit_info(h, unit, &now);
                if (r < 0) {
                        log_unit_warning_errno(unit, r, "Failed to learn whether %s went down after its checkpoint: %m", unit);
                        return;
                }
                if (!streq(now.active_state, "active") && !streq(now.active_state, "deactivating") &&
                    !streq(now.active_state, "reloading"))
                        return;
                if (now_usec(CLOCK_MONOTONIC) >= deadline) {
                        log_unit_warning(unit, "%s is still %s %u s after its checkpoint.", unit, now.active_state,
                                         (unsigned) (CONTAINER_DOWN_USEC / USEC_PER_SEC));
                        return;
                }
                (void) usleep(100 * USEC_PER_MSEC);
        }
}

/* A quadlet unit: its container checkpointed by podman (container.c), its ports held from just
 * before until the restore. */
static int dump_container(Handoff *h, const HandoffUnit *u, const UnitInfo *info, const char *dir, Checkpoint *c,
                          DumpStats *ret) {
        _cleanup_(container_info_done) ContainerInfo ci = {};
        _cleanup_free_ char *id = NULL, *reason = NULL;
        int r;

        r = find_container(u, &id, &ci, &reason);
        if (r != 0)
                return r < 0 ? r : dump_skipped(u, dir, c, reason);
        c->container_id = strdup(id);
        if (!c->container_id)
                return log_oom();
        if (ci.id_file) {
                if (!container_id_file_is_valid(ci.id_file))
                        return dump_skipped(u, dir, c, "it was created with a --cidfile outside /run, which the restore "
                                            "does not write as root");
                c->container_id_file = strdup(ci.id_file);
                if (!c->container_id_file)
                        return log_oom();
        }
        c->main_pid = ci.conmon_pid;
        if (u->pre_dump_hook) {
                const char * const argv[] = { u->pre_dump_hook, u->unit, NULL };
                if (run_command(argv) < 0)
                        return dump_skipped(u, dir, c, "PreDumpHook= failed");
        }
        if (!dropin_is_current(h, u->unit, dir, c->syslog_identifier)) {
                r = write_restore_dropin(h, u->unit, dir, c->syslog_identifier, /* reload= */ true);
                if (r < 0)
                        return dump_failed(h, u, dir, c, "cannot install the restore drop-in");
        }
        r = container_lock(u->unit, info->control_group, &ci, dir, &c->lock_table);
        if (r < 0)
                return dump_failed(h, u, dir, c, "cannot hold its ports while it is away");
        /* Held: no connection comes or goes before the entries are read. */
        r = conntrack_save(u->unit, ci.ports, dir);
        if (r < 0) {
                netlock_remove(c);
                return dump_failed(h, u, dir, c, "cannot save the address translation of its connections");
        }

        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        r = cgroup_pids(info->control_group, &pids, &n);
        if (r < 0 || apparmor_save(u->unit, pids, n, dir) < 0) {
                netlock_remove(c);
                return dump_failed(h, u, dir, c, "cannot save its AppArmor profiles");
        }

        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        r = container_checkpoint(u, id, dir, /* leave_running= */ false, &reason);
        c->dump_usec = now_usec(CLOCK_MONOTONIC) - t0;
        c->dumped_at_usec = now_usec(CLOCK_REALTIME);
        if (r < 0) {
                netlock_remove(c);
                return dump_failed(h, u, dir, c, reason);
        }
        wait_container_unit_down(h, u->unit);
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || syncfs(fd) < 0)
                log_unit_warning_errno(u->unit, errno, "Failed to sync the images of %s: %m", u->unit);
        c->image_bytes = directory_size(dir);
        c->result = CHECKPOINT_DUMPED;
        return dump_done(h, u, dir, c, ret);
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
        c.syslog_identifier = info.syslog_identifier ? strdup(info.syslog_identifier) : NULL;
        if (unit_is_container(u->unit))
                return dump_container(h, u, &info, dir, &c, ret);
        r = handoff_precheck(h, u->unit, &info, &reason);
        if (r < 0)
                return r;
        if (reason)
                return dump_skipped(u, dir, &c, reason);
        /* The restore's main process is the tree's root. */
        c.main_pid = info.root_pid;
        c.mount_namespace = has_own_mount_namespace(info.root_pid);

        if (u->pre_dump_hook) {
                const char * const argv[] = { u->pre_dump_hook, u->unit, NULL };
                r = run_command(argv);
                if (r < 0)
                        return dump_skipped(u, dir, &c, "PreDumpHook= failed");
        }

        r = external_unix_sockets(info.control_group, &c.journal_inodes, &c.datagram_inodes);
        if (r >= 0 && c.mount_namespace)
                r = files_matching(info.control_group, is_dev_null, &c.null_files);
        if (r >= 0)
                r = private_tmp_dirs(u->unit, &c.tmp_dirs);
        if (r >= 0 && c.mount_namespace)
                r = foreign_runtime_mounts(info.root_pid, u->unit, &c.skipped_mounts);
        if (r >= 0) {
                _cleanup_free_ pid_t *pids = NULL;
                size_t n = 0;
                r = cgroup_pids(info.control_group, &pids, &n);
                if (r >= 0 && c.mount_namespace) {
                        /* A help to the restore, not a condition of the dump. */
                        int k = late_mounts(info.root_pid, pids, n, &c.automounts, &c.rebind_mounts, &c.skipped_mounts);
                        _cleanup_free_ char *left_out = k >= 0 ? strv_join(c.rebind_mounts, " ") : NULL;
                        if (k < 0)
                                log_unit_warning_errno(u->unit, k, "Failed to find the automounts and the late mounts in "
                                                       "%s's namespace, its restore may come before they are mounted: %m",
                                                       u->unit);
                        else if (!isempty(left_out))
                                log_unit_info(u->unit, "Leaving the machine's mounts %s out of %s's dump: it holds nothing "
                                              "below them, its restore binds the machine's again.", left_out, u->unit);
                }
                if (r >= 0)
                        r = run_dirs_collect(info.root_pid, pids, n, &c.run_dirs);
                if (r >= 0)
                        r = socket_addresses(u->unit, pids, n, &c.addresses);
                if (r >= 0 && apparmor_save(u->unit, pids, n, dir) < 0)
                        return dump_skipped(u, dir, &c, "cannot save its AppArmor profiles");
        }
        if (r >= 0) {
                /* Its files there as it sees them (a mount namespace of its own sees /run through a
                 * bind), and its PIDFile= as its unit files have it: the loaded unit may have the
                 * restore drop-in's already, which handoff_prepare() installed. */
                _cleanup_(unit_settings_done) UnitSettings settings = {};
                _cleanup_free_ char *pid_file = NULL;
                if (unit_settings_read(NULL, u->unit, &settings) >= 0 &&
                    unit_settings_pid_file(&settings, u->unit, &pid_file) == -ENOMEM)
                        r = -ENOMEM;
                char root[64];
                snprintf(root, sizeof(root), "/proc/" PID_FMT "/root", info.root_pid);
                _cleanup_close_ int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (r >= 0)
                        r = root_fd < 0 ? -errno : run_files_save(root_fd, c.run_dirs, pid_file, dir, &c.run_files);
        }
        if (r < 0) {
                (void) asprintf(&reason, "cannot inspect its sockets and directories or save its files in /run: %s", strerror(-r));
                return dump_skipped(u, dir, &c, reason);
        }

        /* Before the freeze: a reload is seconds on a slow machine. Usually
         * handoff_prepare() wrote it already, for all units at once. */
        if (!dropin_is_current(h, u->unit, dir, c.syslog_identifier)) {
                r = write_restore_dropin(h, u->unit, dir, c.syslog_identifier, /* reload= */ true);
                if (r < 0)
                        return dump_failed(h, u, dir, &c, "cannot install the restore drop-in");
        }

        r = dump_into(u, info.root_pid, dir, &c);
        if (r < 0) {
                criu_failure_reason(log, &reason);
                return dump_failed(h, u, dir, &c, reason);
        }
        return dump_done(h, u, dir, &c, ret);
}
