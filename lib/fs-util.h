/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Directories in places other users can write to (/tmp, /var/tmp, /dev/shm, /run/user), walked and
 * created by a root process without following a link or trusting a directory someone else could
 * have planted: every step is an openat()/mkdirat() relative to a directory already verified, with
 * O_NOFOLLOW, and modes are set with fchmod() on what was opened, never by path.
 *
 * A directory is trusted when it is owned by root (or by the caller itself, so that the tests run
 * unprivileged too) and nobody else can change its entries: not writable by group or others, or
 * sticky (as /tmp is: others cannot then rename or remove what root put there).
 *
 * open_dir_verified(), mkdirat_verified() and mkdir_p_verified() return a directory fd (O_CLOEXEC)
 * or a negative errno:
 *   -ELOOP   a path component is a symbolic link
 *   -ENOTDIR a path component is not a directory
 *   -EPERM   a directory is owned by another user, or writable by others where it must not be
 *   -EINVAL  the path has a ".." component, or is empty where a name is needed */

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* 0 when a directory with this stat may be walked through (see above), else -ENOTDIR or -EPERM. */
int dir_verify_trusted(const struct stat *st);

/* ROOT_FD is where PATHs start, whether they begin with "/" or not: a directory the caller opened
 * (a test's temporary root), or AT_FDCWD for "/". It is taken as it is, not verified. */

/* Opens the directory PATH below ROOT_FD one component at a time, each one trusted. */
int open_dir_verified(int root_fd, const char *path);

/* Creates the directory NAME (one component) in DIR_FD with MODE, set by fchmod() on its fd (no
 * umask), or opens the one there when it is trusted and no more writable by group or others than
 * MODE, leaving its mode as it is. */
int mkdirat_verified(int dir_fd, const char *name, mode_t mode);

/* mkdir -p below ROOT_FD: directories on the way must be trusted, missing ones are created 0755;
 * the last one as mkdirat_verified() makes it. */
int mkdir_p_verified(int root_fd, const char *path, mode_t mode);

/* Trees that hold untrusted content (an OCI image's layers, unpacked by a publisher as root): PATH
 * is resolved with openat2() below ROOT_FD and never leaves it (RESOLVE_BENEATH: an absolute link,
 * or one with more ".." than depth, fails with -EXDEV), nor follows a magic link; RESOLVE adds
 * flags such as RESOLVE_NO_SYMLINKS (-ELOOP at any link). "" is ROOT_FD itself. Returns an fd
 * opened with FLAGS | O_CLOEXEC, or a negative errno. */
int openat_beneath(int root_fd, const char *path, int flags, uint64_t resolve);

/* The directory PATH below ROOT_FD, resolved as openat_beneath() does, with its missing
 * components created (MODE, as the umask leaves it). An O_PATH fd, or a negative errno. */
int mkdir_p_beneath(int root_fd, const char *path, mode_t mode, uint64_t resolve);

/* The target of the link NAME in DIR_FD ("" with an O_PATH fd of the link itself), NUL-terminated;
 * -ENAMETOOLONG for one of PATH_MAX bytes or more. */
int readlinkat_malloc(int dir_fd, const char *name, char **ret);

/* Whether PATH is PREFIX or a path below it: "/efi/x" is below "/efi", "/efix" is not. */
bool path_is_at_or_below(const char *path, const char *prefix);

/* The last component of PATH; the directory it is in goes to *ret_parent, as dirname() has it
 * ("/" for "/x", "." for "x"), or NULL when out of memory. */
const char *path_split_last(const char *path, char **ret_parent);
