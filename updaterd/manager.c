/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-json.h>
#include <unistd.h>

#include "fileio.h"
#include "fleet-job.h"
#include "log.h"
#include "commit.h"
#include "manager.h"
#include "record.h"
#include "status.h"
#include "string-util.h"

#define PROGRESS_INTERVAL (250 * USEC_PER_MSEC)

static void manager_reset_job(Manager *m) {
        m->worker_exit_source = sd_event_source_disable_unref(m->worker_exit_source);
        m->worker_io_source = sd_event_source_disable_unref(m->worker_io_source);
        m->worker = 0;
        m->job_id = 0;
        m->cancelled = false;
        m->lines = (WorkerLineBuffer) {};
        m->bytes = m->total = 0;
        m->fetched = m->requested = 0;
        m->delta = false;
        m->done_seen = false;
        m->waiting = false;
        m->done_result = 0;
        m->done_message = mfree(m->done_message);
        m->result_json = mfree(m->result_json);
        m->transaction_id = mfree(m->transaction_id);
        m->step = mfree(m->step);
        (void) log_set_transaction_id(NULL);
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        if (m->worker > 0)
                (void) kill(m->worker, SIGKILL);
        manager_reset_job(m);
        sd_event_source_disable_unref(m->auto_commit_source);
        sd_event_source_disable_unref(m->fleet_release_source);
        sd_bus_message_unref(m->pending_reply);
        updater_config_done(&m->config);
        sd_bus_unref(m->bus);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

int manager_new(sd_event *event, sd_bus *bus, const char *root, worker_main_t worker_main, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(Manager));
        if (!m)
                return log_oom();
        m->event = sd_event_ref(event);
        m->bus = sd_bus_ref(bus);
        m->root = root ?: "";
        m->worker_main = worker_main;
        updater_config_init(&m->config);
        r = updater_config_load(&m->config, m->root);
        if (r < 0)
                return r; /* logged with file:line */
        *ret = TAKE_PTR(m);
        return 0;
}

static const char *manager_operation(Manager *m) {
        static const char * const table[_JOB_OPERATION_MAX] = {
                [JOB_CHECK] = "checking",
                [JOB_STAGE] = "staging",
                [JOB_COMMIT] = "committing",
                [JOB_ROLLBACK] = "rolling-back",
                [JOB_PLAN_COMMIT] = "planning",
                [JOB_PLAN_ROLLBACK] = "planning",
                [JOB_FLEET_RELEASE] = "releasing",
        };
        return m->worker > 0 ? table[m->operation] : "idle";
}

static void emit_changed(Manager *m, const char *property) {
        (void) sd_bus_emit_properties_changed(m->bus, UPDATER_BUS_PATH, UPDATER_BUS_INTERFACE, property, NULL);
}

/* ---- the worker ---------------------------------------------------------------------------- */

static void manager_handle_event(Manager *m, WorkerEvent *e) {
        switch (e->type) {
        case EVENT_TRANSACTION:
                if (free_and_strdup(&m->transaction_id, e->text) >= 0)
                        (void) log_set_transaction_id(m->transaction_id);
                break;
        case EVENT_STEP:
                m->waiting = false;
                if (free_and_strdup(&m->step, e->text) >= 0)
                        emit_changed(m, "Step");
                break;
        case EVENT_PROGRESS: {
                usec_t now = now_usec(CLOCK_MONOTONIC);
                m->bytes = e->bytes;
                m->total = e->total;
                m->fetched = e->fetched;
                m->requested = e->requested;
                m->delta = e->delta;
                /* The worker may report far more often than a bus client wants to hear. */
                if (now - m->progress_emitted >= PROGRESS_INTERVAL) {
                        m->progress_emitted = now;
                        emit_changed(m, "Progress");
                }
                break;
        }
        case EVENT_RESULT:
                (void) free_and_strdup(&m->result_json, e->text);
                break;
        case EVENT_WAITING: {
                /* As the step, so that updatectl follows it; the turn record has it too, for
                 * status to read whether we run or not. */
                _cleanup_free_ char *step = strprintf("waiting for a fleet slot: %s", e->text);
                /* Logged once: each try's why is in the step and the record. */
                if (!m->waiting)
                        log_info("Job %u (%s) is %s", m->job_id, job_operation_to_string(m->operation), strna(step));
                m->waiting = true;
                if (step && !streq_ptr(step, m->step)) {
                        free(m->step);
                        m->step = TAKE_PTR(step);
                        emit_changed(m, "Step");
                }
                break;
        }
        case EVENT_DONE:
                m->done_seen = true;
                m->done_result = e->result;
                (void) free_and_strdup(&m->done_message, e->text);
                break;
        }
}

