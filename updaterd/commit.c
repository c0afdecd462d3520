/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-json.h>
#include <unistd.h>

#include "boot-entry.h"
#include "context.h"
#include "commit.h"
#include "etc-merge.h"
#include "fault.h"
#include "fileio.h"
#include "fleet.h"
#include "fleet-turn.h"
#include "handoff.h"
#include "handoff-cmdline.h"
#include "log.h"
#include "ostree-repo.h"
#include "proc-cmdline.h"
#include "record.h"
#include "slot-status.h"
#include "status.h"
#include "string-util.h"
#include "switch-stop.h"

#ifndef KEXEC_FILE_UNLOAD
#define KEXEC_FILE_UNLOAD 0x00000001
#endif
#define KEXEC_CMDLINE_MAX 2048 /* x86's COMMAND_LINE_SIZE, with its NUL */
#define PID_FLOOR_MARGIN 4096 /* PIDs the services may still take between the plan and their dump */
#define SWITCH_NOTICE_USEC (300 * USEC_PER_MSEC)

/* systemd-boot's vendor GUID: LoaderEntryOneShot boots an entry once. */
#define EFIVAR_ONESHOT "/sys/firmware/efi/efivars/LoaderEntryOneShot-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

typedef struct Commit {
        WorkerContext w;
        Reporter *reporter;
        TransactionOperation operation;
        CommitFlags flags;
        SlotTable slots;
        Transaction *txn;
        char *mountpoint;
        bool mounted;
        bool kernel_loaded;
        bool oneshot_set;
        /* handoff */
        Handoff *handoff;
        HandoffUnit **units;       /* configured */
        char **planned;            /* opted-in units running when the kernel was loaded */
        char **session_units;      /* units whose login sessions are carried (Sessions=yes) */
        char **dumped;             /* checkpointed: restored in the new boot */
        char **dumped_sessions;    /* their scopes ("session-3.scope") */
        char *images_root;
        uint64_t pid_floor;
        bool stop_bound;           /* switch-stop.h's drop-ins are written */
} Commit;

static void commit_done(Commit *x) {
        if (x->mounted && umount2(x->mountpoint, MNT_DETACH) < 0)
                log_warning_errno(errno, "Failed to unmount %s: %m", x->mountpoint);
        free(x->mountpoint);
        transaction_free(x->txn);
        slot_table_done(&x->slots);
        worker_context_done(&x->w);
        handoff_free(x->handoff);
        handoff_config_free(x->units);
        strv_free(x->planned);
        strv_free(x->session_units);
        strv_free(x->dumped);
        strv_free(x->dumped_sessions);
        free(x->images_root);
        log_set_transaction_id(NULL);
}

static void commit_undo_interrupted(Transaction *t);
static void clear_oneshot_entry(void);

static const char *operation_verb(const Commit *x) {
        return x->operation == TRANSACTION_ROLLBACK ? "roll back" : "commit";
}

static int commit_load(Commit *x, const UpdaterConfig *c) {
        int r;

        r = worker_context_load(&x->w, c);
        if (r < 0)
                return r;
        r = slot_table_load(x->w.slots_path, &x->slots);
        if (r == -ENOENT)
                return log_error_errno(r, "No slot record %s: nothing was ever staged here.", x->w.slots_path);
        return r; /* the loader said what is wrong */
}

/* Refuses what cannot be switched to, with what to do instead. */
static int commit_check_target(Commit *x) {
        const SlotStatus *t = &x->slots.slots[x->w.target];
        const char *s = slot_to_string(x->w.target);

        if (x->operation == TRANSACTION_ROLLBACK) {
                if (t->state != SLOT_STATE_GOOD)
                        return log_error_errno(ENOENT, "Slot %s is %s, not a known good system: there is nothing to roll back to.",
                                               s, slot_state_to_string(t->state));
                return 0;
        }
        switch (t->state) {
        case SLOT_STATE_STAGED:
        case SLOT_STATE_GOOD:
                return 0;
        case SLOT_STATE_BAD:
                return log_error_errno(EBADE, "Slot %s (%s) failed before: stage a release again to retry it.", s,
                                       strna(t->version));
        case SLOT_STATE_WRITING:
                return log_error_errno(EBUSY, "Slot %s is half written: finish staging first (updatectl stage).", s);
        default:
                return log_error_errno(ENOENT, "Nothing is staged: run updatectl stage first.");
        }
}

