/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "string-util.h"
#include "worker.h"

static const char * const job_operation_table[_JOB_OPERATION_MAX] = {
        [JOB_CHECK] = "check",
        [JOB_STAGE] = "stage",
        [JOB_COMMIT] = "commit",
        [JOB_ROLLBACK] = "rollback",
};

const char *job_operation_to_string(JobOperation o) {
        if (o < 0 || o >= _JOB_OPERATION_MAX)
                return NULL;
        return job_operation_table[o];
}

/* Messages are one line: newlines in them would start a bogus event, and a line too long would be
 * dropped by the daemon (a DONE among them), so a long message is cut short. */
static void report(Reporter *r, const char *tag, const char *text) {
        _cleanup_free_ char *flat = strdup(text ?: "");
        if (r->fd < 0)
                return;
        if (flat) {
                for (char *p = flat; *p; p++)
                        if (*p == '\n' || *p == '\r')
                                *p = ' ';
                size_t room = WORKER_LINE_MAX - strlen(tag) - 2; /* the space and the newline */
                if (strlen(flat) > room)
                        flat[room] = 0;
        }
        dprintf(r->fd, "%s %s\n", tag, flat ?: "");
}

void reporter_transaction(Reporter *r, const char *id) {
        report(r, "TRANSACTION", id);
}

void reporter_step(Reporter *r, const char *step) {
        report(r, "STEP", step);
}

void reporter_progress(Reporter *r, uint64_t bytes, uint64_t total, unsigned fetched, unsigned requested, bool delta) {
        if (r->fd >= 0)
                dprintf(r->fd, "PROGRESS %" PRIu64 " %" PRIu64 " %u %u %d\n", bytes, total, fetched, requested, delta);
}

void reporter_result(Reporter *r, const char *json) {
        report(r, "RESULT", json);
}

void reporter_done(Reporter *r, int result, const char *message) {
        char buf[32];
        snprintf(buf, sizeof(buf), "DONE %d", result);
        report(r, buf, message);
}

int worker_event_parse(char *line, WorkerEvent *ret) {
        char *rest = strchr(line, ' ');
        WorkerEvent e = {};

        if (!rest)
                return -EBADMSG;
        *rest++ = 0;

        if (streq(line, "TRANSACTION")) {
                e.type = EVENT_TRANSACTION;
                e.text = rest;
        } else if (streq(line, "STEP")) {
                e.type = EVENT_STEP;
                e.text = rest;
        } else if (streq(line, "RESULT")) {
                e.type = EVENT_RESULT;
                e.text = rest;
        } else if (streq(line, "PROGRESS")) {
                unsigned long long bytes, total;
                int delta;
                e.type = EVENT_PROGRESS;
                if (sscanf(rest, "%llu %llu %u %u %d", &bytes, &total, &e.fetched, &e.requested, &delta) != 5)
                        return -EBADMSG;
                e.bytes = bytes;
                e.total = total;
                e.delta = delta;
        } else if (streq(line, "DONE")) {
                char *msg = strchr(rest, ' ');
                e.type = EVENT_DONE;
                if (msg)
                        *msg++ = 0;
                e.text = msg ?: "";
                if (sscanf(rest, "%d", &e.result) != 1 || e.result > 0)
                        return -EBADMSG;
        } else
                return -EBADMSG;

        *ret = e;
        return 0;
}

unsigned worker_line_buffer_feed(WorkerLineBuffer *b, const char *data, size_t size, worker_line_t cb, void *userdata) {
        unsigned dropped = 0;

        while (size > 0) {
                const char *nl = memchr(data, '\n', size);
                size_t n = nl ? (size_t) (nl - data) : size;

                if (b->overlong) {
                        /* The rest of a line already given up on: skip to its end. */
                        if (nl)
                                b->overlong = false;
                } else if (b->len + n >= sizeof(b->line)) {
                        /* No room for it and its NUL: the whole line goes, whatever came of it. */
                        b->len = 0;
                        b->overlong = !nl;
                        dropped++;
                } else {
                        memcpy(b->line + b->len, data, n);
                        b->len += n;
                        if (nl) {
                                b->line[b->len] = 0;
                                b->len = 0;
                                cb(b->line, userdata);
                        }
                }
                data += nl ? n + 1 : n;
                size -= nl ? n + 1 : n;
        }
        return dropped;
}
