/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libostree side of dreamlink-image against real repositories in a temporary directory. */
#include <endian.h>
#include <ftw.h>
#include <inttypes.h>
#include <sys/xattr.h>

#include "tests.h"
#include "log.h"
#include "ostree-image.h"

/* After macro.h (via tests.h): GLib #undefs MIN/MAX before defining its own, macro.h does not. */
#include <ostree.h>

#define BRANCH "dreamlink/test/x86_64/stable"
#define KVER "6.1.0-test"
#define BIG_FILE_SIZE (512U * 1024U)
#define KERNEL_OVER_FALLBACK_SIZE (4608U * 1024U) /* over ostree's 4 MB delta fallback threshold */

typedef struct Fixture {
        char *dir;  /* the temporary directory, holding: */
        char *tree; /* tree/: a small fake OS */
        char *repo_path; /* repo/: an archive repository */
        OstreeRepo *repo;
} Fixture;

static void mkdir_in(const char *root, const char *name, mode_t mode) {
        _cleanup_free_ char *p = path_join2(root, name);
        assert_int_equal(mkdir_p(p, 0755), 0);
        assert_int_equal(chmod(p, mode), 0);
}

static void write_file_mode(const char *root, const char *name, const void *data, size_t size, mode_t mode) {
        _cleanup_free_ char *p = path_join2(root, name);
        assert_int_equal(write_file_atomic(p, data, size, mode), 0);
}

static void write_random_file(const char *root, const char *name, size_t size, uint64_t seed) {
        _cleanup_free_ char *data = random_bytes(size, seed);
        write_file_mode(root, name, data, size, 0644);
}

static void add_kernel(const char *tree, const char *version, bool with_initrd) {
        _cleanup_free_ char *k = NULL, *i = NULL;
        assert_true(asprintf(&k, "boot/vmlinuz-%s", version) > 0);
        assert_true(asprintf(&i, "boot/initrd.img-%s", version) > 0);
        mkdir_in(tree, "boot", 0755);
        write_test_file(tree, k, "MZ fake kernel\n");
        if (with_initrd)
                write_test_file(tree, i, "fake initramfs\n");
}

/* A small OS: kernel and initrd, /etc, a binary and a big library, a symlink, a private file, and
 * the runtime directories with things in them that must not end up in a commit. */
static void make_tree(const char *tree) {
        mkdir_in(tree, "", 0755);
        add_kernel(tree, KVER, true);
        mkdir_in(tree, "etc", 0755);
        write_test_file(tree, "etc/os-release", "ID=dreamlink-test\nVERSION_ID=1\n");
        write_file_mode(tree, "etc/shadow", "root:*:19000:0:99999:7:::\n", 26, 0600);
        mkdir_in(tree, "usr/bin", 0755);
        write_file_mode(tree, "usr/bin/hello", "#!/bin/sh\necho hello\n", 21, 0755);
        mkdir_in(tree, "usr/lib", 0755);
        write_random_file(tree, "usr/lib/libbig.so", BIG_FILE_SIZE, 42);
        _cleanup_free_ char *link = path_join2(tree, "usr/bin/hi");
        assert_int_equal(symlink("hello", link), 0);

        mkdir_in(tree, "dev", 0755);
        _cleanup_free_ char *fifo = path_join2(tree, "dev/initctl");
        assert_int_equal(mkfifo(fifo, 0600), 0); /* stands in for device nodes */
        write_test_file(tree, "dev/stray-file", "left by the build\n");
        mkdir_in(tree, "run/lock", 0755);
        write_test_file(tree, "run/lock/build.lock", "1234\n");
        mkdir_in(tree, "tmp", 01777);
        write_test_file(tree, "tmp/scratch", "scratch\n");
        mkdir_in(tree, "proc", 0555);
        mkdir_in(tree, "sys", 0555);
}

