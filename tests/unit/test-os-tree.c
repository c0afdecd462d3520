/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A tree from a container image made a slot (os-tree.c), and an OS tree written as a base image
 * and read back (oci-export.c, oci-image.c), in a temporary directory. */
#include <sys/xattr.h>

#include "tests.h"
#include "oci-export.h"
#include "oci-image.h"
#include "os-tree.h"

#define CAPABILITY_XATTR "security.capability"

/* vfs_cap_data revision 2, effective, permitted cap_net_raw (13): what ping carries. */
static const uint8_t net_raw_cap[20] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00 };

static char *read_test_file(const char *root, const char *name) {
        _cleanup_free_ char *p = path_join2(root, name);
        char *text = NULL;
        assert_int_equal(read_file_limited(p, 1 << 20, &text, NULL), 0);
        return text;
}

static bool test_exists(const char *root, const char *name) {
        _cleanup_free_ char *p = path_join2(root, name);
        struct stat st;
        return lstat(p, &st) == 0;
}

/* A small slot as a dreamlink base image has it: systemd, a kernel, the state links, a factory
 * copy of /var and its tmpfiles.d lines. */
static char *make_slot(const char *dir, const char *name) {
        char *t = path_join2(dir, name);
        make_test_dir(t, "usr/lib/systemd", 0755);
        write_test_file(t, "usr/lib/systemd/systemd", "init\n");
        make_test_dir(t, "boot", 0755);
        write_test_file(t, "boot/vmlinuz-6.12.1", "kernel\n");
        write_test_file(t, "boot/initrd.img-6.12.1", "initrd\n");
        make_test_dir(t, "usr/lib/sysimage/dpkg", 0755);
        make_test_dir(t, "var", 0755);
        make_test_dir(t, "usr/share/factory/var/lib/apt", 0755);
        make_test_dir(t, "usr/share/factory/var/log", 0755);
        write_test_file(t, "usr/share/factory/var/lib/apt/extended_states", "old\n");
        make_test_symlink(t, "usr/share/factory/var/lib/dpkg", "/usr/lib/sysimage/dpkg");
        make_test_symlink(t, "usr/share/factory/var/run", "/run");
        make_test_symlink(t, "home", "var/home");
        make_test_symlink(t, "root", "var/roothome");
        make_test_symlink(t, "srv", "var/srv");
        return t;
}

static void test_prepare_splits_var(void **state) {
        const char *dir = *state;
        _cleanup_free_ char *t = make_slot(dir, "tree"), *conf = NULL, *moved = NULL, *replaced = NULL;

        /* What RUN lines of a Containerfile leave in /var: a package's state, apt's files again,
         * the dpkg link as the base had it. */
        make_test_dir(t, "var/lib/hello", 0750);
        write_test_file(t, "var/lib/hello/state", "new\n");
        make_test_dir(t, "var/lib/apt", 0755);
        write_test_file(t, "var/lib/apt/extended_states", "new\n");
        make_test_symlink(t, "var/lib/dpkg", "/usr/lib/sysimage/dpkg");
        make_test_dir(t, "var/backups", 0755);

        assert_int_equal(os_tree_prepare(t), 0);

        /* /var is a mount point again, empty; the factory copy has the image's and the base's. */
        _cleanup_free_ char *var = path_join2(t, "var");
        assert_int_equal(rmdir(var), 0);
        moved = read_test_file(t, "usr/share/factory/var/lib/hello/state");
        assert_string_equal(moved, "new\n");
        assert_int_equal(test_mode_of(t, "usr/share/factory/var/lib/hello"), 0750);
        replaced = read_test_file(t, "usr/share/factory/var/lib/apt/extended_states");
        assert_string_equal(replaced, "new\n");
        assert_true(test_exists(t, "usr/share/factory/var/log"));

        /* A machine receives what it lacks: directories copied, links made again; run (systemd's
         * own) not at all. */
        conf = read_test_file(t, "usr/lib/tmpfiles.d/dreamlink-factory-var.conf");
        assert_non_null(strstr(conf, "\nd /var/home 0755 root root -\n"));
        assert_non_null(strstr(conf, "\nC /var/backups - - - -\nC /var/lib/apt - - - -\n"
                                     "L /var/lib/dpkg - - - - /usr/lib/sysimage/dpkg\n"
                                     "C /var/lib/hello - - - -\n"));
        assert_null(strstr(conf, "/var/run"));
        assert_null(strstr(conf, "C /var/lib -"));
        assert_null(strstr(conf, "C /var/log -"));
}

