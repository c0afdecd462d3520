/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* updatectl: the command line over updaterd's D-Bus API. See updatectl(8). */

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-json.h>
#include <unistd.h>

#include "fleet.h"
#include "fleet-etcd.h"
#include "fleet-turn.h"
#include "log.h"
#include "paths.h"
#include "string-util.h"
#include "time-util.h"
#include "updater-bus.h"
#include "updaterd-conf.h"


static bool arg_json = false;
static bool arg_quiet = false;
static uint64_t arg_flags = 0;
static bool arg_dry_run = false;
static volatile sig_atomic_t interrupted = 0;


static void bus_error_free(sd_bus_error *e) {
        sd_bus_error_free(e);
}

static int help(void) {
        printf("%s [OPTIONS...] COMMAND\n\n"
               "Update this system with dreamlink: stage a release into the passive slot,\n"
               "then commit it without losing sessions.\n\n"
               "Commands:\n"
               "  status           Show slots, versions, channel and the update in progress\n"
               "  check            Check the channel for a newer release\n"
               "  stage [VERSION]  Download and write the channel's release into the passive slot\n"
               "  commit           Switch to the staged slot with kexec, carrying the\n"
               "                   opted-in services and their sessions across\n"
               "  rollback         The same switch back to the other, known good slot\n"
               "  cancel           Stop the running job\n"
               "  fleet            Show the fleet's slots ([Fleet] in updaterd.conf)\n"
               "  fleet release ID...\n"
               "                   Give back the slots these machines hold\n\n"
               "Options:\n"
               "  -h --help        Show this help\n"
               "     --version     Show package version\n"
               "     --json        status, --dry-run: print JSON\n"
               "  -q --quiet       No progress output\n"
               "     --no-handoff  commit, rollback: services restart fresh\n"
               "     --reboot      commit, rollback: through firmware and boot loader\n"
               "     --dry-run     commit, rollback: say what would be carried, switch nothing\n\n"
               "See the updatectl(8) man page for details.\n",
               program_invocation_short_name);
        return 0;
}

static int bus_connect(sd_bus **ret) {
        int r = sd_bus_open_system(ret);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        return 0;
}

/* S made safe for the terminal: versions, kernels and messages come from the release server and
 * the state files, and an escape sequence in them must not reach the terminal as one. The result
 * lives until 16 more calls, plenty for one line of output; NULL stays NULL. */
static const char *safe(const char *s) {
        static char *ring[16];
        static unsigned i;

        if (!s)
                return NULL;
        i = (i + 1) % ELEMENTSOF(ring);
        free(ring[i]);
        ring[i] = escape_control(s);
        return ring[i] ?: "(out of memory)";
}

/* Turns a failed call into one clear line: the daemon's message when it sent one. */
static int call_error(const char *what, const sd_bus_error *e, int r) {
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED))
                return log_error_errno(EACCES, "%s: permission denied (changing the system needs root).", what);
        if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                return log_error_errno(r, "%s: updaterd is not available (is updaterd.service installed?).", what);
        return log_error_errno(r, "%s: %s", what, e->message ? safe(e->message) : strerror(-r));
}

/* ---- status ------------------------------------------------------------------------------ */

static const char *json_str(sd_json_variant *v, const char *key) {
        sd_json_variant *f = v ? sd_json_variant_by_key(v, key) : NULL;
        return f && sd_json_variant_is_string(f) ? safe(sd_json_variant_string(f)) : NULL;
}

static uint64_t json_u64(sd_json_variant *v, const char *key) {
        sd_json_variant *f = v ? sd_json_variant_by_key(v, key) : NULL;
        return f && sd_json_variant_is_unsigned(f) ? sd_json_variant_unsigned(f) : 0;
}

/* "Fleet: etcd, group web, 2 at once; waiting for a fleet slot since ...: all 2 slots of ..." */
static void print_fleet(sd_json_variant *fleet, const char *operation) {
        char t[FORMAT_TIMESTAMP_MAX];
        sd_json_variant *turn = fleet ? sd_json_variant_by_key(fleet, "turn") : NULL;
        const char *strategy = json_str(fleet, "strategy");

        if (!turn && (!strategy || streq(strategy, "none")))
                return;
        printf("Fleet:      %s, group %s", strna(strategy), strna(json_str(fleet, "group")));
        if (streq_ptr(strategy, "etcd"))
                printf(", %" PRIu64 " at once", json_u64(fleet, "slots"));
        if (!turn)
                printf("; no slot held\n");
        else if (streq_ptr(json_str(turn, "state"), "held"))
                printf("; holds a slot of group %s as %s since %s (given back once a slot is blessed healthy)\n",
                       strna(json_str(turn, "group")), strna(json_str(turn, "id")),
                       format_timestamp_utc(t, sizeof(t), json_u64(turn, "since_usec")));
        else if (!streq_ptr(operation, "committing") && !streq_ptr(operation, "rolling-back"))
                /* Asked for by a switch that was cancelled or cut short: it may have been given. */
                printf("; giving back the slot asked for as %s by a switch that did not happen\n",
                       strna(json_str(turn, "id")));
        else
                printf("; waiting for a fleet slot since %s: %s\n",
                       format_timestamp_utc(t, sizeof(t), json_u64(turn, "since_usec")),
                       json_str(turn, "why") ?: "asking");
}

