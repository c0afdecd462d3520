/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "ostree-image.h"
#include "os-tree.h"
#include "ostree-repo.h"
#include "string-util.h"

/* After macro.h: GLib #undefs MIN/MAX before defining its own, macro.h does not. */
#include <gio/gunixinputstream.h>
#include <ostree.h>

#include "ostree-util.h"

/* Big enough for any vfs_cap_data revision (v3 is 24 bytes). */
#define CAPABILITY_XATTR "security.capability"
#define CAPABILITY_XATTR_MAX 64
static int regular_file_at(int dir_fd, const char *name) {
        struct stat st;

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return S_ISREG(st.st_mode) ? 0 : -ENOENT;
}

int boot_info_from_tree(const char *tree, BootInfo *ret) {
        _cleanup_free_ char *boot = NULL, *best = NULL, *initrd_name = NULL;
        _cleanup_(boot_info_done) BootInfo b = {};
        _cleanup_(closedirp) DIR *d = NULL;
        int r;

        if (asprintf(&boot, "%s/boot", tree) < 0)
                return log_oom();
        d = opendir(boot);
        if (!d) {
                if (errno == ENOENT)
                        return log_error_errno(ENOENT, "No kernel in %s: it has no boot/ directory.", tree);
                return log_error_errno(errno, "Failed to open %s: %m", boot);
        }

        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                return log_error_errno(errno, "Failed to read %s: %m", boot);
                        break;
                }
                const char *version = startswith(de->d_name, "vmlinuz-");
                if (isempty(version))
                        continue;
                r = regular_file_at(dirfd(d), de->d_name);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return log_error_errno(r, "Failed to stat %s/%s: %m", boot, de->d_name);
                if (best && strverscmp(version, best) <= 0)
                        continue;
                if (free_and_strdup(&best, version) < 0)
                        return log_oom();
        }
        if (!best)
                return log_error_errno(ENOENT, "No kernel in %s: no boot/vmlinuz-* file.", tree);

        if (asprintf(&initrd_name, "initrd.img-%s", best) < 0)
                return log_oom();
        r = regular_file_at(dirfd(d), initrd_name);
        if (r == -ENOENT)
                return log_error_errno(ENOENT, "Kernel %s in %s has no initrd (boot/%s).", best, tree, initrd_name);
        if (r < 0)
                return log_error_errno(r, "Failed to stat %s/%s: %m", boot, initrd_name);

        /* asprintf() leaves the pointer undefined on failure. */
        if (asprintf(&b.vmlinuz, "boot/vmlinuz-%s", best) < 0) {
                b.vmlinuz = NULL;
                return log_oom();
        }
        if (asprintf(&b.initrd, "boot/%s", initrd_name) < 0) {
                b.initrd = NULL;
                return log_oom();
        }
        b.kernel_version = TAKE_PTR(best);
        *ret = b;
        b = (BootInfo) {};
        return 0;
}

/* Fails ERROR with errno ERR, naming the path; the walk below is GLib code, its caller logs. */
static gboolean throw_errno(GError **error, int err, const char *what, const char *path) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "%s %s: %s", what, isempty(path) ? "/" : path,
                    g_strerror(err));
        return FALSE;
}

static GFileInfo *file_info_from_stat(const struct stat *st) {
        GFileInfo *info = g_file_info_new();

        g_file_info_set_attribute_uint32(info, "unix::uid", st->st_uid);
        g_file_info_set_attribute_uint32(info, "unix::gid", st->st_gid);
        g_file_info_set_attribute_uint32(info, "unix::mode", st->st_mode);
        return info;
}

