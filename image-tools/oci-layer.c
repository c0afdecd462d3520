/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <archive.h>
#include <archive_entry.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fileio.h"
#include "fs-util.h"
#include "log.h"
#include "macro.h"
#include "oci-layer.h"
#include "sign.h"
#include "string-util.h"

#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"
#define READ_BUFFER_SIZE (256U * 1024U)

typedef struct LayerReader {
        int fd;
        uint8_t *buf;
} LayerReader;

static la_ssize_t layer_read(struct archive *a, void *userdata, const void **ret) {
        LayerReader *l = userdata;
        ssize_t n;

        do
                n = read(l->fd, l->buf, READ_BUFFER_SIZE);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                archive_set_error(a, errno, "read failed");
                return -1;
        }
        *ret = l->buf;
        return n;
}

static void archive_freep(struct archive **a) {
        if (*a)
                archive_read_free(*a);
}

static int layer_open(LayerReader *l, const char *name, struct archive **ret) {
        _cleanup_(archive_freep) struct archive *a = archive_read_new();

        if (!a)
                return log_oom();
        if (lseek(l->fd, 0, SEEK_SET) < 0)
                return log_error_errno(errno, "Failed to rewind layer %s: %m", name);
        /* A layer is a tar stream (any of its dialects), plain or compressed as the image-spec allows,
         * never another format. ARCHIVE_WARN would mean an external decompressor: none is run. */
        if (archive_read_support_filter_gzip(a) != ARCHIVE_OK || archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
            archive_read_support_format_tar(a) != ARCHIVE_OK ||
            archive_read_open(a, l, NULL, layer_read, NULL) != ARCHIVE_OK)
                return log_error_errno(archive_errno(a) > 0 ? archive_errno(a) : EBADMSG, "Failed to read layer %s: %s",
                                       name, archive_error_string(a) ?: "not a tar stream");
        *ret = TAKE_PTR(a);
        return 0;
}

/* The entry's name as a path relative to the tree: leading "/" and "./", empty and "."
 * components dropped; "" for the root. -EXDEV for a ".." component. */
static int layer_path(const char *name, char **ret) {
        _cleanup_free_ char *path = malloc(strlen(name) + 1);
        size_t n = 0;

        if (!path)
                return -ENOMEM;
        for (const char *p = name; *p;) {
                size_t len = strcspn(p, "/");
                if (len == 2 && p[0] == '.' && p[1] == '.')
                        return -EXDEV;
                if (len > 0 && !(len == 1 && p[0] == '.')) {
                        if (n > 0)
                                path[n++] = '/';
                        memcpy(path + n, p, len);
                        n += len;
                }
                p += len;
                p += strspn(p, "/");
        }
        path[n] = 0;
        *ret = TAKE_PTR(path);
        return 0;
}

static int remove_children(int dir_fd) {
        _cleanup_strv_free_ char **names = NULL;
        int r = readdir_names(dir_fd, ".", &names);
        STRV_FOREACH(n, names)
                if (r >= 0)
                        r = rm_rf_at(dir_fd, *n);
        return r;
}

/* What the first pass learns: the layer's whiteouts. */
typedef struct Whiteouts {
        char **removed; /* paths whose lower entries go */
        char **opaque;  /* directories whose lower children go */
} Whiteouts;

static void whiteouts_done(Whiteouts *w) {
        strv_free(w->removed);
        strv_free(w->opaque);
}

/* The whole blob against its digest, before libarchive parses any of it. */
static int layer_verify(LayerReader *l, const char *name, const char *digest) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        uint8_t d[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        char hex[2 * EVP_MAX_MD_SIZE + 1];

        if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
                return log_error_errno(EIO, "Failed to set up the digest of layer %s.", name);
        for (off_t offset = 0;;) {
                ssize_t n = pread(l->fd, l->buf, READ_BUFFER_SIZE, offset);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return log_error_errno(errno, "Failed to read layer %s: %m", name);
                if (n == 0)
                        break;
                if (EVP_DigestUpdate(md, l->buf, (size_t) n) != 1)
                        return log_error_errno(EIO, "Failed to hash layer %s.", name);
                offset += n;
        }
        if (EVP_DigestFinal_ex(md, d, &len) != 1)
                return log_error_errno(EIO, "Failed to hash layer %s.", name);
        hex_encode(d, len, hex);
        if (!streq(hex, digest + strlen("sha256:")))
                return log_error_errno(EBADMSG, "Layer %s does not match its digest %s (it has sha256:%s), refusing it.",
                                       name, digest, hex);
        return 0;
}

