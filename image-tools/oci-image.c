/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <archive.h>
#include <archive_entry.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-json.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "oci-image.h"
#include "oci-layer.h"
#include "process-util.h"
#include "string-util.h"

#define JSON_BLOB_MAX (4U << 20)
#define DIGEST_PREFIX "sha256:"

static const char * const manifest_types[] = {
        OCI_MEDIA_MANIFEST,
        "application/vnd.docker.distribution.manifest.v2+json",
};
static const char * const index_types[] = {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
};
/* Tar streams, plain or compressed; libarchive recognises the compression by its magic. */
static const char * const layer_types[] = {
        OCI_MEDIA_LAYER_TAR,
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
};

static bool type_in(const char *type, const char * const *types, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (streq_ptr(type, types[i]))
                        return true;
        return false;
}

/* A descriptor (image-spec descriptor.md): what a blob must be. */
typedef struct Descriptor {
        const char *media_type;
        const char *digest; /* "sha256:HEX" */
        uint64_t size;
} Descriptor;

static int descriptor_from_json(sd_json_variant *v, Descriptor *ret) {
        sd_json_variant *type = sd_json_variant_by_key(v, "mediaType"), *digest = sd_json_variant_by_key(v, "digest"),
                        *size = sd_json_variant_by_key(v, "size");

        if (!sd_json_variant_is_object(v) || !sd_json_variant_is_string(digest) || !sd_json_variant_is_unsigned(size))
                return -EBADMSG;
        const char *hex = startswith(sd_json_variant_string(digest), DIGEST_PREFIX);
        if (!hex || !string_is_lower_hex(hex, 64))
                return -EBADMSG;
        *ret = (Descriptor) {
                .media_type = sd_json_variant_is_string(type) ? sd_json_variant_string(type) : NULL,
                .digest = sd_json_variant_string(digest),
                .size = sd_json_variant_unsigned(size),
        };
        return 0;
}