static void on_worker_line(char *line, void *userdata) {
        WorkerEvent e;

        if (worker_event_parse(line, &e) >= 0)
                manager_handle_event(userdata, &e);
        else
                log_warning("Ignoring a malformed line from the worker.");
}

static int on_worker_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        char buf[4096];

        for (;;) {
                ssize_t k = read(fd, buf, sizeof(buf));
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        log_warning_errno(errno, "Failed to read from the worker: %m");
                        break;
                }
                if (k == 0)
                        break; /* the worker closed its end: its exit follows */
                if (worker_line_buffer_feed(&m->lines, buf, (size_t) k, on_worker_line, m) > 0)
                        log_warning("Ignoring a line from the worker longer than %u bytes.", WORKER_LINE_MAX);
        }
        m->worker_io_source = sd_event_source_disable_unref(m->worker_io_source);
        return 0;
}

static void reply_check(Manager *m, int result, const char *message) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = TAKE_PTR(m->pending_reply);

        if (!call)
                return;
        if (result < 0) {
                (void) sd_bus_reply_method_errnof(call, result, "%s", isempty(message) ? strerror(-result) : message);
                return;
        }
        if (!m->result_json || sd_json_parse(m->result_json, 0, &v, NULL, NULL) < 0) {
                (void) sd_bus_reply_method_errorf(call, SD_BUS_ERROR_FAILED, "The check ended without a result.");
                return;
        }
        sd_json_variant *available = sd_json_variant_by_key(v, "available");
        (void) sd_bus_reply_method_return(call, "bsstt",
                        available && sd_json_variant_boolean(available),
                        strempty(sd_json_variant_string(sd_json_variant_by_key(v, "version"))),
                        strempty(sd_json_variant_string(sd_json_variant_by_key(v, "kernel"))),
                        sd_json_variant_unsigned(sd_json_variant_by_key(v, "counter")),
                        sd_json_variant_unsigned(sd_json_variant_by_key(v, "download_size")));
}

static void reply_plan(Manager *m, int result, const char *message) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = TAKE_PTR(m->pending_reply);

        if (!call)
                return;
        if (result < 0)
                (void) sd_bus_reply_method_errnof(call, result, "%s", isempty(message) ? strerror(-result) : message);
        else if (!m->result_json)
                (void) sd_bus_reply_method_errorf(call, SD_BUS_ERROR_FAILED, "The dry run ended without a plan.");
        else
                (void) sd_bus_reply_method_return(call, "s", m->result_json);
}

static void fleet_release_later(Manager *m);

