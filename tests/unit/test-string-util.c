/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tests.h"
#include "time-util.h"

static void test_startswith_endswith(void **state) {
        assert_string_equal(startswith("dreamlink-a+3", "dreamlink-"), "a+3");
        assert_null(startswith("dream", "dreamlink"));
        assert_true(endswith("updaterd.conf", ".conf"));
        assert_false(endswith("conf", ".conf"));
        assert_true(endswith("x", ""));
}

static void test_strstrip(void **state) {
        char a[] = "  \t value with space \n";
        char b[] = "   ";
        assert_string_equal(strstrip(a), "value with space");
        assert_string_equal(strstrip(b), "");
}

static void test_strv_split(void **state) {
        _cleanup_strv_free_ char **l = NULL, **empty = NULL;

        assert_int_equal(strv_split("  ssh.service\tredis-server.service  nginx.service ", " \t", &l), 0);
        assert_int_equal(strv_length(l), 3);
        assert_string_equal(l[0], "ssh.service");
        assert_string_equal(l[2], "nginx.service");

        assert_int_equal(strv_split("   ", " ", &empty), 0);
        assert_non_null(empty);
        assert_int_equal(strv_length(empty), 0);
}

static void test_strv_join(void **state) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *a = NULL, *b = NULL, *none = NULL;

        assert_int_equal(strv_split("postgresql@16-main.service postgresql@17-main.service", " ", &l), 0);
        a = strv_join(l, ", ");
        assert_string_equal(a, "postgresql@16-main.service, postgresql@17-main.service");
        b = strv_join(l, "");
        assert_string_equal(b, "postgresql@16-main.servicepostgresql@17-main.service");
        none = strv_join(NULL, " ");
        assert_string_equal(none, "");
}

static void test_strv_copy(void **state) {
        (void) state;
        char *l[] = { (char *) "b", (char *) "a", NULL };
        _cleanup_strv_free_ char **copy = strv_copy(l), **empty = strv_copy(NULL);

        assert_non_null(copy);
        assert_int_equal(strv_length(copy), 2);
        assert_string_equal(copy[0], "b");
        assert_string_equal(copy[1], "a");
        assert_ptr_not_equal(copy[0], l[0]);
        assert_non_null(empty);
        assert_null(empty[0]);
}

static void test_strv_extend_contains_sort(void **state) {
        _cleanup_strv_free_ char **l = NULL;

        assert_int_equal(strv_extend(&l, "b.conf"), 0);
        assert_int_equal(strv_extend(&l, "a.conf"), 0);
        assert_int_equal(strv_extend(&l, "c.conf"), 0);
        assert_true(strv_contains(l, "a.conf"));
        assert_false(strv_contains(l, "d.conf"));
        strv_sort(l);
        assert_string_equal(l[0], "a.conf");
        assert_string_equal(l[1], "b.conf");
        assert_string_equal(l[2], "c.conf");
        assert_null(l[3]);
}

static void test_strv_equal(void **state) {
        char *a[] = { (char *) "autofs /efi", (char *) "vfat /efi", NULL };
        char *b[] = { (char *) "autofs /efi", (char *) "vfat /efi", NULL };
        char *c[] = { (char *) "autofs /efi", NULL };
        char *empty[] = { NULL };

        (void) state;
        assert_true(strv_equal(a, b));
        assert_false(strv_equal(a, c));
        assert_false(strv_equal(c, a));
        assert_true(strv_equal(NULL, empty));
        assert_false(strv_equal(NULL, c));
}

static void test_parse_boolean(void **state) {
        assert_int_equal(parse_boolean("yes"), 1);
        assert_int_equal(parse_boolean("TRUE"), 1);
        assert_int_equal(parse_boolean("on"), 1);
        assert_int_equal(parse_boolean("0"), 0);
        assert_int_equal(parse_boolean("Off"), 0);
        assert_int_equal(parse_boolean("maybe"), -EINVAL);
        assert_int_equal(parse_boolean(""), -EINVAL);
}

