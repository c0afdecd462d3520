/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "process-util.h"
#include "tests.h"

/* What a caller reports of a failed command: its exit, and both of its outputs. */
static void test_output_and_error(void **state) {
        (void) state;
        const char * const argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
        _cleanup_free_ char *out = NULL, *err = NULL;

        assert_int_equal(run_command_output(argv, 1024, &out, &err), -EPROTO);
        assert_string_equal(out, "out\n");
        assert_string_equal(err, "err\n");
}

static void test_output_success(void **state) {
        (void) state;
        const char * const argv[] = { "printf", "%s", "a b", NULL };
        _cleanup_free_ char *out = NULL, *err = NULL;

        assert_int_equal(run_command_output(argv, 1024, &out, &err), 0);
        assert_string_equal(out, "a b");
        assert_string_equal(err, "");
}

/* More output than asked for is refused, and the writer is not left blocked on a full pipe
 * (the call returns at all). */
static void test_output_too_big(void **state) {
        (void) state;
        const char * const argv[] = { "sh", "-c", "head -c 1000000 /dev/zero", NULL };
        _cleanup_free_ char *out = NULL;

        assert_int_equal(run_command_output(argv, 1000, &out, NULL), -EFBIG);
        assert_null(out);
}

static void test_missing_program(void **state) {
        (void) state;
        const char * const argv[] = { "/nonexistent/dreamlink-test", NULL };
        _cleanup_free_ char *out = NULL;

        assert_int_equal(run_command_output(argv, 1000, &out, NULL), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_output_and_error),
                cmocka_unit_test(test_output_success),
                cmocka_unit_test(test_output_too_big),
                cmocka_unit_test(test_missing_program),
        };
        return cmocka_run_group_tests_name("process-util", tests, NULL, NULL);
}
