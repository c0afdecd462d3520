/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <archive.h>
#include <archive_entry.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <systemd/sd-json.h>
#include <unistd.h>

#include "fileio.h"
#include "fs-util.h"
#include "log.h"
#include "macro.h"
#include "oci-export.h"
#include "oci-image.h"
#include "os-tree.h"
#include "string-util.h"

#define CAPABILITY_XATTR "security.capability"
#define COPY_BUFFER_SIZE (256U * 1024U)
#define LAYER_TMP ".layer.tmp"
#define FACTORY_VAR "usr/share/factory/var"

typedef struct HardLink {
        dev_t dev;
        ino_t ino;
        char *path;
} HardLink;

/* The layer being written: tar bytes go to OUT_FD and through the digest. */
typedef struct Exporter {
        struct archive *a;
        EVP_MD_CTX *md;
        int out_fd;
        uint64_t size;
        void *links; /* tsearch() tree of HardLink: files with more than one link, by the path first written */
        uint8_t *buf;
} Exporter;

static int hardlink_compare(const void *a, const void *b) {
        const HardLink *x = a, *y = b;
        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static void hardlink_free(void *p) {
        HardLink *l = p;
        if (l)
                free(l->path);
        free(l);
}

static void exporter_done(Exporter *x) {
        if (x->a)
                archive_write_free(x->a);
        EVP_MD_CTX_free(x->md);
        tdestroy(x->links, hardlink_free);
        free(x->buf);
}

static la_ssize_t export_write(struct archive *a, void *userdata, const void *buf, size_t n) {
        Exporter *x = userdata;
        int r = loop_write(x->out_fd, buf, n);
        if (r < 0) {
                archive_set_error(a, -r, "write failed");
                return -1;
        }
        if (EVP_DigestUpdate(x->md, buf, n) != 1) {
                archive_set_error(a, EIO, "digest failed");
                return -1;
        }
        x->size += n;
        return (la_ssize_t) n;
}

static int archive_fail(struct archive *a, const char *what, const char *path) {
        int err = archive_errno(a) > 0 ? archive_errno(a) : EIO;
        return log_error_errno(err, "Failed to write %s of /%s to the layer: %s", what, path,
                               archive_error_string(a) ?: strerror(err));
}

static const char *hardlink_of(Exporter *x, const struct stat *st) {
        HardLink key = { .dev = st->st_dev, .ino = st->st_ino };
        HardLink **found = tfind(&key, &x->links, hardlink_compare);
        return found ? (*found)->path : NULL;
}

static int remember_link(Exporter *x, const struct stat *st, const char *path) {
        HardLink *l = calloc(1, sizeof(HardLink));
        if (!l)
                return -ENOMEM;
        *l = (HardLink) { .dev = st->st_dev, .ino = st->st_ino, .path = strdup(path) };
        if (!l->path || !tsearch(l, &x->links, hardlink_compare)) {
                hardlink_free(l);
                return -ENOMEM;
        }
        return 0;
}

static void archive_entry_freep(struct archive_entry **e) {
        if (*e)
                archive_entry_free(*e);
}

static int export_file(Exporter *x, int dir_fd, const char *name, const char *path, const struct stat *st,
                       struct archive_entry *e) {
        uint8_t cap[64];
        int r;

        if (st->st_nlink > 1) {
                const char *first = hardlink_of(x, st);
                if (first) {
                        archive_entry_set_hardlink(e, first);
                        archive_entry_set_size(e, 0);
                        return archive_write_header(x->a, e) == ARCHIVE_OK ? 0 : archive_fail(x->a, "the header", path);
                }
                r = remember_link(x, st, path);
                if (r < 0)
                        return log_oom();
        }
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open /%s: %m", path);
        /* File capabilities are part of the OS (ping); other xattrs are the build host's. */
        ssize_t n = fgetxattr(fd, CAPABILITY_XATTR, cap, sizeof(cap));
        if (n > 0)
                archive_entry_xattr_add_entry(e, CAPABILITY_XATTR, cap, (size_t) n);
        else if (n < 0 && errno != ENODATA && errno != EOPNOTSUPP)
                return log_error_errno(errno, "Cannot read " CAPABILITY_XATTR " of /%s: %m", path);
        if (archive_write_header(x->a, e) != ARCHIVE_OK)
                return archive_fail(x->a, "the header", path);
        for (uint64_t left = (uint64_t) st->st_size; left > 0;) {
                ssize_t k = loop_read(fd, x->buf, MIN((uint64_t) COPY_BUFFER_SIZE, left));
                if (k < 0)
                        return log_error_errno(k, "Cannot read /%s: %m", path);
                if (k == 0)
                        return log_error_errno(EIO, "/%s shrank while it was written to the layer.", path);
                if (archive_write_data(x->a, x->buf, (size_t) k) != k)
                        return archive_fail(x->a, "the data", path);
                left -= (uint64_t) k;
        }
        return 0;
}

/* The entries of DIR_FD, at PATH ("" for the root), sorted, depth first. With MIRROR, the
 * directory is a second copy of MIRROR, written earlier: its files become hard links to MIRROR's. */
static int export_dir(Exporter *x, int dir_fd, const char *path, const char *mirror) {
        _cleanup_strv_free_ char **names = NULL;
        int r;

        r = readdir_names(dir_fd, ".", &names);
        if (r < 0)
                return log_error_errno(r, "Cannot read /%s: %m", path);
        STRV_FOREACH(name, names) {
                _cleanup_(archive_entry_freep) struct archive_entry *e = archive_entry_new();
                _cleanup_free_ char *child = isempty(path) ? strdup(*name) : strprintf("%s/%s", path, *name),
                                    *mirror_child = mirror ? strprintf("%s/%s", mirror, *name) : NULL;
                struct stat st;

                if (!e || !child || (mirror && !mirror_child))
                        return log_oom();
                if (fstatat(dir_fd, *name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return log_error_errno(errno, "Cannot stat /%s: %m", child);
                if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
                        log_warning("Skipping /%s: ostree cannot hold sockets, FIFOs or device nodes.", child);
                        continue;
                }
                archive_entry_copy_stat(e, &st);
                /* ostree keeps no times: two checkouts of one commit must give the same layer. */
                archive_entry_set_mtime(e, 0, 0);
                archive_entry_unset_atime(e);
                archive_entry_unset_ctime(e);
                archive_entry_set_pathname(e, child);

                if (S_ISLNK(st.st_mode)) {
                        _cleanup_free_ char *target = NULL;
                        r = readlinkat_malloc(dir_fd, *name, &target);
                        if (r < 0)
                                return log_error_errno(r, "Cannot read the link /%s: %m", child);
                        archive_entry_set_symlink(e, target);
                        if (archive_write_header(x->a, e) != ARCHIVE_OK)
                                return archive_fail(x->a, "the header", child);
                } else if (S_ISREG(st.st_mode) && mirror) {
                        archive_entry_set_hardlink(e, mirror_child);
                        archive_entry_set_size(e, 0);
                        if (archive_write_header(x->a, e) != ARCHIVE_OK)
                                return archive_fail(x->a, "the header", child);
                } else if (S_ISREG(st.st_mode)) {
                        r = export_file(x, dir_fd, *name, child, &st, e);
                        if (r < 0)
                                return r;
                } else {
                        if (archive_write_header(x->a, e) != ARCHIVE_OK)
                                return archive_fail(x->a, "the header", child);
                        _cleanup_free_ char *absolute = strprintf("/%s", child);
                        if (!absolute)
                                return log_oom();
                        if (os_tree_is_runtime_dir(absolute))
                                continue;
                        _cleanup_close_ int sub = openat(dir_fd, *name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub < 0)
                                return log_error_errno(errno, "Cannot open /%s: %m", child);
                        /* A split slot's /var is empty and its content is the factory copy: the image
                         * has it in /var too, where a Containerfile's package manager looks
                         * (/var/lib/dpkg), as hard links ("usr" comes before "var"). */
                        if (isempty(path) && streq(*name, "var") && !mirror) {
                                _cleanup_strv_free_ char **in_var = NULL;
                                r = readdir_names(sub, ".", &in_var);
                                if (r < 0)
                                        return log_error_errno(r, "Cannot read /var: %m");
                                _cleanup_close_ int factory = in_var ? -EBADF :
                                        openat(dir_fd, FACTORY_VAR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                                if (factory >= 0) {
                                        r = export_dir(x, factory, child, FACTORY_VAR);
                                        if (r < 0)
                                                return r;
                                        continue;
                                }
                        }
                        r = export_dir(x, sub, child, mirror_child);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int digest_hex(EVP_MD_CTX *md, char **ret) {
        uint8_t d[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        char hex[2 * EVP_MAX_MD_SIZE + 1];

        if (EVP_DigestFinal_ex(md, d, &len) != 1)
                return -EIO;
        *ret = strprintf("sha256:%s", hex_encode(d, len, hex));
        return *ret ? 0 : -ENOMEM;
}

/* The tree as one uncompressed tar layer in BLOBS_FD; its digest is also its diff_id. */
static int write_layer(const char *tree, int blobs_fd, char **ret_digest, uint64_t *ret_size) {
        _cleanup_(exporter_done) Exporter x = {};
        _cleanup_close_ int tree_fd = -EBADF, out = -EBADF;
        _cleanup_free_ char *digest = NULL;
        int r;

        tree_fd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (tree_fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", tree);
        out = openat(blobs_fd, LAYER_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (out < 0)
                return log_error_errno(errno, "Cannot create the layer: %m");
        x = (Exporter) {
                .a = archive_write_new(),
                .md = EVP_MD_CTX_new(),
                .out_fd = out,
                .buf = malloc(COPY_BUFFER_SIZE),
        };
        if (!x.a || !x.md || !x.buf || EVP_DigestInit_ex(x.md, EVP_sha256(), NULL) != 1)
                return log_oom();
        /* pax for long names, xattrs and big ids; no uname/gname: numeric owners are what counts.
         * Names are written as the bytes they are (hdrcharset=BINARY), never converted through
         * the locale: a tree's names need not be valid in it, nor even UTF-8. */
        if (archive_write_set_format_pax_restricted(x.a) != ARCHIVE_OK ||
            archive_write_set_format_option(x.a, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK ||
            archive_write_add_filter_none(x.a) != ARCHIVE_OK ||
            archive_write_open(x.a, &x, NULL, export_write, NULL) != ARCHIVE_OK)
                return log_error_errno(EIO, "Cannot start the layer: %s", archive_error_string(x.a) ?: "libarchive failed");
        r = export_dir(&x, tree_fd, "", NULL);
        if (r < 0)
                return r;
        if (archive_write_close(x.a) != ARCHIVE_OK)
                return archive_fail(x.a, "the end", "");
        if (fsync(out) < 0)
                return log_error_errno(errno, "Cannot write the layer: %m");
        r = digest_hex(x.md, &digest);
        if (r < 0)
                return log_error_errno(r, "Cannot hash the layer: %m");
        if (renameat(blobs_fd, LAYER_TMP, blobs_fd, digest + strlen("sha256:")) < 0)
                return log_error_errno(errno, "Cannot store the layer: %m");
        *ret_digest = TAKE_PTR(digest);
        *ret_size = x.size;
        return 0;
}

/* A JSON document as a blob: normalized, so the same content has the same digest. */
static int write_json_blob(int blobs_fd, sd_json_variant **v, char **ret_digest, uint64_t *ret_size) {
        _cleanup_free_ char *text = NULL, *digest = NULL;
        uint8_t d[32];
        unsigned len = 0;
        char hex[65];
        int r;

        r = sd_json_variant_normalize(v);
        if (r < 0)
                return r;
        r = sd_json_variant_format(*v, 0, &text);
        if (r < 0)
                return r;
        if (EVP_Digest(text, strlen(text), d, &len, EVP_sha256(), NULL) != 1)
                return -EIO;
        hex_encode(d, len, hex);
        _cleanup_close_ int fd = openat(blobs_fd, hex, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        r = loop_write(fd, text, strlen(text));
        if (r < 0)
                return r;
        *ret_digest = strprintf("sha256:%s", hex);
        *ret_size = strlen(text);
        return *ret_digest ? 0 : -ENOMEM;
}

static int write_text_at(int dir_fd, const char *name, const char *text) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        return loop_write(fd, text, strlen(text));
}

static int write_layout(const char *tree, const char *dir, const char *name) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *config = NULL, *manifest = NULL, *index = NULL;
        _cleanup_free_ char *layer = NULL, *config_digest = NULL, *manifest_digest = NULL, *text = NULL;
        _cleanup_close_ int dir_fd = -EBADF, blobs_fd = -EBADF;
        uint64_t layer_size, config_size, manifest_size;
        int r;

        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Cannot create %s: %m", dir);
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", dir);
        /* Another layout's index would be replaced, and its images lost. */
        _cleanup_strv_free_ char **present = NULL;
        r = readdir_names(dir_fd, ".", &present);
        if (r < 0)
                return log_error_errno(r, "Cannot read %s: %m", dir);
        if (present)
                return log_error_errno(ENOTEMPTY, "%s is not empty: an image is written to a new directory.", dir);
        if ((mkdirat(dir_fd, "blobs", 0755) < 0 && errno != EEXIST) ||
            (mkdirat(dir_fd, "blobs/sha256", 0755) < 0 && errno != EEXIST))
                return log_error_errno(errno, "Cannot create %s/blobs/sha256: %m", dir);
        blobs_fd = openat(dir_fd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (blobs_fd < 0)
                return log_error_errno(errno, "Cannot open %s/blobs/sha256: %m", dir);

        r = write_layer(tree, blobs_fd, &layer, &layer_size);
        if (r < 0)
                return r;
        r = sd_json_buildo(&config,
                        SD_JSON_BUILD_PAIR_STRING("architecture", "amd64"),
                        SD_JSON_BUILD_PAIR_STRING("os", "linux"),
                        /* A Containerfile's RUN lines need a shell; the OS's own init runs only booted. */
                        SD_JSON_BUILD_PAIR_OBJECT("config",
                                SD_JSON_BUILD_PAIR("Cmd", SD_JSON_BUILD_ARRAY(SD_JSON_BUILD_STRING("/bin/bash")))),
                        SD_JSON_BUILD_PAIR_OBJECT("rootfs",
                                SD_JSON_BUILD_PAIR_STRING("type", "layers"),
                                SD_JSON_BUILD_PAIR("diff_ids", SD_JSON_BUILD_ARRAY(SD_JSON_BUILD_STRING(layer)))));
        if (r >= 0)
                r = write_json_blob(blobs_fd, &config, &config_digest, &config_size);
        if (r >= 0)
                r = sd_json_buildo(&manifest,
                                SD_JSON_BUILD_PAIR_UNSIGNED("schemaVersion", 2),
                                SD_JSON_BUILD_PAIR_STRING("mediaType", OCI_MEDIA_MANIFEST),
                                SD_JSON_BUILD_PAIR_OBJECT("config",
                                        SD_JSON_BUILD_PAIR_STRING("mediaType", OCI_MEDIA_CONFIG),
                                        SD_JSON_BUILD_PAIR_STRING("digest", config_digest),
                                        SD_JSON_BUILD_PAIR_UNSIGNED("size", config_size)),
                                SD_JSON_BUILD_PAIR("layers", SD_JSON_BUILD_ARRAY(SD_JSON_BUILD_OBJECT(
                                        SD_JSON_BUILD_PAIR_STRING("mediaType", OCI_MEDIA_LAYER_TAR),
                                        SD_JSON_BUILD_PAIR_STRING("digest", layer),
                                        SD_JSON_BUILD_PAIR_UNSIGNED("size", layer_size)))));
        if (r >= 0)
                r = write_json_blob(blobs_fd, &manifest, &manifest_digest, &manifest_size);
        if (r >= 0)
                r = sd_json_buildo(&index,
                                SD_JSON_BUILD_PAIR_UNSIGNED("schemaVersion", 2),
                                SD_JSON_BUILD_PAIR("manifests", SD_JSON_BUILD_ARRAY(SD_JSON_BUILD_OBJECT(
                                        SD_JSON_BUILD_PAIR_STRING("mediaType", OCI_MEDIA_MANIFEST),
                                        SD_JSON_BUILD_PAIR_STRING("digest", manifest_digest),
                                        SD_JSON_BUILD_PAIR_UNSIGNED("size", manifest_size),
                                        SD_JSON_BUILD_PAIR_CONDITION(!!name, "annotations",
                                                SD_JSON_BUILD_OBJECT(SD_JSON_BUILD_PAIR_STRING(OCI_REF_NAME, name)))))));
        if (r >= 0)
                r = sd_json_variant_format(index, 0, &text);
        if (r >= 0)
                r = write_text_at(dir_fd, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
        /* The index last: a layout without one is no image, never a half-written one. */
        if (r >= 0)
                r = write_text_at(dir_fd, "index.json", text);
        if (r < 0)
                return log_error_errno(r, "Cannot write the image's metadata to %s: %m", dir);
        log_info("Wrote %s as an OCI image to %s (layer %s, %" PRIu64 " bytes).", tree, dir, layer, layer_size);
        return 0;
}

/* The layout in DIR as the tar file FILE: written beside it, then renamed over it. */
static int write_archive(const char *dir, const char *file) {
        _cleanup_(unlink_and_freep) char *tmp = strprintf("%s.XXXXXX", file);
        _cleanup_strv_free_ char **blobs = NULL;
        _cleanup_close_ int out = -EBADF, dir_fd = -EBADF, blobs_fd = -EBADF;
        _cleanup_free_ uint8_t *buf = malloc(COPY_BUFFER_SIZE);
        struct archive *a = NULL;
        int r;

        if (!tmp || !buf)
                return log_oom();
        out = mkostemp(tmp, O_CLOEXEC);
        if (out < 0) {
                free(tmp);
                tmp = NULL;
                return log_error_errno(errno, "Cannot create a file beside %s: %m", file);
        }
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        blobs_fd = dir_fd < 0 ? -EBADF : openat(dir_fd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (blobs_fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", dir);
        r = readdir_names(blobs_fd, ".", &blobs);
        if (r < 0)
                return log_error_errno(r, "Cannot read %s/blobs/sha256: %m", dir);

        a = archive_write_new();
        if (!a)
                return log_oom();
        const char *files[] = { "oci-layout", "index.json" };
        r = archive_write_set_format_pax_restricted(a) == ARCHIVE_OK && archive_write_add_filter_none(a) == ARCHIVE_OK &&
                            archive_write_open_fd(a, out) == ARCHIVE_OK ? 0 : -EIO;
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(files) + strv_length(blobs); i++) {
                bool blob = i >= ELEMENTSOF(files);
                const char *name = blob ? blobs[i - ELEMENTSOF(files)] : files[i];
                _cleanup_free_ char *path = blob ? strprintf("blobs/sha256/%s", name) : strdup(name);
                _cleanup_(archive_entry_freep) struct archive_entry *e = archive_entry_new();
                _cleanup_close_ int fd = openat(blob ? blobs_fd : dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                struct stat st;
                if (!path || !e)
                        r = -ENOMEM;
                else if (fd < 0 || fstat(fd, &st) < 0)
                        r = -errno;
                if (r < 0)
                        break;
                archive_entry_set_pathname(e, path);
                archive_entry_set_filetype(e, AE_IFREG);
                archive_entry_set_perm(e, 0644);
                archive_entry_set_size(e, st.st_size);
                if (archive_write_header(a, e) != ARCHIVE_OK) {
                        r = -EIO;
                        break;
                }
                for (;;) {
                        ssize_t k = loop_read(fd, buf, COPY_BUFFER_SIZE);
                        if (k <= 0) {
                                r = (int) k;
                                break;
                        }
                        if (archive_write_data(a, buf, (size_t) k) != k) {
                                r = -EIO;
                                break;
                        }
                }
        }
        if (r >= 0 && archive_write_close(a) != ARCHIVE_OK)
                r = -EIO;
        if (r == -EIO && archive_errno(a) > 0)
                r = -archive_errno(a);
        archive_write_free(a);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", file);
        /* mkostemp() made it 0600: an image is for everyone's podman to read. */
        if (fchmod(out, 0644) < 0 || fsync(out) < 0 || rename(tmp, file) < 0)
                return log_error_errno(errno, "Cannot write %s: %m", file);
        free(tmp);
        tmp = NULL; /* renamed: nothing to unlink */
        return fsync_directory_of(file);
}

int oci_export(const char *tree, const char *ref, const char *workdir) {
        _cleanup_free_ char *path = NULL, *name = NULL;
        _cleanup_(rm_rf_and_freep) char *layout = NULL;
        OciTransport transport;
        int r;

        assert(tree);
        assert(ref);

        r = oci_ref_parse(ref, &transport, &path, &name);
        if (r < 0)
                return r;
        if (transport == OCI_CONTAINERS_STORAGE)
                return log_error_errno(EINVAL, "%s: an image is written as oci: or oci-archive:; `podman load` reads the archive.", ref);
        if (transport == OCI_LAYOUT)
                return write_layout(tree, path, name);

        r = mkdtemp_below(workdir, "dreamlink-oci", &layout);
        if (r < 0)
                return log_error_errno(r, "Failed to create a directory in %s: %m", workdir ?: "/var/tmp");
        r = write_layout(tree, layout, name);
        if (r < 0)
                return r;
        return write_archive(layout, path);
}
