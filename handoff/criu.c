/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The thin adapter to libcriu: the options of a dump (from the unit's handoff.d settings)
 * and of a restore (from the checkpoint record) and the calls themselves, the images
 * directory as criu takes it. What criu's logs say went wrong is criu-log.c's. */

#include <criu/criu.h>
#include <dirent.h>
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
#include "string-util.h"
#include "time-util.h"

#define CRIU_LOG_LEVEL 4

uint64_t directory_size(const char *path) {
        uint64_t total = 0;
        DIR *d = opendir(path);
        if (!d)
                return 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                struct stat st;
                if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_free_ char *sub = NULL;
                        if (asprintf(&sub, "%s/%s", path, de->d_name) >= 0)
                                total += directory_size(sub);
                } else
                        total += (uint64_t) st.st_size;
        }
        closedir(d);
        return total;
}

/* parent: a pre-dump's images, relative to images_fd; the final dump then writes only the
 * pages written since. */
int criu_dump_to(const HandoffUnit *u, pid_t pid, int images_fd, const Checkpoint *ext, DumpMode mode,
                 const char *parent) {
        criu_opts *opts = NULL;
        int r;

        r = criu_local_init_opts(&opts);
        if (r < 0)
                return log_error_errno(r, "Failed to set up libcriu: %m");
        criu_local_set_pid(opts, pid);
        criu_local_set_images_dir_fd(opts, images_fd);
        criu_local_set_log_file(opts, "dump.log");
        criu_local_set_log_level(opts, CRIU_LOG_LEVEL);
        criu_local_set_leave_running(opts, mode == DUMP_DRY_RUN);
        if (mode == DUMP_PRE || parent)
                criu_local_set_track_mem(opts, true);
        /* Read mode: the tree runs again while its pages are copied, not after. */
        if (mode == DUMP_PRE && r >= 0)
                r = criu_local_set_pre_dump_mode(opts, CRIU_PRE_DUMP_READ);
        if (parent && r >= 0)
                r = criu_local_set_parent_images(opts, parent);
        criu_local_set_tcp_established(opts, u->tcp_established);
        criu_local_set_file_locks(opts, u->file_locks);
        criu_local_set_shell_job(opts, u->shell_job);
        criu_local_set_ext_unix_sk(opts, u->ext_unix_sk);
        r = criu_local_set_network_lock(opts, CRIU_NETWORK_LOCK_NFTABLES);
        if (has_own_mount_namespace(pid)) {
                /* The service's mounts are binds of ours, some shared or
                 * slaves of ours (PrivateTmp=): describe them as external,
                 * with their sharing, instead of refusing ("has unreachable
                 * sharing"). --external 'mnt[]:sm' on the command line. */
                criu_local_set_auto_ext_mnt(opts, true);
                criu_local_set_ext_sharing(opts, true);
                criu_local_set_ext_masters(opts, true);
        }
        /* The exception list of unix sockets with peers outside the tree: journal streams (the
         * restore inherits them) and datagram sockets (criu connects them by name again). */
        char * const *unix_lists[] = { ext->journal_inodes, ext->datagram_inodes };
        for (size_t l = 0; l < ELEMENTSOF(unix_lists); l++)
                STRV_FOREACH(i, unix_lists[l]) {
                        _cleanup_free_ char *key = NULL;
                        if (r >= 0 && asprintf(&key, "unix[%s]", *i) < 0)
                                r = -ENOMEM;
                        if (r >= 0)
                                r = criu_local_add_external(opts, key);
                }
        STRV_FOREACH(e, ext->null_files)
                if (r >= 0)
                        r = criu_local_add_external(opts, *e);
        STRV_FOREACH(e, u->external)
                if (r >= 0)
                        r = criu_local_add_external(opts, *e);
        STRV_FOREACH(m, ext->skipped_mounts)
                if (r >= 0)
                        r = criu_local_add_skip_mnt(opts, *m);
        if (r >= 0)
                r = mode == DUMP_PRE ? criu_local_pre_dump(opts) : criu_local_dump(opts);
        criu_local_free_opts(opts);
        return r < 0 ? r : 0;
}

int criu_probe_kernel(usec_t *ret_usec, bool *ret_mem_track) {
        struct criu_feature_check features = { .mem_track = true };
        criu_opts *opts = NULL;

        int r = criu_local_init_opts(&opts);
        if (r < 0)
                return r;
        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        r = criu_local_feature_check(opts, &features, sizeof(features));
        criu_local_free_opts(opts);
        if (r < 0)
                return r;
        if (ret_usec)
                *ret_usec = now_usec(CLOCK_MONOTONIC) - t0;
        if (ret_mem_track)
                *ret_mem_track = features.mem_track;
        return 0;
}

int handoff_probe_kernel(void) {
        usec_t t;
        bool mem_track;

        int r = criu_probe_kernel(&t, &mem_track);
        if (r < 0)
                return log_error_errno(r, "criu could not probe the kernel; the first restore will try again: %m");
        log_info("criu probed the kernel in %.2f s (dirty memory tracking: %s).", t / 1e6, mem_track ? "yes" : "no");
        return 0;
}

int open_images_dir(const char *dir) {
        /* No O_CLOEXEC: criu swrk inherits it. */
        int fd = open(dir, O_RDONLY | O_DIRECTORY);
        return fd < 0 ? -errno : fd;
}

static int read_sysctl(const char *path, char **ret) {
        int r = read_file_limited(path, 64, ret, NULL);
        if (r >= 0)
                strstrip(*ret);
        return r;
}

