/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tests.h"
#include "log.h"
#include "proc-cmdline.h"
#include "slot-status.h"

#define COMMIT1 "3f7a0c1e8b2d4f6a9c0e1b3d5f7a9c0e1b3d5f7a9c0e1b3d5f7a9c0e1b3d5f7a"
#define COMMIT2 "0000000000000000000000000000000000000000000000000000000000000002"

static int setup(void **state) {
        log_set_target(LOG_TARGET_CONSOLE);
        log_set_max_level(LOG_EMERG); /* the refusals below are expected */
        return tmpdir_setup(state);
}

static void test_state_strings(void **state) {
        for (int i = 0; i < _SLOT_STATE_MAX; i++)
                assert_int_equal(slot_state_from_string(slot_state_to_string(i)), i);
        assert_string_equal(slot_state_to_string(SLOT_STATE_STAGED), "staged");
        assert_int_equal(slot_state_from_string("blessed"), _SLOT_STATE_INVALID);
        assert_null(slot_state_to_string(_SLOT_STATE_MAX));
        assert_string_equal(slot_partition_path(SLOT_B), "/dev/disk/by-partlabel/root-b");
        assert_string_equal(slot_partition_path(SLOT_A), "/dev/disk/by-partlabel/root-a");
        assert_null(slot_partition_path(_SLOT_MAX));
}

static void test_lifecycle_and_roundtrip(void **state) {
        _cleanup_(slot_table_done) SlotTable t = {}, u = {};
        _cleanup_free_ char *p = path_join2(*state, "slots.json");
        struct stat st;

        slot_table_init(&t);
        slot_table_init(&u);
        assert_int_equal(slot_adopt_booted(&t, SLOT_A, "1", COMMIT1, 5, "6.12.9-amd64"), 0);
        assert_int_equal(t.slots[SLOT_A].state, SLOT_STATE_GOOD);
        assert_int_equal(t.highest_counter, 5);

        assert_int_equal(slot_mark_writing(&t, SLOT_B, SLOT_A), 0);
        assert_int_equal(slot_mark_staged(&t, SLOT_B, "2", COMMIT2, 7, "6.12.10-amd64"), 0);
        assert_int_equal(t.highest_counter, 7);
        assert_true(t.slots[SLOT_B].updated > 0);

        assert_int_equal(slot_table_save(&t, p), 0);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_int_equal(slot_table_load(p, &u), 0);
        assert_int_equal(u.highest_counter, 7);
        assert_int_equal(u.slots[SLOT_A].state, SLOT_STATE_GOOD);
        assert_string_equal(u.slots[SLOT_A].version, "1");
        assert_string_equal(u.slots[SLOT_A].commit, COMMIT1);
        assert_int_equal(u.slots[SLOT_A].counter, 5);
        assert_int_equal(u.slots[SLOT_B].state, SLOT_STATE_STAGED);
        assert_string_equal(u.slots[SLOT_B].version, "2");
        assert_string_equal(u.slots[SLOT_B].commit, COMMIT2);
        assert_string_equal(u.slots[SLOT_B].kernel, "6.12.10-amd64");
        assert_int_equal(u.slots[SLOT_B].counter, 7);
        assert_true(u.slots[SLOT_B].updated == t.slots[SLOT_B].updated);

        /* Booted into b after the switch: it proves itself, a may be rewritten. */
        assert_int_equal(slot_mark_good(&u, SLOT_B), 0);
        assert_int_equal(slot_mark_good(&u, SLOT_B), 0); /* idempotent */
        assert_int_equal(slot_mark_writing(&u, SLOT_A, SLOT_B), 0);
        assert_null(u.slots[SLOT_A].version);
        assert_null(u.slots[SLOT_A].commit);
        assert_int_equal(u.slots[SLOT_A].counter, 0);
        assert_int_equal(slot_table_save(&u, p), 0);
}

static void test_load_missing(void **state) {
        _cleanup_(slot_table_done) SlotTable t = {};
        _cleanup_free_ char *p = path_join2(*state, "none.json");

        assert_int_equal(slot_table_load(p, &t), -ENOENT);
        /* Left as defaults, so the caller can go on from there. */
        assert_int_equal(t.slots[SLOT_A].state, SLOT_STATE_EMPTY);
        assert_int_equal(t.highest_counter, 0);
}

