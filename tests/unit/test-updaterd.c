/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* updaterd's state machine as a client sees it: the real daemon and updatectl, on a private
 * dbus-daemon, against a temporary root directory (DREAMLINK_ROOT) with a signed release on a
 * file:// server. No VM, no partitions: staging fails where it would touch the disk, which is
 * itself part of what is tested (the job ends, with its reason, and the daemon goes idle). */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-json.h>
#include <time.h>

#include "tests.h"
#include "etcd-cluster.h"
#include "fleet-etcd.h"
#include "fleetlock.h"
#include "fleetlock-server.h"
#include "http-server.h"
#include "log.h"
#include "manifest.h"
#include "ostree-image.h" /* a real release to pull */
#include "record.h"
#include "slot-status.h"
#include "transaction.h"

#define NAME "org.dreamlink.Updater1"
#define OBJECT "/org/dreamlink/Updater1"
#define INTERFACE "org.dreamlink.Updater1"

#define BOOTED_COMMIT "1111111111111111111111111111111111111111111111111111111111111111"
#define RELEASE_COMMIT "5e8f1c0a9b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f"
#define RELEASE_KERNEL "6.1.0-test"
#define TREE_SIZE 1234U

#define START_TIMEOUT (10 * USEC_PER_SEC)
#define JOB_TIMEOUT (60 * USEC_PER_SEC)
#define STOP_TIMEOUT (10 * USEC_PER_SEC)

#define assert_contains(haystack, needle)                                                          \
        do {                                                                                       \
                const char *_h_ = (haystack), *_n_ = (needle);                                     \
                if (!_h_ || !strstr(_h_, _n_))                                                     \
                        fail_msg("\"%s\" lacks \"%s\"", _h_ ?: "(null)", _n_);                     \
        } while (0)

#define assert_str(a, b)                                                                           \
        do {                                                                                       \
                const char *_a_ = (a), *_b_ = (b);                                                 \
                if (!_a_ || !streq(_a_, _b_))                                                      \
                        fail_msg("%s is \"%s\", expected \"%s\"", #a, _a_ ?: "(null)", _b_);       \
        } while (0)

typedef struct Options {
        bool stalling_server; /* Server= names a TCP port that accepts connections but never answers */
        const char *update_conf; /* more lines for [Update] */
} Options;

static const Options stalling_server = { .stalling_server = true };
static const Options stalling_server_short_limit = { .stalling_server = true, .update_conf = "DownloadTimeout=2s\n" };

typedef struct JobRemoved {
        uint32_t id;
        char *operation;
        int result;
        char *message;
} JobRemoved;

#define JOBS_MAX 16

/* One PropertiesChanged signal of the interface: the new Operation and Step (NULL when not named),
 * and whether it names Progress. */
typedef struct Changed {
        char *operation;
        char *step;
        bool progress;
} Changed;

#define CHANGED_MAX 256 /* a wait for a fleet slot changes the step with each try's why */

typedef struct Fixture {
        char *dir;              /* the temporary directory, holding: */
        char *root;             /*   root/: DREAMLINK_ROOT */
        char *state;            /*   root/var/lib/dreamlink */
        char *channels;         /*   root/srv/channels */
        char *bus_config;
        char *bus_address;
        EVP_PKEY *key;          /* the release key, its public half in root/usr/lib/dreamlink/keys.d */
        char key_id[KEY_ID_LENGTH + 1];
        int stall_fd;           /* the never-answering server's socket */
        pid_t dbus_pid, updaterd_pid;
        sd_bus *bus;
        sd_bus_slot *match;
        JobRemoved jobs[JOBS_MAX];
        size_t n_jobs;
        sd_bus_slot *changed_match;
        Changed changed[CHANGED_MAX];
        size_t n_changed;
} Fixture;

/* ---- the temporary root ------------------------------------------------------------------- */

typedef struct Release {
        const char *os;      /* NULL: the booted OS's, dreamlink-test */
        const char *version;
        uint64_t counter;
        const char *commit;
        const char *kernel;  /* NULL: RELEASE_KERNEL */
        usec_t expires; /* 0: a day from now */
        uint64_t tree_size;  /* 0: TREE_SIZE */
} Release;

/* Publishes REL as the channel's manifest and signature, as dreamlink-image publish does. */
static void publish(Fixture *f, const Release *rel) {
        _cleanup_free_ char *text = NULL, *sig = NULL;
        usec_t now = now_usec(CLOCK_REALTIME);

        Manifest m = {
                .os = (char *) (rel->os ?: "dreamlink-test"),
                .channel = (char *) "stable",
                .version = (char *) rel->version,
                .counter = rel->counter,
                .ref = (char *) "dreamlink/test/x86_64/stable",
                .commit = (char *) rel->commit,
                .kernel = (char *) (rel->kernel ?: RELEASE_KERNEL),
                .issued = (rel->expires ?: now) - USEC_PER_DAY,
                .expires = rel->expires ?: now + USEC_PER_DAY,
                .key_id = f->key_id,
                .tree_size = rel->tree_size ?: TREE_SIZE,
        };
        assert_int_equal(manifest_format(&m, &text), 0);
        assert_int_equal(manifest_sign(text, strlen(text), f->key, &sig), 0);
        write_test_file(f->channels, "stable.json", text);
        write_test_file(f->channels, "stable.json.sig", sig);
}

static const Release release_2 = { .version = "2", .counter = 2, .commit = RELEASE_COMMIT };

/* The slot table of a machine running release 1 in slot a. */
static void write_slots(Fixture *f, uint64_t highest_counter) {
        _cleanup_free_ char *path = path_join2(f->state, "slots.json");
        _cleanup_(slot_table_done) SlotTable t = {};

        slot_table_init(&t);
        assert_int_equal(slot_adopt_booted(&t, SLOT_A, "1", BOOTED_COMMIT, 1, "6.1.0-1"), 0);
        t.highest_counter = MAX(t.highest_counter, highest_counter);
        assert_int_equal(slot_table_save(&t, path), 0);
}

static void write_config(Fixture *f, const Options *o) {
        _cleanup_free_ char *etc = path_join2(f->root, "etc/dreamlink"), *conf = NULL;

        if (o && o->stalling_server) {
                struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
                socklen_t len = sizeof(sa);

                /* Connections complete in the kernel's backlog; nobody ever reads the requests. */
                f->stall_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                assert_true(f->stall_fd >= 0);
                assert_int_equal(bind(f->stall_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
                assert_int_equal(listen(f->stall_fd, 16), 0);
                assert_int_equal(getsockname(f->stall_fd, (struct sockaddr *) &sa, &len), 0);
                assert_true(asprintf(&conf, "[Update]\nServer=http://127.0.0.1:%u\nAllowHTTP=yes\nChannel=stable\n%s",
                                     ntohs(sa.sin_port), strempty(o->update_conf)) > 0);
        } else
                assert_true(asprintf(&conf, "[Update]\nServer=file://%s/srv\nChannel=stable\n%s", f->root,
                                     o ? strempty(o->update_conf) : "") > 0);
        assert_int_equal(mkdir_p(etc, 0755), 0);
        write_test_file(etc, "updaterd.conf", conf);
}

static void make_root(Fixture *f, const Options *o) {
        _cleanup_free_ char *etc = path_join2(f->root, "etc"), *proc = path_join2(f->root, "proc"), *keys = path_join2(f->root, "usr/lib/dreamlink/keys.d"),
                            *pem = NULL, *bus_config = NULL;

        assert_int_equal(mkdir_p(etc, 0755), 0);
        write_test_file(etc, "os-release", "ID=debian\nIMAGE_ID=dreamlink-test\nIMAGE_VERSION=1\n");
        assert_int_equal(mkdir_p(proc, 0755), 0);
        write_test_file(proc, "cmdline", "BOOT_IMAGE=/dreamlink/a/vmlinuz root=PARTLABEL=root-a rw panic=10 quiet\n");

        assert_int_equal(mkdir_p(keys, 0755), 0);
        assert_int_equal(ed25519_generate(&f->key), 0);
        assert_int_equal(key_get_id(f->key, f->key_id), 0);
        pem = path_join2(keys, "test.pem");
        assert_int_equal(key_save_public(f->key, pem), 0);

        assert_int_equal(mkdir_p(f->state, 0755), 0);
        write_slots(f, 1);
        assert_int_equal(mkdir_p(f->channels, 0755), 0);
        publish(f, &release_2);
        write_config(f, o);

        /* Anyone may connect to the bus (the daemon decides who may change the system). */
        assert_true(asprintf(&bus_config,
                             "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                             " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                             "<busconfig>\n"
                             "  <type>system</type>\n"
                             "  <listen>unix:path=%s/bus</listen>\n"
                             "  <servicedir>%s/services</servicedir>\n"
                             "  <auth>EXTERNAL</auth>\n"
                             "  <policy context=\"default\">\n"
                             "    <allow user=\"*\"/>\n"
                             "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
                             "    <allow eavesdrop=\"true\"/>\n"
                             "    <allow own=\"*\"/>\n"
                             "  </policy>\n"
                             "</busconfig>\n", f->dir, f->dir) > 0);
        write_test_file(f->dir, "bus.conf", bus_config);

        /* D-Bus activation, as the system bus does it with org.dreamlink.Updater1.service: an
         * updaterd that exits when idle, on this bus and root. */
        _cleanup_free_ char *services = path_join2(f->dir, "services"), *activation = NULL;
        assert_int_equal(mkdir_p(services, 0755), 0);
        assert_true(asprintf(&activation, "[D-BUS Service]\nName=org.dreamlink.Updater1\n"
                             "Exec=/usr/bin/env DBUS_SYSTEM_BUS_ADDRESS=unix:path=%s/bus DREAMLINK_ROOT=%s "
                             "DREAMLINK_LOG_TARGET=console %s --exit-idle-time=1s\nUser=root\n",
                             f->dir, f->root, getenv("UPDATERD")) > 0);
        write_test_file(services, "org.dreamlink.Updater1.service", activation);
        f->bus_config = path_join2(f->dir, "bus.conf");
}

/* ---- processes ---------------------------------------------------------------------------- */

/* Starts ARGV[0] as UID with ENV (name, value, …) added to ours; stdin, stdout and stderr from
 * the given fds (-1: ours). The child dies with us, should we die first. */
static pid_t spawn(const char * const argv[], const char * const env[], uid_t uid, int stdin_fd, int stdout_fd,
                   int stderr_fd) {
        pid_t parent = getpid(), pid = fork();

        if (pid != 0)
                return pid;
        if ((stdin_fd >= 0 && dup2(stdin_fd, STDIN_FILENO) < 0) ||
            (stdout_fd >= 0 && dup2(stdout_fd, STDOUT_FILENO) < 0) ||
            (stderr_fd >= 0 && dup2(stderr_fd, STDERR_FILENO) < 0))
                _exit(127);
        /* Before the death signal: changing credentials clears it. */
        if (uid != 0 && (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0))
                _exit(127);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(127);
        /* A proxy from the environment must not catch the loopback. */
        unsetenv("http_proxy");
        unsetenv("https_proxy");
        unsetenv("HTTP_PROXY");
        unsetenv("HTTPS_PROXY");
        unsetenv("all_proxy");
        unsetenv("ALL_PROXY");
        for (size_t i = 0; env && env[i]; i += 2)
                if (setenv(env[i], env[i + 1], 1) < 0)
                        _exit(127);
        execv(argv[0], (char * const *) argv);
        _exit(127);
}

/* Waits up to TIMEOUT for PID; the wait status, or -ETIMEDOUT. */
static int wait_timeout(pid_t pid, usec_t timeout) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + timeout;
        int status;

        for (;;) {
                pid_t p = waitpid(pid, &status, WNOHANG);
                if (p == pid)
                        return status;
                if (p < 0)
                        return -errno;
                if (now_usec(CLOCK_MONOTONIC) >= end)
                        return -ETIMEDOUT;
                (void) usleep(10 * 1000);
        }
}

/* Ends PID with SIGTERM (SIGKILL if it does not go within STOP_TIMEOUT); its wait status. */
static int stop_process(pid_t pid) {
        int status;

        if (kill(pid, SIGTERM) < 0)
                return -errno;
        status = wait_timeout(pid, STOP_TIMEOUT);
        if (status == -ETIMEDOUT) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
        }
        return status;
}

/* dbus-daemon prints its address once it listens. */
static int start_dbus(Fixture *f) {
        _cleanup_free_ char *config_arg = NULL, *log = path_join2(f->dir, "dbus-daemon.log");
        _cleanup_close_ int log_fd = -EBADF;
        int fds[2];
        char buf[1024];
        size_t n = 0;

        if (asprintf(&config_arg, "--config-file=%s", f->bus_config) < 0 || pipe2(fds, O_CLOEXEC) < 0)
                return -ENOMEM;
        log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        const char * const argv[] = { getenv("DBUS_DAEMON") ?: "/usr/bin/dbus-daemon", config_arg, "--nofork",
                                      "--print-address", NULL };
        f->dbus_pid = spawn(argv, NULL, 0, -1, fds[1], log_fd);
        close(fds[1]);
        if (f->dbus_pid < 0) {
                close(fds[0]);
                return -errno;
        }

        usec_t end = now_usec(CLOCK_MONOTONIC) + START_TIMEOUT;
        while (!memchr(buf, '\n', n)) {
                usec_t now = now_usec(CLOCK_MONOTONIC);
                struct pollfd p = { .fd = fds[0], .events = POLLIN };
                if (now >= end || poll(&p, 1, (int) ((end - now) / USEC_PER_MSEC) + 1) <= 0)
                        break;
                ssize_t k = read(fds[0], buf + n, sizeof(buf) - 1 - n);
                if (k <= 0)
                        break;
                n += (size_t) k;
        }
        close(fds[0]);
        char *nl = memchr(buf, '\n', n);
        if (!nl) {
                print_error("dbus-daemon did not start; see %s\n", log);
                return -ETIMEDOUT;
        }
        f->bus_address = strndup(buf, (size_t) (nl - buf));
        return f->bus_address ? 0 : -ENOMEM;
}

static int bus_open(const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Fixture *f = userdata;
        const char *operation, *txn, *message;
        uint32_t id;
        int result;

        if (f->n_jobs >= JOBS_MAX || sd_bus_message_read(m, "ussis", &id, &operation, &txn, &result, &message) < 0)
                return 0;
        f->jobs[f->n_jobs++] = (JobRemoved) {
                .id = id,
                .operation = strdup(operation),
                .result = result,
                .message = strdup(message),
        };
        return 0;
}

/* Starts updaterd on the bus and waits until it owns its name. */
static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Fixture *f = userdata;
        Changed c = {};
        const char *interface, *name, *value;

        if (f->n_changed >= CHANGED_MAX || sd_bus_message_read(m, "s", &interface) < 0 || !streq(interface, INTERFACE) ||
            sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                if (sd_bus_message_read(m, "s", &name) < 0)
                        break;
                if (streq(name, "Operation") && sd_bus_message_read(m, "v", "s", &value) >= 0)
                        c.operation = strdup(value);
                else if (streq(name, "Step") && sd_bus_message_read(m, "v", "s", &value) >= 0)
                        c.step = strdup(value);
                else {
                        c.progress = c.progress || streq(name, "Progress");
                        (void) sd_bus_message_skip(m, "v");
                }
                (void) sd_bus_message_exit_container(m);
        }
        f->changed[f->n_changed++] = c;
        return 0;
}

