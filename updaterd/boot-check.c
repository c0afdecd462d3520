/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>

#include "boot-check.h"
#include "boot-entry.h"
#include "context.h"
#include "commit.h"
#include "fault.h"
#include "fileio.h"
#include "fleet-job.h"
#include "handoff.h"
#include "handoff-cmdline.h"
#include "health.h"
#include "log.h"
#include "process-util.h"
#include "record.h"
#include "slot-status.h"
#include "status.h"
#include "string-util.h"

typedef struct BootCheck {
        WorkerContext w;
        SlotTable slots;
        Transaction *txn;
} BootCheck;

static void boot_check_done(BootCheck *b) {
        slot_table_done(&b->slots);
        transaction_free(b->txn);
        worker_context_done(&b->w);
        log_set_transaction_id(NULL);
}

/* The handed-off services were started by the boot (the generator made each start a restore):
 * hear what became of them, start fresh any whose restore failed, drop the images. */
static void finish_handoff(BootCheck *b) {
        _cleanup_(handoff_freep) Handoff *h = NULL;
        _cleanup_strv_free_ char **results = NULL;
        _cleanup_(handoff_cmdline_done) HandoffCmdline c = {};
        _cleanup_free_ char *dir = NULL;

        if (handoff_cmdline_parse(NULL, &c) < 0)
                return;
        dir = handoff_set_dir(c.set_id);
        if (!dir)
                return;
        if (handoff_new(&h) < 0)
                return;
        (void) handoff_finish_boot(h, dir, &results);
        if (b->txn)
                STRV_FOREACH_PAIR(u, res, results)
                        (void) transaction_set_service(b->txn, *u, *res);
}

static int slots_save(BootCheck *b) {
        int r = slot_table_save(&b->slots, b->w.slots_path);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", b->w.slots_path);
        return 0;
}

static int boot_check_good(BootCheck *b) {
        Slot s = b->w.booted;
        int r;

        r = slot_mark_good(&b->slots, s);
        if (r >= 0)
                r = slots_save(b);
        if (r < 0)
                return r;
        /* The firmware never counted a kexec boot: bless by hand, then make it the default. */
        r = boot_entry_bless(b->w.esp, s);
        if (r == -ENOENT)
                log_warning("Slot %s has no boot entry to bless: the next firmware boot starts the other slot.",
                            slot_to_string(s));
        else if (r < 0)
                return r; /* logged */
        r = boot_default_set(b->w.esp, s);
        if (r < 0)
                return r; /* logged */
        sync();
        return record_step(b->txn, b->w.txn_path, STEP_HEALTHY, NULL);
}

static int boot_check_target(BootCheck *b) {
        _cleanup_free_ char *reason = NULL;
        Slot from = b->txn->from_slot;
        int r;

        r = record_step(b->txn, b->w.txn_path, MAX(b->txn->step, STEP_BOOTED), NULL);
        if (r < 0)
                return r;
        fault_power_cut("booted");
        finish_handoff(b);
        /* A set whose every dump failed was not named on the command line: only records are left. */
        _cleanup_free_ char *set = handoff_set_dir(b->txn->id);
        if (set)
                (void) rm_rf(set);
        r = record_step(b->txn, b->w.txn_path, MAX(b->txn->step, STEP_SERVICES_RESTORED), NULL);
        if (r < 0)
                return r;

        r = health_check(b->w.config, b->w.root, &reason);
        if (r >= 0)
                fault_power_cut("healthy");
        if (r >= 0) {
                r = boot_check_good(b);
                if (r < 0)
                        return r;
                log_info("Slot %s (%s) is healthy: it is the default boot entry now.", slot_to_string(b->w.booted),
                         strna(b->txn->to_version));
                return record_finish(b->txn, b->w.txn_path, OUTCOME_SUCCEEDED, NULL, b->w.root, b->w.config);
        }

        if (b->txn->operation == TRANSACTION_ROLLBACK) {
                /* The slot rolled back to was good before: no third switch. It keeps running, the
                 * admin hears why. */
                log_error("Slot %s (%s), rolled back to, fails its health check: %s. Staying on it.",
                          slot_to_string(b->w.booted), strna(b->txn->to_version), strna(reason));
                _cleanup_free_ char *e = strprintf("health check failed after the rollback: %s", strna(reason));
                (void) record_finish(b->txn, b->w.txn_path, OUTCOME_FAILED, e, b->w.root, b->w.config);
                return -EBADE;
        }
        log_error("Slot %s (%s) failed its health check: %s. Going back to slot %s.", slot_to_string(b->w.booted),
                  strna(b->txn->to_version), strna(reason), slot_to_string(from));
        if (slot_mark_bad(&b->slots, b->w.booted) >= 0)
                (void) slots_save(b);
        _cleanup_free_ char *error = strprintf("health check failed: %s", strna(reason));
        (void) record_finish(b->txn, b->w.txn_path, OUTCOME_FAILED, error, b->w.root, b->w.config);

        /* The way back is the same switch, sessions carried again. If even that cannot start,
         * the default entry still names the good slot: a reboot gets there. */
        Reporter none = { .fd = -1 };
        r = commit_run(b->w.config, TRANSACTION_ROLLBACK, COMMIT_FALLBACK, &none);
        if (r < 0) {
                log_error_errno(r, "Failed to switch back to slot %s, rebooting into it: %m", slot_to_string(from));
                const char * const argv[] = { "systemctl", "reboot", NULL };
                (void) run_command(argv);
        }
        return -EBADE;
}

