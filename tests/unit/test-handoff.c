/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pure parts of the handoff engine: its configuration, the restore
 * drop-in it writes, the checkpoint record, reading criu's logs. */
#include <pthread.h>

#include "tests.h"
#include "dropin.h"
#include "handoff-config.h"
#include "handoff-internal.h"
#include "handoff.h"
#include "log.h"
#include "unit-file.h"

static int root_setup(void **state) {
        if (conf_root_setup(state, "handoff") < 0)
                return -1;
        log_set_target(LOG_TARGET_CONSOLE);
        return 0;
}

typedef struct Load {
        const char *root;
        HandoffUnit **units;
        int r;
} Load;

static void load(void *userdata) {
        Load *l = userdata;
        l->r = handoff_config_load(l->root, &l->units);
}

static char *load_config(const char *root, HandoffUnit ***ret, int *ret_r) {
        Load l = { .root = root };
        char *out = capture_stderr(load, &l);
        *ret = l.units;
        *ret_r = l.r;
        return out;
}

static void test_no_files(void **state) {
        HandoffUnit **l;
        int r;
        _cleanup_free_ char *out = load_config(*state, &l, &r);
        assert_int_equal(r, 0);
        assert_string_equal(out, "");
        assert_non_null(l);
        assert_null(l[0]);
        handoff_config_free(l);
}

static void test_defaults_and_values(void **state) {
        HandoffUnit **l;
        int r;

        write_test_file(*state, "etc/dreamlink/handoff.d/redis.conf",
                        "[Handoff]\n"
                        "Unit=redis-server.service\n");
        write_test_file(*state, "usr/lib/dreamlink/handoff.d/web.conf",
                        "# a web server with a hook\n"
                        "[Handoff]\n"
                        "Unit=nginx.service\n"
                        "TCPEstablished=no\n"
                        "FileLocks=no\n"
                        "ShellJob=yes\n"
                        "ExternalUnixSockets=yes\n"
                        "External=mnt[/srv]:srv unix[1234]\n"
                        "External=file[5:42]\n"
                        "PreDumpHook=/usr/lib/nginx/flush\n"
                        "PreDump=no\n"
                        "OnDumpFailure=abort\n");
        _cleanup_free_ char *out = load_config(*state, &l, &r);
        assert_int_equal(r, 0);
        assert_string_equal(out, "");

        HandoffUnit *redis = handoff_config_find(l, "redis-server.service");
        assert_non_null(redis);
        assert_true(redis->enabled);
        assert_true(redis->tcp_established);
        assert_true(redis->file_locks);
        assert_false(redis->shell_job);
        assert_false(redis->ext_unix_sk);
        assert_null(redis->external);
        assert_null(redis->pre_dump_hook);
        assert_true(redis->pre_dump);
        assert_int_equal(redis->on_dump_failure, HANDOFF_FAILURE_RESTART_FRESH);
        assert_true(endswith(redis->file, "/etc/dreamlink/handoff.d/redis.conf"));

        HandoffUnit *web = handoff_config_find(l, "nginx.service");
        assert_non_null(web);
        assert_false(web->tcp_established);
        assert_false(web->file_locks);
        assert_true(web->shell_job);
        assert_true(web->ext_unix_sk);
        assert_int_equal(strv_length(web->external), 3);
        assert_string_equal(web->external[0], "mnt[/srv]:srv");
        assert_string_equal(web->external[2], "file[5:42]");
        assert_string_equal(web->pre_dump_hook, "/usr/lib/nginx/flush");
        assert_false(web->pre_dump);
        assert_int_equal(web->on_dump_failure, HANDOFF_FAILURE_ABORT);

        /* Name order: redis.conf before web.conf, whatever the directory. */
        assert_ptr_equal(l[0], redis);
        assert_ptr_equal(l[1], web);
        assert_null(l[2]);
        assert_null(handoff_config_find(l, "other.service"));
        handoff_config_free(l);
}

static void test_etc_hides_usr_lib(void **state) {
        HandoffUnit **l;
        int r;

        write_test_file(*state, "usr/lib/dreamlink/handoff.d/redis.conf", "[Handoff]\nUnit=redis-server.service\n");
        write_test_file(*state, "etc/dreamlink/handoff.d/redis.conf", "[Handoff]\nUnit=redis-server.service\nEnabled=no\n");
        _cleanup_free_ char *out = load_config(*state, &l, &r);
        assert_int_equal(r, 0);
        assert_non_null(l[0]);
        assert_null(l[1]);
        assert_false(l[0]->enabled);
        handoff_config_free(l);
}

static void expect_refused(const char *root, const char *content, const char *message) {
        HandoffUnit **l = NULL;
        int r;

        write_test_file(root, "etc/dreamlink/handoff.d/bad.conf", content);
        _cleanup_free_ char *out = load_config(root, &l, &r);
        assert_true(r < 0);
        assert_null(l);
        if (!strstr(out, message))
                fail_msg("expected '%s' in '%s'", message, out);
        assert_non_null(strstr(out, "bad.conf"));
}

static void test_refusals(void **state) {
        expect_refused(*state, "[Handoff]\nTCPEstablished=yes\n", "No Unit=");
        expect_refused(*state, "[Handoff]\nUnit=redis-server.socket\n", "expects a service unit name");
        expect_refused(*state, "[Handoff]\nUnit=../x.service\n", "expects a service unit name");
        expect_refused(*state, "[Handoff]\nUnit=a b.service\n", "expects a service unit name");
        expect_refused(*state, "[Handoff]\nUnit=a.service\nOnDumpFailure=maybe\n", "bad.conf:3: OnDumpFailure= expects restart-fresh or abort");
        expect_refused(*state, "[Handoff]\nUnit=a.service\nFileLocks=perhaps\n", "expects a boolean");
        expect_refused(*state, "[Handoff]\nUnit=a.service\nPreDumpHook=hook.sh\n", "must be an absolute path");
        expect_refused(*state, "[Handoff]\nUnit=a.service\nExternal=notakey\n", "expects criu external keys");
}

static void test_duplicate_unit(void **state) {
        write_test_file(*state, "run/dreamlink/handoff.d/a.conf", "[Handoff]\nUnit=redis-server.service\n");
        expect_refused(*state, "[Handoff]\nUnit=redis-server.service\n", "already configured in");
}

static void test_unknown_key_warns(void **state) {
        HandoffUnit **l;
        int r;
        write_test_file(*state, "etc/dreamlink/handoff.d/a.conf", "[Handoff]\nUnit=a.service\nColour=blue\n");
        _cleanup_free_ char *out = load_config(*state, &l, &r);
        assert_int_equal(r, 0);
        assert_non_null(strstr(out, "a.conf:3: Unknown key 'Colour'"));
        handoff_config_free(l);
}

static void test_unit_names(void **state) {
        assert_true(unit_name_is_service("redis-server.service"));
        assert_true(unit_name_is_service("getty@tty1.service"));
        assert_true(unit_name_is_service("foo\\x2dbar.service"));
        assert_false(unit_name_is_service(".service"));
        assert_false(unit_name_is_service("a.socket"));
        assert_false(unit_name_is_service("a/b.service"));
        assert_false(unit_name_is_service("a%i.service"));
        assert_false(unit_name_is_service(""));
        assert_false(unit_name_is_service(NULL));
}

static void test_command_word(void **state) {
        _cleanup_free_ char *a = unit_command_word("/var/lib/x");
        _cleanup_free_ char *b = unit_command_word("a \"b\" c\\d 50% $HOME");
        _cleanup_free_ char *c = unit_command_word("");
        assert_string_equal(a, "/var/lib/x");
        assert_string_equal(b, "\"a \\\"b\\\" c\\\\d 50%% $$HOME\"");
        assert_string_equal(c, "\"\"");
}

static void test_dropin_text(void **state) {
        _cleanup_free_ char *text = NULL;
        RestoreDropin d = {
                .unit = "redis-server.service",
                .helper = "/usr/sbin/dreamlink-handoff",
                .images_dir = "/var/lib/dreamlink/handoff/cycle.abc/redis-server.service",
                .pidfile = "/run/dreamlink/handoff/redis-server.service.pid",
                .syslog_identifier = "redis-server",
        };
        assert_int_equal(restore_dropin_text(&d, &text), 0);
        assert_string_equal(text,
                "# Written by dreamlink-handoff: the next start of redis-server.service restores its\n"
                "# checkpoint instead of starting it fresh. Removed after that start.\n"
                "[Service]\n"
                "Type=forking\n"
                "PIDFile=/run/dreamlink/handoff/redis-server.service.pid\n"
                "ExecStartPre=\n"
                "ExecStartPre=+/bin/rm -f /run/dreamlink/handoff/redis-server.service.pid\n"
                "ExecStartPost=\n"
                "ExecCondition=\n"
                "ExecStart=\n"
                "ExecStart=+/usr/sbin/dreamlink-handoff restore-exec --unit=redis-server.service "
                "--images=/var/lib/dreamlink/handoff/cycle.abc/redis-server.service "
                "--pidfile=/run/dreamlink/handoff/redis-server.service.pid\n"
                "Restart=no\n"
                "TimeoutStartSec=15min\n"
                "User=\n"
                "Group=\n"
                "DynamicUser=no\n"
                "PrivateUsers=no\n"
                "PrivatePIDs=no\n"
                "SyslogIdentifier=redis-server\n");
}