static int name_has_owner(Fixture *f, int *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(f->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "NameHasOwner", NULL, &reply, "s", NAME);
        return r < 0 ? r : sd_bus_message_read(reply, "b", ret);
}

static int start_updaterd(Fixture *f) {
        const char *exe = getenv("UPDATERD");
        const char * const env[] = { "DBUS_SYSTEM_BUS_ADDRESS", f->bus_address, "DREAMLINK_ROOT", f->root,
                                     "DREAMLINK_LOG_TARGET", "console", NULL };
        usec_t end = now_usec(CLOCK_MONOTONIC) + START_TIMEOUT;
        int r, has = 0;

        if (!exe) {
                print_error("$UPDATERD is not set: run this test with meson test.\n");
                return -EINVAL;
        }
        /* After a restart the bus may not have seen the previous daemon go yet: its name would pass
         * for the new one's. */
        while ((r = name_has_owner(f, &has)) >= 0 && has) {
                if (now_usec(CLOCK_MONOTONIC) >= end) {
                        print_error("The previous updaterd's bus name was not released within 10 s.\n");
                        return -ETIMEDOUT;
                }
                (void) usleep(20 * 1000);
        }
        if (r < 0)
                return r;

        /* Not the default 30 s: a test may well be idle that long. test_exit_idle() has its own. */
        const char * const argv[] = { exe, "--exit-idle-time=infinity", NULL };
        f->updaterd_pid = spawn(argv, env, 0, -1, -1, -1);
        if (f->updaterd_pid < 0)
                return -errno;

        for (;;) {
                r = name_has_owner(f, &has);
                if (r < 0)
                        return r;
                if (has)
                        return 0;
                if (waitpid(f->updaterd_pid, NULL, WNOHANG) == f->updaterd_pid) {
                        f->updaterd_pid = 0;
                        print_error("updaterd exited before it took its bus name.\n");
                        return -ESRCH;
                }
                if (now_usec(CLOCK_MONOTONIC) >= end) {
                        print_error("updaterd did not take its bus name within 10 s.\n");
                        return -ETIMEDOUT;
                }
                (void) usleep(20 * 1000);
        }
}

static void fixture_free(Fixture *f) {
        if (!f)
                return;
        for (size_t i = 0; i < f->n_jobs; i++) {
                free(f->jobs[i].operation);
                free(f->jobs[i].message);
        }
        for (size_t i = 0; i < f->n_changed; i++) {
                free(f->changed[i].operation);
                free(f->changed[i].step);
        }
        f->match = sd_bus_slot_unref(f->match);
        f->changed_match = sd_bus_slot_unref(f->changed_match);
        f->bus = sd_bus_flush_close_unref(f->bus);
        if (f->updaterd_pid > 0)
                (void) stop_process(f->updaterd_pid);
        if (f->dbus_pid > 0)
                (void) stop_process(f->dbus_pid);
        safe_close(f->stall_fd);
        EVP_PKEY_free(f->key);
        if (f->dir)
                (void) rm_rf(f->dir);
        free(f->dir);
        free(f->root);
        free(f->state);
        free(f->channels);
        free(f->bus_config);
        free(f->bus_address);
        free(f);
}

static int setup(void **state) {
        const Options *o = *state;
        Fixture *f = calloc(1, sizeof(Fixture));
        int r;

        assert_non_null(f);
        *state = f;
        f->stall_fd = -EBADF;
        log_set_target(LOG_TARGET_CONSOLE);
        assert_int_equal(tmpdir_setup((void **) &f->dir), 0);
        assert_int_equal(chmod(f->dir, 0755), 0); /* the bus socket is for everyone */
        f->root = path_join2(f->dir, "root");
        f->state = path_join2(f->root, "var/lib/dreamlink");
        f->channels = path_join2(f->root, "srv/channels");
        make_root(f, o);

        /* From here on processes run: no assertions, so that a failure still stops them. */
        r = start_dbus(f);
        if (r >= 0)
                r = bus_open(f->bus_address, &f->bus);
        if (r >= 0)
                r = sd_bus_match_signal(f->bus, &f->match, NAME, OBJECT, INTERFACE, "JobRemoved", on_job_removed, f);
        if (r >= 0)
                r = sd_bus_match_signal(f->bus, &f->changed_match, NAME, OBJECT, "org.freedesktop.DBus.Properties",
                                        "PropertiesChanged", on_properties_changed, f);
        if (r >= 0)
                r = start_updaterd(f);
        if (r < 0) {
                print_error("Setup failed: %s\n", strerror(-r));
                fixture_free(f);
                *state = NULL;
                return -1;
        }
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        int status = 0;

        if (!f)
                return 0;
        /* updaterd must end cleanly on SIGTERM (under the sanitizers: without leaks or errors). */
        if (f->updaterd_pid > 0) {
                status = stop_process(f->updaterd_pid);
                f->updaterd_pid = 0;
                if (status != 0)
                        print_error("updaterd did not exit cleanly on SIGTERM: wait status %d\n", status);
        }
        fixture_free(f);
        return status == 0 ? 0 : -1;
}

