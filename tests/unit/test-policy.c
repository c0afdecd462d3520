/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The decisions of check and stage, and the worker's report protocol. */
#include "tests.h"
#include "log.h"
#include "policy.h"
#include "worker.h"

#define C1 "1111111111111111111111111111111111111111111111111111111111111111"
#define C2 "2222222222222222222222222222222222222222222222222222222222222222"

static void table_with(SlotTable *t, SlotState b_state, const char *b_commit) {
        slot_table_init(t);
        assert_int_equal(slot_adopt_booted(t, SLOT_A, "1", C1, 1, "6.12"), 0);
        if (b_commit) {
                assert_int_equal(slot_mark_writing(t, SLOT_B, SLOT_A), 0);
                assert_int_equal(slot_mark_staged(t, SLOT_B, "2", b_commit, 2, "7.3"), 0);
                if (b_state == SLOT_STATE_BAD)
                        assert_int_equal(slot_mark_bad(t, SLOT_B), 0);
        }
}

static Manifest manifest_for(const char *commit, const char *version) {
        return (Manifest) { .commit = (char *) commit, .version = (char *) version, .tree_size = 1000 };
}

static void test_update_state(void **state) {
        SlotTable t;
        Manifest m1 = manifest_for(C1, "1"), m2 = manifest_for(C2, "2");

        table_with(&t, SLOT_STATE_EMPTY, NULL);
        assert_int_equal(update_state_of(&t, SLOT_A, &m1), UPDATE_RUNNING);
        assert_int_equal(update_state_of(&t, SLOT_A, &m2), UPDATE_AVAILABLE);
        slot_table_done(&t);

        table_with(&t, SLOT_STATE_STAGED, C2);
        assert_int_equal(update_state_of(&t, SLOT_A, &m2), UPDATE_STAGED);
        slot_table_done(&t);

        /* A release that failed in the other slot may be staged again. */
        table_with(&t, SLOT_STATE_BAD, C2);
        assert_int_equal(update_state_of(&t, SLOT_A, &m2), UPDATE_AVAILABLE);
        slot_table_done(&t);
}

static void test_policy_counter_never_below_accepted(void **state) {
        SlotTable t;
        ManifestPolicy p;

        table_with(&t, SLOT_STATE_STAGED, C2);
        update_policy_init(&p, &t, SLOT_A, NULL, "stable", 42);
        /* Booted release 1, but 2 was accepted for slot B: 1 is a rollback now. */
        assert_true(p.min_counter == 2);
        assert_string_equal(p.booted_version, "1");
        assert_string_equal(p.channel, "stable");
        assert_true(p.now == 42);
        slot_table_done(&t);

        table_with(&t, SLOT_STATE_EMPTY, NULL);
        update_policy_init(&p, &t, SLOT_A, NULL, "stable", 42);
        assert_true(p.min_counter == 1);
        slot_table_done(&t);
}

static void test_stage_resume_decision(void **state) {
        _cleanup_(transaction_freep) Transaction *t = NULL;
        Manifest m2 = manifest_for(C2, "2"), m3 = manifest_for(C1, "3");

        assert_false(stage_can_resume(NULL, &m2, SLOT_B));
        assert_int_equal(transaction_new(TRANSACTION_STAGE, SLOT_A, SLOT_B, &t), 0);
        t->to_commit = strdup(C2);
        assert_int_equal(transaction_set_step(t, STEP_PULLED), 0);
        assert_true(stage_can_resume(t, &m2, SLOT_B));
        /* Another release on the server now: start over. */
        assert_false(stage_can_resume(t, &m3, SLOT_B));
        /* A finished transaction is not resumed. */
        assert_int_equal(transaction_finish(t, OUTCOME_FAILED, "x"), 0);
        assert_false(stage_can_resume(t, &m2, SLOT_B));
}

static void test_stage_resume_needs_same_operation(void **state) {
        _cleanup_(transaction_freep) Transaction *t = NULL;
        Manifest m2 = manifest_for(C2, "2");

        assert_int_equal(transaction_new(TRANSACTION_COMMIT, SLOT_A, SLOT_B, &t), 0);
        t->to_commit = strdup(C2);
        assert_false(stage_can_resume(t, &m2, SLOT_B));
}

static void test_space_needed_prefers_delta(void **state) {
        ManifestDelta d = { .from_commit = (char *) C1, .size = 100 };
        Manifest m = manifest_for(C2, "2");
        m.tree_size = 1000ULL << 20;
        m.deltas = &d;
        m.n_deltas = 1;

        uint64_t with_delta = stage_space_needed(&m, C1);
        uint64_t without = stage_space_needed(&m, "ffff");
        assert_true(with_delta < without);
        assert_true(without >= m.tree_size * 3);
        assert_true(with_delta >= 64ULL << 20);
}

