/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "fs-util.h"
#include "log.h"
#include "macro.h"
#include "os-tree.h"
#include "string-util.h"

#define FACTORY_DIR "usr/share/factory"
#define TMPFILES_DIR "usr/lib/tmpfiles.d"
#define FACTORY_TMPFILES "dreamlink-factory-var.conf"

/* Local state lives in the shared /var: these are links into it in every slot. */
static const struct {
        const char *path, *target, *why;
} state_links[] = {
        { "var/lib/dpkg", "/usr/lib/sysimage/dpkg", "the dpkg database describes the slot, so it lives in the slot" },
        { "home", "var/home", "users' homes are local state, shared by both slots" },
        { "root", "var/roothome", "root's home is local state, shared by both slots" },
        { "srv", "var/srv", "what the machine serves is local state, shared by both slots" },
};

/* The tree came from an image: none of the paths this file reads or writes may pass a link, or
 * an image could make it read or write the publisher's own files (usr/share/factory -> /). */
static int open_in_slot(int tree_fd, const char *path, int flags) {
        return openat_beneath(tree_fd, path, flags, RESOLVE_NO_SYMLINKS);
}

static int refuse_link(const char *tree, const char *path) {
        return log_error_errno(EMEDIUMTYPE, "%s/%s goes through a symbolic link, where a slot has directories.", tree, path);
}

static int check_link(int tree_fd, const char *tree, const char *path, const char *target, const char *why) {
        _cleanup_free_ char *buf = NULL;
        struct stat st;

        _cleanup_close_ int fd = open_in_slot(tree_fd, path, O_PATH | O_NOFOLLOW);
        if (fd == -ENOENT)
                return 0;
        if (fd == -ELOOP)
                return refuse_link(tree, path);
        if (fd < 0)
                return log_error_errno(fd, "Cannot open %s/%s: %m", tree, path);
        if (fstat(fd, &st) < 0)
                return log_error_errno(errno, "Cannot stat %s/%s: %m", tree, path);
        if (!S_ISLNK(st.st_mode) || readlinkat_malloc(fd, "", &buf) < 0 || !streq(buf, target))
                return log_error_errno(EMEDIUMTYPE,
                                       "%s/%s must be a link to %s (%s): build FROM a dreamlink base image "
                                       "(dreamlink-image export).",
                                       tree, path, target, why);
        return 0;
}

static int check_kind(int tree_fd, const char *tree, const char *path, mode_t kind, const char *why) {
        struct stat st;

        _cleanup_close_ int fd = open_in_slot(tree_fd, path, O_PATH | O_NOFOLLOW);
        if (fd == -ELOOP)
                return refuse_link(tree, path);
        if (fd == -ENOENT || (fd >= 0 && fstat(fd, &st) >= 0 && (st.st_mode & S_IFMT) != kind))
                return log_error_errno(EMEDIUMTYPE, "%s is not a dreamlink OS: it has no %s /%s (%s).", tree,
                                       kind == S_IFDIR ? "directory" : "file", path, why);
        if (fd < 0)
                return log_error_errno(fd, "Cannot open %s/%s: %m", tree, path);
        return 0;
}