/* updaterd runs on demand only, but has work of its own after a boot: giving back the fleet slot
 * a switch took once a slot is blessed (fleet-job.h), committing a release staged before the boot
 * with AutoCommit=. Start it rather than wait for someone to call it; it exits when idle. */
static void updaterd_kick(const BootCheck *b) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *version = NULL;
        const char *why;
        int r;

        if (!b->w.config)
                return; /* no A/B system to work on */
        if (fleet_turn_pending(b->w.root, b->w.config))
                why = "to give back the fleet slot";
        else if (b->w.config->auto_commit && status_auto_commit_pending(b->w.root, b->w.config, &version))
                why = "for AutoCommit=";
        else
                return;
        r = sd_bus_open_system(&bus);
        if (r >= 0)
                r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "StartUnit", &error, NULL, "ss",
                                       "updaterd.service", "replace");
        if (r < 0)
                log_warning_errno(r, "Failed to start updaterd.service %s (the next call to updaterd does): %s", why,
                                  error.message ?: strerror(-r));
}

/* Finishes the switch that led to this boot, if one is open. */
static int boot_check_switch(BootCheck *b, const UpdaterConfig *c);

int boot_check_run(const UpdaterConfig *c) {
        _cleanup_(boot_check_done) BootCheck b = {};
        int r;

        r = boot_check_switch(&b, c);
        updaterd_kick(&b);
        return r;
}

static int boot_check_switch(BootCheck *b, const UpdaterConfig *c) {
        int r;

        r = worker_context_load(&b->w, c);
        if (r < 0)
                return r;

        r = transaction_load(b->w.txn_path, &b->txn);
        if (r < 0 && r != -ENOENT)
                return r; /* logged: a record we cannot read is not guessed at */
        if (!b->txn || b->txn->outcome != OUTCOME_IN_PROGRESS || b->txn->operation == TRANSACTION_STAGE) {
                b->txn = transaction_free(b->txn);
                finish_handoff(b); /* a handoff boot with its record already closed: still report */
                return 0;
        }
        (void) log_set_transaction_id(b->txn->id);
        r = slot_table_load(b->w.slots_path, &b->slots);
        if (r < 0)
                return r;

        if (b->txn->step < STEP_SWITCHING) {
                /* Cut short before its switch (power cut, crash): nothing changed but the
                 * checkpoints, whose services started fresh in this boot. */
                log_warning("Transaction %s was interrupted at step %s, before the switch: slot %s keeps running.",
                            b->txn->id, transaction_step_to_string(b->txn->step), slot_to_string(b->w.booted));
                _cleanup_(handoff_freep) Handoff *h = NULL;
                if (handoff_new(&h) >= 0)
                        (void) handoff_gc(h, NULL);
                return record_finish(b->txn, b->w.txn_path, OUTCOME_FAILED, "interrupted before the switch", b->w.root, c);
        }

        if (b->w.booted == b->txn->to_slot)
                return boot_check_target(b);

        /* Back on the slot we came from: the target never came up healthy (kernel panic,
         * watchdog, power cut), and the firmware booted the default entry. */
        _cleanup_free_ char *error = strprintf("slot %s did not come up; the machine restarted on slot %s",
                                               slot_to_string(b->txn->to_slot), slot_to_string(b->w.booted));
        log_error("Transaction %s: %s. Services started fresh.", b->txn->id, strna(error));
        _cleanup_(handoff_freep) Handoff *h = NULL;
        if (handoff_new(&h) >= 0)
                (void) handoff_gc(h, NULL);
        /* A new release that booted and then died is not offered again; a rollback's target
         * was good before and keeps its state. */
        if (b->txn->operation == TRANSACTION_COMMIT && b->txn->step >= STEP_BOOTED &&
            slot_mark_bad(&b->slots, b->txn->to_slot) >= 0)
                (void) slots_save(b);
        return record_finish(b->txn, b->w.txn_path, OUTCOME_FAILED, error, b->w.root, c);
}
