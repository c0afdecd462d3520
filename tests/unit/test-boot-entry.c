/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <limits.h>

#include "tests.h"
#include "boot-entry.h"
#include "log.h"

static int setup(void **state) {
        log_set_target(LOG_TARGET_CONSOLE);
        log_set_max_level(LOG_EMERG); /* the refusals below are expected */
        if (tmpdir_setup(state) < 0)
                return -1;
        /* An ESP as disk-image lays it out, plus kernel and initrd to install. */
        const char *dirs[] = { "esp/loader/entries", "esp/dreamlink/a", "esp/dreamlink/b", "src" };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *p = path_join2(*state, dirs[i]);
                if (mkdir_p(p, 0755) < 0)
                        return -1;
        }
        write_test_file(*state, "esp/loader/loader.conf",
                        "timeout 0\ndefault dreamlink-a.conf\neditor no\nauto-entries no\nauto-firmware no\n");
        write_test_file(*state, "esp/loader/entries/dreamlink-a.conf",
                        "title      dreamlink 1 (slot a)\nversion    1\nlinux      /dreamlink/a/vmlinuz\n"
                        "initrd     /dreamlink/a/initrd.img\noptions    root=PARTLABEL=root-a rw\n");
        write_test_file(*state, "esp/dreamlink/a/vmlinuz", "kernel-1");
        write_test_file(*state, "esp/dreamlink/a/initrd.img", "initrd-1");
        write_test_file(*state, "src/vmlinuz", "kernel-2");
        write_test_file(*state, "src/initrd.img", "initrd-2");
        return 0;
}

static char *esp_of(void **state) {
        return path_join2(*state, "esp");
}

static char *read_in(const char *dir, const char *name) {
        _cleanup_free_ char *p = path_join2(dir, name);
        char *c = NULL;
        int r = read_file_limited(p, 1 << 20, &c, NULL);
        return r < 0 ? NULL : c;
}

static bool exists_in(const char *dir, const char *name) {
        _cleanup_free_ char *p = path_join2(dir, name);
        return access(p, F_OK) == 0;
}

/* The sorted, space-separated names in dir, for whole-directory assertions. */
static char *list_dir(const char *dir, const char *sub) {
        _cleanup_free_ char *p = path_join2(dir, sub);
        _cleanup_strv_free_ char **l = NULL;
        DIR *d = opendir(p);
        struct dirent *de;
        char *out = strdup("");

        assert_non_null(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        assert_int_equal(strv_extend(&l, de->d_name), 0);
        closedir(d);
        strv_sort(l);
        STRV_FOREACH(s, l) {
                char *n;
                assert_true(asprintf(&n, "%s%s%s", out, *out ? " " : "", *s) >= 0);
                free(out);
                out = n;
        }
        return out;
}

static BootEntryInfo info_b(void **state, const char *version) {
        static char kernel[PATH_MAX], initrd[PATH_MAX];
        snprintf(kernel, sizeof(kernel), "%s/src/vmlinuz", (char *) *state);
        snprintf(initrd, sizeof(initrd), "%s/src/initrd.img", (char *) *state);
        return (BootEntryInfo) {
                .version = version,
                .options = "root=PARTLABEL=root-b rw quiet",
                .kernel_src = kernel,
                .initrd_src = initrd,
        };
}

static void test_install_counted(void **state) {
        _cleanup_free_ char *esp = esp_of(state), *text = NULL, *k = NULL, *i = NULL, *ls = NULL, *a = NULL;
        BootEntryInfo info = info_b(state, "2");

        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), 0);

        ls = list_dir(esp, "loader/entries");
        assert_string_equal(ls, "dreamlink-a.conf dreamlink-b+3.conf");
        text = read_in(esp, "loader/entries/dreamlink-b+3.conf");
        assert_non_null(text);
        assert_non_null(strstr(text, "title      dreamlink 2 (slot b)\n"));
        assert_non_null(strstr(text, "\nversion    2\n"));
        assert_non_null(strstr(text, "\nlinux      /dreamlink/b/vmlinuz\n"));
        assert_non_null(strstr(text, "\ninitrd     /dreamlink/b/initrd.img\n"));
        assert_non_null(strstr(text, "\noptions    root=PARTLABEL=root-b rw quiet\n"));
        k = read_in(esp, "dreamlink/b/vmlinuz");
        i = read_in(esp, "dreamlink/b/initrd.img");
        assert_string_equal(k, "kernel-2");
        assert_string_equal(i, "initrd-2");

        /* The other slot and the default are untouched. */
        a = read_in(esp, "dreamlink/a/vmlinuz");
        assert_string_equal(a, "kernel-1");
        Slot def;
        assert_int_equal(boot_default_get(esp, &def), 0);
        assert_int_equal(def, SLOT_A);
        /* No temporary files are left behind. */
        free(ls);
        ls = list_dir(esp, "dreamlink/b");
        assert_string_equal(ls, "initrd.img vmlinuz");
}

