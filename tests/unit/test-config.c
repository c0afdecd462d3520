/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tests.h"
#include "conf-parser.h"
#include "log.h"
#include "updaterd-conf.h"

/* An empty root with the directories updaterd reads its configuration from. */
static int root_setup(void **state) {
        if (conf_root_setup(state, "updaterd.conf") < 0)
                return -1;
        log_set_target(LOG_TARGET_CONSOLE);
        return 0;
}

typedef struct Load {
        const char *root;
        UpdaterConfig config;
        int r;
} Load;

static void load(void *userdata) {
        Load *l = userdata;
        updater_config_init(&l->config);
        l->r = updater_config_load(&l->config, l->root);
}

/* Loads the configuration under root, returning what was logged. */
static char *load_config(const char *root, UpdaterConfig *ret, int *ret_r) {
        Load l = { .root = root };
        char *out = capture_stderr(load, &l);
        *ret = l.config;
        *ret_r = l.r;
        return out;
}

static void test_defaults_without_files(void **state) {
        UpdaterConfig c;
        int r;
        _cleanup_free_ char *out = load_config(*state, &c, &r);

        assert_int_equal(r, 0);
        assert_string_equal(out, "");
        assert_string_equal(c.channel, "stable");
        assert_string_equal(c.state_dir, "/var/lib/dreamlink");
        assert_string_equal(c.trusted_keys_dir, "/usr/lib/dreamlink/keys.d");
        assert_null(c.server);
        assert_false(c.allow_http);
        assert_false(c.auto_commit);
        assert_true(c.handoff);
        assert_true(c.stop_timeout == 30 * USEC_PER_SEC);
        assert_true(c.health_timeout == 5 * USEC_PER_MINUTE);
        assert_int_equal(c.boot_tries, 3);
        assert_true(c.max_download_size == 8ULL << 30);
        assert_true(c.stall_timeout == 30 * USEC_PER_SEC);
        assert_true(c.download_timeout == 6 * USEC_PER_HOUR);
        updater_config_done(&c);
}

static void test_main_file_values(void **state) {
        UpdaterConfig c;
        int r;

        write_test_file(*state, "etc/dreamlink/updaterd.conf",
                        "# dreamlink\n"
                        "[Update]\n"
                        "Server = https://updates.example.org/dreamlink\n"
                        "Channel=beta\n"
                        "  AllowHTTP=yes  \n"
                        "; a comment\n"
                        "MaxDownloadSize=3G\n"
                        "CAFile=/etc/dreamlink/ca.pem\n"
                        "\n"
                        "[Handoff]\n"
                        "Enabled=no\n"
                        "StopTimeout=infinity\n"
                        "[Health]\n"
                        "Timeout=1min 30s\n"
                        "RequiredUnits=ssh.service redis-server.service\n"
                        "BootTries=5\n");
        _cleanup_free_ char *out = load_config(*state, &c, &r);
        assert_int_equal(r, 0);
        assert_string_equal(out, "");
        assert_string_equal(c.server, "https://updates.example.org/dreamlink");
        assert_string_equal(c.channel, "beta");
        assert_true(c.allow_http);
        assert_true(c.max_download_size == 3ULL << 30);
        assert_string_equal(c.ca_file, "/etc/dreamlink/ca.pem");
        assert_false(c.handoff);
        assert_true(c.stop_timeout == USEC_INFINITY);
        assert_true(c.health_timeout == 90 * USEC_PER_SEC);
        assert_int_equal(strv_length(c.health_units), 2);
        assert_string_equal(c.health_units[1], "redis-server.service");
        assert_int_equal(c.boot_tries, 5);
        updater_config_done(&c);
}