/* ---- what a client sees ------------------------------------------------------------------- */

static void bus_error_free(sd_bus_error *e) {
        sd_bus_error_free(e);
}

static sd_json_variant *describe(Fixture *f) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_json_variant *v = NULL;
        const char *json;
        int r;

        r = sd_bus_call_method(f->bus, NAME, OBJECT, INTERFACE, "Describe", &error, &reply, "");
        if (r < 0)
                fail_msg("Describe failed: %s", error.message ?: strerror(-r));
        assert_int_equal(sd_bus_message_read(reply, "s", &json), 1);
        if (sd_json_parse(json, 0, &v, NULL, NULL) < 0)
                fail_msg("Describe returned malformed JSON: %s", json);
        return v;
}

/* V's string at KEY (KEY2 below it when given); NULL if absent. */
static const char *json_string(sd_json_variant *v, const char *key, const char *key2) {
        sd_json_variant *x = v ? sd_json_variant_by_key(v, key) : NULL;
        if (x && key2)
                x = sd_json_variant_by_key(x, key2);
        return x && sd_json_variant_is_string(x) ? sd_json_variant_string(x) : NULL;
}

static char *property(Fixture *f, const char *name) {
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char *s = NULL;
        int r = sd_bus_get_property_string(f->bus, NAME, OBJECT, INTERFACE, name, &error, &s);
        if (r < 0)
                fail_msg("Reading %s failed: %s", name, error.message ?: strerror(-r));
        return s;
}

#define assert_operation(f, expected)                                                              \
        do {                                                                                       \
                _cleanup_free_ char *_op_ = property((f), "Operation");                            \
                assert_str(_op_, (expected));                                                      \
        } while (0)

typedef struct CheckReply {
        int available;
        const char *version, *kernel;
        uint64_t counter, download_size;
} CheckReply;

/* Calls Check (which answers when its job is done); the call's result. */
static int call_check(Fixture *f, sd_bus_error *error, sd_bus_message **ret_reply, CheckReply *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        assert_int_equal(sd_bus_message_new_method_call(f->bus, &m, NAME, OBJECT, INTERFACE, "Check"), 0);
        r = sd_bus_call(f->bus, m, JOB_TIMEOUT, error, ret_reply);
        if (r < 0)
                return r;
        assert_int_equal(sd_bus_message_read(*ret_reply, "bsstt", &ret->available, &ret->version, &ret->kernel,
                                             &ret->counter, &ret->download_size), 1);
        return 0;
}

/* A Check that must fail with ERRNO (as sd-bus maps it back from the error name; 0: any) and a
 * message mentioning NEEDLE; the message is what updatectl check shows, and Describe's last_check. */
static void check_refused(Fixture *f, int errno_expected, const char *needle) {
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        CheckReply c;
        int r;

        r = call_check(f, &error, &reply, &c);
        if (r >= 0)
                fail_msg("Check succeeded (available=%d, version %s), expected a refusal", c.available, c.version);
        assert_true(sd_bus_error_is_set(&error));
        if (errno_expected != 0)
                assert_int_equal(sd_bus_error_get_errno(&error), errno_expected);
        assert_contains(error.message, needle);

        v = describe(f);
        assert_str(json_string(v, "last_check", "result"), "failed");
        assert_contains(json_string(v, "last_check", "message"), needle);
        assert_str(json_string(v, "operation", NULL), "idle");
}

typedef struct Output {
        int status;   /* exit status, or -1 if it did not exit normally */
        char *out, *err;
} Output;

static void output_done(Output *o) {
        free(o->out);
        free(o->err);
}

static char *read_all(const char *path) {
        char *s = NULL;
        assert_int_equal(read_file_limited(path, 1 << 20, &s, NULL), 0);
        return s;
}

/* Runs updatectl with ARG1 (and ARG2) against the test bus, as UID. */
static Output updatectl(Fixture *f, uid_t uid, const char *arg1, const char *arg2) {
        const char *exe = getenv("UPDATECTL");
        _cleanup_free_ char *out_path = path_join2(f->dir, "updatectl.out"), *err_path = path_join2(f->dir, "updatectl.err");
        _cleanup_close_ int out_fd = -EBADF, err_fd = -EBADF, null_fd = -EBADF;
        Output o = { .status = -1 };
        int status;

        if (!exe)
                fail_msg("$UPDATECTL is not set: run this test with meson test.");
        out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(out_fd >= 0 && err_fd >= 0 && null_fd >= 0);

        /* The build tree may sit where another user cannot reach it (a 0700 clone): give an
         * unprivileged caller its own copy in the test directory. */
        _cleanup_free_ char *copy = NULL, *data = NULL;
        if (uid != 0) {
                size_t size;
                copy = path_join2(f->dir, "updatectl");
                assert_int_equal(read_file_limited(exe, 64U << 20, &data, &size), 0);
                assert_int_equal(write_file_atomic(copy, data, size, 0755), 0);
                assert_int_equal(chmod(f->dir, 0755), 0);
                exe = copy;
        }
        const char * const argv[] = { exe, arg1, arg2, NULL };
        const char * const env[] = { "DBUS_SYSTEM_BUS_ADDRESS", f->bus_address, "DREAMLINK_LOG_TARGET", "console",
                                     "SYSTEMD_COLORS", "0", NULL };
        fflush(stdout);
        fflush(stderr);
        pid_t pid = spawn(argv, env, uid, null_fd, out_fd, err_fd);
        assert_true(pid > 0);
        status = wait_timeout(pid, JOB_TIMEOUT);
        if (status == -ETIMEDOUT) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                fail_msg("updatectl %s did not finish", arg1);
        }
        assert_true(WIFEXITED(status));
        o.status = WEXITSTATUS(status);
        assert_int_not_equal(o.status, 127); /* not our own plumbing failing */
        o.out = read_all(out_path);
        o.err = read_all(err_path);
        return o;
}

/* Waits for the JobRemoved signal of job ID. */
static const JobRemoved *wait_job_removed(Fixture *f, uint32_t id) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + JOB_TIMEOUT;

        for (;;) {
                for (size_t i = 0; i < f->n_jobs; i++)
                        if (f->jobs[i].id == id)
                                return &f->jobs[i];
                usec_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= end)
                        fail_msg("No JobRemoved for job %" PRIu32 " within %u s", id,
                                 (unsigned) (JOB_TIMEOUT / USEC_PER_SEC));
                int r = sd_bus_process(f->bus, NULL);
                assert_true(r >= 0);
                if (r == 0)
                        assert_true(sd_bus_wait(f->bus, end - now) >= 0);
        }
}

/* Waits for a PropertiesChanged that sets Operation to VALUE (step: Step to something starting with
 * VALUE). */
static const Changed *wait_changed(Fixture *f, bool step, const char *value) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + JOB_TIMEOUT;

        for (;;) {
                for (size_t i = 0; i < f->n_changed; i++) {
                        const Changed *c = &f->changed[i];
                        if (step ? c->step && startswith(c->step, value) : streq_ptr(c->operation, value))
                                return c;
                }
                usec_t now = now_usec(CLOCK_MONOTONIC);
                if (now >= end)
                        fail_msg("%s did not change to \"%s%s\"", step ? "Step" : "Operation", value, step ? "..." : "");
                int r = sd_bus_process(f->bus, NULL);
                assert_true(r >= 0);
                if (r == 0)
                        assert_true(sd_bus_wait(f->bus, end - now) >= 0);
        }
}

static const Changed *wait_operation_changed(Fixture *f, const char *operation) {
        return wait_changed(f, false, operation);
}

static const Changed *wait_step_changed(Fixture *f, const char *prefix) {
        return wait_changed(f, true, prefix);
}

static uint32_t call_stage(Fixture *f, const char *version, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint32_t id = 0;

        if (sd_bus_call_method(f->bus, NAME, OBJECT, INTERFACE, "Stage", error, &reply, "s", version) < 0)
                return 0;
        assert_int_equal(sd_bus_message_read(reply, "u", &id), 1);
        assert_true(id > 0);
        return id;
}

/* ---- the tests ---------------------------------------------------------------------------- */

static void test_describe_idle(void **state) {
        Fixture *f = *state;
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = describe(f);

        assert_str(json_string(v, "booted", "slot"), "a");
        assert_str(json_string(v, "booted", "version"), "1");
        assert_str(json_string(v, "booted", "commit"), BOOTED_COMMIT);
        assert_str(json_string(v, "channel", NULL), "stable");
        assert_str(json_string(v, "operation", NULL), "idle");
        sd_json_variant *slots = sd_json_variant_by_key(v, "slots");
        assert_str(json_string(sd_json_variant_by_key(slots, "a"), "state", NULL), "good");
        assert_str(json_string(sd_json_variant_by_key(slots, "b"), "state", NULL), "empty");
        assert_null(sd_json_variant_by_key(v, "last_check"));
        assert_null(sd_json_variant_by_key(v, "transaction"));

        /* The same through the properties. */
        _cleanup_free_ char *slot = property(f, "BootedSlot"), *version = property(f, "BootedVersion"),
                            *channel = property(f, "Channel"), *step = property(f, "Step");
        assert_str(slot, "a");
        assert_str(version, "1");
        assert_str(channel, "stable");
        assert_str(step, "");
        assert_operation(f, "idle");
}

static void test_describe_lists_handoff_services(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *dir = path_join2(f->root, "etc/dreamlink/handoff.d");

        _cleanup_(sd_json_variant_unrefp) sd_json_variant *before = describe(f);
        assert_null(sd_json_variant_by_key(before, "handoff"));
        assert_int_equal(mkdir_p(dir, 0755), 0);
        write_test_file(dir, "redis.conf", "[Handoff]\nUnit=redis-server.service\n");
        write_test_file(dir, "nginx.conf", "[Handoff]\nUnit=nginx.service\nEnabled=no\n");

        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = describe(f);
        sd_json_variant *h = sd_json_variant_by_key(v, "handoff");
        assert_non_null(h);
        assert_int_equal(sd_json_variant_elements(h), 2);
        /* Files are read in name order: nginx.conf, redis.conf. */
        assert_str(json_string(sd_json_variant_by_index(h, 0), "unit", NULL), "nginx.service");
        assert_false(sd_json_variant_boolean(sd_json_variant_by_key(sd_json_variant_by_index(h, 0), "enabled")));
        assert_str(json_string(sd_json_variant_by_index(h, 1), "unit", NULL), "redis-server.service");

        _cleanup_(output_done) Output status = updatectl(f, 0, "status", NULL);
        assert_int_equal(status.status, 0);
        if (!strstr(status.out, "Handoff:    nginx.service (disabled) redis-server.service"))
                fail_msg("no handoff line in: %s", status.out);
}