static int on_worker_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Manager *m = userdata;
        const char *op = job_operation_to_string(m->operation);
        _cleanup_free_ char *message = NULL;
        int result;

        /* Drain what the worker wrote before it went. */
        if (m->worker_io_source)
                (void) on_worker_io(m->worker_io_source, sd_event_source_get_io_fd(m->worker_io_source), EPOLLIN, m);

        /* A worker that said DONE finished on its own, even if a Cancel came in before its exit was
         * seen: its own result is what happened. */
        if (m->done_seen) {
                result = m->done_result;
                message = strdup(strempty(m->done_message));
        } else if (m->cancelled) {
                result = -ECANCELED;
                message = strdup(IN_SET(m->operation, JOB_COMMIT, JOB_ROLLBACK) ?
                                 "Cancelled while waiting for a fleet slot; nothing was switched." :
                                 "Cancelled; what was downloaded is kept for the next attempt.");
                /* The worker died of the cancel: its record says so only if we write it. */
                if (m->operation == JOB_STAGE && m->transaction_id)
                        (void) record_stage_cancelled(m->root, &m->config, m->transaction_id);
        } else {
                result = -EPROTO;
                if (si->si_code == CLD_EXITED)
                        (void) asprintf(&message, "The %s worker exited with status %d without saying why.",
                                        op, si->si_status);
                else
                        (void) asprintf(&message, "The %s worker was killed by signal %s.", op, strsignal(si->si_status));
        }

        if (result < 0)
                log_error_errno(result, "Job %u (%s) failed: %s", m->job_id, op, strna(message));
        else
                log_info("Job %u (%s) done: %s", m->job_id, op, strna(message));

        if (m->operation == JOB_CHECK)
                reply_check(m, result, message);
        else if (IN_SET(m->operation, JOB_PLAN_COMMIT, JOB_PLAN_ROLLBACK))
                reply_plan(m, result, message);
        /* Also an automatic commit whose window closed while it waited for a fleet slot: the next one. */
        bool auto_commit_next = (m->operation == JOB_STAGE && result >= 0) ||
                                (m->operation == JOB_COMMIT && (m->flags & COMMIT_AUTO) && result == -ETIME);
        bool released_failed = m->operation == JOB_FLEET_RELEASE && result < 0;

        (void) sd_bus_emit_signal(m->bus, UPDATER_BUS_PATH, UPDATER_BUS_INTERFACE, "JobRemoved", "ussis",
                                  m->job_id, op, strempty(m->transaction_id), result, strempty(message));
        manager_reset_job(m);
        /* Step and progress are reset with the job: say so, or clients keep showing the last ones. */
        (void) sd_bus_emit_properties_changed(m->bus, UPDATER_BUS_PATH, UPDATER_BUS_INTERFACE,
                                              "Operation", "Step", "Progress", NULL);
        if (auto_commit_next)
                manager_schedule_auto_commit(m);
        /* A release that failed is tried again after RetrySec=, not at once. */
        if (released_failed)
                fleet_release_later(m);
        else
                manager_schedule_fleet_release(m);
        return 0;
}

/* Giving back a fleet slot is idempotent and tried again after every job: it makes way for the job
 * asked for rather than have it refused as busy while etcd or a FleetLock server is slow. */
static void fleet_release_yield(Manager *m, JobOperation op) {
        pid_t pid = m->worker;
        uint32_t id = m->job_id;

        if (pid <= 0 || m->operation != JOB_FLEET_RELEASE || op == JOB_FLEET_RELEASE)
                return;
        (void) kill(pid, SIGKILL);
        manager_reset_job(m); /* its exit is ours to reap now */
        (void) waitpid(pid, NULL, 0);
        log_info("Job %u (fleet-release) stopped for a %s job; the slot is given back after it.", id,
                 job_operation_to_string(op));
        (void) sd_bus_emit_signal(m->bus, UPDATER_BUS_PATH, UPDATER_BUS_INTERFACE, "JobRemoved", "ussis", id,
                                  job_operation_to_string(JOB_FLEET_RELEASE), "", -EINTR,
                                  "Stopped for another job; the fleet slot is given back after it.");
}

int manager_start_job(Manager *m, JobOperation op, const char *version, uint64_t flags, uint32_t *ret_id) {
        _cleanup_close_ int rfd = -EBADF, wfd = -EBADF;
        int fds[2], r;

        fleet_release_yield(m, op);
        if (m->worker > 0)
                return -EBUSY;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return log_error_errno(errno, "Failed to create a pipe: %m");
        rfd = fds[0];
        wfd = fds[1];

        pid_t pid = fork();
        if (pid < 0)
                return log_error_errno(errno, "Failed to fork a worker: %m");
        if (pid == 0) {
                /* The worker: default signal handling (SIGTERM ends it at once), its own log identity. */
                sigset_t all;
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                signal(SIGTERM, SIG_DFL);
                safe_close(rfd);
                Reporter rep = { .fd = wfd };
                log_clear_last_error();
                r = m->worker_main(op, &m->config, version, flags, &rep);
                if (r < 0)
                        reporter_done(&rep, r, log_get_last_error() ?: strerror(-r));
                _exit(r < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
        }

        wfd = safe_close(wfd);
        r = sd_event_add_child(m->event, &m->worker_exit_source, pid, WEXITED, on_worker_exit, m);
        if (r >= 0)
                r = sd_event_add_io(m->event, &m->worker_io_source, rfd, EPOLLIN, on_worker_io, m);
        if (r >= 0)
                r = sd_event_source_set_io_fd_own(m->worker_io_source, true);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                m->worker_exit_source = sd_event_source_disable_unref(m->worker_exit_source);
                m->worker_io_source = sd_event_source_disable_unref(m->worker_io_source);
                return log_error_errno(r, "Failed to watch the worker: %m");
        }
        TAKE_FD(rfd);
        (void) fcntl(sd_event_source_get_io_fd(m->worker_io_source), F_SETFL, O_NONBLOCK);

        m->worker = pid;
        m->operation = op;
        m->flags = flags;
        m->job_id = ++m->last_job_id;
        log_info("Job %u (%s%s%s) started, worker " PID_FMT ".", m->job_id, job_operation_to_string(op),
                 isempty(version) ? "" : " ", strempty(version), pid);
        emit_changed(m, "Operation");
        if (ret_id)
                *ret_id = m->job_id;
        return 0;
}