static int on_fleet_wait(const char *why, void *userdata) {
        Commit *x = userdata;
        const UpdaterConfig *c = x->w.config;

        reporter_waiting(x->reporter, why);
        if ((x->flags & COMMIT_AUTO) && c->has_auto_commit_window &&
            time_window_next(&c->auto_commit_window, now_usec(CLOCK_REALTIME)) > 0)
                return log_error_errno(ETIME, "AutoCommitWindow= closed while the commit waited for a fleet slot (%s); "
                                       "it is tried again when the window opens next.", why);
        return 0;
}

/* [Fleet]: no switch without a slot of the machine's group, waited for as long as it takes (the
 * job can be cancelled meanwhile: nothing is touched yet). Taken before the transaction starts,
 * so a wait cut short leaves no switch open; the turn record then says a slot may be ours, and
 * updaterd gives it back. */
static int commit_take_fleet_slot(Commit *x) {
        _cleanup_(fleet_done) Fleet f = {};
        _cleanup_free_ char *turn = NULL;
        int r;

        if (x->w.config->fleet_strategy == FLEET_NONE || (x->flags & COMMIT_FALLBACK))
                return 0;
        turn = state_path(x->w.root, x->w.config, FLEET_TURN_FILE);
        if (!turn)
                return log_oom();
        r = fleet_init(&f, x->w.config, x->w.root);
        if (r >= 0)
                r = fleet_wait_for_slot(&f, turn, on_fleet_wait, x);
        if (r < 0)
                return r; /* logged */
        /* From here on a cancel is refused; one sent just before is ignored rather than let cut
         * the switch short in the middle of its dumps. */
        (void) signal(SIGTERM, SIG_IGN);
        return 0;
}

static int commit_plan(Commit *x) {
        _cleanup_(transaction_freep) Transaction *existing = NULL;
        int r;

        r = transaction_load(x->w.txn_path, &existing);
        if (r < 0 && r != -ENOENT)
                log_warning("Starting a new transaction instead of the unreadable one in %s.", x->w.txn_path);
        if (existing && existing->outcome == OUTCOME_IN_PROGRESS) {
                if (existing->operation == TRANSACTION_STAGE)
                        return log_error_errno(EBUSY, "Staging (transaction %s) is in progress: finish or cancel it first.",
                                               existing->id);
                if (existing->step >= STEP_SWITCHING && existing->to_slot == x->w.booted)
                        return log_error_errno(EBUSY, "The switch to slot %s (transaction %s) is not finished: "
                                               "dreamlink-boot-check.service checks it (see systemctl status "
                                               "dreamlink-boot-check.service; start it again if it failed).",
                                               slot_to_string(x->w.booted), existing->id);
                /* Boot check closes every switch in the boot after it; one still open here was cut
                 * short before its switch (this is the boot it started in, or a reboot of it). */
                log_warning("Transaction %s (%s to slot %s) was interrupted at step %s; closing it.", existing->id,
                            transaction_operation_to_string(existing->operation), slot_to_string(existing->to_slot),
                            transaction_step_to_string(existing->step));
                commit_undo_interrupted(existing);
                (void) record_finish(existing, x->w.txn_path, OUTCOME_FAILED, "interrupted before the switch", x->w.root,
                                     x->w.config);
        }

        r = transaction_new(x->operation, x->w.booted, x->w.target, &x->txn);
        if (r < 0)
                return log_error_errno(r, "Failed to start a transaction: %m");
        if (free_and_strdup(&x->txn->from_version, x->slots.slots[x->w.booted].version) < 0 ||
            free_and_strdup(&x->txn->to_version, x->slots.slots[x->w.target].version) < 0 ||
            free_and_strdup(&x->txn->to_commit, x->slots.slots[x->w.target].commit) < 0)
                return log_oom();
        (void) log_set_transaction_id(x->txn->id);
        reporter_transaction(x->reporter, x->txn->id);
        log_info("Starting to %s from slot %s (%s) to slot %s (%s)%s.", operation_verb(x), slot_to_string(x->w.booted),
                 strna(x->txn->from_version), slot_to_string(x->w.target), strna(x->txn->to_version),
                 x->flags & COMMIT_REBOOT ? " through a reboot" :
                 x->flags & COMMIT_NO_HANDOFF ? " with kexec, without handoff" : " with kexec and handoff");
        return record_step(x->txn, x->w.txn_path, STEP_STARTED, x->reporter);
}

/* Runs fn in a child with a mount namespace of its own, so that what it mounts is private
 * and goes with it however it ends. The worker itself stays in the machine's namespace:
 * criu must see the services' mounts as they are. The child logged its error; we take
 * it over as ours, for the job's result. */