static void test_dropin_text_escapes(void **state) {
        _cleanup_free_ char *text = NULL;
        RestoreDropin d = {
                .unit = "foo\\x2dbar.service",
                .helper = "/usr/sbin/dreamlink-handoff",
                .images_dir = "/srv/100%/x",
                .pidfile = "/run/p%.pid",
        };
        assert_int_equal(restore_dropin_text(&d, &text), 0);
        assert_non_null(strstr(text, "PIDFile=/run/p%%.pid\n"));
        assert_non_null(strstr(text, "--unit=\"foo\\\\x2dbar.service\" --images=\"/srv/100%%/x\""));
        /* No identifier known: none set. */
        assert_null(strstr(text, "SyslogIdentifier="));

        d.images_dir = "/srv/a\nExecStart=/bin/evil";
        text = mfree(text);
        assert_int_equal(restore_dropin_text(&d, &text), -EINVAL);
}

static void test_dropin_write_remove(void **state) {
        const char *root = *state;
        RestoreDropin d = {
                .unit = "redis-server.service",
                .helper = "/usr/sbin/dreamlink-handoff",
                .images_dir = "/var/lib/dreamlink/handoff/x/redis-server.service",
                .pidfile = "/run/dreamlink/handoff/redis-server.service.pid",
        };
        _cleanup_free_ char *path = NULL, *text = NULL, *expected = NULL;
        assert_int_equal(restore_dropin_write(root, &d), 0);
        assert_int_equal(restore_dropin_path(root, d.unit, &path), 0);
        assert_true(endswith(path, "/run/systemd/system/redis-server.service.d/zz-dreamlink-restore.conf"));
        assert_int_equal(read_file_limited(path, 65536, &text, NULL), 0);
        assert_int_equal(restore_dropin_text(&d, &expected), 0);
        assert_string_equal(text, expected);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);

        assert_int_equal(restore_dropin_remove(root, d.unit), 1);
        assert_int_equal(access(path, F_OK), -1);
        *strrchr(path, '/') = 0;
        assert_int_equal(access(path, F_OK), -1); /* the emptied directory went too */
        assert_int_equal(restore_dropin_remove(root, d.unit), 0);
}

/* The record of C written into DIR is refused when read back. */
static void assert_record_refused(const char *dir, const Checkpoint *c) {
        _cleanup_free_ char *text = NULL, *path = path_join2(dir, CHECKPOINT_STATE_FILE);
        Checkpoint back = {};
        assert_int_equal(checkpoint_to_text(c, &text), 0);
        write_test_file(dir, CHECKPOINT_STATE_FILE, text);
        assert_int_equal(checkpoint_load(path, &back), -EBADMSG);
}

static void test_checkpoint_round_trip(void **state) {
        _cleanup_free_ char *text = NULL, *path = path_join2(*state, CHECKPOINT_STATE_FILE);
        char *inodes[] = { (char *) "1234", (char *) "5678", NULL };
        char *tmp[] = { (char *) "/tmp/systemd-private-abc-redis-server.service-XYZ", NULL };
        char *nulls[] = { (char *) "file[1a:5]", NULL };
        char *datagrams[] = { (char *) "9012", NULL };
        char *mounts[] = { (char *) "/run/credentials/getty@tty1.service", (char *) "/run/user/0", NULL };
        char *run_dirs[] = { (char *) "2755:106:113:/run/tor", NULL };
        char *skipped[] = { (char *) "/run/netns", (char *) "/run/netns/netns-d408a1c2", NULL };
        char *run_files[] = { (char *) "644:0:0:/run/nginx.pid", (char *) "640:106:113:/run/tor/control.authcookie", NULL };
        char *addresses[] = { (char *) "10.0.2.15", (char *) "2001:db8::5", NULL };
        char *automounts[] = { (char *) "/efi", (char *) "/proc/sys/fs/binfmt_misc", NULL };
        char *rebind_mounts[] = { (char *) "ro,nodev:/srv/nfs", NULL };
        Checkpoint c = {
                .unit = (char *) "redis-server.service",
                .result = CHECKPOINT_DUMPED,
                .main_pid = 512,
                .syslog_identifier = (char *) "redis-server",
                .tcp_established = true,
                .file_locks = true,
                .mount_namespace = true,
                .journal_inodes = inodes,
                .datagram_inodes = datagrams,
                .null_files = nulls,
                .tmp_dirs = tmp,
                .runtime_mounts = mounts,
                .skipped_mounts = skipped,
                .automounts = automounts,
                .rebind_mounts = rebind_mounts,
                .run_dirs = run_dirs,
                .run_files = run_files,
                .addresses = addresses,
                .lock_table = (char *) "inet CRIU-4f2a",
                .pre_dump_usec = 1312000,
                .pre_dump_bytes = 5 << 20,
                .dump_usec = 812000,
                .image_bytes = 6 << 20,
                .dumped_at_usec = 1795000000000000ULL,
        }, back = {};

        assert_int_equal(checkpoint_to_text(&c, &text), 0);
        write_test_file(*state, CHECKPOINT_STATE_FILE, text);
        assert_int_equal(checkpoint_load(path, &back), 0);
        assert_string_equal(back.unit, "redis-server.service");
        assert_int_equal(back.result, CHECKPOINT_DUMPED);
        assert_null(back.reason);
        assert_int_equal(back.main_pid, 512);
        assert_string_equal(back.syslog_identifier, "redis-server");
        assert_true(back.tcp_established);
        assert_true(back.file_locks);
        assert_false(back.shell_job);
        assert_true(back.mount_namespace);
        assert_int_equal(strv_length(back.journal_inodes), 2);
        assert_string_equal(back.journal_inodes[1], "5678");
        assert_int_equal(strv_length(back.datagram_inodes), 1);
        assert_string_equal(back.datagram_inodes[0], "9012");
        assert_string_equal(back.tmp_dirs[0], tmp[0]);
        assert_string_equal(back.null_files[0], "file[1a:5]");
        assert_string_equal(back.lock_table, "inet CRIU-4f2a");
        assert_int_equal(strv_length(back.runtime_mounts), 2);
        assert_string_equal(back.runtime_mounts[1], "/run/user/0");
        assert_int_equal(strv_length(back.skipped_mounts), 2);
        assert_string_equal(back.skipped_mounts[1], "/run/netns/netns-d408a1c2");
        assert_int_equal(strv_length(back.automounts), 2);
        assert_string_equal(back.automounts[1], "/proc/sys/fs/binfmt_misc");
        assert_int_equal(strv_length(back.rebind_mounts), 1);
        assert_string_equal(back.rebind_mounts[0], "ro,nodev:/srv/nfs");
        assert_int_equal(strv_length(back.run_dirs), 1);
        assert_string_equal(back.run_dirs[0], "2755:106:113:/run/tor");
        assert_int_equal(strv_length(back.run_files), 2);
        assert_string_equal(back.run_files[1], "640:106:113:/run/tor/control.authcookie");
        assert_int_equal(strv_length(back.addresses), 2);
        assert_string_equal(back.addresses[1], "2001:db8::5");
        assert_true(back.pre_dump_usec == 1312000);
        assert_true(back.pre_dump_bytes == 5 << 20);
        assert_true(back.dump_usec == 812000);
        assert_true(back.image_bytes == 6 << 20);
        assert_true(back.dumped_at_usec == 1795000000000000ULL);
        assert_false(back.session);
        assert_null(back.session_refs);
        checkpoint_done(&back);

        /* Created as root at the restore: only runtime directories, one level down. */
        assert_true(runtime_mount_point_is_valid("/run/user/1000"));
        assert_false(runtime_mount_point_is_valid("/run/user/"));
        assert_false(runtime_mount_point_is_valid("/run/user/../../etc"));
        assert_false(runtime_mount_point_is_valid("/run/credentials/x/y"));
        assert_false(runtime_mount_point_is_valid("/etc/credentials/x"));
        text = mfree(text);
        char *evil[] = { (char *) "/etc/cron.d", NULL };
        c.runtime_mounts = evil;
        assert_int_equal(checkpoint_to_text(&c, &text), 0);
        write_test_file(*state, CHECKPOINT_STATE_FILE, text);
        assert_int_equal(checkpoint_load(path, &back), -EBADMSG);
        c.runtime_mounts = mounts;

        /* Opened as root: plain absolute paths. */
        static const char *const bad_automounts[] = { "efi", "/", "/efi/../etc", "/a//b", "/a b", "/x\\040y", "/efi/." };
        for (size_t i = 0; i < ELEMENTSOF(bad_automounts); i++) {
                assert_false(automount_point_is_valid(bad_automounts[i]));
                char *evil_points[] = { (char *) bad_automounts[i], NULL };
                c.automounts = evil_points;
                assert_record_refused(*state, &c);
                c.automounts = NULL;
                _cleanup_free_ char *entry = strprintf("ro:%s", bad_automounts[i]);
                char *evil_entries[] = { entry, NULL };
                c.rebind_mounts = evil_entries;
                assert_record_refused(*state, &c);
                c.rebind_mounts = NULL;
        }

        /* Created as root with a recorded owner: below /run only, none of systemd's or users'. */
        assert_true(run_dir_entry_is_valid("755:0:0:/run/frr"));
        assert_true(run_dir_entry_is_valid("2755:106:113:/run/tor/sub"));
        static const char *const bad[] = {
                "755:0:0:/etc/cron.d", "755:0:0:/run/../etc", "755:0:0:/run/systemd/system", "755:0:0:/run/user/1000",
                "755:0:0:/run/credentials/x", "755:0:0:/run/", "755:0:0:/run//x", "99999:0:0:/run/x", "755:0:/run/x",
                "755:0:0:/run/a b", "755:0:0:/run/x/.",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_false(run_dir_entry_is_valid(bad[i]));
                char *evil_dirs[] = { (char *) bad[i], NULL };
                c.run_dirs = evil_dirs;
                assert_record_refused(*state, &c);
        }
        c.run_dirs = run_dirs;
        /* Files are written as root too: the same places, and never set-ID. */
        static const char *const bad_files[] = { "4755:0:0:/run/x", "1644:0:0:/run/x", "644:0:0:/etc/shadow" };
        for (size_t i = 0; i < ELEMENTSOF(bad_files); i++) {
                char *evil_files[] = { (char *) bad_files[i], NULL };
                c.run_files = evil_files;
                assert_record_refused(*state, &c);
        }

        c.run_files = run_files;
        /* The restore waits for the addresses, by name: IP addresses only. */
        static const char *const bad_addresses[] = { "10.0.2", "eth0", "10.0.2.15/24", "[::1]" };
        for (size_t i = 0; i < ELEMENTSOF(bad_addresses); i++) {
                char *evil_addresses[] = { (char *) bad_addresses[i], NULL };
                c.addresses = evil_addresses;
                assert_record_refused(*state, &c);
        }
        c.addresses = NULL;

        /* A quadlet unit's container: its ID goes to podman, its ID file is written as root. */
        const char *id = "5f2c0d8e9a7b61c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b";
        Checkpoint k = {
                .unit = (char *) "web.service",
                .result = CHECKPOINT_DUMPED,
                .main_pid = 901,
                .tcp_established = true,
                .lock_table = (char *) "inet dreamlink-hold-web.service",
                .container_id = (char *) id,
                .container_id_file = (char *) "/run/web.cid",
        };
        text = mfree(text);
        assert_int_equal(checkpoint_to_text(&k, &text), 0);
        write_test_file(*state, CHECKPOINT_STATE_FILE, text);
        assert_int_equal(checkpoint_load(path, &back), 0);
        assert_string_equal(back.container_id, id);
        assert_string_equal(back.container_id_file, "/run/web.cid");
        assert_string_equal(back.lock_table, "inet dreamlink-hold-web.service");
        checkpoint_done(&back);
        static const char *const bad_ids[] = { "5f2c0d8e", "--all", "5F2C0D8E9A7B61C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B" };
        for (size_t i = 0; i < ELEMENTSOF(bad_ids); i++) {
                k.container_id = (char *) bad_ids[i];
                assert_record_refused(*state, &k);
        }
        k.container_id = (char *) id;
        static const char *const bad_id_files[] = { "/etc/web.cid", "/run/x/web.cid", "/run/.cid", "/run/web", "/run/../etc/x.cid",
                                                    "web.cid" };
        for (size_t i = 0; i < ELEMENTSOF(bad_id_files); i++) {
                k.container_id_file = (char *) bad_id_files[i];
                assert_record_refused(*state, &k);
        }
        /* An ID file without a container is nobody's. */
        k.container_id = NULL;
        k.container_id_file = (char *) "/run/web.cid";
        assert_record_refused(*state, &k);

        /* A login session: its scope, and the logind reference FIFO to stand in for. */
        char *refs[] = { (char *) "file[2c:3f1]", NULL };
        Checkpoint s = {
                .unit = (char *) "session-3.scope",
                .result = CHECKPOINT_DUMPED,
                .main_pid = 811,
                .tcp_established = true,
                .session = true,
                .session_refs = refs,
        };
        text = mfree(text);
        assert_int_equal(checkpoint_to_text(&s, &text), 0);
        write_test_file(*state, CHECKPOINT_STATE_FILE, text);
        assert_int_equal(checkpoint_load(path, &back), 0);
        assert_string_equal(back.unit, "session-3.scope");
        assert_true(back.session);
        assert_int_equal(strv_length(back.session_refs), 1);
        assert_string_equal(back.session_refs[0], "file[2c:3f1]");
        checkpoint_done(&back);

        /* A fresh record carries the reason; nothing else is needed. */
        Checkpoint f = { .unit = (char *) "x.service", .result = CHECKPOINT_FRESH, .reason = (char *) "Can't dump half of stream unix connection" };
        text = mfree(text);
        assert_int_equal(checkpoint_to_text(&f, &text), 0);
        write_test_file(*state, CHECKPOINT_STATE_FILE, text);
        assert_int_equal(checkpoint_load(path, &back), 0);
        assert_int_equal(back.result, CHECKPOINT_FRESH);
        assert_string_equal(back.reason, "Can't dump half of stream unix connection");
        assert_null(back.journal_inodes);
        checkpoint_done(&back);

        f.reason = (char *) "two\nlines";
        text = mfree(text);
        assert_int_equal(checkpoint_to_text(&f, &text), -EINVAL);
}

