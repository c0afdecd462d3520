/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dreamlink-handoff-generator, run as systemd runs it, with the kernel
 * command line of a boot a handoff switched into. */
#include <sys/wait.h>

#include "tests.h"
#include "log.h"

#define SET "0123456789abcdef0123456789abcdef"

/* Where the generator reads handoff.d from; none by default. */
static const char *config_root = "/nonexistent";

/* The normal generator directory is DIR, the early one DIR/early. */
static int run_generator(const char *dir, const char *cmdline) {
        _cleanup_free_ char *early = path_join2(dir, "early");
        pid_t pid = fork();
        if (pid == 0) {
                setenv("DREAMLINK_PROC_CMDLINE", cmdline, 1);
                setenv("DREAMLINK_HANDOFF_CONFIG_ROOT", config_root, 1);
                execl(getenv("GENERATOR"), "dreamlink-handoff-generator", dir, early, dir, (char *) NULL);
                _exit(127);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *read_in(const char *dir, const char *name) {
        _cleanup_free_ char *p = path_join2(dir, name);
        char *text = NULL;
        return read_file_limited(p, 65536, &text, NULL) >= 0 ? text : NULL;
}

static bool dir_is_empty(const char *dir) {
        _cleanup_(closedirp) DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d)))
                if (de->d_name[0] != '.')
                        return false;
        return true;
}

static void test_ordinary_boot(void **state) {
        assert_int_equal(run_generator(*state, "root=PARTLABEL=root-b rw quiet"), 0);
        assert_true(dir_is_empty(*state));
}

static void test_handoff_boot(void **state) {
        _cleanup_free_ char *redis = NULL, *nginx = NULL, *check = NULL, *link = NULL;
        char target[4096];

        assert_int_equal(run_generator(*state, "root=PARTLABEL=root-b rw dreamlink.handoff=" SET
                                               " dreamlink.handoff.units=redis-server.service,nginx.service"), 0);
        redis = read_in(*state, "redis-server.service.d/zz-dreamlink-restore.conf");
        assert_non_null(redis);
        /* The unit's next start is the restore of its checkpoint in this set, run by the installed helper… */
        assert_non_null(strstr(redis, "\nExecStart=\nExecStart=+" SBINDIR "/dreamlink-handoff restore-exec "
                                      "--unit=redis-server.service --images=/var/lib/dreamlink/handoff/" SET
                                      "/redis-server.service --pidfile="));
        assert_non_null(strstr(redis, "\nType=forking\n"));
        assert_non_null(strstr(redis, "\nRestart=no\n"));
        /* …once the lock holds its peers off, as early as its resources allow: not after
         * basic.target, nor after the whole network (restore-exec waits for the addresses its
         * sockets need); stopped before shutdown all the same. */
        assert_non_null(strstr(redis, "\n[Unit]\nDefaultDependencies=no\n"
                                      "After=local-fs.target systemd-sysctl.service systemd-tmpfiles-setup.service "
                                      "dreamlink-handoff-lock.service dreamlink-handoff-probe.service remote-fs.target\n"
                                      "Conflicts=shutdown.target\nBefore=shutdown.target\n"
                                      "RequiresMountsFor=/var/lib/dreamlink/handoff\n"));
        assert_null(strstr(redis, "network-online.target"));
        assert_null(strstr(redis, "basic.target"));
        /* Its clients wait for it: it comes before the units starting fresh for CPU and disk. */
        assert_non_null(strstr(redis, "\n[Service]\nStartupCPUWeight=1000\nStartupIOWeight=1000\n"));
        nginx = read_in(*state, "nginx.service.d/zz-dreamlink-restore.conf");
        assert_non_null(nginx);
        assert_non_null(strstr(nginx, "--images=/var/lib/dreamlink/handoff/" SET "/nginx.service "));

        link = path_join2(*state, "sysinit.target.wants/dreamlink-handoff-lock.service");
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        assert_true(n > 0);
        target[n] = 0;
        assert_string_equal(target, UNITDIR "/dreamlink-handoff-lock.service");
        /* criu's probes of the kernel run from the start of the boot, not in the first restore. */
        free(link);
        link = path_join2(*state, "sysinit.target.wants/dreamlink-handoff-probe.service");
        n = readlink(link, target, sizeof(target) - 1);
        assert_true(n > 0);
        target[n] = 0;
        assert_string_equal(target, UNITDIR "/dreamlink-handoff-probe.service");

        /* The units run again even if nothing else would start them. */
        _cleanup_free_ char *wants = path_join2(*state, "multi-user.target.wants/nginx.service");
        assert_int_equal(access(wants, F_OK) < 0 ? errno : 0, ENOENT); /* a dangling link: systemd goes by its name */
        n = readlink(wants, target, sizeof(target) - 1);
        assert_true(n > 0);
        target[n] = 0;
        assert_string_equal(target, UNITDIR "/nginx.service");

        check = read_in(*state, "dreamlink-boot-check.service.d/50-handoff.conf");
        assert_non_null(check);
        assert_string_equal(check, "[Unit]\nAfter=redis-server.service nginx.service\n");

        /* What the restores wait for shares their weight: the file systems and the static
         * device nodes before local-fs.target, systemd-tmpfiles-setup and the flush of the
         * journal before it, the sysctls, the links' initialisation and their addresses, the
         * checks behind the automounts. */
        const char *waited[] = { "systemd-remount-fs.service", "systemd-sysusers.service", "kmod-static-nodes.service",
                                 "systemd-tmpfiles-setup-dev-early.service", "systemd-tmpfiles-setup-dev.service",
                                 "systemd-journald.service", "systemd-journal-flush.service",
                                 "systemd-tmpfiles-setup.service", "systemd-modules-load.service", "systemd-sysctl.service",
                                 "systemd-network-generator.service", "systemd-udev-load-credentials.service",
                                 "systemd-udevd.service", "systemd-networkd.service",
                                 "systemd-fsck@.service" };
        for (size_t i = 0; i < ELEMENTSOF(waited); i++) {
                _cleanup_free_ char *name = strprintf("%s.d/zz-dreamlink-restores-wait.conf", waited[i]);
                _cleanup_free_ char *w = read_in(*state, name);
                assert_non_null(w);
                assert_non_null(strstr(w, "\n[Service]\nStartupCPUWeight=1000\nStartupIOWeight=1000\n"));
        }
}

