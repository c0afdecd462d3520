/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "fs-util.h"
#include "log.h"
#include "macro.h"
#include "ostree-repo.h"
#include "string-util.h"

/* After macro.h: GLib #undefs MIN/MAX before defining its own, macro.h does not. */
#include <ostree.h>

#include "ostree-util.h"

void boot_info_done(BootInfo *b) {
        free(b->kernel_version);
        free(b->vmlinuz);
        free(b->initrd);
        *b = (BootInfo) {};
}

/* A regular file, not a symlink: a link in an image tree would resolve against the build host. */
int image_repo_open(const char *path, bool create, OstreeRepo **ret) {
        g_autoptr(GError) error = NULL;
        OstreeRepo *repo;
        int r;

        if (create) {
                r = mkdir_p(path, 0755);
                if (r < 0)
                        return log_error_errno(r, "Failed to create %s: %m", path);
                /* Succeeds on an existing repository too, whatever its mode. */
                repo = ostree_repo_create_at(AT_FDCWD, path, OSTREE_REPO_MODE_ARCHIVE, NULL, NULL, &error);
        } else
                repo = ostree_repo_open_at(AT_FDCWD, path, NULL, &error);
        if (!repo)
                return log_gerror(error, "Failed to open repository %s", path);

        *ret = repo;
        return 0;
}

void image_repo_unref(OstreeRepo *repo) {
        if (repo)
                g_object_unref(repo);
}

int repo_resolve_rev(OstreeRepo *repo, const char *rev, char **ret) {
        g_autoptr(GError) error = NULL;

        if (!ostree_repo_resolve_rev(repo, rev, FALSE, ret, &error))
                return log_gerror(error, "Failed to resolve %s", rev);
        return 0;
}

/* A path the commit names for booting must stay inside boot/ of the tree. */
static bool boot_path_is_valid(const char *p) {
        const char *name = startswith(p, "boot/");
        return name && filename_is_valid(name);
}

int image_repo_read_commit(OstreeRepo *repo, const char *rev, char **ret_checksum, char **ret_version,
                           BootInfo *ret_boot, char **ret_cmdline) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) commit = NULL, metadata = NULL, boot = NULL;
        g_autofree char *checksum = NULL;
        _cleanup_free_ char *csum_copy = NULL, *version_copy = NULL, *cmdline_copy = NULL;
        _cleanup_(boot_info_done) BootInfo b = {};
        const char *version, *kernel_version, *vmlinuz, *initrd, *cmdline = NULL;
        int r;

        r = repo_resolve_rev(repo, rev, &checksum);
        if (r < 0)
                return r;
        if (!ostree_repo_load_commit(repo, checksum, &commit, NULL, &error))
                return log_gerror(error, "Failed to load commit %s", checksum);

        metadata = g_variant_get_child_value(commit, 0);
        /* g_variant_lookup() checks the types; a key of another type counts as missing. */
        if (!g_variant_lookup(metadata, OSTREE_COMMIT_META_KEY_VERSION, "&s", &version) ||
            !g_variant_lookup(metadata, IMAGE_META_KERNEL_VERSION, "&s", &kernel_version))
                return log_error_errno(EBADMSG, "Commit %s lacks a version or %s.", checksum, IMAGE_META_KERNEL_VERSION);
        boot = g_variant_lookup_value(metadata, IMAGE_META_BOOT, G_VARIANT_TYPE("a{ss}"));
        if (!boot || !g_variant_lookup(boot, "vmlinuz", "&s", &vmlinuz) ||
            !g_variant_lookup(boot, "initrd", "&s", &initrd))
                return log_error_errno(EBADMSG, "Commit %s lacks %s with vmlinuz and initrd.", checksum, IMAGE_META_BOOT);
        if (!boot_path_is_valid(vmlinuz) || !boot_path_is_valid(initrd))
                return log_error_errno(EBADMSG, "Commit %s names boot files outside boot/: '%s', '%s'.", checksum,
                                       vmlinuz, initrd);
        (void) g_variant_lookup(boot, "cmdline", "&s", &cmdline);

        if ((ret_checksum && !(csum_copy = strdup(checksum))) || (ret_version && !(version_copy = strdup(version))) ||
            (ret_cmdline && cmdline && !(cmdline_copy = strdup(cmdline))))
                return log_oom();
        if (ret_boot && (!(b.kernel_version = strdup(kernel_version)) || !(b.vmlinuz = strdup(vmlinuz)) ||
                         !(b.initrd = strdup(initrd))))
                return log_oom();

        if (ret_checksum)
                *ret_checksum = TAKE_PTR(csum_copy);
        if (ret_version)
                *ret_version = TAKE_PTR(version_copy);
        if (ret_cmdline)
                *ret_cmdline = TAKE_PTR(cmdline_copy);
        if (ret_boot) {
                *ret_boot = b;
                b = (BootInfo) {};
        }
        return 0;
}