/* The blob's file, opened without following a link, of the size the descriptor says. */
static int blob_open(int layout_fd, const Descriptor *d) {
        _cleanup_free_ char *path = strprintf("blobs/sha256/%s", d->digest + strlen(DIGEST_PREFIX));
        struct stat st;

        if (!path)
                return -ENOMEM;
        _cleanup_close_ int blobs = openat(layout_fd, "blobs/sha256", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (blobs < 0)
                return -errno;
        _cleanup_close_ int fd = openat(blobs, path + strlen("blobs/sha256/"), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size != d->size)
                return -EBADMSG;
        /* It is read more than once after its digest is checked: nobody else may change it. */
        if ((st.st_mode & 0022) || (st.st_uid != 0 && st.st_uid != geteuid()))
                return -EPERM;
        return TAKE_FD(fd);
}

static int sha256_hex(const void *data, size_t size, char ret[static 65]) {
        uint8_t md[32];
        unsigned len = 0;

        if (EVP_Digest(data, size, md, &len, EVP_sha256(), NULL) != 1 || len != sizeof(md))
                return -EIO;
        hex_encode(md, len, ret);
        return 0;
}

/* A JSON blob (index, manifest, config), checked against its descriptor. */
static int blob_read_json(int layout_fd, const char *ref, const Descriptor *d, const char *what, sd_json_variant **ret) {
        _cleanup_free_ char *text = NULL;
        char hex[65];
        size_t size;
        int r;

        if (d->size > JSON_BLOB_MAX)
                return log_error_errno(EFBIG, "%s: the %s %s is %" PRIu64 " bytes, more than a %s can be.", ref, what,
                                       d->digest, d->size, what);
        _cleanup_close_ int fd = blob_open(layout_fd, d);
        if (fd == -EBADMSG)
                return log_error_errno(fd, "%s: the %s %s is not a file of %" PRIu64 " bytes.", ref, what, d->digest, d->size);
        if (fd == -EPERM)
                return log_error_errno(fd, "%s: the %s %s may be changed by another user, refusing it.", ref, what, d->digest);
        if (fd < 0)
                return log_error_errno(fd, "%s: cannot open the %s %s: %m", ref, what, d->digest);
        r = read_fd_limited(fd, JSON_BLOB_MAX, &text, &size);
        if (r < 0)
                return log_error_errno(r, "%s: failed to read the %s %s: %m", ref, what, d->digest);
        r = sha256_hex(text, size, hex);
        if (r < 0)
                return log_error_errno(r, "%s: failed to hash the %s %s.", ref, what, d->digest);
        if (size != d->size || !streq(hex, d->digest + strlen(DIGEST_PREFIX)))
                return log_error_errno(EBADMSG, "%s: the %s %s does not match its digest, refusing it.", ref, what, d->digest);
        r = sd_json_parse(text, 0, ret, NULL, NULL);
        if (r < 0 || !sd_json_variant_is_object(*ret))
                return log_error_errno(EBADMSG, "%s: the %s %s is not a JSON object.", ref, what, d->digest);
        return 0;
}

static bool is_platform(sd_json_variant *entry, const char *os, const char *arch) {
        sd_json_variant *p = sd_json_variant_by_key(entry, "platform");
        sd_json_variant *o = sd_json_variant_by_key(p, "os"), *a = sd_json_variant_by_key(p, "architecture");
        return sd_json_variant_is_string(o) && streq(sd_json_variant_string(o), os) && sd_json_variant_is_string(a) &&
               streq(sd_json_variant_string(a), arch);
}

/* How many entries of MANIFESTS have NAME as their ref.name (NULL: any), for linux/amd64 only
 * when AMD64_ONLY; the last of them in *RET. */
static size_t find_manifests(sd_json_variant *manifests, const char *name, bool amd64_only, sd_json_variant **ret) {
        size_t n = 0;

        for (size_t i = 0; i < sd_json_variant_elements(manifests); i++) {
                sd_json_variant *m = sd_json_variant_by_index(manifests, i);
                sd_json_variant *refname = sd_json_variant_by_key(sd_json_variant_by_key(m, "annotations"), OCI_REF_NAME);
                if (name && (!sd_json_variant_is_string(refname) || !streq(sd_json_variant_string(refname), name)))
                        continue;
                if (amd64_only && !is_platform(m, "linux", "amd64"))
                        continue;
                *ret = m;
                n++;
        }
        return n;
}

/* The manifest descriptor of INDEX that NAME picks (NULL: the only image). Nested indexes (one
 * image for several platforms) resolve to their linux/amd64 manifest. */
static int pick_manifest(int layout_fd, const char *ref, sd_json_variant *index, const char *name, unsigned depth,
                         sd_json_variant **ret_holder, Descriptor *ret) {
        sd_json_variant *manifests = sd_json_variant_by_key(index, "manifests"), *chosen = NULL;
        size_t n = 0;
        int r;

        if (!sd_json_variant_is_array(manifests))
                return log_error_errno(EBADMSG, "%s: its index lists no manifests.", ref);
        if (name && depth == 0)
                n = find_manifests(manifests, name, false, &chosen);
        else if (depth > 0)
                n = find_manifests(manifests, NULL, true, &chosen);
        else {
                /* The only image; of several, the only one for linux/amd64 (an index of platforms). */
                n = find_manifests(manifests, NULL, false, &chosen);
                sd_json_variant *amd64 = NULL;
                if (n > 1 && find_manifests(manifests, NULL, true, &amd64) == 1) {
                        n = 1;
                        chosen = amd64;
                }
        }
        if (n == 0)
                return log_error_errno(ENOENT, "%s: %s.", ref,
                                       depth > 0 ? "no image for linux/amd64 in its index"
                                       : name    ? "no image of that name in the layout"
                                                 : "the layout holds no image");
        if (n > 1)
                return log_error_errno(ENOTUNIQ, "%s: %s, name the one to take (oci:DIR:NAME).", ref,
                                       depth > 0 ? "its index holds several linux/amd64 images" : "the layout holds several images");

        Descriptor d;
        if (descriptor_from_json(chosen, &d) < 0)
                return log_error_errno(EBADMSG, "%s: its index has an invalid manifest descriptor.", ref);
        if (type_in(d.media_type, index_types, ELEMENTSOF(index_types))) {
                _cleanup_(sd_json_variant_unrefp) sd_json_variant *nested = NULL;
                if (depth > 0)
                        return log_error_errno(EBADMSG, "%s: its indexes nest deeper than one image of several platforms.", ref);
                r = blob_read_json(layout_fd, ref, &d, "index", &nested);
                if (r < 0)
                        return r;
                return pick_manifest(layout_fd, ref, nested, name, depth + 1, ret_holder, ret);
        }
        if (d.media_type && !type_in(d.media_type, manifest_types, ELEMENTSOF(manifest_types)))
                return log_error_errno(EMEDIUMTYPE, "%s: its manifest is of type %s, not an image manifest.", ref, d.media_type);
        /* D points into INDEX: keep it alive for the caller. */
        *ret_holder = sd_json_variant_ref(index);
        *ret = d;
        return 0;
}

static int unpack_layout(const char *ref, const char *dir, const char *name, const char *tree) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *index = NULL, *holder = NULL, *manifest = NULL, *config = NULL;
        _cleanup_free_ char *text = NULL, *index_path = NULL;
        _cleanup_close_ int layout_fd = -EBADF, tree_fd = -EBADF;
        Descriptor md;
        int r;

        layout_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (layout_fd < 0)
                return log_error_errno(errno, "%s: cannot open the image layout %s: %m", ref, dir);
        index_path = strprintf("%s/index.json", dir);
        if (!index_path)
                return log_oom();
        r = read_file_limited(index_path, JSON_BLOB_MAX, &text, NULL);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read %s (is it an OCI image layout?): %m", ref, index_path);
        r = sd_json_parse(text, 0, &index, NULL, NULL);
        if (r < 0 || !sd_json_variant_is_object(index))
                return log_error_errno(EBADMSG, "%s: %s is not a JSON object.", ref, index_path);

        r = pick_manifest(layout_fd, ref, index, name, 0, &holder, &md);
        if (r < 0)
                return r;
        r = blob_read_json(layout_fd, ref, &md, "manifest", &manifest);
        if (r < 0)
                return r;

        Descriptor cd;
        if (descriptor_from_json(sd_json_variant_by_key(manifest, "config"), &cd) < 0)
                return log_error_errno(EBADMSG, "%s: its manifest has no valid config descriptor.", ref);
        r = blob_read_json(layout_fd, ref, &cd, "config", &config);
        if (r < 0)
                return r;
        /* dreamlink's releases are x86-64 (the branches say so, the boot loader and kernels are). */
        sd_json_variant *os = sd_json_variant_by_key(config, "os"), *arch = sd_json_variant_by_key(config, "architecture");
        if (!sd_json_variant_is_string(os) || !sd_json_variant_is_string(arch) ||
            !streq(sd_json_variant_string(os), "linux") || !streq(sd_json_variant_string(arch), "amd64"))
                return log_error_errno(EMEDIUMTYPE, "%s: the image is for %s/%s, not linux/amd64.", ref,
                                       sd_json_variant_is_string(os) ? sd_json_variant_string(os) : "?",
                                       sd_json_variant_is_string(arch) ? sd_json_variant_string(arch) : "?");

        sd_json_variant *layers = sd_json_variant_by_key(manifest, "layers");
        if (!sd_json_variant_is_array(layers) || sd_json_variant_elements(layers) == 0)
                return log_error_errno(EBADMSG, "%s: its manifest lists no layers.", ref);

        tree_fd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (tree_fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", tree);
        /* What a root directory is unless a layer says otherwise (few layers have an entry for it). */
        if (fchown(tree_fd, 0, 0) < 0 || fchmod(tree_fd, 0755) < 0)
                return log_error_errno(errno, "Cannot set the owner and mode of %s: %m", tree);
        size_t n = sd_json_variant_elements(layers);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *layer_name = NULL;
                Descriptor ld;
                if (descriptor_from_json(sd_json_variant_by_index(layers, i), &ld) < 0)
                        return log_error_errno(EBADMSG, "%s: layer %zu of its manifest has an invalid descriptor.", ref, i + 1);
                layer_name = strprintf("%zu/%zu (%.19s) of %s", i + 1, n, ld.digest, ref);
                if (!layer_name)
                        return log_oom();
                if (!type_in(ld.media_type, layer_types, ELEMENTSOF(layer_types)))
                        return log_error_errno(EMEDIUMTYPE, "Layer %s is of type %s, not a tar stream.", layer_name,
                                               strna(ld.media_type));
                _cleanup_close_ int fd = blob_open(layout_fd, &ld);
                if (fd == -EBADMSG)
                        return log_error_errno(fd, "Layer %s: its blob is not a file of %" PRIu64 " bytes.", layer_name, ld.size);
                if (fd == -EPERM)
                        return log_error_errno(fd, "Layer %s: its blob may be changed by another user, refusing it.", layer_name);
                if (fd < 0)
                        return log_error_errno(fd, "Layer %s: cannot open its blob: %m", layer_name);
                r = oci_layer_apply(tree_fd, fd, layer_name, ld.digest);
                if (r < 0)
                        return r;
                log_info("Applied layer %s.", layer_name);
        }
        return 0;
}