static int fork_private_mounts(Commit *x, int (*fn)(Commit *x)) {
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return log_error_errno(errno, "Failed to create a pipe: %m");
        pid_t pid = fork();
        if (pid < 0) {
                int e = errno;
                close(pipefd[0]);
                close(pipefd[1]);
                return log_error_errno(e, "Failed to fork: %m");
        }
        if (pid == 0) {
                close(pipefd[0]);
                log_clear_last_error();
                int r = unshare(CLONE_NEWNS) < 0 ? -errno : 0;
                if (r >= 0 && mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
                        r = -errno;
                if (r < 0)
                        log_error_errno(r, "Failed to set up a private mount namespace: %m");
                else
                        r = fn(x);
                if (r < 0 && log_get_last_error())
                        (void) write(pipefd[1], log_get_last_error(), strlen(log_get_last_error()));
                _exit(r < 0 ? MIN(-r, 255) : 0);
        }
        close(pipefd[1]);
        char message[2048] = {};
        ssize_t n = read(pipefd[0], message, sizeof(message) - 1);
        close(pipefd[0]);
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return log_error_errno(errno, "Failed to wait for a child: %m");
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (n > 0)
                log_set_last_error(message);
        return WIFEXITED(status) ? -WEXITSTATUS(status) : -EPROTO;
}

/* The admin's changes to the live /etc go into the target's /etc, the way
 * ostree does it: the booted version's pristine /etc is the base. */
static int merge_etc(Commit *x) {
        _cleanup_free_ char *device = path_prefix(x->w.root, slot_partition_path(x->w.target)), *repo_path = NULL,
                *tmp = NULL, *base = NULL, *current = NULL, *target_etc = NULL;
        _cleanup_(image_repo_unrefp) OstreeRepo *repo = NULL;
        _cleanup_(etc_merge_report_done) EtcMergeReport report = {};
        const char *booted_commit = x->slots.slots[x->w.booted].commit;
        int r;

        if (!device || asprintf(&x->mountpoint, "%s/run/dreamlink/commit-%s", x->w.root, slot_to_string(x->w.target)) < 0)
                return log_oom();
        r = mkdir_p(x->mountpoint, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", x->mountpoint);
        if (mount(device, x->mountpoint, "ext4", MS_NOATIME, NULL) < 0)
                return log_error_errno(errno, "Failed to mount slot %s (%s): %m", slot_to_string(x->w.target), device);
        x->mounted = true;

        current = path_prefix(x->w.root, "/etc");
        if (!current || asprintf(&target_etc, "%s/etc", x->mountpoint) < 0)
                return log_oom();
        if (!booted_commit) {
                /* A machine adopted without a record of its tree: no base to tell the admin's
                 * changes from the release's. The target keeps its own /etc. */
                log_warning("The booted slot's tree is unknown: /etc is not merged into slot %s.", slot_to_string(x->w.target));
        } else {
                repo_path = state_path(x->w.root, x->w.config, LOCAL_REPO);
                tmp = state_path(x->w.root, x->w.config, "etc-base.XXXXXX");
                if (!repo_path || !tmp)
                        return log_oom();
                r = local_repo_open(repo_path, &repo);
                if (r < 0)
                        return r;
                if (!mkdtemp(tmp))
                        return log_error_errno(errno, "Failed to create %s: %m", tmp);
                if (asprintf(&base, "%s/etc", tmp) < 0)
                        return log_oom();
                r = image_repo_checkout_subpath(repo, booted_commit, "/etc", base);
                if (r >= 0)
                        r = etc_merge(base, current, target_etc, &report);
                (void) rm_rf(tmp);
                if (r < 0)
                        return log_error_errno(r, "Failed to merge /etc into slot %s: %m", slot_to_string(x->w.target));
                log_info("Merged /etc into slot %s: %u changed or added by the admin, %u deleted, %zu conflict%s%s%s.",
                         slot_to_string(x->w.target), report.kept_admin, report.deleted_by_admin,
                         strv_length(report.conflicts), strv_length(report.conflicts) == 1 ? "" : "s",
                         report.conflicts ? " (the admin's version kept): " : "",
                         report.conflicts ? report.conflicts[0] : "");
        }

        r = 0;
        int fd = open(x->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
                if (syncfs(fd) < 0)
                        r = -errno;
                close(fd);
        }
        if (umount2(x->mountpoint, 0) < 0)
                return log_error_errno(errno, "Failed to unmount %s: %m", x->mountpoint);
        x->mounted = false;
        return r < 0 ? log_error_errno(r, "Failed to sync slot %s: %m", slot_to_string(x->w.target)) : 0;
}

static int commit_merge_etc(Commit *x) {
        return fork_private_mounts(x, merge_etc);
}

/* ---- handoff ------------------------------------------------------------------------------ */

static bool handoff_wanted(const Commit *x) {
        return x->w.config->handoff && !(x->flags & (COMMIT_NO_HANDOFF | COMMIT_REBOOT));
}

static int read_last_pid(uint64_t *ret) {
        _cleanup_free_ char *s = NULL;
        int r = read_file_limited("/proc/sys/kernel/ns_last_pid", 64, &s, NULL);
        return r < 0 ? r : parse_uint64(strstrip(s), ret);
}

/* Which opted-in services will be checkpointed: the ones running now. The dry run (commit_plan_run())
 * takes the same list. */
static int commit_plan_units(Commit *x) {
        int r;

        r = handoff_config_load(NULL, &x->units);
        if (r < 0)
                return r;
        r = handoff_new(&x->handoff);
        if (r < 0)
                return r;
        for (HandoffUnit **u = x->units; u && *u; u++) {
                _cleanup_(unit_info_done) UnitInfo info = {};
                if (!(*u)->enabled)
                        continue;
                if (handoff_unit_info(x->handoff, (*u)->unit, &info) < 0 || !streq(info.active_state, "active"))
                        continue; /* not running: nothing to carry */
                /* Sessions=yes: the sessions go, the unit (sshd's listener) starts fresh. */
                if (strv_extend((*u)->sessions ? &x->session_units : &x->planned, (*u)->unit) < 0)
                        return log_oom();
        }
        return 0;
}

static int commit_plan_handoff(Commit *x) {
        int r;

        if (!handoff_wanted(x))
                return 0;
        r = commit_plan_units(x);
        if (r < 0)
                return r;
        x->images_root = handoff_set_dir(x->txn->id);
        if (!x->images_root)
                return log_oom(); /* the id is ours, made valid */
        uint64_t last = 0;
        (void) read_last_pid(&last);
        x->pid_floor = MAX(last, 1000u) + PID_FLOOR_MARGIN;
        if (x->pid_floor > HANDOFF_PID_FLOOR_MAX)
                x->pid_floor = 0; /* PIDs wrapped around: no floor to keep free, restores may clash */
        return 0;
}

/* ---- the kernel --------------------------------------------------------------------------- */

/* The set is named when anything is carried, services or sessions (their network locks
 * and restores need it); the units only when there are any. */
static int commit_cmdline(Commit *x, const char *options, char * const *units, bool sessions, char **ret) {
        _cleanup_free_ char *s = NULL;
        int r;

        s = strprintf("%s dreamlink.transaction=%s", options, x->txn->id);
        if (!s)
                return -ENOMEM;
        if ((units && units[0]) || sessions) {
                _cleanup_free_ char *words = NULL;
                HandoffCmdline c = {
                        .set_id = x->txn->id,
                        .units = (char **) units,
                        .pid_floor = x->pid_floor,
                };
                r = handoff_cmdline_format(&c, &words);
                if (r < 0)
                        return r;
                char *n = strprintf("%s%s", s, words);
                if (!n)
                        return -ENOMEM;
                free(s);
                s = n;
        }
        /* A kernel that panics in the new slot must not sit there: the firmware then boots
         * the default entry, still the slot we come from. And the watchdog armed across the
         * kexec must stay armed across the next one too (a rollback from there). */
        static const char *const defaults[][2] = {
                { "panic", "10" },
                { "watchdog.stop_on_reboot", "0" },
        };
        for (size_t i = 0; i < ELEMENTSOF(defaults); i++) {
                _cleanup_free_ char *v = NULL;
                if (proc_cmdline_get_key(options, defaults[i][0], &v) != -ENOENT)
                        continue;
                char *n = strprintf("%s %s=%s", s, defaults[i][0], defaults[i][1]);
                if (!n)
                        return -ENOMEM;
                free(s);
                s = n;
        }
        if (strlen(s) >= KEXEC_CMDLINE_MAX)
                return log_error_errno(E2BIG, "The kernel command line for slot %s is too long (%zu bytes): hand off fewer services.",
                                       slot_to_string(x->w.target), strlen(s));
        *ret = TAKE_PTR(s);
        return 0;
}

/* The kernel stops a watchdog at a kexec unless told not to; then a hang early in the new
 * slot's boot (before systemd opens the watchdog) would not bring the machine back. */
static void commit_check_watchdog(Commit *x) {
        _cleanup_free_ char *dev = path_prefix(x->w.root, "/sys/class/watchdog/watchdog0"),
                            *param = path_prefix(x->w.root, "/sys/module/watchdog/parameters/stop_on_reboot"),
                            *v = NULL;
        if (!dev || !param || access(dev, F_OK) < 0)
                return;
        if (read_file_limited(param, 64, &v, NULL) >= 0 && streq(strstrip(v), "0"))
                return;
        log_warning("The hardware watchdog stops at the kexec (the running kernel lacks watchdog.stop_on_reboot=0): "
                    "a hang early in slot %s's boot would not reset the machine.", slot_to_string(x->w.target));
}

static int commit_load_kernel(Commit *x, char * const *units, bool sessions) {
        _cleanup_(boot_entry_state_done) BootEntryState entry = {};
        _cleanup_free_ char *kernel = NULL, *initrd = NULL, *cmdline = NULL;
        _cleanup_close_ int kfd = -EBADF, ifd = -EBADF;
        int r;

        r = boot_entry_read(x->w.esp, x->w.target, &entry);
        if (r < 0)
                return r;
        if (!entry.exists || !entry.options)
                return log_error_errno(ENOENT, "Slot %s has no boot entry with a command line in %s/loader/entries: stage it again.",
                                       slot_to_string(x->w.target), x->w.esp);
        _cleanup_free_ char *esp_dir = slot_esp_dir(x->w.target);
        if (!esp_dir || asprintf(&kernel, "%s%s/" SLOT_KERNEL_FILE, x->w.esp, esp_dir) < 0 ||
            asprintf(&initrd, "%s%s/" SLOT_INITRD_FILE, x->w.esp, esp_dir) < 0)
                return log_oom();
        r = commit_cmdline(x, entry.options, units, sessions, &cmdline);
        if (r < 0)
                return r == -ENOMEM ? log_oom() : r;

        kfd = open(kernel, O_RDONLY | O_CLOEXEC);
        if (kfd < 0)
                return log_error_errno(errno, "Failed to open slot %s's kernel %s: %m", slot_to_string(x->w.target), kernel);
        ifd = open(initrd, O_RDONLY | O_CLOEXEC);
        if (ifd < 0)
                return log_error_errno(errno, "Failed to open slot %s's initrd %s: %m", slot_to_string(x->w.target), initrd);
        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        if (syscall(SYS_kexec_file_load, kfd, ifd, strlen(cmdline) + 1, cmdline, 0UL) < 0)
                return log_error_errno(errno, "The running kernel refused slot %s's kernel (kexec_file_load): %m%s",
                                       slot_to_string(x->w.target),
                                       errno == EKEYREJECTED || errno == EPERM ? " (lockdown needs a signed kernel)" : "");
        x->kernel_loaded = true;
        log_info("Loaded slot %s's kernel in %.1f s: %s", slot_to_string(x->w.target),
                 (now_usec(CLOCK_MONOTONIC) - t0) / 1e6, cmdline);
        return 0;
}

static void commit_unload_kernel(Commit *x) {
        if (!x->kernel_loaded)
                return;
        if (syscall(SYS_kexec_file_load, -1, -1, 0UL, NULL, (unsigned long) KEXEC_FILE_UNLOAD) < 0)
                log_warning_errno(errno, "Failed to unload the kexec kernel: %m");
        x->kernel_loaded = false;
}

/* ---- checkpoint --------------------------------------------------------------------------- */

static int commit_dump_sessions(Commit *x) {
        STRV_FOREACH(unit, x->session_units) {
                _cleanup_strv_free_ char **scopes = NULL;
                if (handoff_unit_sessions(x->handoff, *unit, &scopes) < 0)
                        continue; /* logged; its sessions end with the switch */
                STRV_FOREACH(scope, scopes) {
                        DumpStats stats;
                        int r = handoff_dump_session(x->handoff, *scope, x->images_root, &stats);
                        if (r < 0)
                                return r;
                        if (transaction_set_service(x->txn, *scope, r == 0 ? "checkpointed" : "lost") < 0 ||
                            (r == 0 && strv_extend(&x->dumped_sessions, *scope) < 0))
                                return log_oom();
                }
        }
        return 0;
}

static int commit_dump_services(Commit *x) {
        int r;

        if (!x->handoff || (!x->planned && !x->session_units))
                return 0;
        _cleanup_free_ HandoffUnit **list = calloc(strv_length(x->planned) + 1, sizeof(HandoffUnit *));
        if (!list)
                return log_oom();
        size_t n = 0;
        STRV_FOREACH(u, x->planned)
                list[n++] = handoff_config_find(x->units, *u);

        if (x->w.config->stop_timeout != USEC_INFINITY) {
                r = switch_stop_bound_install(NULL, x->w.config->stop_timeout, x->txn->id);
                if (r < 0)
                        return r;
                x->stop_bound = true;
                x->handoff->reload_pending = true; /* handoff_prepare()'s reload takes them in */
        }
        /* One reload for all restore drop-ins (the same-boot way back, should the switch fail). */
        r = handoff_prepare(x->handoff, list, x->images_root);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                DumpStats stats;
                r = handoff_dump(x->handoff, list[i], x->images_root, &stats);
                if (r < 0)
                        return r; /* OnDumpFailure=abort: the caller brings back the others */
                if (transaction_set_service(x->txn, list[i]->unit, r == 0 ? "checkpointed" : "fresh") < 0)
                        return log_oom();
                if (r == 0 && strv_extend(&x->dumped, list[i]->unit) < 0)
                        return log_oom();
                fault_power_cut("dumping");
        }
        (void) handoff_flush(x->handoff);
        r = commit_dump_sessions(x);
        if (r < 0)
                return r;

        /* The command line names what the new boot restores: if a dump failed, load the kernel
         * again with the list as it is. */
        if (strv_length(x->dumped) != strv_length(x->planned) || !x->dumped_sessions != !x->session_units) {
                commit_unload_kernel(x);
                r = commit_load_kernel(x, x->dumped, !!x->dumped_sessions);
                if (r < 0)
                        return r;
        }
        r = record_step(x->txn, x->w.txn_path, STEP_SERVICES_DUMPED, x->reporter);
        if (r >= 0)
                fault_power_cut("dumped");
        return r;
}

/* Before the switch, a failure brings every checkpointed service back here. */
static void commit_restore_here(Commit *x) {
        _cleanup_strv_free_ char **results = NULL;
        (void) handoff_restore_set(x->handoff, x->images_root, &results);
        STRV_FOREACH_PAIR(u, res, results)
                (void) transaction_set_service(x->txn, *u, *res);
        x->dumped = strv_free(x->dumped);
        x->dumped_sessions = strv_free(x->dumped_sessions);
}

/* A switch of this boot that stopped before switching (its worker killed, updaterd crashed):
 * what it checkpointed is still frozen in its images. Everything goes back as it was. */
static void commit_undo_interrupted(Transaction *t) {
        _cleanup_free_ char *set = handoff_set_dir(t->id);
        _cleanup_strv_free_ char **results = NULL;
        sd_id128_t boot;
        char b[SD_ID128_STRING_MAX];

        if (sd_id128_get_boot(&boot) < 0 || !streq_ptr(t->boot_id, sd_id128_to_string(boot, b)))
                return; /* another boot: the services started fresh in it, the boot check cleaned up */
        (void) syscall(SYS_kexec_file_load, -1, -1, 0UL, NULL, (unsigned long) KEXEC_FILE_UNLOAD);
        clear_oneshot_entry();
        bool unbound = switch_stop_bound_remove(NULL) > 0;
        bool frozen = set && access(set, F_OK) >= 0;
        if (!unbound && !frozen)
                return;
        _cleanup_(handoff_freep) Handoff *h = NULL;
        if (handoff_new(&h) < 0)
                return;
        h->reload_pending = unbound;
        if (frozen) {
                log_info("Bringing back what transaction %s checkpointed.", t->id);
                (void) handoff_restore_set(h, set, &results);
                STRV_FOREACH_PAIR(u, res, results)
                        (void) transaction_set_service(t, *u, *res);
        }
        (void) handoff_flush(h);
}

/* ---- the switch --------------------------------------------------------------------------- */

/* LoaderEntryOneShot: UTF-16LE entry id after 4 bytes of attributes. efivarfs files are
 * immutable; an old one is made writable and replaced. */
/* efivarfs makes variables immutable so that a stray write cannot brick a machine: lift
 * that for the one variable we write or remove. */
static void efivar_make_mutable(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        int flags;
        if (fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) >= 0 && (flags & FS_IMMUTABLE_FL)) {
                flags &= ~FS_IMMUTABLE_FL;
                (void) ioctl(fd, FS_IOC_SETFLAGS, &flags);
        }
}

