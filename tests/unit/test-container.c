/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the engine asks podman about a quadlet unit's container and makes of its answers, against
 * a podman of the test's own (first in PATH) that answers as podman 5.4 does. */
#include "tests.h"
#include "dropin.h"
#include "handoff-internal.h"
#include "log.h"

#define ID "5f2c0d8e9a7b61c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b"
#define ID2 "6f2c0d8e9a7b61c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b"

/* The fake podman answers from files the test writes: ps.out, inspect.out, port.out; a checkpoint
 * fails as podman does when criu did, naming criu's log; its arguments are kept in args. */
static const char fake_podman[] =
        "#!/bin/sh\n"
        "d=$(dirname \"$0\")\n"
        "echo \"$@\" >>\"$d/args\"\n"
        "case \"$1 $2\" in\n"
        "'ps '*|ps\\ *) cat \"$d/ps.out\" ;;\n"
        "'container inspect') cat \"$d/inspect.out\" ;;\n"
        "'port '*) cat \"$d/port.out\" ;;\n"
        "'container checkpoint')\n"
        "        echo 'time=\"x\" level=warning msg=\"something\"' >&2\n"
        "        echo \"CRIU checkpointing failed -52.  Please check CRIU logfile $d/dump.log: Invalid exchange\" >&2\n"
        "        echo \"Error: \\`/usr/bin/crun checkpoint --work-path /x\\` failed: exit status 1\" >&2\n"
        "        exit 125 ;;\n"
        "*) exit 2 ;;\n"
        "esac\n";

static char *saved_path;

static int fake_setup(void **state) {
        if (tmpdir_setup(state) < 0)
                return -1;
        write_test_file(*state, "podman", fake_podman);
        _cleanup_free_ char *p = path_join2(*state, "podman");
        if (chmod(p, 0755) < 0)
                return -1;
        saved_path = strdup(getenv("PATH"));
        _cleanup_free_ char *path = strprintf("%s:%s", (char *) *state, saved_path);
        setenv("PATH", path, 1);
        log_set_target(LOG_TARGET_CONSOLE);
        return 0;
}

static int fake_teardown(void **state) {
        setenv("PATH", saved_path, 1);
        saved_path = mfree(saved_path);
        return tmpdir_teardown(state);
}

static void test_unit_container(void **state) {
        _cleanup_free_ char *id = NULL, *args = NULL, *args_path = path_join2(*state, "args");

        write_test_file(*state, "ps.out", ID "\n");
        assert_int_equal(unit_container("web.service", &id), 0);
        assert_string_equal(id, ID);
        /* Found by the label quadlet's PODMAN_SYSTEMD_UNIT= gives it, running ones only. */
        assert_int_equal(read_file_limited(args_path, 4096, &args, NULL), 0);
        assert_non_null(strstr(args, "ps --no-trunc --format {{.ID}} --filter label=PODMAN_SYSTEMD_UNIT=web.service"));
        assert_null(strstr(args, "--all"));

        id = mfree(id);
        write_test_file(*state, "ps.out", "");
        assert_int_equal(unit_container("web.service", &id), -ESRCH);
        write_test_file(*state, "ps.out", ID "\n" ID2 "\n");
        assert_int_equal(unit_container("web.service", &id), -ENOTUNIQ);
        /* Whatever podman says, only an ID goes on to its command lines. */
        write_test_file(*state, "ps.out", "--all\n");
        assert_int_equal(unit_container("web.service", &id), -ENOTUNIQ);
        assert_null(id);
}