static void print_status(sd_json_variant *v) {
        char t[FORMAT_TIMESTAMP_MAX];
        sd_json_variant *booted = sd_json_variant_by_key(v, "booted");
        sd_json_variant *slots = sd_json_variant_by_key(v, "slots");
        sd_json_variant *check = sd_json_variant_by_key(v, "last_check");
        sd_json_variant *txn = sd_json_variant_by_key(v, "transaction");
        const char *booted_slot = json_str(booted, "slot");

        printf("State:      %s%s%s\n", strna(json_str(v, "operation")),
               json_str(v, "step") ? ", step " : "", strempty(json_str(v, "step")));
        printf("Channel:    %s (%s)\n", strna(json_str(v, "channel")), strna(json_str(v, "server")));
        sd_json_variant *ac = sd_json_variant_by_key(v, "auto_commit");
        sd_json_variant *ac_on = ac ? sd_json_variant_by_key(ac, "enabled") : NULL;
        if (ac_on && sd_json_variant_boolean(ac_on)) {
                printf("Auto-commit: yes%s%s%s", json_str(ac, "window") ? ", window " : "",
                       strempty(json_str(ac, "window")), json_str(ac, "window") ? " (local time)" : "");
                if (json_u64(ac, "next_usec") > 0)
                        printf("; the staged release is committed at %s",
                               format_timestamp_utc(t, sizeof(t), json_u64(ac, "next_usec")));
                putchar('\n');
        }
        print_fleet(sd_json_variant_by_key(v, "fleet"), json_str(v, "operation"));
        if (check && sd_json_variant_is_object(check)) {
                const char *result = json_str(check, "result");
                printf("Last check: %s, %s", format_timestamp_utc(t, sizeof(t), json_u64(check, "time_usec")),
                       strna(result));
                if (json_str(check, "version") && streq_ptr(result, "available"))
                        printf(": %s", json_str(check, "version"));
                if (json_str(check, "message") && !streq_ptr(result, "available"))
                        printf(" (%s)", json_str(check, "message"));
                putchar('\n');
        } else
                printf("Last check: never\n");

        printf("Slots:\n");
        for (const char *s = "a"; s; s = streq(s, "a") ? "b" : NULL) {
                sd_json_variant *slot = slots ? sd_json_variant_by_key(slots, s) : NULL;
                bool is_booted = streq_ptr(s, booted_slot);
                const char *commit = json_str(slot, "commit");
                printf("  %s %s  %-7s %-8s %-10s %-28s %.12s\n", is_booted ? "●" : " ", s,
                       is_booted ? "booted" : "", strna(json_str(slot, "state")),
                       strna(json_str(slot, "version")), strna(json_str(slot, "kernel")), strempty(commit));
        }

        sd_json_variant *handoff = sd_json_variant_by_key(v, "handoff");
        printf("Handoff:   ");
        size_t n = handoff && sd_json_variant_is_array(handoff) ? sd_json_variant_elements(handoff) : 0;
        for (size_t i = 0; i < n; i++) {
                sd_json_variant *e = sd_json_variant_by_index(handoff, i);
                sd_json_variant *enabled = sd_json_variant_by_key(e, "enabled");
                printf(" %s%s", strna(json_str(e, "unit")),
                       enabled && !sd_json_variant_boolean(enabled) ? " (disabled)" : "");
        }
        printf("%s\n", n == 0 ? " none (services restart fresh on commit)" : "");

        sd_json_variant *history = sd_json_variant_by_key(v, "history");
        size_t h = history && sd_json_variant_is_array(history) ? sd_json_variant_elements(history) : 0;
        if (h > 0)
                printf("History:\n");
        for (size_t i = 0; i < h; i++) {
                sd_json_variant *e = sd_json_variant_by_index(history, i);
                sd_json_variant *services = sd_json_variant_by_key(e, "services");
                printf("  %s  %-8s %s (%s) → %s (%s)  %s", format_timestamp_utc(t, sizeof(t), json_u64(e, "started_usec")),
                       strna(json_str(e, "operation")), strna(json_str(e, "from_slot")), strna(json_str(e, "from_version")),
                       strna(json_str(e, "to_slot")), strna(json_str(e, "to_version")), strna(json_str(e, "outcome")));
                if (json_str(e, "error"))
                        printf(": %s", json_str(e, "error"));
                putchar('\n');
                /* An object's elements alternate: key, value. */
                size_t m = services && sd_json_variant_is_object(services) ? sd_json_variant_elements(services) : 0;
                for (size_t k = 0; k + 1 < m; k += 2)
                        printf("%s%s %s", k == 0 ? "      " : ", ",
                               strna(safe(sd_json_variant_string(sd_json_variant_by_index(services, k)))),
                               strna(safe(sd_json_variant_string(sd_json_variant_by_index(services, k + 1)))));
                if (m > 0)
                        putchar('\n');
        }

        if (txn && sd_json_variant_is_object(txn)) {
                printf("Transaction: %s %s %s → %s, step %s, %s", json_str(txn, "id") ? json_str(txn, "id") : "?",
                       strna(json_str(txn, "operation")), strna(json_str(txn, "from_slot")),
                       strna(json_str(txn, "to_slot")), strna(json_str(txn, "step")), strna(json_str(txn, "outcome")));
                if (json_str(txn, "error"))
                        printf(": %s", json_str(txn, "error"));
                putchar('\n');
        }
}