static int set_oneshot_entry(const char *id) {
        uint8_t buf[4 + 2 * 256] = { 0x07, 0, 0, 0 }; /* non-volatile, boot and runtime access */
        size_t n = 4;

        for (const char *p = id; *p && n + 4 <= sizeof(buf); p++) {
                buf[n++] = (uint8_t) *p;
                buf[n++] = 0;
        }
        buf[n++] = 0;
        buf[n++] = 0;

        efivar_make_mutable(EFIVAR_ONESHOT);
        /* efivarfs takes a variable in one write(): no loop. */
        _cleanup_close_ int fd = open(EFIVAR_ONESHOT, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        ssize_t w = write(fd, buf, n);
        if (w < 0)
                return -errno;
        return w == (ssize_t) n ? 0 : -EIO;
}

static int start_target(const char *target) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "StartUnit", &error, NULL, "ss", target,
                               "replace-irreversibly");
        if (r < 0)
                return log_error_errno(r, "Failed to start %s: %s", target, error.message ?: strerror(-r));
        return 0;
}

static void clear_oneshot_entry(void) {
        efivar_make_mutable(EFIVAR_ONESHOT);
        (void) unlink(EFIVAR_ONESHOT);
}

static int commit_switch(Commit *x) {
        int r;

        /* Recorded first: from here on, whichever slot comes up next closes the transaction. */
        r = record_step(x->txn, x->w.txn_path, STEP_SWITCHING, x->reporter);
        if (r < 0)
                return r;
        if (x->flags & COMMIT_REBOOT) {
                _cleanup_(boot_entry_state_done) BootEntryState entry = {};
                /* systemd-boot names a counted entry ("dreamlink-b+3.conf") without its counter,
                 * as loader.conf's default does (measured with 257). */
                r = boot_entry_read(x->w.esp, x->w.target, &entry);
                if (r >= 0 && !entry.exists)
                        r = -ENOENT;
                if (r >= 0)
                        r = set_oneshot_entry(boot_entry_id(x->w.target));
                if (r < 0)
                        return log_error_errno(r, "Failed to tell the boot loader to boot slot %s once (%s): %m",
                                               slot_to_string(x->w.target), EFIVAR_ONESHOT);
                x->oneshot_set = true;
        }
        sync();
        /* A moment for the clients following the job (updatectl over ssh) to hear of it
         * before their sessions are stopped. */
        (void) usleep(SWITCH_NOTICE_USEC);
        return start_target(x->flags & COMMIT_REBOOT ? "reboot.target" : "kexec.target");
}