static void test_inspect(void **state) {
        _cleanup_(container_info_done) ContainerInfo info = {};
        _cleanup_free_ char *reason = NULL;

        /* network, PID, conmon PID, AppArmor profile, then the create command a word a line */
        write_test_file(*state, "inspect.out", "bridge\n4242\n4240\ncontainers-default-0.62.2\n"
                                               "/usr/bin/podman\nrun\n--name\nsystemd-web\n--cidfile=/run/web.cid\n--replace\n"
                                               "--rm\n-d\nlocalhost/web\n");
        write_test_file(*state, "port.out", "6379/tcp -> 0.0.0.0:6380\n6379/tcp -> [::]:6380\n80/tcp -> 127.0.0.1:8080\n");
        assert_int_equal(container_inspect("web.service", ID, &info), 0);
        assert_string_equal(info.network_mode, "bridge");
        assert_int_equal(info.pid, 4242);
        assert_int_equal(info.conmon_pid, 4240);
        assert_true(info.apparmor);
        assert_string_equal(info.id_file, "/run/web.cid");
        assert_int_equal(strv_length(info.ports), 2);
        assert_string_equal(info.ports[0], "6380");
        assert_string_equal(info.ports[1], "8080");
        assert_int_equal(container_precheck("web.service", &info, &reason), 0);
        assert_null(reason);
        container_info_done(&info);

        /* "--cidfile PATH" as two words; another container's network is not podman's to set up. */
        write_test_file(*state, "inspect.out", "container:0123\n4242\n4240\n\n/usr/bin/podman\nrun\n--cidfile\n/run/db.cid\nimg\n");
        write_test_file(*state, "port.out", "");
        assert_int_equal(container_inspect("db.service", ID, &info), 0);
        assert_false(info.apparmor);
        assert_string_equal(info.id_file, "/run/db.cid");
        assert_null(info.ports);
        assert_int_equal(container_precheck("db.service", &info, &reason), 0);
        assert_non_null(strstr(reason, "Network=container:0123"));
        container_info_done(&info);

        /* Cut short: refused, not guessed. */
        write_test_file(*state, "inspect.out", "bridge\n");
        assert_int_equal(container_inspect("web.service", ID, &info), -EBADMSG);
}

/* A failed checkpoint is told in criu's words where its log has them, podman's otherwise. */
static void test_checkpoint_failure_reason(void **state) {
        _cleanup_free_ char *reason = NULL, *args = NULL, *args_path = path_join2(*state, "args");
        HandoffUnit u = { .unit = (char *) "web.service", .tcp_established = true };

        write_test_file(*state, "dump.log", "(00.01) Dumping task\n(00.02) Error (criu/sockets.c:767): sockets: BUG! Unknown socket collected (family 38)\n");
        assert_int_equal(container_checkpoint(&u, ID, "/var/lib/dreamlink/handoff/x/web.service", true, &reason), -EPROTO);
        assert_non_null(strstr(reason, "Unknown socket collected (family 38)"));
        assert_non_null(strstr(reason, "(podman: `/usr/bin/crun checkpoint --work-path /x` failed: exit status 1)"));
        assert_int_equal(read_file_limited(args_path, 4096, &args, NULL), 0);
        assert_non_null(strstr(args, "container checkpoint --export=/var/lib/dreamlink/handoff/x/web.service/container.tar "
                                     "--compress=none --tcp-established --leave-running " ID));

        /* The log is gone: where to look, and podman's own words. */
        reason = mfree(reason);
        _cleanup_free_ char *log = path_join2(*state, "dump.log");
        assert_int_equal(unlink(log), 0);
        assert_int_equal(container_checkpoint(&u, ID, "/x", false, &reason), -EPROTO);
        assert_true(startswith(reason, "criu failed, see /"));
        assert_true(endswith(reason, "/dump.log (podman: `/usr/bin/crun checkpoint --work-path /x` failed: exit status 1)"));
}

static void test_lock_table_name(void **state) {
        (void) state;
        _cleanup_free_ char *a = netlock_table_name("web.service"), *b = netlock_table_name("db@x\\x2dy.service");
        assert_string_equal(a, "dreamlink-hold-web.service");
        assert_string_equal(b, "dreamlink-hold-db_x_x2dy.service");
}

/* Lines as /proc/net/nf_conntrack shows them: only a client's connection to a published port,
 * established, translated at its destination alone, is kept; what is kept reads back the same. */