/* Signed sizes near 2^64 must not wrap around to a need that any disk meets. */
static void test_space_needed_saturates(void **state) {
        ManifestDelta d = { .from_commit = (char *) C1, .size = UINT64_MAX / 3 };
        Manifest m = manifest_for(C2, "2");
        m.tree_size = UINT64_MAX / 2;
        m.deltas = &d;
        m.n_deltas = 1;

        assert_true(stage_space_needed(&m, "ffff") == UINT64_MAX);
        assert_true(stage_space_needed(&m, C1) == UINT64_MAX);
        m.tree_size = UINT64_MAX;
        assert_true(stage_space_needed(&m, "ffff") == UINT64_MAX);
}

static void test_worker_protocol_roundtrip(void **state) {
        int fds[2];
        char buf[4096];
        WorkerEvent e;

        assert_int_equal(pipe(fds), 0);
        Reporter r = { .fd = fds[1] };
        reporter_transaction(&r, "0123456789abcdef0123456789abcdef");
        reporter_step(&r, "pulled");
        reporter_progress(&r, 1234, 5678, 3, 9, true);
        reporter_result(&r, "{\"available\":true}");
        reporter_done(&r, -ENOSPC, "Staging 2 needs 1.2G\nmore");
        close(fds[1]);
        ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
        close(fds[0]);
        assert_true(n > 0);
        buf[n] = 0;

        char *save = NULL, *line = strtok_r(buf, "\n", &save);
        assert_int_equal(worker_event_parse(line, &e), 0);
        assert_int_equal(e.type, EVENT_TRANSACTION);
        assert_string_equal(e.text, "0123456789abcdef0123456789abcdef");
        line = strtok_r(NULL, "\n", &save);
        assert_int_equal(worker_event_parse(line, &e), 0);
        assert_int_equal(e.type, EVENT_STEP);
        assert_string_equal(e.text, "pulled");
        line = strtok_r(NULL, "\n", &save);
        assert_int_equal(worker_event_parse(line, &e), 0);
        assert_int_equal(e.type, EVENT_PROGRESS);
        assert_true(e.bytes == 1234 && e.total == 5678 && e.fetched == 3 && e.requested == 9 && e.delta);
        line = strtok_r(NULL, "\n", &save);
        assert_int_equal(worker_event_parse(line, &e), 0);
        assert_int_equal(e.type, EVENT_RESULT);
        assert_string_equal(e.text, "{\"available\":true}");
        line = strtok_r(NULL, "\n", &save);
        assert_int_equal(worker_event_parse(line, &e), 0);
        assert_int_equal(e.type, EVENT_DONE);
        assert_int_equal(e.result, -ENOSPC);
        /* A newline inside a message must not end it early. */
        assert_string_equal(e.text, "Staging 2 needs 1.2G more");
        assert_null(strtok_r(NULL, "\n", &save));
}

typedef struct Lines {
        unsigned n;
        char *last;
} Lines;

static void on_line(char *line, void *userdata) {
        Lines *l = userdata;
        l->n++;
        free(l->last);
        l->last = strdup(line);
}

/* A line longer than the buffer is dropped whole: its tail ("DONE 0 …" here) is no event. */
static void test_worker_overlong_line_dropped(void **state) {
        WorkerLineBuffer b = {};
        Lines l = {};
        size_t n = WORKER_LINE_MAX + 100;
        _cleanup_free_ char *big = malloc(n + 64);

        assert_non_null(big);
        memset(big, 'A', WORKER_LINE_MAX - 1);
        strcpy(big + WORKER_LINE_MAX - 1, "DONE 0 forged\n");

        assert_int_equal(worker_line_buffer_feed(&b, "STEP pul", 8, on_line, &l), 0);
        assert_int_equal(worker_line_buffer_feed(&b, "led\n", 4, on_line, &l), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.last, "STEP pulled");

        /* In pieces as a pipe delivers them, then a good line after it. */
        size_t total = strlen(big), half = WORKER_LINE_MAX / 2;
        assert_int_equal(worker_line_buffer_feed(&b, big, half, on_line, &l), 0);
        assert_int_equal(worker_line_buffer_feed(&b, big + half, WORKER_LINE_MAX - 1 - half, on_line, &l), 0);
        assert_int_equal(worker_line_buffer_feed(&b, big + WORKER_LINE_MAX - 1, total - (WORKER_LINE_MAX - 1), on_line, &l), 1);
        assert_int_equal(worker_line_buffer_feed(&b, "STEP staged\n", 12, on_line, &l), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.last, "STEP staged");

        /* At once, with its newline in the same piece. */
        assert_int_equal(worker_line_buffer_feed(&b, big, total, on_line, &l), 1);
        assert_int_equal(l.n, 2);
        /* The longest line that fits still does. */
        memset(big, 'B', WORKER_LINE_MAX - 1);
        big[WORKER_LINE_MAX - 1] = '\n';
        assert_int_equal(worker_line_buffer_feed(&b, big, WORKER_LINE_MAX, on_line, &l), 0);
        assert_int_equal(l.n, 3);
        assert_int_equal(strlen(l.last), WORKER_LINE_MAX - 1);
        free(l.last);
}

