/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `dreamlink-handoff reap`: the daemons a start script leaves become one process tree, and to
 * systemd the start looks as without it. The test is a subreaper itself, so that what the
 * reaper leaves comes to it and can be looked at, then ended. */
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "handoff.h"
#include "tests.h"

/* Our children now (/proc), as PIDs. */
static size_t our_children(pid_t *pids, size_t max) {
        _cleanup_free_ char *path = strprintf("/proc/self/task/%d/children", (int) getpid()), *text = NULL;
        size_t n = 0;
        assert_non_null(path);
        assert_int_equal(read_file_limited(path, 4096, &text, NULL), 0);
        for (char *p = strtok(text, " \n"); p && n < max; p = strtok(NULL, " \n"))
                pids[n++] = (pid_t) atoi(p);
        return n;
}

static size_t children_of(pid_t pid) {
        _cleanup_free_ char *path = strprintf("/proc/%d/task/%d/children", (int) pid, (int) pid), *text = NULL;
        size_t n = 0;
        assert_non_null(path);
        assert_int_equal(read_file_limited(path, 4096, &text, NULL), 0);
        for (char *p = strtok(text, " \n"); p; p = strtok(NULL, " \n"))
                n++;
        return n;
}

/* Runs `reap sh -c SCRIPT` as systemd would (forked, waited for): its wait status. */
static int start(const char *script) {
        char *argv[] = { (char *) "sh", (char *) "-c", (char *) script, NULL };
        int status;
        pid_t p = fork();
        assert_true(p >= 0);
        if (p == 0) {
                (void) handoff_reap(argv);
                _exit(99);
        }
        assert_int_equal(waitpid(p, &status, 0), p);
        return status;
}

static int setup(void **state) {
        return prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 ? -1 : 0;
}

/* Whatever a failed test left ends here: a reaper left running would hold the test's output
 * open for as long as its daemons sleep. A reaper killed hands its daemons to us, hence the loop. */
static int kill_leftovers(void **state) {
        pid_t kids[8];
        size_t n;
        while ((n = our_children(kids, 8)) > 0)
                for (size_t i = 0; i < n; i++) {
                        (void) kill(kids[i], SIGKILL);
                        (void) waitpid(kids[i], NULL, 0);
                }
        return 0;
}

/* Whether pid runs this test's program: a reaper does, it never execs. */
static bool runs_our_program(pid_t pid) {
        _cleanup_free_ char *path = strprintf("/proc/%d/exe", (int) pid);
        char exe[PATH_MAX] = {}, ours[PATH_MAX] = {};
        assert_non_null(path);
        assert_true(readlink(path, exe, sizeof(exe) - 1) > 0);
        assert_true(readlink("/proc/self/exe", ours, sizeof(ours) - 1) > 0);
        return streq(exe, ours);
}

/* FRR's frrinit.sh: several daemons, each detached. They stay under one reaper, which passes
 * SIGTERM on and ends with the last of them. */
static void test_several_daemons(void **state) {
        pid_t kids[8];
        int status = start("sleep 1000 & sleep 1000 & exit 3");

        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 3); /* the script's own status */
        assert_int_equal(our_children(kids, 8), 1); /* the reaper, with both daemons below it */
        assert_int_equal(children_of(kids[0]), 2);
        assert_int_equal(kill(kids[0], SIGTERM), 0);
        assert_int_equal(waitpid(kids[0], &status, 0), kids[0]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(our_children(kids, 8), 0); /* the daemons got SIGTERM and ended */
}

/* nginx: one daemon. No reaper stays: the daemon is reparented as without it. */
static void test_one_daemon(void **state) {
        pid_t kids[8];
        int status = start("sleep 1000 & exit 0");

        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(our_children(kids, 8), 1);
        /* The daemon itself (sh's fork, sleep once it has exec'd), not a reaper. */
        assert_false(runs_our_program(kids[0]));
        assert_int_equal(kill(kids[0], SIGKILL), 0);
        assert_int_equal(waitpid(kids[0], NULL, 0), kids[0]);
}

/* A start that fails or is killed fails the same way to systemd. */
static void test_failures(void **state) {
        pid_t kids[8];
        int status = start("exit 7");
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 7);

        status = start("kill -TERM $$");
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGTERM);

        char *missing[] = { (char *) "/nonexistent/daemon", NULL };
        pid_t p = fork();
        assert_true(p >= 0);
        if (p == 0) {
                (void) handoff_reap(missing);
                _exit(99);
        }
        assert_int_equal(waitpid(p, &status, 0), p);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), EXIT_FAILURE);
        assert_int_equal(our_children(kids, 8), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_several_daemons, kill_leftovers),
                cmocka_unit_test_teardown(test_one_daemon, kill_leftovers),
                cmocka_unit_test_teardown(test_failures, kill_leftovers),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