static int fixture_setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        if (!f || tmpdir_setup((void **) &f->dir) < 0)
                return -1;
        f->tree = path_join2(f->dir, "tree");
        f->repo_path = path_join2(f->dir, "repo");
        make_tree(f->tree);
        log_set_target(LOG_TARGET_CONSOLE);
        if (image_repo_open(f->repo_path, true, &f->repo) < 0)
                return -1;
        *state = f;
        return 0;
}

static int fixture_teardown(void **state) {
        Fixture *f = *state;
        image_repo_unref(f->repo);
        tmpdir_teardown((void **) &f->dir);
        free(f->tree);
        free(f->repo_path);
        free(f);
        return 0;
}

static const ImageCommit *test_commit(const Fixture *f, const char *version) {
        static ImageCommit c;
        c = (ImageCommit) {
                .tree = f->tree,
                .branch = BRANCH,
                .version = version,
                .os_name = "dreamlink-test",
                .cmdline = "console=ttyS0 quiet",
        };
        return &c;
}

static char *commit_ok(const Fixture *f, const char *version) {
        char *checksum = NULL;
        assert_int_equal(image_repo_commit(f->repo, test_commit(f, version), &checksum), 0);
        return checksum;
}

static char *checkout_ok(const Fixture *f, const char *rev, const char *name) {
        char *dest = path_join2(f->dir, name);
        assert_int_equal(image_repo_checkout(f->repo, rev, dest), 0);
        return dest;
}

static bool dir_is_empty(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;
        bool empty = true;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        empty = false;
        closedir(d);
        return empty;
}

static char *read_in(const char *root, const char *name) {
        _cleanup_free_ char *p = path_join2(root, name);
        char *s = NULL;
        assert_int_equal(read_file_limited(p, 8U << 20, &s, NULL), 0);
        return s;
}

static void test_boot_info_good(void **state) {
        Fixture *f = *state;
        _cleanup_(boot_info_done) BootInfo b = {};

        assert_int_equal(boot_info_from_tree(f->tree, &b), 0);
        assert_string_equal(b.kernel_version, KVER);
        assert_string_equal(b.vmlinuz, "boot/vmlinuz-" KVER);
        assert_string_equal(b.initrd, "boot/initrd.img-" KVER);
}

static void boot_info_expect_enoent(void *userdata) {
        BootInfo b = {};
        assert_int_equal(boot_info_from_tree(userdata, &b), -ENOENT);
        assert_null(b.kernel_version);
}

static void test_boot_info_no_kernel(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *boot = path_join2(f->tree, "boot");
        _cleanup_free_ char *out1 = NULL, *out2 = NULL;

        /* Only an initrd, and a vmlinuz that is a directory: neither is a kernel. */
        assert_int_equal(rm_rf(boot), 0);
        mkdir_in(f->tree, "boot/vmlinuz-9.9.9", 0755);
        write_test_file(f->tree, "boot/initrd.img-" KVER, "fake\n");
        out1 = capture_stderr(boot_info_expect_enoent, f->tree);
        assert_non_null(strstr(out1, "no boot/vmlinuz-* file"));

        assert_int_equal(rm_rf(boot), 0);
        out2 = capture_stderr(boot_info_expect_enoent, f->tree);
        assert_non_null(strstr(out2, "has no boot/ directory"));
}

static void test_boot_info_kernel_without_initrd(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *initrd = path_join2(f->tree, "boot/initrd.img-" KVER);

        assert_int_equal(unlink(initrd), 0);
        _cleanup_free_ char *out = capture_stderr(boot_info_expect_enoent, f->tree);
        assert_non_null(strstr(out, "Kernel " KVER " in "));
        assert_non_null(strstr(out, "has no initrd (boot/initrd.img-" KVER ")"));
}

