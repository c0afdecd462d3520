/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A service's mounts: its PrivateTmp= directories (systemd deletes them with the dumped
 * unit, the restore recreates them), its own mount namespace and the runtime mounts that
 * propagated into it, criu's leftover mounts, and the machine's namespace the restore
 * runs in. */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "fs-util.h"
#include "handoff-internal.h"
#include "log.h"
#include "string-util.h"

/* PrivateTmp= directories and the unit's propagation directory: the
 * service's mount namespace binds them, systemd deletes them when the dump
 * ends the service, and criu needs them to rebuild that namespace. */
int private_tmp_dirs(const char *unit, char ***ret) {
        static const char * const bases[] = { "/tmp", "/var/tmp" };
        _cleanup_strv_free_ char **dirs = NULL;
        _cleanup_free_ char *middle = NULL, *propagate = NULL;

        if (asprintf(&middle, "-%s-", unit) < 0 || asprintf(&propagate, "/run/systemd/propagate/%s", unit) < 0)
                return -ENOMEM;
        if (access(propagate, F_OK) >= 0 && strv_extend(&dirs, propagate) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(bases); i++) {
                DIR *d = opendir(bases[i]);
                if (!d)
                        continue;
                struct dirent *de;
                int r = 0;
                while ((de = readdir(d)))
                        if (startswith(de->d_name, "systemd-private-") && strstr(de->d_name, middle)) {
                                char *p;
                                if (asprintf(&p, "%s/%s", bases[i], de->d_name) < 0 || strv_push(&dirs, p) < 0) {
                                        r = -ENOMEM;
                                        break;
                                }
                        }
                closedir(d);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(dirs);
        return 0;
}

int recreate_tmp_dirs(int root_fd, const char *unit, char * const *dirs) {
        STRV_FOREACH(d, dirs) {
                _cleanup_close_ int parent_fd = -EBADF, fd = -EBADF, tmp_fd = -EBADF;
                _cleanup_free_ char *parent = NULL;
                /* Every user can write to /tmp and /var/tmp, and plant a link or a directory of
                 * their own under the name we are about to use (over a kexec, at leisure). */
                int r;
                if (startswith(*d, "/run/systemd/propagate/"))
                        r = fd = mkdir_p_verified(root_fd, *d, 0700);
                else {
                        const char *name = path_split_last(*d, &parent);
                        if (!parent)
                                return log_oom();
                        parent_fd = open_dir_verified(root_fd, parent);
                        fd = parent_fd < 0 ? parent_fd : mkdirat_verified(parent_fd, name, 0700);
                        r = tmp_fd = fd < 0 ? fd : mkdirat_verified(fd, "tmp", 01777);
                }
                if (r < 0)
                        return log_unit_error_errno(unit, r, "Refusing to recreate %s: a link, or a directory "
                                                    "another user owns or may write to, is in the way: %m", *d);
        }
        return 0;
}

/* Whether pid lives in a mount namespace other than ours (PrivateTmp=,
 * ProtectSystem= and friends give a service one). */
bool has_own_mount_namespace(pid_t pid) {
        return pid_has_own_namespace(pid, "mnt");
}

/* Container runtimes' mounts, made in the machine's namespace after a service started, that
 * propagate into the service's namespace: podman's network namespace files (/run/netns, an nsfs
 * bind on a file each) and its storage (the graph root's bind on itself, each container's shm
 * tmpfs in its userdata). A mount point of ours among them would be a stray in podman's
 * storage. */
static const char * const container_mount_prefixes[] = {
        "/run/netns",
        "/run/containers/storage",
        "/var/lib/containers/storage",
};

/* A service's mount namespace receives the mounts that other units, users and containers make
 * later: /run/credentials/OTHER.service, /run/user/UID, podman's /run/netns/… and storage. They
 * propagate in, usually under systemd's inaccessible overmount of their parent, where the service
 * cannot reach them. criu would dump them as external binds of the machine's same paths, which a
 * new boot lacks until their owner comes back, at a time the service's restore cannot wait for
 * ("mnt-v2: Can't stat mountpoint …"); and with an empty directory in their place, a mount that
 * was shared fails criu's copy of its sharing group ("Failed to copy sharing from …: Invalid
 * argument"). So they are left out of the dump (criu --skip-mnt), with everything below them:
 * the service never saw anything there, and the restore needs no mount point of ours in another
 * unit's, a user's or podman's directories. A service that has a file open in one still fails
 * its dump, so a dry run says so. */
int mountinfo_foreign_mounts(const char *mountinfo, const char *unit, char ***ret_skipped) {
        _cleanup_free_ char *text = strdup(mountinfo), *own = strprintf("/run/credentials/%s", unit);
        _cleanup_strv_free_ char **skipped = NULL;

        if (!text || !own)
                return -ENOMEM;
        for (char *p = text, *e; p && *p; p = e) {
                char mnt[4096];
                e = strchr(p, '\n');
                if (e)
                        *e++ = 0;
                if (sscanf(p, "%*s %*s %*s %*s %4095s", mnt) != 1)
                        continue;
                bool foreign = (startswith(mnt, "/run/credentials/") && !path_is_at_or_below(mnt, own)) ||
                               startswith(mnt, "/run/user/");
                for (size_t i = 0; i < ELEMENTSOF(container_mount_prefixes); i++)
                        foreign = foreign || path_is_at_or_below(mnt, container_mount_prefixes[i]);
                /* mountinfo escapes blanks (\040), criu compares unescaped paths: never ours. */
                if (foreign && !strchr(mnt, '\\') && !strv_contains(skipped, mnt) && strv_extend(&skipped, mnt) < 0)
                        return -ENOMEM;
        }
        *ret_skipped = TAKE_PTR(skipped);
        return 0;
}

int read_mountinfo(pid_t pid, char **ret) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "/proc/" PID_FMT "/mountinfo", pid) < 0)
                return -ENOMEM;
        return read_file_limited(path, 4U << 20, ret, NULL);
}