static void record_refused(const char *root, const char *content) {
        _cleanup_free_ char *path = path_join2(root, CHECKPOINT_STATE_FILE);
        Checkpoint c;
        write_test_file(root, CHECKPOINT_STATE_FILE, content);
        assert_true(checkpoint_load(path, &c) < 0);
}

static void test_checkpoint_refusals(void **state) {
        record_refused(*state, "[Checkpoint]\nResult=dumped\n");
        record_refused(*state, "[Checkpoint]\nUnit=a.service\n");
        record_refused(*state, "[Checkpoint]\nUnit=a.service\nResult=maybe\n");
        record_refused(*state, "[Checkpoint]\nUnit=a.service\nResult=dumped\nJournalInodes=12 x\n");
        record_refused(*state, "[Checkpoint]\nUnit=a.service\nResult=dumped\nDatagramInodes=/dev/log\n");
        record_refused(*state, "[Checkpoint]\nUnit=a.service\nResult=dumped\nNullFiles=file[zz:1]\n");
        /* Directories recreated as root: only PrivateTmp= ones. */
        record_refused(*state, "[Checkpoint]\nUnit=a.service\nResult=dumped\nTmpDirectories=/etc/x\n");
        record_refused(*state, "[Checkpoint]\nUnit=a.service\nResult=dumped\nTmpDirectories=/tmp/systemd-private-x/../../etc\n");
}

static void test_criu_log_reason(void **state) {
        _cleanup_free_ char *path = path_join2(*state, "dump.log");
        _cleanup_free_ char *tail = NULL, *error = NULL;

        write_test_file(*state, "dump.log",
                        "(00.001) Version: 4.2.1\n"
                        "(00.020) Dumping task 512\n"
                        "(00.031) Error (criu/sk-unix.c:862): unix: Can't dump half of stream unix connection.\n"
                        "(00.032) Error (criu/cr-dump.c:1799): Dumping FAILED.\n"
                        "(00.033) Unfreezing tasks\n");
        assert_int_equal(criu_log_reason(path, 2, &tail, &error), 0);
        assert_string_equal(error, "unix: Can't dump half of stream unix connection.");
        assert_string_equal(tail, "(00.032) Error (criu/cr-dump.c:1799): Dumping FAILED.\n(00.033) Unfreezing tasks");

        /* A process born after the pre-dump: criu logs an error, dumps it whole and goes on; the
         * cause is the error after it. */
        tail = mfree(tail);
        error = mfree(error);
        write_test_file(*state, "dump.log",
                        "(00.010) Error (criu/page-xfer.c:455): page-xfer: No parent image found, though parent "
                        "directory is set: No such file or directory\n"
                        "(00.020) Error (criu/ipc_ns.c:317): ipc: SysVIPC shmem map 7f00 doesn't live in IPC ns\n"
                        "(00.032) Error (criu/cr-dump.c:1799): Dumping FAILED.\n");
        assert_int_equal(criu_log_reason(path, 1, &tail, &error), 0);
        assert_string_equal(error, "ipc: SysVIPC shmem map 7f00 doesn't live in IPC ns");

        /* criu 4.2 logs a netlink socket's group bitmap as an error just before the cause. */
        tail = mfree(tail);
        error = mfree(error);
        write_test_file(*state, "dump.log",
                        "(00.010) Error (criu/sk-netlink.c:133): netlink: 8 2\n"
                        "(00.010) Error (criu/sk-netlink.c:134): netlink: The netlink socket 0x4b1 has more than 32 groups\n"
                        "(00.032) Error (criu/cr-dump.c:1799): Dumping FAILED.\n");
        assert_int_equal(criu_log_reason(path, 1, &tail, &error), 0);
        assert_string_equal(error, "netlink: The netlink socket 0x4b1 has more than 32 groups");
        _cleanup_free_ char *why = NULL;
        assert_int_equal(criu_explain(error, &why), 0);
        assert_non_null(strstr(why, "more than 32 multicast groups"));

        tail = mfree(tail);
        error = mfree(error);
        write_test_file(*state, "dump.log", "(00.001) fine\n");
        assert_int_equal(criu_log_reason(path, 5, &tail, &error), 0);
        assert_null(error);
        assert_string_equal(tail, "(00.001) fine");
}

static void test_criu_explain(void **state) {
        _cleanup_free_ char *path = path_join2(*state, "dump.log");
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        /* criu's words are kept, after what they mean and what to change. */
        assert_int_equal(criu_explain("unix: External socket is used. Consider using --ext-unix-sk option.", &a), 0);
        assert_non_null(strstr(a, "stream connection to a program outside the service"));
        assert_non_null(strstr(a, "(criu: unix: External socket is used. Consider"));
        assert_int_equal(criu_explain("something new", &b), 0);
        assert_string_equal(b, "something new");

        write_test_file(*state, "dump.log",
                        "(00.020) Error (criu/namespaces.c:1023): Can't dump nested ipc namespace for 812\n");
        criu_failure_reason(path, &c);
        assert_non_null(c);
        assert_non_null(strstr(c, "isolate=YES"));
        assert_non_null(strstr(c, "RestrictNamespaces="));
        assert_null(criu_error_hint(NULL));

        /* Both of the parasite's ways of failing to open /proc (an AppArmor profile) say what to add. */
        static const char *const proc[] = { "can't get /proc fd", "Can't get /proc fd", "can't get /proc/self/cgroup fd" };
        for (size_t i = 0; i < ELEMENTSOF(proc); i++) {
                const char *hint = criu_error_hint(proc[i]);
                assert_non_null(hint);
                assert_non_null(strstr(hint, "AppArmor profile"));
                assert_non_null(strstr(hint, "/etc/apparmor.d/local/PROFILE"));
                assert_non_null(strstr(hint, "'@{PROC}/@{pid}/cgroup r,'"));
        }
}

