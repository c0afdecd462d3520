/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

/* Replaces path with data so that after a crash at any point the file holds
 * either the old or the new content, never a mix: a temporary file in the same
 * directory is written, fsynced, renamed over path, and the directory fsynced. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);
int write_string_file_atomic(const char *path, const char *s, mode_t mode);
/* The same, creating the missing directories above path (0755) first: drop-ins. */
int write_string_file_atomic_mkdir(const char *path, const char *s, mode_t mode);

/* Reads a whole file, refusing (-EFBIG) one larger than max_size bytes. The
 * buffer is NUL-terminated (not counted in *ret_size); ret_size may be NULL. */
int read_file_limited(const char *path, size_t max_size, char **ret, size_t *ret_size);
int read_fd_limited(int fd, size_t max_size, char **ret, size_t *ret_size);

int fsync_directory_of(const char *path);

int mkdir_p(const char *path, mode_t mode);
/* Removes a directory tree, never following a symlink (a link is removed,
 * not what it points to); a missing one is not an error. The _at form
 * removes name in the directory dfd. */
int rm_rf(const char *path);
int rm_rf_at(int dfd, const char *name);

/* The names in the directory PATH ("." for DIR_FD itself) below DIR_FD, without "." and "..",
 * sorted (strcmp), so that what is made of them does not depend on the file system's order. A
 * link as PATH is not followed (-ENOTDIR or -ELOOP). An empty directory gives NULL. */
int readdir_names(int dir_fd, const char *path, char ***ret);

/* A new directory DIR/PREFIX.XXXXXX (DIR NULL: /var/tmp, where an OS tree fits, unlike a tmpfs
 * /tmp), mode 0700; its path in *ret. -errno, not logged. */
int mkdtemp_below(const char *dir, const char *prefix, char **ret);

/* read() until size bytes or end of file: the byte count, or -errno. */
ssize_t loop_read(int fd, void *buf, size_t size);
/* write() all of buf, or -errno. */
int loop_write(int fd, const void *buf, size_t size);
/* Copies in to out until in's end of file. */
int copy_bytes(int in, int out);

/* For a temporary directory: removed with what it holds, and freed, when the
 * variable goes out of scope. */
static inline void rm_rf_and_freep(char **p) {
        if (*p) {
                (void) rm_rf(*p);
                free(*p);
        }
}

/* For a temporary file: removed and freed when the variable goes out of
 * scope, unless it was given up (p = mfree(p)) once the file was renamed. */
static inline void unlink_and_freep(char **p) {
        if (*p) {
                (void) unlink(*p);
                free(*p);
        }
}
