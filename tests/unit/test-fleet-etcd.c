/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fleet semaphore against a real three-member etcd cluster on the loopback, started here with
 * its data in a temporary directory: contention within the limit (checked on every revision etcd
 * kept of the key), the leader killed mid-rollout, and a cluster without quorum. */
#include <errno.h>
#include <signal.h>
#include <time.h>

#include "tests.h"

#include "etcd.h"
#include "etcd-cluster.h"
#include "fleet-etcd.h"
#include "log.h"

static EtcdCluster cluster;

static int cluster_setup(void **state) {
        return etcd_cluster_start(&cluster, getenv("ETCD"));
}

static int cluster_teardown(void **state) {
        etcd_cluster_stop(&cluster);
        return 0;
}

static EtcdClient client(void) {
        return etcd_cluster_client(&cluster);
}

static void test_semaphore_format(void **state) {
        _cleanup_(fleet_semaphore_done) FleetSemaphore s = {}, back = {};
        _cleanup_free_ char *json = NULL;

        s.max = 2;
        assert_int_equal(strv_extend(&s.holders, "a"), 0);
        assert_int_equal(fleet_semaphore_format(&s, &json), 0);
        assert_string_equal(json, "{\"semaphore\":1,\"max\":2,\"holders\":[\"a\"]}");
        assert_int_equal(fleet_semaphore_parse(json, &back), 0);
        assert_int_equal(back.max, 2);
        assert_int_equal(strv_length(back.holders), 1);
        assert_string_equal(back.holders[0], "a");

        /* locksmith's own empty semaphore. */
        fleet_semaphore_done(&back);
        assert_int_equal(fleet_semaphore_parse("{\"semaphore\":1,\"max\":1,\"holders\":null}", &back), 0);
        assert_null(back.holders);

        assert_int_equal(fleet_semaphore_parse("{\"max\":\"2\",\"holders\":[]}", &back), -EBADMSG);
        assert_int_equal(fleet_semaphore_parse("{\"max\":2,\"holders\":[3]}", &back), -EBADMSG);
        assert_int_equal(fleet_semaphore_parse("[]", &back), -EBADMSG);
}

static void test_take_and_give(void **state) {
        EtcdClient e = client();
        _cleanup_(fleet_semaphore_done) FleetSemaphore s = {};
        _cleanup_free_ char *error = NULL;

        assert_int_equal(fleet_etcd_acquire(&e, "tg", "a", 1, NULL, &error), 1);
        /* Taking again is holding still, so a lost answer is repaired by asking again. */
        assert_int_equal(fleet_etcd_acquire(&e, "tg", "a", 1, NULL, &error), 1);
        assert_int_equal(fleet_etcd_acquire(&e, "tg", "b", 1, &s, &error), 0);
        assert_int_equal(strv_length(s.holders), 1);
        assert_string_equal(s.holders[0], "a");
        fleet_semaphore_done(&s);
        assert_int_equal(fleet_etcd_release(&e, "tg", "b", NULL, &error), 0);
        assert_int_equal(fleet_etcd_release(&e, "tg", "a", NULL, &error), 1);
        assert_int_equal(fleet_etcd_release(&e, "tg", "a", NULL, &error), 0);
        assert_int_equal(fleet_etcd_acquire(&e, "tg", "b", 1, NULL, &error), 1);
        assert_int_equal(fleet_etcd_status(&e, "tg", &s, &error), 0);
        assert_int_equal(s.max, 1);
        assert_string_equal(s.holders[0], "b");
        assert_null(s.holders[1]);
}

/* One machine of a rollout: takes a slot (waiting while none is free or etcd does not answer),
 * switches (here: reads once), gives it back (again until etcd answers). */
