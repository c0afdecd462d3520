/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The switch's bound on how long what it does not carry may take to stop. */
#include "tests.h"
#include "switch-stop.h"

static char *read_dropin(const char *root, const char *type) {
        _cleanup_free_ char *p = strprintf("%s/run/systemd/system/%s.d/" SWITCH_STOP_DROPIN_NAME, root, type);
        char *s = NULL;
        assert_non_null(p);
        return read_file_limited(p, 4096, &s, NULL) < 0 ? NULL : s;
}

/* Every service and scope gets the bound, in a drop-in named to sort after the units' own
 * (systemd applies drop-ins in name order, whatever their directory). */
static void test_install_and_remove(void **state) {
        const char *root = *state;

        assert_int_equal(switch_stop_bound_remove(root), 0); /* nothing there: nothing to reload */
        assert_int_equal(switch_stop_bound_install(root, 30 * USEC_PER_SEC, "20261205-0904-ab12"), 0);

        _cleanup_free_ char *service = read_dropin(root, "service"), *scope = read_dropin(root, "scope");
        assert_non_null(service);
        assert_non_null(scope);
        assert_non_null(strstr(service, "\n[Service]\nTimeoutStopSec=30000ms\nSendSIGKILL=yes\n"));
        assert_non_null(strstr(scope, "\n[Scope]\nTimeoutStopSec=30000ms\nSendSIGKILL=yes\n"));
        assert_non_null(strstr(service, "transaction 20261205-0904-ab12"));

        /* Written again (a retried commit): replaced, not added to. */
        assert_int_equal(switch_stop_bound_install(root, 1500 * USEC_PER_MSEC, "20261205-0905-cd34"), 0);
        _cleanup_free_ char *again = read_dropin(root, "service");
        assert_non_null(strstr(again, "TimeoutStopSec=1500ms\n"));
        assert_null(strstr(again, "30000ms"));

        assert_int_equal(switch_stop_bound_remove(root), 1);
        _cleanup_free_ char *gone = read_dropin(root, "service"), *gone2 = read_dropin(root, "scope");
        assert_null(gone);
        assert_null(gone2);
        assert_int_equal(switch_stop_bound_remove(root), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_install_and_remove, tmpdir_setup, tmpdir_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