static void test_directory_size(void **state) {
        write_test_file(*state, "a", "12345");
        _cleanup_free_ char *sub = path_join2(*state, "sub");
        assert_int_equal(mkdir(sub, 0700), 0);
        write_test_file(sub, "b", "123");
        assert_true(directory_size(*state) == 8);
}

/* ---- criu's stats-dump image ----------------------------------------------------------- */

static size_t put_varint(uint8_t *p, uint64_t v) {
        size_t n = 0;
        do {
                p[n++] = (v & 0x7f) | (v > 0x7f ? 0x80 : 0);
                v >>= 7;
        } while (v);
        return n;
}

static size_t put_field(uint8_t *p, unsigned field, uint64_t v) {
        size_t n = put_varint(p, field << 3);
        return n + put_varint(p + n, v);
}

/* As criu 4.x writes it after a dump: the two magics, the size, stats_entry { dump { … } }. */
static size_t stats_dump_image(uint8_t *buf, bool with_restore) {
        uint8_t dump[128], msg[160];
        size_t d = 0, m = 0;
        d += put_field(dump + d, 1, 12345);         /* freezing_time */
        d += put_field(dump + d, 2, 2500000);       /* frozen_time */
        d += put_field(dump + d, 3, 1800000);       /* memdump_time */
        d += put_field(dump + d, 4, 900000);        /* memwrite_time */
        d += put_field(dump + d, 5, 51200);         /* pages_scanned */
        d += put_field(dump + d, 6, 0);             /* pages_skipped_parent */
        d += put_field(dump + d, 7, 51000);         /* pages_written */
        d += put_field(dump + d, 9, 0);             /* pages_lazy */
        d += put_field(dump + d, 10, 17);           /* page_pipes */
        d += put_field(dump + d, 11, 1ULL << 40);   /* page_pipe_bufs: a wide varint, skipped */
        d += put_field(dump + d, 14, 100);          /* shpages_written: shared memory's */
        if (with_restore) {
                m += put_varint(msg + m, (2 << 3) | 2);  /* a restore's entry first, skipped */
                m += put_varint(msg + m, 2);
                m += put_field(msg + m, 1, 7);
        }
        m += put_varint(msg + m, (1 << 3) | 2);
        m += put_varint(msg + m, d);
        memcpy(msg + m, dump, d);
        m += d;
        uint32_t head[3] = { 0x55105940, 0x57093306, m };
        memcpy(buf, head, sizeof(head));
        memcpy(buf + sizeof(head), msg, m);
        return sizeof(head) + m;
}

static void test_criu_stats(void **state) {
        uint8_t buf[256];
        size_t n = stats_dump_image(buf, false);
        long page = sysconf(_SC_PAGESIZE);
        CriuDumpStats s;

        assert_int_equal(criu_stats_parse(buf, n, &s), 0);
        assert_true(s.frozen_usec == 2500000);
        assert_true(s.memdump_usec == 1800000);
        assert_true(s.memwrite_usec == 900000);
        assert_true(s.pages_scanned_bytes == 51200ULL * page);
        assert_true(s.pages_written_bytes == 51100ULL * page);

        n = stats_dump_image(buf, true);
        assert_int_equal(criu_stats_parse(buf, n, &s), 0);
        assert_true(s.memwrite_usec == 900000);

        /* From the images directory, where criu leaves it. */
        _cleanup_free_ char *path = path_join2(*state, "stats-dump");
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, buf, n), (ssize_t) n);
        assert_int_equal(criu_dump_stats(*state, &s), 0);
        assert_true(s.pages_written_bytes == 51100ULL * page);

        /* Anything else is no figure at all: cut short anywhere, another image, a restore's. */
        for (size_t k = 0; k < n; k++)
                assert_true(criu_stats_parse(buf, k, &s) < 0);
        buf[4] ^= 1;
        assert_int_equal(criu_stats_parse(buf, n, &s), -EBADMSG);
        uint8_t restore[] = { 0x40, 0x59, 0x10, 0x55, 0x06, 0x33, 0x09, 0x57, 4, 0, 0, 0, (2 << 3) | 2, 2, 0x08, 7 };
        assert_int_equal(criu_stats_parse(restore, sizeof(restore), &s), -ENODATA);
        assert_int_equal(criu_dump_stats("/nonexistent", &s), -ENOENT);
}

/* ---- the network locks of a set, loaded in the new boot ------------------------------------ */

/* nft as the test's own (first in PATH): its arguments and what it read on stdin go to calls;
 * with a file "refuse" beside it, it refuses a batch on stdin as nft refuses a bad ruleset. */
static const char fake_nft[] =
        "#!/bin/sh\n"
        "d=$(dirname \"$0\")\n"
        "echo \"nft $*\" >>\"$d/calls\"\n"
        "if [ \"$2\" = - ]; then cat >>\"$d/calls\"; [ ! -e \"$d/refuse\" ] || exit 1; fi\n";

static void test_netlock_load_files(void **state) {
        _cleanup_free_ char *nft = path_join2(*state, "nft"), *calls = path_join2(*state, "calls");
        _cleanup_free_ char *saved_path = strdup(getenv("PATH")), *text = NULL;
        write_test_file(*state, "nft", fake_nft);
        assert_int_equal(chmod(nft, 0755), 0);
        _cleanup_free_ char *path = strprintf("%s:%s", (char *) *state, saved_path);
        setenv("PATH", path, 1);

        char *paths[] = { (char *) "/var/lib/dreamlink/handoff/s/redis-server.service/netlock.nft",
                          (char *) "/var/lib/dreamlink/handoff/s/nginx.service/netlock.nft", NULL };
        char *units[] = { (char *) "redis-server.service", (char *) "nginx.service", NULL };

        /* All in one nft, which reads each file itself. */
        assert_int_equal(netlock_load_files(paths, units), 2);
        assert_int_equal(read_file_limited(calls, 4096, &text, NULL), 0);
        assert_string_equal(text, "nft -f -\n"
                                  "include \"/var/lib/dreamlink/handoff/s/redis-server.service/netlock.nft\"\n"
                                  "include \"/var/lib/dreamlink/handoff/s/nginx.service/netlock.nft\"\n");

        /* Refused as a batch: each on its own. */
        assert_int_equal(unlink(calls), 0);
        write_test_file(*state, "refuse", "");
        assert_int_equal(netlock_load_files(paths, units), 2);
        text = mfree(text);
        assert_int_equal(read_file_limited(calls, 4096, &text, NULL), 0);
        assert_true(endswith(text, "\nnft -f /var/lib/dreamlink/handoff/s/redis-server.service/netlock.nft\n"
                                   "nft -f /var/lib/dreamlink/handoff/s/nginx.service/netlock.nft\n"));

        /* A path nft's quotes cannot carry never goes into a batch; one lock needs none. */
        assert_int_equal(unlink(calls), 0);
        char *escaped[] = { (char *) "/var/lib/dreamlink/handoff/s/a\\x2db.service/netlock.nft", paths[1], NULL };
        assert_int_equal(netlock_load_files(escaped, units), 2);
        text = mfree(text);
        assert_int_equal(read_file_limited(calls, 4096, &text, NULL), 0);
        assert_null(strstr(text, "include"));
        /* Nor one nft would read as a glob, or search for in its include path. */
        char *globbed[] = { (char *) "/var/lib/dreamlink/handoff/s/a[1].service/netlock.nft", paths[1], NULL };
        char *relative[] = { (char *) "s/redis-server.service/netlock.nft", paths[1], NULL };
        assert_int_equal(unlink(calls), 0);
        assert_int_equal(netlock_load_files(globbed, units), 2);
        assert_int_equal(netlock_load_files(relative, units), 2);
        text = mfree(text);
        assert_int_equal(read_file_limited(calls, 4096, &text, NULL), 0);
        assert_null(strstr(text, "include"));
        assert_int_equal(unlink(calls), 0);
        char *one[] = { paths[0], NULL }, *one_unit[] = { units[0], NULL };
        assert_int_equal(netlock_load_files(one, one_unit), 1);
        text = mfree(text);
        assert_int_equal(read_file_limited(calls, 4096, &text, NULL), 0);
        assert_string_equal(text, "nft -f /var/lib/dreamlink/handoff/s/redis-server.service/netlock.nft\n");
        assert_int_equal(netlock_load_files((char *[]) { NULL }, (char *[]) { NULL }), 0);

        /* A set in which one checkpoint lost its lock file: the others' locks load all the same,
         * and the lock unit fails, saying so. */
        char *units2[] = { (char *) "a.service", (char *) "b.service", NULL };
        for (char **u = units2; *u; u++) {
                _cleanup_free_ char *dir = strprintf("set/%s", *u), *rec = NULL, *record = NULL;
                make_test_dir(*state, dir, 0700);
                Checkpoint c = { .unit = *u, .result = CHECKPOINT_DUMPED, .lock_table = (char *) "inet CRIU-1" };
                assert_int_equal(checkpoint_to_text(&c, &rec), 0);
                free(dir);
                dir = strprintf("set/%s/" CHECKPOINT_STATE_FILE, *u);
                write_test_file(*state, dir, rec);
        }
        write_test_file(*state, "set/b.service/" NETLOCK_FILE, "table inet CRIU-1 {\n}\n");
        _cleanup_free_ char *set = path_join2(*state, "set");
        assert_int_equal(unlink(calls), 0);
        assert_int_equal(handoff_lock_network(set), -ENOENT);
        text = mfree(text);
        assert_int_equal(read_file_limited(calls, 4096, &text, NULL), 0);
        assert_non_null(strstr(text, "b.service/netlock.nft"));
        assert_null(strstr(text, "a.service/netlock.nft"));

        setenv("PATH", saved_path, 1);
}