static void test_writing_refused_on_booted_slot(void **state) {
        _cleanup_(slot_table_done) SlotTable t = {};

        slot_table_init(&t);
        assert_int_equal(slot_adopt_booted(&t, SLOT_B, "1", NULL, 0, NULL), 0);
        assert_int_equal(slot_mark_writing(&t, SLOT_B, SLOT_B), -EBUSY);
        assert_int_equal(t.slots[SLOT_B].state, SLOT_STATE_GOOD);
        assert_string_equal(t.slots[SLOT_B].version, "1");
        /* From any state, including good and bad. */
        assert_int_equal(slot_mark_writing(&t, SLOT_B, SLOT_A), 0);
        assert_int_equal(slot_mark_bad(&t, SLOT_B), 0);
        assert_int_equal(slot_mark_writing(&t, SLOT_B, SLOT_A), 0);
        assert_int_equal(slot_mark_writing(&t, SLOT_B, SLOT_A), 0);
        assert_int_equal(slot_mark_writing(&t, _SLOT_MAX, SLOT_A), -EINVAL);
}

static void test_transitions_validated(void **state) {
        _cleanup_(slot_table_done) SlotTable t = {};

        slot_table_init(&t);
        /* empty: neither staged, good nor bad */
        assert_int_equal(slot_mark_staged(&t, SLOT_B, "2", COMMIT2, 1, NULL), -EINVAL);
        assert_int_equal(slot_mark_good(&t, SLOT_B), -EINVAL);
        assert_int_equal(slot_mark_bad(&t, SLOT_B), -EINVAL);
        assert_int_equal(t.slots[SLOT_B].state, SLOT_STATE_EMPTY);

        /* writing: not good until staged */
        assert_int_equal(slot_mark_writing(&t, SLOT_B, SLOT_A), 0);
        assert_int_equal(slot_mark_good(&t, SLOT_B), -EINVAL);
        /* bad arguments leave it writing */
        assert_int_equal(slot_mark_staged(&t, SLOT_B, "2", "not-a-commit", 1, NULL), -EINVAL);
        assert_int_equal(slot_mark_staged(&t, SLOT_B, "2", NULL, 1, NULL), -EINVAL);
        assert_int_equal(slot_mark_staged(&t, SLOT_B, "", COMMIT2, 1, NULL), -EINVAL);
        assert_int_equal(slot_mark_staged(&t, SLOT_B, "2\nx", COMMIT2, 1, NULL), -EINVAL);
        assert_int_equal(slot_mark_staged(&t, SLOT_B, "2", COMMIT2, 1, "6.1\n"), -EINVAL);
        assert_int_equal(t.slots[SLOT_B].state, SLOT_STATE_WRITING);

        assert_int_equal(slot_mark_staged(&t, SLOT_B, "2", COMMIT2, 1, NULL), 0);
        /* staged: not staged again without being rewritten */
        assert_int_equal(slot_mark_staged(&t, SLOT_B, "2", COMMIT2, 1, NULL), -EINVAL);
        assert_int_equal(slot_mark_bad(&t, SLOT_B), 0);
        /* bad: keeps what was in it, never good again without a rewrite */
        assert_string_equal(t.slots[SLOT_B].version, "2");
        assert_int_equal(slot_mark_good(&t, SLOT_B), -EINVAL);
        assert_int_equal(slot_mark_bad(&t, SLOT_B), 0);
}

static void test_counter_never_goes_back(void **state) {
        _cleanup_(slot_table_done) SlotTable t = {};

        slot_table_init(&t);
        assert_int_equal(slot_mark_writing(&t, SLOT_B, SLOT_A), 0);
        assert_int_equal(slot_mark_staged(&t, SLOT_B, "10", COMMIT2, 10, NULL), 0);
        assert_int_equal(slot_mark_bad(&t, SLOT_B), 0);
        /* Even after the release that raised it failed, an older one stays refused. */
        assert_int_equal(slot_mark_writing(&t, SLOT_B, SLOT_A), 0);
        assert_int_equal(slot_mark_staged(&t, SLOT_B, "9", COMMIT1, 9, NULL), -ESTALE);
        assert_int_equal(t.slots[SLOT_B].state, SLOT_STATE_WRITING);
        assert_int_equal(t.highest_counter, 10);
        assert_int_equal(slot_mark_staged(&t, SLOT_B, "10", COMMIT2, 10, NULL), 0); /* the same again is fine */
        /* A booted slot older than what was accepted is not adopted either. */
        assert_int_equal(slot_adopt_booted(&t, SLOT_A, "8", NULL, 8, NULL), -ESTALE);
        assert_int_equal(t.slots[SLOT_A].state, SLOT_STATE_EMPTY);
        /* Adopting only fills an empty record. */
        assert_int_equal(slot_adopt_booted(&t, SLOT_B, "1", NULL, 11, NULL), 0);
        assert_int_equal(t.slots[SLOT_B].state, SLOT_STATE_STAGED);
        assert_string_equal(t.slots[SLOT_B].version, "10");
}