static void test_boot_info_picks_highest_version(void **state) {
        Fixture *f = *state;
        _cleanup_(boot_info_done) BootInfo b = {};

        /* strcmp() would pick 6.9.0; versions compare 6.10 > 6.9. */
        add_kernel(f->tree, "6.9.0-test", true);
        add_kernel(f->tree, "6.10.2-test", true);
        add_kernel(f->tree, "6.2.0-test", true);
        assert_int_equal(boot_info_from_tree(f->tree, &b), 0);
        assert_string_equal(b.kernel_version, "6.10.2-test");
        assert_string_equal(b.vmlinuz, "boot/vmlinuz-6.10.2-test");
        assert_string_equal(b.initrd, "boot/initrd.img-6.10.2-test");

        /* The highest without an initrd is an error, not a quiet fallback to an older kernel. */
        add_kernel(f->tree, "6.11.0-test", false);
        BootInfo b2 = {};
        assert_int_equal(boot_info_from_tree(f->tree, &b2), -ENOENT);
}

static void test_commit_checksum_and_ref(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *checksum = commit_ok(f, "1.0");
        g_autofree char *resolved = NULL;

        assert_int_equal(strlen(checksum), 64);
        assert_true(ostree_validate_checksum_string(checksum, NULL));
        assert_true(ostree_repo_resolve_rev(f->repo, BRANCH, FALSE, &resolved, NULL));
        assert_string_equal(resolved, checksum);
        assert_int_equal(ostree_repo_get_mode(f->repo), OSTREE_REPO_MODE_ARCHIVE);
}

static void test_commit_metadata_read_back(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *checksum = commit_ok(f, "1.0");
        _cleanup_free_ char *csum = NULL, *version = NULL, *cmdline = NULL;
        _cleanup_(boot_info_done) BootInfo b = {};

        assert_int_equal(image_repo_read_commit(f->repo, BRANCH, &csum, &version, &b, &cmdline), 0);
        assert_string_equal(csum, checksum);
        assert_string_equal(version, "1.0");
        assert_string_equal(b.kernel_version, KVER);
        assert_string_equal(b.vmlinuz, "boot/vmlinuz-" KVER);
        assert_string_equal(b.initrd, "boot/initrd.img-" KVER);
        assert_string_equal(cmdline, "console=ttyS0 quiet");

        /* ostree's standard keys are there too, and the subject defaults to "OS VERSION". */
        g_autoptr(GVariant) commit = NULL;
        assert_true(ostree_repo_load_commit(f->repo, checksum, &commit, NULL, NULL));
        g_autoptr(GVariant) meta = g_variant_get_child_value(commit, 0);
        const char *s, *subject;
        gboolean bootable;
        assert_true(g_variant_lookup(meta, "ostree.linux", "&s", &s));
        assert_string_equal(s, KVER);
        assert_true(g_variant_lookup(meta, "ostree.bootable", "b", &bootable) && bootable);
        assert_true(g_variant_lookup(meta, "dreamlink.os", "&s", &s));
        assert_string_equal(s, "dreamlink-test");
        g_variant_get_child(commit, 3, "&s", &subject);
        assert_string_equal(subject, "dreamlink-test 1.0");

        /* Without a command line, none is read back; all outputs are optional. */
        ImageCommit c = *test_commit(f, "1.1");
        c.cmdline = NULL;
        c.subject = "A custom subject";
        _cleanup_free_ char *checksum2 = NULL;
        char sentinel[] = "unset", *cmdline2 = sentinel;
        assert_int_equal(image_repo_commit(f->repo, &c, &checksum2), 0);
        assert_int_equal(image_repo_read_commit(f->repo, checksum2, NULL, NULL, NULL, &cmdline2), 0);
        assert_null(cmdline2);
}

