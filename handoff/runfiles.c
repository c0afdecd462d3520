/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small files a service keeps below /run: its PID file (nginx's /run/nginx.pid, which its
 * ExecReload= and ExecStop= read), the files in the directories rundirs.c records (tor's
 * control.authcookie, PostgreSQL's socket lock file). CRIU carries only the files a process has
 * open, and /run is a tmpfs: a new boot would lack them, and a tool that authenticates with tor's
 * cookie or signals nginx by its PID file would fail against the restored daemon. Their contents
 * are saved with the images at the dump and written again before the restore (CRIU opens again
 * those the service has open); if the restore fails they go again: the PIDs in them would be
 * stale, and a fresh start must not find a lock file naming a PID someone else has now. */

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
#include "fileio.h"
#include "fs-util.h"
#include "handoff-internal.h"
#include "log.h"
#include "string-util.h"

/* Bounds, so that a service cannot make the dump copy its /run wholesale: state files are small. */
#define RUN_FILE_MAX_BYTES (64U * 1024U)
#define RUN_FILES_MAX 32U

typedef struct RunFiles {
        int root_fd;    /* the tree's root, as it sees it */
        int saved_fd;   /* RUN_FILES_DIR in the images directory */
        char **entries; /* "MODE:UID:GID:PATH", the content in RUN_FILES_DIR/INDEX */
} RunFiles;

/* Saves PATH if it is a small regular file (a link, a socket, a FIFO or a big file is left). */
static int save_one(RunFiles *f, const char *path) {
        char name[32], entry[PATH_MAX + 64];
        _cleanup_free_ char *data = NULL;
        size_t size = 0;
        struct stat st;
        unsigned m, u, g;
        int r;

        if (strv_length(f->entries) >= RUN_FILES_MAX || !run_dir_path_is_valid(path))
                return 0;
        STRV_FOREACH(e, f->entries)
                if (streq_ptr(run_entry_parse(*e, &m, &u, &g), path))
                        return 0;
        _cleanup_close_ int fd = openat(f->root_fd, path + 1, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return 0; /* gone, a link, or not ours to read: nothing to carry */
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t) RUN_FILE_MAX_BYTES)
                return 0;
        r = read_fd_limited(fd, RUN_FILE_MAX_BYTES, &data, &size);
        if (r == -EFBIG)
                return 0;
        if (r < 0)
                return r;

        snprintf(name, sizeof(name), "%zu", strv_length(f->entries));
        _cleanup_close_ int out = openat(f->saved_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
                return -errno;
        r = loop_write(out, data, size);
        if (r < 0)
                return r;
        /* Never a set-ID bit: the restore writes these as root. */
        snprintf(entry, sizeof(entry), "%o:%u:%u:%s", (unsigned) (st.st_mode & 0777), (unsigned) st.st_uid,
                 (unsigned) st.st_gid, path);
        return strv_extend(&f->entries, entry);
}

int run_files_save(int root_fd, char * const *run_dirs, const char *pid_file, const char *images_dir, char ***ret) {
        _cleanup_close_ int images_fd = open(images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        RunFiles f = { .root_fd = root_fd, .saved_fd = -EBADF };
        int r = 0;

        if (images_fd < 0)
                return -errno;
        (void) rm_rf_at(images_fd, RUN_FILES_DIR); /* a dump that was retried */
        if (mkdirat(images_fd, RUN_FILES_DIR, 0700) < 0)
                return -errno;
        f.saved_fd = openat(images_fd, RUN_FILES_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (f.saved_fd < 0)
                return -errno;

        if (pid_file)
                r = save_one(&f, pid_file);
        STRV_FOREACH(e, run_dirs) {
                if (r < 0)
                        break;
                unsigned m, u, g;
                const char *dir = run_entry_parse(*e, &m, &u, &g);
                if (!dir)
                        continue;
                int dfd = openat(root_fd, dir + 1, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (dfd < 0)
                        continue;
                DIR *d = fdopendir(dfd);
                if (!d) {
                        (void) close(dfd);
                        continue;
                }
                struct dirent *de;
                while (r >= 0 && (de = readdir(d))) {
                        if (de->d_name[0] == '.' && (!de->d_name[1] || streq(de->d_name, "..")))
                                continue;
                        if (!IN_SET(de->d_type, DT_REG, DT_UNKNOWN))
                                continue;
                        _cleanup_free_ char *path = strprintf("%s/%s", dir, de->d_name);
                        r = path ? save_one(&f, path) : -ENOMEM;
                }
                closedir(d);
        }
        (void) close(f.saved_fd);
        if (r < 0) {
                strv_free(f.entries);
                return r;
        }
        *ret = f.entries;
        return 0;
}

/* The directory PATH's file goes in: trusted as fs-util.h has it, or the file's own owner's and
 * not writable by others (PostgreSQL's /run/postgresql, 2775 postgres:postgres, for its files). */
static int open_parent(int root_fd, const char *parent, uid_t uid) {
        _cleanup_free_ char *grand = NULL;
        const char *name = path_split_last(parent, &grand);
        struct stat st;

        if (!grand)
                return -ENOMEM;
        _cleanup_close_ int gfd = open_dir_verified(root_fd, grand);
        if (gfd < 0)
                return gfd;
        _cleanup_close_ int fd = openat(gfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (dir_verify_trusted(&st) < 0 && (st.st_uid != uid || (st.st_mode & S_IWOTH)))
                return -EPERM;
        return TAKE_FD(fd);
}

int run_files_restore(int root_fd, const char *unit, const char *images_dir, char * const *entries, char ***ret_written) {
        _cleanup_free_ char *saved = strprintf("%s/" RUN_FILES_DIR, images_dir);
        _cleanup_close_ int saved_fd = saved ? open(saved, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -EBADF;
        _cleanup_strv_free_ char **written = NULL;
        size_t i = 0;

        STRV_FOREACH(e, entries) {
                unsigned mode, uid, gid;
                char name[32];
                int r;

                snprintf(name, sizeof(name), "%zu", i++);
                const char *path = run_entry_parse(*e, &mode, &uid, &gid);
                if (!path || saved_fd < 0)
                        continue; /* checkpoint_load() let no such entry through */
                _cleanup_free_ char *parent = NULL, *data = NULL;
                const char *file = path_split_last(path, &parent);
                size_t size = 0;
                if (!parent)
                        return log_oom();
                _cleanup_close_ int in = openat(saved_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                r = in < 0 ? -errno : read_fd_limited(in, RUN_FILE_MAX_BYTES, &data, &size);
                if (r < 0) {
                        log_unit_warning_errno(unit, r, "Cannot read the saved %s, %s goes on without it: %m", path, unit);
                        continue;
                }
                _cleanup_close_ int dfd = open_parent(root_fd, parent, uid);
                if (dfd < 0) {
                        log_unit_warning_errno(unit, dfd, "Not writing %s again: a link, or a directory another user "
                                               "owns or may write to, is in the way: %m", path);
                        continue;
                }
                _cleanup_close_ int out = openat(dfd, file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (out < 0) {
                        if (errno != EEXIST) /* the same boot, or made again meanwhile: not ours to change */
                                log_unit_warning_errno(unit, errno, "Cannot write %s again: %m", path);
                        continue;
                }
                if (fchown(out, uid, gid) < 0 || fchmod(out, mode & 0777) < 0)
                        r = -errno;
                else
                        r = loop_write(out, data, size);
                if (r < 0) {
                        log_unit_warning_errno(unit, r, "Cannot write %s again: %m", path);
                        (void) unlinkat(dfd, file, 0);
                        continue;
                }
                if (strv_extend(&written, *e) < 0)
                        return log_oom();
                log_unit_debug(unit, "Wrote %s (%o, %u:%u, %zu bytes) again for %s.", path, mode, uid, gid, size, unit);
        }
        *ret_written = TAKE_PTR(written);
        return 0;
}

void run_files_remove(int root_fd, const char *unit, char * const *written) {
        STRV_FOREACH(e, written) {
                unsigned mode, uid, gid;
                const char *path = run_entry_parse(*e, &mode, &uid, &gid);
                if (!path)
                        continue;
                _cleanup_free_ char *parent = NULL;
                const char *file = path_split_last(path, &parent);
                if (!parent)
                        return;
                _cleanup_close_ int dfd = open_parent(root_fd, parent, uid);
                if (dfd >= 0 && unlinkat(dfd, file, 0) < 0 && errno != ENOENT)
                        log_unit_warning_errno(unit, errno, "Cannot remove %s, written for the failed restore: %m", path);
        }
}