static void test_refuses_bad_input(void **state) {
        /* Not a set id: nothing at all. */
        assert_int_equal(run_generator(*state, "dreamlink.handoff=../../etc dreamlink.handoff.units=a.service"), 1);
        assert_true(dir_is_empty(*state));
        /* A name that is not a service is skipped, the others are restored. */
        assert_int_equal(run_generator(*state, "dreamlink.handoff=" SET
                                               " dreamlink.handoff.units=../x.service,evil.socket,good.service"), 0);
        _cleanup_free_ char *good = read_in(*state, "good.service.d/zz-dreamlink-restore.conf");
        assert_non_null(good);
        _cleanup_free_ char *check = read_in(*state, "dreamlink-boot-check.service.d/50-handoff.conf");
        assert_string_equal(check, "[Unit]\nAfter=good.service\n");
        _cleanup_free_ char *evil = read_in(*state, "evil.socket.d/zz-dreamlink-restore.conf");
        assert_null(evil);
}

static void test_set_without_units(void **state) {
        /* Only sessions were carried: no unit is touched, their connections are held
         * until the boot check restores them. */
        assert_int_equal(run_generator(*state, "dreamlink.handoff=" SET), 0);
        _cleanup_free_ char *link = path_join2(*state, "sysinit.target.wants/dreamlink-handoff-lock.service");
        char target[4096];
        assert_true(readlink(link, target, sizeof(target)) > 0);
        _cleanup_free_ char *check = read_in(*state, "dreamlink-boot-check.service.d/50-handoff.conf");
        assert_null(check);
        _cleanup_free_ char *wants = path_join2(*state, "multi-user.target.wants");
        assert_int_equal(access(wants, F_OK) < 0 ? errno : 0, ENOENT);
        _cleanup_free_ char *tmpfiles = read_in(*state, "systemd-tmpfiles-setup.service.d/zz-dreamlink-restores-wait.conf");
        assert_null(tmpfiles);
}

