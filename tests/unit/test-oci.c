/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* OCI layers and images, made here with libarchive, applied and unpacked in a temporary directory:
 * the changeset rules of image-spec layer.md, digests, picking an image from a layout, and that no
 * layer reaches outside its tree. Runs as root: owners, setuid bits and file capabilities. */
#include <ftw.h>
#include <limits.h>
#include <sys/xattr.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "tests.h"
#include "log.h"
#include "oci-image.h"
#include "oci-layer.h"

#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_LAYER "application/vnd.oci.image.layer.v1.tar"
#define MT_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define REF_NAME_KEY "org.opencontainers.image.ref.name"

/* vfs_cap_data v2, little-endian: VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, permitted
 * CAP_NET_RAW (bit 13), nothing inheritable: `setcap cap_net_raw+ep`. */
static const uint8_t CAP_NET_RAW_EP[20] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00 };

/* ---- Layers ---- */

typedef struct Entry {
        char type;              /* f(ile), d(irectory), l (symlink), h(ard link), p (FIFO), c(har device) */
        const char *name;       /* exactly as stored in the tar */
        const char *data;       /* a file's content, a link's target */
        size_t size;            /* of a file's content; 0: strlen(data) */
        mode_t mode;            /* permission bits; 0: 0644 for a file, 0755 for a directory */
        uid_t uid;
        gid_t gid;
        bool caps;              /* with security.capability CAP_NET_RAW_EP */
        const char *user_xattr; /* the value of user.test, if any */
} Entry;

#define E_FILE(n, c, ...) { .type = 'f', .name = (n), .data = (c), __VA_ARGS__ }
#define E_DIR(n, ...) { .type = 'd', .name = (n), __VA_ARGS__ }
#define E_SYMLINK(n, target) { .type = 'l', .name = (n), .data = (target) }
#define E_HARDLINK(n, target) { .type = 'h', .name = (n), .data = (target) }
#define E_FIFO(n) { .type = 'p', .name = (n) }
#define E_CHARDEV(n) { .type = 'c', .name = (n) }
/* A whiteout is an empty file: its name says what it hides. */
#define E_WHITEOUT(n) { .type = 'f', .name = (n), .data = "" }
/* An array of entries and its length, as two arguments. */
#define ENTRIES(...) (const Entry[]) { __VA_ARGS__ }, sizeof((const Entry[]) { __VA_ARGS__ }) / sizeof(Entry)

static void write_tar(const char *path, const Entry *entries, size_t n, bool gzip) {
        struct archive *a = archive_write_new();

        assert_non_null(a);
        assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
        assert_int_equal(gzip ? archive_write_add_filter_gzip(a) : archive_write_add_filter_none(a), ARCHIVE_OK);
        assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
        for (size_t i = 0; i < n; i++) {
                const Entry *e = &entries[i];
                struct archive_entry *ae = archive_entry_new();
                size_t size = 0;

                assert_non_null(ae);
                archive_entry_set_pathname(ae, e->name);
                archive_entry_set_uid(ae, e->uid);
                archive_entry_set_gid(ae, e->gid);
                archive_entry_set_mtime(ae, 1700000000, 0);
                switch (e->type) {
                case 'f':
                        size = e->size ?: strlen(e->data);
                        archive_entry_set_filetype(ae, AE_IFREG);
                        archive_entry_set_perm(ae, e->mode ?: 0644);
                        break;
                case 'd':
                        archive_entry_set_filetype(ae, AE_IFDIR);
                        archive_entry_set_perm(ae, e->mode ?: 0755);
                        break;
                case 'l':
                        archive_entry_set_filetype(ae, AE_IFLNK);
                        archive_entry_set_perm(ae, 0777);
                        archive_entry_set_symlink(ae, e->data);
                        break;
                case 'h':
                        archive_entry_set_filetype(ae, AE_IFREG);
                        archive_entry_set_perm(ae, 0644);
                        archive_entry_set_hardlink(ae, e->data);
                        break;
                case 'p':
                        archive_entry_set_filetype(ae, AE_IFIFO);
                        archive_entry_set_perm(ae, 0600);
                        break;
                case 'c':
                        archive_entry_set_filetype(ae, AE_IFCHR);
                        archive_entry_set_perm(ae, 0666);
                        archive_entry_set_rdevmajor(ae, 1);
                        archive_entry_set_rdevminor(ae, 3);
                        break;
                default:
                        fail_msg("unknown entry type '%c'", e->type);
                }
                archive_entry_set_size(ae, size);
                if (e->caps)
                        archive_entry_xattr_add_entry(ae, "security.capability", CAP_NET_RAW_EP, sizeof CAP_NET_RAW_EP);
                if (e->user_xattr)
                        archive_entry_xattr_add_entry(ae, "user.test", e->user_xattr, strlen(e->user_xattr));
                assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
                if (size > 0)
                        assert_int_equal(archive_write_data(a, e->data, size), (la_ssize_t) size);
                archive_entry_free(ae);
        }
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
}

static char *sha256_digest(const void *data, size_t size) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        char *s, *p;

        assert_int_equal(EVP_Digest(data, size, md, &len, EVP_sha256(), NULL), 1);
        assert_int_equal(len, 32);
        s = p = malloc(strlen("sha256:") + 2 * len + 1);
        assert_non_null(s);
        p += sprintf(p, "sha256:");
        for (unsigned i = 0; i < len; i++)
                p += sprintf(p, "%02x", md[i]);
        return s;
}

static char *file_digest(const char *path, size_t *ret_size) {
        _cleanup_free_ char *data = NULL;
        size_t size;

        assert_int_equal(read_file_limited(path, 64U << 20, &data, &size), 0);
        if (ret_size)
                *ret_size = size;
        return sha256_digest(data, size);
}

/* ---- The fixture: a tree, and a sentinel next to it that no layer may touch ---- */

typedef struct Fixture {
        char *dir;      /* the temporary directory, holding: */
        char *tree;     /* tree/: what layers are applied onto, images unpacked into */
        char *scratch;  /* scratch/: layer tarballs, image layouts, archives */
        char *sentinel; /* sentinel: a file an escaping layer would overwrite, remove or link */
        int tree_fd;
        unsigned n_layers;
        char *outside;  /* outside_state() after setup */
} Fixture;

