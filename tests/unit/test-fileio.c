/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>

#include "tests.h"

static unsigned count_entries(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        unsigned n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static void test_write_atomic_creates_with_mode(void **state) {
        _cleanup_free_ char *p = path_join2(*state, "state.json"), *c = NULL;
        struct stat st;

        assert_int_equal(write_string_file_atomic(p, "{\"step\":1}\n", 0600), 0);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(read_file_limited(p, 1024, &c, NULL), 0);
        assert_string_equal(c, "{\"step\":1}\n");
        /* No temporary file is left beside it. */
        assert_int_equal(count_entries(*state), 1);
}

/* A drop-in's UNIT.d directory may not exist yet. */
static void test_write_atomic_mkdir(void **state) {
        _cleanup_free_ char *p = path_join2(*state, "run/systemd/system/service.d/zz.conf"), *got = NULL;
        assert_int_equal(write_string_file_atomic_mkdir(p, "[Service]\n", 0644), 0);
        assert_int_equal(read_file_limited(p, 64, &got, NULL), 0);
        assert_string_equal(got, "[Service]\n");
}

static void test_write_atomic_replaces(void **state) {
        _cleanup_free_ char *p = path_join2(*state, "f"), *c = NULL;
        struct stat before, after;

        assert_int_equal(write_string_file_atomic(p, "old content that is longer", 0644), 0);
        assert_int_equal(stat(p, &before), 0);
        assert_int_equal(write_string_file_atomic(p, "new", 0644), 0);
        assert_int_equal(stat(p, &after), 0);
        assert_int_equal(read_file_limited(p, 1024, &c, NULL), 0);
        assert_string_equal(c, "new");
        /* A rename, not an overwrite in place: readers holding the old file keep it whole. */
        assert_true(before.st_ino != after.st_ino);
        assert_int_equal(count_entries(*state), 1);
}

static void write_big_with_small_fsize_limit(const char *p, int *ret) {
        struct rlimit rl = { .rlim_cur = 4096, .rlim_max = RLIM_INFINITY };
        struct rlimit old;
        static char big[64 * 1024];

        memset(big, 'x', sizeof(big));
        signal(SIGXFSZ, SIG_IGN);
        getrlimit(RLIMIT_FSIZE, &old);
        rl.rlim_max = old.rlim_max;
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
        *ret = write_file_atomic(p, big, sizeof(big), 0644);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        signal(SIGXFSZ, SIG_DFL);
}

static void test_write_atomic_failure_keeps_old(void **state) {
        _cleanup_free_ char *p = path_join2(*state, "record"), *c = NULL;
        int r;

        assert_int_equal(write_string_file_atomic(p, "intact", 0644), 0);
        /* A write that runs out of space half way (as on a full disk). */
        write_big_with_small_fsize_limit(p, &r);
        assert_int_equal(r, -EFBIG);
        assert_int_equal(read_file_limited(p, 1024, &c, NULL), 0);
        assert_string_equal(c, "intact");
        assert_int_equal(count_entries(*state), 1);
}

static void test_write_atomic_missing_dir(void **state) {
        _cleanup_free_ char *p = path_join2(*state, "no/such/dir/file");
        assert_int_equal(write_string_file_atomic(p, "x", 0644), -ENOENT);
}

static void test_read_limited_boundary(void **state) {
        _cleanup_free_ char *p = path_join2(*state, "f"), *c = NULL;
        size_t size = 0;
        char data[100];

        memset(data, 'a', sizeof(data));
        assert_int_equal(write_file_atomic(p, data, sizeof(data), 0644), 0);
        assert_int_equal(read_file_limited(p, 100, &c, &size), 0);
        assert_int_equal(size, 100);
        assert_int_equal(c[100], 0);
        free(TAKE_PTR(c));
        assert_int_equal(read_file_limited(p, 99, &c, &size), -EFBIG);
        assert_null(c);
}

static void test_read_limited_large_file(void **state) {
        _cleanup_free_ char *p = path_join2(*state, "big"), *c = NULL;
        size_t n = 3 * 1024 * 1024 + 17, size;
        _cleanup_free_ char *data = malloc(n);

        for (size_t i = 0; i < n; i++)
                data[i] = (char) ('a' + i % 26);
        assert_int_equal(write_file_atomic(p, data, n, 0644), 0);
        assert_int_equal(read_file_limited(p, n, &c, &size), 0);
        assert_int_equal(size, n);
        assert_memory_equal(c, data, n);
}

static void test_read_empty_and_missing(void **state) {
        _cleanup_free_ char *p = path_join2(*state, "empty"), *q = path_join2(*state, "missing"), *c = NULL;
        size_t size = 1;

        assert_int_equal(write_string_file_atomic(p, "", 0644), 0);
        assert_int_equal(read_file_limited(p, 10, &c, &size), 0);
        assert_int_equal(size, 0);
        assert_string_equal(c, "");
        assert_int_equal(read_file_limited(q, 10, &c, &size), -ENOENT);
}

static void test_mkdir_p(void **state) {
        _cleanup_free_ char *p = path_join2(*state, "a/b/c"), *f = path_join2(*state, "file"),
                            *under_file = path_join2(*state, "file/sub");
        struct stat st;

        assert_int_equal(mkdir_p(p, 0755), 0);
        assert_int_equal(stat(p, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(mkdir_p(p, 0755), 0); /* idempotent */
        write_test_file(*state, "file", "x");
        assert_int_equal(mkdir_p(f, 0755), -ENOTDIR);
        assert_int_equal(mkdir_p(under_file, 0755), -ENOTDIR);
}

static void test_rm_rf(void **state) {
        _cleanup_free_ char *top = path_join2(*state, "tree"), *deep = path_join2(*state, "tree/x/y");

        assert_int_equal(mkdir_p(deep, 0755), 0);
        write_test_file(deep, "f", "1");
        {
                _cleanup_free_ char *link = path_join2(top, "link");
                assert_int_equal(symlink(*state, link), 0); /* must not be followed */
        }
        assert_int_equal(rm_rf(top), 0);
        assert_int_equal(access(top, F_OK), -1);
        assert_int_equal(access(*state, F_OK), 0);
        assert_int_equal(rm_rf(top), 0); /* missing is fine */
}

static void test_readdir_names(void **state) {
        _cleanup_free_ char *dir = path_join2(*state, "d"), *link = path_join2(*state, "link");
        _cleanup_strv_free_ char **names = NULL;

        assert_int_equal(mkdir_p(dir, 0755), 0);
        assert_int_equal(readdir_names(AT_FDCWD, dir, &names), 0);
        assert_null(names);
        write_test_file(dir, "b", "");
        write_test_file(dir, "a", "");
        write_test_file(dir, "c", "");
        assert_int_equal(readdir_names(AT_FDCWD, dir, &names), 0);
        assert_int_equal(strv_length(names), 3);
        assert_string_equal(names[0], "a");
        assert_string_equal(names[2], "c");
        /* A link to a directory is not read through. */
        assert_int_equal(symlink(dir, link), 0);
        strv_free(names);
        names = NULL;
        assert_true(readdir_names(AT_FDCWD, link, &names) < 0);
        assert_int_equal(readdir_names(AT_FDCWD, "/nonexistent-dreamlink", &names), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_write_atomic_creates_with_mode, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_write_atomic_replaces, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_write_atomic_mkdir, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_write_atomic_failure_keeps_old, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_write_atomic_missing_dir, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_read_limited_boundary, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_read_limited_large_file, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_read_empty_and_missing, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_mkdir_p, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_readdir_names, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_rm_rf, tmpdir_setup, tmpdir_teardown),
        };
        return cmocka_run_group_tests_name("fileio", tests, NULL, NULL);
}
