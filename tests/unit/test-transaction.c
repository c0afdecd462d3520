/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tests.h"
#include "log.h"
#include "transaction.h"

static int setup(void **state) {
        log_set_target(LOG_TARGET_CONSOLE);
        log_set_max_level(LOG_EMERG); /* the refusals below are expected */
        return tmpdir_setup(state);
}

static void test_new_transaction(void **state) {
        _cleanup_(transaction_freep) Transaction *t = NULL, *u = NULL;

        assert_int_equal(transaction_new(TRANSACTION_STAGE, SLOT_A, SLOT_B, &t), 0);
        assert_int_equal(strlen(t->id), TRANSACTION_ID_LENGTH);
        assert_int_equal(t->step, STEP_STARTED);
        assert_int_equal(t->outcome, OUTCOME_IN_PROGRESS);
        assert_true(t->started > 0 && t->started == t->updated);
        assert_non_null(t->boot_id);
        assert_int_equal(transaction_new(TRANSACTION_STAGE, SLOT_A, SLOT_B, &u), 0);
        assert_string_not_equal(t->id, u->id);
}

static void test_new_refuses_same_slot(void **state) {
        Transaction *t = NULL;
        assert_int_equal(transaction_new(TRANSACTION_COMMIT, SLOT_B, SLOT_B, &t), -EINVAL);
        assert_int_equal(transaction_new(_TRANSACTION_OPERATION_MAX, SLOT_A, SLOT_B, &t), -EINVAL);
        assert_null(t);
}

static void test_steps_only_move_forward(void **state) {
        _cleanup_(transaction_freep) Transaction *t = NULL;

        assert_int_equal(transaction_new(TRANSACTION_COMMIT, SLOT_A, SLOT_B, &t), 0);
        assert_int_equal(transaction_set_step(t, STEP_SERVICES_DUMPED), 0);
        assert_int_equal(transaction_set_step(t, STEP_SERVICES_DUMPED), 0);
        assert_int_equal(transaction_set_step(t, STEP_KERNEL_LOADED), -EINVAL);
        assert_int_equal(t->step, STEP_SERVICES_DUMPED);
        assert_int_equal(transaction_set_step(t, _TRANSACTION_STEP_MAX), -EINVAL);
}

static void test_finish(void **state) {
        _cleanup_(transaction_freep) Transaction *t = NULL;

        assert_int_equal(transaction_new(TRANSACTION_STAGE, SLOT_A, SLOT_B, &t), 0);
        assert_int_equal(transaction_finish(t, OUTCOME_IN_PROGRESS, NULL), -EINVAL);
        assert_int_equal(transaction_finish(t, OUTCOME_FAILED, "No space left on /var (needs 1.2G more)"), 0);
        assert_int_equal(t->outcome, OUTCOME_FAILED);
        assert_string_equal(t->error, "No space left on /var (needs 1.2G more)");
        /* A finished transaction takes no further steps. */
        assert_int_equal(transaction_set_step(t, STEP_STAGED), -EINVAL);
}

static void test_roundtrip(void **state) {
        _cleanup_(transaction_freep) Transaction *t = NULL, *u = NULL;
        _cleanup_free_ char *p = path_join2(*state, "transaction.json");
        struct stat st;

        assert_int_equal(transaction_new(TRANSACTION_ROLLBACK, SLOT_B, SLOT_A, &t), 0);
        t->from_version = strdup("2");
        t->to_version = strdup("1");
        t->to_commit = strdup("3f7a0c1e8b2d4f6a9c0e1b3d5f7a9c0e1b3d5f7a9c0e1b3d5f7a9c0e1b3d5f7a");
        assert_int_equal(transaction_set_step(t, STEP_SWITCHING), 0);
        assert_int_equal(transaction_set_service(t, "redis-server.service", "checkpointed"), 0);
        assert_int_equal(transaction_set_service(t, "nginx.service", "fresh"), 0);
        assert_int_equal(transaction_set_service(t, "redis-server.service", "restored"), 0); /* updated in place */
        assert_int_equal(transaction_finish(t, OUTCOME_SUCCEEDED, NULL), 0);
        assert_int_equal(transaction_save(t, p), 0);

        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);

        assert_int_equal(transaction_load(p, &u), 0);
        assert_string_equal(u->id, t->id);
        assert_int_equal(u->operation, TRANSACTION_ROLLBACK);
        assert_int_equal(u->step, STEP_DONE);
        assert_int_equal(u->outcome, OUTCOME_SUCCEEDED);
        assert_int_equal(u->from_slot, SLOT_B);
        assert_int_equal(u->to_slot, SLOT_A);
        assert_string_equal(u->from_version, "2");
        assert_string_equal(u->to_version, "1");
        assert_string_equal(u->to_commit, t->to_commit);
        assert_string_equal(u->boot_id, t->boot_id);
        assert_null(u->error);
        assert_true(u->started == t->started && u->updated == t->updated);
        assert_int_equal(strv_length(u->services), 4);
        assert_string_equal(transaction_get_service(u, "redis-server.service"), "restored");
        assert_string_equal(transaction_get_service(u, "nginx.service"), "fresh");
        assert_null(transaction_get_service(u, "sshd.service"));
}