static int commit_fail(Commit *x, int error) {
        commit_unload_kernel(x);
        if (x->oneshot_set)
                clear_oneshot_entry();
        /* The units' own stop timeouts again, taken in by the restores' reload or the flush. */
        if (x->stop_bound && switch_stop_bound_remove(NULL) > 0)
                x->handoff->reload_pending = true;
        if (x->dumped || x->dumped_sessions) {
                log_info("Bringing the checkpointed services back on slot %s.", slot_to_string(x->w.booted));
                commit_restore_here(x);
        }
        if (x->handoff)
                (void) handoff_flush(x->handoff);
        if (x->txn)
                (void) record_finish(x->txn, x->w.txn_path, OUTCOME_FAILED, log_get_last_error() ?: strerror(-error), x->w.root,
                                     x->w.config);
        return error;
}

/* ---- the dry run --------------------------------------------------------------------------- */

/* What commit_run() would do now, short of doing it: the target, and per opted-in service what
 * its dump would come to (a dry-run dump, as `dreamlink-handoff list` does), in the terms of
 * OnDumpFailure=. Nothing is written, loaded or stopped. */
static int plan_service_json(Commit *x, const HandoffUnit *u, bool *aborts, sd_json_variant **array) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        _cleanup_free_ char *reason = NULL;
        const char *outcome = "carried";

        int r = handoff_try_dump(x->handoff, u, &reason);
        if (r < 0) {
                outcome = u->on_dump_failure == HANDOFF_FAILURE_ABORT ? "aborts" : "fresh";
                *aborts = *aborts || u->on_dump_failure == HANDOFF_FAILURE_ABORT;
                if (!reason && !(reason = strdup(strerror(-r))))
                        return log_oom();
                /* One RESULT line holds the whole plan (WORKER_LINE_MAX). */
                if (strlen(reason) > 480)
                        strcpy(reason + 477, "...");
        }
        r = sd_json_buildo(&v,
                        SD_JSON_BUILD_PAIR_STRING("unit", u->unit),
                        SD_JSON_BUILD_PAIR_STRING("outcome", outcome),
                        SD_JSON_BUILD_PAIR_CONDITION(!!reason, "reason", SD_JSON_BUILD_STRING(reason)));
        if (r < 0)
                return r;
        return sd_json_variant_append_array(array, v);
}