/* The writeback thread comes and goes around a dump, whatever the directory holds. */
static void test_writeback(void **state) {
        write_test_file(*state, "pages-1.img", "memory");
        write_test_file(*state, "core-1.img", "registers");
        _cleanup_close_ int fd = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        for (int i = 0; i < 3; i++) {
                Writeback *w = NULL;
                assert_int_equal(writeback_start(fd, &w), 0);
                assert_non_null(w);
                write_test_file(*state, "pages-2.img", "more memory");
                assert_null(writeback_stop(w));
        }
        assert_null(writeback_stop(NULL));
        /* Its own descriptor: the caller's stays open. */
        assert_true(fcntl(fd, F_GETFD) >= 0);
}

/* What is read ahead of a restore: the pages images, those of the pre-dumps behind "parent"
 * too, no more than the budget; nothing else, nor the directory's other files. */
static void test_readahead(void **state) {
        _cleanup_free_ char *pre = path_join2(*state, "pre"), *parent = path_join2(*state, "final/parent"),
                            *final = path_join2(*state, "final");
        assert_int_equal(mkdir(pre, 0700), 0);
        assert_int_equal(mkdir(final, 0700), 0);
        assert_int_equal(symlink("../pre", parent), 0);
        write_test_file(pre, "pages-1.img", "0123456789");       /* 10 */
        write_test_file(final, "pages-1.img", "01234");          /* 5 */
        write_test_file(final, "pages-2.img", "0123456789012");  /* 13 */
        write_test_file(final, "pagemap-1.img", "not memory");
        write_test_file(final, "core-1.img", "registers");
        _cleanup_close_ int fd = open(final, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(images_readahead_at(fd, UINT64_MAX), 28);
        /* A file that would pass the budget is left to criu, smaller ones still fit; the final
         * dump's own before the pre-dumps'. */
        assert_int_equal(images_readahead_at(fd, 27), 18);
        assert_int_equal(images_readahead_at(fd, 12), 5);
        assert_int_equal(images_readahead_at(fd, 4), 0);
        /* The caller's descriptor stays open. */
        assert_true(fcntl(fd, F_GETFD) >= 0);
        /* The thread's version: best effort, nothing to return, a directory that is not there is none. */
        images_readahead_start("test.service", final);
        images_readahead_start("test.service", "/nonexistent/images");
}

static void test_pid_in_tree(void **state) {
        assert_true(pid_in_tree(getpid(), getpid()));
        assert_true(pid_in_tree(getpid(), getppid()));
        assert_true(pid_in_tree(getpid(), 1));
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                pause();
                _exit(0);
        }
        assert_true(pid_in_tree(child, getpid()));
        assert_false(pid_in_tree(getpid(), child));
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
}

/* ---- directories other users can write to ----------------------------------------------- */

#define PRIVATE "systemd-private-0123abcd-redis-server.service-Xyz"

/* The test's root stands for /: its /tmp, /var/tmp and /run as on a machine. */
static int machine_root_setup(void **state) {
        static const struct { const char *path; mode_t mode; } dirs[] = {
                { "tmp", 01777 }, { "var", 0755 }, { "var/tmp", 01777 }, { "run", 0755 },
                { "run/systemd", 0755 }, { "run/systemd/propagate", 0755 }, { "run/user", 0755 },
        };
        if (tmpdir_setup(state) < 0)
                return -1;
        log_set_target(LOG_TARGET_CONSOLE);
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++)
                make_test_dir(*state, dirs[i].path, dirs[i].mode);
        return 0;
}

typedef struct Recreate {
        int root_fd;
        const char *dir;
        int r;
} Recreate;

static void recreate(void *userdata) {
        Recreate *x = userdata;
        char *dirs[] = { (char *) x->dir, NULL };
        x->r = recreate_tmp_dirs(x->root_fd, "redis-server.service", dirs);
}

/* recreate_tmp_dirs() of DIR alone: its result, and that it said why when it refused. */
static int recreate_one(const char *root, const char *dir) {
        _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        Recreate x = { .root_fd = fd, .dir = dir };
        _cleanup_free_ char *out = capture_stderr(recreate, &x);
        if (x.r < 0) {
                assert_non_null(strstr(out, "Refusing to recreate"));
                assert_non_null(strstr(out, dir));
        }
        return x.r;
}

static void test_recreate_tmp_dirs(void **state) {
        const char *root = *state;
        _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        char *dirs[] = { (char *) "/tmp/" PRIVATE, (char *) "/var/tmp/" PRIVATE,
                         (char *) "/run/systemd/propagate/redis-server.service", NULL };

        assert_int_equal(recreate_tmp_dirs(fd, "redis-server.service", dirs), 0);
        assert_int_equal(test_mode_of(root, "tmp/" PRIVATE), 0700);
        assert_int_equal(test_mode_of(root, "tmp/" PRIVATE "/tmp"), 01777);
        assert_int_equal(test_mode_of(root, "var/tmp/" PRIVATE), 0700);
        assert_int_equal(test_mode_of(root, "var/tmp/" PRIVATE "/tmp"), 01777);
        assert_int_equal(test_mode_of(root, "run/systemd/propagate/redis-server.service"), 0700);
        /* A retried restore finds its own directories there. */
        assert_int_equal(recreate_tmp_dirs(fd, "redis-server.service", dirs), 0);
        assert_int_equal(test_mode_of(root, "var/tmp/" PRIVATE "/tmp"), 01777);
}

/* The PID file a dump saves: the unit's own PIDFile= (a template's, with its instance), not the
 * one of the restore drop-in installed before the dump; /var/run/ as /run/, as systemd has it. */
static void test_unit_pid_file(void **state) {
        const char *root = *state;
        _cleanup_(unit_settings_done) UnitSettings pg = {}, nginx = {}, odd = {};
        _cleanup_free_ char *pg_file = NULL, *nginx_file = NULL, *odd_file = NULL;

        make_test_dir(root, "usr/lib/systemd/system", 0755);
        make_test_dir(root, "run/systemd/system/postgresql@17-main.service.d", 0755);
        write_test_file(root, "usr/lib/systemd/system/postgresql@.service",
                        "[Service]\nType=forking\nPIDFile=/run/postgresql/%i.pid\n");
        write_test_file(root, "run/systemd/system/postgresql@17-main.service.d/" RESTORE_DROPIN_NAME,
                        "[Service]\nPIDFile=/run/dreamlink/handoff/postgresql@17-main.service.pid\n");
        write_test_file(root, "usr/lib/systemd/system/nginx.service", "[Service]\nPIDFile=/var/run/nginx.pid\n");
        write_test_file(root, "usr/lib/systemd/system/odd.service", "[Service]\nPIDFile=/run/%H.pid\n");

        assert_int_equal(unit_settings_read(root, "postgresql@17-main.service", &pg), 0);
        assert_int_equal(unit_settings_pid_file(&pg, "postgresql@17-main.service", &pg_file), 0);
        assert_string_equal(pg_file, "/run/postgresql/17-main.pid");
        assert_int_equal(unit_settings_read(root, "nginx.service", &nginx), 0);
        assert_int_equal(unit_settings_pid_file(&nginx, "nginx.service", &nginx_file), 0);
        assert_string_equal(nginx_file, "/run/nginx.pid");
        /* A specifier a PID file does not use (the host name): none is saved. */
        assert_int_equal(unit_settings_read(root, "odd.service", &odd), 0);
        assert_int_equal(unit_settings_pid_file(&odd, "odd.service", &odd_file), -EOPNOTSUPP);
}

/* The directories between /run and one a service uses: each one, outermost first (tor's
 * /run/tor alone was once left out). */
static void test_run_dir_prefixes(void **state) {
        _cleanup_strv_free_ char **one = NULL, **two = NULL, **none = NULL;
        assert_int_equal(run_dir_prefixes("/run/tor", &one), 0);
        assert_int_equal(strv_length(one), 1);
        assert_string_equal(one[0], "/run/tor");
        assert_int_equal(run_dir_prefixes("/run/tor/sub", &two), 0);
        assert_int_equal(strv_length(two), 2);
        assert_string_equal(two[0], "/run/tor");
        assert_string_equal(two[1], "/run/tor/sub");
        assert_int_equal(run_dir_prefixes("/run/", &none), -EINVAL);
        assert_int_equal(run_dir_prefixes("/var/run", &none), -EINVAL);
}

/* tor's /run/tor, made by its ExecStartPre=, which a restore does not run: created as it was, in
 * the order recorded; one made again meanwhile is left as it is; a link in the way is refused. */
static void test_run_dirs_recreate(void **state) {
        const char *root = *state;
        _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *tor = strprintf("2750:%u:%u:/run/tor", (unsigned) getuid(), (unsigned) getgid());
        _cleanup_free_ char *sub = strprintf("700:%u:%u:/run/tor/sub", (unsigned) getuid(), (unsigned) getgid());
        char *dirs[] = { tor, sub, (char *) "755:0:0:/run/frr", NULL };
        struct stat st;

        make_test_dir(root, "run/frr", 0711);
        assert_int_equal(run_dirs_recreate(fd, "tor@default.service", dirs), 0);
        assert_int_equal(test_mode_of(root, "run/tor"), 02750);
        assert_int_equal(test_mode_of(root, "run/tor/sub"), 0700);
        _cleanup_free_ char *p = path_join2(root, "run/tor");
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_uid, getuid());
        assert_int_equal(test_mode_of(root, "run/frr"), 0711);
        /* A retried restore. */
        assert_int_equal(run_dirs_recreate(fd, "tor@default.service", dirs), 0);

        _cleanup_free_ char *secret = path_join2(root, "secret");
        make_test_dir(root, "secret", 0700);
        make_test_symlink(root, "run/evil", secret);
        char *through[] = { (char *) "755:0:0:/run/evil/x", NULL };
        assert_int_equal(run_dirs_recreate(fd, "tor@default.service", through), -ELOOP);
        _cleanup_free_ char *x = path_join2(secret, "x");
        assert_int_equal(access(x, F_OK), -1);
}