static void test_prepare_refuses_what_is_no_slot(void **state) {
        const char *dir = *state;
        _cleanup_free_ char *a = make_slot(dir, "a"), *b = make_slot(dir, "b"), *c = make_slot(dir, "c");
        _cleanup_free_ char *init = path_join2(a, "usr/lib/systemd/systemd"), *home = path_join2(b, "home");

        /* No systemd: not an OS dreamlink can boot. */
        assert_int_equal(unlink(init), 0);
        assert_int_equal(os_tree_prepare(a), -EMEDIUMTYPE);

        /* Homes in the slot would be lost at the next switch. */
        assert_int_equal(unlink(home), 0);
        make_test_dir(b, "home/user", 0755);
        assert_int_equal(os_tree_prepare(b), -EMEDIUMTYPE);

        /* A dpkg database in /var would describe whichever slot wrote it last. */
        make_test_dir(c, "var/lib/dpkg", 0755);
        assert_int_equal(os_tree_prepare(c), -EMEDIUMTYPE);
        /* Refused before anything moved. */
        assert_true(test_exists(c, "var/lib/dpkg"));
}

static void test_export_then_unpack(void **state) {
        const char *dir = *state;
        _cleanup_free_ char *t = make_slot(dir, "tree"), *archive = path_join2(dir, "base.tar"),
                            *archive2 = path_join2(dir, "again.tar"), *layout = path_join2(dir, "layout"),
                            *out = path_join2(dir, "out"), *out2 = path_join2(dir, "out2"), *ref = NULL, *ref2 = NULL,
                            *layout_ref = NULL, *ping = path_join2(t, "usr/bin/ping"), *index = NULL, *index2 = NULL;
        struct stat a, b;
        uint8_t cap[64];

        if (geteuid() != 0)
                fail_msg("needs root: the tree's owners and file capabilities are part of what is checked");
        make_test_dir(t, "usr/bin", 0755);
        write_test_file(t, "usr/bin/ping", "ping\n");
        assert_int_equal(chmod(ping, 04755), 0);
        assert_int_equal(setxattr(ping, CAPABILITY_XATTR, net_raw_cap, sizeof(net_raw_cap), 0), 0);
        _cleanup_free_ char *ping6 = path_join2(t, "usr/bin/ping6");
        assert_int_equal(link(ping, ping6), 0);
        make_test_dir(t, "etc/ssl/private", 0710);
        _cleanup_free_ char *private = path_join2(t, "etc/ssl/private");
        assert_int_equal(chown(private, 0, 109), 0);
        /* Left by the build in runtime directories: not part of the OS. */
        make_test_dir(t, "run/lock", 0755);
        make_test_dir(t, "tmp", 01777);
        write_test_file(t, "tmp/build.log", "x\n");

        ref = strprintf("oci-archive:%s:base", archive);
        layout_ref = strprintf("oci:%s:base", layout);
        assert_int_equal(oci_export(t, ref, dir), 0);
        assert_int_equal(oci_export(t, layout_ref, dir), 0);
        /* A layout directory in use is never overwritten. */
        assert_int_equal(oci_export(t, layout_ref, dir), -ENOTEMPTY);

        make_test_dir(dir, "out", 0755);
        assert_int_equal(oci_image_unpack(ref, out, dir), 0);
        assert_int_equal(test_mode_of(out, ""), 0755);
        assert_int_equal(test_mode_of(out, "usr/bin/ping"), 04755);
        _cleanup_free_ char *out_ping = path_join2(out, "usr/bin/ping"), *out_ping6 = path_join2(out, "usr/bin/ping6"),
                            *out_private = path_join2(out, "etc/ssl/private");
        assert_int_equal(lgetxattr(out_ping, CAPABILITY_XATTR, cap, sizeof(cap)), (ssize_t) sizeof(net_raw_cap));
        assert_memory_equal(cap, net_raw_cap, sizeof(net_raw_cap));
        assert_int_equal(stat(out_ping, &a), 0);
        assert_int_equal(stat(out_ping6, &b), 0);
        assert_int_equal(a.st_ino, b.st_ino);
        assert_int_equal(stat(out_private, &a), 0);
        assert_int_equal(a.st_gid, 109);
        assert_int_equal(a.st_mode & 07777, 0710);
        assert_true(test_exists(out, "run"));
        assert_false(test_exists(out, "run/lock"));
        assert_false(test_exists(out, "tmp/build.log"));
        assert_int_equal(test_mode_of(out, "tmp"), 01777);
        assert_true(test_exists(out, "usr/share/factory/var/lib/dpkg"));

        /* The directory layout reads the same. */
        make_test_dir(dir, "out2", 0755);
        assert_int_equal(oci_image_unpack(layout_ref, out2, dir), 0);
        assert_int_equal(test_mode_of(out2, "usr/bin/ping"), 04755);

        /* Same tree, same image: a rebuilt base does not make every derived image new. */
        ref2 = strprintf("oci-archive:%s:base", archive2);
        assert_int_equal(oci_export(t, ref2, dir), 0);
        _cleanup_free_ char *layout2 = path_join2(dir, "layout2"), *layout2_ref = strprintf("oci:%s:base", layout2);
        assert_int_equal(oci_export(t, layout2_ref, dir), 0);
        index = read_test_file(layout, "index.json");
        index2 = read_test_file(layout2, "index.json");
        assert_string_equal(index, index2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_prepare_splits_var, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_prepare_refuses_what_is_no_slot, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_export_then_unpack, tmpdir_setup, tmpdir_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