static void test_opt_in_dropins(void **state) {
        _cleanup_free_ char *root = path_join2(*state, "root"), *conf = path_join2(root, "etc/dreamlink/handoff.d");
        _cleanup_free_ char *out = path_join2(*state, "out");

        assert_int_equal(mkdir_p(conf, 0755), 0);
        assert_int_equal(mkdir(out, 0755), 0);
        write_test_file(conf, "redis.conf", "[Handoff]\nUnit=redis-server.service\n");
        write_test_file(conf, "off.conf", "[Handoff]\nUnit=memcached.service\nEnabled=no\n");
        write_test_file(conf, "ssh.conf", "[Handoff]\nUnit=ssh.service\nSessions=yes\n");
        config_root = root;

        /* Every boot, not only one a handoff switched into: one Unit= line is the whole opt-in. */
        assert_int_equal(run_generator(out, "root=PARTLABEL=root-a rw quiet"), 0);
        _cleanup_free_ char *redis = read_in(out, "redis-server.service.d/90-dreamlink-handoff.conf");
        assert_non_null(redis);
        assert_non_null(strstr(redis, "\n[Service]\n"));
        assert_non_null(strstr(redis, "\nPrivateUsers=no\n"));
        assert_non_null(strstr(redis, "\nMemoryPressureWatch=off\n"));
        assert_non_null(strstr(redis, "\nPrivateIPC=yes\n"));
        assert_non_null(strstr(redis, "\nTemporaryFileSystem=/dev/shm:mode=1777,nosuid,nodev\n"));
        /* A sandbox per connection (vsftpd) finds it cannot make namespaces CRIU cannot take. */
        assert_non_null(strstr(redis, "\nRestrictNamespaces=~pid ipc uts user cgroup time net\n"));
        /* sshd's logins inherit none of the service's sandbox: an admin's mounts and IPC stay the
         * machine's, its users may still run rootless containers. */
        _cleanup_free_ char *ssh = read_in(out, "ssh.service.d/90-dreamlink-handoff.conf");
        assert_non_null(ssh);
        assert_non_null(strstr(ssh, "\nPrivateUsers=no\n"));
        assert_null(strstr(ssh, "PrivateIPC="));
        assert_null(strstr(ssh, "TemporaryFileSystem="));
        assert_null(strstr(ssh, "RestrictNamespaces="));
        /* A service opted out keeps its unit as it is. */
        _cleanup_free_ char *off = read_in(out, "memcached.service.d/90-dreamlink-handoff.conf");
        assert_null(off);

        /* A handoff.d file that is refused (the whole set is then, as for the engine: logged, no
         * opt-in drop-in written) costs the restores nothing. */
        write_test_file(conf, "bad.conf", "[Handoff]\nUnit=../../etc/passwd\n");
        assert_int_equal(run_generator(out, "dreamlink.handoff=" SET " dreamlink.handoff.units=redis-server.service"), 0);
        _cleanup_free_ char *restore = read_in(out, "redis-server.service.d/zz-dreamlink-restore.conf");
        assert_non_null(restore);
        config_root = "/nonexistent";
}

/* A quadlet unit (NAME.container in podman's directories or below them, a template's for an
 * instance) gets no drop-in: podman checkpoints its container, and RestrictNamespaces= would keep
 * podman from making the container's namespaces. Its restore drop-in is written as any unit's. */