/* What a service keeps in /run comes back after the restore: its PID file and the small files of
 * its directories (tor's cookie), contents, mode and owner; links, big files and set-ID bits not;
 * one that is there again is left as it is; a link planted where one goes is not followed. */
static void test_run_files(void **state) {
        const char *root = *state;
        _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *images = path_join2(root, "images"), *tor = strprintf("2700:%u:%u:/run/tor", (unsigned) getuid(),
                                                                                         (unsigned) getgid());
        _cleanup_strv_free_ char **files = NULL;
        char *dirs[] = { tor, NULL };
        char big[70000];

        make_test_dir(root, "images", 0700);
        make_test_dir(root, "run/tor", 02700);
        write_test_file(root, "run/nginx.pid", "1234\n");
        write_test_file(root, "run/tor/control.authcookie", "cookie");
        _cleanup_free_ char *cookie = path_join2(root, "run/tor/control.authcookie");
        assert_int_equal(chmod(cookie, 04640), 0);
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        write_test_file(root, "run/tor/big", big);
        make_test_symlink(root, "run/tor/link", "/etc/passwd");

        assert_int_equal(run_files_save(fd, dirs, "/run/nginx.pid", images, &files), 0);
        assert_int_equal(strv_length(files), 2);
        _cleanup_free_ char *pid_entry = strprintf("644:%u:%u:/run/nginx.pid", (unsigned) getuid(), (unsigned) getgid());
        _cleanup_free_ char *cookie_entry = strprintf("640:%u:%u:/run/tor/control.authcookie", (unsigned) getuid(),
                                                      (unsigned) getgid());
        assert_true(strv_contains(files, pid_entry));
        assert_true(strv_contains(files, cookie_entry)); /* its set-ID bit dropped */

        /* A new boot: /run is empty but for the directory rundirs.c made again. */
        _cleanup_free_ char *run = path_join2(root, "run");
        assert_int_equal(rm_rf(run), 0);
        make_test_dir(root, "run", 0755);
        make_test_dir(root, "run/tor", 02700);
        _cleanup_strv_free_ char **written = NULL;
        assert_int_equal(run_files_restore(fd, "tor@default.service", images, files, &written), 0);
        assert_int_equal(strv_length(written), 2);
        _cleanup_free_ char *text = NULL, *pid = path_join2(root, "run/nginx.pid");
        assert_int_equal(read_file_limited(cookie, 64, &text, NULL), 0);
        assert_string_equal(text, "cookie");
        assert_int_equal(test_mode_of(root, "run/tor/control.authcookie"), 0640);
        text = mfree(text);
        assert_int_equal(read_file_limited(pid, 64, &text, NULL), 0);
        assert_string_equal(text, "1234\n");
        assert_int_equal(test_mode_of(root, "run/nginx.pid"), 0644);
        _cleanup_free_ char *bigp = path_join2(root, "run/tor/big"), *linkp = path_join2(root, "run/tor/link");
        assert_int_equal(access(bigp, F_OK), -1);
        assert_int_equal(access(linkp, F_OK), -1);

        /* The restore failed: what it wrote goes. */
        run_files_remove(fd, "tor@default.service", written);
        assert_int_equal(access(cookie, F_OK), -1);
        assert_int_equal(access(pid, F_OK), -1);
        written = strv_free(written);

        /* One made again meanwhile is left as it is, and is not removed after a failure. */
        write_test_file(root, "run/nginx.pid", "999\n");
        assert_int_equal(run_files_restore(fd, "tor@default.service", images, files, &written), 0);
        assert_int_equal(strv_length(written), 1);
        assert_string_equal(written[0], cookie_entry);
        run_files_remove(fd, "tor@default.service", written);
        text = mfree(text);
        assert_int_equal(read_file_limited(pid, 64, &text, NULL), 0);
        assert_string_equal(text, "999\n");
        written = strv_free(written);

        /* A link planted where the cookie goes: not written through. */
        _cleanup_free_ char *victim = path_join2(root, "victim");
        write_test_file(root, "victim", "untouched");
        make_test_symlink(root, "run/tor/control.authcookie", victim);
        assert_int_equal(run_files_restore(fd, "tor@default.service", images, files, &written), 0);
        assert_int_equal(strv_length(written), 0);
        text = mfree(text);
        assert_int_equal(read_file_limited(victim, 64, &text, NULL), 0);
        assert_string_equal(text, "untouched");
}

static void test_recreate_tmp_dirs_refuses_links(void **state) {
        const char *root = *state;
        _cleanup_free_ char *victim = path_join2(root, "etc-shadow"), *secret = path_join2(root, "secret");

        write_test_file(root, "etc-shadow", "root:x:\n");
        assert_int_equal(chmod(victim, 0600), 0);
        make_test_dir(root, "secret", 0700);

        /* The private directory is a link a user planted in /var/tmp (their window: the kexec). */
        make_test_symlink(root, "var/tmp/" PRIVATE, secret);
        assert_int_equal(recreate_one(root, "/var/tmp/" PRIVATE), -ELOOP);
        assert_int_equal(test_mode_of(root, "secret"), 0700);
        _cleanup_free_ char *secret_tmp = path_join2(secret, "tmp");
        assert_int_equal(access(secret_tmp, F_OK), -1);

        /* Its tmp is a link to a file of root's: the chmod to 1777 the issue was about. */
        make_test_dir(root, "tmp/" PRIVATE, 0700);
        make_test_symlink(root, "tmp/" PRIVATE "/tmp", victim);
        assert_int_equal(recreate_one(root, "/tmp/" PRIVATE), -ELOOP);
        assert_int_equal(test_mode_of(root, "etc-shadow"), 0600);

        /* /var/tmp itself, or a directory on the way to the propagation directory. */
        _cleanup_free_ char *var_tmp = path_join2(root, "var/tmp"), *propagate = path_join2(root, "run/systemd/propagate");
        assert_int_equal(rm_rf(var_tmp), 0);
        make_test_symlink(root, "var/tmp", secret);
        assert_int_equal(recreate_one(root, "/var/tmp/systemd-private-x-redis-server.service-y"), -ELOOP);
        assert_int_equal(rm_rf(propagate), 0);
        make_test_symlink(root, "run/systemd/propagate", secret);
        assert_int_equal(recreate_one(root, "/run/systemd/propagate/redis-server.service"), -ELOOP);
        assert_int_equal(access(secret_tmp, F_OK), -1);
        assert_int_equal(test_mode_of(root, "secret"), 0700);
}

static void test_recreate_tmp_dirs_refuses_other_owner(void **state) {
        const char *root = *state;
        _cleanup_free_ char *victim = path_join2(root, "etc-shadow"), *theirs = path_join2(root, "var/tmp/" PRIVATE);

        /* A user's own directory under the name, with a link inside they can change at will. */
        make_foreign_test_dir(root, "var/tmp/" PRIVATE, 0700);
        make_test_symlink(root, "var/tmp/" PRIVATE "/tmp", victim);
        write_test_file(root, "etc-shadow", "root:x:\n");
        assert_int_equal(chmod(victim, 0600), 0);
        assert_int_equal(recreate_one(root, "/var/tmp/" PRIVATE), -EPERM);
        assert_int_equal(test_mode_of(root, "etc-shadow"), 0600);
        assert_int_equal(test_mode_of(root, "var/tmp/" PRIVATE), 0700);

        /* Root's, but open to all: anything may have been put in it. */
        assert_int_equal(lchown(theirs, 0, 0), 0);
        assert_int_equal(chmod(theirs, 0777), 0);
        assert_int_equal(recreate_one(root, "/var/tmp/" PRIVATE), -EPERM);
        assert_int_equal(test_mode_of(root, "etc-shadow"), 0600);
}

static void test_runtime_mount_points(void **state) {
        const char *root = *state;
        _cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *secret = path_join2(root, "secret"), *in_secret = path_join2(root, "secret/x.service");
        char *points[] = { (char *) "/run/user/1000", (char *) "/run/user/1001", (char *) "/run/credentials/x.service",
                           NULL };

        /* A user's runtime directory, there already: left as it is. */
        make_test_dir(root, "run/user/1001", 0750);
        create_runtime_mount_points(fd, "redis-server.service", points);
        assert_int_equal(test_mode_of(root, "run/user/1000"), 0700);
        assert_int_equal(test_mode_of(root, "run/user/1001"), 0750);
        assert_int_equal(test_mode_of(root, "run/credentials"), 0755);
        assert_int_equal(test_mode_of(root, "run/credentials/x.service"), 0700);

        /* A link on the way: nothing is created where it leads. */
        _cleanup_free_ char *credentials = path_join2(root, "run/credentials");
        assert_int_equal(rm_rf(credentials), 0);
        make_test_dir(root, "secret", 0700);
        make_test_symlink(root, "run/credentials", secret);
        create_runtime_mount_points(fd, "redis-server.service", points);
        assert_int_equal(access(in_secret, F_OK), -1);
}

/* What redis-server's namespace (PrivateTmp=, ProtectSystem=) shows once podman runs a container
 * beside it and a user has logged in. */