static void test_load_missing(void **state) {
        _cleanup_free_ char *p = path_join2(*state, "none.json");
        Transaction *t = NULL;
        assert_int_equal(transaction_load(p, &t), -ENOENT);
        assert_null(t);
}

/* Writes text as the record and returns what loading it gives. */
static int load_text(const char *dir, const char *text) {
        _cleanup_free_ char *p = path_join2(dir, "transaction.json");
        Transaction *t = NULL;

        assert_int_equal(write_string_file_atomic(p, text, 0644), 0);
        int r = transaction_load(p, &t);
        if (r >= 0)
                transaction_free(t);
        else
                assert_null(t);
        return r;
}

#define VALID_ID "0123456789abcdef0123456789abcdef"
#define RECORD(version, extra)                                                               \
        "{\"version\":" version ",\"id\":\"" VALID_ID "\",\"operation\":\"commit\","              \
        "\"step\":\"switching\",\"outcome\":\"in-progress\",\"from_slot\":\"a\",\"to_slot\":\"b\"," \
        "\"started_usec\":1,\"updated_usec\":2" extra "}"

static void test_valid_minimal_record(void **state) {
        assert_int_equal(load_text(*state, RECORD("1", "")), 0);
}

static void test_unknown_extra_field_accepted(void **state) {
        assert_int_equal(load_text(*state, RECORD("1", ",\"note\":\"from a later minor release\"")), 0);
}

static void test_truncated_record(void **state) {
        _cleanup_(transaction_freep) Transaction *t = NULL;
        _cleanup_free_ char *p = path_join2(*state, "transaction.json"), *text = NULL;
        size_t size;

        assert_int_equal(transaction_new(TRANSACTION_COMMIT, SLOT_A, SLOT_B, &t), 0);
        assert_int_equal(transaction_save(t, p), 0);
        assert_int_equal(read_file_limited(p, TRANSACTION_FILE_MAX, &text, &size), 0);
        /* Cut anywhere before the closing brace (a torn write without the
         * atomic rename), the record is refused as a whole. */
        for (size_t cut = 0; cut < size - 2; cut += 7) {
                _cleanup_free_ char *part = strndup(text, cut);
                assert_int_equal(load_text(*state, part), -EBADMSG);
        }
}

static void test_corrupt_json(void **state) {
        assert_int_equal(load_text(*state, "{\"version\":1,,}"), -EBADMSG);
        assert_int_equal(load_text(*state, "[1,2,3]"), -EBADMSG);
        assert_int_equal(load_text(*state, ""), -EBADMSG);
        assert_int_equal(load_text(*state, "\x89PNG\r\n"), -EBADMSG);
}

static void test_unknown_version(void **state) {
        assert_int_equal(load_text(*state, RECORD("2", "")), -EPROTONOSUPPORT);
        assert_int_equal(load_text(*state, RECORD("0", "")), -EPROTONOSUPPORT);
}

static void test_missing_or_bad_version(void **state) {
        assert_int_equal(load_text(*state, "{\"id\":\"" VALID_ID "\"}"), -EBADMSG);
        assert_int_equal(load_text(*state, RECORD("\"1\"", "")), -EBADMSG);
        assert_int_equal(load_text(*state, RECORD("-1", "")), -EBADMSG);
}