/* A release verified (by a check, or a stage that never finished) raises the floor as one staged does. */
static void test_floor_raised_by_verified_release(void **state) {
        _cleanup_free_ char *p = path_join2(*state, "slots.json");
        _cleanup_(slot_table_done) SlotTable t = {}, u = {};

        slot_table_init(&t);
        assert_int_equal(slot_adopt_booted(&t, SLOT_A, "1", NULL, 1, NULL), 0);
        assert_int_equal(slot_table_raise_floor(&t, 7), 1);
        assert_int_equal(slot_table_raise_floor(&t, 7), 0);
        assert_int_equal(slot_table_raise_floor(&t, 3), 0); /* never lowered */
        assert_int_equal(t.highest_counter, 7);
        assert_int_equal(slot_table_save(&t, p), 0);

        /* Kept on disk: release 5 is an older one now, whatever the slots hold. */
        assert_int_equal(slot_table_load(p, &u), 0);
        assert_int_equal(u.highest_counter, 7);
        assert_int_equal(slot_mark_writing(&u, SLOT_B, SLOT_A), 0);
        assert_int_equal(slot_mark_staged(&u, SLOT_B, "5", COMMIT1, 5, NULL), -ESTALE);
}

static int load_text(const char *dir, const char *text) {
        _cleanup_free_ char *p = path_join2(dir, "slots.json");
        _cleanup_(slot_table_done) SlotTable t = {};

        assert_int_equal(write_string_file_atomic(p, text, 0644), 0);
        return slot_table_load(p, &t);
}

#define SLOT_OBJ(state, extra) "{\"state\":\"" state "\",\"counter\":0,\"updated_usec\":1" extra "}"
#define TABLE(version, highest, a, b) \
        "{\"version\":" version ",\"highest_counter\":" highest ",\"slots\":{\"a\":" a ",\"b\":" b "}}"

static void test_valid_records(void **state) {
        assert_int_equal(load_text(*state, TABLE("1", "0", SLOT_OBJ("good", ""), SLOT_OBJ("empty", ""))), 0);
        assert_int_equal(load_text(*state, TABLE("1", "3", SLOT_OBJ("good", ",\"note\":\"later\""),
                                                 SLOT_OBJ("staged", ",\"version\":\"2\",\"commit\":\"" COMMIT2 "\"")) ), 0);
}

static void test_corrupt_records_refused(void **state) {
        assert_int_equal(load_text(*state, ""), -EBADMSG);
        assert_int_equal(load_text(*state, "{\"version\":1,"), -EBADMSG);
        assert_int_equal(load_text(*state, "[]"), -EBADMSG);
        /* no version, version of the wrong type, unknown version */
        assert_int_equal(load_text(*state, "{\"highest_counter\":0}"), -EBADMSG);
        assert_int_equal(load_text(*state, TABLE("\"1\"", "0", SLOT_OBJ("good", ""), SLOT_OBJ("empty", ""))), -EBADMSG);
        assert_int_equal(load_text(*state, TABLE("2", "0", SLOT_OBJ("good", ""), SLOT_OBJ("empty", ""))), -EPROTONOSUPPORT);
        /* missing slot, unknown state, bad commit, missing field */
        assert_int_equal(load_text(*state, "{\"version\":1,\"highest_counter\":0,\"slots\":{\"a\":" SLOT_OBJ("good", "") "}}"),
                         -EBADMSG);
        assert_int_equal(load_text(*state, TABLE("1", "0", SLOT_OBJ("blessed", ""), SLOT_OBJ("empty", ""))), -EBADMSG);
        assert_int_equal(load_text(*state, TABLE("1", "0", SLOT_OBJ("good", ",\"commit\":\"../etc\""), SLOT_OBJ("empty", ""))),
                         -EBADMSG);
        assert_int_equal(load_text(*state, TABLE("1", "0", "{\"state\":\"good\",\"counter\":0}", SLOT_OBJ("empty", ""))),
                         -EBADMSG);
        assert_int_equal(load_text(*state, "{\"version\":1,\"slots\":{\"a\":" SLOT_OBJ("good", "") ",\"b\":" SLOT_OBJ("good", "") "}}"),
                         -EBADMSG);
        /* contradicts itself: staged without commit, counter above the highest */
        assert_int_equal(load_text(*state, TABLE("1", "0", SLOT_OBJ("staged", ",\"version\":\"2\""), SLOT_OBJ("empty", ""))),
                         -EBADMSG);
        assert_int_equal(load_text(*state, TABLE("1", "3", "{\"state\":\"good\",\"counter\":4,\"updated_usec\":1}",
                                                 SLOT_OBJ("empty", ""))),
                         -EBADMSG);
}