static gboolean write_dirmeta(OstreeRepo *repo, const struct stat *st, OstreeMutableTree *mtree, GError **error) {
        g_autoptr(GFileInfo) info = file_info_from_stat(st);
        g_autoptr(GVariant) dirmeta = NULL;
        g_autofree guchar *csum = NULL;
        g_autofree char *checksum = NULL;

        g_file_info_set_file_type(info, G_FILE_TYPE_DIRECTORY);
        dirmeta = ostree_create_directory_metadata(info, NULL);
        if (!ostree_repo_write_metadata(repo, OSTREE_OBJECT_TYPE_DIR_META, NULL, dirmeta, &csum, NULL, error))
                return FALSE;
        checksum = ostree_checksum_from_bytes(csum);
        ostree_mutable_tree_set_metadata_checksum(mtree, checksum);
        return TRUE;
}

/* Xattrs are left out (no SELinux labels, nothing of the build host's), except file capabilities:
 * without them binaries like ping lose their privileges. NULL when the file has none. */
static gboolean capability_xattrs(int fd, const char *path, GVariant **ret, GError **error) {
        uint8_t value[CAPABILITY_XATTR_MAX];

        ssize_t n = fgetxattr(fd, CAPABILITY_XATTR, value, sizeof(value));
        if (n < 0) {
                /* None set, or a file system without xattrs at all. */
                if (errno == ENODATA || errno == EOPNOTSUPP) {
                        *ret = NULL;
                        return TRUE;
                }
                return throw_errno(error, errno, "Failed to read " CAPABILITY_XATTR " of", path);
        }

        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a(ayay)"));
        g_variant_builder_add(&b, "(@ay@ay)", g_variant_new_bytestring(CAPABILITY_XATTR),
                              g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, value, (gsize) n, 1));
        *ret = g_variant_ref_sink(g_variant_builder_end(&b));
        return TRUE;
}

/* A regular file or symlink NAME in DIR_FD becomes a content object and an entry of MTREE. */
static gboolean commit_file(OstreeRepo *repo, int dir_fd, const char *name, const char *path, const struct stat *st,
                            OstreeMutableTree *mtree, GError **error) {
        g_autoptr(GFileInfo) info = NULL;
        g_autoptr(GInputStream) input = NULL, content = NULL;
        g_autoptr(GVariant) xattrs = NULL;
        g_autofree guchar *csum = NULL;
        g_autofree char *checksum = NULL;
        guint64 length;

        if (S_ISLNK(st->st_mode)) {
                char target[PATH_MAX];
                ssize_t n = readlinkat(dir_fd, name, target, sizeof(target));
                if (n < 0)
                        return throw_errno(error, errno, "Failed to read symlink", path);
                if ((size_t) n >= sizeof(target))
                        return throw_errno(error, ENAMETOOLONG, "Failed to read symlink", path);
                target[n] = 0;
                info = file_info_from_stat(st);
                g_file_info_set_file_type(info, G_FILE_TYPE_SYMBOLIC_LINK);
                g_file_info_set_symlink_target(info, target);
        } else {
                struct stat fst;
                int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
                if (fd < 0)
                        return throw_errno(error, errno, "Failed to open", path);
                input = g_unix_input_stream_new(fd, TRUE);
                /* The size ostree's header records must be what the stream yields. */
                if (fstat(fd, &fst) < 0)
                        return throw_errno(error, errno, "Failed to stat", path);
                if (!capability_xattrs(fd, path, &xattrs, error))
                        return FALSE;
                info = file_info_from_stat(&fst);
                g_file_info_set_file_type(info, G_FILE_TYPE_REGULAR);
                g_file_info_set_size(info, fst.st_size);
        }

        if (!ostree_raw_file_to_content_stream(input, info, xattrs, &content, &length, NULL, error) ||
            !ostree_repo_write_content(repo, NULL, content, length, &csum, NULL, error))
                return FALSE;
        checksum = ostree_checksum_from_bytes(csum);
        return ostree_mutable_tree_replace_file(mtree, name, checksum, error);
}

static gboolean commit_dir(OstreeRepo *repo, int parent_fd, const char *name, const char *path,
                           OstreeMutableTree *mtree, GError **error);