/* A message too long for a line is cut short, so the DONE line still arrives. */
static void test_worker_long_message_fits(void **state) {
        int fds[2];
        _cleanup_free_ char *msg = malloc(3 * WORKER_LINE_MAX), *buf = malloc(4 * WORKER_LINE_MAX);
        WorkerLineBuffer b = {};
        Lines l = {};
        WorkerEvent e;

        assert_non_null(msg);
        assert_non_null(buf);
        memset(msg, 'm', 3 * WORKER_LINE_MAX - 1);
        msg[3 * WORKER_LINE_MAX - 1] = 0;
        assert_int_equal(pipe(fds), 0);
        Reporter r = { .fd = fds[1] };
        reporter_done(&r, -EIO, msg);
        close(fds[1]);
        size_t n = 0;
        for (ssize_t k; (k = read(fds[0], buf + n, 4 * WORKER_LINE_MAX - n)) > 0;)
                n += (size_t) k;
        close(fds[0]);
        assert_int_equal(worker_line_buffer_feed(&b, buf, n, on_line, &l), 0);
        assert_int_equal(l.n, 1);
        assert_int_equal(worker_event_parse(l.last, &e), 0);
        assert_int_equal(e.type, EVENT_DONE);
        assert_int_equal(e.result, -EIO);
        free(l.last);
}

static void test_worker_protocol_rejects_garbage(void **state) {
        WorkerEvent e;
        char a[] = "PROGRESS 1 2", b[] = "HELLO world", c[] = "DONE 5 positive", d[] = "nospace";
        assert_int_equal(worker_event_parse(a, &e), -EBADMSG);
        assert_int_equal(worker_event_parse(b, &e), -EBADMSG);
        assert_int_equal(worker_event_parse(c, &e), -EBADMSG);
        assert_int_equal(worker_event_parse(d, &e), -EBADMSG);
}

/* Found by fuzz-worker-event: sscanf() took an errno past INT_MIN (undefined, then negated by
 * updaterd) and wrapped "-1" into a byte count. */
static void test_worker_protocol_rejects_out_of_range(void **state) {
        WorkerEvent e;
        char a[] = "DONE -4407370959672960 x", b[] = "DONE -2147483648", c[] = "DONE -4096 x", d[] = "DONE -0 x",
             f[] = "PROGRESS -1 2 3 4 0", g[] = "PROGRESS 1 2 4294967296 4 0", h[] = "PROGRESS 1 2 3 4 2",
             i[] = "PROGRESS 1 2 3 4 1 junk", ok[] = "DONE -4095 last errno", nomsg[] = "DONE 0";

        char *bad[] = { a, b, c, d, f, g, h, i };

        for (size_t k = 0; k < ELEMENTSOF(bad); k++)
                assert_int_equal(worker_event_parse(bad[k], &e), -EBADMSG);
        assert_int_equal(worker_event_parse(ok, &e), 0);
        assert_int_equal(e.result, -4095);
        assert_string_equal(e.text, "last errno");
        assert_int_equal(worker_event_parse(nomsg, &e), 0);
        assert_int_equal(e.result, 0);
        assert_string_equal(e.text, "");
}

int main(void) {
        log_set_max_level(LOG_EMERG);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_update_state),
                cmocka_unit_test(test_policy_counter_never_below_accepted),
                cmocka_unit_test(test_stage_resume_decision),
                cmocka_unit_test(test_stage_resume_needs_same_operation),
                cmocka_unit_test(test_space_needed_prefers_delta),
                cmocka_unit_test(test_space_needed_saturates),
                cmocka_unit_test(test_worker_protocol_roundtrip),
                cmocka_unit_test(test_worker_overlong_line_dropped),
                cmocka_unit_test(test_worker_long_message_fits),
                cmocka_unit_test(test_worker_protocol_rejects_garbage),
                cmocka_unit_test(test_worker_protocol_rejects_out_of_range),
        };
        return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