static void test_dropins_override_in_name_order(void **state) {
        UpdaterConfig c;
        int r;

        write_test_file(*state, "etc/dreamlink/updaterd.conf", "[Update]\nChannel=stable\nAutoCommit=yes\n");
        write_test_file(*state, "usr/lib/dreamlink/updaterd.conf.d/10-vendor.conf", "[Update]\nChannel=vendor\n");
        write_test_file(*state, "run/dreamlink/updaterd.conf.d/20-runtime.conf", "[Update]\nChannel=runtime\n");
        write_test_file(*state, "etc/dreamlink/updaterd.conf.d/15-admin.conf", "[Update]\nChannel=admin\nAutoCommit=no\n");
        _cleanup_free_ char *out = load_config(*state, &c, &r);
        assert_int_equal(r, 0);
        /* 10-vendor, 15-admin, 20-runtime: the last one read wins. */
        assert_string_equal(c.channel, "runtime");
        assert_false(c.auto_commit);
        updater_config_done(&c);
}

static void test_etc_dropin_masks_same_name(void **state) {
        UpdaterConfig c;
        int r;

        write_test_file(*state, "usr/lib/dreamlink/updaterd.conf.d/50-channel.conf", "[Update]\nChannel=vendor\n");
        write_test_file(*state, "etc/dreamlink/updaterd.conf.d/50-channel.conf", "[Update]\nChannel=mine\n");
        _cleanup_free_ char *out = load_config(*state, &c, &r);
        assert_int_equal(r, 0);
        assert_string_equal(c.channel, "mine");
        updater_config_done(&c);
}

static void test_non_conf_files_ignored(void **state) {
        UpdaterConfig c;
        int r;

        write_test_file(*state, "etc/dreamlink/updaterd.conf.d/50-x.conf.rpmsave", "garbage without equals\n");
        write_test_file(*state, "etc/dreamlink/updaterd.conf.d/.hidden.conf", "garbage\n");
        _cleanup_free_ char *out = load_config(*state, &c, &r);
        assert_int_equal(r, 0);
        updater_config_done(&c);
}

static void test_unknown_key_and_section_warn(void **state) {
        UpdaterConfig c;
        int r;

        write_test_file(*state, "etc/dreamlink/updaterd.conf",
                        "[Update]\nChannel=beta\nColour=blue\n[Frobnicate]\nX=1\n");
        _cleanup_free_ char *out = load_config(*state, &c, &r);
        assert_int_equal(r, 0);
        assert_string_equal(c.channel, "beta");
        assert_non_null(strstr(out, "updaterd.conf:3: Unknown key 'Colour' in section [Update], ignoring."));
        assert_non_null(strstr(out, "updaterd.conf:4: Unknown section [Frobnicate]"));
        updater_config_done(&c);
}

static void expect_bad_value(const char *root, const char *content, const char *expected_message) {
        UpdaterConfig c;
        int r;

        write_test_file(root, "etc/dreamlink/updaterd.conf.d/90-bad.conf", content);
        _cleanup_free_ char *out = load_config(root, &c, &r);
        assert_int_equal(r, -EINVAL);
        if (!strstr(out, expected_message))
                fail_msg("expected '%s' in '%s'", expected_message, out);
        updater_config_done(&c);
}

static void test_bad_bool(void **state) {
        expect_bad_value(*state, "[Update]\n\nAutoCommit=perhaps\n",
                         "90-bad.conf:3: AutoCommit= expects a boolean (yes/no), got 'perhaps'.");
}

static void test_bad_window(void **state) {
        expect_bad_value(*state, "[Update]\nAutoCommitWindow=2am-4am\n",
                         "90-bad.conf:2: AutoCommitWindow= expects a daily window of local time as HH:MM-HH:MM, got '2am-4am'.");
}

static void test_bad_size(void **state) {
        expect_bad_value(*state, "[Update]\nMaxDownloadSize=lots\n", "90-bad.conf:2: MaxDownloadSize= expects a size");
}

static void test_bad_timespan(void **state) {
        expect_bad_value(*state, "[Health]\nTimeout=ages\n", "90-bad.conf:2: Timeout= expects a time span");
}