/* Our own walk rather than ostree_repo_write_dfd_to_mtree(): that fails on the first FIFO, socket or
 * device node before its commit filter is asked, so such files could not be skipped. */
static gboolean commit_dir_contents(OstreeRepo *repo, DIR *d, const char *path, OstreeMutableTree *mtree,
                                    GError **error) {
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                return throw_errno(error, errno, "Failed to read", path);
                        return TRUE;
                }
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;

                g_autofree char *child = g_strconcat(path, "/", de->d_name, NULL);
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return throw_errno(error, errno, "Failed to stat", child);

                if (S_ISDIR(st.st_mode)) {
                        g_autoptr(OstreeMutableTree) sub = NULL;
                        if (!ostree_mutable_tree_ensure_dir(mtree, de->d_name, &sub, error) ||
                            !commit_dir(repo, dirfd(d), de->d_name, child, sub, error))
                                return FALSE;
                } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
                        if (!commit_file(repo, dirfd(d), de->d_name, child, &st, mtree, error))
                                return FALSE;
                } else
                        log_warning("Skipping %s: ostree cannot hold sockets, FIFOs or device nodes.", child);
        }
}

/* The directory NAME in PARENT_FD, at PATH ("" for the root) in the tree, into MTREE. */
static gboolean commit_dir(OstreeRepo *repo, int parent_fd, const char *name, const char *path,
                           OstreeMutableTree *mtree, GError **error) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct stat st;

        /* The tree itself may be reached through a symlink, nothing inside it. */
        int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (isempty(path) ? 0 : O_NOFOLLOW));
        if (fd < 0)
                return throw_errno(error, errno, "Failed to open", path);
        d = fdopendir(fd);
        if (!d) {
                int saved = errno;
                safe_close(fd);
                return throw_errno(error, saved, "Failed to open", path);
        }
        if (fstat(dirfd(d), &st) < 0)
                return throw_errno(error, errno, "Failed to stat", path);
        /* A directory an overlay shares with the base tree keeps the base's owner and mode. */
        if (!ostree_mutable_tree_get_metadata_checksum(mtree) && !write_dirmeta(repo, &st, mtree, error))
                return FALSE;
        if (os_tree_is_runtime_dir(path))
                return TRUE;
        return commit_dir_contents(repo, d, path, mtree, error);
}

static GVariant *commit_metadata(const ImageCommit *c, const BootInfo *boot) {
        g_auto(GVariantBuilder) bootb = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE("a{ss}"));
        g_autoptr(GVariantDict) d = g_variant_dict_new(NULL);

        g_variant_builder_add(&bootb, "{ss}", "vmlinuz", boot->vmlinuz);
        g_variant_builder_add(&bootb, "{ss}", "initrd", boot->initrd);
        if (c->cmdline)
                g_variant_builder_add(&bootb, "{ss}", "cmdline", c->cmdline);

        g_variant_dict_insert(d, OSTREE_COMMIT_META_KEY_VERSION, "s", c->version);
        /* ostree's own keys for bootable commits, for tools that know only those. */
        g_variant_dict_insert(d, "ostree.bootable", "b", TRUE);
        g_variant_dict_insert(d, "ostree.linux", "s", boot->kernel_version);
        g_variant_dict_insert(d, IMAGE_META_OS, "s", c->os_name);
        g_variant_dict_insert(d, IMAGE_META_KERNEL_VERSION, "s", boot->kernel_version);
        g_variant_dict_insert_value(d, IMAGE_META_BOOT, g_variant_builder_end(&bootb));
        return g_variant_ref_sink(g_variant_dict_end(d));
}