static int describe(sd_bus *bus, sd_json_variant **ret) {
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *json;
        int r;

        r = sd_bus_call_method(bus, UPDATER_BUS_NAME, UPDATER_BUS_PATH, UPDATER_BUS_INTERFACE, "Describe", &error, &reply, "");
        if (r < 0)
                return call_error("Failed to read the update state", &error, r);
        r = sd_bus_message_read(reply, "s", &json);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        r = sd_json_parse(json, 0, ret, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "updaterd sent malformed JSON: %m");
        return 0;
}

static int verb_status(sd_bus **busp, char **args) {
        sd_bus *bus = *busp;
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        int r;

        r = describe(bus, &v);
        if (r < 0)
                return r;

        if (arg_json)
                sd_json_variant_dump(v, SD_JSON_FORMAT_PRETTY_AUTO | SD_JSON_FORMAT_COLOR_AUTO, stdout, NULL);
        else
                print_status(v);
        return 0;
}

/* ---- check ------------------------------------------------------------------------------- */

static int verb_check(sd_bus **busp, char **args) {
        sd_bus *bus = *busp;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *version, *kernel;
        uint64_t counter, size;
        char buf[FORMAT_BYTES_MAX];
        int available, r;

        r = sd_bus_message_new_method_call(bus, &m, UPDATER_BUS_NAME, UPDATER_BUS_PATH, UPDATER_BUS_INTERFACE, "Check");
        if (r < 0)
                return log_error_errno(r, "Failed to create the call: %m");
        /* Fetching over a slow link may take a while. */
        r = sd_bus_call(bus, m, 5 * USEC_PER_MINUTE, &error, &reply);
        if (r < 0)
                return call_error("Check failed", &error, r);
        r = sd_bus_message_read(reply, "bsstt", &available, &version, &kernel, &counter, &size);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");

        if (available)
                printf("Update available: %s (release %" PRIu64 ", kernel %s), about %s to download.\n",
                       safe(version), counter, safe(kernel), format_bytes(buf, sizeof(buf), size));
        else
                printf("Up to date: the channel offers %s, which this system runs or has staged.\n", safe(version));
        return 0;
}

/* ---- stage: a job with progress ---------------------------------------------------------- */

typedef struct Job {
        uint32_t id;
        bool done;
        int result;
        char *message;
        char *transaction_id;
        /* progress */
        char *step;
        uint64_t bytes, total;
        unsigned fetched, requested;
        bool delta;
        usec_t started, last_print;
        unsigned last_percent;
        bool tty;
        const char *final_step;     /* the job's last step this side of a switch: the machine goes down */
        char *final_message;
        bool final_seen;            /* from then on, losing updaterd is the switch, not a failure */
        const char *let_go_step;    /* at this step, stop holding the bus (see follow_without_bus()) */
        bool let_go;
} Job;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Job *j = userdata;
        const char *operation, *txn, *message;
        uint32_t id;
        int result;

        if (sd_bus_message_read(m, "ussis", &id, &operation, &txn, &result, &message) < 0 || id != j->id)
                return 0;
        j->done = true;
        j->result = result;
        (void) free_and_strdup(&j->message, message);
        (void) free_and_strdup(&j->transaction_id, txn);
        return 0;
}

