/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* updaterd's state: the bus object org.dreamlink.Updater1 and the one job
 * that may run at a time (a forked worker, see worker.h). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "updater-bus.h"
#include "updaterd-conf.h"
#include "worker.h"


/* What a worker runs, in the child; returns 0 or a negative errno. */
typedef int (*worker_main_t)(JobOperation op, const UpdaterConfig *config, const char *version, uint64_t flags,
                             Reporter *r);

typedef struct Manager {
        sd_event *event;
        sd_bus *bus;
        UpdaterConfig config;
        const char *root;           /* prefix for paths, "" on a real system (tests use a temp root) */
        worker_main_t worker_main;

        /* The running job, if any. */
        JobOperation operation;     /* valid while worker > 0 */
        uint64_t flags;             /* the job's: CommitFlags, and commit.h's own */
        uint32_t job_id, last_job_id;
        pid_t worker;
        bool cancelled;
        sd_event_source *worker_exit_source, *worker_io_source;
        WorkerLineBuffer lines;     /* what the worker wrote, not yet a whole line */
        char *transaction_id;
        char *step;
        uint64_t bytes, total;
        unsigned fetched, requested;
        bool delta;
        usec_t progress_emitted;
        int done_result;            /* from the worker's DONE line */
        char *done_message;
        bool done_seen;
        char *result_json;          /* a check's or a dry run's RESULT */
        sd_bus_message *pending_reply; /* Check(), PlanCommit() and PlanRollback() reply when their job ends */

        bool waiting;               /* the switch waits for a fleet slot: it may still be cancelled */

        sd_event_source *fleet_release_source; /* the next try to give back the fleet slot */
        bool releasing_name;        /* idle: giving up the bus name before exiting */
        sd_event_source *auto_commit_source; /* AutoCommit=: when the staged release is committed */
        usec_t auto_commit_at;               /* CLOCK_REALTIME, 0 when none is planned */
} Manager;

int manager_new(sd_event *event, sd_bus *bus, const char *root, worker_main_t worker_main, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* The org.dreamlink.Updater1 interface; its documentation, installed for
 * clients, is org.dreamlink.Updater1.xml (tests/unit/test-bus-interface.c
 * keeps the two the same). */
extern const sd_bus_vtable manager_vtable[];
/* Registers the object and its vtable on the bus. */
int manager_bus_register(Manager *m);

/* Starts a job in a worker; -EBUSY while one runs. Returns the job id. */
/* version: for stage; flags: CommitFlags for commit and rollback. */
int manager_start_job(Manager *m, JobOperation op, const char *version, uint64_t flags, uint32_t *ret_id);
int manager_cancel_job(Manager *m);

/* AutoCommit=: commits a release staged and not yet tried, now or when
 * AutoCommitWindow= opens next. At start-up and after each stage. */
void manager_schedule_auto_commit(Manager *m);

/* [Fleet]: gives back the slot a switch took, in a job of its own, once a slot is blessed
 * healthy (fleet-job.h); tries again every RetrySec= while it cannot. At start-up and after each
 * job. */
void manager_schedule_fleet_release(Manager *m);

/* Whether updaterd has anything to do or wait for: a job, a planned automatic commit, a fleet slot
 * to give back, a call to answer. When not, it may exit: D-Bus activation (and updaterd.service at
 * boot) starts it again, and all it knows is on disk. */
bool manager_busy(Manager *m);

/* Runs the event loop; with nothing to do for EXIT_IDLE (USEC_INFINITY: never), gives up the bus
 * name and returns. */
int manager_run(Manager *m, usec_t exit_idle);

/* The whole state as JSON (Describe, updatectl status --json). */
int manager_describe(Manager *m, char **ret);