/* One line about ROOT/NAME: type, mode, owner, link count and what it holds. */
static char *describe(const char *root, const char *name) {
        _cleanup_free_ char *p = path_join2(root, name), *detail = NULL;
        char caps[2 * 64 + 1] = "", user[64] = "";
        uint8_t buf[64];
        struct stat st;
        ssize_t n;

        assert_int_equal(lstat(p, &st), 0);
        if (S_ISREG(st.st_mode)) {
                _cleanup_free_ char *content = NULL;
                assert_int_equal(read_file_limited(p, 1U << 20, &content, NULL), 0);
                detail = escape_control(content);
        } else if (S_ISLNK(st.st_mode)) {
                char target[PATH_MAX] = "";
                assert_true(readlink(p, target, sizeof target - 1) > 0);
                detail = strprintf("-> %s", target);
        } else
                detail = strdup("");
        assert_non_null(detail);
        n = lgetxattr(p, "security.capability", buf, sizeof buf);
        for (ssize_t i = 0; i < n; i++)
                sprintf(caps + 2 * i, "%02x", buf[i]);
        n = lgetxattr(p, "user.test", user, sizeof user - 1);
        if (n < 0)
                user[0] = '\0';

        char *line = strprintf("%s %c %04o %u:%u links=%ju caps=%s user=%s %s", name,
                               S_ISREG(st.st_mode) ? 'f' : S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : '?',
                               (unsigned) (st.st_mode & 07777), (unsigned) st.st_uid, (unsigned) st.st_gid,
                               /* a directory's count depends on its subdirectories, already listed */
                               (uintmax_t) (S_ISDIR(st.st_mode) ? 0 : st.st_nlink), caps, user, detail);
        assert_non_null(line);
        return line;
}

/* nftw() has no user data. */
static char **walk_lines;
static size_t walk_root_len;

static int walk_describe(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (ftw->level == 0)
                return 0;
        _cleanup_free_ char *root = strndup(path, walk_root_len);
        assert_int_equal(strv_push(&walk_lines, describe(root, path + walk_root_len + 1)), 0);
        return 0;
}

/* Everything below ROOT, a line each, sorted: two trees compare equal when they hold the same. */
static char *tree_state(const char *root) {
        walk_lines = NULL;
        walk_root_len = strlen(root);
        assert_int_equal(nftw(root, walk_describe, 16, FTW_PHYS), 0);
        strv_sort(walk_lines);
        char *s = strv_join(walk_lines, "\n");
        walk_lines = strv_free(walk_lines);
        assert_non_null(s);
        return s;
}

/* What is next to the tree (the sentinel, anything an escaping layer made there). */
static char *outside_state(const Fixture *f) {
        _cleanup_(closedirp) DIR *d = opendir(f->dir);
        _cleanup_strv_free_ char **lines = NULL;
        struct dirent *de;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..") && !streq(de->d_name, "tree") &&
                    !streq(de->d_name, "scratch"))
                        assert_int_equal(strv_push(&lines, describe(f->dir, de->d_name)), 0);
        strv_sort(lines);
        char *s = strv_join(lines, "\n");
        assert_non_null(s);
        return s;
}

static void assert_outside_untouched(const Fixture *f) {
        _cleanup_free_ char *now = outside_state(f);
        assert_string_equal(now, f->outside);
}

static int fixture_setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        if (!f || tmpdir_setup((void **) &f->dir) < 0)
                return -1;
        f->tree = path_join2(f->dir, "tree");
        f->scratch = path_join2(f->dir, "scratch");
        f->sentinel = path_join2(f->dir, "sentinel");
        if (mkdir(f->tree, 0755) < 0 || mkdir(f->scratch, 0755) < 0)
                return -1;
        write_test_file(f->dir, "sentinel", "precious\n");
        f->tree_fd = open(f->tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (f->tree_fd < 0)
                return -1;
        f->outside = outside_state(f);
        log_set_target(LOG_TARGET_CONSOLE);
        *state = f;
        return 0;
}

static int fixture_teardown(void **state) {
        Fixture *f = *state;
        safe_close(f->tree_fd);
        tmpdir_teardown((void **) &f->dir);
        free(f->tree);
        free(f->scratch);
        free(f->sentinel);
        free(f->outside);
        free(f);
        return 0;
}

/* Writes a layer into scratch/, returning its path. */
static char *make_layer(Fixture *f, const Entry *entries, size_t n, bool gzip) {
        char *p = strprintf("%s/layer%u.tar%s", f->scratch, f->n_layers++, gzip ? ".gz" : "");
        assert_non_null(p);
        write_tar(p, entries, n, gzip);
        return p;
}

static int apply_file(Fixture *f, const char *path, const char *digest) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        return oci_layer_apply(f->tree_fd, fd, path, digest);
}

static int apply_entries(Fixture *f, const Entry *entries, size_t n) {
        _cleanup_free_ char *p = make_layer(f, entries, n, false);
        return apply_file(f, p, NULL);
}
#define APPLY(f, ...) apply_entries(f, ENTRIES(__VA_ARGS__))

/* A layer that must fail with ERROR, having changed nothing next to the tree. */
#define EXPECT_REFUSED(f, error, ...)                                  \
        do {                                                           \
                assert_int_equal(APPLY(f, __VA_ARGS__), error);        \
                assert_outside_untouched(f);                           \
        } while (0)

/* ---- Looking at a tree ---- */

static bool exists_in(const char *root, const char *name) {
        _cleanup_free_ char *p = path_join2(root, name);
        struct stat st;
        return lstat(p, &st) == 0;
}

static struct stat lstat_in(const char *root, const char *name) {
        _cleanup_free_ char *p = path_join2(root, name);
        struct stat st;
        if (lstat(p, &st) < 0)
                fail_msg("%s: %m", p);
        return st;
}

static void assert_file(const char *root, const char *name, const char *content) {
        _cleanup_free_ char *p = path_join2(root, name), *s = NULL;
        assert_true(S_ISREG(lstat_in(root, name).st_mode));
        assert_int_equal(read_file_limited(p, 1U << 20, &s, NULL), 0);
        assert_string_equal(s, content);
}

static void assert_dir(const char *root, const char *name) {
        assert_true(S_ISDIR(lstat_in(root, name).st_mode));
}

static void assert_symlink(const char *root, const char *name, const char *target) {
        _cleanup_free_ char *p = path_join2(root, name);
        char buf[PATH_MAX] = "";
        assert_true(S_ISLNK(lstat_in(root, name).st_mode));
        assert_true(readlink(p, buf, sizeof buf - 1) > 0);
        assert_string_equal(buf, target);
}

static void assert_absent(const char *root, const char *name) {
        if (exists_in(root, name))
                fail_msg("%s/%s exists", root, name);
}

static void assert_owner_mode(const char *root, const char *name, uid_t uid, gid_t gid, mode_t mode) {
        struct stat st = lstat_in(root, name);
        assert_int_equal(st.st_uid, uid);
        assert_int_equal(st.st_gid, gid);
        assert_int_equal(st.st_mode & 07777, mode);
}