static void test_install_uncounted_and_title(void **state) {
        _cleanup_free_ char *esp = esp_of(state), *text = NULL, *ls = NULL;
        BootEntryInfo info = info_b(state, "2");
        _cleanup_(boot_entry_state_done) BootEntryState st = {};

        info.title = "Release 2 \"Ash\"";
        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 0), 0);
        ls = list_dir(esp, "loader/entries");
        assert_string_equal(ls, "dreamlink-a.conf dreamlink-b.conf");
        text = read_in(esp, "loader/entries/dreamlink-b.conf");
        assert_non_null(strstr(text, "title      Release 2 \"Ash\"\n"));

        assert_int_equal(boot_entry_read(esp, SLOT_B, &st), 0);
        assert_true(st.exists);
        assert_false(st.counting);
        assert_string_equal(st.filename, "dreamlink-b.conf");
        assert_string_equal(st.version, "2");
        assert_string_equal(st.options, "root=PARTLABEL=root-b rw quiet"); /* what a kexec boots it with */
}

static void test_reinstall_replaces(void **state) {
        _cleanup_free_ char *esp = esp_of(state), *ls = NULL, *k = NULL;
        BootEntryInfo info = info_b(state, "2");
        _cleanup_(boot_entry_state_done) BootEntryState st = {};

        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), 0);
        /* systemd-boot tried it twice, then we stage a newer release over it. */
        _cleanup_free_ char *from = path_join2(esp, "loader/entries/dreamlink-b+3.conf"),
                            *to = path_join2(esp, "loader/entries/dreamlink-b+1-2.conf");
        assert_int_equal(rename(from, to), 0);
        write_test_file(*state, "src/vmlinuz", "kernel-3");
        info = info_b(state, "3");
        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 5), 0);

        ls = list_dir(esp, "loader/entries");
        assert_string_equal(ls, "dreamlink-a.conf dreamlink-b+5.conf");
        k = read_in(esp, "dreamlink/b/vmlinuz");
        assert_string_equal(k, "kernel-3");
        assert_int_equal(boot_entry_read(esp, SLOT_B, &st), 0);
        assert_string_equal(st.version, "3");
        assert_int_equal(st.tries_left, 5);
        assert_int_equal(st.tries_done, 0);

        /* Same name again: replaced in place. */
        boot_entry_state_done(&st);
        info = info_b(state, "4");
        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 5), 0);
        free(ls);
        ls = list_dir(esp, "loader/entries");
        assert_string_equal(ls, "dreamlink-a.conf dreamlink-b+5.conf");
        assert_int_equal(boot_entry_read(esp, SLOT_B, &st), 0);
        assert_string_equal(st.version, "4");
}

