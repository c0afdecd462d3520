/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Walking and creating directories where other users can write: what a local user can plant in
 * the way (links, directories of their own, writable ones) is refused, and nothing outside is
 * touched. Planted in a temporary directory, which stands for / (or /tmp). */
#include "fs-util.h"
#include "tests.h"

static int root_fd(void **state) {
        int fd = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

static bool exists(const char *root, const char *name) {
        _cleanup_free_ char *p = path_join2(root, name);
        struct stat st;
        return lstat(p, &st) == 0;
}

/* The file a planted link points at: its mode must never change. */
static char *victim(const char *root) {
        char *p = path_join2(root, "victim");
        write_test_file(root, "victim", "secret\n");
        assert_int_equal(chmod(p, 0600), 0);
        return p;
}

static void test_open_dir_verified(void **state) {
        const char *root = *state;
        _cleanup_close_ int rfd = root_fd(state), fd = -EBADF;

        make_test_dir(root, "var", 0755);
        make_test_dir(root, "var/tmp", 01777);
        fd = open_dir_verified(rfd, "/var/tmp");
        assert_true(fd >= 0);
        safe_close(fd);
        fd = open_dir_verified(rfd, "var//./tmp/");
        assert_true(fd >= 0);

        make_test_symlink(root, "link", "var");
        assert_int_equal(open_dir_verified(rfd, "/link/tmp"), -ELOOP);
        assert_int_equal(open_dir_verified(rfd, "/var/tmp/../tmp"), -EINVAL);
        write_test_file(root, "var/file", "x");
        assert_int_equal(open_dir_verified(rfd, "/var/file"), -ENOTDIR);
        assert_int_equal(open_dir_verified(rfd, "/var/missing"), -ENOENT);
        /* Writable by others without the sticky bit: anyone could swap what is in it. */
        make_test_dir(root, "var/open", 0777);
        assert_int_equal(open_dir_verified(rfd, "/var/open"), -EPERM);
        make_test_dir(root, "var/group", 0775);
        assert_int_equal(open_dir_verified(rfd, "/var/group"), -EPERM);
}

static void test_open_dir_verified_other_owner(void **state) {
        const char *root = *state;
        _cleanup_close_ int rfd = root_fd(state);
        _cleanup_free_ char *p = path_join2(root, "theirs");

        make_foreign_test_dir(root, "theirs", 0755);
        assert_int_equal(open_dir_verified(rfd, "/theirs"), -EPERM);
        /* Not even a sticky one of theirs. */
        assert_int_equal(chmod(p, 01777), 0);
        assert_int_equal(open_dir_verified(rfd, "/theirs"), -EPERM);
}

static void test_mkdirat_verified_creates_with_mode(void **state) {
        const char *root = *state;
        _cleanup_close_ int rfd = root_fd(state), fd = -EBADF, fd2 = -EBADF;

        mode_t old = umask(022);
        fd = mkdirat_verified(rfd, "sticky", 01777);
        umask(old);
        assert_true(fd >= 0);
        assert_int_equal(test_mode_of(root, "sticky"), 01777);
        /* The one already there is taken as it is. */
        make_test_dir(root, "private", 0755);
        fd2 = mkdirat_verified(rfd, "private", 0700);
        assert_true(fd2 >= 0);
        assert_int_equal(test_mode_of(root, "private"), 0755);

        assert_int_equal(mkdirat_verified(rfd, "a/b", 0700), -EINVAL);
        assert_int_equal(mkdirat_verified(rfd, "..", 0700), -EINVAL);
        assert_int_equal(mkdirat_verified(rfd, "", 0700), -EINVAL);
}

static void test_mkdirat_verified_refuses_planted(void **state) {
        const char *root = *state;
        _cleanup_close_ int rfd = root_fd(state);
        _cleanup_free_ char *v = victim(root);

        /* A link where the directory should be: refused, its target untouched. */
        make_test_symlink(root, "link", v);
        assert_int_equal(mkdirat_verified(rfd, "link", 01777), -ELOOP);
        assert_int_equal(test_mode_of(root, "victim"), 0600);
        make_test_dir(root, "dir", 0700);
        make_test_symlink(root, "dirlink", "dir");
        assert_int_equal(mkdirat_verified(rfd, "dirlink", 01777), -ELOOP);
        assert_int_equal(test_mode_of(root, "dir"), 0700);

        write_test_file(root, "file", "x");
        assert_int_equal(mkdirat_verified(rfd, "file", 0700), -ENOTDIR);
        /* More open than it should be: someone may have put things in it meanwhile. */
        make_test_dir(root, "open", 0777);
        assert_int_equal(mkdirat_verified(rfd, "open", 0700), -EPERM);
        assert_int_equal(test_mode_of(root, "open"), 0777);
        make_test_dir(root, "sticky", 01777);
        assert_int_equal(mkdirat_verified(rfd, "sticky", 0700), -EPERM);
}

static void test_mkdirat_verified_other_owner(void **state) {
        const char *root = *state;
        _cleanup_close_ int rfd = root_fd(state);

        make_foreign_test_dir(root, "theirs", 0700);
        assert_int_equal(mkdirat_verified(rfd, "theirs", 01777), -EPERM);
        assert_int_equal(test_mode_of(root, "theirs"), 0700);
}

static void test_mkdir_p_verified(void **state) {
        const char *root = *state;
        _cleanup_close_ int rfd = root_fd(state), fd = -EBADF;
        _cleanup_free_ char *v = victim(root);

        mode_t old = umask(077);
        fd = mkdir_p_verified(rfd, "/run/systemd/propagate/x.service", 0700);
        umask(old);
        assert_true(fd >= 0);
        assert_int_equal(test_mode_of(root, "run"), 0755);
        assert_int_equal(test_mode_of(root, "run/systemd/propagate"), 0755);
        assert_int_equal(test_mode_of(root, "run/systemd/propagate/x.service"), 0700);
        assert_int_equal(mkdir_p_verified(rfd, "/", 0700), -EINVAL);

        /* A link on the way is refused, nothing is made where it points. */
        make_test_dir(root, "elsewhere", 0755);
        make_test_symlink(root, "run/user", "../elsewhere");
        assert_int_equal(mkdir_p_verified(rfd, "/run/user/1000", 0700), -ELOOP);
        assert_false(exists(root, "elsewhere/1000"));
        make_test_symlink(root, "run/last", v);
        assert_int_equal(mkdir_p_verified(rfd, "/run/last", 01777), -ELOOP);
        assert_int_equal(test_mode_of(root, "victim"), 0600);
        /* A sticky world-writable directory on the way is fine (/tmp): its entries stay root's. */
        make_test_dir(root, "tmp", 01777);
        safe_close(fd);
        fd = mkdir_p_verified(rfd, "/tmp/a/b", 0700);
        assert_true(fd >= 0);
        assert_int_equal(test_mode_of(root, "tmp"), 01777);
        assert_int_equal(test_mode_of(root, "tmp/a"), 0755);
}

static void test_path_is_at_or_below(void **state) {
        (void) state;
        assert_true(path_is_at_or_below("/efi", "/efi"));
        assert_true(path_is_at_or_below("/efi/loader", "/efi"));
        assert_false(path_is_at_or_below("/efix", "/efi"));
        assert_false(path_is_at_or_below("/", "/efi"));
}

static void test_path_split_last(void **state) {
        static const struct { const char *path, *parent, *last; } cases[] = {
                { "/var/tmp/systemd-private-x", "/var/tmp", "systemd-private-x" },
                { "/repo", "/", "repo" },
                { "repo", ".", "repo" },
                { "a/b", "a", "b" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *parent = NULL;
                assert_string_equal(path_split_last(cases[i].path, &parent), cases[i].last);
                assert_string_equal(parent, cases[i].parent);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open_dir_verified, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_open_dir_verified_other_owner, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_mkdirat_verified_creates_with_mode, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_mkdirat_verified_refuses_planted, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_mkdirat_verified_other_owner, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_mkdir_p_verified, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test(test_path_split_last),
                cmocka_unit_test(test_path_is_at_or_below),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