static void test_check_available(void **state) {
        Fixture *f = *state;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        CheckReply c;
        int r;

        r = call_check(f, &error, &reply, &c);
        if (r < 0)
                fail_msg("Check failed: %s", error.message ?: strerror(-r));
        assert_true(c.available);
        assert_str(c.version, "2");
        assert_str(c.kernel, RELEASE_KERNEL);
        assert_int_equal(c.counter, 2);
        assert_int_equal(c.download_size, TREE_SIZE); /* no delta from the booted commit */

        /* The job's end was announced too. */
        const JobRemoved *j = wait_job_removed(f, 1);
        assert_str(j->operation, "check");
        assert_int_equal(j->result, 0);
        assert_contains(j->message, "offers 2: available");

        v = describe(f);
        assert_str(json_string(v, "last_check", "result"), "available");
        assert_str(json_string(v, "last_check", "version"), "2");
        assert_str(json_string(v, "operation", NULL), "idle");
        /* A check changes nothing else. */
        assert_null(sd_json_variant_by_key(v, "transaction"));
        assert_operation(f, "idle");
}

static void test_properties_changed(void **state) {
        Fixture *f = *state;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        CheckReply c;

        /* A client following the properties sees the job begin and end ... */
        assert_int_equal(call_check(f, &error, &reply, &c), 0);
        const Changed *begin = wait_operation_changed(f, "checking");
        const Changed *end = wait_operation_changed(f, "idle");
        assert_true(begin < end);
        assert_int_equal(wait_job_removed(f, 1)->result, 0);

        /* ... and, at the end, the job's step and progress cleared with it. */
        assert_str(end->step, "");
        assert_true(end->progress);
        assert_int_equal(f->n_changed, 2);
}

static void test_updatectl_check_and_status(void **state) {
        Fixture *f = *state;
        _cleanup_(output_done) Output check = updatectl(f, 0, "check", NULL);
        _cleanup_(output_done) Output status = updatectl(f, 0, "status", NULL);
        _cleanup_(output_done) Output json = updatectl(f, 0, "status", "--json");
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;

        if (check.status != 0)
                fail_msg("updatectl check exited %d: %s%s", check.status, check.out, check.err);
        assert_contains(check.out, "Update available: 2 (release 2, kernel " RELEASE_KERNEL ")");

        assert_int_equal(status.status, 0);
        assert_contains(status.out, "State:      idle");
        assert_contains(status.out, "Channel:    stable (file://");
        assert_contains(status.out, "available: 2"); /* the check just made */
        assert_contains(status.out, "● a  booted  good     1 ");
        assert_contains(status.out, "111111111111\n"); /* the commit, shortened */
        assert_contains(status.out, "    b          empty");

        assert_int_equal(json.status, 0);
        if (sd_json_parse(json.out, 0, &v, NULL, NULL) < 0)
                fail_msg("updatectl status --json printed malformed JSON: %s", json.out);
        assert_str(json_string(v, "booted", "slot"), "a");
        assert_str(json_string(v, "channel", NULL), "stable");
        assert_str(json_string(v, "last_check", "result"), "available");
}

/* A kernel string is the server's (signed, but not vetted): an escape sequence in it reaches the
 * terminal escaped, not as one. */
static void test_check_control_characters_escaped(void **state) {
        Fixture *f = *state;
        Release rel = release_2;

        rel.kernel = "6.1\033]0;owned\007\033[2J";
        publish(f, &rel);
        _cleanup_(output_done) Output check = updatectl(f, 0, "check", NULL);
        assert_int_equal(check.status, 0);
        assert_contains(check.out, "kernel 6.1\\x1b]0;owned\\x07\\x1b[2J)");
        assert_null(strchr(check.out, '\033'));
        assert_null(strchr(check.out, '\007'));
}

static void test_check_tampered(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *path = path_join2(f->channels, "stable.json"), *text = read_all(path);

        /* One byte changed after signing, in the commit the release pins. */
        char *c = strstr(text, RELEASE_COMMIT);
        assert_non_null(c);
        c[0] ^= 1;
        write_test_file(f->channels, "stable.json", text);

        check_refused(f, EKEYREJECTED, "does not match");

        _cleanup_(output_done) Output o = updatectl(f, 0, "check", NULL);
        assert_int_not_equal(o.status, 0);
        assert_contains(o.err, "Check failed: ");
        assert_contains(o.err, "does not match");
        assert_null(strstr(o.out, "Update available"));
}

static void test_check_expired(void **state) {
        Fixture *f = *state;
        Release rel = release_2;

        /* Validly signed, but stale: a mirror replaying an old manifest. */
        rel.expires = now_usec(CLOCK_REALTIME) - USEC_PER_HOUR;
        publish(f, &rel);
        /* -ETIME travels as org.freedesktop.DBus.Error.Timeout (sd-bus names ETIME and ETIMEDOUT
         * alike), so only the message tells the two apart. */
        check_refused(f, 0, "expired");
}

static void test_check_rollback(void **state) {
        Fixture *f = *state;

        /* Release 5 was accepted once; the server now offers 2 again. */
        write_slots(f, 5);
        check_refused(f, ESTALE, "lower than 5");
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = describe(f);
        assert_contains(json_string(v, "last_check", "message"), "rollback");
}

static void test_check_other_os(void **state) {
        Fixture *f = *state;
        Release rel = release_2;

        /* Signed by a trusted key, for this channel, but for another OS. */
        rel.os = "other-os";
        publish(f, &rel);
        check_refused(f, EXDEV, "Manifest is for OS 'other-os', this system runs 'dreamlink-test'");

        /* Without an os-release nothing can be told apart: refused too. */
        _cleanup_free_ char *etc = path_join2(f->root, "etc/os-release");
        assert_int_equal(unlink(etc), 0);
        publish(f, &release_2);
        check_refused(f, ENOENT, "Cannot tell which OS this system runs");
}

/* The floor is the highest counter ever verified, not staged: a check of release 5 that was never
 * staged still refuses release 2 afterwards. */
static void test_check_raises_rollback_floor(void **state) {
        Fixture *f = *state;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = path_join2(f->state, "slots.json");
        _cleanup_(slot_table_done) SlotTable t = {};
        CheckReply c;

        publish(f, &(Release) { .version = "5", .counter = 5, .commit = RELEASE_COMMIT });
        assert_int_equal(call_check(f, &error, &reply, &c), 0);
        assert_int_equal(c.counter, 5);
        assert_int_equal(slot_table_load(path, &t), 0);
        assert_int_equal(t.highest_counter, 5);

        publish(f, &release_2);
        check_refused(f, ESTALE, "lower than 5");
}

static void test_cancel_without_job(void **state) {
        Fixture *f = *state;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        assert_true(sd_bus_call_method(f->bus, NAME, OBJECT, INTERFACE, "Cancel", &error, NULL, "") < 0);
        assert_true(sd_bus_error_has_name(&error, SD_BUS_ERROR_FAILED));
        assert_str(error.message, "No job is running.");

        _cleanup_(output_done) Output o = updatectl(f, 0, "cancel", NULL);
        assert_int_not_equal(o.status, 0);
        assert_contains(o.err, "No job is running.");
        assert_operation(f, "idle");
}

static void test_stage_fails(void **state) {
        Fixture *f = *state;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;

        /* Returns the job's id at once; the worker then fails where this environment falls short of a
         * machine: making its mounts private where "/" is no mount point (a plain chroot), or else
         * the pull (there is no repo/ on the server). Either way the job ends with a reason. */
        uint32_t id = call_stage(f, "", &error);
        if (id == 0)
                fail_msg("Stage failed: %s", error.message);
        const JobRemoved *j = wait_job_removed(f, id);
        print_message("stage failed as expected: %s (%d)\n", j->message, j->result);
        assert_str(j->operation, "stage");
        assert_true(j->result < 0);
        assert_true(!isempty(j->message));
        assert_operation(f, "idle");

        /* Nothing was written: the slots are as they were, and a transaction, if one was begun, is
         * recorded as failed, with the same reason. */
        v = describe(f);
        assert_str(json_string(v, "operation", NULL), "idle");
        sd_json_variant *slots = sd_json_variant_by_key(v, "slots");
        assert_str(json_string(sd_json_variant_by_key(slots, "a"), "state", NULL), "good");
        assert_str(json_string(sd_json_variant_by_key(slots, "b"), "state", NULL), "empty");
        if (sd_json_variant_by_key(v, "transaction")) {
                assert_str(json_string(v, "transaction", "operation"), "stage");
                assert_str(json_string(v, "transaction", "outcome"), "failed");
                assert_str(json_string(v, "transaction", "to_slot"), "b");
                assert_str(json_string(v, "transaction", "error"), j->message);
        }

        /* updatectl stage reports the failure and exits non-zero. */
        _cleanup_(output_done) Output o = updatectl(f, 0, "stage", NULL);
        assert_int_not_equal(o.status, 0);
        assert_contains(o.err, "Staging failed: ");

        /* The daemon takes the next job. */
        sd_bus_error_free(&error);
        uint32_t id2 = call_stage(f, "", &error);
        assert_int_equal(id2, id + 2);
        assert_true(wait_job_removed(f, id2)->result < 0);
        assert_operation(f, "idle");
}

/* A real release repository on the file:// server: a tree whose commit boots KERNEL, published as
 * release 2 (whose manifest always promises RELEASE_KERNEL). */