int manager_cancel_job(Manager *m) {
        if (m->worker <= 0)
                return -ESRCH;
        /* A switch is not crash-safe the way a stage is: stopped midway it would leave
         * services frozen. It ends by itself, switched or with everything put back; only while
         * it waits for a fleet slot has it touched nothing (and from its slot on it ignores
         * SIGTERM, should this come too late). A dry run's dumps freeze services and lock their
         * connections too, and end by themselves. */
        if ((IN_SET(m->operation, JOB_COMMIT, JOB_ROLLBACK) && !m->waiting) ||
            IN_SET(m->operation, JOB_PLAN_COMMIT, JOB_PLAN_ROLLBACK))
                return -EBUSY;
        /* The work is crash-safe by design: stopping the worker is all a cancel needs. */
        m->cancelled = true;
        if (kill(m->worker, SIGTERM) < 0)
                return -errno;
        log_info("Job %u (%s) cancelled.", m->job_id, job_operation_to_string(m->operation));
        return 0;
}

static int on_auto_commit_time(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_schedule_auto_commit(userdata);
        return 0;
}

void manager_schedule_auto_commit(Manager *m) {
        _cleanup_free_ char *version = NULL;
        char when[FORMAT_TIMESTAMP_MAX];
        usec_t now = now_usec(CLOCK_REALTIME), at = 0;
        int r;

        m->auto_commit_source = sd_event_source_disable_unref(m->auto_commit_source);
        m->auto_commit_at = 0;
        if (!m->config.auto_commit || !status_auto_commit_pending(m->root, &m->config, &version))
                return;

        if (m->config.has_auto_commit_window)
                at = time_window_next(&m->config.auto_commit_window, now);
        if (at == 0 && m->worker > 0)
                at = now + USEC_PER_MINUTE; /* a job runs (a check, say): after it */
        if (at == 0) {
                log_info("AutoCommit=yes: committing release %s.", version);
                r = manager_start_job(m, JOB_COMMIT, NULL, COMMIT_AUTO, NULL);
                if (r >= 0)
                        return;
                log_warning_errno(r, "Could not start the automatic commit of release %s, trying again in a minute: %m",
                                  version);
                at = now + USEC_PER_MINUTE;
        }

        r = sd_event_add_time(m->event, &m->auto_commit_source, CLOCK_REALTIME, at, USEC_PER_SEC,
                              on_auto_commit_time, m);
        if (r < 0) {
                log_error_errno(r, "Failed to plan the automatic commit of release %s: %m", version);
                return;
        }
        m->auto_commit_at = at;
        log_info("AutoCommit=yes: release %s will be committed at %s.", version,
                 format_timestamp_utc(when, sizeof(when), at));
}

static int on_fleet_release_time(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_schedule_fleet_release(userdata);
        return 0;
}

void manager_schedule_fleet_release(Manager *m) {
        int r;

        m->fleet_release_source = sd_event_source_disable_unref(m->fleet_release_source);
        if (m->worker > 0 || !fleet_turn_pending(m->root, &m->config))
                return; /* the job's end calls again */
        if (!fleet_release_due(m->root, &m->config)) {
                fleet_release_later(m);
                return;
        }
        r = manager_start_job(m, JOB_FLEET_RELEASE, NULL, 0, NULL);
        if (r < 0) {
                log_warning_errno(r, "Could not start giving back the fleet slot: %m");
                fleet_release_later(m);
        }
}

