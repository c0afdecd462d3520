/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The contract between updaterd and its clients (updatectl, and anyone's):
 * where the service is on the system bus and what the flags of Commit() and
 * Rollback() mean. Documented in org.dreamlink.Updater1(5); the members are
 * in updaterd's vtable and org.dreamlink.Updater1.xml. */

#define UPDATER_BUS_NAME "org.dreamlink.Updater1"
#define UPDATER_BUS_PATH "/org/dreamlink/Updater1"
#define UPDATER_BUS_INTERFACE "org.dreamlink.Updater1"

typedef enum CommitFlags {
        COMMIT_NO_HANDOFF = 1 << 0, /* services are stopped and start fresh, as on a reboot */
        COMMIT_REBOOT     = 1 << 1, /* through firmware and boot loader instead of kexec (no handoff) */
        _COMMIT_FLAGS_ALL = COMMIT_NO_HANDOFF | COMMIT_REBOOT,
} CommitFlags;