static void publish_real_release(Fixture *f, const char *kernel) {
        _cleanup_(image_repo_unrefp) OstreeRepo *repo = NULL;
        _cleanup_free_ char *tree = path_join2(f->dir, "tree"), *repo_path = path_join2(f->root, "srv/repo"),
                            *checksum = NULL, *vmlinuz = NULL, *initrd = NULL;

        _cleanup_free_ char *boot = path_join2(tree, "boot"), *lib = path_join2(tree, "usr/lib");
        assert_int_equal(mkdir_p(boot, 0755), 0);
        assert_int_equal(mkdir_p(lib, 0755), 0);
        assert_true(asprintf(&vmlinuz, "boot/vmlinuz-%s", kernel) > 0);
        assert_true(asprintf(&initrd, "boot/initrd.img-%s", kernel) > 0);
        write_test_file(tree, vmlinuz, "MZ fake kernel\n");
        write_test_file(tree, initrd, "fake initramfs\n");
        write_test_file(tree, "usr/lib/os-release", "ID=dreamlink-test\n");
        ImageCommit c = { .tree = tree, .branch = "dreamlink/test/x86_64/stable", .version = "2", .os_name = "dreamlink-test" };
        assert_int_equal(image_repo_open(repo_path, true, &repo), 0);
        assert_int_equal(image_repo_commit(repo, &c, &checksum), 0);
        publish(f, &(Release) { .version = "2", .counter = 2, .commit = checksum });
}

static const JobRemoved *stage_and_wait(Fixture *f) {
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t id = call_stage(f, "", &error);
        if (id == 0)
                fail_msg("Stage failed: %s", error.message);
        return wait_job_removed(f, id);
}

static void assert_stage_failed_slot_b(Fixture *f, const JobRemoved *j, const char *slot_state) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = describe(f);
        sd_json_variant *slots = sd_json_variant_by_key(v, "slots");
        assert_str(json_string(sd_json_variant_by_key(slots, "b"), "state", NULL), slot_state);
        assert_str(json_string(v, "transaction", "outcome"), "failed");
        assert_str(json_string(v, "transaction", "error"), j->message);
}

/* A commit that boots another kernel than its signed manifest promises is refused once pulled,
 * before the passive slot is touched. */
static void test_stage_kernel_mismatch(void **state) {
        Fixture *f = *state;

        publish_real_release(f, "7.0.0-real"); /* signed, valid, and wrong about the kernel */
        const JobRemoved *j = stage_and_wait(f);
        assert_int_equal(j->result, -EBADMSG);
        assert_contains(j->message, "carries kernel 7.0.0-real, the manifest promised " RELEASE_KERNEL ".");
        assert_stage_failed_slot_b(f, j, "empty");
}

/* A passive slot smaller than the unpacked tree is refused once the commit is pulled, before the
 * slot is wiped: what it held stays. */
static void test_stage_slot_too_small(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *dev = path_join2(f->root, "dev/disk/by-partlabel"), *image = NULL;
        _cleanup_free_ char *content = NULL;

        publish_real_release(f, RELEASE_KERNEL);
        assert_int_equal(mkdir_p(dev, 0755), 0);
        /* 16 KiB: less than the tree's directories alone, at a block each. */
        char old[16384];
        memset(old, 'x', sizeof(old));
        old[sizeof(old) - 1] = 0;
        write_test_file(dev, "root-b", old);

        const JobRemoved *j = stage_and_wait(f);
        assert_int_equal(j->result, -ENOSPC);
        assert_contains(j->message, "The passive slot ");
        assert_contains(j->message, "root-b holds 16.0K, 2 needs at least ");
        assert_contains(j->message, "it does not fit, the slot is left as it is.");
        assert_stage_failed_slot_b(f, j, "empty");
        image = path_join2(dev, "root-b");
        assert_int_equal(read_file_limited(image, 1 << 20, &content, NULL), 0);
        assert_string_equal(content, old); /* no mkfs */
}

/* A release larger than /var can hold is refused before anything is downloaded, saying how much
 * is missing; nothing is written. */
static void test_stage_refused_without_space(void **state) {
        Fixture *f = *state;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;

        /* Signed, valid, and 1 EiB: no test machine has that free. */
        publish(f, &(Release) { .version = "2", .counter = 2, .commit = RELEASE_COMMIT, .tree_size = UINT64_C(1) << 60 });
        uint32_t id = call_stage(f, "", &error);
        if (id == 0)
                fail_msg("Stage failed: %s", error.message);
        const JobRemoved *j = wait_job_removed(f, id);
        assert_int_equal(j->result, -ENOSPC);
        assert_contains(j->message, "Staging 2 needs ");
        assert_contains(j->message, " free in ");
        assert_contains(j->message, " more.");

        v = describe(f);
        sd_json_variant *slots = sd_json_variant_by_key(v, "slots");
        assert_str(json_string(sd_json_variant_by_key(slots, "b"), "state", NULL), "empty");
        assert_str(json_string(v, "transaction", "outcome"), "failed");
        assert_str(json_string(v, "transaction", "error"), j->message);
        _cleanup_free_ char *repo = path_join2(f->state, "repo");
        assert_int_equal(access(repo, F_OK) < 0 ? errno : 0, ENOENT); /* not even the repository was opened */
}

static void test_stage_busy_and_cancel(void **state) {
        Fixture *f = *state;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL, error2 = SD_BUS_ERROR_NULL,
                                               error3 = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        CheckReply c;

        /* The server accepts the connection and never answers: the job runs until cancelled. */
        uint32_t id = call_stage(f, "", &error);
        if (id == 0)
                fail_msg("Stage failed: %s", error.message);
        assert_operation(f, "staging");

        /* One job at a time, whatever the second one is. */
        assert_int_equal(call_stage(f, "", &error2), 0);
        assert_true(sd_bus_error_has_name(&error2, SD_BUS_ERROR_FAILED));
        assert_str(error2.message, "Busy: a stage job is running.");
        assert_true(call_check(f, &error3, &reply, &c) < 0);
        assert_str(error3.message, "Busy: a stage job is running.");
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = describe(f);
        assert_str(json_string(v, "operation", NULL), "staging");

        _cleanup_(output_done) Output o = updatectl(f, 0, "stage", NULL);
        assert_int_not_equal(o.status, 0);
        assert_contains(o.err, "Busy: a stage job is running.");

        /* Cancel ends it, and says so. */
        assert_true(sd_bus_call_method(f->bus, NAME, OBJECT, INTERFACE, "Cancel", NULL, NULL, "") >= 0);
        const JobRemoved *j = wait_job_removed(f, id);
        assert_int_equal(j->result, -ECANCELED);
        assert_contains(j->message, "Cancelled");
        assert_operation(f, "idle");
        assert_int_equal(f->n_jobs, 1);
}

/* Slow retrieval: a server that never answers is given up at DownloadTimeout=, and says so, in a
 * check (updatectl status shows it) and in a stage. */
static void test_download_wall_clock_limit(void **state) {
        Fixture *f = *state;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        check_refused(f, 0, "exceeded its wall-clock limit of 2.0s (DownloadTimeout=)");
        _cleanup_(output_done) Output status = updatectl(f, 0, "status", NULL);
        assert_contains(status.out, "exceeded its wall-clock limit of 2.0s");

        uint32_t id = call_stage(f, "", &error);
        if (id == 0)
                fail_msg("Stage failed: %s", error.message);
        const JobRemoved *j = wait_job_removed(f, id);
        assert_int_equal(j->result, -ETIMEDOUT);
        assert_contains(j->message, "exceeded its wall-clock limit of 2.0s (DownloadTimeout=)");
        assert_operation(f, "idle");
}

static void test_stage_already_running(void **state) {
        Fixture *f = *state;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        CheckReply c;

        /* The channel offers what slot a runs. */
        publish(f, &(Release) { .version = "1", .counter = 1, .commit = BOOTED_COMMIT });

        assert_int_equal(call_check(f, &error, &reply, &c), 0);
        assert_false(c.available);
        assert_str(c.version, "1");
        _cleanup_(output_done) Output o = updatectl(f, 0, "check", NULL);
        assert_int_equal(o.status, 0);
        assert_contains(o.out, "Up to date: the channel offers 1");

        uint32_t id = call_stage(f, "", &error);
        if (id == 0)
                fail_msg("Stage failed: %s", error.message);
        const JobRemoved *j = wait_job_removed(f, id);
        assert_int_equal(j->result, 0);
        assert_contains(j->message, "already runs");
        assert_operation(f, "idle");

        /* Nothing was started: no transaction, slot b untouched. */
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = describe(f);
        assert_null(sd_json_variant_by_key(v, "transaction"));
        sd_json_variant *b = sd_json_variant_by_key(sd_json_variant_by_key(v, "slots"), "b");
        assert_str(json_string(b, "state", NULL), "empty");

        /* updatectl stage says the same, successfully. */
        _cleanup_(output_done) Output s = updatectl(f, 0, "stage", NULL);
        assert_int_equal(s.status, 0);
        assert_contains(s.out, "This system already runs 1.");
}

static void test_stage_other_version(void **state) {
        Fixture *f = *state;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        /* Only the channel's current release can be staged. */
        uint32_t id = call_stage(f, "7", &error);
        if (id == 0)
                fail_msg("Stage failed: %s", error.message);
        const JobRemoved *j = wait_job_removed(f, id);
        assert_int_equal(j->result, -ENOENT);
        assert_str(j->message, "Channel stable offers 2, not 7.");
        assert_operation(f, "idle");
}

static void test_unprivileged(void **state) {
        Fixture *f = *state;

        /* Anyone may look ... */
        _cleanup_(output_done) Output status = updatectl(f, 65534, "status", NULL);
        assert_int_equal(status.status, 0);
        assert_contains(status.out, "Channel:    stable");

        /* ... only root may change anything. */
        _cleanup_(output_done) Output check = updatectl(f, 65534, "check", NULL);
        assert_int_not_equal(check.status, 0);
        assert_contains(check.err, "permission denied");
        _cleanup_(output_done) Output stage = updatectl(f, 65534, "stage", NULL);
        assert_int_not_equal(stage.status, 0);
        assert_contains(stage.err, "permission denied");
        assert_int_equal(f->n_jobs, 0);

        /* Refused before a job was started: nothing was checked. */
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = describe(f);
        assert_null(sd_json_variant_by_key(v, "last_check"));
}