static void test_read_counters(void **state) {
        _cleanup_free_ char *esp = esp_of(state), *dir = path_join2(esp, "loader/entries");
        BootEntryInfo info = info_b(state, "2");
        BootEntryState st = {};

        assert_int_equal(boot_entry_read(esp, SLOT_B, &st), 0);
        assert_false(st.exists);
        assert_null(st.filename);

        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), 0);
        assert_int_equal(boot_entry_read(esp, SLOT_B, &st), 0);
        assert_true(st.exists && st.counting);
        assert_int_equal(st.tries_left, 3);
        assert_int_equal(st.tries_done, 0);
        assert_false(boot_entry_state_is_bad(&st));
        boot_entry_state_done(&st);

        /* What systemd-boot does on each boot attempt. */
        const char *steps[] = { "dreamlink-b+3.conf", "dreamlink-b+2-1.conf", "dreamlink-b+1-2.conf", "dreamlink-b+0-3.conf" };
        for (size_t i = 1; i < ELEMENTSOF(steps); i++) {
                _cleanup_free_ char *from = path_join2(dir, steps[i - 1]), *to = path_join2(dir, steps[i]);
                assert_int_equal(rename(from, to), 0);
                assert_int_equal(boot_entry_read(esp, SLOT_B, &st), 0);
                assert_string_equal(st.filename, steps[i]);
                assert_int_equal(st.tries_left, 3 - i);
                assert_int_equal(st.tries_done, i);
                assert_int_equal(boot_entry_state_is_bad(&st), i == 3);
                boot_entry_state_done(&st);
        }

        /* Slot a's plain entry. */
        assert_int_equal(boot_entry_read(esp, SLOT_A, &st), 0);
        assert_true(st.exists);
        assert_false(st.counting);
        assert_string_equal(st.version, "1");
        boot_entry_state_done(&st);

        /* Look-alikes of other entries are not slot b's. */
        write_test_file(dir, "dreamlink-bb.conf", "version x\n");
        write_test_file(dir, "dreamlink-b+x.conf", "version x\n");
        write_test_file(dir, "dreamlink-b+-1.conf", "version x\n");
        write_test_file(dir, "dreamlink-b.conf.bak", "version x\n");
        assert_int_equal(boot_entry_read(esp, SLOT_B, &st), 0);
        assert_string_equal(st.filename, "dreamlink-b+0-3.conf");
        boot_entry_state_done(&st);
}

static void test_bless(void **state) {
        _cleanup_free_ char *esp = esp_of(state), *ls = NULL;
        BootEntryInfo info = info_b(state, "2");
        _cleanup_(boot_entry_state_done) BootEntryState st = {};

        assert_int_equal(boot_entry_bless(esp, SLOT_B), -ENOENT);
        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), 0);
        _cleanup_free_ char *from = path_join2(esp, "loader/entries/dreamlink-b+3.conf"),
                            *to = path_join2(esp, "loader/entries/dreamlink-b+2-1.conf");
        assert_int_equal(rename(from, to), 0);

        assert_int_equal(boot_entry_bless(esp, SLOT_B), 0);
        ls = list_dir(esp, "loader/entries");
        assert_string_equal(ls, "dreamlink-a.conf dreamlink-b.conf");
        assert_int_equal(boot_entry_read(esp, SLOT_B, &st), 0);
        assert_false(st.counting);
        assert_string_equal(st.version, "2");
        /* Blessing twice (or an already plain entry) is fine. */
        assert_int_equal(boot_entry_bless(esp, SLOT_B), 0);
        assert_int_equal(boot_entry_bless(esp, SLOT_A), 0);
}

