/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Directories under /run that a service uses by path and that its unit does not make: the ones
 * its ExecStartPre= or its own start made (tor's /run/tor, where its control socket is bound).
 * /run is a tmpfs, so a new boot lacks them, the restore drop-in runs no ExecStartPre=, and
 * criu cannot bind a socket, enter a working directory or a chroot in a directory that is not
 * there. Recorded at the dump with their mode and owner, created before the restore. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dropin.h"
#include "fs-util.h"
#include "handoff-internal.h"
#include "log.h"
#include "string-util.h"
#include "unix-diag.h"

typedef struct RunDirs {
        pid_t root;
        char **entries; /* "MODE:UID:GID:PATH", a directory after the ones it is in */
        char **paths;   /* the same, PATH only: what is there already */
} RunDirs;

int run_dir_prefixes(const char *dir, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        const char *rest = startswith(dir, "/run/");

        if (!rest || !*rest)
                return -EINVAL;
        for (const char *end = strchr(rest, '/');; end = strchr(end + 1, '/')) {
                _cleanup_free_ char *prefix = end ? strndup(dir, end - dir) : strdup(dir);
                if (!prefix || strv_extend(&l, prefix) < 0)
                        return -ENOMEM;
                if (!end)
                        break;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* Adds DIR and each directory between /run and it, as the tree sees them (through root's
 * /proc/PID/root: a mount namespace of its own sees the machine's /run through a bind). */
static int add_dir(RunDirs *d, const char *dir) {
        _cleanup_strv_free_ char **prefixes = NULL;
        if (run_dir_prefixes(dir, &prefixes) < 0)
                return 0; /* /run itself */
        STRV_FOREACH(p, prefixes) {
                char view[PATH_MAX], entry[PATH_MAX + 64];
                struct stat st;
                if (!run_dir_path_is_valid(*p) ||
                    snprintf(view, sizeof(view), "/proc/" PID_FMT "/root%s", d->root, *p) >= (int) sizeof(view) ||
                    lstat(view, &st) < 0 || !S_ISDIR(st.st_mode))
                        break; /* systemd's, users', or not a directory of its own: nor what is below */
                if (strv_contains(d->paths, *p))
                        continue;
                snprintf(entry, sizeof(entry), "%o:%u:%u:%s", (unsigned) (st.st_mode & 07777), (unsigned) st.st_uid,
                         (unsigned) st.st_gid, *p);
                if (strv_extend(&d->entries, entry) < 0 || strv_extend(&d->paths, *p) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int add_dir_of(RunDirs *d, const char *path, bool parent) {
        if (!startswith(path, "/run/"))
                return 0;
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        if (parent)
                *strrchr(dir, '/') = 0;
        return add_dir(d, dir);
}

int run_dirs_collect(pid_t root, const pid_t *pids, size_t n, char ***ret) {
        RunDirs d = { .root = root };
        UnixSocket *socks = NULL;
        size_t nsocks = 0;
        int r;

        r = unix_sockets_dump(&socks, &nsocks);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
                static const char *const links[] = { "cwd", "root" };
                for (size_t l = 0; l < ELEMENTSOF(links) && r >= 0; l++) {
                        char path[64], target[PATH_MAX];
                        snprintf(path, sizeof(path), "/proc/" PID_FMT "/%s", pids[i], links[l]);
                        ssize_t k = readlink(path, target, sizeof(target) - 1);
                        if (k > 0) {
                                target[k] = 0;
                                r = add_dir_of(&d, target, /* parent= */ false);
                        }
                }
                /* Its bound sockets (listeners): criu binds them to their names again. */
                char fddir[64];
                snprintf(fddir, sizeof(fddir), "/proc/" PID_FMT "/fd", pids[i]);
                DIR *fds = opendir(fddir);
                if (!fds)
                        continue; /* gone meanwhile */
                struct dirent *de;
                while (r >= 0 && (de = readdir(fds))) {
                        unsigned long long ino = fd_socket_inode(dirfd(fds), de->d_name);
                        if (ino == 0)
                                continue;
                        const UnixSocket *sk = unix_sockets_find(socks, nsocks, ino);
                        if (sk && sk->name && sk->name[0] == '/')
                                r = add_dir_of(&d, sk->name, /* parent= */ true);
                }
                closedir(fds);
        }
        unix_sockets_free(socks, nsocks);
        strv_free(d.paths);
        if (r < 0) {
                strv_free(d.entries);
                return r;
        }
        *ret = d.entries;
        return 0;
}

int run_dirs_recreate(int root_fd, const char *unit, char * const *entries) {
        /* In the order recorded: a directory comes after the ones it is in. */
        STRV_FOREACH(e, entries) {
                unsigned mode, uid, gid;
                const char *path = run_entry_parse(*e, &mode, &uid, &gid);
                if (!path)
                        return log_unit_error_errno(unit, EINVAL, "Invalid run directory entry '%s'.", *e);
                _cleanup_free_ char *parent = NULL;
                const char *name = path_split_last(path, &parent);
                if (!parent)
                        return log_oom();
                _cleanup_close_ int parent_fd = open_dir_verified(root_fd, parent);
                if (parent_fd < 0)
                        return log_unit_error_errno(unit, parent_fd, "Refusing to recreate %s: a link, or a directory "
                                                    "another user owns or may write to, is in the way: %m", path);
                if (mkdirat(parent_fd, name, 0700) < 0) {
                        if (errno == EEXIST)
                                continue; /* made again meanwhile (RuntimeDirectory=, tmpfiles.d): not ours to change */
                        return log_unit_error_errno(unit, errno, "Failed to create %s: %m", path);
                }
                _cleanup_close_ int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0 || fchown(fd, uid, gid) < 0 || fchmod(fd, mode) < 0)
                        return log_unit_error_errno(unit, errno, "Failed to give %s its mode and owner: %m", path);
                log_unit_debug(unit, "Created %s (%o, %u:%u) for %s's restore.", path, mode, uid, gid, unit);
        }
        return 0;
}