static void test_state_survives_restart(void **state) {
        Fixture *f = *state;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        CheckReply c;

        assert_int_equal(call_check(f, &error, &reply, &c), 0);
        assert_int_equal(stop_process(f->updaterd_pid), 0);
        f->updaterd_pid = 0;
        assert_int_equal(start_updaterd(f), 0);

        /* What status shows is read from disk: the same after a restart. */
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = describe(f);
        assert_str(json_string(v, "last_check", "result"), "available");
        assert_str(json_string(v, "last_check", "version"), "2");
        assert_str(json_string(v, "booted", "version"), "1");
}

/* A local repository an earlier version made 0755 (every release's set-uid binaries open to all)
 * is root only once updaterd runs, not only from the next stage on. */
static void test_repo_root_only_after_start(void **state) {
        Fixture *f = *state;

        assert_int_equal(stop_process(f->updaterd_pid), 0);
        f->updaterd_pid = 0;
        make_test_dir(f->state, "repo", 0755);
        assert_int_equal(start_updaterd(f), 0);
        assert_int_equal(test_mode_of(f->state, "repo"), 0700);
}

/* Commit and rollback refuse what cannot be switched to, with what to do instead, and
 * touch nothing: they fail before any transaction begins. */
static void test_commit_and_rollback_refused(void **state) {
        Fixture *f = *state;

        _cleanup_(output_done) Output commit = updatectl(f, 0, "commit", NULL);
        assert_int_equal(commit.status, 1);
        assert_contains(commit.err, "Commit failed: Nothing is staged: run updatectl stage first.");
        _cleanup_(output_done) Output rollback = updatectl(f, 0, "rollback", NULL);
        assert_int_equal(rollback.status, 1);
        assert_contains(rollback.err, "Rollback failed: Slot b is empty, not a known good system: there is nothing to roll back to.");
        _cleanup_(output_done) Output extra = updatectl(f, 0, "commit", "now");
        assert_int_equal(extra.status, 1);
        assert_contains(extra.err, "Commit takes no arguments.");

        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = describe(f);
        assert_null(sd_json_variant_by_key(v, "transaction"));
        assert_operation(f, "idle");
}

/* status lists the finished transactions, with what became of each handed-off service. */
static void test_status_shows_history(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *dir = path_join2(f->state, "history");
        _cleanup_(transaction_freep) Transaction *t = NULL, *u = NULL;
        _cleanup_free_ char *pt = NULL, *pu = NULL;

        assert_int_equal(mkdir_p(dir, 0755), 0);
        assert_int_equal(transaction_new(TRANSACTION_COMMIT, SLOT_A, SLOT_B, &t), 0);
        t->from_version = strdup("1");
        t->to_version = strdup("2");
        assert_int_equal(transaction_set_service(t, "redis-server.service", "restored"), 0);
        assert_int_equal(transaction_set_service(t, "session-3.scope", "restored"), 0);
        assert_int_equal(transaction_finish(t, OUTCOME_SUCCEEDED, NULL), 0);
        assert_int_equal(transaction_new(TRANSACTION_ROLLBACK, SLOT_B, SLOT_A, &u), 0);
        u->from_version = strdup("2");
        u->to_version = strdup("1");
        u->started = t->started + 1;
        assert_int_equal(transaction_finish(u, OUTCOME_FAILED, "interrupted before the switch"), 0);
        assert_true(asprintf(&pt, "%s/%016" PRIx64 "-%s.json", dir, t->started, t->id) > 0);
        assert_true(asprintf(&pu, "%s/%016" PRIx64 "-%s.json", dir, u->started, u->id) > 0);
        assert_int_equal(transaction_save(t, pt), 0);
        assert_int_equal(transaction_save(u, pu), 0);

        _cleanup_(output_done) Output status = updatectl(f, 0, "status", NULL);
        assert_int_equal(status.status, 0);
        assert_contains(status.out, "History:\n");
        assert_contains(status.out, "commit   a (1) → b (2)  succeeded\n      redis-server.service restored, session-3.scope restored\n");
        assert_contains(status.out, "rollback b (2) → a (1)  failed: interrupted before the switch\n");
        /* oldest first */
        assert_true(strstr(status.out, "commit   a (1)") < strstr(status.out, "rollback b (2)"));
}

/* A machine where release 2 was staged into slot b and nothing has tried it yet, with
 * MORE_CONF added to updaterd.conf; updaterd is restarted to read it all. */
static void staged_and_restarted(Fixture *f, const char *more_conf) {
        _cleanup_free_ char *slots = path_join2(f->state, "slots.json"), *txn_path = path_join2(f->state, "transaction.json"),
                            *conf_path = path_join2(f->root, "etc/dreamlink/updaterd.conf"), *conf = read_all(conf_path),
                            *etc = path_join2(f->root, "etc/dreamlink"), *new_conf = NULL;
        _cleanup_(slot_table_done) SlotTable t = {};
        _cleanup_(transaction_freep) Transaction *txn = NULL;

        assert_int_equal(stop_process(f->updaterd_pid), 0);
        f->updaterd_pid = 0;
        assert_int_equal(slot_table_load(slots, &t), 0);
        assert_int_equal(slot_mark_writing(&t, SLOT_B, SLOT_A), 0);
        assert_int_equal(slot_mark_staged(&t, SLOT_B, "2", RELEASE_COMMIT, 2, RELEASE_KERNEL), 0);
        assert_int_equal(slot_table_save(&t, slots), 0);
        assert_int_equal(transaction_new(TRANSACTION_STAGE, SLOT_A, SLOT_B, &txn), 0);
        assert_int_equal(transaction_finish(txn, OUTCOME_SUCCEEDED, NULL), 0);
        assert_int_equal(transaction_save(txn, txn_path), 0);
        /* No handoff: nothing of this (host) machine's services is looked at. */
        assert_true(asprintf(&new_conf, "%sAutoCommit=yes\n%s\n[Handoff]\nEnabled=no\n", conf, more_conf) > 0);
        write_test_file(etc, "updaterd.conf", new_conf);
        assert_int_equal(start_updaterd(f), 0);
}

/* A stage record of release 2 into slot b, in progress at STEP, with slot b as SLOT_STATE says. */
static Transaction *interrupted_stage(Fixture *f, SlotState slot_state, TransactionStep step) {
        _cleanup_free_ char *slots = path_join2(f->state, "slots.json"), *txn_path = path_join2(f->state, "transaction.json");
        _cleanup_(slot_table_done) SlotTable t = {};
        Transaction *txn = NULL;

        assert_int_equal(slot_table_load(slots, &t), 0);
        assert_int_equal(slot_mark_writing(&t, SLOT_B, SLOT_A), 0);
        if (slot_state == SLOT_STATE_STAGED)
                assert_int_equal(slot_mark_staged(&t, SLOT_B, "2", RELEASE_COMMIT, 2, RELEASE_KERNEL), 0);
        assert_int_equal(slot_table_save(&t, slots), 0);
        assert_int_equal(transaction_new(TRANSACTION_STAGE, SLOT_A, SLOT_B, &txn), 0);
        txn->from_version = strdup("1");
        txn->to_version = strdup("2");
        txn->to_commit = strdup(RELEASE_COMMIT);
        assert_int_equal(transaction_set_step(txn, step), 0);
        assert_int_equal(transaction_save(txn, txn_path), 0);
        return txn;
}

/* A power cut between the stage's slots.json (staged) and the close of its record: the next stage
 * finds the release staged and closes the record it left, instead of leaving it in progress. */
static void test_stage_closes_interrupted_record(void **state) {
        Fixture *f = *state;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(transaction_freep) Transaction *txn = interrupted_stage(f, SLOT_STATE_STAGED, STEP_SLOT_WRITTEN);

        uint32_t id = call_stage(f, "", &error);
        if (id == 0)
                fail_msg("Stage failed: %s", error.message);
        const JobRemoved *j = wait_job_removed(f, id);
        assert_int_equal(j->result, 0);
        assert_str(j->message, "2 is already staged in slot b.");

        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = describe(f);
        assert_str(json_string(v, "transaction", "id"), txn->id);
        assert_str(json_string(v, "transaction", "outcome"), "succeeded");
        assert_str(json_string(v, "transaction", "step"), "done");
        _cleanup_(output_done) Output status = updatectl(f, 0, "status", NULL);
        assert_contains(status.out, "stage    a (1) → b (2)  succeeded");
}

/* A cancelled stage (the worker killed) ends its record as cancelled, and only its own. */
static void test_stage_cancel_recorded(void **state) {
        Fixture *f = *state;
        _cleanup_(transaction_freep) Transaction *txn = interrupted_stage(f, SLOT_STATE_WRITING, STEP_PULLED), *after = NULL;
        _cleanup_free_ char *txn_path = path_join2(f->state, "transaction.json");
        UpdaterConfig c = { .state_dir = (char *) "/var/lib/dreamlink" };

        assert_int_equal(record_stage_cancelled(f->root, &c, "00000000000000000000000000000000"), 0);
        assert_int_equal(record_stage_cancelled(f->root, &c, txn->id), 1);
        assert_int_equal(transaction_load(txn_path, &after), 0);
        assert_int_equal(after->outcome, OUTCOME_CANCELLED);
        assert_int_equal(after->step, STEP_PULLED);
        assert_contains(after->error, "cancelled");
        assert_int_equal(record_stage_cancelled(f->root, &c, txn->id), 0); /* once */

        _cleanup_(output_done) Output status = updatectl(f, 0, "status", NULL);
        assert_contains(status.out, "stage    a (1) → b (2)  cancelled: cancelled");
        /* Not in progress any more: the next stage starts a transaction of its own. */
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = describe(f);
        assert_str(json_string(v, "transaction", "outcome"), "cancelled");
}

/* AutoCommit=yes: a staged release is committed without being asked, once: a commit
 * that fails (here, as there is no slot b to switch to) is not tried again by itself. */