static void fleet_release_later(Manager *m) {
        m->fleet_release_source = sd_event_source_disable_unref(m->fleet_release_source);
        int r = sd_event_add_time_relative(m->event, &m->fleet_release_source, CLOCK_MONOTONIC, m->config.fleet_retry,
                                           USEC_PER_SEC, on_fleet_release_time, m);
        if (r < 0)
                log_error_errno(r, "Failed to plan giving back the fleet slot: %m");
}

/* ---- idle exit ------------------------------------------------------------------------------ */

bool manager_busy(Manager *m) {
        return m->worker > 0 || m->auto_commit_source || m->fleet_release_source || m->pending_reply;
}

static int on_name_request(sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        if (sd_bus_message_is_method_error(reply, NULL))
                log_error("Failed to take the bus name %s back: %s", UPDATER_BUS_NAME,
                          sd_bus_message_get_error(reply)->message);
        return 0;
}

/* The name is ours no more: calls from now on start a new updaterd. A call that came in meanwhile
 * may have started a job: then the name is taken back and the work goes on. */
static int on_name_released(sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;

        m->releasing_name = false;
        if (!manager_busy(m))
                return sd_event_exit(m->event, 0);
        return sd_bus_request_name_async(m->bus, NULL, UPDATER_BUS_NAME, 0, on_name_request, m);
}

int manager_run(Manager *m, usec_t exit_idle) {
        int r;

        for (;;) {
                if (sd_event_get_state(m->event) == SD_EVENT_FINISHED)
                        return 0;
                r = sd_event_run(m->event, exit_idle == USEC_INFINITY ? UINT64_MAX : exit_idle);
                if (r < 0)
                        return log_error_errno(r, "Event loop failed: %m");
                if (r > 0 || m->releasing_name || manager_busy(m))
                        continue;
                /* exit_idle without a single event, and nothing to wait for. */
                char span[FORMAT_TIMESPAN_MAX];
                log_info("Nothing to do for %s, exiting: the next call starts updaterd again.",
                         format_timespan(span, sizeof(span), exit_idle));
                r = sd_bus_release_name_async(m->bus, NULL, UPDATER_BUS_NAME, on_name_released, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to give up the bus name %s: %m", UPDATER_BUS_NAME);
                m->releasing_name = true;
        }
}

/* ---- the bus API --------------------------------------------------------------------------- */

/* Mutating calls are root's (the D-Bus policy says so too). */
static int check_root(sd_bus_message *message, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid;
        int r;

        r = sd_bus_query_sender_creds(message, SD_BUS_CREDS_EUID, &creds);
        if (r >= 0)
                r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return r;
        if (uid != 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_ACCESS_DENIED, "Changing the system needs root.");
        return 0;
}

static int method_check(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        r = check_root(message, error);
        if (r != 0)
                return r;
        r = manager_start_job(m, JOB_CHECK, NULL, 0, NULL);
        if (r == -EBUSY)
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "Busy: a %s job is running.",
                                         job_operation_to_string(m->operation));
        if (r < 0)
                return r;
        m->pending_reply = sd_bus_message_ref(message);
        return 1; /* the reply comes when the worker is done */
}

/* Starts the job and replies with its id: the result comes with JobRemoved. */
static int reply_job_started(Manager *m, sd_bus_message *message, JobOperation op, const char *version, uint64_t flags,
                             sd_bus_error *error) {
        uint32_t id;
        int r = manager_start_job(m, op, version, flags, &id);
        if (r == -EBUSY)
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "Busy: a %s job is running.",
                                         job_operation_to_string(m->operation));
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, "u", id);
}

static int method_stage(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        const char *version;
        int r;

        r = check_root(message, error);
        if (r != 0)
                return r;
        r = sd_bus_message_read(message, "s", &version);
        if (r < 0)
                return r;
        return reply_job_started(userdata, message, JOB_STAGE, version, 0, error);
}

static int method_switch(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        JobOperation op = streq(sd_bus_message_get_member(message), "Rollback") ? JOB_ROLLBACK : JOB_COMMIT;
        uint64_t flags;
        int r;

        r = check_root(message, error);
        if (r != 0)
                return r;
        r = sd_bus_message_read(message, "t", &flags);
        if (r < 0)
                return r;
        if (flags & ~(uint64_t) _COMMIT_FLAGS_ALL)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown flags 0x%" PRIx64 ".",
                                         flags & ~(uint64_t) _COMMIT_FLAGS_ALL);
        return reply_job_started(userdata, message, op, NULL, flags, error);
}