/* Pass one: every name checked, the whiteouts listed; nothing changed. */
static int layer_scan(LayerReader *l, const char *name, Whiteouts *ret) {
        _cleanup_(archive_freep) struct archive *a = NULL;
        _cleanup_(whiteouts_done) Whiteouts w = {};
        struct archive_entry *e;
        int r;

        r = layer_open(l, name, &a);
        if (r < 0)
                return r;
        while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
                _cleanup_free_ char *path = NULL, *dir = NULL;
                const char *entry_name = archive_entry_pathname(e);

                if (!entry_name)
                        return log_error_errno(EBADMSG, "Layer %s has an entry without a name, refusing it.", name);
                r = layer_path(entry_name, &path);
                if (r == -EXDEV)
                        return log_error_errno(r, "Layer %s: '%s' leads out of the tree, refusing the layer.",
                                               name, entry_name);
                if (r < 0)
                        return log_oom();
                if (isempty(path) && archive_entry_filetype(e) != AE_IFDIR)
                        return log_error_errno(EBADMSG, "Layer %s: '%s' names the root but is no directory, refusing the layer.",
                                               name, entry_name);
                if (archive_entry_hardlink(e)) {
                        _cleanup_free_ char *target = NULL;
                        r = layer_path(archive_entry_hardlink(e), &target);
                        if (r == -EXDEV)
                                return log_error_errno(r, "Layer %s: '%s' links to '%s', out of the tree, refusing the layer.",
                                                       name, entry_name, archive_entry_hardlink(e));
                        if (r < 0)
                                return log_oom();
                }
                if (isempty(path))
                        continue;
                const char *base = path_split_last(path, &dir);
                if (!dir)
                        return log_oom();
                if (streq(dir, "."))
                        *dir = 0;
                const char *hidden = startswith(base, WHITEOUT_PREFIX);
                if (!hidden)
                        continue;
                if (streq(base, WHITEOUT_OPAQUE))
                        r = strv_extend(&w.opaque, dir);
                else if (isempty(hidden) || streq(hidden, ".") || streq(hidden, ".."))
                        return log_error_errno(EBADMSG, "Layer %s: whiteout '%s' names nothing, refusing the layer.",
                                               name, entry_name);
                else {
                        _cleanup_free_ char *p = isempty(dir) ? strdup(hidden) : strprintf("%s/%s", dir, hidden);
                        r = p ? strv_push(&w.removed, TAKE_PTR(p)) : -ENOMEM;
                }
                if (r < 0)
                        return log_oom();
        }
        if (r != ARCHIVE_EOF)
                return log_error_errno(archive_errno(a) > 0 ? archive_errno(a) : EBADMSG, "Failed to read layer %s: %s",
                                       name, archive_error_string(a) ?: "not a tar stream");
        *ret = w;
        w = (Whiteouts) {};
        return 0;
}

/* A whiteout's directory is one of its own layer (overlayfs never makes one below a link): where
 * a lower layer has a link, or no directory, there is nothing to hide. So no link is followed,
 * inside the tree or out of it. */