static void progress_render(Job *j) {
        char done[FORMAT_BYTES_MAX], total[FORMAT_BYTES_MAX], rate[FORMAT_BYTES_MAX], eta[FORMAT_TIMESTAMP_MAX];
        usec_t now = now_usec(CLOCK_MONOTONIC), elapsed = now - j->started;
        uint64_t bps = elapsed > USEC_PER_SEC ? j->bytes * USEC_PER_SEC / elapsed : 0;
        unsigned percent = j->total > 0 ? (unsigned) MIN(100, j->bytes * 100 / j->total)
                         : j->requested > 0 ? (unsigned) MIN(100, (uint64_t) j->fetched * 100 / j->requested) : 0;

        if (arg_quiet)
                return;
        if (!j->tty) {
                /* Plain lines for logs: every 10%. */
                if (percent / 10 == j->last_percent / 10 && j->last_print != 0)
                        return;
                printf("%3u%%  %s%s%s  %s/s%s\n", percent, format_bytes(done, sizeof(done), j->bytes),
                       j->total ? " of " : "", j->total ? format_bytes(total, sizeof(total), j->total) : "",
                       format_bytes(rate, sizeof(rate), bps), j->delta ? "  (static delta)" : "");
                j->last_percent = percent;
                j->last_print = now;
                return;
        }

        char bar[31];
        unsigned filled = percent * 30 / 100;
        for (unsigned i = 0; i < 30; i++)
                bar[i] = i < filled ? '#' : '.';
        bar[30] = 0;
        const char *e = "";
        if (bps > 0 && j->total > j->bytes)
                e = format_timespan(eta, sizeof(eta), (j->total - j->bytes) / bps * USEC_PER_SEC);
        printf("\r[%s] %3u%%  %s%s%s  %s/s  %s%s%s \033[K", bar, percent, format_bytes(done, sizeof(done), j->bytes),
               j->total ? "/" : "", j->total ? format_bytes(total, sizeof(total), j->total) : "",
               format_bytes(rate, sizeof(rate), bps), *e ? "ETA " : "", e, j->delta ? "  delta" : "");
        fflush(stdout);
        j->last_print = now;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Job *j = userdata;
        const char *interface, *name;
        int r;

        if (sd_bus_message_read(m, "s", &interface) < 0 || !streq(interface, UPDATER_BUS_INTERFACE))
                return 0;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                if (sd_bus_message_read(m, "s", &name) < 0)
                        return 0;
                if (streq(name, "Progress")) {
                        int delta;
                        if (sd_bus_message_read(m, "v", "(ttuub)", &j->bytes, &j->total, &j->fetched, &j->requested,
                                                &delta) >= 0) {
                                j->delta = delta;
                                progress_render(j);
                        }
                } else if (streq(name, "Step")) {
                        const char *step;
                        if (sd_bus_message_read(m, "v", "s", &step) >= 0 && !streq_ptr(step, j->step) && *step) {
                                (void) free_and_strdup(&j->step, step);
                                if (!arg_quiet)
                                        printf("%s%s\n", j->tty && j->last_print ? "\n" : "", safe(step));
                                j->last_print = 0;
                                if (streq_ptr(step, j->let_go_step))
                                        j->let_go = true;
                                if (streq_ptr(step, j->final_step) && !j->final_seen) {
                                        /* Said now: the machine may go down before anything else arrives. */
                                        j->final_seen = true;
                                        if (!arg_quiet && j->final_message)
                                                printf("%s\n", j->final_message);
                                }
                        }
                } else
                        (void) sd_bus_message_skip(m, "v");
                (void) sd_bus_message_exit_container(m);
        }
        return 0;
}

/* updaterd went away mid-job (stopped, crashed): no JobRemoved will come. */
static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Job *j = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, UPDATER_BUS_NAME) ||
            !isempty(new_owner))
                return 0;
        j->done = true;
        j->result = j->final_seen ? 0 : -ECONNRESET;
        (void) free_and_strdup(&j->message, j->final_seen ? NULL :
                               "updaterd stopped while the job ran; 'updatectl status' shows where it got to.");
        return 0;
}

static void on_sigint(int sig) {
        interrupted = 1;
}

/* ---- a switch that carries this login --------------------------------------------------- */

/* With Sessions=yes the login running this command is checkpointed with it. A connection to
 * the system bus cannot be: its other end stays behind, and sd-bus keeps a pidfd of the bus's
 * listener (PID 1, dbus.socket) for it, which criu refuses. So once updaterd has loaded the
 * new kernel, before it checkpoints anything, this command closes its connection and waits
 * holding no file open: open files would be checkpointed too, and the transaction record is
 * replaced under us. It connects again once one of these says that nothing is checkpointing
 * it any more:
 * - the transaction record was replaced: the switch failed here (and brought this login
 *   back), went on without this login, or a new boot (where this process was restored)
 *   has taken the transaction further;
 * - updaterd is gone (it stopped, or this is a new boot where that PID is not it).
 * updaterd in turn waits for this to let go before it checkpoints the login (handoff). */