static void test_download_bounds(void **state) {
        UpdaterConfig c;
        int r;

        write_test_file(*state, "etc/dreamlink/updaterd.conf",
                        "[Update]\nMaxDownloadSize=0\nStallTimeout=10s\nDownloadTimeout=2h\n");
        _cleanup_free_ char *out = load_config(*state, &c, &r);
        assert_int_equal(r, 0);
        assert_true(c.max_download_size == 0);
        assert_true(c.stall_timeout == 10 * USEC_PER_SEC);
        assert_true(c.download_timeout == 2 * USEC_PER_HOUR);
        updater_config_done(&c);

        expect_bad_value(*state, "[Update]\nStallTimeout=0\n",
                         "90-bad.conf:2: StallTimeout= expects a time span from 1.0s to 1h 0min, got '0'.");
        expect_bad_value(*state, "[Update]\nDownloadTimeout=31d\n",
                         "90-bad.conf:2: DownloadTimeout= expects a time span from 1.0s to 720h 0min, got '31d'.");
}

/* Past the boot check's own 15 min, or so large a deadline would overflow: refused. */
static void test_bad_health_timeout(void **state) {
        expect_bad_value(*state, "[Health]\nTimeout=11min\n",
                         "90-bad.conf:2: Timeout= expects a time span from 1.0s to 10min 0s, got '11min'.");
        expect_bad_value(*state, "[Health]\nTimeout=213503982d\n", "Timeout= expects a time span from 1.0s to 10min 0s");
        expect_bad_value(*state, "[Health]\nTimeout=0\n", "Timeout= expects a time span from 1.0s to 10min 0s");
}

/* Zero would kill every service at once; past an hour nothing a user waits for is bounded. */
static void test_stop_timeout(void **state) {
        expect_bad_value(*state, "[Handoff]\nStopTimeout=0\n",
                         "90-bad.conf:2: StopTimeout= expects a time span from 1.0s to 1h 0min, got '0'.");
        expect_bad_value(*state, "[Handoff]\nStopTimeout=2h\n", "StopTimeout= expects a time span from 1.0s to 1h 0min");
        expect_bad_value(*state, "[Handoff]\nStopTimeout=never\n", "StopTimeout= expects a time span");
}

static void test_bad_url_and_path(void **state) {
        expect_bad_value(*state, "[Update]\nServer=ftp://example.org\n", "Server= expects an https://");
        expect_bad_value(*state, "[Update]\nCAFile=relative/ca.pem\n", "CAFile= must be an absolute path");
}

static void test_bad_channel(void **state) {
        expect_bad_value(*state, "[Update]\nChannel=../../etc\n", "Channel= expects a name of letters");
        expect_bad_value(*state, "[Update]\nChannel=\n", "Channel= expects a name of letters");
}

static void test_bad_boot_tries(void **state) {
        expect_bad_value(*state, "[Health]\nBootTries=0\n", "BootTries= expects a number from 1 to 9, got '0'.");
        expect_bad_value(*state, "[Health]\nBootTries=12\n", "BootTries= expects a number from 1 to 9");
}

static void expect_syntax_error(const char *root, const char *content, const char *expected_message) {
        UpdaterConfig c;
        int r;

        write_test_file(root, "etc/dreamlink/updaterd.conf", content);
        _cleanup_free_ char *out = load_config(root, &c, &r);
        assert_int_equal(r, -EBADMSG);
        if (!strstr(out, expected_message))
                fail_msg("expected '%s' in '%s'", expected_message, out);
        updater_config_done(&c);
}

static void test_syntax_errors(void **state) {
        expect_syntax_error(*state, "Channel=beta\n", "updaterd.conf:1: Key 'Channel' outside of any section.");
        expect_syntax_error(*state, "[Update]\nChannel beta\n", "updaterd.conf:2: Expected 'Key=Value'");
        expect_syntax_error(*state, "[Update\n", "updaterd.conf:1: Invalid section header");
        expect_syntax_error(*state, "[Update]\n=beta\n", "updaterd.conf:2: Missing key before '='.");
}

/* Everything after a NUL byte would have been dropped without a word. */
static void test_nul_byte_refused(void **state) {
        static const char text[] = "[Update]\nChannel=beta\nAllow\0HTTP=yes\nChannel=evil\n";
        _cleanup_free_ char *path = path_join2(*state, "etc/dreamlink/updaterd.conf");
        UpdaterConfig c;
        int r;

        write_test_file(*state, "etc/dreamlink/updaterd.conf", "");
        assert_int_equal(write_file_atomic(path, text, sizeof(text) - 1, 0644), 0);
        _cleanup_free_ char *out = load_config(*state, &c, &r);
        assert_int_equal(r, -EBADMSG);
        if (!strstr(out, "updaterd.conf:3: Configuration file contains a NUL byte, refusing the file."))
                fail_msg("no NUL byte refusal in '%s'", out);
        updater_config_done(&c);
}