int commit_plan_run(const UpdaterConfig *c, TransactionOperation operation, CommitFlags flags, Reporter *rep) {
        _cleanup_(commit_done) Commit x = {
                .reporter = rep,
                .operation = operation,
                .flags = flags,
        };
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL, *services = NULL, *sessions = NULL;
        _cleanup_free_ char *json = NULL, *message = NULL;
        bool aborts = false;
        int r;

        if ((r = commit_load(&x, c)) < 0 || (r = commit_check_target(&x)) < 0)
                return r;
        if (sd_json_variant_new_array(&services, NULL, 0) < 0 || sd_json_variant_new_array(&sessions, NULL, 0) < 0)
                return log_oom();
        if (handoff_wanted(&x)) {
                r = commit_plan_units(&x);
                if (r < 0)
                        return r;
                STRV_FOREACH(unit, x.planned) {
                        r = plan_service_json(&x, handoff_config_find(x.units, *unit), &aborts, &services);
                        if (r < 0)
                                return log_error_errno(r, "Failed to format the plan: %m");
                }
                STRV_FOREACH(unit, x.session_units) {
                        _cleanup_strv_free_ char **scopes = NULL;
                        _cleanup_(sd_json_variant_unrefp) sd_json_variant *s = NULL;
                        (void) handoff_unit_sessions(x.handoff, *unit, &scopes);
                        r = sd_json_buildo(&s,
                                        SD_JSON_BUILD_PAIR_STRING("unit", *unit),
                                        SD_JSON_BUILD_PAIR_STRV("scopes", scopes));
                        if (r >= 0)
                                r = sd_json_variant_append_array(&sessions, s);
                        if (r < 0)
                                return log_error_errno(r, "Failed to format the plan: %m");
                }
        }
        const SlotStatus *from = &x.slots.slots[x.w.booted], *to = &x.slots.slots[x.w.target];
        r = sd_json_buildo(&v,
                        SD_JSON_BUILD_PAIR_STRING("operation", transaction_operation_to_string(operation)),
                        SD_JSON_BUILD_PAIR_STRING("from_slot", slot_to_string(x.w.booted)),
                        SD_JSON_BUILD_PAIR_STRING("from_version", strempty(from->version)),
                        SD_JSON_BUILD_PAIR_STRING("to_slot", slot_to_string(x.w.target)),
                        SD_JSON_BUILD_PAIR_STRING("to_version", strempty(to->version)),
                        SD_JSON_BUILD_PAIR_STRING("to_kernel", strempty(to->kernel)),
                        SD_JSON_BUILD_PAIR_STRING("method", flags & COMMIT_REBOOT ? "reboot" : "kexec"),
                        SD_JSON_BUILD_PAIR_BOOLEAN("handoff", handoff_wanted(&x)),
                        SD_JSON_BUILD_PAIR_BOOLEAN("aborts", aborts),
                        SD_JSON_BUILD_PAIR_VARIANT("services", services),
                        SD_JSON_BUILD_PAIR_VARIANT("sessions", sessions));
        if (r >= 0)
                r = sd_json_variant_format(v, 0, &json);
        if (r < 0)
                return log_error_errno(r, "Failed to format the plan: %m");
        reporter_result(rep, json);
        if (asprintf(&message, "A %s now would %s to slot %s (%s).", transaction_operation_to_string(operation),
                     aborts ? "be refused instead of switching" : "switch", slot_to_string(x.w.target),
                     strna(to->version)) < 0)
                return log_oom();
        reporter_done(rep, 0, message);
        return 0;
}