static int check_rules(int tree_fd, const char *tree) {
        int r;

        r = check_kind(tree_fd, tree, "usr/lib/systemd/systemd", S_IFREG, "systemd runs a dreamlink slot");
        if (r < 0)
                return r;
        r = check_kind(tree_fd, tree, "boot", S_IFDIR, "the kernel and its initrd are found there");
        if (r < 0)
                return r;
        r = check_kind(tree_fd, tree, "var", S_IFDIR, "the shared var partition is mounted there");
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(state_links); i++) {
                r = check_link(tree_fd, tree, state_links[i].path, state_links[i].target, state_links[i].why);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* What the image has in /var becomes the factory copy, replacing the base's: it is the base's
 * /var (dreamlink-image export puts it there) with what the image's RUN lines added, changed and
 * removed. An image with an empty /var was split already: its factory copy stays. */
static int split_var(int tree_fd, const char *tree) {
        _cleanup_strv_free_ char **names = NULL;
        struct stat st;
        int r;

        r = readdir_names(tree_fd, "var", &names);
        if (r < 0)
                return log_error_errno(r, "Cannot read %s/var: %m", tree);
        if (!names)
                return 0;

        _cleanup_close_ int factory_fd = mkdir_p_beneath(tree_fd, FACTORY_DIR, 0755, RESOLVE_NO_SYMLINKS);
        if (factory_fd == -ELOOP)
                return refuse_link(tree, FACTORY_DIR);
        if (factory_fd < 0)
                return log_error_errno(factory_fd, "Cannot create %s/" FACTORY_DIR ": %m", tree);
        r = rm_rf_at(factory_fd, "var");
        if (r < 0)
                return log_error_errno(r, "Cannot remove the base's %s/" FACTORY_DIR "/var: %m", tree);
        if (fstatat(tree_fd, "var", &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            renameat(tree_fd, "var", factory_fd, "var") < 0 || mkdirat(tree_fd, "var", 0755) < 0)
                return log_error_errno(errno, "Cannot move %s/var to " FACTORY_DIR "/var: %m", tree);
        /* The mount point as the image had it. */
        if (fchownat(tree_fd, "var", st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
            fchmodat(tree_fd, "var", st.st_mode & 07777, 0) < 0)
                return log_error_errno(errno, "Cannot set the owner and mode of %s/var: %m", tree);
        return 0;
}

static bool is_systemds(const char *name) {
        return streq(name, "home") || streq(name, "run") || streq(name, "lock") || streq(name, "tmp");
}

static bool is_deeper(const char *name) {
        return streq(name, "lib") || streq(name, "cache") || streq(name, "log") || streq(name, "spool");
}

/* A tmpfiles.d field is split at blanks and expands "%" specifiers and "\" escapes: such names
 * would say something else there, so they are not written at all. */
static bool is_plain_field(const char *s) {
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p <= ' ' || strchr("%\\\"'", *p) || *p == 0x7f)
                        return false;
        return !isempty(s);
}

/* Appends the tmpfiles line for var/PATH in FACTORY_FD. */
static int tmpfiles_line(int factory_fd, const char *path, char ***lines) {
        _cleanup_free_ char *target = NULL;
        struct stat st;
        char *line;
        int r;

        if (!is_plain_field(path))
                return log_error_errno(EMEDIUMTYPE, "/var/%s cannot be written as a tmpfiles.d line, refusing the image.", path);
        if (fstatat(factory_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return log_error_errno(errno, "Cannot stat the factory copy of /var/%s: %m", path);
        if (S_ISLNK(st.st_mode)) {
                /* tmpfiles' copy would follow the link, and a relative one does not resolve in the
                 * factory copy: the link is made again instead. */
                r = readlinkat_malloc(factory_fd, path, &target);
                if (r < 0)
                        return log_error_errno(r, "Cannot read the link /var/%s: %m", path);
                if (!is_plain_field(target))
                        return log_error_errno(EMEDIUMTYPE, "The link /var/%s -> %s cannot be written as a tmpfiles.d line, "
                                               "refusing the image.", path, target);
                line = strprintf("L /var/%s - - - - %s", path, target);
        } else
                line = strprintf("C /var/%s - - - -", path);
        return line ? strv_push(lines, line) : log_oom();
}

static int factory_tmpfiles(int factory_fd, char **ret) {
        _cleanup_strv_free_ char **top = NULL, **paths = NULL, **lines = NULL;
        int r;

        if (factory_fd >= 0) {
                r = readdir_names(factory_fd, ".", &top);
                if (r < 0)
                        return log_error_errno(r, "Cannot read the factory copy of /var: %m");
        }
        STRV_FOREACH(t, top) {
                struct stat st;
                if (is_systemds(*t))
                        continue;
                if (!is_deeper(*t)) {
                        if (strv_extend(&paths, *t) < 0)
                                return log_oom();
                        continue;
                }
                if (fstatat(factory_fd, *t, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return log_error_errno(errno, "Cannot stat the factory copy of /var/%s: %m", *t);
                if (!S_ISDIR(st.st_mode))
                        continue;
                _cleanup_strv_free_ char **sub = NULL;
                r = readdir_names(factory_fd, *t, &sub);
                if (r < 0)
                        return log_error_errno(r, "Cannot read the factory copy of /var/%s: %m", *t);
                STRV_FOREACH(n, sub) {
                        char *p = strprintf("%s/%s", *t, *n);
                        if (!p || strv_push(&paths, p) < 0)
                                return log_oom();
                }
        }
        /* By path ("lib/x" sorts before "lib2", which a line-wise sort would not do), so that a
         * version's file reads the same each time it is made. */
        strv_sort(paths);
        STRV_FOREACH(p, paths) {
                r = tmpfiles_line(factory_fd, *p, &lines);
                if (r < 0)
                        return r;
        }
        _cleanup_free_ char *body = strv_join(lines, "\n");
        if (!body)
                return log_oom();
        *ret = strprintf("# Generated by dreamlink-image: seed the shared /var with what this version ships.\n"
                         "d /var/home 0755 root root -\n%s%s",
                         body, isempty(body) ? "" : "\n");
        return *ret ? 0 : log_oom();
}

/* The file written beside its final name and renamed over it, all below DIR_FD. */
static int write_tmpfiles(int dir_fd, const char *text) {
        static const char tmp[] = "." FACTORY_TMPFILES ".new";
        _cleanup_close_ int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        int r;

        if (fd < 0)
                return -errno;
        r = loop_write(fd, text, strlen(text));
        if (r >= 0 && (fchmod(fd, 0644) < 0 || renameat(dir_fd, tmp, dir_fd, FACTORY_TMPFILES) < 0))
                r = -errno;
        if (r < 0)
                (void) unlinkat(dir_fd, tmp, 0);
        return r;
}

int os_tree_prepare(const char *tree) {
        _cleanup_free_ char *conf = NULL;
        _cleanup_close_ int tree_fd = -EBADF, factory_var_fd = -EBADF, tmpfiles_fd = -EBADF;
        int r;

        assert(tree);

        tree_fd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (tree_fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", tree);
        r = check_rules(tree_fd, tree);
        if (r < 0)
                return r;
        r = split_var(tree_fd, tree);
        if (r < 0)
                return r;

        factory_var_fd = open_in_slot(tree_fd, FACTORY_DIR "/var", O_RDONLY | O_DIRECTORY);
        if (factory_var_fd == -ELOOP)
                return refuse_link(tree, FACTORY_DIR "/var");
        if (factory_var_fd < 0 && factory_var_fd != -ENOENT)
                return log_error_errno(factory_var_fd, "Cannot open %s/" FACTORY_DIR "/var: %m", tree);
        r = factory_tmpfiles(factory_var_fd, &conf);
        if (r < 0)
                return r;
        tmpfiles_fd = mkdir_p_beneath(tree_fd, TMPFILES_DIR, 0755, RESOLVE_NO_SYMLINKS);
        if (tmpfiles_fd == -ELOOP)
                return refuse_link(tree, TMPFILES_DIR);
        if (tmpfiles_fd < 0)
                return log_error_errno(tmpfiles_fd, "Cannot create %s/" TMPFILES_DIR ": %m", tree);
        r = write_tmpfiles(tmpfiles_fd, conf);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s/" TMPFILES_DIR "/" FACTORY_TMPFILES ": %m", tree);
        return 0;
}

bool os_tree_is_runtime_dir(const char *path) {
        static const char * const runtime_dirs[] = { "/dev", "/proc", "/sys", "/run", "/tmp" };

        for (size_t i = 0; i < ELEMENTSOF(runtime_dirs); i++)
                if (streq(path, runtime_dirs[i]))
                        return true;
        return false;
}