static void test_foreign_mounts(void **state) {
        static const char mountinfo[] =
                "25 1 254:3 / / ro,relatime master:1 - ext4 /dev/vda3 rw\n"
                "30 25 0:24 / /run rw,nosuid,nodev master:5 - tmpfs tmpfs rw,mode=755\n"
                "31 25 254:4 /tmp/systemd-private-1-redis-server.service-a/tmp /tmp rw - ext4 /dev/vda4 rw\n"
                "40 30 0:40 / /run/credentials/systemd-journald.service ro master:12 - tmpfs tmpfs ro\n"
                "41 30 0:41 / /run/credentials/redis-server.service ro - tmpfs tmpfs ro\n"
                "42 30 0:42 / /run/user/1000 rw master:20 - tmpfs tmpfs rw\n"
                "43 30 0:24 /netns /run/netns rw shared:30 master:5 - tmpfs tmpfs rw\n"
                "44 43 0:4 net:[4026532300] /run/netns/netns-d408a1c2 rw shared:31 - nsfs nsfs rw\n"
                "45 25 254:4 /lib/containers/storage/overlay /var/lib/containers/storage/overlay rw master:40 - ext4 /dev/vda4 rw\n"
                "46 25 0:50 / /var/lib/containers/storage/overlay-containers/f51d/userdata/shm rw master:41 - tmpfs shm rw\n"
                "47 30 0:51 / /run/containers/storage/overlay-containers/f51d/userdata/x rw master:42 - tmpfs tmpfs rw\n"
                "48 25 0:52 / /var/lib/containers-of-mine rw - tmpfs tmpfs rw\n"
                "49 30 0:53 / /run/netnsx rw - tmpfs tmpfs rw\n"
                "50 30 0:4 net:[4026532301] /run/netns/with\\040blank rw - nsfs nsfs rw\n";
        _cleanup_strv_free_ char **skipped = NULL;

        (void) state;
        assert_int_equal(mountinfo_foreign_mounts(mountinfo, "redis-server.service", &skipped), 0);
        /* Other units' credentials (not its own), users' runtime directories and containers'
         * mounts, with all below them, left out; lookalike names are not theirs. */
        assert_int_equal(strv_length(skipped), 7);
        assert_string_equal(skipped[0], "/run/credentials/systemd-journald.service");
        assert_string_equal(skipped[1], "/run/user/1000");
        assert_string_equal(skipped[2], "/run/netns");
        assert_string_equal(skipped[3], "/run/netns/netns-d408a1c2");
        assert_string_equal(skipped[4], "/var/lib/containers/storage/overlay");
        assert_string_equal(skipped[5], "/var/lib/containers/storage/overlay-containers/f51d/userdata/shm");
        assert_string_equal(skipped[6], "/run/containers/storage/overlay-containers/f51d/userdata/x");
}

/* The automounts that matter to a restore: where the machine has one and the service a mount,
 * whether it sees the autofs itself or only what was mounted on it (a copy criu made at an
 * earlier restore). */
static void test_automounts(void **state) {
        static const char machine[] =
                "25 1 254:3 / / ro,relatime shared:1 - ext4 /dev/vda3 rw\n"
                "60 25 0:60 / /efi rw,relatime shared:33 - autofs systemd-1 rw,fd=52,pgrp=1,direct\n"
                "61 60 254:1 / /efi rw,relatime shared:34 - vfat /dev/vda1 rw\n"
                "62 25 0:61 / /proc/sys/fs/binfmt_misc rw shared:35 - autofs systemd-1 rw,direct\n"
                "63 25 0:62 / /srv/nfs rw shared:36 - autofs systemd-1 rw,direct\n"
                "64 25 0:63 / /srv/with\\040blank rw - autofs systemd-1 rw,direct\n"
                "65 25 0:64 / /mnt/autofs-like rw - ext4 /dev/autofs rw\n";
        static const char service[] =
                "125 124 254:3 / / ro,relatime master:1 - ext4 /dev/vda3 rw\n"
                "161 125 254:1 / /efi rw,relatime master:34 - vfat /dev/vda1 rw\n"
                "162 125 0:61 / /proc/sys/fs/binfmt_misc rw master:35 - autofs systemd-1 rw,direct\n"
                "164 125 0:63 / /srv/with\\040blank rw - autofs systemd-1 rw,direct\n"
                "165 125 0:64 / /mnt/autofs-like rw - ext4 /dev/autofs rw\n";
        _cleanup_strv_free_ char **points = NULL;

        (void) state;
        assert_int_equal(mountinfo_automounts(machine, service, &points), 0);
        assert_int_equal(strv_length(points), 2);
        assert_string_equal(points[0], "/efi");
        assert_string_equal(points[1], "/proc/sys/fs/binfmt_misc");
}

/* A late mount (an automount, configfs) the service holds nothing below is left out of its dump,
 * with every mount at or below it, and bound again as confined as it was; one it holds a file on,
 * or below which criu could not be told what to skip, stays. */
