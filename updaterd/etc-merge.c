/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "etc-merge.h"
#include "fileio.h"
#include "fs-util.h"
#include "log.h"
#include "string-util.h"

#define COMPARE_CHUNK (64U * 1024U)

typedef struct MergeContext {
        EtcMergeReport *report;
        char *failed_path; /* where the first error happened, logged once at the top */
} MergeContext;

void etc_merge_report_done(EtcMergeReport *r) {
        if (!r)
                return;
        strv_free(r->conflicts);
        *r = (EtcMergeReport) {};
}

/* "prefix/name", or "name" at the top. */
static char *path_child(const char *prefix, const char *name) {
        char *p;
        if (asprintf(&p, "%s%s%s", strempty(prefix), prefix ? "/" : "", name) < 0)
                return NULL;
        return p;
}

/* 0 and *st, -ENOENT when absent (or dfd < 0: a tree without this directory). */
static int stat_at(int dfd, const char *name, struct stat *st) {
        if (dfd < 0)
                return -ENOENT;
        return RET_NERRNO(fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW));
}

static int open_dir_at(int dfd, const char *name) {
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/* Entry names of a directory, sorted (so reports come out in a stable order). */
static int list_names(int dfd, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int fd, r;

        /* A fresh fd: a dup would share (and move) the offset of dfd. */
        fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -errno;
        }
        while ((errno = 0, de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                r = strv_extend(&l, de->d_name);
                if (r < 0)
                        return r;
        }
        if (errno != 0)
                return -errno;
        strv_sort(l);
        *ret = TAKE_PTR(l);
        return 0;
}

static bool meta_equal(const struct stat *a, const struct stat *b) {
        if (a->st_mode != b->st_mode || a->st_uid != b->st_uid || a->st_gid != b->st_gid)
                return false;
        if (S_ISCHR(a->st_mode) || S_ISBLK(a->st_mode))
                return a->st_rdev == b->st_rdev;
        return true;
}

static int file_content_equal(int a_dfd, int b_dfd, const char *name) {
        _cleanup_close_ int a = -EBADF, b = -EBADF;
        _cleanup_free_ char *ba = malloc(COMPARE_CHUNK), *bb = malloc(COMPARE_CHUNK);

        if (!ba || !bb)
                return -ENOMEM;
        a = openat(a_dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (a < 0)
                return -errno;
        b = openat(b_dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (b < 0)
                return -errno;
        for (;;) {
                ssize_t na = loop_read(a, ba, COMPARE_CHUNK), nb = loop_read(b, bb, COMPARE_CHUNK);
                if (na < 0)
                        return (int) na;
                if (nb < 0)
                        return (int) nb;
                if (na != nb || memcmp(ba, bb, (size_t) na) != 0)
                        return 0;
                if (na == 0)
                        return 1;
        }
}

static int tree_equal(int a_fd, int b_fd);

/* 1 when name is the same in both directories (both absent counts as the same),
 * 0 when it differs in type, metadata, content, link target or (for directories)
 * anything below. A directory fd < 0 stands for a missing directory. */
static int entries_equal(int a_dfd, int b_dfd, const char *name) {
        struct stat sa, sb;
        int ra, rb;

        ra = stat_at(a_dfd, name, &sa);
        if (ra < 0 && ra != -ENOENT)
                return ra;
        rb = stat_at(b_dfd, name, &sb);
        if (rb < 0 && rb != -ENOENT)
                return rb;
        if (ra == -ENOENT || rb == -ENOENT)
                return ra == rb;
        if (!meta_equal(&sa, &sb))
                return 0;

        if (S_ISREG(sa.st_mode)) {
                if (sa.st_size != sb.st_size)
                        return 0;
                return file_content_equal(a_dfd, b_dfd, name);
        }
        if (S_ISLNK(sa.st_mode)) {
                _cleanup_free_ char *la = NULL, *lb = NULL;
                int r;
                if ((r = readlinkat_malloc(a_dfd, name, &la)) < 0 || (r = readlinkat_malloc(b_dfd, name, &lb)) < 0)
                        return r;
                return streq(la, lb);
        }
        if (S_ISDIR(sa.st_mode)) {
                _cleanup_close_ int a = open_dir_at(a_dfd, name), b = open_dir_at(b_dfd, name);
                if (a < 0)
                        return a;
                if (b < 0)
                        return b;
                return tree_equal(a, b);
        }
        return 1; /* fifos, devices, sockets: metadata says it all */
}

static int tree_equal(int a_fd, int b_fd) {
        _cleanup_strv_free_ char **na = NULL, **nb = NULL;
        int r;

        if ((r = list_names(a_fd, &na)) < 0 || (r = list_names(b_fd, &nb)) < 0)
                return r;
        if (strv_length(na) != strv_length(nb))
                return 0;
        for (size_t i = 0; na && na[i]; i++) {
                if (!streq(na[i], nb[i]))
                        return 0;
                r = entries_equal(a_fd, b_fd, na[i]);
                if (r <= 0)
                        return r;
        }
        return 1;
}


/* Owner before mode: chown clears set-uid/gid bits. */
static int apply_meta_fd(int fd, const struct stat *st) {
        struct timespec ts[2] = { st->st_atim, st->st_mtim };

        if (fchown(fd, st->st_uid, st->st_gid) < 0 || fchmod(fd, st->st_mode & 07777) < 0)
                return -errno;
        (void) futimens(fd, ts);
        return 0;
}

static int copy_entry(int src_dfd, int dst_dfd, const char *name);

static int copy_dir_contents(int src_fd, int dst_fd) {
        _cleanup_strv_free_ char **names = NULL;
        int r;

        r = list_names(src_fd, &names);
        if (r < 0)
                return r;
        STRV_FOREACH(n, names) {
                r = copy_entry(src_fd, dst_fd, *n);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Replaces dst_dfd/name (whatever it is) with a copy of src_dfd/name. */
static int copy_entry(int src_dfd, int dst_dfd, const char *name) {
        struct stat st;
        int r;

        if (fstatat(src_dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        /* Never in place: the old file may be a hard link into the ostree repository. */
        r = rm_rf_at(dst_dfd, name);
        if (r < 0)
                return r;

        switch (st.st_mode & S_IFMT) {
        case S_IFREG: {
                _cleanup_close_ int in = -EBADF, out = -EBADF;

                in = openat(src_dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                if (in < 0)
                        return -errno;
                out = openat(dst_dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (out < 0)
                        return -errno;
                r = copy_bytes(in, out);
                if (r < 0)
                        return r;
                return apply_meta_fd(out, &st);
        }
        case S_IFLNK: {
                _cleanup_free_ char *t = NULL;
                struct timespec ts[2] = { st.st_atim, st.st_mtim };

                r = readlinkat_malloc(src_dfd, name, &t);
                if (r < 0)
                        return r;
                if (symlinkat(t, dst_dfd, name) < 0 ||
                    fchownat(dst_dfd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                (void) utimensat(dst_dfd, name, ts, AT_SYMLINK_NOFOLLOW);
                return 0;
        }
        case S_IFDIR: {
                _cleanup_close_ int in = -EBADF, out = -EBADF;

                /* 0700 until filled: nobody sees it half-copied with the final mode. */
                if (mkdirat(dst_dfd, name, 0700) < 0)
                        return -errno;
                in = open_dir_at(src_dfd, name);
                if (in < 0)
                        return in;
                out = open_dir_at(dst_dfd, name);
                if (out < 0)
                        return out;
                r = copy_dir_contents(in, out);
                if (r < 0)
                        return r;
                return apply_meta_fd(out, &st);
        }
        case S_IFIFO:
        case S_IFCHR:
        case S_IFBLK:
                if (mknodat(dst_dfd, name, st.st_mode & (S_IFMT | 0600), st.st_rdev) < 0 ||
                    fchownat(dst_dfd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
                    fchmodat(dst_dfd, name, st.st_mode & 07777, 0) < 0)
                        return -errno;
                return 0;
        default:
                log_debug("Not copying socket %s.", name);
                return 0;
        }
}

static int report_conflict(MergeContext *c, const char *path) {
        log_debug("/etc/%s: changed by the admin and by the new version; keeping the admin's.", path);
        return c->report ? strv_extend(&c->report->conflicts, path) : 0;
}

static void count(MergeContext *c, bool deleted) {
        if (c->report) {
                if (deleted)
                        c->report->deleted_by_admin++;
                else
                        c->report->kept_admin++;
        }
}

static int merge_dir(MergeContext *c, int base_fd, int cur_fd, int tgt_fd, const char *prefix);

/* One path present in current. */
static int merge_current_entry(MergeContext *c, int base_fd, int cur_fd, int tgt_fd, const char *name,
                               const char *path) {
        struct stat sb, sc, st;
        int rb, rt, r;

        if (fstatat(cur_fd, name, &sc, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        rb = stat_at(base_fd, name, &sb);
        if (rb < 0 && rb != -ENOENT)
                return rb;
        rt = stat_at(tgt_fd, name, &st);
        if (rt < 0 && rt != -ENOENT)
                return rt;

        if (rb >= 0 && S_ISDIR(sb.st_mode) && S_ISDIR(sc.st_mode) && rt >= 0 && S_ISDIR(st.st_mode)) {
                /* A directory on all three sides: merge inside, and carry over its own
                 * mode and owner if the admin changed them. */
                _cleanup_close_ int b = open_dir_at(base_fd, name), cu = open_dir_at(cur_fd, name),
                                    t = open_dir_at(tgt_fd, name);
                if (b < 0)
                        return b;
                if (cu < 0)
                        return cu;
                if (t < 0)
                        return t;
                if (!meta_equal(&sb, &sc)) {
                        if (!meta_equal(&st, &sb) && !meta_equal(&st, &sc)) {
                                r = report_conflict(c, path);
                                if (r < 0)
                                        return r;
                        }
                        r = apply_meta_fd(t, &sc);
                        if (r < 0)
                                return r;
                        log_debug("/etc/%s: keeping the admin's mode and owner.", path);
                        count(c, false);
                }
                return merge_dir(c, b, cu, t, path);
        }

        /* Anything else is compared and, if the admin changed it, copied as a
         * whole: files, symlinks, type changes, directories the admin added, and
         * directories the new version no longer has as such. */
        if (rb >= 0) {
                r = entries_equal(base_fd, cur_fd, name);
                if (r < 0)
                        return r;
                if (r > 0)
                        return 0; /* untouched by the admin: the new version's stays */
        }

        if (rt >= 0 || rb >= 0) {
                /* The new version changed it too (added, removed or modified), unless it
                 * ended up exactly as the admin has it. */
                r = entries_equal(base_fd, tgt_fd, name);
                if (r < 0)
                        return r;
                if (r == 0) {
                        int q = entries_equal(cur_fd, tgt_fd, name);
                        if (q < 0)
                                return q;
                        if (q == 0) {
                                r = report_conflict(c, path);
                                if (r < 0)
                                        return r;
                        }
                }
        }

        r = copy_entry(cur_fd, tgt_fd, name);
        if (r < 0)
                return r;
        log_debug("/etc/%s: keeping the admin's version.", path);
        count(c, false);
        return 0;
}

/* One path present in base but not in current: the admin deleted it. */
static int merge_deleted_entry(MergeContext *c, int base_fd, int tgt_fd, const char *name, const char *path) {
        struct stat st;
        int r;

        r = stat_at(tgt_fd, name, &st);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r >= 0) {
                r = entries_equal(base_fd, tgt_fd, name);
                if (r < 0)
                        return r;
                if (r == 0) {
                        r = report_conflict(c, path);
                        if (r < 0)
                                return r;
                }
                r = rm_rf_at(tgt_fd, name);
                if (r < 0)
                        return r;
        }
        log_debug("/etc/%s: deleted by the admin, staying deleted.", path);
        count(c, true);
        return 0;
}

/* Notes where the first failure happened; the error is logged once, by etc_merge(). */
static int failed_at(MergeContext *c, const char *path, int r) {
        if (!c->failed_path)
                c->failed_path = strdup(path ?: ".");
        return r;
}

static int merge_dir(MergeContext *c, int base_fd, int cur_fd, int tgt_fd, const char *prefix) {
        _cleanup_strv_free_ char **cur_names = NULL, **base_names = NULL;
        int r;

        r = list_names(cur_fd, &cur_names);
        if (r < 0)
                return failed_at(c, prefix, r);
        r = list_names(base_fd, &base_names);
        if (r < 0)
                return failed_at(c, prefix, r);

        STRV_FOREACH(n, cur_names) {
                _cleanup_free_ char *path = path_child(prefix, *n);
                if (!path)
                        return -ENOMEM;
                r = merge_current_entry(c, base_fd, cur_fd, tgt_fd, *n, path);
                if (r < 0)
                        return failed_at(c, path, r);
        }

        STRV_FOREACH(n, base_names) {
                if (strv_contains(cur_names, *n))
                        continue;
                _cleanup_free_ char *path = path_child(prefix, *n);
                if (!path)
                        return -ENOMEM;
                r = merge_deleted_entry(c, base_fd, tgt_fd, *n, path);
                if (r < 0)
                        return failed_at(c, path, r);
        }
        return 0;
}

int etc_merge(const char *base, const char *current, const char *target, EtcMergeReport *report) {
        _cleanup_close_ int b = -EBADF, cu = -EBADF, t = -EBADF;
        MergeContext c = { .report = report };
        int r;

        if (!base || !current || !target)
                return -EINVAL;
        if (report)
                *report = (EtcMergeReport) {};

        b = open_dir_at(AT_FDCWD, base);
        if (b < 0)
                return log_error_errno(b, "Failed to open the base /etc %s: %m", base);
        cu = open_dir_at(AT_FDCWD, current);
        if (cu < 0)
                return log_error_errno(cu, "Failed to open the current /etc %s: %m", current);
        t = open_dir_at(AT_FDCWD, target);
        if (t < 0)
                return log_error_errno(t, "Failed to open the target /etc %s: %m", target);

        /* The top directory's own mode and owner are the new version's. */
        r = merge_dir(&c, b, cu, t, NULL);
        if (r < 0)
                log_error_errno(r, "Failed to merge /etc/%s into %s: %m", strna(c.failed_path), target);
        free(c.failed_path);
        return r;
}
