/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "os-tree.h"
#include "string-util.h"

#define FACTORY_VAR "usr/share/factory/var"
#define FACTORY_TMPFILES "usr/lib/tmpfiles.d/dreamlink-factory-var.conf"

/* Local state lives in the shared /var: these are links into it in every slot. */
static const struct {
        const char *path, *target, *why;
} state_links[] = {
        { "var/lib/dpkg", "/usr/lib/sysimage/dpkg", "the dpkg database describes the slot, so it lives in the slot" },
        { "home", "var/home", "users' homes are local state, shared by both slots" },
        { "root", "var/roothome", "root's home is local state, shared by both slots" },
        { "srv", "var/srv", "what the machine serves is local state, shared by both slots" },
};

static int check_link(int tree_fd, const char *tree, const char *path, const char *target, const char *why) {
        char buf[PATH_MAX];
        struct stat st;

        if (fstatat(tree_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0;
                return log_error_errno(errno, "Cannot stat %s/%s: %m", tree, path);
        }
        ssize_t n = S_ISLNK(st.st_mode) ? readlinkat(tree_fd, path, buf, sizeof(buf) - 1) : -1;
        if (n >= 0)
                buf[n] = 0;
        if (n < 0 || !streq(buf, target))
                return log_error_errno(EMEDIUMTYPE,
                                       "%s/%s must be a link to %s (%s): build FROM a dreamlink base image, "
                                       "or split /var as docs/quickstart.md says.",
                                       tree, path, target, why);
        return 0;
}

static int check_rules(int tree_fd, const char *tree) {
        struct stat st;
        int r;

        if (fstatat(tree_fd, "usr/lib/systemd/systemd", &st, 0) < 0 || !S_ISREG(st.st_mode))
                return log_error_errno(EMEDIUMTYPE, "%s is not an OS: it has no /usr/lib/systemd/systemd "
                                       "(systemd runs a dreamlink slot).", tree);
        for (size_t i = 0; i < ELEMENTSOF(state_links); i++) {
                r = check_link(tree_fd, tree, state_links[i].path, state_links[i].target, state_links[i].why);
                if (r < 0)
                        return r;
        }
        if (fstatat(tree_fd, "var", &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                return log_error_errno(EMEDIUMTYPE, "%s/var must be a directory: the shared var partition is mounted there.", tree);
        return 0;
}

/* Moves the entries of FROM_FD into TO_FD: an entry already in TO is replaced, except that a
 * directory met by a directory is merged into it. PATH names FROM in messages. */
static int merge_into(int from_fd, int to_fd, const char *path) {
        _cleanup_close_ int fd = openat(from_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", path);
        _cleanup_(closedirp) DIR *d = fdopendir(fd);
        if (!d)
                return log_error_errno(errno, "Cannot read %s: %m", path);
        fd = -EBADF; /* owned by d */

        for (struct dirent *de; (errno = 0, de = readdir(d));) {
                _cleanup_free_ char *child = NULL;
                struct stat from_st, to_st;
                int r;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                child = strprintf("%s/%s", path, de->d_name);
                if (!child)
                        return log_oom();
                if (fstatat(dirfd(d), de->d_name, &from_st, AT_SYMLINK_NOFOLLOW) < 0)
                        return log_error_errno(errno, "Cannot stat %s: %m", child);
                if (fstatat(to_fd, de->d_name, &to_st, AT_SYMLINK_NOFOLLOW) >= 0) {
                        if (S_ISDIR(from_st.st_mode) && S_ISDIR(to_st.st_mode)) {
                                _cleanup_close_ int sub_from = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
                                                    sub_to = openat(to_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                                if (sub_from < 0 || sub_to < 0)
                                        return log_error_errno(errno, "Cannot open %s: %m", child);
                                r = merge_into(sub_from, sub_to, child);
                                if (r < 0)
                                        return r;
                                /* The image's directory, emptied now, carries the owner and mode it wants. */
                                if (fchown(sub_to, from_st.st_uid, from_st.st_gid) < 0 ||
                                    fchmod(sub_to, from_st.st_mode & 07777) < 0)
                                        return log_error_errno(errno, "Cannot set the owner and mode of the factory copy of %s: %m", child);
                                if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) < 0)
                                        return log_error_errno(errno, "Cannot remove %s: %m", child);
                                continue;
                        }
                        r = rm_rf_at(to_fd, de->d_name);
                        if (r < 0)
                                return log_error_errno(r, "Cannot replace the factory copy of %s: %m", child);
                } else if (errno != ENOENT)
                        return log_error_errno(errno, "Cannot stat the factory copy of %s: %m", child);
                if (renameat(dirfd(d), de->d_name, to_fd, de->d_name) < 0)
                        return log_error_errno(errno, "Cannot move %s to the factory copy: %m", child);
        }
        return errno > 0 ? log_error_errno(errno, "Cannot read %s: %m", path) : 0;
}

static bool is_systemds(const char *name) {
        return streq(name, "home") || streq(name, "run") || streq(name, "lock") || streq(name, "tmp");
}

static bool is_deeper(const char *name) {
        return streq(name, "lib") || streq(name, "cache") || streq(name, "log") || streq(name, "spool");
}

/* Appends the tmpfiles line for var/PATH in FACTORY_FD. */
static int tmpfiles_line(int factory_fd, const char *path, char ***lines) {
        char target[PATH_MAX];
        struct stat st;
        char *line;

        if (fstatat(factory_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (S_ISLNK(st.st_mode)) {
                /* tmpfiles' copy would follow the link, and a relative one does not resolve in the
                 * factory copy: the link is made again instead. */
                ssize_t n = readlinkat(factory_fd, path, target, sizeof(target) - 1);
                if (n < 0)
                        return -errno;
                target[n] = 0;
                line = strprintf("L /var/%s - - - - %s", path, target);
        } else
                line = strprintf("C /var/%s - - - -", path);
        return line ? strv_push(lines, line) : -ENOMEM;
}

int os_tree_factory_tmpfiles(const char *tree, char **ret) {
        _cleanup_strv_free_ char **top = NULL, **paths = NULL, **lines = NULL;
        _cleanup_free_ char *factory = strprintf("%s/" FACTORY_VAR, tree);
        int r;

        if (!factory)
                return -ENOMEM;
        _cleanup_close_ int factory_fd = open(factory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (factory_fd < 0)
                return -errno;
        r = readdir_names(factory_fd, ".", &top);
        if (r < 0)
                return r;
        STRV_FOREACH(t, top) {
                struct stat st;
                if (is_systemds(*t))
                        continue;
                if (!is_deeper(*t)) {
                        if (strv_extend(&paths, *t) < 0)
                                return -ENOMEM;
                        continue;
                }
                if (fstatat(factory_fd, *t, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (!S_ISDIR(st.st_mode))
                        continue;
                _cleanup_strv_free_ char **sub = NULL;
                r = readdir_names(factory_fd, *t, &sub);
                if (r < 0)
                        return r;
                STRV_FOREACH(n, sub) {
                        char *p = strprintf("%s/%s", *t, *n);
                        if (!p || strv_push(&paths, p) < 0)
                                return -ENOMEM;
                }
        }
        /* Names come sorted, but "lib/x" must come after "lib2": by path, so that a version's file
         * reads the same each time it is made. */
        strv_sort(paths);
        STRV_FOREACH(p, paths) {
                r = tmpfiles_line(factory_fd, *p, &lines);
                if (r < 0)
                        return r;
        }
        _cleanup_free_ char *body = strv_join(lines, "\n");
        if (!body)
                return -ENOMEM;
        *ret = strprintf("# Generated by dreamlink-image: seed the shared /var with what this version ships.\n"
                         "d /var/home 0755 root root -\n%s%s",
                         body, isempty(body) ? "" : "\n");
        return *ret ? 0 : -ENOMEM;
}

int os_tree_prepare(const char *tree) {
        _cleanup_free_ char *factory = NULL, *conf_path = NULL, *conf = NULL;
        _cleanup_close_ int tree_fd = -EBADF, var_fd = -EBADF, factory_fd = -EBADF;
        int r;

        assert(tree);

        tree_fd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (tree_fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", tree);
        r = check_rules(tree_fd, tree);
        if (r < 0)
                return r;

        factory = strprintf("%s/" FACTORY_VAR, tree);
        if (!factory)
                return log_oom();
        r = mkdir_p(factory, 0755);
        if (r < 0)
                return log_error_errno(r, "Cannot create %s: %m", factory);
        var_fd = openat(tree_fd, "var", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        factory_fd = openat(tree_fd, FACTORY_VAR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (var_fd < 0 || factory_fd < 0)
                return log_error_errno(errno, "Cannot open %s/var or its factory copy: %m", tree);
        r = merge_into(var_fd, factory_fd, "/var");
        if (r < 0)
                return r;
        if (fchmod(var_fd, 0755) < 0 || fchown(var_fd, 0, 0) < 0)
                return log_error_errno(errno, "Cannot set the mode of %s/var: %m", tree);

        r = os_tree_factory_tmpfiles(tree, &conf);
        if (r < 0)
                return log_error_errno(r, "Cannot list the factory copy of /var in %s: %m", tree);
        conf_path = strprintf("%s/" FACTORY_TMPFILES, tree);
        if (!conf_path)
                return log_oom();
        r = write_string_file_atomic_mkdir(conf_path, conf, 0644);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", conf_path);
        return 0;
}

bool os_tree_is_runtime_dir(const char *path) {
        static const char * const runtime_dirs[] = { "/dev", "/proc", "/sys", "/run", "/tmp" };

        for (size_t i = 0; i < ELEMENTSOF(runtime_dirs); i++)
                if (streq(path, runtime_dirs[i]))
                        return true;
        return false;
}