static void test_late_mounts(void **state) {
        static const char machine[] =
                "25 1 254:3 / / rw,relatime shared:1 - ext4 /dev/vda3 rw\n"
                "60 25 0:60 / /efi rw,relatime shared:33 - autofs systemd-1 rw,fd=52,pgrp=1,direct\n"
                "61 60 254:1 / /efi rw,relatime shared:34 - vfat /dev/vda1 rw\n"
                "64 61 0:70 / /efi/loader rw shared:40 - tmpfs tmpfs rw\n"
                "30 25 0:20 / /sys rw,nosuid,nodev,noexec shared:6 - sysfs sysfs rw\n"
                "31 30 0:30 / /sys/kernel/config rw,nosuid,nodev,noexec shared:7 - configfs configfs rw\n"
                "32 30 0:31 / /sys/fs/fuse/connections rw,nosuid,nodev,noexec shared:8 - fusectl fusectl rw\n"
                "62 25 0:61 / /proc/sys/fs/binfmt_misc rw shared:35 - autofs systemd-1 rw,direct\n"
                "63 25 0:63 / /srv/nfs rw shared:36 - autofs systemd-1 rw,direct\n";
        static const char service[] =
                "125 124 254:3 / / ro,relatime master:1 - ext4 /dev/vda3 rw\n"
                "160 125 0:60 / /efi rw,relatime master:33 - autofs systemd-1 rw,fd=52,pgrp=1,direct\n"
                "169 160 0:60 / /efi ro,nosuid,relatime master:33 - autofs systemd-1 rw,fd=52,pgrp=1,direct\n"
                "161 169 254:1 / /efi rw,relatime master:34 - vfat /dev/vda1 rw\n"
                "166 161 0:70 / /efi/loader rw master:40 - tmpfs tmpfs rw\n"
                "167 125 0:71 / /efix rw master:41 - tmpfs tmpfs rw\n"
                "130 125 0:20 / /sys ro,nosuid,nodev,noexec master:6 - sysfs sysfs rw\n"
                "131 130 0:30 / /sys/kernel/config ro,nosuid,nodev,noexec master:7 - configfs configfs rw\n"
                "133 130 0:31 / /sys/fs/fuse/connections ro,nosuid,nodev,noexec master:8 - fusectl fusectl rw\n"
                "134 133 0:5 /inaccessible/dir /sys/fs/fuse/connections ro - tmpfs tmpfs rw\n"
                "132 125 0:80 / /srv/own rw - configfs configfs rw\n"
                "162 125 0:61 / /proc/sys/fs/binfmt_misc rw master:35 - autofs systemd-1 rw,direct\n"
                "163 125 0:63 / /srv/nfs rw master:36 - autofs systemd-1 rw,direct\n"
                "168 163 0:72 / /srv/nfs/a\\040b rw - tmpfs tmpfs rw\n";
        _cleanup_strv_free_ char **automounts = NULL, **rebind = NULL, **skipped = NULL;
        const uint64_t used[] = { 125, 162 };

        (void) state;
        assert_int_equal(mountinfo_automounts(machine, service, &automounts), 0);
        assert_int_equal(strv_length(automounts), 3);
        assert_int_equal(strv_extend(&skipped, "/run/user/0"), 0);
        assert_int_equal(strv_extend(&skipped, "/efi"), 0);
        assert_int_equal(mountinfo_late_mounts(machine, service, &automounts, used, ELEMENTSOF(used), &rebind, &skipped), 0);
        /* Not /srv/own: the service's own, the machine has no mount there; nor fusectl, which its
         * unit made inaccessible. */
        assert_int_equal(strv_length(rebind), 2);
        /* ProtectSystem= bound /efi onto itself read-only: the same stack as the machine's, and
         * that bind's flags, not the ESP's mount on top. */
        assert_string_equal(rebind[0], "ro,nosuid:/efi");
        assert_string_equal(rebind[1], "ro,nosuid,nodev,noexec:/sys/kernel/config");
        assert_int_equal(strv_length(automounts), 2);
        assert_string_equal(automounts[0], "/proc/sys/fs/binfmt_misc");
        assert_string_equal(automounts[1], "/srv/nfs");
        /* Not /efix: a sibling, not below. */
        assert_int_equal(strv_length(skipped), 4);
        assert_string_equal(skipped[0], "/run/user/0");
        assert_string_equal(skipped[1], "/efi");
        assert_string_equal(skipped[2], "/efi/loader");
        assert_string_equal(skipped[3], "/sys/kernel/config");
        char *flags = NULL;
        assert_string_equal(rebind_entry_parse(rebind[1], &flags), "/sys/kernel/config");
        assert_string_equal(flags, "ro,nosuid,nodev,noexec");
        flags = mfree(flags);

        /* A file open on the ESP keeps it. */
        const uint64_t esp_used[] = { 161, 131 };
        automounts = strv_free(automounts);
        rebind = strv_free(rebind);
        skipped = strv_free(skipped);
        assert_int_equal(strv_extend(&automounts, "/efi"), 0);
        assert_int_equal(mountinfo_late_mounts(machine, service, &automounts, esp_used, 2, &rebind, &skipped), 0);
        assert_null(rebind);
        assert_null(skipped);
        assert_int_equal(strv_length(automounts), 1);

        static const char *const bad[] = { "ro", ":/efi", "rw:efi", "ro,bind:/efi", "ro:/", "ro,:/efi", "RW:/efi" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_false(rebind_entry_is_valid(bad[i]));
        assert_true(rebind_entry_is_valid("rw:/efi"));
        assert_true(rebind_entry_is_valid("nosuid,nodev:/sys/fs/fuse/connections"));
}

/* What our own process holds: its working directory's mount, and a file it has open. */
static void test_tree_mount_ids(void **state) {
        _cleanup_free_ uint64_t *ids = NULL;
        _cleanup_close_ int fd = open(*state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct statx sx;
        pid_t self = getpid();
        size_t n = 0;

        assert_true(fd >= 0);
        assert_int_equal(statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx), 0);
        assert_int_equal(tree_mount_ids(&self, 1, &ids, &n), 0);
        bool found = false;
        for (size_t i = 0; i < n; i++)
                found = found || ids[i] == sx.stx_mnt_id;
        assert_true(found);
}

/* The thread has its own copy of the points: the record may be freed before the join, on an
 * error path of restore-exec. An empty list starts nothing. */
static void test_automounts_trigger_thread(void **state) {
        _cleanup_free_ char *missing = path_join2(*state, "missing");
        _cleanup_strv_free_ char **points = NULL;
        AutomountsTrigger t = {}, none = {};

        assert_int_equal(strv_extend(&points, *state), 0);
        assert_int_equal(strv_extend(&points, missing), 0);
        automounts_trigger_start(&t, "redis-server.service", points);
        points = strv_free(points);
        automounts_trigger_finish(&t);
        assert_false(t.running);
        assert_null(t.points);
        automounts_trigger_finish(&t);

        automounts_trigger_start(&none, "redis-server.service", NULL);
        assert_false(none.running);
        assert_null(none.points);
        automounts_trigger_finish(&none);
}

static void test_apparmor_label_profile(void **state) {
        static const struct {
                const char *label, *profile;
                int r;
        } cases[] = {
                { "containers-default-0.62.2 (enforce)\n", "containers-default-0.62.2", 1 },
                { "system_tor (enforce)", "system_tor", 1 },
                { "/usr/sbin/ntpd (complain)\n", "/usr/sbin/ntpd", 1 },
                /* A hat comes with its parent's policy. */
                { "/usr/sbin/apache2//HANDLING_UNTRUSTED_INPUT (enforce)\n", "/usr/sbin/apache2", 1 },
                { "unconfined\n", NULL, 0 },
                { "lxd-c1_</var/lib/lxd>//&:lxd-c1_<var-lib-lxd>:unconfined (enforce)\n", NULL, 0 },
                { ":ns:inner (enforce)\n", NULL, 0 },
                { "\n", NULL, -EBADMSG },
                { "broken)\n", NULL, -EBADMSG },
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *profile = NULL;
                assert_int_equal(apparmor_label_profile(cases[i].label, &profile), cases[i].r);
                if (cases[i].profile)
                        assert_string_equal(profile, cases[i].profile);
                else
                        assert_null(profile);
        }
}

#define POLICY "\004\010\000version\000policy of podman" /* compiled policy is binary */

/* A securityfs as the kernel lays it out: profiles loaded, each profile's name and compiled policy. */
static void make_apparmor_fs(const char *root, const char *profiles) {
        make_test_dir(root, "fs", 0755);
        make_test_dir(root, "fs/policy", 0755);
        make_test_dir(root, "fs/policy/profiles", 0755);
        make_test_dir(root, "fs/policy/profiles/containers-default-0.62.2.7", 0755);
        write_test_file(root, "fs/policy/profiles/containers-default-0.62.2.7/name", "containers-default-0.62.2\n");
        _cleanup_free_ char *raw = path_join2(root, "fs/policy/profiles/containers-default-0.62.2.7/raw_data");
        assert_int_equal(write_file_atomic(raw, POLICY, sizeof(POLICY) - 1, 0444), 0);
        make_test_dir(root, "fs/policy/profiles/system_tor.3", 0755);
        write_test_file(root, "fs/policy/profiles/system_tor.3/name", "system_tor\n");
        write_test_file(root, "fs/profiles", profiles);
        write_test_file(root, "fs/.load", "");
}

/* apparmor.service's part: this boot's own profile, loaded while a restore waits. */
static void *load_profiles_later(void *fs) {
        _cleanup_free_ char *tmp = path_join2(fs, "profiles.new"), *path = path_join2(fs, "profiles");
        static const char text[] = "system_tor (enforce)\ncontainers-default-0.62.2 (enforce)\n";
        if (write_file_atomic(tmp, text, sizeof(text) - 1, 0644) < 0 || rename(tmp, path) < 0)
                abort();
        return NULL;
}

static void test_apparmor_save_and_load(void **state) {
        const char *root = *state;
        _cleanup_free_ char *fs = path_join2(root, "fs"), *images = path_join2(root, "images");
        _cleanup_free_ char *load_path = path_join2(fs, ".load"), *name0 = path_join2(images, "apparmor/0.name");
        _cleanup_free_ char *name1 = path_join2(images, "apparmor/1.name");
        _cleanup_free_ char *load = NULL, *saved = NULL;
        char *names[] = { (char *) "containers-default-0.62.2", (char *) "system_tor", (char *) "gone", NULL };
        size_t size = 0;

        make_apparmor_fs(root, "containers-default-0.62.2 (enforce)\nsystem_tor (enforce)\n");
        make_test_dir(root, "images", 0700);
        /* Saved: the one whose policy the kernel gives; the others only warned about. */
        assert_int_equal(apparmor_save_profiles_at(fs, "c.service", names, images), 0);
        assert_int_equal(read_file_limited(name0, 4096, &saved, NULL), 0);
        assert_string_equal(saved, "containers-default-0.62.2");
        assert_int_equal(access(name1, F_OK), -1);

        /* A boot that has it loads nothing. */
        assert_int_equal(apparmor_load_saved_at(fs, "c.service", images, 0), 0);
        assert_int_equal(read_file_limited(load_path, 4096, &load, &size), 0);
        assert_int_equal(size, 0);
        free(load);

        /* A boot that lacks it is given the saved policy, in one piece; a profile whose name
         * merely starts the same does not count. */
        write_test_file(root, "fs/profiles", "containers-default-0.62.2x (enforce)\nsystem_tor (enforce)\n");
        assert_int_equal(apparmor_load_saved_at(fs, "c.service", images, 0), 0);
        assert_int_equal(read_file_limited(load_path, 4096, &load, &size), 0);
        assert_int_equal(size, sizeof(POLICY) - 1);
        assert_memory_equal(load, POLICY, size);

        /* A saved policy the kernel refuses (here: no .load to write to) is waited for, until
         * this boot's apparmor.service loads its own of that name (here: a thread). */
        assert_int_equal(unlink(load_path), 0);
        write_test_file(root, "fs/profiles", "system_tor (enforce)\n");
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, load_profiles_later, fs), 0);
        assert_int_equal(apparmor_load_saved_at(fs, "c.service", images, 600 * USEC_PER_SEC), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        _cleanup_free_ char *profiles_path = path_join2(fs, "profiles"), *profiles = NULL;
        assert_int_equal(read_file_limited(profiles_path, 4096, &profiles, NULL), 0);
        assert_non_null(strstr(profiles, "containers-default-0.62.2 (enforce)"));
        /* Not waited for without a bound. */
        write_test_file(root, "fs/profiles", "system_tor (enforce)\n");
        assert_int_equal(apparmor_load_saved_at(fs, "c.service", images, 0), 0);

        /* A boot without AppArmor: said, and the restore goes on to find out. */
        assert_int_equal(rm_rf(fs), 0);
        assert_int_equal(apparmor_load_saved_at(fs, "c.service", images, 0), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_no_files, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_defaults_and_values, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_etc_hides_usr_lib, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_refusals, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_duplicate_unit, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_unknown_key_warns, root_setup, tmpdir_teardown),
                cmocka_unit_test(test_unit_names),
                cmocka_unit_test(test_command_word),
                cmocka_unit_test(test_dropin_text),
                cmocka_unit_test(test_dropin_text_escapes),
                cmocka_unit_test_setup_teardown(test_dropin_write_remove, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_checkpoint_round_trip, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_checkpoint_refusals, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_criu_log_reason, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_criu_explain, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_directory_size, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_criu_stats, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_netlock_load_files, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_readahead, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_writeback, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test(test_pid_in_tree),
                cmocka_unit_test_setup_teardown(test_recreate_tmp_dirs, machine_root_setup, tmpdir_teardown),
                cmocka_unit_test(test_run_dir_prefixes),
                cmocka_unit_test_setup_teardown(test_unit_pid_file, tmpdir_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_run_dirs_recreate, machine_root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_run_files, machine_root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_recreate_tmp_dirs_refuses_links, machine_root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_recreate_tmp_dirs_refuses_other_owner, machine_root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_runtime_mount_points, machine_root_setup, tmpdir_teardown),
                cmocka_unit_test(test_foreign_mounts),
                cmocka_unit_test(test_automounts),
                cmocka_unit_test(test_late_mounts),
                cmocka_unit_test_setup_teardown(test_tree_mount_ids, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_automounts_trigger_thread, root_setup, tmpdir_teardown),
                cmocka_unit_test(test_apparmor_label_profile),
                cmocka_unit_test_setup_teardown(test_apparmor_save_and_load, tmpdir_setup, tmpdir_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