static void test_read_commit_errors(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *version = NULL;

        assert_int_equal(image_repo_read_commit(f->repo, "no/such/branch", NULL, &version, NULL, NULL), -ENOENT);
        assert_null(version);

        /* A commit that plain ostree made, without dreamlink's metadata. */
        g_autoptr(OstreeMutableTree) mtree = ostree_mutable_tree_new();
        g_autoptr(GFile) root = NULL;
        g_autofree char *checksum = NULL;
        assert_true(ostree_repo_prepare_transaction(f->repo, NULL, NULL, NULL));
        /* (The FIFO in dev/ makes plain ostree fail: the reason for the commit filter.) */
        assert_false(ostree_repo_write_dfd_to_mtree(f->repo, AT_FDCWD, f->tree, mtree, NULL, NULL, NULL));
        mkdir_in(f->dir, "plain", 0755);
        _cleanup_free_ char *plain = path_join2(f->dir, "plain");
        write_test_file(plain, "README", "plain\n");
        g_clear_object(&mtree);
        mtree = ostree_mutable_tree_new();
        assert_true(ostree_repo_write_dfd_to_mtree(f->repo, AT_FDCWD, plain, mtree, NULL, NULL, NULL));
        assert_true(ostree_repo_write_mtree(f->repo, mtree, &root, NULL, NULL));
        assert_true(ostree_repo_write_commit(f->repo, NULL, "plain", NULL, NULL, OSTREE_REPO_FILE(root), &checksum,
                                             NULL, NULL));
        assert_true(ostree_repo_commit_transaction(f->repo, NULL, NULL, NULL));
        assert_int_equal(image_repo_read_commit(f->repo, checksum, NULL, &version, NULL, NULL), -EBADMSG);
        assert_null(version);
}

static void test_commit_refuses_tree_without_kernel(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *vmlinuz = path_join2(f->tree, "boot/vmlinuz-" KVER);
        char *checksum = NULL;
        g_autofree char *resolved = NULL;

        assert_int_equal(unlink(vmlinuz), 0);
        assert_int_equal(image_repo_commit(f->repo, test_commit(f, "1.0"), &checksum), -ENOENT);
        assert_null(checksum);
        assert_true(ostree_repo_resolve_rev(f->repo, BRANCH, TRUE, &resolved, NULL));
        assert_null(resolved);

        /* Nor does it take a commit without version or with a bad branch name. */
        ImageCommit c = *test_commit(f, NULL);
        add_kernel(f->tree, KVER, true);
        assert_int_equal(image_repo_commit(f->repo, &c, &checksum), -EINVAL);
        c.version = "1.0";
        c.branch = "bad branch/../";
        assert_int_equal(image_repo_commit(f->repo, &c, &checksum), -EINVAL);
        assert_null(checksum);
}

typedef struct CommitRun {
        const Fixture *f;
        int r;
        char *checksum;
} CommitRun;

static void commit_capturing(void *userdata) {
        CommitRun *run = userdata;
        run->r = image_repo_commit(run->f->repo, test_commit(run->f, "1.0"), &run->checksum);
}

