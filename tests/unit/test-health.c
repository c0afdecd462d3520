/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tests.h"
#include "health.h"
#include "log.h"
#include "updaterd-conf.h"

static int setup(void **state) {
        return conf_root_setup(state, "health");
}

static void write_check(void **state, const char *dir, const char *name, const char *body, mode_t mode) {
        _cleanup_free_ char *d = NULL, *p = NULL;
        assert_true(asprintf(&d, "%s/%s/dreamlink/health.d", (char *) *state, dir) >= 0);
        p = path_join2(d, name);
        assert_int_equal(write_string_file_atomic(p, body, mode), 0);
}

static int check(void **state, usec_t timeout, char **reason) {
        UpdaterConfig c;
        updater_config_init(&c);
        c.health_timeout = timeout;
        int r = health_check(&c, *state, reason);
        updater_config_done(&c);
        return r;
}

static void test_no_checks_pass(void **state) {
        _cleanup_free_ char *reason = NULL;
        assert_int_equal(check(state, 10 * USEC_PER_SEC, &reason), 0);
        assert_null(reason);
}

static void test_all_pass(void **state) {
        _cleanup_free_ char *reason = NULL, *marker = path_join2(*state, "ran");
        _cleanup_free_ char *body = strprintf("#!/bin/sh\necho ok >>%s\n", marker);
        write_check(state, "etc", "10-first", body, 0755);
        write_check(state, "usr/lib", "20-second", body, 0755);
        write_check(state, "etc", "30-not-executable", "#!/bin/sh\nexit 1\n", 0644);
        assert_int_equal(check(state, 10 * USEC_PER_SEC, &reason), 0);
        assert_null(reason);
        _cleanup_free_ char *ran = NULL;
        assert_int_equal(read_file_limited(marker, 1024, &ran, NULL), 0);
        assert_string_equal(ran, "ok\nok\n");
}

static void test_failing_check_named(void **state) {
        _cleanup_free_ char *reason = NULL;
        write_check(state, "etc", "10-ok", "#!/bin/sh\nexit 0\n", 0755);
        write_check(state, "usr/lib", "50-db-answers", "#!/bin/sh\nexit 3\n", 0755);
        assert_int_equal(check(state, 10 * USEC_PER_SEC, &reason), -EBADE);
        assert_non_null(reason);
        assert_non_null(strstr(reason, "50-db-answers failed"));
}

static void test_admin_overrides_vendor(void **state) {
        _cleanup_free_ char *reason = NULL;
        /* The vendor's check fails; the admin's file of the same name replaces it. */
        write_check(state, "usr/lib", "50-vendor", "#!/bin/sh\nexit 1\n", 0755);
        write_check(state, "etc", "50-vendor", "#!/bin/sh\nexit 0\n", 0755);
        assert_int_equal(check(state, 10 * USEC_PER_SEC, &reason), 0);
}

static void test_hanging_check_times_out(void **state) {
        _cleanup_free_ char *reason = NULL;
        write_check(state, "etc", "10-hangs", "#!/bin/sh\nexec sleep 600\n", 0755);
        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(check(state, 1 * USEC_PER_SEC, &reason), -EBADE);
        assert_true(now_usec(CLOCK_MONOTONIC) - t0 < 20 * USEC_PER_SEC);
        assert_non_null(strstr(reason, "10-hangs failed"));
}

int main(void) {
        log_set_max_level(LOG_CRIT);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_no_checks_pass, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_all_pass, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_failing_check_named, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_admin_overrides_vendor, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_hanging_check_times_out, setup, tmpdir_teardown),
        };
        return cmocka_run_group_tests_name("health", tests, NULL, NULL);
}