static void test_auto_commit(void **state) {
        Fixture *f = *state;

        staged_and_restarted(f, "");
        const JobRemoved *j = wait_job_removed(f, 1);
        assert_str(j->operation, "commit");
        assert_true(j->result < 0);
        (void) sd_bus_wait(f->bus, 2 * USEC_PER_SEC);
        (void) sd_bus_process(f->bus, NULL);
        assert_operation(f, "idle");
        assert_int_equal(f->n_jobs, 1);
        _cleanup_(output_done) Output status = updatectl(f, 0, "status", NULL);
        assert_contains(status.out, "Auto-commit: yes\n");
}

/* AutoCommitWindow=: outside the window the commit waits for it to open, and says when. */
static void test_auto_commit_window(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *conf = NULL;
        time_t now = time(NULL);
        struct tm tm;

        /* A window that opens two hours from now (local time), for an hour. */
        assert_non_null(localtime_r(&now, &tm));
        unsigned start = (unsigned) ((tm.tm_hour + 2) % 24 * 60 + tm.tm_min), end = (start + 60) % (24 * 60);
        assert_true(asprintf(&conf, "AutoCommitWindow=%02u:%02u-%02u:%02u", start / 60, start % 60, end / 60, end % 60) > 0);
        staged_and_restarted(f, conf);

        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = describe(f);
        sd_json_variant *ac = sd_json_variant_by_key(v, "auto_commit");
        assert_non_null(ac);
        assert_str(json_string(ac, "window", NULL), conf + strlen("AutoCommitWindow="));
        uint64_t next = sd_json_variant_unsigned(sd_json_variant_by_key(ac, "next_usec"));
        usec_t expected = (usec_t) (now - tm.tm_sec + 2 * 3600) * USEC_PER_SEC;
        /* ±1 h: a daylight saving change may lie in between. */
        assert_true(next + USEC_PER_HOUR >= expected && next <= expected + USEC_PER_HOUR);
        assert_operation(f, "idle");
        assert_int_equal(f->n_jobs, 0);
        _cleanup_(output_done) Output status = updatectl(f, 0, "status", NULL);
        assert_contains(status.out, "Auto-commit: yes, window ");
        assert_contains(status.out, "(local time); the staged release is committed at ");
}

/* [Fleet] Strategy=fleetlock against a FleetLock server where another machine holds the only
 * slot: the automatic commit waits, saying why, switches nothing and can be cancelled; the slot
 * it may have been given meanwhile is given back; once the slot is free the commit goes on, and
 * its slot is given back when it fails here. */
static void test_commit_waits_for_fleet_slot(void **state) {
        Fixture *f = *state;
        _cleanup_http_server_ HttpServer *server = NULL;
        _cleanup_free_ char *url = NULL, *conf = NULL, *turn = path_join2(f->state, FLEET_TURN_FILE);
        _cleanup_free_ char *error = NULL;
        LockServer lock = { .max = 1, .group = (char *) "web" };

        assert_int_equal(strv_extend(&lock.holders, "other"), 0);
        assert_int_equal(http_server_start(f->dir, NULL, NULL, &server), 0);
        http_server_set_post_handler(server, fleetlock_server_handler, &lock);
        url = http_server_url(server, "");
        assert_true(asprintf(&conf, "[Fleet]\nStrategy=fleetlock\nEndpoints=%s\nGroup=web\nID=m1\n", url) > 0);
        staged_and_restarted(f, conf);

        /* AutoCommit=yes started the commit: it waits, and says why. */
        wait_step_changed(f, "waiting for a fleet slot: the FleetLock server said no: ");
        assert_operation(f, "committing");
        _cleanup_(output_done) Output status = updatectl(f, 0, "status", NULL);
        assert_contains(status.out, "State:      committing, step waiting for a fleet slot: the FleetLock server said no: ");
        assert_contains(status.out, "failed_lock: semaphore currently held by other");
        assert_contains(status.out, "Fleet:      fleetlock, group web; waiting for a fleet slot since ");
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = describe(f);
        assert_str(json_string(v, "transaction", "operation"), "stage"); /* no switch started */
        assert_str(json_string(sd_json_variant_by_key(v, "fleet"), "turn", "state"), "waiting");

        /* Nothing is touched yet: the wait can be cancelled. */
        _cleanup_(output_done) Output cancel = updatectl(f, 0, "cancel", NULL);
        assert_int_equal(cancel.status, 0);
        const JobRemoved *j = wait_job_removed(f, 1);
        assert_str(j->operation, "commit");
        assert_int_equal(j->result, -ECANCELED);
        assert_str(j->message, "Cancelled while waiting for a fleet slot; nothing was switched.");
        /* An answer lost with the worker may have given it the slot: it is given back. */
        j = wait_job_removed(f, 2);
        assert_str(j->operation, "fleet-release");
        assert_int_equal(j->result, 0);
        assert_int_equal(access(turn, F_OK), -1);
        assert_true(lock.steady_state >= 1);

        /* The other machine is done: the commit takes the slot and goes on, fails here (no disks),
         * and its slot is given back. */
        char *servers[] = { url, NULL };
        assert_int_equal(fleetlock_steady_state(servers, &(HttpJsonOptions) {}, "web", "other", &error), 1);
        unsigned asked = lock.pre_reboot;
        _cleanup_(output_done) Output commit = updatectl(f, 0, "commit", NULL);
        assert_int_equal(commit.status, 1);
        assert_true(lock.pre_reboot == asked + 1);
        j = wait_job_removed(f, 4);
        assert_str(j->operation, "fleet-release");
        assert_int_equal(j->result, 0);
        assert_null(lock.holders[0]);
        assert_int_equal(access(turn, F_OK), -1);
        assert_int_equal(lock.bad_requests, 0);
        http_server_stop(TAKE_PTR(server));
        strv_free(lock.holders);
}

/* A slot held by a switch whose boot check has not run yet is kept; once a slot is blessed (here
 * the old one, after the target never came up) it is given back. */
static void test_fleet_slot_kept_until_blessed(void **state) {
        Fixture *f = *state;
        _cleanup_http_server_ HttpServer *server = NULL;
        _cleanup_free_ char *url = NULL, *conf = NULL, *turn = path_join2(f->state, FLEET_TURN_FILE),
                            *txn_path = path_join2(f->state, "transaction.json");
        _cleanup_(transaction_freep) Transaction *txn = NULL;
        LockServer lock = { .max = 1, .group = (char *) "web" };

        assert_int_equal(strv_extend(&lock.holders, "m1"), 0);
        assert_int_equal(http_server_start(f->dir, NULL, NULL, &server), 0);
        http_server_set_post_handler(server, fleetlock_server_handler, &lock);
        url = http_server_url(server, "");
        assert_int_equal(stop_process(f->updaterd_pid), 0);
        f->updaterd_pid = 0;
        _cleanup_free_ char *conf_path = path_join2(f->root, "etc/dreamlink/updaterd.conf"), *old = read_all(conf_path),
                            *etc = path_join2(f->root, "etc/dreamlink");
        assert_true(asprintf(&conf, "%s[Handoff]\nEnabled=no\n[Fleet]\nStrategy=fleetlock\nEndpoints=%s\nGroup=web\nID=m1\n"
                             "RetrySec=1h\n", old, url) > 0);
        write_test_file(etc, "updaterd.conf", conf);

        /* Power cut after the switch to slot b: the record is at step switching, the slot held. */
        assert_int_equal(write_string_file_atomic(turn, "{\"version\":1,\"state\":\"held\",\"strategy\":\"fleetlock\","
                                                        "\"group\":\"web\",\"id\":\"m1\",\"since\":1}", 0644), 0);
        assert_int_equal(transaction_new(TRANSACTION_COMMIT, SLOT_A, SLOT_B, &txn), 0);
        assert_int_equal(transaction_set_step(txn, STEP_SWITCHING), 0);
        assert_int_equal(transaction_save(txn, txn_path), 0);
        assert_int_equal(start_updaterd(f), 0);
        /* Decided before the daemon answers its first call: nothing is given back. */
        assert_operation(f, "idle");
        _cleanup_(output_done) Output status = updatectl(f, 0, "status", NULL);
        assert_contains(status.out, "holds a slot of group web as m1 since ");
        assert_int_equal(lock.steady_state, 0);

        /* Slot b never came up; back on slot a, the boot check closed the switch. */
        assert_int_equal(stop_process(f->updaterd_pid), 0);
        f->updaterd_pid = 0;
        assert_int_equal(transaction_finish(txn, OUTCOME_FAILED, "slot b did not come up"), 0);
        assert_int_equal(transaction_save(txn, txn_path), 0);
        assert_int_equal(start_updaterd(f), 0);
        const JobRemoved *j = wait_job_removed(f, 1);
        assert_str(j->operation, "fleet-release");
        assert_int_equal(j->result, 0);
        assert_int_equal(lock.steady_state, 1);
        assert_null(lock.holders[0]);
        assert_int_equal(access(turn, F_OK), -1);
        http_server_stop(TAKE_PTR(server));
        strv_free(lock.holders);
}

/* A rollout through a real etcd cluster: MACHINES machines, each its own updaterd on its own bus
 * and test root with a release staged and AutoCommit=yes, in a group of 2 slots. While etcd has no
 * quorum nobody switches; while two other machines hold both slots nobody switches; then, with the
 * leader killed as the slots come free, each takes a slot, commits (which fails here, without
 * disks), and gives it back, never more than 2 at a time (etcd's history of the key says so). */
#define ROLLOUT_MACHINES 5
#define ROLLOUT_SLOTS 2

/* Gives a blocker's slot back while etcd elects a new leader: the members left answer nothing
 * until it has one, however long that takes on a busy machine. A try whose answer was lost may
 * have gone through: then the next finds the slot already free. */
static void etcd_release_until_answered(EtcdClient *e, const char *group, const char *id) {
        for (unsigned attempt = 0;; attempt++) {
                _cleanup_free_ char *error = NULL;
                int r = fleet_etcd_release(e, group, id, NULL, &error);
                if (r == 1 || (r == 0 && attempt > 0))
                        return;
                if (r == 0)
                        fail_msg("%s held no slot of group %s", id, group);
                /* As etcd_cluster_wait_for_quorum(): a cluster that will not come back, not a slow one. */
                if (attempt >= 600)
                        fail_msg("etcd did not answer after its leader was killed: %s", strna(error));
                (void) usleep(200 * 1000);
        }
}