static void archive_read_freep(struct archive **a) {
        if (*a)
                archive_read_free(*a);
}

/* The layout files of an oci-archive, and nothing else, into DIR: "oci-layout", "index.json",
 * "blobs/sha256/HEX". The archive's other entries are ignored, so none of its names can reach
 * outside DIR. */
static int extract_layout(const char *ref, const char *file, const char *dir) {
        _cleanup_(archive_read_freep) struct archive *a = archive_read_new();
        _cleanup_close_ int dir_fd = -EBADF, blobs_fd = -EBADF;
        struct archive_entry *e;
        int r;

        if (!a)
                return log_oom();
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", dir);
        if (mkdirat(dir_fd, "blobs", 0700) < 0 || mkdirat(dir_fd, "blobs/sha256", 0700) < 0 ||
            (blobs_fd = openat(dir_fd, "blobs/sha256", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                return log_error_errno(errno, "Cannot create the blob directory in %s: %m", dir);
        /* Plain, or compressed by libarchive itself: no external decompressor runs (ARCHIVE_WARN). */
        if (archive_read_support_filter_gzip(a) != ARCHIVE_OK || archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
            archive_read_support_format_tar(a) != ARCHIVE_OK || archive_read_open_filename(a, file, 256U * 1024U) != ARCHIVE_OK)
                return log_error_errno(archive_errno(a) > 0 ? archive_errno(a) : EBADMSG, "%s: cannot read %s: %s", ref, file,
                                       archive_error_string(a) ?: "not a tar file");
        while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
                const char *name = archive_entry_pathname(e), *hex;
                int at = dir_fd;
                if (!name || archive_entry_filetype(e) != AE_IFREG)
                        continue;
                name = startswith(name, "./") ?: name;
                if ((hex = startswith(name, "blobs/sha256/")) && string_is_lower_hex(hex, 64)) {
                        at = blobs_fd;
                        name = hex;
                } else if (!streq(name, "index.json") && !streq(name, "oci-layout"))
                        continue;
                _cleanup_close_ int fd = openat(at, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return log_error_errno(errno, "%s: cannot write %s from the archive: %m", ref, name);
                if (archive_read_data_into_fd(a, fd) != ARCHIVE_OK)
                        return log_error_errno(archive_errno(a) > 0 ? archive_errno(a) : EIO, "%s: failed to unpack %s: %s",
                                               ref, name, archive_error_string(a) ?: "short archive");
        }
        if (r != ARCHIVE_EOF)
                return log_error_errno(archive_errno(a) > 0 ? archive_errno(a) : EBADMSG, "%s: failed to read %s: %s", ref,
                                       file, archive_error_string(a) ?: "not a tar file");
        return 0;
}

int oci_ref_parse(const char *ref, OciTransport *ret_transport, char **ret_path, char **ret_name) {
        _cleanup_free_ char *path = NULL, *name = NULL;
        OciTransport transport;
        const char *rest;

        if ((rest = startswith(ref, "oci:")))
                transport = OCI_LAYOUT;
        else if ((rest = startswith(ref, "oci-archive:")))
                transport = OCI_ARCHIVE;
        else if ((rest = startswith(ref, "containers-storage:")))
                transport = OCI_CONTAINERS_STORAGE;
        else
                return log_error_errno(EINVAL, "Unsupported image reference '%s': use oci:DIR[:NAME], oci-archive:FILE[:NAME] "
                                       "or containers-storage:IMAGE.", ref);
        const char *colon = transport == OCI_CONTAINERS_STORAGE ? NULL : strchr(rest, ':');
        path = colon ? strndup(rest, (size_t) (colon - rest)) : strdup(rest);
        if (!path || (colon && !(name = strdup(colon + 1))))
                return log_oom();
        if (isempty(path))
                return log_error_errno(EINVAL, "Image reference '%s' names no %s.", ref,
                                       transport == OCI_CONTAINERS_STORAGE ? "image" : "path");
        if (name && isempty(name))
                return log_error_errno(EINVAL, "Image reference '%s' has an empty name after the colon.", ref);
        /* It goes to podman's command line as one argument: never an option. */
        if (transport == OCI_CONTAINERS_STORAGE && path[0] == '-')
                return log_error_errno(EINVAL, "Image reference '%s' names no image.", ref);
        *ret_transport = transport;
        *ret_path = TAKE_PTR(path);
        *ret_name = TAKE_PTR(name);
        return 0;
}

/* podman's local storage has no stable on-disk format for others to read: podman writes the
 * image as an archive, read as any other. */
static int save_from_storage(const char *ref, const char *image, const char *dir, char **ret_file) {
        _cleanup_free_ char *file = strprintf("%s/image.tar", dir), *output = NULL, *out = NULL, *err = NULL;
        int r;

        if (!file)
                return log_oom();
        output = strprintf("--output=%s", file);
        if (!output)
                return log_oom();
        const char * const argv[] = { "podman", "image", "save", "--format=oci-archive", output, image, NULL };
        r = run_command_output(argv, 4096, &out, &err);
        if (r < 0) {
                char *why = err ?: out;
                return log_error_errno(r, "%s: podman could not save the image (is podman installed, and the image in the "
                                       "storage of the user running this?): %s", ref, why ? strstrip(why) : strerror(-r));
        }
        *ret_file = TAKE_PTR(file);
        return 0;
}

static int tree_is_empty(const char *tree) {
        _cleanup_strv_free_ char **names = NULL;
        int r = readdir_names(AT_FDCWD, tree, &names);
        return r < 0 ? r : !names;
}

int oci_image_unpack(const char *ref, const char *tree, const char *workdir) {
        _cleanup_free_ char *location = NULL, *name = NULL, *saved = NULL, *layout = NULL;
        _cleanup_(rm_rf_and_freep) char *scratch = NULL;
        OciTransport transport;
        int r;

        assert(ref);
        assert(tree);

        r = oci_ref_parse(ref, &transport, &location, &name);
        if (r < 0)
                return r;

        r = tree_is_empty(tree);
        if (r < 0)
                return log_error_errno(r, "Cannot read %s: %m", tree);
        if (r == 0)
                return log_error_errno(ENOTEMPTY, "%s is not empty: an image is unpacked into an empty directory.", tree);

        if (transport == OCI_LAYOUT)
                return unpack_layout(ref, location, name, tree);

        r = mkdtemp_below(workdir, "dreamlink-oci", &scratch);
        if (r < 0)
                return log_error_errno(r, "Failed to create a directory in %s: %m", workdir ?: "/var/tmp");
        if (transport == OCI_CONTAINERS_STORAGE) {
                r = save_from_storage(ref, location, scratch, &saved);
                if (r < 0)
                        return r;
        }
        layout = strprintf("%s/layout", scratch);
        if (!layout)
                return log_oom();
        if (mkdir(layout, 0700) < 0)
                return log_error_errno(errno, "Failed to create %s: %m", layout);
        r = extract_layout(ref, saved ?: location, layout);
        if (r < 0)
                return r;
        return unpack_layout(ref, layout, name, tree);
}