int commit_run(const UpdaterConfig *c, TransactionOperation operation, CommitFlags flags, Reporter *rep) {
        _cleanup_(commit_done) Commit x = {
                .reporter = rep,
                .operation = operation,
                .flags = flags,
        };
        _cleanup_free_ char *message = NULL;
        int r;

        if ((r = commit_load(&x, c)) < 0 || (r = commit_check_target(&x)) < 0 ||
            (r = commit_take_fleet_slot(&x)) < 0 || (r = commit_plan(&x)) < 0)
                return r;
        if (!(flags & COMMIT_REBOOT))
                commit_check_watchdog(&x);

        if ((r = commit_merge_etc(&x)) < 0 ||
            (r = commit_plan_handoff(&x)) < 0 ||
            (!(flags & COMMIT_REBOOT) && (r = commit_load_kernel(&x, x.planned, !!x.session_units)) < 0) ||
            (!(flags & COMMIT_REBOOT) && (r = record_step(x.txn, x.w.txn_path, STEP_KERNEL_LOADED, rep)) < 0) ||
            (r = commit_dump_services(&x)) < 0)
                return commit_fail(&x, r);

        if (asprintf(&message, "Switching to slot %s (%s)%s%s.", slot_to_string(x.w.target), strna(x.txn->to_version),
                     flags & COMMIT_REBOOT ? " through a reboot" : " with kexec",
                     x.dumped || x.dumped_sessions ? ", carrying the checkpointed services" : "") < 0)
                return commit_fail(&x, log_oom());
        log_info("%s", message);
        r = commit_switch(&x);
        if (r < 0)
                return commit_fail(&x, r);
        reporter_done(rep, 0, message);
        return 0;
}
