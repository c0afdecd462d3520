/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/uio.h>

#include "tests.h"
#include "log.h"

/* What the last journal entry carried, as "FIELD=value" strings. */
static char **journal_fields;

static int capture_journal(const struct iovec *iov, int n) {
        journal_fields = strv_free(journal_fields);
        for (int i = 0; i < n; i++) {
                char *s = strndup(iov[i].iov_base, iov[i].iov_len);
                assert_non_null(s);
                assert_int_equal(strv_push(&journal_fields, s), 0);
        }
        return 0;
}

static int setup(void **state) {
        log_set_target(LOG_TARGET_CONSOLE);
        log_set_max_level(LOG_INFO);
        log_set_transaction_id(NULL);
        log_set_journal_sink(capture_journal);
        unsetenv("JOURNAL_STREAM");
        return 0;
}

static int teardown(void **state) {
        journal_fields = strv_free(journal_fields);
        log_set_journal_sink(NULL);
        log_set_transaction_id(NULL);
        log_set_target(LOG_TARGET_AUTO);
        return 0;
}

static void log_enoent(void *userdata) {
        *(int *) userdata = log_error_errno(ENOENT, "Failed to open %s: %m", "/etc/dreamlink/x");
}

static void test_errno_returns_negative_and_formats_m(void **state) {
        int r = 0;
        _cleanup_free_ char *out = capture_stderr(log_enoent, &r);

        assert_int_equal(r, -ENOENT);
        assert_string_equal(out, "Failed to open /etc/dreamlink/x: No such file or directory\n");
}

static void log_negative(void *userdata) {
        *(int *) userdata = log_warning_errno(-EBADMSG, "bad: %m");
}

static void test_negative_errno_accepted(void **state) {
        int r = 0;
        _cleanup_free_ char *out = capture_stderr(log_negative, &r);

        assert_int_equal(r, -EBADMSG);
        assert_string_equal(out, "bad: Bad message\n");
}

static void log_debug_line(void *userdata) {
        log_debug("hidden %d", 1);
        log_info("shown");
}

static void test_level_filters(void **state) {
        _cleanup_free_ char *out = capture_stderr(log_debug_line, NULL);
        assert_string_equal(out, "shown\n");

        log_set_max_level(LOG_DEBUG);
        _cleanup_free_ char *out2 = capture_stderr(log_debug_line, NULL);
        assert_string_equal(out2, "hidden 1\nshown\n");
}

static void log_unit_line(void *userdata) {
        log_unit_warning("redis-server.service", "cannot be dumped");
}

static void test_unit_prefix_on_console(void **state) {
        _cleanup_free_ char *out = capture_stderr(log_unit_line, NULL);
        assert_string_equal(out, "redis-server.service: cannot be dumped\n");
}

static void test_errno_preserved(void **state) {
        errno = EAGAIN;
        log_set_max_level(LOG_EMERG); /* nothing printed, but the path still runs */
        (void) log_error_errno(ENOSPC, "x");
        assert_int_equal(errno, EAGAIN);
        log_set_max_level(LOG_INFO);
        log_set_target(LOG_TARGET_JOURNAL);
        errno = EAGAIN;
        (void) log_error_errno(ENOSPC, "x");
        assert_int_equal(errno, EAGAIN);
}

static void test_journal_structured_fields(void **state) {
        log_set_target(LOG_TARGET_JOURNAL);
        log_setup("updaterd");
        assert_int_equal(log_set_transaction_id("0123456789abcdef0123456789abcdef"), 0);

        int r = log_unit_error_errno("nginx.service", ENOSPC, "Dump of %s failed: %m", "nginx");
        assert_int_equal(r, -ENOSPC);
        assert_non_null(journal_fields);
        assert_true(strv_contains(journal_fields, "MESSAGE=Dump of nginx failed: No space left on device"));
        assert_true(strv_contains(journal_fields, "PRIORITY=3"));
        assert_true(strv_contains(journal_fields, "ERRNO=28"));
        assert_true(strv_contains(journal_fields, "UNIT=nginx.service"));
        assert_true(strv_contains(journal_fields, "OBJECT_SYSTEMD_UNIT=nginx.service"));
        assert_true(strv_contains(journal_fields, "TRANSACTION_ID=0123456789abcdef0123456789abcdef"));
        assert_true(strv_contains(journal_fields, "SYSLOG_IDENTIFIER=updaterd"));
        assert_true(strv_contains(journal_fields, "CODE_FUNC=test_journal_structured_fields"));
}