static int method_plan(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        JobOperation op = streq(sd_bus_message_get_member(message), "PlanRollback") ? JOB_PLAN_ROLLBACK : JOB_PLAN_COMMIT;
        Manager *m = userdata;
        uint64_t flags;
        int r;

        /* Not only a look: the dry-run dumps freeze each service for a moment. */
        r = check_root(message, error);
        if (r != 0)
                return r;
        r = sd_bus_message_read(message, "t", &flags);
        if (r < 0)
                return r;
        if (flags & ~(uint64_t) _COMMIT_FLAGS_ALL)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown flags 0x%" PRIx64 ".",
                                         flags & ~(uint64_t) _COMMIT_FLAGS_ALL);
        r = manager_start_job(m, op, NULL, flags, NULL);
        if (r == -EBUSY)
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED, "Busy: a %s job is running.",
                                         job_operation_to_string(m->operation));
        if (r < 0)
                return r;
        m->pending_reply = sd_bus_message_ref(message);
        return 1; /* the reply comes when the worker is done */
}

static int method_cancel(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        int r;

        r = check_root(message, error);
        if (r != 0)
                return r;
        r = manager_cancel_job(m);
        if (r == -ESRCH)
                return sd_bus_error_set(error, SD_BUS_ERROR_FAILED, "No job is running.");
        if (r == -EBUSY)
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED,
                                         IN_SET(m->operation, JOB_COMMIT, JOB_ROLLBACK) ?
                                         "A %s cannot be cancelled: it switches, or puts everything back if it fails." :
                                         "A %s cannot be cancelled: its dry-run dumps end by themselves in moments.",
                                         job_operation_to_string(m->operation));
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(message, "");
}

static int method_describe(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *json = NULL;
        int r;

        r = manager_describe(userdata, &json);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to read the update state: %m");
        return sd_bus_reply_method_return(message, "s", json);
}

static int property_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_(status_booted_done) BootedInfo b = {};
        const char *v = NULL;

        if (streq(property, "Operation"))
                v = manager_operation(m);
        else if (streq(property, "Step"))
                v = m->step;
        else if (streq(property, "Channel"))
                v = m->config.channel;
        else if (streq(property, "BootedSlot") || streq(property, "BootedVersion")) {
                if (status_booted(m->root, &m->config, &b) >= 0)
                        v = streq(property, "BootedSlot") ? b.slot : b.version;
        }
        return sd_bus_message_append(reply, "s", strempty(v));
}

static int property_get_progress(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        return sd_bus_message_append(reply, "(ttuub)", m->bytes, m->total, m->fetched, m->requested, m->delta);
}

const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Check", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("b", available, "s", version, "s", kernel, "t", counter, "t", download_size),
                                method_check, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Stage", SD_BUS_ARGS("s", version), SD_BUS_RESULT("u", job_id),
                                method_stage, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Commit", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("u", job_id),
                                method_switch, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Rollback", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("u", job_id),
                                method_switch, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("PlanCommit", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("s", plan),
                                method_plan, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("PlanRollback", SD_BUS_ARGS("t", flags), SD_BUS_RESULT("s", plan),
                                method_plan, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Cancel", "", "", method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Describe", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", json),
                                method_describe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("JobRemoved",
                                SD_BUS_ARGS("u", job_id, "s", operation, "s", transaction_id, "i", result, "s", message), 0),
        SD_BUS_PROPERTY("Operation", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Step", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Progress", "(ttuub)", property_get_progress, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BootedSlot", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("BootedVersion", "s", property_get_string, 0, 0),
        SD_BUS_PROPERTY("Channel", "s", property_get_string, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END
};

int manager_bus_register(Manager *m) {
        int r = sd_bus_add_object_vtable(m->bus, NULL, UPDATER_BUS_PATH, UPDATER_BUS_INTERFACE, manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the bus object: %m");
        return 0;
}

int manager_describe(Manager *m, char **ret) {
        StatusJob job = {
                .operation = manager_operation(m),
                .step = m->step,
                .bytes = m->bytes,
                .total = m->total,
                .auto_commit_at = m->auto_commit_at,
        };
        return status_describe(m->root, &m->config, &job, ret);
}