/* Everything between prepare and commit of the transaction; the caller aborts it on failure. */
static gboolean write_commit(OstreeRepo *repo, const ImageCommit *c, GVariant *metadata, const char *parent,
                             char **ret_checksum, GError **error) {
        g_autoptr(OstreeMutableTree) mtree = ostree_mutable_tree_new();
        g_autoptr(GFile) root = NULL;
        g_autofree char *subject = NULL, *checksum = NULL;

        if (!commit_dir(repo, AT_FDCWD, c->tree, "", mtree, error))
                return FALSE;
        STRV_FOREACH(overlay, (char **) c->overlays)
                if (!commit_dir(repo, AT_FDCWD, *overlay, "", mtree, error))
                        return FALSE;
        if (!ostree_repo_write_mtree(repo, mtree, &root, NULL, error))
                return FALSE;

        subject = c->subject ? g_strdup(c->subject) : g_strdup_printf("%s %s", c->os_name, c->version);
        if (!ostree_repo_write_commit(repo, parent, subject, NULL, metadata, OSTREE_REPO_FILE(root), &checksum,
                                      NULL, error))
                return FALSE;
        ostree_repo_transaction_set_ref(repo, NULL, c->branch, checksum);
        if (!ostree_repo_commit_transaction(repo, NULL, NULL, error))
                return FALSE;

        *ret_checksum = g_steal_pointer(&checksum);
        return TRUE;
}

int image_repo_commit(OstreeRepo *repo, const ImageCommit *c, char **ret_checksum) {
        _cleanup_(boot_info_done) BootInfo boot = {};
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) metadata = NULL;
        g_autofree char *parent = NULL, *checksum = NULL;
        int r;

        if (isempty(c->version) || isempty(c->os_name))
                return log_error_errno(EINVAL, "Committing %s needs a version and an OS name.", c->tree);
        if (!ostree_validate_rev(c->branch, &error))
                return log_error_errno(EINVAL, "Invalid branch name '%s': %s", c->branch, error->message);

        r = boot_info_from_tree(c->tree, &boot);
        if (r < 0)
                return r;
        metadata = commit_metadata(c, &boot);

        if (!ostree_repo_resolve_rev(repo, c->branch, TRUE, &parent, &error))
                return log_gerror(error, "Failed to resolve branch %s", c->branch);

        if (!ostree_repo_prepare_transaction(repo, NULL, NULL, &error))
                return log_gerror(error, "Failed to start a transaction for %s", c->tree);
        if (!write_commit(repo, c, metadata, parent, &checksum, &error)) {
                /* Drops the staged objects; the error that matters is the one above. */
                (void) ostree_repo_abort_transaction(repo, NULL, NULL);
                return log_gerror(error, "Failed to commit %s", c->tree);
        }

        char *s = strdup(checksum);
        if (!s)
                return log_oom();
        log_info("Committed %s as %s on %s (version %s, kernel %s).", c->tree, checksum, c->branch, c->version,
                 boot.kernel_version);
        *ret_checksum = s;
        return 0;
}

/* Where ostree keeps the delta FROM -> TO, relative to the repository: deltas/ and the checksums in
 * ostree's modified base64, the first two characters split off as a directory. */
static char *delta_dir(const char *from, const char *to) {
        guint8 csum[OSTREE_SHA256_DIGEST_LEN];
        char from64[44], to64[44];

        ostree_checksum_inplace_to_bytes(to, csum);
        ostree_checksum_b64_inplace_from_bytes(csum, to64);
        if (!from)
                return g_strdup_printf("deltas/%.2s/%s", to64, to64 + 2);
        ostree_checksum_inplace_to_bytes(from, csum);
        ostree_checksum_b64_inplace_from_bytes(csum, from64);
        return g_strdup_printf("deltas/%.2s/%s-%s", from64, from64 + 2, to64);
}