static void test_quadlet_no_opt_in(void **state) {
        _cleanup_free_ char *root = path_join2(*state, "root"), *conf = path_join2(root, "etc/dreamlink/handoff.d");
        _cleanup_free_ char *quadlets = path_join2(root, "etc/containers/systemd/web"), *out = path_join2(*state, "out");
        _cleanup_free_ char *distro = path_join2(root, "usr/share/containers/systemd");
        _cleanup_free_ char *users = path_join2(root, "etc/containers/systemd/users");

        assert_int_equal(mkdir_p(conf, 0755), 0);
        assert_int_equal(mkdir_p(quadlets, 0755), 0);
        assert_int_equal(mkdir_p(distro, 0755), 0);
        assert_int_equal(mkdir_p(users, 0755), 0);
        assert_int_equal(mkdir(out, 0755), 0);
        write_test_file(conf, "web.conf", "[Handoff]\nUnit=web.service\n");
        write_test_file(conf, "db.conf", "[Handoff]\nUnit=db@main.service\n");
        write_test_file(conf, "user.conf", "[Handoff]\nUnit=mine.service\n");
        write_test_file(quadlets, "web.container", "[Container]\nImage=localhost/web\n");
        write_test_file(quadlets, "cache.container", "[Container]\nImage=localhost/cache\n");
        write_test_file(distro, "db@.container", "[Container]\nImage=localhost/db\n");
        /* A rootless user's quadlet is that user's manager's, not a system unit. */
        write_test_file(users, "mine.container", "[Container]\nImage=localhost/mine\n");
        config_root = root;

        assert_int_equal(run_generator(out, "dreamlink.handoff=" SET " dreamlink.handoff.units=web.service"), 0);
        _cleanup_free_ char *web = read_in(out, "web.service.d/90-dreamlink-handoff.conf");
        _cleanup_free_ char *db = read_in(out, "db@main.service.d/90-dreamlink-handoff.conf");
        _cleanup_free_ char *mine = read_in(out, "mine.service.d/90-dreamlink-handoff.conf");
        assert_null(web);
        assert_null(db);
        assert_non_null(mine);
        _cleanup_free_ char *restore = read_in(out, "web.service.d/zz-dreamlink-restore.conf");
        assert_non_null(restore);
        assert_non_null(strstr(restore, " restore-exec --unit=web.service "));
        /* Podman sets up the container's network from the host's: that waits for all of it. */
        assert_non_null(strstr(restore, "\n[Unit]\nWants=network-online.target\n"
                                        "After=network-online.target dreamlink-handoff-lock.service remote-fs.target\n"));
        assert_non_null(strstr(restore, "\n[Service]\nStartupCPUWeight=1000\nStartupIOWeight=1000\n"));
        /* The quadlet units that start fresh wait for the restored container, which needs its old
         * address; a template, a rootless user's and the restored unit itself are not ordered. */
        _cleanup_free_ char *cache = read_in(out, "cache.service.d/zz-dreamlink-after-restored-containers.conf");
        assert_non_null(cache);
        assert_string_equal(cache, "[Unit]\nAfter=web.service\n");
        _cleanup_free_ char *self = read_in(out, "web.service.d/zz-dreamlink-after-restored-containers.conf");
        _cleanup_free_ char *template = read_in(out, "db@.service.d/zz-dreamlink-after-restored-containers.conf");
        _cleanup_free_ char *rootless = read_in(out, "mine.service.d/zz-dreamlink-after-restored-containers.conf");
        assert_null(self);
        assert_null(template);
        assert_null(rootless);
        config_root = "/nonexistent";
}

/* Type=forking units start under the reaper, with the ExecStart= systemd would run: the fragment
 * it finds first, a template's for an instance, continuation lines joined, drop-ins (the unit's,
 * its template's, service.d's) applied in name order, the restore drop-in not the unit's own. */
