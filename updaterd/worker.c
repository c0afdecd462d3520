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
        [JOB_PLAN_COMMIT] = "plan-commit",
        [JOB_PLAN_ROLLBACK] = "plan-rollback",
        [JOB_FLEET_RELEASE] = "fleet-release",
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

void reporter_waiting(Reporter *r, const char *why) {
        report(r, "WAITING", why);
}

void reporter_done(Reporter *r, int result, const char *message) {
        char buf[32];
        snprintf(buf, sizeof(buf), "DONE %d", result);
        report(r, buf, message);
}

/* Splits off the next space-separated word of *p (NUL-terminating it in place). */
static char *next_word(char **p) {
        char *w = *p, *space = strchr(w, ' ');

        if (space) {
                *space = 0;
                *p = space + 1;
        } else
                *p = w + strlen(w);
        return w;
}

/* "0" or "-N" for an errno N: strictly, since updaterd negates it and hands it to strerror(). */
static int parse_result(const char *s, int *ret) {
        unsigned v;

        if (streq(s, "0")) {
                *ret = 0;
                return 0;
        }
        if (s[0] != '-' || parse_unsigned(s + 1, &v) < 0 || v == 0 || v > ERRNO_MAX)
                return -EBADMSG;
        *ret = -(int) v;
        return 0;
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
        } else if (streq(line, "WAITING")) {
                e.type = EVENT_WAITING;
                e.text = rest;
        } else if (streq(line, "PROGRESS")) {
                /* Exactly what reporter_progress() writes: a sign, an overflow or trailing junk is
                 * no progress (sscanf() would wrap "-1" and overflow "%u" silently). */
                const char *bytes = next_word(&rest), *total = next_word(&rest), *fetched = next_word(&rest),
                           *requested = next_word(&rest), *delta = next_word(&rest);
                e.type = EVENT_PROGRESS;
                if (*rest || parse_uint64(bytes, &e.bytes) < 0 || parse_uint64(total, &e.total) < 0 ||
                    parse_unsigned(fetched, &e.fetched) < 0 || parse_unsigned(requested, &e.requested) < 0 ||
                    !(streq(delta, "0") || streq(delta, "1")))
                        return -EBADMSG;
                e.delta = streq(delta, "1");
        } else if (streq(line, "DONE")) {
                const char *result = next_word(&rest);
                e.type = EVENT_DONE;
                e.text = rest;
                if (parse_result(result, &e.result) < 0)
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
