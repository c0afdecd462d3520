/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The machine's automounts (/efi, x-systemd.automount entries) in a service's mount namespace.
 * criu restores the service's view of them as binds of the machine's paths, made from a mount
 * namespace of its own: that crosses the automount, and a new boot mounts what is behind it
 * first (an ESP waits for udev's coldplug to find its disk, then for its fsck: 20 s of a TCG
 * boot), and the service then has a copy of that mount, no automount. So an automount below
 * which the service's processes hold nothing is left out of the dump, and the machine's is
 * bound into the restored namespace again before the service runs (SkippedAutomounts= of the
 * record); one it holds files below is mounted before its restore (Automounts=). */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "handoff-internal.h"
#include "log.h"
#include "string-util.h"

/* The mount points in a mountinfo text, all of them or only the autofs ones. */
static int mountinfo_points(const char *mountinfo, bool autofs_only, char ***ret) {
        _cleanup_free_ char *text = strdup(mountinfo);
        _cleanup_strv_free_ char **points = NULL;

        if (!text)
                return -ENOMEM;
        for (char *p = text, *e; p && *p; p = e) {
                char mnt[4096], fstype[64];
                e = strchr(p, '\n');
                if (e)
                        *e++ = 0;
                if (sscanf(p, "%*s %*s %*s %*s %4095s", mnt) != 1)
                        continue;
                /* The file system type follows the optional fields, after " - ". */
                const char *tail = strstr(p, " - ");
                if (autofs_only && (!tail || sscanf(tail, " - %63s", fstype) != 1 || !streq(fstype, "autofs")))
                        continue;
                if (!strv_contains(points, mnt) && strv_extend(&points, mnt) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(points);
        return 0;
}

int mountinfo_automounts(const char *machine, const char *service, char ***ret) {
        _cleanup_strv_free_ char **autofs = NULL, **seen = NULL, **points = NULL;
        int r;

        r = mountinfo_points(machine, /* autofs_only= */ true, &autofs);
        if (r >= 0)
                r = mountinfo_points(service, /* autofs_only= */ false, &seen);
        if (r < 0)
                return r;
        STRV_FOREACH(a, autofs)
                if (strv_contains(seen, *a) && automount_point_is_valid(*a) && strv_extend(&points, *a) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(points);
        return 0;
}

int automount_points(pid_t pid, char ***ret) {
        _cleanup_free_ char *machine = NULL, *service = NULL;

        int r = read_mountinfo(1, &machine);
        if (r >= 0)
                r = read_mountinfo(pid, &service);
        if (r < 0)
                return r;
        return mountinfo_automounts(machine, service, ret);
}

void automounts_trigger(const char *unit, char * const *points) {
        STRV_FOREACH(p, points) {
                /* An open, unlike a stat, crosses the mount point: systemd mounts what is behind. */
                _cleanup_close_ int fd = open(*p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        log_unit_warning_errno(unit, errno, "Failed to open the automount point %s before the restore, "
                                               "criu may fail to bind it: %m", *p);
        }
}

static void *automounts_thread(void *p) {
        AutomountsTrigger *t = p;
        automounts_trigger(t->unit, t->points);
        return NULL;
}

void automounts_trigger_start(AutomountsTrigger *t, const char *unit, char * const *points) {
        assert(t);
        assert(!t->running && !t->points);

        t->unit = unit;
        if (!points || !*points)
                return;
        /* Copied: the thread may outlive the record on an error path, until the join. */
        t->points = strv_copy(points);
        if (!t->points) {
                log_oom();
                return;
        }
        int r = -pthread_create(&t->thread, NULL, automounts_thread, t);
        if (r < 0) {
                /* automounts_trigger_finish() mounts them itself. */
                log_debug_errno(r, "%s: failed to start the thread that mounts the automounts: %m", unit);
                return;
        }
        t->running = true;
}

void automounts_trigger_finish(AutomountsTrigger *t) {
        assert(t);

        if (t->running)
                (void) pthread_join(t->thread, NULL);
        else if (t->points)
                automounts_trigger(t->unit, t->points);
        t->running = false;
        t->points = strv_free(t->points);
}


static bool path_is_at_or_below(const char *path, const char *prefix) {
        const char *rest = startswith(path, prefix);
        return rest && (*rest == 0 || *rest == '/');
}

static bool ids_contain(const uint64_t *ids, size_t n, uint64_t id) {
        for (size_t i = 0; i < n; i++)
                if (ids[i] == id)
                        return true;
        return false;
}

static int ids_add(uint64_t **ids, size_t *n, uint64_t id) {
        if (ids_contain(*ids, *n, id))
                return 0;
        uint64_t *a = reallocarray(*ids, *n + 1, sizeof(uint64_t));
        if (!a)
                return -ENOMEM;
        a[(*n)++] = id;
        *ids = a;
        return 0;
}

/* Following the magic link: the mount of what it points to. */
static int add_mount_id_of(int dir_fd, const char *name, uint64_t **ids, size_t *n) {
        struct statx sx;
        if (statx(dir_fd, name, AT_NO_AUTOMOUNT, STATX_MNT_ID, &sx) < 0 || !(sx.stx_mask & STATX_MNT_ID))
                return 0; /* gone with its process or file, or a kernel older than 5.8: nothing held */
        return ids_add(ids, n, sx.stx_mnt_id);
}

static int add_mount_ids_in(const char *dir, uint64_t **ids, size_t *n) {
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        struct dirent *de;
        int r = 0;
        while (r >= 0 && (de = readdir(d)))
                if (de->d_name[0] != '.')
                        r = add_mount_id_of(dirfd(d), de->d_name, ids, n);
        closedir(d);
        return r;
}

int tree_mount_ids(const pid_t *pids, size_t n_pids, uint64_t **ret, size_t *ret_n) {
        static const char * const links[] = { "cwd", "root", "exe" };
        _cleanup_free_ uint64_t *ids = NULL;
        size_t n = 0;
        int r = 0;

        for (size_t i = 0; r >= 0 && i < n_pids; i++) {
                char dir[64];
                for (size_t l = 0; r >= 0 && l < ELEMENTSOF(links); l++) {
                        snprintf(dir, sizeof(dir), "/proc/" PID_FMT "/%s", pids[i], links[l]);
                        r = add_mount_id_of(AT_FDCWD, dir, &ids, &n);
                }
                snprintf(dir, sizeof(dir), "/proc/" PID_FMT "/fd", pids[i]);
                if (r >= 0)
                        r = add_mount_ids_in(dir, &ids, &n);
                snprintf(dir, sizeof(dir), "/proc/" PID_FMT "/map_files", pids[i]);
                if (r >= 0)
                        r = add_mount_ids_in(dir, &ids, &n);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(ids);
        *ret_n = n;
        return 0;
}

int mountinfo_unused_automounts(const char *service, char ***automounts, const uint64_t *used, size_t n_used,
                                char ***ret_unused, char ***skipped_mounts) {
        _cleanup_strv_free_ char **keep = NULL, **unused = NULL, **skip = NULL;

        STRV_FOREACH(a, *automounts) {
                _cleanup_free_ char *text = strdup(service);
                _cleanup_strv_free_ char **below = NULL;
                bool held = false;
                if (!text)
                        return -ENOMEM;
                for (char *p = text, *e; p && *p && !held; p = e) {
                        char mnt[4096];
                        uint64_t id;
                        e = strchr(p, '\n');
                        if (e)
                                *e++ = 0;
                        if (sscanf(p, "%" SCNu64 " %*s %*s %*s %4095s", &id, mnt) != 2 || !path_is_at_or_below(mnt, *a))
                                continue;
                        /* A mount criu could not be told to skip (mountinfo escapes blanks) is
                         * one the service keeps: mounted before its restore, as it was. */
                        held = ids_contain(used, n_used, id) || strchr(mnt, '\\');
                        if (!held && !strv_contains(below, mnt) && strv_extend(&below, mnt) < 0)
                                return -ENOMEM;
                }
                if (held ? strv_extend(&keep, *a) < 0 : strv_extend(&unused, *a) < 0)
                        return -ENOMEM;
                if (!held)
                        STRV_FOREACH(m, below)
                                if (!strv_contains(skip, *m) && strv_extend(&skip, *m) < 0)
                                        return -ENOMEM;
        }
        STRV_FOREACH(m, skip)
                if (!strv_contains(*skipped_mounts, *m) && strv_extend(skipped_mounts, *m) < 0)
                        return -ENOMEM;
        strv_free(*automounts);
        *automounts = TAKE_PTR(keep);
        *ret_unused = TAKE_PTR(unused);
        return 0;
}

int unused_automounts(pid_t root_pid, const pid_t *pids, size_t n_pids, char ***automounts, char ***ret_unused,
                      char ***skipped_mounts) {
        _cleanup_free_ char *service = NULL;
        _cleanup_free_ uint64_t *used = NULL;
        size_t n_used = 0;

        if (!*automounts) {
                *ret_unused = NULL;
                return 0;
        }
        int r = read_mountinfo(root_pid, &service);
        if (r >= 0)
                r = tree_mount_ids(pids, n_pids, &used, &n_used);
        if (r < 0)
                return r;
        return mountinfo_unused_automounts(service, automounts, used, n_used, ret_unused, skipped_mounts);
}

/* In a child of ours, single-threaded as setns() into a mount namespace wants it: clones the
 * machine's mounts at points, then moves them into the namespace. */
static int bind_into_namespace(const char *unit, int ns_fd, int root_fd, char * const *points) {
        size_t n = strv_length(points);
        _cleanup_free_ int *trees = calloc(n, sizeof(int));
        int r = 0;

        if (!trees)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                struct statx sx;
                trees[i] = -EBADF;
                if (statx(AT_FDCWD, points[i], AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW, STATX_TYPE, &sx) < 0 ||
                    !(sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) || !(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
                        log_unit_info(unit, "%s is no mount point in this boot: %s sees the directory there.", points[i], unit);
                        continue;
                }
                /* Not crossing the automount: its autofs mount, the machine's mount behind it
                 * only if it is there already. A clone of a shared mount is its peer. */
                trees[i] = open_tree(AT_FDCWD, points[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE |
                                                          AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW);
                if (trees[i] < 0)
                        r = log_unit_warning_errno(unit, errno, "Failed to clone the machine's mount at %s: %m", points[i]);
        }
        if (setns(ns_fd, CLONE_NEWNS) < 0)
                return log_unit_warning_errno(unit, errno, "Failed to join %s's mount namespace: %m", unit);
        /* Its paths are its root's (RootDirectory=). */
        if (fchdir(root_fd) < 0 || chroot(".") < 0)
                return log_unit_warning_errno(unit, errno, "Failed to enter %s's root directory: %m", unit);
        for (size_t i = 0; i < n; i++) {
                struct statfs sf;
                if (trees[i] < 0)
                        continue;
                bool autofs = fstatfs(trees[i], &sf) >= 0 && sf.f_type == AUTOFS_SUPER_MAGIC;
                if (move_mount(trees[i], "", AT_FDCWD, points[i], MOVE_MOUNT_F_EMPTY_PATH) < 0) {
                        r = log_unit_warning_errno(unit, errno, "Failed to bind the machine's %s into %s's namespace: %m",
                                                   points[i], unit);
                        continue;
                }
                /* What systemd mounts there later (and unmounts) reaches the service, as it did
                 * the namespace systemd made; nothing the service mounts reaches the machine. */
                if (mount(NULL, points[i], NULL, MS_SLAVE | MS_REC, NULL) < 0)
                        r = log_unit_warning_errno(unit, errno, "Failed to make %s in %s's namespace a slave of the machine's: %m",
                                                   points[i], unit);
                else if (autofs)
                        log_unit_debug(unit, "Bound the machine's automount %s into %s's namespace.", points[i], unit);
                else
                        /* Mounted before we came: the service keeps that mount, as a copy criu made
                         * would have been, and the automount's expiry does not take it back. */
                        log_unit_info(unit, "Bound the machine's %s, mounted already, into %s's namespace.", points[i], unit);
        }
        return r;
}

int automounts_bind(const char *unit, pid_t pid, char * const *points) {
        char path[64];

        if (!points || !*points)
                return 0;
        snprintf(path, sizeof(path), "/proc/" PID_FMT "/ns/mnt", pid);
        _cleanup_close_ int ns_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (ns_fd < 0)
                return log_unit_warning_errno(unit, errno, "Failed to open %s's mount namespace: %m", unit);
        snprintf(path, sizeof(path), "/proc/" PID_FMT "/root", pid);
        _cleanup_close_ int root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return log_unit_warning_errno(unit, errno, "Failed to open %s's root directory: %m", unit);

        pid_t child = fork();
        if (child < 0)
                return log_unit_warning_errno(unit, errno, "Failed to fork to bind the automounts into %s's namespace: %m", unit);
        if (child == 0)
                _exit(bind_into_namespace(unit, ns_fd, root_fd, points) < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
        int status;
        while (waitpid(child, &status, 0) < 0)
                if (errno != EINTR)
                        return log_unit_warning_errno(unit, errno, "Failed to wait for the binds into %s's namespace: %m", unit);
        /* The child logged what failed. */
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPROTO;
}