static void test_commit_skips_runtime_contents_and_special_files(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *fifo = path_join2(f->tree, "etc/stray.fifo");
        CommitRun run = { .f = f };
        struct stat st;

        assert_int_equal(mkfifo(fifo, 0644), 0);
        _cleanup_free_ char *out = capture_stderr(commit_capturing, &run);
        _cleanup_free_ char *checksum = run.checksum;
        assert_int_equal(run.r, 0);
        /* Warned about the FIFO outside the runtime directories, silent about the one in dev/. */
        assert_non_null(strstr(out, "Skipping /etc/stray.fifo: ostree cannot hold sockets"));
        assert_null(strstr(out, "/dev/initctl"));

        _cleanup_free_ char *dest = checkout_ok(f, checksum, "checkout");
        static const char * const runtime[] = { "dev", "run", "tmp", "proc", "sys" };
        for (size_t i = 0; i < ELEMENTSOF(runtime); i++) {
                _cleanup_free_ char *p = path_join2(dest, runtime[i]);
                assert_int_equal(lstat(p, &st), 0);
                assert_true(S_ISDIR(st.st_mode));
                if (!dir_is_empty(p))
                        fail_msg("%s is not empty", p);
        }
        _cleanup_free_ char *tmp = path_join2(dest, "tmp"), *proc = path_join2(dest, "proc");
        assert_int_equal(stat(tmp, &st), 0);
        assert_int_equal(st.st_mode & 07777, 01777);
        assert_int_equal(stat(proc, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0555);
        _cleanup_free_ char *fifo_out = path_join2(dest, "etc/stray.fifo");
        assert_int_equal(lstat(fifo_out, &st), -1);
        assert_int_equal(errno, ENOENT);
}

static void test_checkout_reproduces_tree(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *hello_src = path_join2(f->tree, "usr/bin/hello");
        bool root = geteuid() == 0;
        struct stat st;

        if (root)
                assert_int_equal(lchown(hello_src, 1234, 5678), 0);
        _cleanup_free_ char *checksum = commit_ok(f, "1.0");
        _cleanup_free_ char *dest = checkout_ok(f, BRANCH, "checkout");

        _cleanup_free_ char *os_release = read_in(dest, "etc/os-release");
        assert_string_equal(os_release, "ID=dreamlink-test\nVERSION_ID=1\n");
        _cleanup_free_ char *big = read_in(dest, "usr/lib/libbig.so"), *expected = random_bytes(BIG_FILE_SIZE, 42);
        assert_memory_equal(big, expected, BIG_FILE_SIZE);

        _cleanup_free_ char *link = path_join2(dest, "usr/bin/hi");
        char target[64] = {};
        assert_int_equal(readlink(link, target, sizeof(target) - 1), 5);
        assert_string_equal(target, "hello");

        _cleanup_free_ char *shadow = path_join2(dest, "etc/shadow"), *hello = path_join2(dest, "usr/bin/hello");
        assert_int_equal(lstat(shadow, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(lstat(hello, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        assert_int_equal(st.st_nlink, 1); /* a copy, not a link into the repository */
        if (root) {
                assert_int_equal(st.st_uid, 1234);
                assert_int_equal(st.st_gid, 5678);
        }

        /* The destination may not be there already, unless empty. */
        assert_int_equal(image_repo_checkout(f->repo, BRANCH, dest), -ENOTEMPTY);
}

static void test_checkout_into_empty_filesystem_root(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *checksum = commit_ok(f, "1.0");
        _cleanup_free_ char *dest = path_join2(f->dir, "mnt");
        struct stat st;

        /* Like a fresh ext4: only lost+found, and the root with another mode than the tree's. */
        mkdir_in(f->dir, "mnt/lost+found", 0700);
        assert_int_equal(chmod(dest, 0700), 0);
        assert_int_equal(image_repo_checkout(f->repo, checksum, dest), 0);
        assert_int_equal(stat(dest, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        _cleanup_free_ char *os_release = read_in(dest, "etc/os-release");
        assert_string_equal(os_release, "ID=dreamlink-test\nVERSION_ID=1\n");
        _cleanup_free_ char *lf = path_join2(dest, "lost+found");
        assert_int_equal(stat(lf, &st), 0);
}

static void test_file_capabilities_kept_other_xattrs_dropped(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *src = path_join2(f->tree, "usr/bin/hello");
        /* vfs_cap_data revision 2, effective, permitted cap_net_raw (13). */
        const uint32_t cap[5] = { htole32(0x02000001), htole32(1U << 13), 0, 0, 0 };
        uint8_t got[64];

        if (setxattr(src, "security.capability", cap, sizeof(cap), 0) < 0)
                skip(); /* not root, or a file system without xattrs */
        if (setxattr(src, "user.build-host", "builder", 7, 0) < 0 && errno != EOPNOTSUPP)
                fail_msg("setxattr(user.build-host): %s", strerror(errno));

        _cleanup_free_ char *checksum = commit_ok(f, "1.0");
        _cleanup_free_ char *dest = checkout_ok(f, checksum, "checkout");
        _cleanup_free_ char *hello = path_join2(dest, "usr/bin/hello");
        assert_int_equal(getxattr(hello, "security.capability", got, sizeof(got)), sizeof(cap));
        assert_memory_equal(got, cap, sizeof(cap));
        assert_int_equal(getxattr(hello, "user.build-host", got, sizeof(got)), -1);
        assert_true(errno == ENODATA || errno == EOPNOTSUPP);
}

static void test_second_commit_has_first_as_parent(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *c1 = commit_ok(f, "1.0");

        write_test_file(f->tree, "etc/os-release", "ID=dreamlink-test\nVERSION_ID=2\n");
        _cleanup_free_ char *c2 = commit_ok(f, "2.0");
        assert_string_not_equal(c1, c2);

        g_autoptr(GVariant) v1 = NULL, v2 = NULL;
        assert_true(ostree_repo_load_commit(f->repo, c1, &v1, NULL, NULL));
        assert_true(ostree_repo_load_commit(f->repo, c2, &v2, NULL, NULL));
        g_autofree char *p1 = ostree_commit_get_parent(v1), *p2 = ostree_commit_get_parent(v2);
        assert_null(p1);
        assert_string_equal(p2, c1);

        g_autofree char *head = NULL;
        assert_true(ostree_repo_resolve_rev(f->repo, BRANCH, FALSE, &head, NULL));
        assert_string_equal(head, c2);
}

static void test_delta_much_smaller_than_commit(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *c1 = commit_ok(f, "1.0");
        uint64_t size1, size2, delta, full;

        write_test_file(f->tree, "etc/os-release", "ID=dreamlink-test\nVERSION_ID=2\n");
        _cleanup_free_ char *c2 = commit_ok(f, "2.0");

        assert_int_equal(image_repo_commit_size(f->repo, c1, &size1), 0);
        assert_int_equal(image_repo_commit_size(f->repo, BRANCH, &size2), 0);
        assert_int_equal(image_repo_generate_delta(f->repo, c1, c2, &delta), 0);
        assert_int_equal(image_repo_generate_delta(f->repo, NULL, BRANCH, &full), 0);
        print_message("commit sizes %" PRIu64 " and %" PRIu64 " bytes, delta 1→2 %" PRIu64
                      " bytes, full delta %" PRIu64 " bytes\n", size1, size2, delta, full);

        /* Incompressible libbig.so dominates both commits; the delta carries only os-release. */
        assert_true(size2 > BIG_FILE_SIZE);
        assert_true(size1 > BIG_FILE_SIZE);
        assert_true(delta > 0);
        assert_true(delta * 20 < size2);
        assert_true(full > BIG_FILE_SIZE);

        g_autoptr(GPtrArray) names = NULL;
        assert_true(ostree_repo_list_static_delta_names(f->repo, &names, NULL, NULL));
        assert_int_equal(names->len, 2);

        /* Regenerating a delta gives the same size. */
        uint64_t again;
        assert_int_equal(image_repo_generate_delta(f->repo, c1, c2, &again), 0);
        assert_true(again == delta);
}

static char *found_superblock;

static int find_superblock(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (flag == FTW_F && streq(path + ftw->base, "superblock")) {
                found_superblock = strdup(path);
                return 1;
        }
        return 0;
}

/* The delta directory of the only delta in REPO_PATH. */
static char *only_delta_dir(const char *repo_path) {
        _cleanup_free_ char *deltas = path_join2(repo_path, "deltas");
        found_superblock = NULL;
        assert_int_equal(nftw(deltas, find_superblock, 16, FTW_PHYS), 1);
        *strrchr(found_superblock, '/') = 0;
        return TAKE_PTR(found_superblock);
}

/* Deltas are self-contained: applied offline (no objects fetched besides), a client repository
 * gets commit 1 from the full delta, then commit 2 from the 1→2 delta; the kernel is over ostree's
 * fallback size, which by default would leave it out of the delta. */
static void test_deltas_apply_offline(void **state) {
        Fixture *f = *state;
        uint64_t size;

        write_random_file(f->tree, "boot/vmlinuz-" KVER, KERNEL_OVER_FALLBACK_SIZE, 7);
        _cleanup_free_ char *c1 = commit_ok(f, "1.0");
        write_test_file(f->tree, "etc/os-release", "ID=dreamlink-test\nVERSION_ID=2\n");
        _cleanup_free_ char *c2 = commit_ok(f, "2.0");

        /* Each delta alone in a scratch copy of the publishing repo, to find its directory. */
        _cleanup_free_ char *pub1 = path_join2(f->dir, "pub1"), *pub2 = path_join2(f->dir, "pub2");
        _cleanup_free_ char *client_path = path_join2(f->dir, "client");
        /* Bare, as ostree applies deltas only there: an archive repo cannot be the source of the
         * delta's copy-and-patch operations (ostree aborts), and its pull never uses deltas. */
        _cleanup_repo_ OstreeRepo *client = NULL;
        assert_int_equal(mkdir(client_path, 0755), 0);
        client = ostree_repo_create_at(AT_FDCWD, client_path,
                                       geteuid() == 0 ? OSTREE_REPO_MODE_BARE : OSTREE_REPO_MODE_BARE_USER_ONLY,
                                       NULL, NULL, NULL);
        assert_non_null(client);

        const struct { const char *from, *to, *dir; } steps[] = {
                { NULL, c1, pub1 },
                { c1, c2, pub2 },
        };
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                _cleanup_free_ char *cmd = NULL;
                assert_true(asprintf(&cmd, "cp -a '%s' '%s'", f->repo_path, steps[i].dir) > 0);
                assert_int_equal(system(cmd), 0);
                _cleanup_repo_ OstreeRepo *pub = NULL;
                assert_int_equal(image_repo_open(steps[i].dir, false, &pub), 0);
                assert_int_equal(image_repo_generate_delta(pub, steps[i].from, steps[i].to, &size), 0);
                if (!steps[i].from)
                        assert_true(size > KERNEL_OVER_FALLBACK_SIZE); /* the kernel is inside */

                _cleanup_free_ char *dir = only_delta_dir(steps[i].dir);
                g_autoptr(GFile) delta = g_file_new_for_path(dir);
                g_autoptr(GError) error = NULL;
                assert_true(ostree_repo_prepare_transaction(client, NULL, NULL, NULL));
                if (!ostree_repo_static_delta_execute_offline(client, delta, FALSE, NULL, &error))
                        fail_msg("executing delta %s: %s", dir, error->message);
                assert_true(ostree_repo_commit_transaction(client, NULL, NULL, NULL));
        }

        _cleanup_free_ char *version = NULL;
        assert_int_equal(image_repo_read_commit(client, c2, NULL, &version, NULL, NULL), 0);
        assert_string_equal(version, "2.0");
        _cleanup_free_ char *dest = path_join2(f->dir, "checkout");
        assert_int_equal(image_repo_checkout(client, c2, dest), 0);
        _cleanup_free_ char *os_release = read_in(dest, "etc/os-release");
        assert_string_equal(os_release, "ID=dreamlink-test\nVERSION_ID=2\n");
        _cleanup_free_ char *kernel = read_in(dest, "boot/vmlinuz-" KVER);
        _cleanup_free_ char *expected = random_bytes(KERNEL_OVER_FALLBACK_SIZE, 7);
        assert_memory_equal(kernel, expected, KERNEL_OVER_FALLBACK_SIZE);
}

static void test_update_summary_lists_refs_and_deltas(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *c1 = commit_ok(f, "1.0");
        _cleanup_free_ char *summary_path = path_join2(f->repo_path, "summary");
        uint64_t size;
        struct stat st;

        assert_int_equal(image_repo_generate_delta(f->repo, NULL, c1, &size), 0);
        assert_int_equal(lstat(summary_path, &st), -1);
        assert_int_equal(image_repo_update_summary(f->repo), 0);
        assert_int_equal(stat(summary_path, &st), 0);

        g_autoptr(GMappedFile) mf = g_mapped_file_new(summary_path, FALSE, NULL);
        assert_non_null(mf);
        g_autoptr(GBytes) bytes = g_mapped_file_get_bytes(mf);
        g_autoptr(GVariant) summary = g_variant_ref_sink(
                g_variant_new_from_bytes(G_VARIANT_TYPE(OSTREE_SUMMARY_GVARIANT_STRING), bytes, FALSE));
        g_autoptr(GVariant) refs = g_variant_get_child_value(summary, 0);
        g_autoptr(GVariant) meta = g_variant_get_child_value(summary, 1);
        assert_int_equal(g_variant_n_children(refs), 1);
        const char *ref;
        g_variant_get_child(refs, 0, "(&s@(taya{sv}))", &ref, NULL);
        assert_string_equal(ref, BRANCH);
        g_autoptr(GVariant) deltas = g_variant_lookup_value(meta, "ostree.static-deltas", G_VARIANT_TYPE("a{sv}"));
        assert_non_null(deltas);
        g_autoptr(GVariant) full_delta = g_variant_lookup_value(deltas, c1, NULL); /* "FROM-TO", or TO alone */
        assert_non_null(full_delta);
}

static void test_overlay_replaces_files_keeps_dir_modes(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *overlay = path_join2(f->dir, "overlay"), *checksum = NULL, *out = NULL,
                            *hello = NULL, *key = NULL, *etc = NULL;
        struct stat st;

        /* An installation laid over the OS: a replaced binary, a new file, and an /etc
         * directory that must keep the base tree's mode, not the overlay's. */
        mkdir_in(overlay, "usr/bin", 0755);
        write_file_mode(overlay, "usr/bin/hello", "#!/bin/sh\necho overlaid\n", 24, 0755);
        mkdir_in(overlay, "usr/lib/dreamlink/keys.d", 0755);
        write_test_file(overlay, "usr/lib/dreamlink/keys.d/release.pem", "PUBLIC KEY\n");
        mkdir_in(overlay, "etc", 0700);

        ImageCommit c = *test_commit(f, "1");
        const char * const overlays[] = { overlay, NULL };
        c.overlays = overlays;
        assert_int_equal(image_repo_commit(f->repo, &c, &checksum), 0);

        out = checkout_ok(f, checksum, "out");
        hello = read_in(out, "usr/bin/hello");
        assert_string_equal(hello, "#!/bin/sh\necho overlaid\n");
        key = read_in(out, "usr/lib/dreamlink/keys.d/release.pem");
        assert_string_equal(key, "PUBLIC KEY\n");
        etc = path_join2(out, "etc");
        assert_int_equal(stat(etc, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        _cleanup_free_ char *os_release = read_in(out, "etc/os-release");
        assert_string_equal(os_release, "ID=dreamlink-test\nVERSION_ID=1\n");
}

static void test_open_missing_repo(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *missing = path_join2(f->dir, "no/such/repo");
        OstreeRepo *repo = NULL;

        assert_int_equal(image_repo_open(missing, false, &repo), -ENOENT);
        assert_null(repo);

        /* With create: parents made, an archive repo; then it opens without create too. */
        assert_int_equal(image_repo_open(missing, true, &repo), 0);
        assert_int_equal(ostree_repo_get_mode(repo), OSTREE_REPO_MODE_ARCHIVE);
        image_repo_unref(repo);
        assert_int_equal(image_repo_open(missing, false, &repo), 0);
        image_repo_unref(repo);
        /* Creating over an existing repository keeps it. */
        assert_int_equal(image_repo_open(f->repo_path, true, &repo), 0);
        image_repo_unref(repo);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_boot_info_good, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_boot_info_no_kernel, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_boot_info_kernel_without_initrd, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_boot_info_picks_highest_version, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_commit_checksum_and_ref, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_commit_metadata_read_back, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_read_commit_errors, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_commit_refuses_tree_without_kernel, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_commit_skips_runtime_contents_and_special_files, fixture_setup,
                                                fixture_teardown),
                cmocka_unit_test_setup_teardown(test_checkout_reproduces_tree, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_checkout_into_empty_filesystem_root, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_file_capabilities_kept_other_xattrs_dropped, fixture_setup,
                                                fixture_teardown),
                cmocka_unit_test_setup_teardown(test_second_commit_has_first_as_parent, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_delta_much_smaller_than_commit, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_deltas_apply_offline, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_update_summary_lists_refs_and_deltas, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_overlay_replaces_files_keeps_dir_modes, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_open_missing_repo, fixture_setup, fixture_teardown),
        };
        return cmocka_run_group_tests_name("ostree-image", tests, NULL, NULL);
}
