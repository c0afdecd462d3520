/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* dreamlink's places on disk, for every component: the device's state
 * (updaterd, the boot check, the handoff), and what `dreamlink-image disk`
 * seeds of it. docs/design.md, "dreamlink's own state", describes them. */

/* The state directory, on the shared VAR partition; updaterd.conf's
 * StateDirectory= moves updaterd's files (the names below) elsewhere. */
#define STATE_DIR_IN_VAR "lib/dreamlink" /* for what builds the VAR partition */
#define STATE_DIR_DEFAULT "/var/" STATE_DIR_IN_VAR
#define SLOT_TABLE_FILE "slots.json"
#define TRANSACTION_FILE "transaction.json"
#define LAST_CHECK_FILE "last-check.json"
#define FLEET_TURN_FILE "fleet-turn.json" /* [Fleet]: this machine's turn, see updaterd/fleet-turn.h */
#define HISTORY_DIR "history"    /* finished transactions, one file each */
#define LOCAL_REPO "repo"        /* bare ostree repo: the trees of both slots */

/* Checkpoint sets: HANDOFF_STATE_DIR/<transaction id>/<unit>/. Always here,
 * whatever StateDirectory= says: the boot a handoff switched into reads them
 * in its generator and before its network comes up, before any
 * configuration but the kernel command line. */
#define HANDOFF_STATE_DIR STATE_DIR_DEFAULT "/handoff"
#define HANDOFF_RUN_DIR "/run/dreamlink/handoff"

/* systemd's runtime unit directory: drop-ins there go with the boot. */
#define SYSTEMD_RUNTIME_UNIT_DIR "/run/systemd/system"

/* Where the firmware's ESP is mounted on a dreamlink machine. */
#define ESP_PATH "/efi"

/* HANDOFF_STATE_DIR/ID, for an id that is a transaction id; NULL for one
 * that is not (it ends up in paths) or when out of memory. */
char *handoff_set_dir(const char *id);