static void test_strv_reset(void **state) {
        UpdaterConfig c;
        int r;

        write_test_file(*state, "etc/dreamlink/updaterd.conf", "[Health]\nRequiredUnits=a.service\nRequiredUnits=b.service\n");
        write_test_file(*state, "etc/dreamlink/updaterd.conf.d/10.conf", "[Health]\nRequiredUnits=\nRequiredUnits=c.service\n");
        _cleanup_free_ char *out = load_config(*state, &c, &r);
        assert_int_equal(r, 0);
        assert_int_equal(strv_length(c.health_units), 1);
        assert_string_equal(c.health_units[0], "c.service");
        updater_config_done(&c);
}

static void test_oversized_file_refused(void **state) {
        UpdaterConfig c;
        int r;
        _cleanup_free_ char *big = malloc(CONFIG_FILE_MAX + 2);

        memset(big, '#', CONFIG_FILE_MAX + 1);
        big[CONFIG_FILE_MAX + 1] = 0;
        write_test_file(*state, "etc/dreamlink/updaterd.conf", big);
        _cleanup_free_ char *out = load_config(*state, &c, &r);
        assert_int_equal(r, -EFBIG);
        assert_non_null(strstr(out, "larger than 65536 bytes"));
        updater_config_done(&c);
}

static int load_unprivileged(void *userdata) {
        UpdaterConfig c;
        updater_config_init(&c);
        int r = updater_config_load(&c, userdata);
        updater_config_done(&c);
        return r;
}

static void test_unreadable_dropin_dir(void **state) {
        _cleanup_free_ char *d = path_join2(*state, "etc/dreamlink/updaterd.conf.d");

        write_test_file(d, "10.conf", "[Update]\nChannel=secret\n");
        assert_int_equal(chmod(*state, 0755), 0);
        assert_int_equal(chmod(d, 0), 0);
        assert_int_equal(run_unprivileged(load_unprivileged, *state), -EACCES);
}

static void test_unreadable_main_file(void **state) {
        _cleanup_free_ char *p = path_join2(*state, "etc/dreamlink/updaterd.conf");

        write_test_file(*state, "etc/dreamlink/updaterd.conf", "[Update]\nChannel=x\n");
        assert_int_equal(chmod(*state, 0755), 0);
        assert_int_equal(chmod(p, 0), 0);
        assert_int_equal(run_unprivileged(load_unprivileged, *state), -EACCES);
}

static void test_dropin_dir_is_a_file(void **state) {
        UpdaterConfig c;
        int r;
        _cleanup_free_ char *d = path_join2(*state, "run/dreamlink/updaterd.conf.d");

        assert_int_equal(rm_rf(d), 0);
        write_test_file(*state, "run/dreamlink/updaterd.conf.d", "not a directory\n");
        _cleanup_free_ char *out = load_config(*state, &c, &r);
        assert_int_equal(r, -ENOTDIR);
        assert_non_null(strstr(out, "Failed to open configuration directory"));
        updater_config_done(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_defaults_without_files, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_main_file_values, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_dropins_override_in_name_order, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_etc_dropin_masks_same_name, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_non_conf_files_ignored, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_stop_timeout, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_unknown_key_and_section_warn, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_bad_bool, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_bad_window, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_bad_size, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_bad_timespan, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_download_bounds, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_bad_health_timeout, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_bad_url_and_path, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_bad_channel, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_bad_boot_tries, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_syntax_errors, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_nul_byte_refused, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_strv_reset, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_oversized_file_refused, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_unreadable_dropin_dir, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_unreadable_main_file, root_setup, tmpdir_teardown),
                cmocka_unit_test_setup_teardown(test_dropin_dir_is_a_file, root_setup, tmpdir_teardown),
        };
        return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