static void write_sysctl(const char *path, const char *value) {
        FILE *f = fopen(path, "we");
        if (!f)
                return;
        fputs(value, f);
        fclose(f);
}

/* libcriu's notifications carry no context of ours: the restore being run, one per process. */
static const Checkpoint *notified_restore;
static const LateMounts *notified_late;

static int restore_notified(char *action, criu_notify_arg_t na) {
        /* Its processes are all there, stopped, the network still locked. */
        if (streq(action, "post-restore") && notified_restore)
                (void) late_mounts_bind(notified_restore->unit, criu_notify_pid(na), notified_late);
        return 0;
}

/* criu restore of the checkpoint c in images_dir, from the calling process:
 * inside the unit (restore-exec) or the session's new scope (restore-session). */
int restore_images(const Checkpoint *c, const LateMounts *late, const char *images_dir, pid_t *ret_pid) {
        static const char window_scaling[] = "/proc/sys/net/ipv4/tcp_window_scaling";
        _cleanup_free_ char *old_scaling = NULL, *log = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *unit = c->unit;
        criu_opts *opts = NULL;
        int r;

        if (asprintf(&log, "%s/restore.log", images_dir) < 0)
                return log_oom();
        fd = open_images_dir(images_dir);
        if (fd < 0)
                return log_unit_error_errno(unit, fd, "Failed to open %s: %m", images_dir);

        r = criu_local_init_opts(&opts);
        if (r < 0)
                return log_unit_error_errno(unit, r, "Failed to set up libcriu: %m");
        criu_local_set_images_dir_fd(opts, fd);
        criu_local_set_log_file(opts, "restore.log");
        criu_local_set_log_level(opts, CRIU_LOG_LEVEL);
        criu_local_set_tcp_established(opts, c->tcp_established);
        criu_local_set_file_locks(opts, c->file_locks);
        criu_local_set_shell_job(opts, c->shell_job);
        r = criu_local_set_network_lock(opts, CRIU_NETWORK_LOCK_NFTABLES);
        if (r >= 0 && c->mount_namespace) {
                /* The external mounts of the dump are found again under our root. */
                criu_local_set_auto_ext_mnt(opts, true);
                r = criu_local_set_root(opts, "/");
                if (late && late->n > 0)
                        criu_local_set_notify_cb(opts, restore_notified);
        }
        /* A session stays in the scope we run in; a unit's cgroup is ours already. */
        if (r >= 0 && c->session)
                criu_local_set_manage_cgroups_mode(opts, CRIU_CG_MODE_IGNORE);
        /* Each journal stream of the service becomes a copy of our own
         * stdout, which systemd connected to journald with the unit's
         * identity; journald credits lines to the process writing them. Note
         * the key: "socket:[INO]" — "socket[INO]" silently matches nothing. */
        STRV_FOREACH(i, c->journal_inodes) {
                _cleanup_free_ char *key = NULL;
                if (r < 0)
                        break;
                int copy = fcntl(STDOUT_FILENO, F_DUPFD, 3);
                if (copy < 0) {
                        r = -errno;
                        break;
                }
                if (asprintf(&key, "socket:[%s]", *i) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = criu_local_add_inherit_fd(opts, copy, key);
        }
        STRV_FOREACH(k, c->null_files) {
                if (r < 0)
                        break;
                int null = open("/dev/null", O_RDWR); /* no O_CLOEXEC: for criu */
                if (null < 0) {
                        r = -errno;
                        break;
                }
                r = criu_local_add_inherit_fd(opts, null, *k);
        }
        /* logind's reference FIFO of the old boot: a new one of ours stands in. The
         * restored session is not a logind session again (there is no API for that). */
        STRV_FOREACH(k, c->session_refs) {
                _cleanup_free_ char *fifo = NULL;
                if (r < 0)
                        break;
                if (asprintf(&fifo, HANDOFF_RUN_DIR "/%s.ref", unit) < 0) {
                        r = -ENOMEM;
                        break;
                }
                (void) mkdir_p(HANDOFF_RUN_DIR, 0755);
                if (mkfifo(fifo, 0600) < 0 && errno != EEXIST) {
                        r = -errno;
                        break;
                }
                int ref = open(fifo, O_RDWR | O_NONBLOCK); /* no O_CLOEXEC: for criu */
                if (ref < 0) {
                        r = -errno;
                        break;
                }
                r = criu_local_add_inherit_fd(opts, ref, *k);
        }
        if (r < 0) {
                criu_local_free_opts(opts);
                return log_unit_error_errno(unit, r, "Failed to set up the restore of %s: %m", unit);
        }

        /* A restored socket whose peer never negotiated window scaling (slirp,
         * some middleboxes) would advertise its window shifted by the scale:
         * 4 bytes. Off during the restore, back afterwards. */
        if (read_sysctl(window_scaling, &old_scaling) >= 0)
                write_sysctl(window_scaling, "0");
        notified_restore = c;
        notified_late = late;
        pid_t pid = criu_local_restore(opts);
        notified_restore = NULL;
        notified_late = NULL;
        if (old_scaling)
                write_sysctl(window_scaling, old_scaling);
        criu_local_free_opts(opts);

        if (pid <= 0) {
                _cleanup_free_ char *tail = NULL, *error = NULL;
                (void) criu_log_reason(log, 5, &tail, &error);
                return log_unit_error_errno(unit, pid < 0 ? pid : EPROTO, "criu could not restore %s: %s%s%s", unit,
                                            error ?: "no reason logged", tail ? "\nLast lines of the restore log:\n" : "",
                                            strempty(tail));
        }
        *ret_pid = pid;
        return 0;
}