static int delta_size(OstreeRepo *repo, const char *from, const char *to, uint64_t *ret) {
        g_autofree char *dir = delta_dir(from, to);
        int repo_fd = ostree_repo_get_dfd(repo);
        uint64_t total = 0;
        struct stat st;

        _cleanup_free_ char *superblock = NULL;
        if (asprintf(&superblock, "%s/superblock", dir) < 0)
                return log_oom();
        if (fstatat(repo_fd, superblock, &st, 0) < 0)
                return log_error_errno(errno, "Failed to find the delta superblock %s: %m", superblock);
        total += (uint64_t) st.st_size;

        /* Parts are files 0, 1, …; the first missing number ends them. */
        for (unsigned i = 0;; i++) {
                _cleanup_free_ char *part = NULL;
                if (asprintf(&part, "%s/%u", dir, i) < 0)
                        return log_oom();
                if (fstatat(repo_fd, part, &st, 0) < 0) {
                        if (errno == ENOENT)
                                break;
                        return log_error_errno(errno, "Failed to stat delta part %s: %m", part);
                }
                total += (uint64_t) st.st_size;
        }
        *ret = total;
        return 0;
}

int image_repo_generate_delta(OstreeRepo *repo, const char *from, const char *to, uint64_t *ret_size) {
        g_autoptr(GError) error = NULL;
        g_autofree char *from_csum = NULL, *to_csum = NULL;
        g_autoptr(GVariant) params = NULL;
        g_auto(GVariantBuilder) pb = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
        uint64_t size = 0;
        int r;

        if (from) {
                r = repo_resolve_rev(repo, from, &from_csum);
                if (r < 0)
                        return r;
        }
        r = repo_resolve_rev(repo, to, &to_csum);
        if (r < 0)
                return r;

        /* No "fallback" objects: by default files over 4 MB (kernel, initrd) are left out of the
         * delta for clients to fetch one by one, which would make the delta's size a lie and the
         * delta unusable offline. ostree also crashes on NULL params, so always pass a dict. */
        g_variant_builder_add(&pb, "{sv}", "min-fallback-size", g_variant_new_uint32(0));
        params = g_variant_ref_sink(g_variant_builder_end(&pb));

        if (!ostree_repo_static_delta_generate(repo, OSTREE_STATIC_DELTA_GENERATE_OPT_MAJOR, from_csum, to_csum,
                                               NULL, params, NULL, &error))
                return log_gerror(error, "Failed to generate the delta %s → %s", from_csum ?: "(empty)", to_csum);

        r = delta_size(repo, from_csum, to_csum, &size);
        if (r < 0)
                return r;
        log_info("Generated the delta %s → %s, %" PRIu64 " bytes.", from_csum ?: "(empty)", to_csum, size);
        *ret_size = size;
        return 0;
}

int image_repo_update_summary(OstreeRepo *repo) {
        g_autoptr(GError) error = NULL;

        if (!ostree_repo_regenerate_summary(repo, NULL, NULL, &error))
                return log_gerror(error, "Failed to regenerate the repository summary");
        return 0;
}

int image_repo_commit_size(OstreeRepo *repo, const char *rev, uint64_t *ret_size) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GHashTable) reachable = NULL;
        g_autofree char *checksum = NULL;
        GHashTableIter iter;
        gpointer key;
        uint64_t total = 0;
        int r;

        r = repo_resolve_rev(repo, rev, &checksum);
        if (r < 0)
                return r;
        /* maxdepth 0: this commit only, not its parents. */
        if (!ostree_repo_traverse_commit(repo, checksum, 0, &reachable, NULL, &error))
                return log_gerror(error, "Failed to list the objects of %s", checksum);

        g_hash_table_iter_init(&iter, reachable);
        while (g_hash_table_iter_next(&iter, &key, NULL)) {
                const char *object;
                OstreeObjectType type;
                guint64 size;

                ostree_object_name_deserialize(key, &object, &type);
                if (!ostree_repo_query_object_storage_size(repo, type, object, &size, NULL, &error))
                        return log_gerror(error, "Failed to query the size of object %s", object);
                total += size;
        }
        *ret_size = total;
        return 0;
}