int foreign_runtime_mounts(pid_t pid, const char *unit, char ***ret_skipped) {
        _cleanup_free_ char *text = NULL;

        int r = read_mountinfo(pid, &text);
        if (r < 0)
                return r;
        return mountinfo_foreign_mounts(text, unit, ret_skipped);
}

void create_runtime_mount_points(int root_fd, const char *unit, char * const *points) {
        STRV_FOREACH(p, points) {
                _cleanup_free_ char *parent = NULL;
                const char *name = path_split_last(*p, &parent);
                if (!parent) {
                        log_oom();
                        return;
                }
                /* /run/user/UID may be the user's own already: it is only created, never changed. */
                _cleanup_close_ int fd = mkdir_p_verified(root_fd, parent, 0755);
                if (fd < 0)
                        log_unit_warning_errno(unit, fd, "Refusing to create %s for a bind in %s's namespace: %m",
                                               *p, unit);
                else if (mkdirat(fd, name, 0700) >= 0)
                        log_unit_debug(unit, "Created %s for a bind in %s's namespace.", *p, unit);
                else if (errno != EEXIST)
                        log_unit_warning_errno(unit, errno, "Failed to create %s for a bind in %s's namespace: %m",
                                               *p, unit);
        }
}

/* After a failed restore criu may leave its temporary mount namespace
 * roots mounted; they would propagate into services started later and
 * break their restores. */
void umount_criu_leftovers(void) {
        _cleanup_free_ char *text = NULL;
        if (read_file_limited("/proc/self/mountinfo", 4U << 20, &text, NULL) < 0)
                return;
        for (char *p = text, *e; p && *p; p = e) {
                char mnt[4096];
                e = strchr(p, '\n');
                if (e)
                        *e++ = 0;
                if (sscanf(p, "%*s %*s %*s %*s %4095s", mnt) == 1 && startswith(mnt, "/tmp/.criu.mntns."))
                        if (umount2(mnt, MNT_DETACH | UMOUNT_NOFOLLOW) >= 0)
                                log_info("Unmounted %s, left by criu.", mnt);
        }
}

/* systemd 257 runs even a '+' command of a sandboxed unit in a mount namespace of its own,
 * with /run/credentials and /run/user made inaccessible. The dump saw the machine's mounts,
 * and criu finds the external ones again by the machine's paths: restore from there. */
int join_machine_mount_namespace(const char *unit) {
        _cleanup_close_ int fd = open("/proc/1/ns/mnt", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return log_unit_error_errno(unit, errno, "Failed to open the machine's mount namespace: %m");
        if (setns(fd, CLONE_NEWNS) < 0)
                return log_unit_error_errno(unit, errno, "Failed to join the machine's mount namespace: %m");
        return 0;
}