static _Noreturn void machine(const char *group, int n, unsigned slots) {
        _cleanup_free_ char *id = strprintf("machine-%d", n);
        EtcdClient e = client();
        srandom(getpid());
        for (;;) {
                _cleanup_free_ char *error = NULL;
                int r = fleet_etcd_acquire(&e, group, id, slots, NULL, &error);
                if (r > 0)
                        break;
                (void) usleep(20 * 1000 + random() % 50000);
        }
        for (;;) {
                _cleanup_free_ char *error = NULL;
                if (fleet_etcd_release(&e, group, id, NULL, &error) >= 0)
                        break;
                (void) usleep(20 * 1000);
        }
        _exit(0);
}

static void wait_machines(const pid_t *pids, int n) {
        for (int i = 0; i < n; i++) {
                int status;
                assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
}

static void test_rollout(void **state) {
        pid_t pids[12];
        for (int i = 0; i < 12; i++) {
                pids[i] = fork();
                assert_true(pids[i] >= 0);
                if (pids[i] == 0)
                        machine("rollout", i, 3);
        }
        wait_machines(pids, 12);
        _cleanup_(etcd_history_done) EtcdHistory history = {};
        assert_int_equal(etcd_cluster_history(&cluster, "rollout", &history), 0);
        assert_true(etcd_history_is_rollout(&history, 12, 3));
}

static void test_leader_killed(void **state) {
        EtcdClient e = client();
        _cleanup_free_ char *error = NULL;
        pid_t pids[6];

        /* The rollout starts while machine-0 of a group with one slot holds it... */
        assert_int_equal(fleet_etcd_acquire(&e, "failover", "machine-0", 1, NULL, &error), 1);
        for (int i = 1; i < 6; i++) {
                pids[i] = fork();
                assert_true(pids[i] >= 0);
                if (pids[i] == 0)
                        machine("failover", i, 1);
        }
        /* ...and the leader dies before it gives the slot back: the others go on with two members. */
        int l = etcd_cluster_leader(&cluster);
        assert_true(l >= 0);
        etcd_cluster_member_kill(&cluster, l);
        for (;;) {
                free(error);
                error = NULL;
                if (fleet_etcd_release(&e, "failover", "machine-0", NULL, &error) >= 0)
                        break;
                (void) usleep(100 * 1000);
        }
        wait_machines(pids + 1, 5);
        _cleanup_(etcd_history_done) EtcdHistory history = {};
        assert_int_equal(etcd_cluster_history(&cluster, "failover", &history), 0);
        assert_true(etcd_history_is_rollout(&history, 6, 1));
        assert_int_equal(etcd_cluster_member_start(&cluster, l), 0);
        assert_int_equal(etcd_cluster_wait_for_quorum(&cluster), 0);
}

static void test_no_quorum(void **state) {
        EtcdClient e = client();
        _cleanup_free_ char *error = NULL;
        int r;

        etcd_cluster_member_kill(&cluster, 1);
        etcd_cluster_member_kill(&cluster, 2);
        /* One member of three is no quorum: it answers nothing, and nobody gets a slot. */
        r = fleet_etcd_acquire(&e, "quorum", "a", 5, NULL, &error);
        assert_true(r < 0);
        assert_non_null(error);
        fprintf(stderr, "without quorum: %s\n", error);

        assert_int_equal(etcd_cluster_member_start(&cluster, 1), 0);
        assert_int_equal(etcd_cluster_member_start(&cluster, 2), 0);
        assert_int_equal(etcd_cluster_wait_for_quorum(&cluster), 0);
        free(error);
        error = NULL;
        assert_int_equal(fleet_etcd_acquire(&e, "quorum", "a", 5, NULL, &error), 1);
        _cleanup_(fleet_semaphore_done) FleetSemaphore s = {};
        assert_int_equal(fleet_etcd_status(&e, "quorum", &s, &error), 0);
        assert_int_equal(s.max, 5);
        assert_string_equal(s.holders[0], "a");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_semaphore_format),
                cmocka_unit_test(test_take_and_give),
                cmocka_unit_test(test_rollout),
                cmocka_unit_test(test_leader_killed),
                cmocka_unit_test(test_no_quorum),
        };
        log_set_max_level(LOG_WARNING);
        return cmocka_run_group_tests(tests, cluster_setup, cluster_teardown);
}