static void test_conntrack_entries(void **state) {
        static const char kept[] = "ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.2.2 dst=10.0.2.15 sport=46230 "
                                   "dport=6380 src=10.88.0.2 dst=10.0.2.2 sport=6379 dport=46230 [ASSURED] mark=0 zone=0 use=2";
        static const char *const refused[] = {
                /* not established yet, or any more */
                "ipv4     2 tcp      6 39 TIME_WAIT src=10.0.2.2 dst=10.0.2.15 sport=55472 dport=6380 src=10.88.0.4 "
                "dst=10.0.2.2 sport=6379 dport=55472 [ASSURED] mark=0 zone=0 use=2",
                /* no translation: a local service's */
                "ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.2.2 dst=10.0.2.15 sport=41000 dport=6379 src=10.0.2.15 "
                "dst=10.0.2.2 sport=6379 dport=41000 [ASSURED] mark=0 zone=0 use=2",
                /* masqueraded as well (a container reaching a published port) */
                "ipv4     2 tcp      6 431999 ESTABLISHED src=10.88.0.3 dst=10.0.2.15 sport=41000 dport=6380 src=10.88.0.2 "
                "dst=10.88.0.1 sport=6379 dport=41000 [ASSURED] mark=0 zone=0 use=2",
                /* another zone, UDP, IPv6, cut short */
                "ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.2.2 dst=10.0.2.15 sport=46230 dport=6380 src=10.88.0.2 "
                "dst=10.0.2.2 sport=6379 dport=46230 [ASSURED] mark=0 zone=3 use=2",
                "ipv4     2 udp      17 29 src=10.0.2.15 dst=10.0.2.3 sport=5353 dport=53 src=10.0.2.3 dst=10.0.2.15 sport=53 dport=5353 mark=0 zone=0 use=2",
                "ipv6     10 tcp      6 431999 ESTABLISHED src=fd00::2 dst=fd00::15 sport=46230 dport=6380 src=fd00::88:2 "
                "dst=fd00::2 sport=6379 dport=46230 [ASSURED] mark=0 zone=0 use=2",
                "ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.2.2 dst=10.0.2.15 sport=46230",
                "ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.2.2 dst=10.0.2.15 sport=0 dport=6380 src=10.88.0.2 "
                "dst=10.0.2.2 sport=6379 dport=0",
        };
        /* With nf_conntrack_acct=1, each tuple has its counters after it. */
        static const char counted[] = "ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.2.2 dst=10.0.2.15 sport=46230 "
                                      "dport=6380 packets=12 bytes=700 src=10.88.0.2 dst=10.0.2.2 sport=6379 dport=46230 "
                                      "packets=10 bytes=600 [ASSURED] mark=0 zone=0 use=2";
        ConntrackEntry e, back;
        _cleanup_free_ char *line = NULL;

        (void) state;
        assert_int_equal(conntrack_entry_parse(counted, &back), 0);
        assert_int_equal(conntrack_entry_parse(kept, &e), 0);
        assert_memory_equal(&e, &back, sizeof(e));
        assert_int_equal(e.orig_sport, 46230);
        assert_int_equal(e.orig_dport, 6380);
        assert_int_equal(e.reply_sport, 6379);
        assert_int_equal(conntrack_entry_format(&e, &line), 0);
        assert_int_equal(conntrack_entry_parse(line, &back), 0);
        assert_memory_equal(&e, &back, sizeof(e));
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                assert_int_equal(conntrack_entry_parse(refused[i], &e), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_unit_container, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_inspect, fake_setup, fake_teardown),
                cmocka_unit_test_setup_teardown(test_checkpoint_failure_reason, fake_setup, fake_teardown),
                cmocka_unit_test(test_lock_table_name),
                cmocka_unit_test(test_conntrack_entries),
        };
        return cmocka_run_group_tests_name("container", tests, NULL, NULL);
}
