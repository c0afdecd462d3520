/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The handoff's kernel command line: what a commit writes is what the new boot reads, and
 * what the new boot reads is never more than a commit would write. */
#include "tests.h"
#include "handoff-cmdline.h"

#define SET "0123456789abcdef0123456789abcdef"

static void test_roundtrip(void **state) {
        _cleanup_free_ char *words = NULL, *line = NULL;
        _cleanup_(handoff_cmdline_done) HandoffCmdline back = {};
        char *units[] = { (char *) "redis-server.service", (char *) "postgresql@17-main.service", NULL };
        HandoffCmdline c = { .set_id = (char *) SET, .units = units, .pid_floor = 5096 };
        (void) state;

        assert_int_equal(handoff_cmdline_format(&c, &words), 0);
        assert_string_equal(words, " dreamlink.handoff=" SET
                                   " dreamlink.handoff.units=redis-server.service,postgresql@17-main.service"
                                   " dreamlink.handoff.pid_floor=5096");
        line = strprintf("root=PARTLABEL=root-b rw%s quiet", words);
        assert_int_equal(handoff_cmdline_parse(line, &back), 0);
        assert_string_equal(back.set_id, SET);
        assert_int_equal(strv_length(back.units), 2);
        assert_string_equal(back.units[1], "postgresql@17-main.service");
        assert_true(back.pid_floor == 5096);
        assert_null(back.rejected);
}

static void test_sessions_only_and_no_floor(void **state) {
        _cleanup_free_ char *words = NULL;
        _cleanup_(handoff_cmdline_done) HandoffCmdline back = {};
        HandoffCmdline c = { .set_id = (char *) SET };
        (void) state;

        assert_int_equal(handoff_cmdline_format(&c, &words), 0);
        assert_string_equal(words, " dreamlink.handoff=" SET);
        assert_int_equal(handoff_cmdline_parse(words, &back), 0);
        assert_null(back.units);
        assert_true(back.pid_floor == 0);
}

static void test_format_refuses_what_parse_would(void **state) {
        _cleanup_free_ char *words = NULL;
        char *bad_unit[] = { (char *) "../evil.service", NULL };
        (void) state;

        assert_int_equal(handoff_cmdline_format(&(HandoffCmdline) { .set_id = (char *) "../../etc" }, &words), -EINVAL);
        assert_int_equal(handoff_cmdline_format(&(HandoffCmdline) { .set_id = (char *) SET, .units = bad_unit }, &words),
                         -EINVAL);
        assert_int_equal(handoff_cmdline_format(&(HandoffCmdline) { .set_id = (char *) SET, .pid_floor = 12 }, &words),
                         -EINVAL);
        assert_null(words);
}

static void test_parse_refuses_and_leaves_out(void **state) {
        _cleanup_(handoff_cmdline_done) HandoffCmdline c = {};
        (void) state;

        assert_int_equal(handoff_cmdline_parse("root=/dev/vda2 quiet", &c), -ENOENT);
        /* Not a transaction id: nothing can be restored from it. */
        assert_int_equal(handoff_cmdline_parse("dreamlink.handoff=../../etc", &c), -EINVAL);
        assert_int_equal(handoff_cmdline_parse("dreamlink.handoff=0123456789ABCDEF0123456789ABCDEF", &c), -EINVAL);
        /* A unit that is no service, a floor that is no PID: left out, the rest stands. */
        assert_int_equal(handoff_cmdline_parse("dreamlink.handoff=" SET
                                               " dreamlink.handoff.units=../x.service,evil.socket,good.service"
                                               " dreamlink.handoff.pid_floor=99999999999",
                                               &c), 0);
        assert_int_equal(strv_length(c.units), 1);
        assert_string_equal(c.units[0], "good.service");
        assert_true(c.pid_floor == 0);
        assert_int_equal(strv_length(c.rejected), 3);
        assert_string_equal(c.rejected[0], "dreamlink.handoff.units=../x.service");
        assert_string_equal(c.rejected[2], "dreamlink.handoff.pid_floor=99999999999");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_sessions_only_and_no_floor),
                cmocka_unit_test(test_format_refuses_what_parse_would),
                cmocka_unit_test(test_parse_refuses_and_leaves_out),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
