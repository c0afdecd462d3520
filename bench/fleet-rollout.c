/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* make bench's fleet figure: a simulated rollout through a real three-member etcd cluster on the
 * loopback. MACHINES processes, in GROUPS groups of SLOTS slots each, take their turn as a commit
 * does (fleet_wait_for_slot(), asking every RETRY seconds), "switch" for SWITCH_MS, and give their
 * slot back as updaterd does after the blessing. Prints KEY=VALUE lines for bench/run.sh: the
 * total time, the most machines holding a slot at once (over all groups, and in any one group, as
 * etcd's history of the keys says), etcd requests per machine, and whether the history is that of
 * a rollout (never more holders than slots, each machine in and out exactly once). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "etcd-cluster.h"
#include "fileio.h"
#include "fleet.h"
#include "log.h"
#include "string-util.h"
#include "time-util.h"

typedef struct Report {
        int machine;
        usec_t asked, held, given_back; /* CLOCK_MONOTONIC */
        unsigned requests;
        int result;
} Report;

static unsigned arg_machines = 100, arg_groups = 4, arg_slots = 3, arg_switch_ms = 500, arg_retry_sec = 1;
static const char *arg_etcd = "/usr/bin/etcd";

static char *group_name(int machine) {
        return strprintf("group-%u", (unsigned) machine % arg_groups);
}

/* One machine: its turn, its "switch", its slot given back (asked again until etcd takes it). */
static _Noreturn void machine(EtcdCluster *cluster, const char *dir, int i, int fd) {
        _cleanup_(updater_config_done) UpdaterConfig c;
        _cleanup_(fleet_done) Fleet f = {};
        _cleanup_free_ char *turn = strprintf("%s/turn-%d.json", dir, i);
        Report rep = { .machine = i, .asked = now_usec(CLOCK_MONOTONIC) };
        int r;

        updater_config_init(&c);
        c.fleet_strategy = FLEET_ETCD;
        for (int k = 0; k < ETCD_MEMBERS; k++)
                if (strv_extend(&c.fleet_endpoints, cluster->endpoints[k]) < 0)
                        _exit(EXIT_FAILURE);
        c.fleet_group = group_name(i);
        c.fleet_id = strprintf("machine-%d", i);
        c.fleet_slots = arg_slots;
        c.fleet_retry = arg_retry_sec * USEC_PER_SEC;
        if (!turn || !c.fleet_group || !c.fleet_id || fleet_init(&f, &c, NULL) < 0)
                _exit(EXIT_FAILURE);

        r = fleet_wait_for_slot(&f, turn, NULL, NULL);
        rep.held = now_usec(CLOCK_MONOTONIC);
        if (r >= 0) {
                (void) usleep(arg_switch_ms * 1000);
                for (;;) {
                        _cleanup_free_ char *why = NULL;
                        r = fleet_give_back(&f, turn, &why);
                        if (r != 0)
                                break;
                        (void) usleep(arg_retry_sec * USEC_PER_SEC);
                }
        }
        rep.given_back = now_usec(CLOCK_MONOTONIC);
        rep.requests = f.etcd.requests;
        rep.result = r < 0 ? r : 0;
        _exit(loop_write(fd, &rep, sizeof(rep)) < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}

/* The most intervals [held, given_back) open at one moment. */
static unsigned max_overlap(const Report *reps, unsigned n) {
        unsigned best = 0;
        for (unsigned i = 0; i < n; i++) {
                unsigned open = 0;
                for (unsigned k = 0; k < n; k++)
                        if (reps[k].held <= reps[i].held && reps[i].held < reps[k].given_back)
                                open++;
                best = MAX(best, open);
        }
        return best;
}

static int run(void) {
        _cleanup_free_ Report *reps = calloc(arg_machines, sizeof(Report));
        _cleanup_free_ pid_t *pids = calloc(arg_machines, sizeof(pid_t));
        _cleanup_free_ char *dir = strdup("/tmp/dreamlink-rollout.XXXXXX");
        EtcdCluster cluster = {};
        int fds[2], r;

        if (!reps || !pids || !dir || !mkdtemp(dir) || pipe2(fds, O_CLOEXEC) < 0)
                return log_error_errno(errno, "Failed to set up: %m");
        r = etcd_cluster_start(&cluster, arg_etcd);
        if (r < 0) {
                etcd_cluster_stop(&cluster);
                return log_error_errno(r, "Failed to start a three-member etcd cluster with %s: %m", arg_etcd);
        }

        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        for (unsigned i = 0; i < arg_machines; i++) {
                pid_t pid = fork();
                if (pid < 0)
                        return log_error_errno(errno, "Failed to fork: %m");
                if (pid == 0) {
                        close(fds[0]);
                        machine(&cluster, dir, (int) i, fds[1]);
                }
                pids[i] = pid;
        }
        close(fds[1]);
        unsigned got = 0, failed = 0;
        while (got < arg_machines) {
                Report rep;
                ssize_t k = read(fds[0], &rep, sizeof(rep));
                if (k != (ssize_t) sizeof(rep))
                        break;
                if (rep.machine >= 0 && (unsigned) rep.machine < arg_machines)
                        reps[got++] = rep;
        }
        close(fds[0]);
        for (unsigned i = 0; i < arg_machines; i++) /* not the cluster's members, also ours */
                (void) waitpid(pids[i], NULL, 0);
        usec_t total = now_usec(CLOCK_MONOTONIC) - t0;

        unsigned max_group = 0, requests = 0, requests_max = 0;
        bool rollout = got == arg_machines;
        for (unsigned i = 0; i < got; i++) {
                failed += reps[i].result < 0;
                requests += reps[i].requests;
                requests_max = MAX(requests_max, reps[i].requests);
        }
        for (unsigned g = 0; g < arg_groups; g++) {
                _cleanup_(etcd_history_done) EtcdHistory h = {};
                _cleanup_free_ char *name = group_name((int) g);
                unsigned members = arg_machines / arg_groups + (g < arg_machines % arg_groups);
                if (!name || etcd_cluster_history(&cluster, name, &h) < 0) {
                        rollout = false;
                        continue;
                }
                max_group = MAX(max_group, h.max_holders);
                rollout = rollout && etcd_history_is_rollout(&h, members, arg_slots);
        }
        etcd_cluster_stop(&cluster);
        (void) rm_rf(dir);

        printf("fleet_machines=%u\nfleet_groups=%u\nfleet_slots=%u\nfleet_switch_s=%.3f\nfleet_retry_s=%u\n",
               arg_machines, arg_groups, arg_slots, arg_switch_ms / 1000.0, arg_retry_sec);
        printf("fleet_total_s=%.3f\nfleet_max_switching=%u\nfleet_max_switching_in_group=%u\n", total / 1e6,
               max_overlap(reps, got), max_group);
        printf("fleet_requests_per_machine=%.2f\nfleet_requests_max=%u\nfleet_history_ok=%s\nfleet_failed=%u\n",
               got ? (double) requests / got : 0.0, requests_max, rollout ? "yes" : "no", failed + (arg_machines - got));
        return rollout && failed == 0 ? 0 : -EPROTO;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "etcd",      required_argument, NULL, 'e' },
                { "machines",  required_argument, NULL, 'm' },
                { "groups",    required_argument, NULL, 'g' },
                { "slots",     required_argument, NULL, 's' },
                { "switch-ms", required_argument, NULL, 'w' },
                { "retry-sec", required_argument, NULL, 'r' },
                {}
        };
        int c;

        log_setup("fleet-rollout");
        log_set_max_level(LOG_WARNING);
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                unsigned *target = c == 'm' ? &arg_machines : c == 'g' ? &arg_groups : c == 's' ? &arg_slots :
                                   c == 'w' ? &arg_switch_ms : c == 'r' ? &arg_retry_sec : NULL;
                if (c == 'e')
                        arg_etcd = optarg;
                else if (!target || parse_unsigned(optarg, target) < 0 || *target == 0) {
                        fprintf(stderr, "usage: %s [--etcd PATH] [--machines N] [--groups N] [--slots N] "
                                        "[--switch-ms N] [--retry-sec N] (all N > 0)\n", program_invocation_short_name);
                        return EXIT_FAILURE;
                }
        }
        return run() < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
