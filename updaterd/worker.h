/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* updaterd does no update work itself: each job runs in a forked worker that
 * reports to the daemon over a pipe, one line per event (short lines are
 * written atomically):
 *
 *   TRANSACTION <id>                     the transaction record in use
 *   STEP <name>                          a step completed (transaction step names)
 *   PROGRESS <bytes> <total> <fetched> <requested> <delta>
 *   RESULT <json>                        the outcome of a check, the plan of a dry run
 *   WAITING <why>                        a switch waits for a fleet slot (until the next STEP)
 *   DONE <errno> <message>               last line: 0 or a negative errno (down to -ERRNO_MAX), and why
 *
 * A worker that dies without DONE (killed, crashed, power cut) leaves the
 * transaction record at its last step; the next job resumes from there. */

#include <stdbool.h>
#include <stdint.h>

typedef enum JobOperation {
        JOB_CHECK,
        JOB_STAGE,
        JOB_COMMIT,
        JOB_ROLLBACK,
        JOB_PLAN_COMMIT,   /* the dry runs of commit and rollback: RESULT is the plan */
        JOB_PLAN_ROLLBACK,
        JOB_FLEET_RELEASE, /* gives back the fleet slot a switch took, once a slot is blessed */
        _JOB_OPERATION_MAX,
        _JOB_OPERATION_INVALID = -22,
} JobOperation;

const char *job_operation_to_string(JobOperation o);

typedef struct Reporter {
        int fd;
} Reporter;

void reporter_transaction(Reporter *r, const char *id);
void reporter_step(Reporter *r, const char *step);
void reporter_progress(Reporter *r, uint64_t bytes, uint64_t total, unsigned fetched, unsigned requested, bool delta);
void reporter_result(Reporter *r, const char *json);
void reporter_waiting(Reporter *r, const char *why);
void reporter_done(Reporter *r, int result, const char *message);

typedef struct WorkerEvent {
        enum { EVENT_TRANSACTION, EVENT_STEP, EVENT_PROGRESS, EVENT_RESULT, EVENT_WAITING, EVENT_DONE } type;
        const char *text;          /* id, step, json, why or message: points into the parsed line */
        uint64_t bytes, total;
        unsigned fetched, requested;
        bool delta;
        int result;
} WorkerEvent;

/* Parses one line (without its newline, modified in place); -EBADMSG if malformed. */
int worker_event_parse(char *line, WorkerEvent *ret);

/* The longest event line, newline included: the reporter shortens messages to fit. */
#define WORKER_LINE_MAX 8192U

/* Splits what the worker writes into lines. A line longer than WORKER_LINE_MAX is dropped whole, up
 * to its newline: a tail of it must not pass for an event of its own. */
typedef struct WorkerLineBuffer {
        char line[WORKER_LINE_MAX];
        size_t len;
        bool overlong; /* dropping what is left of a line too long */
} WorkerLineBuffer;

typedef void (*worker_line_t)(char *line, void *userdata);

/* Appends DATA and calls CB for each complete line (without its newline, NUL-terminated, to be
 * modified at will). Returns how many overlong lines were dropped meanwhile. */
unsigned worker_line_buffer_feed(WorkerLineBuffer *b, const char *data, size_t size, worker_line_t cb, void *userdata);