static void test_default_switching(void **state) {
        _cleanup_free_ char *esp = esp_of(state), *text = NULL;
        Slot s;

        assert_int_equal(boot_default_get(esp, &s), 0);
        assert_int_equal(s, SLOT_A);
        assert_int_equal(boot_default_set(esp, SLOT_B), 0);
        assert_int_equal(boot_default_get(esp, &s), 0);
        assert_int_equal(s, SLOT_B);
        text = read_in(esp, "loader/loader.conf");
        assert_string_equal(text, "timeout 0\ndefault dreamlink-b.conf\neditor no\nauto-entries no\nauto-firmware no\n");

        /* Comments and odd spacing kept; a later default line would override ours: dropped. */
        write_test_file(esp, "loader/loader.conf",
                        "# default dreamlink-a.conf was the factory choice\n"
                        "timeout 3\n"
                        "  default\tdreamlink-a.conf\n"
                        "console-mode keep\n"
                        "default dreamlink-a.conf\n"
                        "defaults-are-not-this-key yes");
        assert_int_equal(boot_default_set(esp, SLOT_B), 0);
        free(text);
        text = read_in(esp, "loader/loader.conf");
        assert_string_equal(text,
                        "# default dreamlink-a.conf was the factory choice\n"
                        "timeout 3\n"
                        "default dreamlink-b.conf\n"
                        "console-mode keep\n"
                        "defaults-are-not-this-key yes\n");

        /* No default line: appended. No loader.conf: created. */
        write_test_file(esp, "loader/loader.conf", "timeout 0\n");
        assert_int_equal(boot_default_set(esp, SLOT_A), 0);
        free(text);
        text = read_in(esp, "loader/loader.conf");
        assert_string_equal(text, "timeout 0\ndefault dreamlink-a.conf\n");
        _cleanup_free_ char *conf = path_join2(esp, "loader/loader.conf");
        assert_int_equal(unlink(conf), 0);
        assert_int_equal(boot_default_get(esp, &s), -ENOENT);
        assert_int_equal(boot_default_set(esp, SLOT_B), 0);
        assert_int_equal(boot_default_get(esp, &s), 0);
        assert_int_equal(s, SLOT_B);

        /* Quoted, as systemd-boot allows. */
        write_test_file(esp, "loader/loader.conf", "default \"dreamlink-a.conf\"\n");
        assert_int_equal(boot_default_get(esp, &s), 0);
        assert_int_equal(s, SLOT_A);
        /* and case-folded */
        write_test_file(esp, "loader/loader.conf", "default DreamLink-B.conf\n");
        assert_int_equal(boot_default_get(esp, &s), 0);
        assert_int_equal(s, SLOT_B);

        /* A default that is not a dreamlink slot's plain id. */
        write_test_file(esp, "loader/loader.conf", "default dreamlink-b+3.conf\n");
        assert_int_equal(boot_default_get(esp, &s), -ENXIO);
        write_test_file(esp, "loader/loader.conf", "default @saved\n");
        assert_int_equal(boot_default_get(esp, &s), -ENXIO);
        write_test_file(esp, "loader/loader.conf", "timeout 0\n");
        assert_int_equal(boot_default_get(esp, &s), -ENOENT);

        /* Lines as systemd-boot splits them (found by fuzz-boot-entry): a carriage return or vertical
         * tab before the key makes another key, a CRLF line end is fine, a key without a value is no
         * default. Before, such a line read as the default after boot_default_set() wrote ours. */
        write_test_file(esp, "loader/loader.conf", "default dreamlink-a.conf\r\n\rdefault dreamlink-b.conf\n"
                                                   "\vdefault dreamlink-b.conf\ndefault\r\ndefault \t\n");
        assert_int_equal(boot_default_get(esp, &s), 0);
        assert_int_equal(s, SLOT_A);
        assert_int_equal(boot_default_set(esp, SLOT_B), 0);
        assert_int_equal(boot_default_get(esp, &s), 0);
        assert_int_equal(s, SLOT_B);
}

static void test_remove(void **state) {
        _cleanup_free_ char *esp = esp_of(state), *ls = NULL, *ka = NULL;
        BootEntryInfo info = info_b(state, "2");

        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), 0);
        /* The default's entry stays. */
        assert_int_equal(boot_entry_remove(esp, SLOT_A), -EBUSY);
        assert_true(exists_in(esp, "loader/entries/dreamlink-a.conf"));

        assert_int_equal(boot_entry_remove(esp, SLOT_B), 0);
        ls = list_dir(esp, "loader/entries");
        assert_string_equal(ls, "dreamlink-a.conf");
        assert_false(exists_in(esp, "dreamlink/b/vmlinuz"));
        assert_false(exists_in(esp, "dreamlink/b/initrd.img"));
        ka = read_in(esp, "dreamlink/a/vmlinuz");
        assert_string_equal(ka, "kernel-1");
        /* Nothing there: fine. */
        assert_int_equal(boot_entry_remove(esp, SLOT_B), 0);
}