typedef struct RecordStamp {
        bool exists;
        dev_t dev;
        ino_t ino;
} RecordStamp;

static RecordStamp record_stamp(const char *path) {
        struct stat st;
        if (!path || stat(path, &st) < 0)
                return (RecordStamp) {};
        return (RecordStamp) { .exists = true, .dev = st.st_dev, .ino = st.st_ino };
}

static char *transaction_record_path(void) {
        _cleanup_(updater_config_done) UpdaterConfig c;
        updater_config_init(&c);
        if (updater_config_load(&c, NULL) < 0)
                return NULL; /* the loader said why; then only updaterd's going tells us */
        return state_path(NULL, &c, TRANSACTION_FILE);
}

static pid_t updaterd_pid(sd_bus *bus) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        pid_t pid;
        if (sd_bus_get_name_creds(bus, UPDATER_BUS_NAME, SD_BUS_CREDS_PID, &creds) < 0 ||
            sd_bus_creds_get_pid(creds, &pid) < 0)
                return 0;
        return pid;
}

/* Connected again: says how the switch went, from updaterd's state. */
static int report_after_let_go(sd_bus *bus, const char *what, const char *booted_before) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        int r;

        r = describe(bus, &v);
        if (r < 0)
                return r;
        sd_json_variant *booted = sd_json_variant_by_key(v, "booted"), *txn = sd_json_variant_by_key(v, "transaction");
        const char *slot = json_str(booted, "slot"), *outcome = json_str(txn, "outcome");
        if (slot && !streq_ptr(slot, booted_before)) {
                if (!arg_quiet)
                        printf("Now running slot %s (%s), kernel %s: this login came along. The boot check decides "
                               "whether the slot stays ('updatectl status').\n",
                               slot, strna(json_str(booted, "version")), strna(json_str(booted, "kernel")));
                return 0;
        }
        if (streq_ptr(outcome, "failed"))
                return log_error_errno(EIO, "%s failed: %s", what, strna(json_str(txn, "error")));
        if (!arg_quiet)
                printf("The switch goes on without this login: it ends with the switch.\n");
        return 0;
}

static int follow_without_bus(sd_bus **busp, const char *what) {
        _cleanup_free_ char *record = transaction_record_path(), *booted_before = NULL;
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        pid_t daemon = updaterd_pid(*busp);
        int r;

        if (describe(*busp, &v) >= 0)
                booted_before = strdup(strempty(json_str(sd_json_variant_by_key(v, "booted"), "slot")));
        RecordStamp before = record_stamp(record);
        *busp = sd_bus_flush_close_unref(*busp);
        if (!arg_quiet)
                printf("This command lets go of the system bus while the services are checkpointed, so that its "
                       "login can come along; it reports again when the switch is done.\n");

        for (;;) {
                (void) usleep(200 * USEC_PER_MSEC); /* a signal or a restore may cut it short */
                if (interrupted) {
                        printf("The switch goes on without this client; 'updatectl status' follows it.\n");
                        return 0;
                }
                RecordStamp now = record_stamp(record);
                if (now.exists != before.exists || now.dev != before.dev || now.ino != before.ino)
                        break;
                if (daemon > 0 && kill(daemon, 0) < 0 && errno == ESRCH)
                        break;
        }
        /* In a new boot the bus may still be starting up. */
        for (unsigned i = 0;; i++) {
                r = sd_bus_open_system(busp);
                if (r >= 0)
                        break;
                if (i >= 300 || interrupted)
                        return log_error_errno(r, "Failed to connect to the system bus again: %m");
                (void) usleep(200 * USEC_PER_MSEC);
        }
        return report_after_let_go(*busp, what, booted_before);
}

/* Starts a job with METHOD(types…), follows its steps and progress, and
 * returns its result; what names it in messages ("Staging"). A job that
 * reaches final_step (may be NULL) is done as far as we can tell: the
 * message is final_message. */
