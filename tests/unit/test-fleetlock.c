/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The FleetLock client (fleetlock.c) and a switch's turn in a FleetLock fleet (fleet.c with the
 * record of fleet-turn.c), against the protocol server of fleetlock-server.h. */
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "tests.h"

#include "fleet.h"
#include "fleet-turn.h"
#include "fleetlock.h"
#include "fleetlock-server.h"
#include "http-server.h"
#include "log.h"

typedef struct Fixture {
        char *dir;
        HttpServer *server;
        LockServer lock;
        char *url;
        char *closed;           /* a URL nothing listens on */
} Fixture;

static char *closed_url(void) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        /* Bound and never listened on: a connection to it is refused for as long as we hold it.
         * Leaked on purpose, for the test's lifetime. */
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        return strprintf("http://127.0.0.1:%u", ntohs(a.sin_port));
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        assert_non_null(f);
        assert_int_equal(tmpdir_setup((void **) &f->dir), 0);
        f->lock = (LockServer) { .max = 1, .group = strdup("web") };
        assert_int_equal(http_server_start(f->dir, NULL, NULL, &f->server), 0);
        http_server_set_post_handler(f->server, fleetlock_server_handler, &f->lock);
        f->url = http_server_url(f->server, "");
        f->closed = closed_url();
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        http_server_stop(f->server);
        strv_free(f->lock.holders);
        free(f->lock.group);
        free(f->url);
        free(f->closed);
        (void) tmpdir_teardown((void **) &f->dir);
        free(f);
        return 0;
}

static void test_protocol(void **state) {
        Fixture *f = *state;
        char *servers[] = { f->url, NULL };
        HttpJsonOptions o = {};
        _cleanup_free_ char *error = NULL;

        assert_int_equal(fleetlock_pre_reboot(servers, &o, "web", "m1", &error), 1);
        /* Asked again after a lost answer: still ours. */
        assert_int_equal(fleetlock_pre_reboot(servers, &o, "web", "m1", &error), 1);
        assert_int_equal(fleetlock_pre_reboot(servers, &o, "web", "m2", &error), 0);
        assert_true(endswith(error, "/v1/pre-reboot: HTTP 409, failed_lock: semaphore currently held by m1"));
        free(error);
        error = NULL;
        assert_int_equal(fleetlock_pre_reboot(servers, &o, "db", "m2", &error), 0);
        assert_true(endswith(error, "HTTP 400, unknown_group: db"));
        error = mfree(error);
        assert_int_equal(fleetlock_steady_state(servers, &o, "web", "m1", &error), 1);
        assert_int_equal(fleetlock_steady_state(servers, &o, "web", "m1", &error), 1);
        assert_int_equal(fleetlock_pre_reboot(servers, &o, "web", "m2", &error), 1);
        assert_int_equal(f->lock.bad_requests, 0);
        assert_int_equal(f->lock.pre_reboot, 4); /* the unknown group is not counted */
        assert_int_equal(f->lock.steady_state, 2);
}

static void test_servers_in_turn(void **state) {
        Fixture *f = *state;
        char *servers[] = { f->closed, f->url, NULL }, *none[] = { f->closed, NULL };
        HttpJsonOptions o = {};
        _cleanup_free_ char *error = NULL;

        assert_int_equal(fleetlock_pre_reboot(servers, &o, "web", "m1", &error), 1);
        free(error);
        error = NULL;
        assert_int_equal(fleetlock_pre_reboot(none, &o, "web", "m2", &error), -ECONNREFUSED);
        assert_non_null(strstr(error, f->closed));

        /* A server that answers with an error page is no yes either. */
        free(error);
        error = NULL;
        http_server_set_faults(f->server, &(HttpFaults) { .status = 503 });
        assert_true(fleetlock_steady_state(servers, &o, "web", "m1", &error) <= 0);
        assert_non_null(error);
        http_server_set_faults(f->server, NULL);
        assert_true(strv_contains(f->lock.holders, "m1"));
}

static void config_fleetlock(UpdaterConfig *c, Fixture *f, const char *id) {
        updater_config_init(c);
        c->fleet_strategy = FLEET_FLEETLOCK;
        assert_int_equal(strv_extend(&c->fleet_endpoints, f->url), 0);
        c->fleet_group = strdup("web");
        c->fleet_id = strdup(id);
        c->fleet_retry = USEC_PER_MSEC; /* the test frees the slot before the next ask */
        assert_non_null(c->fleet_group);
        assert_non_null(c->fleet_id);
}

typedef struct WaitCheck {
        Fixture *f;
        const char *turn;
        unsigned waits;
} WaitCheck;

/* Each refusal: the record says we wait, and why; the second time, the holder gives its slot back. */
static int on_wait(const char *why, void *userdata) {
        WaitCheck *w = userdata;
        _cleanup_(fleet_turn_done) FleetTurn t = {};

        assert_non_null(startswith(why, "the FleetLock server said no: http://127.0.0.1:"));
        assert_true(endswith(why, "/v1/pre-reboot: HTTP 409, failed_lock: semaphore currently held by other"));
        assert_int_equal(fleet_turn_load(w->turn, &t), 0);
        assert_int_equal(t.state, FLEET_TURN_WAITING);
        assert_string_equal(t.group, "web");
        assert_string_equal(t.id, "m1");
        assert_true(t.since > 0);
        if (++w->waits == 2) {
                char *servers[] = { w->f->url, NULL };
                _cleanup_free_ char *error = NULL;
                assert_int_equal(fleetlock_steady_state(servers, &(HttpJsonOptions) {}, "web", "other", &error), 1);
        }
        return 0;
}