static void assert_same_inode(const char *root, const char *a, const char *b) {
        struct stat sa = lstat_in(root, a), sb = lstat_in(root, b);
        assert_int_equal(sa.st_dev, sb.st_dev);
        assert_int_equal(sa.st_ino, sb.st_ino);
}

static void assert_caps(const char *root, const char *name) {
        _cleanup_free_ char *p = path_join2(root, name);
        uint8_t buf[64];
        assert_int_equal(lgetxattr(p, "security.capability", buf, sizeof buf), sizeof CAP_NET_RAW_EP);
        assert_memory_equal(buf, CAP_NET_RAW_EP, sizeof CAP_NET_RAW_EP);
}

static int find_whiteout(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return startswith(path + ftw->base, ".wh.") ? 1 : 0;
}

static void assert_no_whiteouts(const char *root) {
        assert_int_equal(nftw(root, find_whiteout, 16, FTW_PHYS), 0);
}

static void assert_dir_empty(const char *path) {
        _cleanup_(closedirp) DIR *d = opendir(path);
        struct dirent *de;
        assert_non_null(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        fail_msg("%s is not empty: %s", path, de->d_name);
}

/* Kernels before 6.6 have no user.* xattrs on tmpfs. */
static bool user_xattrs_supported(const char *dir) {
        _cleanup_free_ char *p = path_join2(dir, "xattr-probe");
        write_test_file(dir, "xattr-probe", "");
        bool ok = lsetxattr(p, "user.probe", "1", 1, 0) == 0;
        assert_int_equal(unlink(p), 0);
        return ok;
}

/* ---- OCI image layouts ---- */

typedef struct Layer {
        const Entry *entries;
        size_t n;
} Layer;
#define LAYER(a) { (a), ELEMENTSOF(a) }

static char *add_blob(const char *layout, const void *data, size_t size) {
        char *digest = sha256_digest(data, size);
        _cleanup_free_ char *dir = path_join2(layout, "blobs/sha256");
        _cleanup_free_ char *p = path_join2(dir, digest + strlen("sha256:"));
        assert_int_equal(mkdir_p(dir, 0755), 0);
        assert_int_equal(write_file_atomic(p, data, size, 0644), 0);
        return digest;
}

/* Puts an image of LAYERS into LAYOUT's blobs; returns its descriptor for index.json, naming it
 * REF_NAME (NULL: no annotation) and, when ARCH is given, saying its platform. */
static char *add_image(Fixture *f, const char *layout, const Layer *layers, size_t n, bool gzip,
                       const char *ref_name, const char *arch) {
        _cleanup_strv_free_ char **descriptors = NULL, **diff_ids = NULL;
        _cleanup_free_ char *config = NULL, *config_digest = NULL, *manifest = NULL, *manifest_digest = NULL,
                            *layers_json = NULL, *diff_ids_json = NULL, *annotations = NULL, *platform = NULL;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *tar = make_layer(f, layers[i].entries, layers[i].n, false);
                _cleanup_free_ char *blob = gzip ? make_layer(f, layers[i].entries, layers[i].n, true) : strdup(tar);
                _cleanup_free_ char *data = NULL, *digest = NULL, *diff_id = file_digest(tar, NULL);
                size_t size;

                assert_int_equal(strv_push(&diff_ids, strprintf("\"%s\"", diff_id)), 0);
                assert_int_equal(read_file_limited(blob, 64U << 20, &data, &size), 0);
                digest = add_blob(layout, data, size);
                assert_int_equal(strv_push(&descriptors,
                                           strprintf("{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}",
                                                     gzip ? MT_LAYER_GZIP : MT_LAYER, digest, size)),
                                 0);
        }
        layers_json = strv_join(descriptors, ",");
        diff_ids_json = strv_join(diff_ids, ",");
        config = strprintf("{\"architecture\":\"%s\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[%s]}}",
                           arch ?: "amd64", diff_ids_json);
        config_digest = add_blob(layout, config, strlen(config));
        manifest = strprintf("{\"schemaVersion\":2,\"mediaType\":\"" MT_MANIFEST "\","
                             "\"config\":{\"mediaType\":\"" MT_CONFIG "\",\"digest\":\"%s\",\"size\":%zu},"
                             "\"layers\":[%s]}",
                             config_digest, strlen(config), layers_json);
        manifest_digest = add_blob(layout, manifest, strlen(manifest));
        annotations = ref_name ? strprintf(",\"annotations\":{\"" REF_NAME_KEY "\":\"%s\"}", ref_name) : strdup("");
        platform = arch ? strprintf(",\"platform\":{\"architecture\":\"%s\",\"os\":\"linux\"}", arch) : strdup("");
        return strprintf("{\"mediaType\":\"" MT_MANIFEST "\",\"digest\":\"%s\",\"size\":%zu%s%s}", manifest_digest,
                         strlen(manifest), annotations, platform);
}

static char *index_json(char * const *descriptors) {
        _cleanup_free_ char *manifests = strv_join(descriptors, ",");
        char *index = strprintf("{\"schemaVersion\":2,\"mediaType\":\"" MT_INDEX "\",\"manifests\":[%s]}", manifests);
        assert_non_null(index);
        return index;
}