static int run_job(sd_bus **busp, const char *what, const char *final_step, const char *final_message,
                   const char *let_go_step, const char *method, const char *types, ...) {
        sd_bus *bus = *busp;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *removed = NULL, *changed = NULL, *owner = NULL;
        Job j = {
                .tty = isatty(STDOUT_FILENO),
                .started = now_usec(CLOCK_MONOTONIC),
                .final_step = final_step,
                .final_message = (char *) final_message,
                .let_go_step = let_go_step,
        };
        bool cancel_sent = false;
        va_list ap;
        int r;

        /* Subscribe before starting, so no signal of a fast job is missed. */
        r = sd_bus_match_signal(bus, &removed, UPDATER_BUS_NAME, UPDATER_BUS_PATH, UPDATER_BUS_INTERFACE, "JobRemoved", on_job_removed, &j);
        if (r >= 0)
                r = sd_bus_match_signal(bus, &changed, UPDATER_BUS_NAME, UPDATER_BUS_PATH, "org.freedesktop.DBus.Properties",
                                        "PropertiesChanged", on_properties_changed, &j);
        if (r >= 0)
                r = sd_bus_match_signal(bus, &owner, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, &j);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe to updaterd's signals: %m");

        va_start(ap, types);
        r = sd_bus_call_methodv(bus, UPDATER_BUS_NAME, UPDATER_BUS_PATH, UPDATER_BUS_INTERFACE, method, &error, &reply, types, ap);
        va_end(ap);
        if (r < 0) {
                _cleanup_free_ char *m = strprintf("%s could not start", what);
                return call_error(m ?: what, &error, r);
        }
        r = sd_bus_message_read(reply, "u", &j.id);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");

        struct sigaction sa = { .sa_handler = on_sigint };
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        while (!j.done) {
                if (j.let_go) {
                        if (!arg_quiet && j.final_message)
                                printf("%s%s\n", j.tty && j.last_print ? "\n" : "", j.final_message);
                        removed = sd_bus_slot_unref(removed);
                        changed = sd_bus_slot_unref(changed);
                        owner = sd_bus_slot_unref(owner);
                        free(j.message);
                        free(j.transaction_id);
                        free(j.step);
                        return follow_without_bus(busp, what);
                }
                if (interrupted && !cancel_sent && j.final_step) {
                        /* A switch is not cancelled (updaterd refuses it): leave it running. */
                        (void) free_and_strdup(&j.message, "The switch goes on without this client; 'updatectl status' follows it.");
                        j.result = 0;
                        break;
                }
                if (interrupted && !cancel_sent) {
                        _cleanup_(bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                        printf("\nCancelling…\n");
                        r = sd_bus_call_method(bus, UPDATER_BUS_NAME, UPDATER_BUS_PATH, UPDATER_BUS_INTERFACE, "Cancel", &e, NULL, "");
                        if (r < 0)
                                return call_error("Failed to cancel", &e, r);
                        cancel_sent = true;
                }
                r = sd_bus_process(bus, NULL);
                if (r > 0)
                        continue;
                if (r >= 0) {
                        r = sd_bus_wait(bus, USEC_PER_SEC);
                        if (r == -EINTR)
                                r = 0;
                }
                if (r < 0 && j.final_seen)
                        break; /* the machine is going down: that is the switch */
                if (r < 0)
                        return log_error_errno(r, "Lost the connection to updaterd: %m");
        }

        if (j.tty && j.last_print && !arg_quiet)
                putchar('\n');
        int result = j.result;
        if (result < 0)
                log_error_errno(result, "%s failed: %s", what, isempty(j.message) ? strerror(-result) : safe(j.message));
        else if (!arg_quiet && !(j.final_seen && !interrupted)) /* the switch was announced already */
                printf("%s\n", strna(safe(j.message)));
        free(j.message);
        free(j.transaction_id);
        free(j.step);
        return result < 0 ? result : 0;
}

static int verb_stage(sd_bus **bus, char **args) {
        if (args[0] && args[1])
                return log_error_errno(EINVAL, "stage takes at most one VERSION.");
        return run_job(bus, "Staging", NULL, NULL, NULL, "Stage", "s", strempty(args[0]));
}

/* "Switching to slot b (2) with kexec…": the other slot, as updaterd sees it now. */
static char *switch_message(sd_bus *bus) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        if (describe(bus, &v) < 0)
                return NULL;
        const char *booted = json_str(sd_json_variant_by_key(v, "booted"), "slot");
        const char *target = streq_ptr(booted, "a") ? "b" : "a";
        sd_json_variant *slots = sd_json_variant_by_key(v, "slots");
        const char *version = json_str(slots ? sd_json_variant_by_key(slots, target) : NULL, "version");
        return strprintf("Switching to slot %s (%s) %s. 'updatectl status' tells how it went.", target, strna(version),
                         arg_flags & COMMIT_REBOOT ? "through a reboot" : "with kexec");
}

/* A dry-run dump of each service takes seconds on a slow machine: more than sd-bus's 25 s in all. */
#define PLAN_TIMEOUT_USEC (30 * USEC_PER_MINUTE)