/* 0 if missing, 1 if an empty directory (lost+found aside), -ENOTEMPTY or another error otherwise. */
static int checkout_target_state(const char *dest) {
        _cleanup_(closedirp) DIR *d = opendir(dest);
        if (!d)
                return errno == ENOENT ? 0 : -errno;

        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de)
                        return errno != 0 ? -errno : 1;
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..") && !streq(de->d_name, "lost+found"))
                        return -ENOTEMPTY;
        }
}

/* ostree leaves an existing target directory as it is; give it the tree root's owner and mode. */
static int apply_root_dirmeta(OstreeRepo *repo, const char *checksum, int dest_fd) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GFile) root = NULL;
        g_autoptr(GFileInfo) info = NULL;

        if (!ostree_repo_read_commit(repo, checksum, &root, NULL, NULL, &error))
                return log_gerror(error, "Failed to read commit %s", checksum);
        info = g_file_query_info(root, "unix::*", G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, &error);
        if (!info)
                return log_gerror(error, "Failed to read the root directory of %s", checksum);

        if (fchown(dest_fd, g_file_info_get_attribute_uint32(info, "unix::uid"),
                   g_file_info_get_attribute_uint32(info, "unix::gid")) < 0 ||
            fchmod(dest_fd, g_file_info_get_attribute_uint32(info, "unix::mode") & 07777) < 0)
                return log_error_errno(errno, "Failed to set owner and mode of the checkout root: %m");
        return 0;
}

/* The bytes of a file or a symlink's target; a directory's info from libostree has no size (asking
 * is a GLib critical). */
static uint64_t entry_size(GFileInfo *info, GFileType type) {
        if (type == G_FILE_TYPE_SYMBOLIC_LINK)
                return strlen(strempty(g_file_info_get_symlink_target(info)));
        return type == G_FILE_TYPE_REGULAR ? (uint64_t) g_file_info_get_size(info) : 0;
}

/* Blocks of BLOCK bytes, as a checkout writes them: every path a copy of its own (no hard links),
 * a block per directory, short symlinks inside their inode (as ext4 keeps those under 60 bytes). */
static int disk_usage_of(GFile *f, GFileType type, uint64_t size, uint64_t block, uint64_t *total, GError **error) {
        g_autoptr(GFileEnumerator) e = NULL;

        switch (type) {
        case G_FILE_TYPE_REGULAR:
                *total = saturating_add(*total, round_up_blocks(size, block));
                return 0;
        case G_FILE_TYPE_SYMBOLIC_LINK:
                if (size >= 60)
                        *total = saturating_add(*total, block);
                return 0;
        case G_FILE_TYPE_DIRECTORY:
                break;
        default:
                return 0;
        }

        *total = saturating_add(*total, block);
        e = g_file_enumerate_children(f, G_FILE_ATTRIBUTE_STANDARD_NAME "," G_FILE_ATTRIBUTE_STANDARD_TYPE ","
                                      G_FILE_ATTRIBUTE_STANDARD_SIZE "," G_FILE_ATTRIBUTE_STANDARD_SYMLINK_TARGET,
                                      G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, error);
        if (!e)
                return -1;
        for (;;) {
                GFileInfo *info;
                GFile *child;

                if (!g_file_enumerator_iterate(e, &info, &child, NULL, error))
                        return -1;
                if (!info)
                        return 0;
                GFileType t = g_file_info_get_file_type(info);
                if (disk_usage_of(child, t, entry_size(info, t), block, total, error) < 0)
                        return -1;
        }
}

int image_repo_disk_usage(OstreeRepo *repo, const char *rev, const char *path, uint64_t block_size, uint64_t *ret) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GFile) root = NULL, f = NULL;
        g_autoptr(GFileInfo) info = NULL;
        g_autofree char *checksum = NULL;
        uint64_t total = 0;
        int r;

        assert(block_size > 0);

        r = repo_resolve_rev(repo, rev, &checksum);
        if (r < 0)
                return r;
        if (!ostree_repo_read_commit(repo, checksum, &root, NULL, NULL, &error))
                return log_gerror(error, "Failed to read commit %s", checksum);
        f = g_file_resolve_relative_path(root, path);
        info = g_file_query_info(f, G_FILE_ATTRIBUTE_STANDARD_TYPE "," G_FILE_ATTRIBUTE_STANDARD_SIZE ","
                                 G_FILE_ATTRIBUTE_STANDARD_SYMLINK_TARGET, G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, &error);
        if (!info)
                return log_gerror(error, "Failed to find %s in %.12s", path, checksum);
        GFileType t = g_file_info_get_file_type(info);
        if (disk_usage_of(f, t, entry_size(info, t), block_size, &total, &error) < 0)
                return log_gerror(error, "Failed to measure %s in %.12s", path, checksum);
        *ret = total;
        return 0;
}