/* Until every machine's commit (job 1) and slot release (job 2) are done. The machines go at etcd's
 * pace, two at a time: the bound is on a stretch without any job ending, not on the whole rollout. */
static void wait_rollout_done(Fixture **machines, size_t n) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + JOB_TIMEOUT;
        size_t done_before = 0;

        for (;;) {
                size_t done = 0;
                for (size_t i = 0; i < n; i++) {
                        int r;
                        while ((r = sd_bus_process(machines[i]->bus, NULL)) > 0)
                                ;
                        assert_true(r >= 0);
                        done += machines[i]->n_jobs;
                }
                if (done >= 2 * n)
                        return;
                usec_t now = now_usec(CLOCK_MONOTONIC);
                if (done > done_before) {
                        done_before = done;
                        end = now + JOB_TIMEOUT;
                } else if (now >= end)
                        fail_msg("The rollout stopped: %zu of %zu jobs ended, none in the last %u s", done, 2 * n,
                                 (unsigned) (JOB_TIMEOUT / USEC_PER_SEC));
                (void) usleep(50 * 1000);
        }
}

static void test_fleet_rollout_etcd(void **state) {
        EtcdCluster cluster = {};
        Fixture *machines[ROLLOUT_MACHINES] = {};
        _cleanup_free_ char *error = NULL;
        const char *blockers[] = { "machine-5", "machine-6" }; /* ids the history check counts */

        assert_int_equal(etcd_cluster_start(&cluster, getenv("ETCD")), 0);
        EtcdClient e = etcd_cluster_client(&cluster);
        for (size_t i = 0; i < ELEMENTSOF(blockers); i++)
                assert_int_equal(fleet_etcd_acquire(&e, "rollout", blockers[i], ROLLOUT_SLOTS, NULL, &error), 1);
        etcd_cluster_member_kill(&cluster, 1);
        etcd_cluster_member_kill(&cluster, 2);

        for (int i = 0; i < ROLLOUT_MACHINES; i++) {
                _cleanup_free_ char *conf = NULL;
                void *st = NULL;
                assert_int_equal(setup(&st), 0);
                machines[i] = st;
                assert_true(asprintf(&conf, "[Fleet]\nStrategy=etcd\nEndpoints=%s %s %s\nGroup=rollout\nID=machine-%d\n"
                                     "Slots=%d\nRetrySec=1s\n", cluster.endpoints[0], cluster.endpoints[1],
                                     cluster.endpoints[2], i, ROLLOUT_SLOTS) > 0);
                staged_and_restarted(machines[i], conf);
        }
        /* No quorum: every commit waits, none has started a switch. */
        for (int i = 0; i < ROLLOUT_MACHINES; i++) {
                wait_step_changed(machines[i], "waiting for a fleet slot: etcd does not answer: ");
                _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = describe(machines[i]);
                assert_str(json_string(v, "transaction", "operation"), "stage");
        }
        assert_int_equal(etcd_cluster_member_start(&cluster, 1), 0);
        assert_int_equal(etcd_cluster_member_start(&cluster, 2), 0);
        assert_int_equal(etcd_cluster_wait_for_quorum(&cluster), 0);
        /* Quorum again, and both slots held by others: still nobody switches. */
        for (int i = 0; i < ROLLOUT_MACHINES; i++) {
                wait_step_changed(machines[i], "waiting for a fleet slot: all 2 slots of group rollout are taken: machine-5, machine-6");
                _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = describe(machines[i]);
                assert_str(json_string(v, "transaction", "operation"), "stage");
        }
        /* The leader dies as the slots come free: two members are a quorum, the rollout goes on. */
        int leader = etcd_cluster_leader(&cluster);
        assert_true(leader >= 0);
        etcd_cluster_member_kill(&cluster, leader);
        for (size_t i = 0; i < ELEMENTSOF(blockers); i++)
                etcd_release_until_answered(&e, "rollout", blockers[i]);

        /* Each commits in turn and gives its slot back. */
        wait_rollout_done(machines, ROLLOUT_MACHINES);
        for (int i = 0; i < ROLLOUT_MACHINES; i++) {
                const JobRemoved *commit = wait_job_removed(machines[i], 1), *release = wait_job_removed(machines[i], 2);
                assert_str(commit->operation, "commit");
                assert_contains(commit->message, "Failed to mount slot b");
                assert_str(release->operation, "fleet-release");
                assert_int_equal(release->result, 0);
        }
        _cleanup_(etcd_history_done) EtcdHistory history = {};
        assert_int_equal(etcd_cluster_history(&cluster, "rollout", &history), 0);
        assert_true(etcd_history_is_rollout(&history, ROLLOUT_MACHINES + (int) ELEMENTSOF(blockers), ROLLOUT_SLOTS));

        for (int i = 0; i < ROLLOUT_MACHINES; i++) {
                void *st = machines[i];
                assert_int_equal(teardown(&st), 0);
        }
        etcd_cluster_stop(&cluster);
}

/* Idle, updaterd exits; the next call starts it again through D-Bus activation, and it answers from
 * what is on disk: `updatectl status` works whether it runs or not. */
static void wait_name_gone(Fixture *f) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + JOB_TIMEOUT;
        int has = 1;

        while (name_has_owner(f, &has) >= 0 && has) {
                if (now_usec(CLOCK_MONOTONIC) >= end)
                        fail_msg("updaterd did not exit when idle");
                (void) usleep(50 * 1000);
        }
}

static void test_exit_idle(void **state) {
        Fixture *f = *state;

        assert_int_equal(stop_process(f->updaterd_pid), 0);
        f->updaterd_pid = 0;
        wait_name_gone(f);
        for (int i = 0; i < 2; i++) {
                _cleanup_(output_done) Output status = updatectl(f, 0, "status", NULL);
                assert_int_equal(status.status, 0);
                assert_contains(status.out, "State:      idle\n");
                assert_contains(status.out, "●"); /* the booted slot, read from disk */
                /* Activated with --exit-idle-time=1s: it goes by itself. */
                wait_name_gone(f);
        }
}

/* A fleet-release job makes way for a job asked for: the release waits on a server that accepts
 * connections and never answers, and a stage is started all the same, not refused as busy. */
static void test_fleet_release_yields(void **state) {
        Fixture *f = *state;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        _cleanup_free_ char *conf = NULL, *turn = path_join2(f->state, FLEET_TURN_FILE),
                            *conf_path = path_join2(f->root, "etc/dreamlink/updaterd.conf"), *old = read_all(conf_path),
                            *etc = path_join2(f->root, "etc/dreamlink");
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 16), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        assert_int_equal(stop_process(f->updaterd_pid), 0);
        f->updaterd_pid = 0;
        assert_true(asprintf(&conf, "%s[Fleet]\nStrategy=fleetlock\nEndpoints=http://127.0.0.1:%u\nID=m1\n", old,
                             ntohs(sa.sin_port)) > 0);
        write_test_file(etc, "updaterd.conf", conf);
        assert_int_equal(write_string_file_atomic(turn, "{\"version\":1,\"state\":\"waiting\",\"strategy\":\"fleetlock\","
                                                        "\"group\":\"default\",\"id\":\"m1\",\"since\":1}", 0644), 0);
        assert_int_equal(start_updaterd(f), 0);
        /* Started before the daemon answers its first call. */
        assert_operation(f, "releasing");

        uint32_t id = call_stage(f, "", &error);
        if (id == 0)
                fail_msg("Stage was refused: %s", error.message);
        const JobRemoved *j = wait_job_removed(f, 1);
        assert_str(j->operation, "fleet-release");
        assert_int_equal(j->result, -EINTR);
        assert_int_equal(id, 2);
        j = wait_job_removed(f, 2);
        assert_str(j->operation, "stage");
        /* And after the stage, in the same turn of the daemon's loop, the release is asked again. */
        assert_operation(f, "releasing");
        assert_int_equal(access(turn, F_OK), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_fleet_release_yields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exit_idle, setup, teardown),
                cmocka_unit_test(test_fleet_rollout_etcd),
                cmocka_unit_test_setup_teardown(test_commit_waits_for_fleet_slot, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fleet_slot_kept_until_blessed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_auto_commit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_auto_commit_window, setup, teardown),
                cmocka_unit_test_setup_teardown(test_commit_and_rollback_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_status_shows_history, setup, teardown),
                cmocka_unit_test_setup_teardown(test_describe_idle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_describe_lists_handoff_services, setup, teardown),
                cmocka_unit_test_setup_teardown(test_check_available, setup, teardown),
                cmocka_unit_test_setup_teardown(test_properties_changed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_updatectl_check_and_status, setup, teardown),
                cmocka_unit_test_setup_teardown(test_check_control_characters_escaped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_check_tampered, setup, teardown),
                cmocka_unit_test_setup_teardown(test_check_expired, setup, teardown),
                cmocka_unit_test_setup_teardown(test_check_rollback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_check_other_os, setup, teardown),
                cmocka_unit_test_setup_teardown(test_check_raises_rollback_floor, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel_without_job, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stage_fails, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stage_refused_without_space, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stage_kernel_mismatch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stage_slot_too_small, setup, teardown),
                cmocka_unit_test_prestate_setup_teardown(test_stage_busy_and_cancel, setup, teardown,
                                                         (void *) &stalling_server),
                cmocka_unit_test_prestate_setup_teardown(test_download_wall_clock_limit, setup, teardown,
                                                         (void *) &stalling_server_short_limit),
                cmocka_unit_test_setup_teardown(test_stage_already_running, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stage_other_version, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stage_closes_interrupted_record, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stage_cancel_recorded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unprivileged, setup, teardown),
                cmocka_unit_test_setup_teardown(test_state_survives_restart, setup, teardown),
                cmocka_unit_test_setup_teardown(test_repo_root_only_after_start, setup, teardown),
        };

        /* Only root may change the system: without root, the daemon would refuse nearly everything. */
        if (geteuid() != 0) {
                printf("test-updaterd needs root, skipping.\n");
                return 77;
        }
        signal(SIGPIPE, SIG_IGN);
        return cmocka_run_group_tests_name("updaterd", tests, NULL, NULL);
}