static int print_plan(sd_json_variant *v) {
        sd_json_variant *services = sd_json_variant_by_key(v, "services"), *sessions = sd_json_variant_by_key(v, "sessions"), *e;
        bool aborts = sd_json_variant_boolean(sd_json_variant_by_key(v, "aborts"));

        printf("A %s now would switch from slot %s (%s) to slot %s (%s, kernel %s) %s%s.\n",
               strna(json_str(v, "operation")), strna(json_str(v, "from_slot")), strna(json_str(v, "from_version")),
               strna(json_str(v, "to_slot")), strna(json_str(v, "to_version")), strna(json_str(v, "to_kernel")),
               streq_ptr(json_str(v, "method"), "reboot") ? "through a reboot" : "with kexec",
               sd_json_variant_boolean(sd_json_variant_by_key(v, "handoff")) ? "" : ", every service starting fresh");
        if (sd_json_variant_elements(services) > 0)
                printf("\n%-34s %-8s %s\n", "SERVICE", "OUTCOME", "WHY");
        for (size_t i = 0; i < sd_json_variant_elements(services); i++) {
                e = sd_json_variant_by_index(services, i);
                printf("%-34s %-8s %s\n", strna(json_str(e, "unit")), strna(json_str(e, "outcome")),
                       strempty(json_str(e, "reason")));
        }
        for (size_t i = 0; i < sd_json_variant_elements(sessions); i++) {
                e = sd_json_variant_by_index(sessions, i);
                sd_json_variant *scopes = sd_json_variant_by_key(e, "scopes");
                printf("\nThe login sessions of %s come along (%zu now:", strna(json_str(e, "unit")),
                       sd_json_variant_elements(scopes));
                for (size_t k = 0; k < sd_json_variant_elements(scopes); k++)
                        printf(" %s", strna(safe(sd_json_variant_string(sd_json_variant_by_index(scopes, k)))));
                printf("); a login whose program holds the system bus ends with the switch.\n");
        }
        if (aborts)
                printf("\nThe %s would be refused: a service above that \"aborts\" has OnDumpFailure=abort.\n",
                       strna(json_str(v, "operation")));
        return aborts ? -EBUSY : 0;
}

static int plan_switch(sd_bus *bus, const char *method) {
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        _cleanup_free_ char *name = strprintf("Plan%s", method);
        const char *json;
        int r;

        if (!name)
                return log_oom();
        r = sd_bus_message_new_method_call(bus, &call, UPDATER_BUS_NAME, UPDATER_BUS_PATH, UPDATER_BUS_INTERFACE, name);
        if (r >= 0)
                r = sd_bus_message_append(call, "t", arg_flags);
        if (r < 0)
                return log_error_errno(r, "Failed to build the %s call: %m", name);
        r = sd_bus_call(bus, call, PLAN_TIMEOUT_USEC, &error, &reply);
        if (r < 0)
                return call_error("Failed to plan the switch", &error, r);
        r = sd_bus_message_read(reply, "s", &json);
        if (r < 0)
                return log_error_errno(r, "Failed to read the plan: %m");
        r = sd_json_parse(json, 0, &v, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "updaterd sent a plan that is not JSON: %m");
        if (arg_json) {
                (void) sd_json_variant_dump(v, SD_JSON_FORMAT_PRETTY_AUTO | SD_JSON_FORMAT_NEWLINE, stdout, NULL);
                return sd_json_variant_boolean(sd_json_variant_by_key(v, "aborts")) ? -EBUSY : 0;
        }
        return print_plan(v);
}

static int verb_switch(sd_bus **bus, const char *what, const char *method, char **args) {
        if (args[0])
                return log_error_errno(EINVAL, "%s takes no arguments.", method);
        if (arg_dry_run)
                return plan_switch(*bus, method);
        _cleanup_free_ char *message = switch_message(*bus);
        /* With handoff, this login may be carried: let go of the bus before the checkpoints. */
        bool handoff = !(arg_flags & (COMMIT_NO_HANDOFF | COMMIT_REBOOT));
        return run_job(bus, what, "switching", message, handoff ? "kernel-loaded" : NULL, method, "t", arg_flags);
}

static int verb_commit(sd_bus **bus, char **args) {
        return verb_switch(bus, "Commit", "Commit", args);
}

static int verb_rollback(sd_bus **bus, char **args) {
        return verb_switch(bus, "Rollback", "Rollback", args);
}

