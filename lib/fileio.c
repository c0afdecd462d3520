/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "string-util.h"

int fsync_directory_of(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int fd = -EBADF;

        if (!copy)
                return -ENOMEM;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return RET_NERRNO(fsync(fd));
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode) {
        _cleanup_free_ char *copy = NULL, *template = NULL;
        _cleanup_(unlink_and_freep) char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        const char *base = basename(copy);
        char *slash = strrchr(copy, '/');
        if (slash)
                *slash = 0;
        template = strprintf("%s/.#%s.XXXXXX", slash ? copy : ".", base);
        if (!template)
                return -ENOMEM;

        fd = mkostemp(template, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        tmp = TAKE_PTR(template); /* from here on, removed again unless renamed */

        if (fchmod(fd, mode) < 0)
                return -errno;
        r = loop_write(fd, data, size);
        if (r < 0)
                return r;
        if (fsync(fd) < 0 || rename(tmp, path) < 0)
                return -errno;
        tmp = mfree(tmp); /* it is path now */
        return fsync_directory_of(path);
}

int write_string_file_atomic(const char *path, const char *s, mode_t mode) {
        return write_file_atomic(path, s, strlen(s), mode);
}

int write_string_file_atomic_mkdir(const char *path, const char *s, mode_t mode) {
        const char *slash = strrchr(path, '/');
        if (slash && slash != path) {
                _cleanup_free_ char *dir = strndup(path, slash - path);
                if (!dir)
                        return -ENOMEM;
                int r = mkdir_p(dir, 0755);
                if (r < 0)
                        return r;
        }
        return write_string_file_atomic(path, s, mode);
}

int read_fd_limited(int fd, size_t max_size, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;

        for (;;) {
                if (size + 1 >= allocated) {
                        /* Allow one byte past the limit, so that a too-large file is noticed. */
                        if (allocated > max_size + 1)
                                return -EFBIG;
                        size_t n = MIN(MAX(allocated * 2, (size_t) 4096), max_size + 2);
                        char *t = realloc(buf, n);
                        if (!t)
                                return -ENOMEM;
                        buf = t;
                        allocated = n;
                }
                ssize_t k = read(fd, buf + size, allocated - size - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                size += (size_t) k;
                if (size > max_size)
                        return -EFBIG;
        }

        if (!buf) {
                buf = malloc(1);
                if (!buf)
                        return -ENOMEM;
        }
        buf[size] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

int read_file_limited(const char *path, size_t max_size, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        return read_fd_limited(fd, max_size, ret, ret_size);
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;

        for (char *s = p + 1;; s++) {
                if (*s != '/' && *s != 0)
                        continue;
                char c = *s;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = c;
                if (c == 0)
                        break;
        }

        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

#define COPY_BUFFER_SIZE (128U * 1024U)

static int rm_tree_at(int parent_fd, const char *name) {
        _cleanup_close_ int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOTDIR || errno == ELOOP)
                        return RET_NERRNO(unlinkat(parent_fd, name, 0));
                return -errno;
        }

        DIR *d = fdopendir(fd);
        if (!d)
                return -errno;
        fd = -EBADF; /* now owned by d */

        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                int q = rm_tree_at(dirfd(d), de->d_name);
                if (q < 0 && q != -ENOENT && r == 0) /* gone meanwhile: as good as removed */
                        r = q;
        }
        closedir(d);
        if (r < 0)
                return r;
        return RET_NERRNO(unlinkat(parent_fd, name, AT_REMOVEDIR));
}

int rm_rf_at(int dfd, const char *name) {
        int r = rm_tree_at(dfd, name);
        return r == -ENOENT ? 0 : r;
}

int rm_rf(const char *path) {
        return rm_rf_at(AT_FDCWD, path);
}

int readdir_names(int dir_fd, const char *path, char ***ret) {
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_close_ int fd = openat(dir_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d)
                return -errno;
        fd = -EBADF; /* owned by d */

        int r = 0;
        struct dirent *de;
        while ((errno = 0, de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..") && strv_extend(&names, de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
        if (r == 0 && errno > 0)
                r = -errno;
        closedir(d);
        if (r < 0)
                return r;
        strv_sort(names);
        *ret = TAKE_PTR(names);
        return 0;
}

int mkdtemp_below(const char *dir, const char *prefix, char **ret) {
        _cleanup_free_ char *path = strprintf("%s/%s.XXXXXX", dir ?: "/var/tmp", prefix);
        if (!path)
                return -ENOMEM;
        if (!mkdtemp(path))
                return -errno;
        *ret = TAKE_PTR(path);
        return 0;
}

ssize_t loop_read(int fd, void *buf, size_t size) {
        size_t n = 0;
        while (n < size) {
                ssize_t k = read(fd, (char *) buf + n, size - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        return (ssize_t) n;
}

int loop_write(int fd, const void *data, size_t size) {
        const char *p = data;

        while (size > 0) {
                ssize_t k = write(fd, p, size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                size -= (size_t) k;
        }
        return 0;
}

int copy_bytes(int in, int out) {
        _cleanup_free_ char *buf = malloc(COPY_BUFFER_SIZE);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = loop_read(in, buf, COPY_BUFFER_SIZE);
                if (n <= 0)
                        return (int) n;
                int r = loop_write(out, buf, (size_t) n);
                if (r < 0)
                        return r;
        }
}