static void write_index(const char *layout, char * const *descriptors) {
        _cleanup_free_ char *index = index_json(descriptors);
        assert_int_equal(mkdir_p(layout, 0755), 0);
        write_test_file(layout, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
        write_test_file(layout, "index.json", index);
}

/* A layout of one image, unnamed. */
static char *make_layout(Fixture *f, const char *name, const Layer *layers, size_t n, bool gzip) {
        char *layout = path_join2(f->scratch, name);
        _cleanup_strv_free_ char **descriptors = NULL;
        assert_int_equal(strv_push(&descriptors, add_image(f, layout, layers, n, gzip, NULL, NULL)), 0);
        write_index(layout, descriptors);
        return layout;
}

/* The layout as an oci-archive: the same files in a tar. */
static char *make_archive(Fixture *f, const char *layout) {
        _cleanup_free_ char *blobs = path_join2(layout, "blobs/sha256");
        _cleanup_(closedirp) DIR *d = opendir(blobs);
        _cleanup_strv_free_ char **paths = NULL, **contents = NULL;
        Entry entries[64] = {
                E_FILE("oci-layout", NULL),
                E_FILE("index.json", NULL),
                E_DIR("blobs"),
                E_DIR("blobs/sha256"),
        };
        size_t n = 4;
        struct dirent *de;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        assert_int_equal(strv_extend(&paths, de->d_name), 0);
        strv_sort(paths);
        for (size_t i = 0; i < 2; i++) {
                _cleanup_free_ char *p = path_join2(layout, entries[i].name);
                char *s;
                assert_int_equal(read_file_limited(p, 64U << 20, &s, NULL), 0);
                assert_int_equal(strv_push(&contents, s), 0);
                entries[i].data = s;
        }
        STRV_FOREACH(name, paths) {
                _cleanup_free_ char *p = path_join2(blobs, *name);
                char *s;
                size_t size;
                assert_true(n < ELEMENTSOF(entries));
                assert_int_equal(read_file_limited(p, 64U << 20, &s, &size), 0);
                assert_int_equal(strv_push(&contents, s), 0);
                assert_int_equal(strv_push(&contents, strprintf("blobs/sha256/%s", *name)), 0);
                assert_true(size > 0);
                entries[n++] = (Entry) { .type = 'f', .name = contents[strv_length(contents) - 1], .data = s, .size = size };
        }
        char *archive = strprintf("%s.tar", layout);
        write_tar(archive, entries, n, false);
        return archive;
}

static int unpack(const char *format, const char *arg, const char *name, const char *tree, const char *workdir) {
        _cleanup_free_ char *ref = name ? strprintf("%s:%s:%s", format, arg, name) : strprintf("%s:%s", format, arg);
        assert_non_null(ref);
        return oci_image_unpack(ref, tree, workdir);
}

/* An OS in two layers: the second removes, hides and changes what the first made. */
static const Entry BASE_LAYER[] = {
        E_DIR("etc"),
        E_FILE("etc/os-release", "ID=test\nVERSION_ID=1\n"),
        E_FILE("etc/motd", "base\n"),
        E_DIR("usr"),
        E_DIR("usr/bin"),
        E_FILE("usr/bin/tool", "#!/bin/sh\n", .mode = 0755, .caps = true),
        E_SYMLINK("bin", "usr/bin"),
        E_DIR("var/cache/app"),
        E_FILE("var/cache/app/stale", "stale\n"),
        E_DIR("home/user", .mode = 0700, .uid = 1000, .gid = 1000),
        E_FILE("home/user/.profile", "PS1=$\n", .mode = 0600, .uid = 1000, .gid = 1000),
};
static const Entry UPPER_LAYER[] = {
        E_WHITEOUT("etc/.wh.motd"),
        E_WHITEOUT("var/cache/app/.wh..wh..opq"),
        E_FILE("var/cache/app/fresh", "fresh\n"),
        E_FILE("etc/os-release", "ID=test\nVERSION_ID=2\n"),
        E_HARDLINK("usr/bin/tool2", "usr/bin/tool"),
};
static const Layer OS_LAYERS[] = { LAYER(BASE_LAYER), LAYER(UPPER_LAYER) };

/* Another image, told apart by its os-release. */
static const Entry OTHER_LAYER[] = {
        E_DIR("etc"),
        E_FILE("etc/os-release", "ID=other\n"),
};
static const Layer OTHER_LAYERS[] = { LAYER(OTHER_LAYER) };

static void assert_os_tree(const char *tree) {
        assert_file(tree, "etc/os-release", "ID=test\nVERSION_ID=2\n");
        assert_absent(tree, "etc/motd");
        assert_file(tree, "var/cache/app/fresh", "fresh\n");
        assert_absent(tree, "var/cache/app/stale");
        assert_file(tree, "usr/bin/tool", "#!/bin/sh\n");
        assert_owner_mode(tree, "usr/bin/tool", 0, 0, 0755);
        assert_caps(tree, "usr/bin/tool");
        assert_same_inode(tree, "usr/bin/tool", "usr/bin/tool2");
        assert_symlink(tree, "bin", "usr/bin");
        assert_owner_mode(tree, "home/user", 1000, 1000, 0700);
        assert_owner_mode(tree, "home/user/.profile", 1000, 1000, 0600);
        assert_no_whiteouts(tree);
}

/* ---- oci_layer_apply(): what a layer creates ---- */

static void test_layer_creates_entries(void **state) {
        Fixture *f = *state;
        bool user_xattrs = user_xattrs_supported(f->scratch);

        /* usr/ and usr/bin/ are not in the layer: made as missing parents. */
        assert_int_equal(APPLY(f,
                               E_DIR("etc"),
                               E_FILE("etc/hostname", "box\n"),
                               E_FILE("etc/tagged", "t\n", .user_xattr = "hello"),
                               E_SYMLINK("etc/localtime", "/usr/share/zoneinfo/UTC"),
                               E_FILE("usr/bin/ping", "ELF ping\n", .mode = 04755, .caps = true),
                               E_SYMLINK("usr/bin/ping4", "ping"),
                               E_HARDLINK("usr/bin/ping6", "usr/bin/ping"),
                               E_DIR("home/user", .mode = 0700, .uid = 1000, .gid = 1000),
                               /* chown() clears setuid and setgid bits: they must survive it */
                               E_FILE("home/user/tool", "tool\n", .mode = 06755, .uid = 1000, .gid = 1000),
                               E_FILE("home/user/notes", "notes\n", .mode = 0600, .uid = 1000, .gid = 1000),
                               /* a file before its directory: the directory entry then sets the mode */
                               E_FILE("opt/late/file", "late\n"),
                               E_DIR("opt/late", .mode = 0750, .uid = 1000, .gid = 1000)),
                         0);

        assert_dir(f->tree, "etc");
        assert_owner_mode(f->tree, "etc", 0, 0, 0755);
        assert_file(f->tree, "etc/hostname", "box\n");
        assert_owner_mode(f->tree, "etc/hostname", 0, 0, 0644);
        assert_symlink(f->tree, "etc/localtime", "/usr/share/zoneinfo/UTC");
        assert_owner_mode(f->tree, "usr", 0, 0, 0755);
        assert_owner_mode(f->tree, "usr/bin", 0, 0, 0755);

        assert_file(f->tree, "usr/bin/ping", "ELF ping\n");
        assert_owner_mode(f->tree, "usr/bin/ping", 0, 0, 04755);
        assert_caps(f->tree, "usr/bin/ping");
        assert_symlink(f->tree, "usr/bin/ping4", "ping");
        assert_same_inode(f->tree, "usr/bin/ping", "usr/bin/ping6");
        assert_int_equal(lstat_in(f->tree, "usr/bin/ping").st_nlink, 2);

        assert_owner_mode(f->tree, "home/user", 1000, 1000, 0700);
        assert_owner_mode(f->tree, "home/user/tool", 1000, 1000, 06755);
        assert_file(f->tree, "home/user/notes", "notes\n");
        assert_owner_mode(f->tree, "home/user/notes", 1000, 1000, 0600);
        assert_owner_mode(f->tree, "opt/late", 1000, 1000, 0750);
        assert_file(f->tree, "opt/late/file", "late\n");

        if (user_xattrs) {
                _cleanup_free_ char *p = path_join2(f->tree, "etc/tagged");
                char buf[16] = "";
                assert_int_equal(lgetxattr(p, "user.test", buf, sizeof buf - 1), 5);
                assert_string_equal(buf, "hello");
        }
        assert_outside_untouched(f);
}

static void test_layer_skips_special_files(void **state) {
        Fixture *f = *state;

        assert_int_equal(APPLY(f,
                               E_DIR("dev"),
                               E_CHARDEV("dev/null"),
                               E_DIR("run"),
                               E_FIFO("run/initctl"),
                               E_FILE("etc/after", "after\n")),
                         0);
        assert_absent(f->tree, "dev/null");
        assert_absent(f->tree, "run/initctl");
        assert_file(f->tree, "etc/after", "after\n");
}

static void test_layer_hardlink_to_lower_layer(void **state) {
        Fixture *f = *state;

        assert_int_equal(APPLY(f, E_FILE("usr/lib/libc.so.6", "libc\n", .mode = 0755)), 0);
        assert_int_equal(APPLY(f, E_HARDLINK("usr/lib/libc.so", "usr/lib/libc.so.6")), 0);
        assert_same_inode(f->tree, "usr/lib/libc.so", "usr/lib/libc.so.6");
        assert_file(f->tree, "usr/lib/libc.so", "libc\n");
}

static void test_layer_gzip(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *p = make_layer(f, ENTRIES(E_DIR("etc"), E_FILE("etc/zipped", "zipped\n")), true);

        assert_int_equal(apply_file(f, p, NULL), 0);
        assert_file(f->tree, "etc/zipped", "zipped\n");
}

/* ---- Whiteouts ---- */

static void apply_lower_for_whiteouts(Fixture *f) {
        assert_int_equal(APPLY(f,
                               E_FILE("etc/a", "a\n"),
                               E_FILE("etc/b", "b\n"),
                               E_FILE("etc/c", "old c\n"),
                               E_DIR("opt/app/bin"),
                               E_FILE("opt/app/bin/x", "x\n"),
                               E_FILE("opt/keep", "keep\n"),
                               E_DIR("var/lib/d/sub"),
                               E_FILE("var/lib/d/1", "1\n"),
                               E_FILE("var/lib/d/sub/deep", "deep\n"),
                               E_DIR("srv/e"),
                               E_FILE("srv/e/old", "old\n"),
                               E_FILE("srv/sibling", "sibling\n")),
                         0);
}

static void test_whiteout_removes_file_and_directory(void **state) {
        Fixture *f = *state;

        apply_lower_for_whiteouts(f);
        /* etc/c: a whiteout and the same name in one layer; the whiteout hides only the lower one,
         * whichever comes first in the tar. */
        assert_int_equal(APPLY(f,
                               E_FILE("etc/c", "new c\n"),
                               E_WHITEOUT("etc/.wh.a"),
                               E_WHITEOUT("etc/.wh.c"),
                               E_WHITEOUT("opt/.wh.app")),
                         0);
        assert_absent(f->tree, "etc/a");
        assert_file(f->tree, "etc/b", "b\n");
        assert_file(f->tree, "etc/c", "new c\n");
        assert_absent(f->tree, "opt/app");
        assert_file(f->tree, "opt/keep", "keep\n");
        assert_no_whiteouts(f->tree);
}

static void test_opaque_whiteout_before_new_entries(void **state) {
        Fixture *f = *state;

        apply_lower_for_whiteouts(f);
        assert_int_equal(APPLY(f,
                               E_WHITEOUT("var/lib/d/.wh..wh..opq"),
                               E_FILE("var/lib/d/2", "2\n"),
                               E_DIR("var/lib/d/newdir"),
                               E_FILE("var/lib/d/newdir/n", "n\n")),
                         0);
        assert_dir(f->tree, "var/lib/d");
        assert_absent(f->tree, "var/lib/d/1");
        assert_absent(f->tree, "var/lib/d/sub");
        assert_file(f->tree, "var/lib/d/2", "2\n");
        assert_file(f->tree, "var/lib/d/newdir/n", "n\n");
        /* only that directory is hidden */
        assert_file(f->tree, "srv/e/old", "old\n");
        assert_file(f->tree, "etc/a", "a\n");
        assert_no_whiteouts(f->tree);
}

static void test_opaque_whiteout_after_new_entries(void **state) {
        Fixture *f = *state;

        apply_lower_for_whiteouts(f);
        assert_int_equal(APPLY(f,
                               E_DIR("srv/e"),
                               E_FILE("srv/e/new", "new\n"),
                               E_DIR("srv/e/newdir"),
                               E_WHITEOUT("srv/e/.wh..wh..opq")),
                         0);
        assert_dir(f->tree, "srv/e");
        assert_absent(f->tree, "srv/e/old");
        assert_file(f->tree, "srv/e/new", "new\n");
        assert_dir(f->tree, "srv/e/newdir");
        assert_file(f->tree, "srv/sibling", "sibling\n");
        assert_file(f->tree, "var/lib/d/sub/deep", "deep\n");
        assert_no_whiteouts(f->tree);
}

/* ---- Replacing what is in the way ---- */

static void test_replacement(void **state) {
        Fixture *f = *state;

        assert_int_equal(APPLY(f,
                               E_FILE("x", "file x\n"),
                               E_DIR("y"),
                               E_FILE("y/inner", "inner\n"),
                               E_SYMLINK("z", f->sentinel),
                               E_SYMLINK("zz", "../sentinel"),
                               E_FILE("s", "file s\n"),
                               E_DIR("real"),
                               E_FILE("real/f", "f\n"),
                               E_SYMLINK("lnk", "real"),
                               E_DIR("keep", .mode = 0755),
                               E_FILE("keep/old", "old\n"),
                               E_FILE("h1", "shared\n"),
                               E_HARDLINK("h2", "h1")),
                         0);
        assert_int_equal(APPLY(f,
                               E_DIR("x"),
                               E_FILE("x/new", "new\n"),
                               E_FILE("y", "file y\n"),
                               E_FILE("z", "not through the link\n"),
                               E_FILE("zz", "nor this one\n"),
                               E_SYMLINK("s", "x"),
                               E_DIR("lnk", .mode = 0750),
                               E_FILE("lnk/g", "g\n"),
                               E_DIR("keep", .mode = 0700, .uid = 1000, .gid = 1000),
                               E_FILE("keep/added", "added\n"),
                               E_FILE("h1", "replaced\n")),
                         0);

        assert_dir(f->tree, "x");
        assert_file(f->tree, "x/new", "new\n");
        assert_file(f->tree, "y", "file y\n");
        assert_file(f->tree, "z", "not through the link\n");
        assert_file(f->tree, "zz", "nor this one\n");
        assert_symlink(f->tree, "s", "x");
        /* the link is replaced by a directory, not followed into real/ */
        assert_dir(f->tree, "lnk");
        assert_owner_mode(f->tree, "lnk", 0, 0, 0750);
        assert_file(f->tree, "lnk/g", "g\n");
        assert_absent(f->tree, "real/g");
        assert_file(f->tree, "real/f", "f\n");
        /* a directory over a directory keeps what is in it, and takes the new owner and mode */
        assert_file(f->tree, "keep/old", "old\n");
        assert_file(f->tree, "keep/added", "added\n");
        assert_owner_mode(f->tree, "keep", 1000, 1000, 0700);
        /* a new file, not written into the inode the old one shared with h2 */
        assert_file(f->tree, "h1", "replaced\n");
        assert_file(f->tree, "h2", "shared\n");
        assert_outside_untouched(f);
}

static void test_symlinks_inside_tree_followed(void **state) {
        Fixture *f = *state;

        assert_int_equal(APPLY(f,
                               E_DIR("usr/lib"),
                               E_SYMLINK("lib", "usr/lib"),
                               E_DIR("a/b"),
                               E_SYMLINK("a/b/c", "../../usr/lib"),
                               E_SYMLINK("a/d", "..")),
                         0);
        assert_int_equal(APPLY(f,
                               E_FILE("lib/libfoo.so", "foo\n"),
                               E_FILE("a/b/c/libbar.so", "bar\n"),
                               E_FILE("a/d/top", "top\n")),
                         0);
        assert_symlink(f->tree, "lib", "usr/lib");
        assert_symlink(f->tree, "a/b/c", "../../usr/lib");
        assert_file(f->tree, "usr/lib/libfoo.so", "foo\n");
        assert_file(f->tree, "usr/lib/libbar.so", "bar\n");
        assert_file(f->tree, "top", "top\n");
        assert_outside_untouched(f);
}

/* ---- Hostile layers ---- */

static void test_refuses_dotdot_names(void **state) {
        Fixture *f = *state;

        EXPECT_REFUSED(f, -EXDEV, E_FILE("../escape", "out\n"));
        EXPECT_REFUSED(f, -EXDEV, E_FILE("a/../../escape", "out\n"));
        EXPECT_REFUSED(f, -EXDEV, E_DIR("../escape-dir"));
        EXPECT_REFUSED(f, -EXDEV, E_SYMLINK("../escape-link", "/"));
        /* the header refuses any ".." component, even one that would stay inside */
        EXPECT_REFUSED(f, -EXDEV, E_FILE("a/../inside", "in\n"));
        EXPECT_REFUSED(f, -EXDEV, E_WHITEOUT("../.wh.sentinel"));
}

/* The link points into the temporary directory rather than at "/", so that a failure damages
 * only the sentinel. */
static void test_refuses_absolute_symlink_parent(void **state) {
        Fixture *f = *state;

        EXPECT_REFUSED(f, -EXDEV, E_SYMLINK("evil", f->dir), E_FILE("evil/sentinel", "pwned\n"));
        EXPECT_REFUSED(f, -EXDEV, E_SYMLINK("evil2", f->dir), E_FILE("evil2/escape", "out\n"));
        EXPECT_REFUSED(f, -EXDEV, E_SYMLINK("evil3", f->dir), E_DIR("evil3/escape-dir"));
        /* the link from a lower layer */
        assert_int_equal(APPLY(f, E_SYMLINK("evil4", f->dir)), 0);
        EXPECT_REFUSED(f, -EXDEV, E_FILE("evil4/sentinel", "pwned\n"));
        EXPECT_REFUSED(f, -EXDEV, E_SYMLINK("evil4/escape-link", "/"));
}

static void test_refuses_relative_symlink_parent(void **state) {
        Fixture *f = *state;

        /* tree/a/b/up -> tree/.. : the temporary directory */
        EXPECT_REFUSED(f, -EXDEV,
                       E_DIR("a/b"),
                       E_SYMLINK("a/b/up", "../../.."),
                       E_FILE("a/b/up/escape", "out\n"));
        EXPECT_REFUSED(f, -EXDEV,
                       E_DIR("c/d"),
                       E_SYMLINK("c/d/up", "../../.."),
                       E_FILE("c/d/up/sentinel", "pwned\n"));
        /* through a chain of links, each harmless on its own */
        EXPECT_REFUSED(f, -EXDEV,
                       E_DIR("e/f"),
                       E_SYMLINK("e/f/up", "../.."),
                       E_SYMLINK("chain", "e/f/up/.."),
                       E_FILE("chain/escape", "out\n"));
}

static void test_refuses_hardlink_outside(void **state) {
        Fixture *f = *state;

        EXPECT_REFUSED(f, -EXDEV, E_HARDLINK("stolen", "../sentinel"));
        EXPECT_REFUSED(f, -EXDEV, E_SYMLINK("evil", f->dir), E_HARDLINK("stolen2", "evil/sentinel"));
        EXPECT_REFUSED(f, -EXDEV,
                       E_DIR("a/b"),
                       E_SYMLINK("a/b/up", "../../.."),
                       E_HARDLINK("stolen3", "a/b/up/sentinel"));
        assert_int_equal(lstat_in(f->dir, "sentinel").st_nlink, 1);
}

static void test_whiteout_never_through_links(void **state) {
        Fixture *f = *state;

        /* A whiteout's directory is a directory of its own layer (overlayfs never puts one below a
         * link), so a link in a lower layer hides nothing behind it: neither outside the tree... */
        assert_int_equal(APPLY(f, E_SYMLINK("evil", f->dir), E_DIR("a/b"), E_SYMLINK("a/b/up", "../../..")), 0);
        assert_int_equal(APPLY(f, E_WHITEOUT("evil/.wh.sentinel")), 0);
        assert_int_equal(APPLY(f, E_WHITEOUT("evil/.wh..wh..opq")), 0);
        assert_int_equal(APPLY(f, E_WHITEOUT("a/b/up/.wh.sentinel")), 0);
        /* ".wh.." would hide "..": whatever the error, the tree's parent stays */
        assert_true(APPLY(f, E_WHITEOUT(".wh..")) < 0);
        assert_outside_untouched(f);
        assert_dir(f->tree, "a/b");

        /* ...nor inside it, where a layer replaces a link with a directory (opaque, as overlayfs
         * makes a directory over a removed link) or hides a name in the new directory. */
        assert_int_equal(APPLY(f, E_DIR("usr/lib"), E_FILE("usr/lib/keep", "kept\n"), E_SYMLINK("lib", "usr/lib"),
                               E_SYMLINK("lib2", "usr/lib")),
                         0);
        assert_int_equal(APPLY(f, E_DIR("lib"), E_WHITEOUT("lib/.wh..wh..opq"), E_FILE("lib/new", "new\n"),
                               E_DIR("lib2"), E_WHITEOUT("lib2/.wh.keep")),
                         0);
        assert_file(f->tree, "usr/lib/keep", "kept\n");
        assert_file(f->tree, "lib/new", "new\n");
        assert_dir(f->tree, "lib2");
}

static void test_refuses_names_that_are_not_paths(void **state) {
        Fixture *f = *state;

        EXPECT_REFUSED(f, -EBADMSG, E_FILE(".", "dot\n"));
        EXPECT_REFUSED(f, -EBADMSG, E_FILE("", "empty\n"));
}

/* ---- Digests ---- */

static void test_digest_checked_before_changes(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *lower = make_layer(f, ENTRIES(E_FILE("etc/a", "a\n"), E_FILE("etc/keep", "keep\n"),
                                                           E_DIR("opt/app"), E_FILE("opt/app/x", "x\n"),
                                                           E_FILE("srv/old", "old\n")),
                                                false);
        const Entry upper_entries[] = {
                E_WHITEOUT("etc/.wh.a"),
                E_WHITEOUT("opt/.wh.app"),
                E_WHITEOUT("srv/.wh..wh..opq"),
                E_FILE("etc/keep", "changed\n"),
                E_FILE("etc/new", "new\n"),
        };
        _cleanup_free_ char *upper = make_layer(f, upper_entries, ELEMENTSOF(upper_entries), false);
        _cleanup_free_ char *lower_digest = file_digest(lower, NULL), *upper_digest = file_digest(upper, NULL);
        _cleanup_free_ char *flipped = strdup(upper_digest), *before = NULL, *after = NULL;

        assert_int_equal(apply_file(f, lower, lower_digest), 0);
        before = tree_state(f->tree);

        /* the digest of another blob, and the right one with its last digit changed */
        assert_int_equal(apply_file(f, upper, lower_digest), -EBADMSG);
        flipped[strlen(flipped) - 1] = flipped[strlen(flipped) - 1] == '0' ? '1' : '0';
        assert_int_equal(apply_file(f, upper, flipped), -EBADMSG);
        after = tree_state(f->tree);
        assert_string_equal(after, before);

        assert_int_equal(apply_file(f, upper, upper_digest), 0);
        assert_absent(f->tree, "etc/a");
        assert_absent(f->tree, "opt/app");
        assert_absent(f->tree, "srv/old");
        assert_file(f->tree, "etc/keep", "changed\n");
        assert_file(f->tree, "etc/new", "new\n");
}

static void test_digest_of_compressed_blob(void **state) {
        Fixture *f = *state;
        const Entry entries[] = { E_WHITEOUT("etc/.wh.a"), E_FILE("etc/zipped", "zipped\n") };
        _cleanup_free_ char *tar = make_layer(f, entries, ELEMENTSOF(entries), false);
        _cleanup_free_ char *gz = make_layer(f, entries, ELEMENTSOF(entries), true);
        _cleanup_free_ char *diff_id = file_digest(tar, NULL), *blob_digest = file_digest(gz, NULL);

        assert_int_equal(APPLY(f, E_FILE("etc/a", "a\n")), 0);
        /* the digest is the blob's, as stored, not that of the tar inside */
        assert_int_equal(apply_file(f, gz, diff_id), -EBADMSG);
        assert_file(f->tree, "etc/a", "a\n");
        assert_absent(f->tree, "etc/zipped");
        assert_int_equal(apply_file(f, gz, blob_digest), 0);
        assert_absent(f->tree, "etc/a");
        assert_file(f->tree, "etc/zipped", "zipped\n");
}

/* ---- oci_image_unpack() ---- */

static void test_image_unpack_dir(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *layout = make_layout(f, "layout", OS_LAYERS, ELEMENTSOF(OS_LAYERS), false);
        _cleanup_free_ char *work = path_join2(f->scratch, "work");

        assert_int_equal(mkdir(work, 0755), 0);
        assert_int_equal(unpack("oci", layout, NULL, f->tree, work), 0);
        assert_os_tree(f->tree);
}

static void test_image_unpack_gzip(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *layout = make_layout(f, "layout", OS_LAYERS, ELEMENTSOF(OS_LAYERS), true);
        _cleanup_free_ char *work = path_join2(f->scratch, "work");

        assert_int_equal(mkdir(work, 0755), 0);
        assert_int_equal(unpack("oci", layout, NULL, f->tree, work), 0);
        assert_os_tree(f->tree);
}

static char *make_two_image_layout(Fixture *f, const char *name, const char *name1, const char *arch1,
                                   const char *name2, const char *arch2) {
        char *layout = path_join2(f->scratch, name);
        _cleanup_strv_free_ char **descriptors = NULL;
        assert_int_equal(strv_push(&descriptors, add_image(f, layout, OTHER_LAYERS, ELEMENTSOF(OTHER_LAYERS), false,
                                                           name1, arch1)),
                         0);
        assert_int_equal(strv_push(&descriptors, add_image(f, layout, OS_LAYERS, ELEMENTSOF(OS_LAYERS), true, name2,
                                                           arch2)),
                         0);
        write_index(layout, descriptors);
        return layout;
}

static void test_image_unpack_by_name(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *layout = make_two_image_layout(f, "layout", "other", NULL, "os", NULL);
        _cleanup_free_ char *work = path_join2(f->scratch, "work"), *tree2 = path_join2(f->scratch, "tree2");
        _cleanup_free_ char *tree3 = path_join2(f->scratch, "tree3");

        assert_int_equal(mkdir(work, 0755), 0);
        assert_int_equal(mkdir(tree2, 0755), 0);
        assert_int_equal(mkdir(tree3, 0755), 0);

        assert_int_equal(unpack("oci", layout, "os", f->tree, work), 0);
        assert_os_tree(f->tree);
        assert_int_equal(unpack("oci", layout, "other", tree2, work), 0);
        assert_file(tree2, "etc/os-release", "ID=other\n");
        assert_absent(tree2, "usr");

        assert_true(unpack("oci", layout, "missing", tree3, work) < 0);
        assert_dir_empty(tree3);
}

static void test_image_unpack_ambiguous_refused(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *layout = make_two_image_layout(f, "layout", "other", NULL, "os", NULL);
        _cleanup_free_ char *work = path_join2(f->scratch, "work");

        assert_int_equal(mkdir(work, 0755), 0);
        assert_true(unpack("oci", layout, NULL, f->tree, work) < 0);
        assert_dir_empty(f->tree);
}

/* One image for two platforms, as `skopeo copy --all` writes it: index.json names an image index
 * that lists the manifests. */
static void test_image_unpack_picks_amd64_nested(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *layout = path_join2(f->scratch, "layout"), *work = path_join2(f->scratch, "work");
        _cleanup_strv_free_ char **platforms = NULL, **top = NULL;
        _cleanup_free_ char *nested = NULL, *nested_digest = NULL;

        assert_int_equal(strv_push(&platforms, add_image(f, layout, OTHER_LAYERS, ELEMENTSOF(OTHER_LAYERS), false,
                                                         NULL, "arm64")),
                         0);
        assert_int_equal(strv_push(&platforms, add_image(f, layout, OS_LAYERS, ELEMENTSOF(OS_LAYERS), true, NULL,
                                                         "amd64")),
                         0);
        nested = index_json(platforms);
        nested_digest = add_blob(layout, nested, strlen(nested));
        assert_int_equal(strv_push(&top, strprintf("{\"mediaType\":\"" MT_INDEX "\",\"digest\":\"%s\",\"size\":%zu}",
                                                   nested_digest, strlen(nested))),
                         0);
        write_index(layout, top);

        assert_int_equal(mkdir(work, 0755), 0);
        assert_int_equal(unpack("oci", layout, NULL, f->tree, work), 0);
        assert_os_tree(f->tree);
}

/* The same with the manifests listed in index.json itself, as image-layout.md's example does. */
static void test_image_unpack_picks_amd64(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *layout = make_two_image_layout(f, "layout", NULL, "arm64", NULL, "amd64");
        _cleanup_free_ char *work = path_join2(f->scratch, "work");

        assert_int_equal(mkdir(work, 0755), 0);
        assert_int_equal(unpack("oci", layout, NULL, f->tree, work), 0);
        assert_os_tree(f->tree);
}

/* Changes the first blob holding FROM (same length as TO), keeping its size. */
static void tamper_blob(const char *layout, const char *from, const char *to) {
        _cleanup_free_ char *blobs = path_join2(layout, "blobs/sha256");
        _cleanup_(closedirp) DIR *d = opendir(blobs);
        struct dirent *de;

        assert_int_equal(strlen(from), strlen(to));
        assert_non_null(d);
        while ((de = readdir(d))) {
                _cleanup_free_ char *p = path_join2(blobs, de->d_name), *data = NULL;
                size_t size;
                char *hit;

                if (de->d_name[0] == '.')
                        continue;
                assert_int_equal(read_file_limited(p, 64U << 20, &data, &size), 0);
                hit = memmem(data, size, from, strlen(from));
                if (!hit)
                        continue;
                memcpy(hit, to, strlen(to));
                assert_int_equal(write_file_atomic(p, data, size, 0644), 0);
                return;
        }
        fail_msg("no blob holds %s", from);
}

static void test_image_unpack_tampered_layer_refused(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *layout = make_layout(f, "layout", OS_LAYERS, ELEMENTSOF(OS_LAYERS), false);
        _cleanup_free_ char *work = path_join2(f->scratch, "work");

        assert_int_equal(mkdir(work, 0755), 0);
        tamper_blob(layout, "VERSION_ID=2", "VERSION_ID=6");
        assert_true(unpack("oci", layout, NULL, f->tree, work) < 0);
        /* the tampered layer never lands, whatever the lower one left */
        if (exists_in(f->tree, "etc/os-release"))
                assert_file(f->tree, "etc/os-release", "ID=test\nVERSION_ID=1\n");
}

static void test_image_unpack_archive_same_as_dir(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *layout = make_layout(f, "layout", OS_LAYERS, ELEMENTSOF(OS_LAYERS), true);
        _cleanup_free_ char *archive = make_archive(f, layout);
        _cleanup_free_ char *work = path_join2(f->scratch, "work"), *tree2 = path_join2(f->scratch, "tree2");
        _cleanup_free_ char *from_dir = NULL, *from_archive = NULL;

        assert_int_equal(mkdir(work, 0755), 0);
        assert_int_equal(mkdir(tree2, 0755), 0);
        assert_int_equal(unpack("oci", layout, NULL, f->tree, work), 0);
        assert_int_equal(unpack("oci-archive", archive, NULL, tree2, work), 0);
        assert_os_tree(tree2);
        from_dir = tree_state(f->tree);
        from_archive = tree_state(tree2);
        assert_string_equal(from_archive, from_dir);
        assert_dir_empty(work);
}

static void test_image_unpack_archive_by_name(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *layout = make_two_image_layout(f, "layout", "other", NULL, "os", NULL);
        _cleanup_free_ char *archive = make_archive(f, layout);
        _cleanup_free_ char *work = path_join2(f->scratch, "work"), *tree2 = path_join2(f->scratch, "tree2");

        assert_int_equal(mkdir(work, 0755), 0);
        assert_int_equal(mkdir(tree2, 0755), 0);
        assert_int_equal(unpack("oci-archive", archive, "os", f->tree, work), 0);
        assert_os_tree(f->tree);
        assert_true(unpack("oci-archive", archive, NULL, tree2, work) < 0);
        assert_dir_empty(tree2);
        assert_dir_empty(work);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_layer_creates_entries),
                T(test_layer_skips_special_files),
                T(test_layer_hardlink_to_lower_layer),
                T(test_layer_gzip),
                T(test_whiteout_removes_file_and_directory),
                T(test_opaque_whiteout_before_new_entries),
                T(test_opaque_whiteout_after_new_entries),
                T(test_replacement),
                T(test_symlinks_inside_tree_followed),
                T(test_refuses_dotdot_names),
                T(test_refuses_absolute_symlink_parent),
                T(test_refuses_relative_symlink_parent),
                T(test_refuses_hardlink_outside),
                T(test_whiteout_never_through_links),
                T(test_refuses_names_that_are_not_paths),
                T(test_digest_checked_before_changes),
                T(test_digest_of_compressed_blob),
                T(test_image_unpack_dir),
                T(test_image_unpack_gzip),
                T(test_image_unpack_by_name),
                T(test_image_unpack_ambiguous_refused),
                T(test_image_unpack_picks_amd64),
                T(test_image_unpack_picks_amd64_nested),
                T(test_image_unpack_tampered_layer_refused),
                T(test_image_unpack_archive_same_as_dir),
                T(test_image_unpack_archive_by_name),
        };
        return cmocka_run_group_tests_name("oci", tests, NULL, NULL);
}