int image_repo_checkout_subpath(OstreeRepo *repo, const char *rev, const char *subpath, const char *dest) {
        g_autoptr(GError) error = NULL;
        g_autofree char *checksum = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r, existed;

        r = repo_resolve_rev(repo, rev, &checksum);
        if (r < 0)
                return r;
        existed = checkout_target_state(dest);
        if (existed == -ENOTEMPTY)
                return log_error_errno(ENOTEMPTY, "Refusing to check out into %s: it is not empty.", dest);
        if (existed < 0)
                return log_error_errno(existed, "Failed to open %s: %m", dest);

        OstreeRepoCheckoutAtOptions opts = {
                .mode = OSTREE_REPO_CHECKOUT_MODE_NONE,
                /* Into an existing (empty) directory ostree only adds; it errors out otherwise. */
                .overwrite_mode = existed ? OSTREE_REPO_CHECKOUT_OVERWRITE_ADD_FILES : OSTREE_REPO_CHECKOUT_OVERWRITE_NONE,
                .force_copy = TRUE,
                .subpath = subpath,
        };
        if (!ostree_repo_checkout_at(repo, &opts, AT_FDCWD, dest, checksum, NULL, &error))
                return log_gerror(error, "Failed to check out %s into %s", checksum, dest);

        fd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Failed to open %s: %m", dest);
        if (existed && !subpath) {
                r = apply_root_dirmeta(repo, checksum, fd);
                if (r < 0)
                        return r;
        }
        /* ostree does not fsync checkouts; a slot must be on disk before anything boots it. */
        if (syncfs(fd) < 0)
                return log_error_errno(errno, "Failed to sync the file system of %s: %m", dest);
        return 0;
}

int image_repo_checkout(OstreeRepo *repo, const char *rev, const char *dest) {
        return image_repo_checkout_subpath(repo, rev, NULL, dest);
}

static const char *repo_mode_to_string(OstreeRepoMode mode) {
        switch (mode) {
        case OSTREE_REPO_MODE_BARE:
                return "bare";
        case OSTREE_REPO_MODE_ARCHIVE:
                return "archive";
        case OSTREE_REPO_MODE_BARE_USER:
                return "bare-user";
        case OSTREE_REPO_MODE_BARE_USER_ONLY:
                return "bare-user-only";
        default:
                return "unknown";
        }
}

/* Root only: a bare repository keeps every file as it was in its release, set-uid bits included,
 * and other users must not run those of releases long replaced. */
static int local_repo_dir_lock_down(const char *path, bool create) {
        _cleanup_free_ char *parent = NULL;
        _cleanup_close_ int parent_fd = -EBADF, fd = -EBADF;
        const char *name = path_split_last(path, &parent);
        int r;

        if (!parent)
                return -ENOMEM;
        if (create) {
                r = mkdir_p(parent, 0755);
                if (r < 0)
                        return r;
        }
        parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent_fd < 0)
                return -errno;
        if (!create && faccessat(parent_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        fd = mkdirat_verified(parent_fd, name, LOCAL_REPO_MODE);
        if (fd < 0)
                return fd;
        /* One made 0755 by an earlier version too. */
        return RET_NERRNO(fchmod(fd, LOCAL_REPO_MODE));
}

int local_repo_lock_down(const char *path) {
        int r = local_repo_dir_lock_down(path, /* create= */ false);
        return r == -ENOENT ? 0 : r;
}

int local_repo_open(const char *path, OstreeRepo **ret) {
        g_autoptr(GError) error = NULL;
        g_autoptr(OstreeRepo) repo = NULL;
        OstreeRepoMode mode;
        int r;

        r = local_repo_dir_lock_down(path, /* create= */ true);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s (mode %04o, root only): %m", path, LOCAL_REPO_MODE);
        /* Opens an existing repository as it is, whatever its mode. */
        repo = ostree_repo_create_at(AT_FDCWD, path, OSTREE_REPO_MODE_BARE, NULL, NULL, &error);
        if (!repo)
                return log_gerror(error, "Failed to open the local repository %s", path);

        mode = ostree_repo_get_mode(repo);
        if (mode != OSTREE_REPO_MODE_BARE)
                return log_error_errno(EMEDIUMTYPE,
                                       "The local repository %s is in mode %s, not bare: static deltas could not be "
                                       "applied to it.", path, repo_mode_to_string(mode));
        *ret = g_steal_pointer(&repo);
        return 0;
}