static int verb_cancel(sd_bus **busp, char **args) {
        sd_bus *bus = *busp;
        _cleanup_(bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(bus, UPDATER_BUS_NAME, UPDATER_BUS_PATH, UPDATER_BUS_INTERFACE, "Cancel", &error, NULL, "");
        if (r < 0)
                return call_error("Failed to cancel", &error, r);
        return 0;
}

/* ---- the fleet ---------------------------------------------------------------------------- */

/* Straight to the fleet's servers with updaterd.conf's settings, not through updaterd: an admin
 * looks at and frees slots from any machine, also one whose updaterd is down. */
static int fleet_show(Fleet *f, const UpdaterConfig *c) {
        _cleanup_(fleet_semaphore_done) FleetSemaphore s = {};
        _cleanup_free_ char *error = NULL, *list = NULL;
        int r;

        if (c->fleet_strategy != FLEET_ETCD) {
                printf("Strategy %s, group %s: a FleetLock server does not say who holds its slots; ask it "
                       "(airlock: its status endpoint).\n", fleet_strategy_to_string(c->fleet_strategy), safe(c->fleet_group));
                return 0;
        }
        r = fleet_etcd_status(&f->etcd, c->fleet_group, &s, &error);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r, "Failed to read the slots of fleet group %s: %s", c->fleet_group,
                                       safe(error ?: strerror(-r)));
        if (arg_json) {
                _cleanup_free_ char *json = NULL;
                if (fleet_semaphore_format(&s, &json) < 0)
                        return log_oom();
                printf("%s\n", json);
                return 0;
        }
        list = strv_join(s.holders, " ");
        if (!list)
                return log_oom();
        printf("Group %s: %zu of %u slot%s taken%s%s\n", safe(c->fleet_group), strv_length(s.holders),
               s.max > 0 ? s.max : c->fleet_slots, (s.max > 0 ? s.max : c->fleet_slots) == 1 ? "" : "s",
               s.holders ? " by " : "", safe(list));
        return 0;
}

static int verb_fleet(sd_bus **bus, char **args) {
        _cleanup_(updater_config_done) UpdaterConfig c;
        _cleanup_(fleet_done) Fleet f = {};
        const char *root = secure_getenv("DREAMLINK_ROOT");
        int r;

        updater_config_init(&c);
        r = updater_config_load(&c, root);
        if (r < 0)
                return r;
        if (c.fleet_strategy == FLEET_NONE)
                return log_error_errno(ENOENT, "This machine is in no fleet: updaterd.conf sets no [Fleet] Strategy=.");
        r = fleet_init(&f, &c, root);
        if (r < 0)
                return r;
        if (!args[0] || streq(args[0], "status")) {
                if (args[0] && args[1])
                        return log_error_errno(EINVAL, "fleet status takes no arguments.");
                return fleet_show(&f, &c);
        }
        if (!streq(args[0], "release"))
                return log_error_errno(EINVAL, "Unknown fleet command '%s': status or release.", safe(args[0]));
        if (!args[1])
                return log_error_errno(EINVAL, "fleet release needs the ids of the machines whose slots to give back.");
        STRV_FOREACH(id, args + 1) {
                _cleanup_free_ char *why = NULL;
                r = fleet_release(&f, NULL, *id, &why);
                if (r < 0)
                        return log_oom();
                if (r == 0)
                        return log_error_errno(EAGAIN, "Failed to give back the slot of %s: %s", safe(*id), safe(why));
                if (!arg_quiet)
                        printf("%s holds no slot of group %s now.\n", safe(*id), safe(c.fleet_group));
        }
        return 0;
}

static const struct {
        const char *name;
        int (*run)(sd_bus **bus, char **args);
} verbs[] = {
        { "status", verb_status },
        { "check", verb_check },
        { "stage", verb_stage },
        { "commit", verb_commit },
        { "rollback", verb_rollback },
        { "cancel", verb_cancel },
        { "fleet", verb_fleet },
};

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_JSON, ARG_NO_HANDOFF, ARG_REBOOT, ARG_DRY_RUN };
        static const struct option options[] = {
                { "help",    no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json",    no_argument, NULL, ARG_JSON },
                { "quiet",   no_argument, NULL, 'q' },
                { "no-handoff", no_argument, NULL, ARG_NO_HANDOFF },
                { "reboot",  no_argument, NULL, ARG_REBOOT },
                { "dry-run", no_argument, NULL, ARG_DRY_RUN },
                {}
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int c, r;

        log_setup(program_invocation_short_name);
        /* Line by line, also into a pipe (ssh): a switch may end us any moment. */
        setvbuf(stdout, NULL, _IOLBF, 0);
        while ((c = getopt_long(argc, argv, "hq", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("%s (dreamlink) %s\n", program_invocation_short_name, PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case 'q':
                        arg_quiet = true;
                        break;
                case ARG_NO_HANDOFF:
                        arg_flags |= COMMIT_NO_HANDOFF;
                        break;
                case ARG_REBOOT:
                        arg_flags |= COMMIT_REBOOT;
                        break;
                case ARG_DRY_RUN:
                        arg_dry_run = true;
                        break;
                default:
                        return EXIT_FAILURE;
                }

        const char *verb = optind < argc ? argv[optind] : "status";
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                if (!streq(verb, verbs[i].name))
                        continue;
                if (verbs[i].run != verb_fleet) {
                        r = bus_connect(&bus);
                        if (r < 0)
                                return EXIT_FAILURE;
                }
                r = verbs[i].run(&bus, optind < argc ? argv + optind + 1 : argv + argc);
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }
        log_error("Unknown command '%s'. See %s --help.", verb, program_invocation_short_name);
        return EXIT_FAILURE;
}