static void test_truncated_record(void **state) {
        _cleanup_(slot_table_done) SlotTable t = {};
        _cleanup_free_ char *p = path_join2(*state, "slots.json"), *text = NULL;
        size_t size;

        slot_table_init(&t);
        assert_int_equal(slot_adopt_booted(&t, SLOT_A, "1", COMMIT1, 1, "6.12"), 0);
        assert_int_equal(slot_table_save(&t, p), 0);
        assert_int_equal(read_file_limited(p, SLOT_TABLE_FILE_MAX, &text, &size), 0);
        for (size_t cut = 0; cut < size - 2; cut += 5) {
                _cleanup_free_ char *part = strndup(text, cut);
                assert_int_equal(load_text(*state, part), -EBADMSG);
        }
}

static void test_cmdline_keys(void **state) {
        _cleanup_free_ char *v = NULL, *w = NULL, *x = NULL;
        const char *c = "root=PARTLABEL=root-b dreamlink.handoff=0123 dreamlink.handoff.units=a.service,b.service "
                        "dreamlink.handoff=4567 \"title=two words\" -- dreamlink.handoff=init";

        assert_int_equal(proc_cmdline_get_key(c, "dreamlink.handoff", &v), 0);
        assert_string_equal(v, "4567"); /* the last before "--" */
        assert_int_equal(proc_cmdline_get_key(c, "dreamlink.handoff.units", &w), 0);
        assert_string_equal(w, "a.service,b.service");
        assert_int_equal(proc_cmdline_get_key(c, "title", &x), 0);
        assert_string_equal(x, "two words");
        /* a prefix of a key is not the key; a flag without "=" has no value */
        char *none = NULL;
        assert_int_equal(proc_cmdline_get_key(c, "dreamlink", &none), -ENOENT);
        assert_int_equal(proc_cmdline_get_key("quiet dreamlink.handoff", "dreamlink.handoff", &none), -ENOENT);
        assert_int_equal(proc_cmdline_get_key("", "root", &none), -ENOENT);
        assert_null(none);
}

static void test_cmdline(void **state) {
        Slot s = _SLOT_INVALID;

        assert_int_equal(slot_from_cmdline("BOOT_IMAGE=/vmlinuz root=PARTLABEL=root-b rw quiet\n", &s), 0);
        assert_int_equal(s, SLOT_B);
        assert_int_equal(slot_from_cmdline("root=/dev/disk/by-partlabel/root-a ro", &s), 0);
        assert_int_equal(s, SLOT_A);
        /* the last root= wins, as in the kernel */
        assert_int_equal(slot_from_cmdline("root=PARTLABEL=root-a rw root=PARTLABEL=root-b", &s), 0);
        assert_int_equal(s, SLOT_B);
        assert_int_equal(slot_from_cmdline("root=PARTLABEL=root-b root=/dev/sda2", &s), -ENOENT);
        /* quoted either way */
        assert_int_equal(slot_from_cmdline("quiet root=\"PARTLABEL=root-a\" console=ttyS0", &s), 0);
        assert_int_equal(s, SLOT_A);
        assert_int_equal(slot_from_cmdline("\"root=PARTLABEL=root-b\"", &s), 0);
        assert_int_equal(s, SLOT_B);
        /* a quoted value containing spaces and a fake root= is one word */
        assert_int_equal(slot_from_cmdline("root=PARTLABEL=root-a dyndbg=\"file x root=PARTLABEL=root-b\"", &s), 0);
        assert_int_equal(s, SLOT_A);
        /* after "--" it is init's, not the kernel's */
        assert_int_equal(slot_from_cmdline("root=PARTLABEL=root-a -- root=PARTLABEL=root-b", &s), 0);
        assert_int_equal(s, SLOT_A);
        /* nothing to recognize */
        assert_int_equal(slot_from_cmdline("", &s), -ENOENT);
        assert_int_equal(slot_from_cmdline("rw quiet", &s), -ENOENT);
        assert_int_equal(slot_from_cmdline("root=PARTLABEL=root-c", &s), -ENOENT);
        assert_int_equal(slot_from_cmdline("root=PARTLABEL=root-a2", &s), -ENOENT);
        assert_int_equal(slot_from_cmdline("root=PARTUUID=1234", &s), -ENOENT);
        assert_int_equal(slot_from_cmdline("myroot=PARTLABEL=root-a", &s), -ENOENT);
        assert_int_equal(s, SLOT_A);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_state_strings, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_lifecycle_and_roundtrip, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_load_missing, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_writing_refused_on_booted_slot, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_transitions_validated, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_counter_never_goes_back, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_floor_raised_by_verified_release, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_valid_records, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_records_refused, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_truncated_record, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_cmdline, setup, tmpdir_teardown),
                cmocka_unit_test(test_cmdline_keys),
        };
        return cmocka_run_group_tests_name("slot-status", tests, NULL, NULL);
}