static void test_leftovers_of_a_crash(void **state) {
        _cleanup_free_ char *esp = esp_of(state), *ls = NULL, *k = NULL;
        BootEntryInfo info = info_b(state, "2");
        _cleanup_(boot_entry_state_done) BootEntryState st = {};

        /* Temporary files of an install cut short, for both slots. */
        write_test_file(esp, "dreamlink/b/.#vmlinuz.Ab12Cd", "half a kern");
        write_test_file(esp, "loader/entries/.#dreamlink-b+3.conf.Xy98Zw", "title half");
        write_test_file(esp, "loader/entries/.#dreamlink-a.conf.Qq11Qq", "title half");
        /* Ignored when reading. */
        assert_int_equal(boot_entry_read(esp, SLOT_B, &st), 0);
        assert_false(st.exists);

        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), 0);
        ls = list_dir(esp, "dreamlink/b");
        assert_string_equal(ls, "initrd.img vmlinuz");
        free(ls);
        /* Slot b's cleaned, slot a's left alone (it is not ours to touch). */
        ls = list_dir(esp, "loader/entries");
        assert_string_equal(ls, ".#dreamlink-a.conf.Qq11Qq dreamlink-a.conf dreamlink-b+3.conf");

        /* A crash between writing the new entry and removing the old one leaves
         * two: reading says so, the next install settles it. */
        write_test_file(esp, "loader/entries/dreamlink-b.conf", "version 1\n");
        assert_int_equal(boot_entry_read(esp, SLOT_B, &st), -ENOTUNIQ);
        assert_int_equal(boot_entry_bless(esp, SLOT_B), -ENOTUNIQ);
        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), 0);
        free(ls);
        ls = list_dir(esp, "loader/entries");
        assert_string_equal(ls, ".#dreamlink-a.conf.Qq11Qq dreamlink-a.conf dreamlink-b+3.conf");
        k = read_in(esp, "dreamlink/b/vmlinuz");
        assert_string_equal(k, "kernel-2");
}

static void test_bad_input_refused(void **state) {
        _cleanup_free_ char *esp = esp_of(state), *ls = NULL, *missing = path_join2(*state, "src/none");
        BootEntryInfo info;

        info = info_b(state, "2\ninitrd /evil");
        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), -EINVAL);
        info = info_b(state, "");
        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), -EINVAL);
        info = info_b(state, "2");
        info.options = "root=PARTLABEL=root-b\nlinux /evil";
        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), -EINVAL);
        info.options = "root=PARTLABEL=root-b\r";
        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), -EINVAL);
        info.options = "rw quiet";
        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), -EINVAL);
        /* An entry for slot b that boots slot a's root */
        info.options = "root=PARTLABEL=root-a rw";
        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), -EINVAL);
        info = info_b(state, "2");
        info.title = "x\ny";
        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), -EINVAL);
        info = info_b(state, "2");
        info.kernel_src = NULL;
        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), -EINVAL);
        assert_int_equal(boot_entry_install(esp, _SLOT_MAX, &info, 3), -EINVAL);
        assert_int_equal(boot_entry_install(esp, SLOT_B, NULL, 3), -EINVAL);

        /* A missing kernel: nothing installed. */
        info = info_b(state, "2");
        info.kernel_src = missing;
        assert_int_equal(boot_entry_install(esp, SLOT_B, &info, 3), -ENOENT);
        ls = list_dir(esp, "loader/entries");
        assert_string_equal(ls, "dreamlink-a.conf");
        free(ls);
        ls = list_dir(esp, "dreamlink/b");
        assert_string_equal(ls, "");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_install_counted, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_install_uncounted_and_title, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_reinstall_replaces, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_read_counters, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_bless, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_default_switching, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_remove, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_leftovers_of_a_crash, setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_bad_input_refused, setup, tmpdir_teardown),
        };
        return cmocka_run_group_tests_name("boot-entry", tests, NULL, NULL);
}
