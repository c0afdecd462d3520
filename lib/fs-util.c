/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs-util.h"
#include "macro.h"
#include "string-util.h"

int dir_verify_trusted(const struct stat *st) {
        assert(st);

        if (!S_ISDIR(st->st_mode))
                return -ENOTDIR;
        if (st->st_uid != 0 && st->st_uid != geteuid())
                return -EPERM;
        /* Without the sticky bit, whoever may write to it may swap its entries for links. */
        if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX))
                return -EPERM;
        return 0;
}

/* O_NOFOLLOW makes a link ELOOP, but O_DIRECTORY may answer ENOTDIR first: tell them apart. */
static int openat_dir_nofollow(int dir_fd, const char *name) {
        int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
                return fd;
        int r = -errno;
        struct stat st;
        if (IN_SET(r, -ELOOP, -ENOTDIR) && fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                return S_ISLNK(st.st_mode) ? -ELOOP : -ENOTDIR;
        return r;
}

/* ret_st may be NULL. */
static int open_trusted_at(int dir_fd, const char *name, struct stat *ret_st) {
        _cleanup_close_ int fd = openat_dir_nofollow(dir_fd, name);
        struct stat st;

        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        int r = dir_verify_trusted(&st);
        if (r < 0)
                return r;
        if (ret_st)
                *ret_st = st;
        return TAKE_FD(fd);
}

static int reopen_root(int root_fd) {
        int fd = root_fd == AT_FDCWD ? open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                                     : openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/* The next component of *p (advanced past it) into name; 0 at the end, -EINVAL for "..". */
static int next_component(const char **p, char **ret) {
        for (;;) {
                *p += strspn(*p, "/");
                if (**p == 0)
                        return 0;
                size_t n = strcspn(*p, "/");
                const char *c = *p;
                *p += n;
                if (n == 1 && c[0] == '.')
                        continue;
                if (n == 2 && c[0] == '.' && c[1] == '.')
                        return -EINVAL;
                *ret = strndup(c, n);
                return *ret ? 1 : -ENOMEM;
        }
}

static bool is_last_component(const char *p) {
        const char *rest = p;
        _cleanup_free_ char *next = NULL;
        return next_component(&rest, &next) == 0;
}

/* strict: one there already must be no more writable by others than MODE. */
static int mkdirat_open(int dir_fd, const char *name, mode_t mode, bool strict) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        bool created = mkdirat(dir_fd, name, mode & 07777) >= 0;
        if (!created && errno != EEXIST)
                return -errno;
        /* Created or not, it is opened without following a link and checked: in a sticky directory
         * nobody can swap ours, elsewhere whoever could is refused on the way here already. */
        fd = open_trusted_at(dir_fd, name, &st);
        if (fd < 0)
                return fd;
        if (!created)
                return strict && (st.st_mode & ~mode & (S_IWGRP | S_IWOTH)) ? -EPERM : TAKE_FD(fd);
        /* On the fd: the umask cut the mode of mkdirat(), and a path could lead elsewhere. */
        if (fchmod(fd, mode & 07777) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* open_dir_verified(), and with create mkdir_p_verified(). */
static int walk_verified(int root_fd, const char *path, bool create, mode_t mode) {
        _cleanup_close_ int fd = -EBADF;
        bool any = false;
        int r;

        assert(root_fd >= 0 || root_fd == AT_FDCWD);
        assert(path);

        fd = reopen_root(root_fd);
        if (fd < 0)
                return fd;
        for (const char *p = path;;) {
                _cleanup_free_ char *name = NULL;
                r = next_component(&p, &name);
                if (r < 0)
                        return r;
                if (r == 0)
                        return create && !any ? -EINVAL : TAKE_FD(fd);
                bool last = is_last_component(p);
                int next = create ? mkdirat_open(fd, name, last ? mode : 0755, /* strict= */ last)
                                  : open_trusted_at(fd, name, NULL);
                if (next < 0)
                        return next;
                safe_close(fd);
                fd = next;
                any = true;
        }
}

int open_dir_verified(int root_fd, const char *path) {
        return walk_verified(root_fd, path, /* create= */ false, 0);
}

int mkdirat_verified(int dir_fd, const char *name, mode_t mode) {
        assert(dir_fd >= 0 || dir_fd == AT_FDCWD);
        assert(name);

        if (isempty(name) || streq(name, ".") || streq(name, "..") || strchr(name, '/'))
                return -EINVAL;
        return mkdirat_open(dir_fd, name, mode, /* strict= */ true);
}

int mkdir_p_verified(int root_fd, const char *path, mode_t mode) {
        return walk_verified(root_fd, path, /* create= */ true, mode);
}

bool path_is_at_or_below(const char *path, const char *prefix) {
        const char *rest = startswith(path, prefix);
        return rest && (*rest == 0 || *rest == '/');
}

const char *path_split_last(const char *path, char **ret_parent) {
        assert(path);
        assert(ret_parent);

        const char *slash = strrchr(path, '/');
        *ret_parent = !slash ? strdup(".") : slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
        return slash ? slash + 1 : path;
}

int openat_beneath(int root_fd, const char *path, int flags, uint64_t resolve) {
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | resolve,
        };
        /* With RESOLVE_BENEATH the kernel refuses a walk during which any rename or mount
         * happened anywhere on the machine (EAGAIN, "the caller should retry"): a busy machine
         * failed a layer's file so (test-oci, beside the other tests' mounts). */
        for (unsigned attempt = 0;; attempt++) {
                long fd = syscall(SYS_openat2, root_fd, isempty(path) ? "." : path, &how, sizeof(how));
                if (fd >= 0)
                        return (int) fd;
                if (errno != EAGAIN || attempt >= 64)
                        return -errno;
        }
}

int mkdir_p_beneath(int root_fd, const char *path, mode_t mode, uint64_t resolve) {
        int fd = openat_beneath(root_fd, path, O_PATH | O_DIRECTORY, resolve);
        if (fd != -ENOENT || isempty(path))
                return fd;

        _cleanup_free_ char *up = NULL;
        const char *name = path_split_last(path, &up);
        if (!up)
                return -ENOMEM;
        _cleanup_close_ int up_fd = mkdir_p_beneath(root_fd, streq(up, ".") ? "" : up, mode, resolve);
        if (up_fd < 0)
                return up_fd;
        if (mkdirat(up_fd, name, mode) < 0 && errno != EEXIST)
                return -errno;
        return openat_beneath(root_fd, path, O_PATH | O_DIRECTORY, resolve);
}

int readlinkat_malloc(int dir_fd, const char *name, char **ret) {
        _cleanup_free_ char *buf = malloc(PATH_MAX);
        if (!buf)
                return -ENOMEM;
        ssize_t n = readlinkat(dir_fd, name, buf, PATH_MAX);
        if (n < 0)
                return -errno;
        if (n >= PATH_MAX)
                return -ENAMETOOLONG;
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}