static void test_bad_fields(void **state) {
        /* missing mandatory field */
        assert_int_equal(load_text(*state, "{\"version\":1,\"id\":\"" VALID_ID "\"}"), -EBADMSG);
        /* wrong type */
        assert_int_equal(load_text(*state, RECORD("1", ",\"to_version\":2")), -EBADMSG);
        /* unknown enum value */
        assert_int_equal(load_text(*state,
                "{\"version\":1,\"id\":\"" VALID_ID "\",\"operation\":\"explode\",\"step\":\"started\","
                "\"outcome\":\"in-progress\",\"from_slot\":\"a\",\"to_slot\":\"b\",\"started_usec\":1,\"updated_usec\":1}"),
                -EBADMSG);
        /* from and to the same slot */
        assert_int_equal(load_text(*state,
                "{\"version\":1,\"id\":\"" VALID_ID "\",\"operation\":\"stage\",\"step\":\"started\","
                "\"outcome\":\"in-progress\",\"from_slot\":\"a\",\"to_slot\":\"a\",\"started_usec\":1,\"updated_usec\":1}"),
                -EBADMSG);
        /* bad id */
        assert_int_equal(load_text(*state,
                "{\"version\":1,\"id\":\"../../etc\",\"operation\":\"stage\",\"step\":\"started\","
                "\"outcome\":\"in-progress\",\"from_slot\":\"a\",\"to_slot\":\"b\",\"started_usec\":1,\"updated_usec\":1}"),
                -EBADMSG);
        /* time going backwards */
        assert_int_equal(load_text(*state,
                "{\"version\":1,\"id\":\"" VALID_ID "\",\"operation\":\"stage\",\"step\":\"started\","
                "\"outcome\":\"in-progress\",\"from_slot\":\"a\",\"to_slot\":\"b\",\"started_usec\":5,\"updated_usec\":1}"),
                -EBADMSG);
}

static void test_oversized_record(void **state) {
        const char prefix[] = "{\"version\":1,\"pad\":\"";
        size_t n = TRANSACTION_FILE_MAX + 16;
        _cleanup_free_ char *big = malloc(n + 1);

        /* Well-formed JSON, only too large. */
        memset(big, 'x', n);
        memcpy(big, prefix, strlen(prefix));
        memcpy(big + n - 2, "\"}", 2);
        big[n] = 0;
        assert_int_equal(load_text(*state, big), -EBADMSG);
}

static void test_embedded_nul(void **state) {
        _cleanup_free_ char *p = path_join2(*state, "transaction.json");
        const char text[] = RECORD("1", "") "\0junk";
        Transaction *t = NULL;

        assert_int_equal(write_file_atomic(p, text, sizeof(text) - 1, 0644), 0);
        assert_int_equal(transaction_load(p, &t), -EBADMSG);
}

static void test_string_tables(void **state) {
        for (int i = 0; i < _TRANSACTION_STEP_MAX; i++)
                assert_int_equal(transaction_step_from_string(transaction_step_to_string(i)), i);
        for (int i = 0; i < _TRANSACTION_OUTCOME_MAX; i++)
                assert_int_equal(transaction_outcome_from_string(transaction_outcome_to_string(i)), i);
        for (int i = 0; i < _TRANSACTION_OPERATION_MAX; i++)
                assert_int_equal(transaction_operation_from_string(transaction_operation_to_string(i)), i);
        assert_int_equal(slot_from_string("B"), SLOT_B);
        assert_int_equal(slot_from_string("c"), _SLOT_INVALID);
        assert_int_equal(slot_other(SLOT_A), SLOT_B);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_new_transaction, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_new_refuses_same_slot, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_steps_only_move_forward, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_finish, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_roundtrip, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_load_missing, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_valid_minimal_record, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_unknown_extra_field_accepted, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_truncated_record, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_json, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_unknown_version, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_missing_or_bad_version, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_bad_fields, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_oversized_record, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_embedded_nul, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_string_tables, setup, tmpdir_teardown),
        };
        return cmocka_run_group_tests_name("transaction", tests, NULL, NULL);
}