static void test_forking_reaped(void **state) {
        _cleanup_free_ char *root = path_join2(*state, "root"), *conf = path_join2(root, "etc/dreamlink/handoff.d");
        _cleanup_free_ char *lib = path_join2(root, "usr/lib/systemd/system"), *etc = path_join2(root, "etc/systemd/system");
        _cleanup_free_ char *out = path_join2(*state, "out");
        _cleanup_free_ char *nginx_d = path_join2(etc, "nginx.service.d"), *run_d = path_join2(root, "run/systemd/system/frr.service.d");
        _cleanup_free_ char *tmpl_d = path_join2(lib, "pg@.service.d");

        assert_int_equal(mkdir_p(conf, 0755), 0);
        assert_int_equal(mkdir_p(nginx_d, 0755), 0);
        assert_int_equal(mkdir_p(run_d, 0755), 0);
        assert_int_equal(mkdir_p(tmpl_d, 0755), 0);
        assert_int_equal(mkdir(out, 0755), 0);
        write_test_file(conf, "frr.conf", "[Handoff]\nUnit=frr.service\n");
        write_test_file(conf, "nginx.conf", "[Handoff]\nUnit=nginx.service\n");
        write_test_file(conf, "pg.conf", "[Handoff]\nUnit=pg@17-main.service\n");
        write_test_file(conf, "tor.conf", "[Handoff]\nUnit=tor@default.service\n");
        write_test_file(conf, "masked.conf", "[Handoff]\nUnit=masked.service\n");
        write_test_file(conf, "redis.conf", "[Handoff]\nUnit=redis-server.service\n");

        write_test_file(lib, "frr.service", "[Unit]\nDescription=FRRouting\n[Service]\nType=forking\n"
                                            "ExecStart=/usr/lib/frr/frrinit.sh \\\n    start\nExecStop=/usr/lib/frr/frrinit.sh stop\n");
        /* A restore in progress: its drop-in is not what the unit runs. */
        write_test_file(run_d, "zz-dreamlink-restore.conf", "[Service]\nExecStart=\nExecStart=+/x restore-exec\n");
        write_test_file(lib, "nginx.service", "[Service]\nType=simple\nExecStart=/usr/sbin/nginx -g 'daemon off;'\n");
        write_test_file(nginx_d, "10-fork.conf", "[Service]\nType=forking\nExecStart=\nExecStart=-/usr/sbin/nginx -g 'daemon on;'\n");
        write_test_file(lib, "pg@.service", "[Service]\nType=forking\nExecStart=@/usr/bin/pg_ctlcluster pg %i start\n");
        write_test_file(tmpl_d, "50-plain.conf", "[Service]\nExecStart=\nExecStart=/usr/bin/pg_ctlcluster --skip %i start\n");
        write_test_file(lib, "tor@.service", "[Service]\nType=notify\nExecStart=/usr/bin/tor\nPrivateTmp=yes\n");
        write_test_file(lib, "redis-server.service", "[Service]\nType=notify\nExecStart=/usr/bin/redis-server\n");
        assert_int_equal(mkdir_p(etc, 0755), 0);
        _cleanup_free_ char *mask = path_join2(etc, "masked.service");
        assert_int_equal(symlink("/dev/null", mask), 0);
        config_root = root;

        assert_int_equal(run_generator(out, "root=PARTLABEL=root-a rw quiet"), 0);
        _cleanup_free_ char *frr = read_in(out, "frr.service.d/90-dreamlink-handoff.conf");
        assert_non_null(strstr(frr, "\nExecStart=\nExecStart=" SBINDIR "/dreamlink-handoff reap /usr/lib/frr/frrinit.sh "));
        assert_non_null(strstr(frr, " start\n"));
        assert_null(strstr(frr, "restore-exec"));
        /* The admin's drop-in made it forking; its "-" prefix stays in front. */
        _cleanup_free_ char *nginx = read_in(out, "nginx.service.d/90-dreamlink-handoff.conf");
        assert_non_null(strstr(nginx, "\nExecStart=\nExecStart=-" SBINDIR "/dreamlink-handoff reap /usr/sbin/nginx -g 'daemon on;'\n"));
        /* An instance: the template's fragment and drop-in. */
        _cleanup_free_ char *pg = read_in(out, "pg@17-main.service.d/90-dreamlink-handoff.conf");
        assert_non_null(strstr(pg, "reap /usr/bin/pg_ctlcluster --skip %i start\n"));
        /* Not forking, or masked: the vendor's ExecStart= as it is. */
        _cleanup_free_ char *tor = read_in(out, "tor@default.service.d/90-dreamlink-handoff.conf");
        _cleanup_free_ char *redis = read_in(out, "redis-server.service.d/90-dreamlink-handoff.conf");
        _cleanup_free_ char *masked = read_in(out, "masked.service.d/90-dreamlink-handoff.conf");
        assert_null(strstr(tor, "ExecStart"));
        assert_null(strstr(redis, "ExecStart"));
        assert_null(strstr(masked, "ExecStart"));
        /* PrivateTmp= directories become a tmpfs each of the service's, which CRIU dumps with its
         * files (not PrivateTmp=disconnected, whose binds CRIU refuses). */
        assert_non_null(strstr(tor, "\nPrivateTmp=no\nTemporaryFileSystem=/tmp:mode=1777,nosuid,nodev /var/tmp:mode=1777,nosuid,nodev\n"));
        assert_null(strstr(redis, "PrivateTmp="));
        assert_null(strstr(frr, "PrivateTmp="));

        /* "@" sets argv[0], which the reaper cannot pass on: left as it is. */
        _cleanup_free_ char *plain = path_join2(tmpl_d, "50-plain.conf");
        assert_int_equal(unlink(plain), 0);
        assert_int_equal(run_generator(out, "root=PARTLABEL=root-a rw quiet"), 0);
        _cleanup_free_ char *pg2 = read_in(out, "pg@17-main.service.d/90-dreamlink-handoff.conf");
        assert_null(strstr(pg2, "ExecStart"));
        config_root = "/nonexistent";
}