static void test_journal_omits_absent_fields(void **state) {
        log_set_target(LOG_TARGET_JOURNAL);
        log_info("plain");
        STRV_FOREACH(f, journal_fields) {
                assert_null(startswith(*f, "ERRNO="));
                assert_null(startswith(*f, "UNIT="));
                assert_null(startswith(*f, "TRANSACTION_ID="));
        }
        assert_true(strv_contains(journal_fields, "PRIORITY=6"));
}

static void test_auto_target_follows_journal_stream(void **state) {
        struct stat st;
        char buf[64];

        log_set_target(LOG_TARGET_AUTO);
        assert_int_equal(log_get_target(), LOG_TARGET_CONSOLE);

        assert_int_equal(fstat(STDERR_FILENO, &st), 0);
        snprintf(buf, sizeof(buf), "%llu:%llu", (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
        setenv("JOURNAL_STREAM", buf, 1);
        assert_int_equal(log_get_target(), LOG_TARGET_JOURNAL);

        /* Inherited by a child whose stderr went elsewhere: not the journal. */
        setenv("JOURNAL_STREAM", "1:1", 1);
        assert_int_equal(log_get_target(), LOG_TARGET_CONSOLE);
        unsetenv("JOURNAL_STREAM");
}

static void test_environment_settings(void **state) {
        setenv("DREAMLINK_LOG_LEVEL", "debug", 1);
        setenv("DREAMLINK_LOG_TARGET", "journal", 1);
        log_setup("test");
        assert_int_equal(log_get_max_level(), LOG_DEBUG);
        assert_int_equal(log_get_target(), LOG_TARGET_JOURNAL);
        unsetenv("DREAMLINK_LOG_LEVEL");
        unsetenv("DREAMLINK_LOG_TARGET");
}

static void test_last_error_kept_even_when_quiet(void **state) {
        log_clear_last_error();
        assert_null(log_get_last_error());
        log_set_max_level(LOG_EMERG);
        (void) log_error_errno(ENOSPC, "Staging needs %s more on /var: %m", "1.2G");
        log_warning("not an error");
        assert_string_equal(log_get_last_error(), "Staging needs 1.2G more on /var: No space left on device");
        log_clear_last_error();
        assert_null(log_get_last_error());
}

static void test_level_and_target_names(void **state) {
        assert_int_equal(log_level_from_string("warning"), LOG_WARNING);
        assert_int_equal(log_level_from_string("error"), LOG_ERR);
        assert_int_equal(log_level_from_string("loud"), -EINVAL);
        assert_string_equal(log_level_to_string(LOG_NOTICE), "notice");
        assert_null(log_level_to_string(42));
        assert_int_equal(log_target_from_string("console"), LOG_TARGET_CONSOLE);
        assert_int_equal(log_target_from_string("syslog"), _LOG_TARGET_INVALID);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_errno_returns_negative_and_formats_m, setup, teardown),
                cmocka_unit_test_setup_teardown(test_negative_errno_accepted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_level_filters, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unit_prefix_on_console, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errno_preserved, setup, teardown),
                cmocka_unit_test_setup_teardown(test_journal_structured_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_journal_omits_absent_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_auto_target_follows_journal_stream, setup, teardown),
                cmocka_unit_test_setup_teardown(test_environment_settings, setup, teardown),
                cmocka_unit_test_setup_teardown(test_last_error_kept_even_when_quiet, setup, teardown),
                cmocka_unit_test_setup_teardown(test_level_and_target_names, setup, teardown),
        };
        return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
