/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <libgen.h>
#include <limits.h>

#include "tests.h"
#include "etc-merge.h"
#include "log.h"

/* Each test has three small trees: base (the booted version's pristine /etc),
 * current (the live /etc) and target (the new version's /etc, merged in place). */
typedef struct Trees {
        char *dir, *base, *cur, *tgt;
        EtcMergeReport report;
} Trees;

static int setup(void **state) {
        Trees *t = calloc(1, sizeof(Trees));

        log_set_target(LOG_TARGET_CONSOLE);
        log_set_max_level(LOG_EMERG);
        if (!t || tmpdir_setup((void **) &t->dir) < 0)
                return -1;
        t->base = path_join2(t->dir, "base");
        t->cur = path_join2(t->dir, "current");
        t->tgt = path_join2(t->dir, "target");
        if (mkdir(t->base, 0755) < 0 || mkdir(t->cur, 0755) < 0 || mkdir(t->tgt, 0755) < 0)
                return -1;
        *state = t;
        return 0;
}

static int teardown(void **state) {
        Trees *t = *state;
        etc_merge_report_done(&t->report);
        free(t->base);
        free(t->cur);
        free(t->tgt);
        tmpdir_teardown((void **) &t->dir);
        free(t);
        return 0;
}

/* Creates root/path with content and mode, and its parent directories. */
static void mk(const char *root, const char *path, const char *content, mode_t mode) {
        _cleanup_free_ char *p = path_join2(root, path), *parent = strdup(p);
        assert_int_equal(mkdir_p(dirname(parent), 0755), 0);
        write_test_file(root, path, content);
        assert_int_equal(chmod(p, mode), 0);
}

/* The same file in several trees. */
static void mk_in(const char *path, const char *content, mode_t mode, const char *r1, const char *r2, const char *r3) {
        const char *roots[] = { r1, r2, r3 };
        for (size_t i = 0; i < ELEMENTSOF(roots); i++)
                if (roots[i])
                        mk(roots[i], path, content, mode);
}

static void assert_file(const char *root, const char *path, const char *content, mode_t mode) {
        _cleanup_free_ char *p = path_join2(root, path), *c = NULL;
        struct stat st;

        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, mode);
        assert_int_equal(read_file_limited(p, 1 << 20, &c, NULL), 0);
        assert_string_equal(c, content);
}

static void assert_absent(const char *root, const char *path) {
        _cleanup_free_ char *p = path_join2(root, path);
        struct stat st;
        assert_int_equal(lstat(p, &st), -1);
        assert_int_equal(errno, ENOENT);
}

static void assert_link(const char *root, const char *path, const char *target) {
        _cleanup_free_ char *p = path_join2(root, path);
        char buf[PATH_MAX] = {};
        assert_true(readlink(p, buf, sizeof(buf) - 1) > 0);
        assert_string_equal(buf, target);
}

static void merge(Trees *t) {
        etc_merge_report_done(&t->report);
        assert_int_equal(etc_merge(t->base, t->cur, t->tgt, &t->report), 0);
}

static void assert_conflicts(Trees *t, const char *expected) {
        _cleanup_free_ char *joined = strdup("");
        STRV_FOREACH(c, t->report.conflicts) {
                char *n;
                assert_true(asprintf(&n, "%s%s%s", joined, *joined ? " " : "", *c) >= 0);
                free(joined);
                joined = n;
        }
        assert_string_equal(joined, expected);
}

static void test_untouched_takes_new_default(void **state) {
        Trees *t = *state;

        mk_in("hostname.conf", "v1\n", 0644, t->base, t->cur, NULL);
        mk(t->tgt, "hostname.conf", "v2\n", 0644);
        mk_in("same.conf", "same\n", 0644, t->base, t->cur, t->tgt);
        merge(t);
        assert_file(t->tgt, "hostname.conf", "v2\n", 0644);
        assert_file(t->tgt, "same.conf", "same\n", 0644);
        assert_int_equal(t->report.kept_admin, 0);
        assert_int_equal(t->report.deleted_by_admin, 0);
        assert_null(t->report.conflicts);
}