static int apply_whiteouts(int tree_fd, const char *name, const Whiteouts *w) {
        int r;

        STRV_FOREACH(d, w->opaque) {
                _cleanup_close_ int fd = openat_beneath(tree_fd, *d, O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
                if (IN_SET(fd, -ENOENT, -ENOTDIR, -ELOOP))
                        continue;
                if (fd < 0)
                        return log_error_errno(fd, "Layer %s: cannot hide what is below /%s: %m", name, *d);
                r = remove_children(fd);
                if (r < 0)
                        return log_error_errno(r, "Layer %s: failed to hide what is below /%s: %m", name, *d);
        }
        STRV_FOREACH(p, w->removed) {
                _cleanup_free_ char *dir = NULL;
                const char *base = path_split_last(*p, &dir);
                if (!dir)
                        return log_oom();
                _cleanup_close_ int fd = openat_beneath(tree_fd, streq(dir, ".") ? "" : dir, O_PATH | O_DIRECTORY,
                                                        RESOLVE_NO_SYMLINKS);
                if (IN_SET(fd, -ENOENT, -ENOTDIR, -ELOOP))
                        continue;
                if (fd < 0)
                        return log_error_errno(fd, "Layer %s: cannot remove /%s: %m", name, *p);
                r = rm_rf_at(fd, base);
                if (r < 0)
                        return log_error_errno(r, "Layer %s: failed to remove /%s: %m", name, *p);
        }
        return 0;
}

static int copy_data(struct archive *a, struct archive_entry *e, int fd) {
        const void *buf;
        size_t size;
        la_int64_t offset, end = 0;
        int r;

        while ((r = archive_read_data_block(a, &buf, &size, &offset)) == ARCHIVE_OK) {
                /* Sparse entries leave holes between blocks. */
                if (offset != end && lseek(fd, offset, SEEK_SET) < 0)
                        return -errno;
                r = loop_write(fd, buf, size);
                if (r < 0)
                        return r;
                end = offset + (la_int64_t) size;
        }
        if (r != ARCHIVE_EOF)
                return archive_errno(a) > 0 ? -archive_errno(a) : -EBADMSG;
        /* A sparse file may end in a hole. */
        return ftruncate(fd, MAX(end, archive_entry_size(e))) < 0 ? -errno : 0;
}

/* Only the xattrs a commit keeps or a user set: no labels or trusted.* of the build host. */
static bool xattr_is_kept(const char *name) {
        return streq(name, "security.capability") || startswith(name, "user.");
}

static int set_xattrs(struct archive_entry *e, int fd) {
        const char *xname;
        const void *value;
        size_t size;

        archive_entry_xattr_reset(e);
        while (archive_entry_xattr_next(e, &xname, &value, &size) == ARCHIVE_OK)
                if (xattr_is_kept(xname) && fsetxattr(fd, xname, value, size, 0) < 0)
                        return -errno;
        return 0;
}

/* Owner first, then mode: chown clears setuid bits and file capabilities. */
static int set_owner_mode(struct archive_entry *e, int fd) {
        if (fchown(fd, (uid_t) archive_entry_uid(e), (gid_t) archive_entry_gid(e)) < 0 ||
            fchmod(fd, archive_entry_perm(e)) < 0)
                return -errno;
        return set_xattrs(e, fd);
}

/* Makes room for an entry of type TYPE at NAME in DIR_FD: what is there goes, except a
 * directory where a directory comes (1: keep it). */
static int clear_way(int dir_fd, const char *name, mode_t type) {
        struct stat st;

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (S_ISDIR(st.st_mode) && type == AE_IFDIR)
                return 1;
        return rm_rf_at(dir_fd, name);
}

static int hardlink_entry(int tree_fd, const char *target, int dir_fd, const char *base) {
        _cleanup_free_ char *target_path = NULL;
        char proc[64];
        struct stat st;
        int r;

        r = layer_path(target, &target_path);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = openat_beneath(tree_fd, target_path, O_PATH | O_NOFOLLOW, 0);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        r = clear_way(dir_fd, base, AE_IFREG);
        if (r < 0)
                return r;
        /* Through /proc, as linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH. */
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        return RET_NERRNO(linkat(AT_FDCWD, proc, dir_fd, base, AT_SYMLINK_FOLLOW));
}

static int entry_create(struct archive *a, struct archive_entry *e, int tree_fd, const char *path) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int dir_fd = -EBADF, fd = -EBADF;
        mode_t type = archive_entry_filetype(e);
        int r;

        if (isempty(path)) {
                fd = openat_beneath(tree_fd, "", O_RDONLY | O_DIRECTORY, 0);
                return fd < 0 ? fd : set_owner_mode(e, fd);
        }
        const char *base = path_split_last(path, &dir);
        if (!dir)
                return -ENOMEM;
        dir_fd = mkdir_p_beneath(tree_fd, streq(dir, ".") ? "" : dir, 0755, 0);
        if (dir_fd < 0)
                return dir_fd;
        if (archive_entry_hardlink(e))
                return hardlink_entry(tree_fd, archive_entry_hardlink(e), dir_fd, base);

        switch (type) {
        case AE_IFDIR:
                r = clear_way(dir_fd, base, type);
                if (r < 0)
                        return r;
                if (r == 0 && mkdirat(dir_fd, base, 0700) < 0)
                        return -errno;
                fd = openat(dir_fd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                return set_owner_mode(e, fd);
        case AE_IFREG:
                r = clear_way(dir_fd, base, type);
                if (r < 0)
                        return r;
                fd = openat(dir_fd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return -errno;
                r = copy_data(a, e, fd);
                if (r < 0)
                        return r;
                return set_owner_mode(e, fd);
        case AE_IFLNK: {
                const char *target = archive_entry_symlink(e);
                if (isempty(target))
                        return -EBADMSG;
                r = clear_way(dir_fd, base, type);
                if (r < 0)
                        return r;
                if (symlinkat(target, dir_fd, base) < 0 ||
                    fchownat(dir_fd, base, (uid_t) archive_entry_uid(e), (gid_t) archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                return 0;
        }
        default:
                /* Not kept, but what a lower layer had there is gone all the same. */
                r = clear_way(dir_fd, base, type);
                return r < 0 ? r : 1;
        }
}

/* Pass two: the entries, in the layer's order. */
static int layer_extract(LayerReader *l, int tree_fd, const char *name) {
        _cleanup_(archive_freep) struct archive *a = NULL;
        struct archive_entry *e;
        int r;

        r = layer_open(l, name, &a);
        if (r < 0)
                return r;
        while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
                _cleanup_free_ char *path = NULL;
                const char *entry_name = archive_entry_pathname(e);

                /* The scan saw this blob refuse nothing: it changed between the passes. */
                if (!entry_name || layer_path(entry_name, &path) < 0)
                        return log_error_errno(EBADMSG, "Layer %s changed while it was read, refusing it.", name);
                const char *slash = strrchr(path, '/');
                if (startswith(slash ? slash + 1 : path, WHITEOUT_PREFIX))
                        continue;
                r = entry_create(a, e, tree_fd, path);
                if (r == -EXDEV)
                        return log_error_errno(r, "Layer %s: '%s'%s%s leads out of the tree through a link, refusing the layer.",
                                               name, entry_name, archive_entry_hardlink(e) ? " linking to " : "",
                                               strempty(archive_entry_hardlink(e)));
                if (r < 0)
                        return log_error_errno(r, "Layer %s: failed to create /%s: %m%s", name, path,
                                               r == -EPERM ? " (its owners are kept: run as root, or in podman unshare)" : "");
                if (r > 0)
                        log_warning("Layer %s: skipping /%s: ostree cannot hold device nodes, FIFOs or sockets.", name, path);
        }
        if (r != ARCHIVE_EOF)
                return log_error_errno(archive_errno(a) > 0 ? archive_errno(a) : EBADMSG, "Failed to read layer %s: %s",
                                       name, archive_error_string(a) ?: "not a tar stream");
        return 0;
}


int oci_layer_apply(int tree_fd, int layer_fd, const char *name, const char *digest) {
        _cleanup_(whiteouts_done) Whiteouts w = {};
        _cleanup_free_ uint8_t *buf = malloc(READ_BUFFER_SIZE);
        int r;

        assert(tree_fd >= 0);
        assert(layer_fd >= 0);
        assert(name);

        if (!buf)
                return log_oom();
        LayerReader l = { .fd = layer_fd, .buf = buf };
        if (digest) {
                const char *hex = startswith(digest, "sha256:");
                if (!hex || !string_is_lower_hex(hex, 64))
                        return log_error_errno(EBADMSG, "Layer %s: unsupported digest '%s' (only sha256).", name, digest);
                r = layer_verify(&l, name, digest);
                if (r < 0)
                        return r;
        }
        r = layer_scan(&l, name, &w);
        if (r < 0)
                return r;
        r = apply_whiteouts(tree_fd, name, &w);
        if (r < 0)
                return r;
        return layer_extract(&l, tree_fd, name);
}