static void test_wait_and_give_back(void **state) {
        Fixture *f = *state;
        _cleanup_(updater_config_done) UpdaterConfig c;
        _cleanup_(fleet_done) Fleet fleet = {};
        _cleanup_free_ char *turn = path_join2(f->dir, FLEET_TURN_FILE), *why = NULL;
        _cleanup_(fleet_turn_done) FleetTurn t = {};

        assert_int_equal(strv_extend(&f->lock.holders, "other"), 0);
        config_fleetlock(&c, f, "m1");
        assert_int_equal(fleet_init(&fleet, &c, f->dir), 0);

        WaitCheck w = { .f = f, .turn = turn };
        assert_int_equal(fleet_wait_for_slot(&fleet, turn, on_wait, &w), 0);
        assert_int_equal(w.waits, 2);
        assert_int_equal(fleet_turn_load(turn, &t), 0);
        assert_int_equal(t.state, FLEET_TURN_HELD);
        assert_null(t.why);
        assert_int_equal(strv_length(f->lock.holders), 1);
        assert_string_equal(f->lock.holders[0], "m1");

        /* A switch again before the blessing (the way back, a commit after a failed one) asks nothing. */
        unsigned asked = f->lock.pre_reboot;
        assert_int_equal(fleet_wait_for_slot(&fleet, turn, NULL, NULL), 0);
        assert_int_equal(f->lock.pre_reboot, asked);

        /* The server down: the slot stays held and recorded, to be given back later. */
        http_server_set_faults(f->server, &(HttpFaults) { .status = 503 });
        assert_int_equal(fleet_give_back(&fleet, turn, &why), 0);
        assert_non_null(why);
        assert_int_equal(access(turn, F_OK), 0);
        http_server_set_faults(f->server, NULL);

        free(why);
        why = NULL;
        assert_int_equal(fleet_give_back(&fleet, turn, &why), 1);
        assert_int_equal(access(turn, F_OK), -1);
        assert_null(f->lock.holders[0]);
        /* Nothing recorded, nothing to give back. */
        assert_int_equal(fleet_give_back(&fleet, turn, &why), 1);
        assert_int_equal(f->lock.bad_requests, 0);
}

static int give_up(const char *why, void *userdata) {
        return -ETIME;
}

/* A caller that gives up (AutoCommitWindow= closed): nothing switches, and the record still says a
 * slot may be ours, for it to be given back. */
static void test_wait_given_up(void **state) {
        Fixture *f = *state;
        _cleanup_(updater_config_done) UpdaterConfig c;
        _cleanup_(fleet_done) Fleet fleet = {};
        _cleanup_free_ char *turn = path_join2(f->dir, FLEET_TURN_FILE);
        _cleanup_(fleet_turn_done) FleetTurn t = {};

        assert_int_equal(strv_extend(&f->lock.holders, "other"), 0);
        config_fleetlock(&c, f, "m1");
        assert_int_equal(fleet_init(&fleet, &c, f->dir), 0);
        assert_int_equal(fleet_wait_for_slot(&fleet, turn, give_up, NULL), -ETIME);
        assert_int_equal(fleet_turn_load(turn, &t), 0);
        assert_int_equal(t.state, FLEET_TURN_WAITING);
        assert_non_null(t.why);
}

/* A record from before a change of updaterd.conf gives back what it names, not what the
 * configuration says now. */
static void test_give_back_as_taken(void **state) {
        Fixture *f = *state;
        _cleanup_(updater_config_done) UpdaterConfig c;
        _cleanup_(fleet_done) Fleet fleet = {};
        _cleanup_free_ char *turn = path_join2(f->dir, FLEET_TURN_FILE), *why = NULL;

        assert_int_equal(strv_extend(&f->lock.holders, "old-name"), 0);
        FleetTurn t = { .state = FLEET_TURN_WAITING, .strategy = FLEET_FLEETLOCK, .group = (char *) "web",
                        .id = (char *) "old-name", .since = 1 };
        assert_int_equal(fleet_turn_save(&t, turn), 0);
        config_fleetlock(&c, f, "new-name");
        assert_int_equal(fleet_init(&fleet, &c, f->dir), 0);
        assert_int_equal(fleet_give_back(&fleet, turn, &why), 1);
        assert_null(f->lock.holders[0]);
}

static void test_turn_record_refused(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *turn = path_join2(f->dir, FLEET_TURN_FILE);
        FleetTurn t = {};

        assert_int_equal(fleet_turn_load(turn, &t), -ENOENT);
        assert_int_equal(write_string_file_atomic(turn, "{\"version\":1,\"state\":\"maybe\",\"strategy\":\"etcd\","
                                                        "\"group\":\"g\",\"id\":\"i\"}", 0644), 0);
        assert_int_equal(fleet_turn_load(turn, &t), -EBADMSG);
        assert_int_equal(write_string_file_atomic(turn, "{\"version\":1,\"state\":\"held\",\"strategy\":\"etcd\"}", 0644), 0);
        assert_int_equal(fleet_turn_load(turn, &t), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_protocol, setup, teardown),
                cmocka_unit_test_setup_teardown(test_servers_in_turn, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wait_and_give_back, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wait_given_up, setup, teardown),
                cmocka_unit_test_setup_teardown(test_give_back_as_taken, setup, teardown),
                cmocka_unit_test_setup_teardown(test_turn_record_refused, setup, teardown),
        };
        log_set_max_level(LOG_CRIT);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