/* A restored unit does not wait for the network its own unit orders it after (the restore waits
 * for its addresses): for this boot, a copy of its fragment without that ordering, in the early
 * directory, which systemd reads before /etc and /usr. */
static void test_restore_fragment(void **state) {
        _cleanup_free_ char *root = path_join2(*state, "root"), *out = path_join2(*state, "out");
        _cleanup_free_ char *lib = path_join2(root, "usr/lib/systemd/system"), *etc = path_join2(root, "etc/systemd/system");

        assert_int_equal(mkdir_p(lib, 0755), 0);
        assert_int_equal(mkdir_p(etc, 0755), 0);
        assert_int_equal(mkdir(out, 0755), 0);
        write_test_file(lib, "redis-server.service", "[Unit]\nDescription=Advanced key-value store\nAfter=network.target\n"
                                                     "Documentation=man:redis-server(1)\n\n[Service]\nType=notify\n"
                                                     "ExecStart=/usr/bin/redis-server /etc/redis/redis.conf \\\n    --supervised systemd\n");
        /* A template's, continuation lines joined; a comment is no ordering. */
        write_test_file(lib, "pg@.service", "[Unit]\nAfter=network.target \\\n  network-online.target pg-common.service\n"
                                            "# After=network.target\n[Service]\nExecStart=/usr/bin/pg_ctlcluster %i start\n");
        /* The admin's copy in /etc is the one systemd loads. */
        write_test_file(lib, "web.service", "[Unit]\nAfter=syslog.target\n[Service]\nExecStart=/usr/bin/web\n");
        write_test_file(etc, "web.service", "[Unit]\nAfter = network-online.target nss-lookup.target\n"
                                            "Wants=network-online.target\n[Service]\nExecStart=/usr/bin/web --admin\n");
        /* No ordering after the network in [Unit]: left as it is. */
        write_test_file(lib, "memcached.service", "[Unit]\nAfter=syslog.target\n[Service]\nAfter=network.target\n"
                                                  "ExecStart=/usr/bin/memcached\n");
        config_root = root;

        assert_int_equal(run_generator(out, "dreamlink.handoff=" SET " dreamlink.handoff.units=redis-server.service,"
                                            "pg@17-main.service,web.service,memcached.service,gone.service"), 0);
        _cleanup_free_ char *redis = read_in(out, "early/redis-server.service");
        assert_non_null(redis);
        assert_non_null(strstr(redis, "# Written by dreamlink-handoff-generator for the restore of redis-server.service "));
        assert_non_null(strstr(redis, " /usr/lib/systemd/system/redis-server.service without "));
        assert_non_null(strstr(redis, "\n[Unit]\nDescription=Advanced key-value store\nDocumentation=man:redis-server(1)\n\n"
                                      "[Service]\nType=notify\nExecStart=/usr/bin/redis-server /etc/redis/redis.conf \\\n"
                                      "    --supervised systemd\n"));
        /* The restore drop-in is written as before, beside it. */
        _cleanup_free_ char *dropin = read_in(out, "redis-server.service.d/zz-dreamlink-restore.conf");
        assert_non_null(dropin);
        _cleanup_free_ char *pg = read_in(out, "early/pg@17-main.service");
        assert_non_null(pg);
        assert_non_null(strstr(pg, "\n[Unit]\nAfter=pg-common.service\n# After=network.target\n[Service]\n"
                                   "ExecStart=/usr/bin/pg_ctlcluster %i start\n"));
        _cleanup_free_ char *web = read_in(out, "early/web.service");
        assert_non_null(web);
        assert_non_null(strstr(web, " /etc/systemd/system/web.service without "));
        assert_non_null(strstr(web, "\n[Unit]\nAfter=nss-lookup.target\nWants=network-online.target\n[Service]\n"
                                    "ExecStart=/usr/bin/web --admin\n"));
        _cleanup_free_ char *memcached = read_in(out, "early/memcached.service");
        _cleanup_free_ char *gone = read_in(out, "early/gone.service");
        assert_null(memcached);
        assert_null(gone);
        config_root = "/nonexistent";
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_ordinary_boot, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_handoff_boot, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_refuses_bad_input, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_set_without_units, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_opt_in_dropins, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_quadlet_no_opt_in, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_forking_reaped, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_restore_fragment, tmpdir_setup, tmpdir_teardown),
        };
        return cmocka_run_group_tests_name("handoff-generator", tests, NULL, NULL);
}