static void test_admin_modified_kept(void **state) {
        Trees *t = *state;

        mk_in("fstab", "default\n", 0644, t->base, NULL, t->tgt);
        mk(t->cur, "fstab", "admin's fstab\n", 0644);
        merge(t);
        assert_file(t->tgt, "fstab", "admin's fstab\n", 0644);
        assert_int_equal(t->report.kept_admin, 1);
        assert_null(t->report.conflicts);
}

static void test_admin_added_kept(void **state) {
        Trees *t = *state;

        mk(t->cur, "local.conf", "mine\n", 0640);
        mk(t->cur, "myapp/conf.d/10-x.conf", "x\n", 0600);
        make_test_dir(t->cur, "myapp", 0750);
        make_test_dir(t->cur, "myapp/empty", 0700);
        merge(t);
        assert_file(t->tgt, "local.conf", "mine\n", 0640);
        assert_file(t->tgt, "myapp/conf.d/10-x.conf", "x\n", 0600);
        _cleanup_free_ char *d = path_join2(t->tgt, "myapp"), *e = path_join2(t->tgt, "myapp/empty");
        struct stat st;
        assert_int_equal(stat(d, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0750);
        assert_int_equal(stat(e, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        /* A directory the admin added is copied whole: one path. */
        assert_int_equal(t->report.kept_admin, 2);
        assert_null(t->report.conflicts);
}

static void test_admin_deleted_stays_deleted(void **state) {
        Trees *t = *state;

        mk_in("motd", "welcome\n", 0644, t->base, NULL, t->tgt);
        mk_in("cron.daily/logrotate", "#!/bin/sh\n", 0755, t->base, NULL, t->tgt);
        mk_in("cron.daily/dpkg", "#!/bin/sh\n", 0755, t->base, t->cur, t->tgt);
        mk_in("nginx/sites/default", "server {}\n", 0644, t->base, NULL, t->tgt);
        merge(t);
        assert_absent(t->tgt, "motd");
        assert_absent(t->tgt, "cron.daily/logrotate");
        assert_file(t->tgt, "cron.daily/dpkg", "#!/bin/sh\n", 0755);
        assert_absent(t->tgt, "nginx");
        assert_int_equal(t->report.deleted_by_admin, 3);
        assert_int_equal(t->report.kept_admin, 0);
        assert_null(t->report.conflicts);
}

static void test_conflicts_admin_wins(void **state) {
        Trees *t = *state;

        /* both modified */
        mk(t->base, "sshd_config", "v1\n", 0644);
        mk(t->cur, "sshd_config", "admin\n", 0644);
        mk(t->tgt, "sshd_config", "v2\n", 0644);
        /* admin deleted, new version modified */
        mk(t->base, "issue", "v1\n", 0644);
        mk(t->tgt, "issue", "v2\n", 0644);
        /* admin modified, new version removed */
        mk(t->base, "old.conf", "v1\n", 0644);
        mk(t->cur, "old.conf", "admin\n", 0644);
        /* admin added, new version added something else there */
        mk(t->cur, "added.conf", "admin\n", 0644);
        mk(t->tgt, "added.conf", "vendor\n", 0644);
        /* both made the same change: no conflict */
        mk(t->base, "same.conf", "v1\n", 0644);
        mk_in("same.conf", "v2\n", 0644, t->cur, t->tgt, NULL);
        merge(t);

        assert_file(t->tgt, "sshd_config", "admin\n", 0644);
        assert_absent(t->tgt, "issue");
        assert_file(t->tgt, "old.conf", "admin\n", 0644);
        assert_file(t->tgt, "added.conf", "admin\n", 0644);
        assert_file(t->tgt, "same.conf", "v2\n", 0644);
        /* current's entries in name order, then the deletions */
        assert_conflicts(t, "added.conf old.conf sshd_config issue");
        assert_int_equal(t->report.kept_admin, 4);
        assert_int_equal(t->report.deleted_by_admin, 1);
}

static void test_new_version_changes_arrive(void **state) {
        Trees *t = *state;

        mk(t->tgt, "new-daemon.conf", "new default\n", 0644);
        mk(t->tgt, "new.d/a.conf", "a\n", 0644);
        /* The new version dropped a file the admin left alone: it stays gone. */
        mk_in("obsolete.conf", "x\n", 0644, t->base, t->cur, NULL);
        merge(t);
        assert_file(t->tgt, "new-daemon.conf", "new default\n", 0644);
        assert_file(t->tgt, "new.d/a.conf", "a\n", 0644);
        assert_absent(t->tgt, "obsolete.conf");
        assert_int_equal(t->report.kept_admin, 0);
        assert_null(t->report.conflicts);
}

static void test_mode_change_is_a_modification(void **state) {
        Trees *t = *state;

        mk_in("secret.conf", "s\n", 0644, t->base, t->tgt, NULL);
        mk(t->cur, "secret.conf", "s\n", 0600);
        /* a directory's own mode: carried over, its contents still merged */
        mk_in("private/untouched", "u1\n", 0644, t->base, t->cur, NULL);
        mk(t->tgt, "private/untouched", "u2\n", 0644);
        make_test_dir(t->base, "private", 0755);
        make_test_dir(t->tgt, "private", 0755);
        make_test_dir(t->cur, "private", 0700);
        merge(t);
        assert_file(t->tgt, "secret.conf", "s\n", 0600);
        assert_file(t->tgt, "private/untouched", "u2\n", 0644);
        _cleanup_free_ char *d = path_join2(t->tgt, "private");
        struct stat st;
        assert_int_equal(stat(d, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(t->report.kept_admin, 2);
        assert_null(t->report.conflicts);
}

static void test_owner_change_is_a_modification(void **state) {
        Trees *t = *state;
        _cleanup_free_ char *c = path_join2(t->cur, "app.conf"), *g = path_join2(t->tgt, "app.conf"),
                            *s = path_join2(t->tgt, "shadow");
        struct stat st;

        if (geteuid() != 0)
                skip(); /* only root gives files away */
        mk_in("app.conf", "x\n", 0640, t->base, t->cur, t->tgt);
        assert_int_equal(chown(c, 0, 42), 0);
        /* owner changed in current, set-gid mode kept (chown must come before chmod) */
        mk_in("shadow", "root:*:1::::::\n", 02640, t->base, t->tgt, NULL);
        mk(t->cur, "shadow", "root:*:1::::::\n", 02640);
        _cleanup_free_ char *cs = path_join2(t->cur, "shadow");
        assert_int_equal(chown(cs, 1000, 42), 0);
        assert_int_equal(chmod(cs, 02640), 0);
        merge(t);
        assert_int_equal(stat(g, &st), 0);
        assert_int_equal(st.st_uid, 0);
        assert_int_equal(st.st_gid, 42);
        assert_int_equal(stat(s, &st), 0);
        assert_int_equal(st.st_uid, 1000);
        assert_int_equal(st.st_gid, 42);
        assert_int_equal(st.st_mode & 07777, 02640);
        assert_int_equal(t->report.kept_admin, 2);
}

static void test_symlinks(void **state) {
        Trees *t = *state;
        _cleanup_free_ char *outside = path_join2(t->dir, "outside");

        /* retargeted by the admin */
        make_test_symlink(t->base, "localtime", "/usr/share/zoneinfo/Etc/UTC");
        make_test_symlink(t->cur, "localtime", "/usr/share/zoneinfo/Europe/Berlin");
        make_test_symlink(t->tgt, "localtime", "/usr/share/zoneinfo/Etc/UTC");
        /* untouched: the new version's target */
        make_test_symlink(t->base, "resolv.conf", "../run/resolvconf/resolv.conf");
        make_test_symlink(t->cur, "resolv.conf", "../run/resolvconf/resolv.conf");
        make_test_symlink(t->tgt, "resolv.conf", "../run/systemd/resolve/stub-resolv.conf");
        /* a symlink replaced by a file */
        make_test_symlink(t->base, "mtab", "../proc/self/mounts");
        mk(t->cur, "mtab", "static\n", 0644);
        make_test_symlink(t->tgt, "mtab", "../proc/self/mounts");
        merge(t);
        assert_link(t->tgt, "localtime", "/usr/share/zoneinfo/Europe/Berlin");
        assert_link(t->tgt, "resolv.conf", "../run/systemd/resolve/stub-resolv.conf");
        assert_file(t->tgt, "mtab", "static\n", 0644);
        assert_int_equal(t->report.kept_admin, 2);
        assert_null(t->report.conflicts);

        /* Symlinks to directories outside the trees are copied, never followed. */
        mk(outside, "a.conf", "outside\n", 0644);
        mk_in("conf.d/a.conf", "inside\n", 0644, t->base, t->tgt, NULL);
        make_test_symlink(t->cur, "conf.d", outside);               /* admin: dir → symlink out */
        mk_in("dir/a.conf", "inside\n", 0644, t->base, t->cur, NULL);
        mk(t->cur, "dir/b.conf", "admin\n", 0644);
        make_test_symlink(t->tgt, "dir", outside);                  /* new version: dir → symlink out */
        merge(t);
        assert_link(t->tgt, "conf.d", outside);
        assert_file(t->tgt, "dir/a.conf", "inside\n", 0644);
        assert_file(t->tgt, "dir/b.conf", "admin\n", 0644);
        _cleanup_free_ char *ls = NULL, *tgt_dir = path_join2(t->tgt, "dir");
        struct stat st;
        assert_int_equal(lstat(tgt_dir, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        /* the outside directory is as it was */
        assert_file(outside, "a.conf", "outside\n", 0644);
        assert_absent(outside, "b.conf");
        assert_conflicts(t, "dir");
}

static void test_nested_dirs(void **state) {
        Trees *t = *state;

        mk_in("systemd/system/multi-user.target.wants/ssh.service", "[Unit]\n", 0644, t->base, t->cur, t->tgt);
        mk_in("systemd/network/10-eth.network", "[Match]\nName=eth0\n", 0644, t->base, NULL, t->tgt);
        mk(t->cur, "systemd/network/10-eth.network", "[Match]\nName=eth0\n[Network]\nDHCP=yes\n", 0644);
        mk(t->cur, "systemd/network/20-wlan.network", "[Match]\nName=wlan0\n", 0644);
        mk_in("systemd/journald.conf", "#Storage=auto\n", 0644, t->base, NULL, t->tgt);
        mk(t->tgt, "systemd/system/new.service", "[Unit]\n", 0644);
        mk(t->cur, "systemd/system/multi-user.target.wants/mine.service", "[Unit]\n", 0644);
        make_test_dir(t->cur, "systemd/system/deep/er/still", 0755);
        merge(t);
        assert_file(t->tgt, "systemd/network/10-eth.network", "[Match]\nName=eth0\n[Network]\nDHCP=yes\n", 0644);
        assert_file(t->tgt, "systemd/network/20-wlan.network", "[Match]\nName=wlan0\n", 0644);
        assert_absent(t->tgt, "systemd/journald.conf");
        assert_file(t->tgt, "systemd/system/new.service", "[Unit]\n", 0644);
        assert_file(t->tgt, "systemd/system/multi-user.target.wants/mine.service", "[Unit]\n", 0644);
        assert_file(t->tgt, "systemd/system/multi-user.target.wants/ssh.service", "[Unit]\n", 0644);
        _cleanup_free_ char *deep = path_join2(t->tgt, "systemd/system/deep/er/still");
        assert_int_equal(access(deep, F_OK), 0);
        assert_int_equal(t->report.kept_admin, 4);
        assert_int_equal(t->report.deleted_by_admin, 1);
        assert_null(t->report.conflicts);
}

static void test_machine_identity_survives(void **state) {
        Trees *t = *state;

        /* As on an installed system: identity is made on first boot, not shipped. */
        mk_in("ssh/sshd_config", "PermitRootLogin no\n", 0644, t->base, t->cur, NULL);
        mk(t->tgt, "ssh/sshd_config", "PermitRootLogin no\nKbdInteractiveAuthentication no\n", 0644);
        mk(t->cur, "machine-id", "4c7b5b7f0d6a4e1f8a3c2b1d0e9f8a7b\n", 0444);
        mk(t->cur, "ssh/ssh_host_ed25519_key", "-----BEGIN OPENSSH PRIVATE KEY-----\n", 0600);
        mk(t->cur, "ssh/ssh_host_ed25519_key.pub", "ssh-ed25519 AAAA root@host\n", 0644);
        merge(t);
        assert_file(t->tgt, "machine-id", "4c7b5b7f0d6a4e1f8a3c2b1d0e9f8a7b\n", 0444);
        assert_file(t->tgt, "ssh/ssh_host_ed25519_key", "-----BEGIN OPENSSH PRIVATE KEY-----\n", 0600);
        assert_file(t->tgt, "ssh/ssh_host_ed25519_key.pub", "ssh-ed25519 AAAA root@host\n", 0644);
        assert_file(t->tgt, "ssh/sshd_config", "PermitRootLogin no\nKbdInteractiveAuthentication no\n", 0644);
        assert_int_equal(t->report.kept_admin, 3);
        assert_int_equal(t->report.deleted_by_admin, 0);
        assert_null(t->report.conflicts);
}

static void test_type_changes_and_special_files(void **state) {
        Trees *t = *state;
        _cleanup_free_ char *fifo = path_join2(t->cur, "initctl"), *tfifo = path_join2(t->tgt, "initctl");
        struct stat st;

        /* file → directory by the admin */
        mk_in("sudoers", "root ALL\n", 0440, t->base, t->tgt, NULL);
        mk(t->cur, "sudoers/00-admin", "admin ALL\n", 0440);
        /* directory → file by the admin, the new version changed inside: conflict */
        mk(t->base, "apt/sources.list.d/debian.sources", "v1\n", 0644);
        mk(t->tgt, "apt/sources.list.d/debian.sources", "v2\n", 0644);
        mk(t->cur, "apt/sources.list.d", "flat\n", 0644);
        assert_int_equal(mkfifo(fifo, 0600), 0);
        merge(t);
        assert_file(t->tgt, "sudoers/00-admin", "admin ALL\n", 0440);
        assert_file(t->tgt, "apt/sources.list.d", "flat\n", 0644);
        assert_int_equal(lstat(tfifo, &st), 0);
        assert_true(S_ISFIFO(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_conflicts(t, "apt/sources.list.d");
}

static void test_bad_trees_refused(void **state) {
        Trees *t = *state;
        _cleanup_free_ char *missing = path_join2(t->dir, "none"), *link = path_join2(t->dir, "link");
        EtcMergeReport r = {};

        assert_int_equal(etc_merge(missing, t->cur, t->tgt, &r), -ENOENT);
        assert_int_equal(etc_merge(t->base, t->cur, missing, NULL), -ENOENT);
        assert_int_equal(symlink(t->cur, link), 0);
        assert_true(etc_merge(t->base, link, t->tgt, &r) < 0);
        assert_int_equal(etc_merge(NULL, t->cur, t->tgt, &r), -EINVAL);
        /* An empty merge is fine, without a report too. */
        assert_int_equal(etc_merge(t->base, t->cur, t->tgt, NULL), 0);
        etc_merge_report_done(&r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_untouched_takes_new_default, setup, teardown),
                cmocka_unit_test_setup_teardown(test_admin_modified_kept, setup, teardown),
                cmocka_unit_test_setup_teardown(test_admin_added_kept, setup, teardown),
                cmocka_unit_test_setup_teardown(test_admin_deleted_stays_deleted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_conflicts_admin_wins, setup, teardown),
                cmocka_unit_test_setup_teardown(test_new_version_changes_arrive, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mode_change_is_a_modification, setup, teardown),
                cmocka_unit_test_setup_teardown(test_owner_change_is_a_modification, setup, teardown),
                cmocka_unit_test_setup_teardown(test_symlinks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_nested_dirs, setup, teardown),
                cmocka_unit_test_setup_teardown(test_machine_identity_survives, setup, teardown),
                cmocka_unit_test_setup_teardown(test_type_changes_and_special_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_trees_refused, setup, teardown),
        };
        return cmocka_run_group_tests_name("etc-merge", tests, NULL, NULL);
}