static void test_parse_uint64(void **state) {
        uint64_t v = 7;

        assert_int_equal(parse_uint64("18446744073709551615", &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(parse_uint64("18446744073709551616", &v), -ERANGE);
        assert_int_equal(parse_uint64("-1", &v), -EINVAL);
        assert_int_equal(parse_uint64(" 1", &v), -EINVAL);
        assert_int_equal(parse_uint64("12abc", &v), -EINVAL);
        assert_int_equal(parse_uint64("", &v), -EINVAL);
}

static void test_parse_unsigned_range(void **state) {
        unsigned u;
        assert_int_equal(parse_unsigned("4294967295", &u), 0);
        assert_int_equal(u, 4294967295U);
        assert_int_equal(parse_unsigned("4294967296", &u), -ERANGE);
}

static void test_parse_size(void **state) {
        uint64_t v;

        assert_int_equal(parse_size("512", &v), 0);
        assert_true(v == 512);
        assert_int_equal(parse_size("4K", &v), 0);
        assert_true(v == 4096);
        assert_int_equal(parse_size("3 GiB", &v), 0);
        assert_true(v == 3ULL << 30);
        assert_int_equal(parse_size("2T", &v), 0);
        assert_true(v == 2ULL << 40);
        assert_int_equal(parse_size("1.5G", &v), -EINVAL);
        assert_int_equal(parse_size("10X", &v), -EINVAL);
        assert_int_equal(parse_size("1G 2M", &v), -EINVAL);
        assert_int_equal(parse_size("99999999999T", &v), -ERANGE);
        assert_int_equal(parse_size("", &v), -EINVAL);
}

static void test_parse_timespan(void **state) {
        uint64_t v;

        assert_int_equal(parse_timespan("90", &v), 0);
        assert_true(v == 90 * USEC_PER_SEC);
        assert_int_equal(parse_timespan("5min", &v), 0);
        assert_true(v == 5 * USEC_PER_MINUTE);
        assert_int_equal(parse_timespan("1min 30s", &v), 0);
        assert_true(v == 90 * USEC_PER_SEC);
        assert_int_equal(parse_timespan("250ms", &v), 0);
        assert_true(v == 250 * USEC_PER_MSEC);
        assert_int_equal(parse_timespan("2h", &v), 0);
        assert_true(v == 2 * USEC_PER_HOUR);
        assert_int_equal(parse_timespan("soon", &v), -EINVAL);
        assert_int_equal(parse_timespan("5 fortnights", &v), -EINVAL);
        assert_int_equal(parse_timespan("-5s", &v), -EINVAL);
}

static void test_format_bytes(void **state) {
        char buf[FORMAT_BYTES_MAX];
        assert_string_equal(format_bytes(buf, sizeof(buf), 0), "0B");
        assert_string_equal(format_bytes(buf, sizeof(buf), 1023), "1023B");
        assert_string_equal(format_bytes(buf, sizeof(buf), 1536), "1.5K");
        assert_string_equal(format_bytes(buf, sizeof(buf), 5ULL << 30), "5.0G");
}

static void test_format_timespan(void **state) {
        char buf[FORMAT_TIMESPAN_MAX];
        assert_string_equal(format_timespan(buf, sizeof(buf), 500), "500us");
        assert_string_equal(format_timespan(buf, sizeof(buf), 42 * USEC_PER_MSEC), "42ms");
        assert_string_equal(format_timespan(buf, sizeof(buf), 2500 * USEC_PER_MSEC), "2.5s");
        assert_string_equal(format_timespan(buf, sizeof(buf), 125 * USEC_PER_SEC), "2min 5s");
        assert_string_equal(format_timespan(buf, sizeof(buf), 3 * USEC_PER_HOUR + 4 * USEC_PER_MINUTE), "3h 4min");
}

static void test_timestamp_roundtrip(void **state) {
        char buf[FORMAT_TIMESTAMP_MAX];
        usec_t t;

        assert_int_equal(parse_timestamp_utc("2026-11-23T17:36:55Z", &t), 0);
        assert_true(t == 1795455415ULL * USEC_PER_SEC);
        assert_string_equal(format_timestamp_utc(buf, sizeof(buf), t), "2026-11-23T17:36:55Z");
        assert_int_equal(parse_timestamp_utc("2026-11-23 17:36:55", &t), -EINVAL);
        assert_int_equal(parse_timestamp_utc("2026-11-23T17:36:55Zjunk", &t), -EINVAL);
}

static void test_time_window(void **state) {
        TimeWindow w;
        usec_t t;

        assert_int_equal(time_window_parse("02:00-04:30", &w), 0);
        assert_int_equal(w.start, 120);
        assert_int_equal(w.end, 270);
        assert_int_equal(time_window_parse("23:00-01:00", &w), 0); /* across midnight */
        assert_int_equal(time_window_parse("2:00-4:00", &w), 0);
        assert_int_equal(time_window_parse("02:00", &w), -EINVAL);
        assert_int_equal(time_window_parse("02:00-02:00", &w), -EINVAL);
        assert_int_equal(time_window_parse("24:00-01:00", &w), -EINVAL);
        assert_int_equal(time_window_parse("02:60-03:00", &w), -EINVAL);
        assert_int_equal(time_window_parse("02:00-03:00x", &w), -EINVAL);
        assert_int_equal(time_window_parse("-", &w), -EINVAL);

        /* In UTC, where local time is the timestamps' own. */
        assert_int_equal(setenv("TZ", "UTC", 1), 0);
        tzset();
        assert_int_equal(time_window_parse("02:00-04:00", &w), 0);
        assert_int_equal(parse_timestamp_utc("2026-11-23T03:10:00Z", &t), 0);
        assert_true(time_window_next(&w, t) == 0); /* inside */
        assert_int_equal(parse_timestamp_utc("2026-11-23T01:59:59Z", &t), 0);
        assert_true(time_window_next(&w, t) == 1795399200ULL * USEC_PER_SEC); /* 2026-11-23T02:00:00Z */
        assert_int_equal(parse_timestamp_utc("2026-11-23T04:00:00Z", &t), 0);
        assert_true(time_window_next(&w, t) == (1795399200ULL + 86400) * USEC_PER_SEC); /* tomorrow's */
        assert_int_equal(time_window_parse("23:00-01:00", &w), 0);
        assert_int_equal(parse_timestamp_utc("2026-11-23T00:30:00Z", &t), 0);
        assert_true(time_window_next(&w, t) == 0);
        assert_int_equal(parse_timestamp_utc("2026-11-23T12:00:00Z", &t), 0);
        assert_true(time_window_next(&w, t) == (1795399200ULL + 21 * 3600) * USEC_PER_SEC); /* 23:00 today */
}

static void test_filename_is_valid(void **state) {
        assert_true(filename_is_valid("10-local.conf"));
        assert_false(filename_is_valid(".."));
        assert_false(filename_is_valid("a/b"));
        assert_false(filename_is_valid(""));
}

static void test_string_table_lookup(void **state) {
        static const char * const table[] = { "stage", NULL, "rollback" };
        assert_int_equal(string_table_lookup(table, ELEMENTSOF(table), "rollback"), 2);
        assert_int_equal(string_table_lookup(table, ELEMENTSOF(table), "commit"), -EINVAL);
        assert_int_equal(string_table_lookup(table, ELEMENTSOF(table), NULL), -EINVAL);
}

static void test_escape_control(void **state) {
        _cleanup_free_ char *a = escape_control("6.1.0-amd64"), *b = escape_control("6.1\033]0;owned\007\r\n\177x"),
                            *c = escape_control("");
        assert_string_equal(a, "6.1.0-amd64");
        assert_string_equal(b, "6.1\\x1b]0;owned\\x07\\x0d\\x0a\\x7fx");
        assert_string_equal(c, "");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_escape_control),
                cmocka_unit_test(test_startswith_endswith),
                cmocka_unit_test(test_strstrip),
                cmocka_unit_test(test_strv_split),
                cmocka_unit_test(test_strv_join),
                cmocka_unit_test(test_strv_copy),
                cmocka_unit_test(test_strv_extend_contains_sort),
                cmocka_unit_test(test_strv_equal),
                cmocka_unit_test(test_parse_boolean),
                cmocka_unit_test(test_parse_uint64),
                cmocka_unit_test(test_parse_unsigned_range),
                cmocka_unit_test(test_parse_size),
                cmocka_unit_test(test_parse_timespan),
                cmocka_unit_test(test_format_bytes),
                cmocka_unit_test(test_format_timespan),
                cmocka_unit_test(test_timestamp_roundtrip),
                cmocka_unit_test(test_time_window),
                cmocka_unit_test(test_filename_is_valid),
                cmocka_unit_test(test_string_table_lookup),
        };
        return cmocka_run_group_tests_name("string-util", tests, NULL, NULL);
}
