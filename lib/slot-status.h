/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What is in each root slot, as far as dreamlink knows: the per-slot record on
 * the shared VAR partition (/var/lib/dreamlink/slots.json), which both slots'
 * updaterd read and write. Versioned JSON, written atomically; a record that is
 * corrupt, contradicts itself or has an unknown format version is refused,
 * never guessed at. It also holds the highest release counter ever accepted, so
 * that anti-rollback holds across slots and reboots. Also here: which slot is
 * booted (from the kernel command line) and the partition device of a slot. */

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"
#include "slot.h"
#include "time-util.h"

#define SLOT_TABLE_FORMAT_VERSION 1
#define SLOT_TABLE_FILE_MAX (64U * 1024U)
#define SLOT_COMMIT_LENGTH 64 /* hex digits of an ostree checksum */

typedef enum SlotState {
        SLOT_STATE_EMPTY,   /* nothing known to be in it */
        SLOT_STATE_WRITING, /* being (over)written: not bootable */
        SLOT_STATE_STAGED,  /* written and verified, boot entry installed, not yet proven */
        SLOT_STATE_GOOD,    /* booted and passed the health check */
        SLOT_STATE_BAD,     /* failed the health check, or gave up on */
        _SLOT_STATE_MAX,
        _SLOT_STATE_INVALID = -EINVAL,
} SlotState;

typedef struct SlotStatus {
        SlotState state;
        char *version;     /* release version, NULL while empty or writing */
        char *commit;      /* ostree checksum, 64 lowercase hex digits, or NULL
                            * (set when staged; may be unknown for a slot adopted at first boot) */
        uint64_t counter;  /* release counter of what is in the slot, 0 if unknown */
        char *kernel;      /* kernel version of the tree, or NULL */
        usec_t updated;    /* CLOCK_REALTIME of the last change, 0 if never */
} SlotStatus;

typedef struct SlotTable {
        SlotStatus slots[_SLOT_MAX];
        uint64_t highest_counter; /* highest release counter ever accepted */
} SlotTable;

/* "empty", "writing", "staged", "good", "bad"; NULL / _SLOT_STATE_INVALID otherwise. */
const char *slot_state_to_string(SlotState s);
SlotState slot_state_from_string(const char *s);

/* The table of a machine with no record yet: both slots empty, counter 0. */
void slot_table_init(SlotTable *t);
/* Frees the strings of t and leaves it as slot_table_init() does. */
void slot_table_done(SlotTable *t);

/* Serializes t (pretty JSON with a trailing newline) into *ret. */
int slot_table_to_json(const SlotTable *t, char **ret);
/* Parses a record; source names it in messages. Refusals are logged and give
 * -EBADMSG (corrupt or self-contradicting) or -EPROTONOSUPPORT (unknown version). */
int slot_table_from_json(const char *text, const char *source, SlotTable *ret);

/* Reads path into *ret (initialized by this call). -ENOENT when there is no
 * record yet (not logged: the caller may start from slot_table_init()); other
 * errors as slot_table_from_json(). */
int slot_table_load(const char *path, SlotTable *ret);
/* Writes t to path atomically (temporary file, fsync, rename), mode 0644. */
int slot_table_save(const SlotTable *t, const char *path);

/* State transitions. Each stamps the slot's time. A refused transition leaves
 * t unchanged, is logged with its reason and returns:
 *   -EBUSY   the slot to be written is the booted one
 *   -ESTALE  release counter lower than the highest ever accepted (rollback)
 *   -EINVAL  bad argument, or a transition the state does not allow */

/* Any state → writing, unless slot is the booted one. Forgets what was in it. */
int slot_mark_writing(SlotTable *t, Slot slot, Slot booted);
/* writing → staged: records what the slot now holds and raises highest_counter
 * to counter (the release is accepted once written and verified). */
int slot_mark_staged(SlotTable *t, Slot slot, const char *version, const char *commit,
                     uint64_t counter, const char *kernel);
/* The rollback floor: raises highest_counter to counter, never lowers it.
 * Called for every release whose manifest verified (a check, a stage, even
 * one that is interrupted later), as TUF keeps the highest version it has
 * verified: an older release signed before it is refused afterwards.
 * Returns 1 when raised (the table must be saved), 0 when not. */
int slot_table_raise_floor(SlotTable *t, uint64_t counter);
/* staged or good → good. */
int slot_mark_good(SlotTable *t, Slot slot);
/* writing, staged, good or bad → bad (an empty slot has nothing to be bad). */
int slot_mark_bad(SlotTable *t, Slot slot);
/* First boot of a machine built from a disk image, which has no record: an
 * empty booted slot is recorded as good with what the booted OS says it is
 * (version, commit, kernel may each be NULL if unknown; counter 0 if unknown).
 * A slot that is not empty is left alone (returns 0). */
int slot_adopt_booted(SlotTable *t, Slot booted, const char *version, const char *commit,
                      uint64_t counter, const char *kernel);

/* Which slot the kernel command line (the contents of /proc/cmdline) boots:
 * root=PARTLABEL=root-a or root=/dev/disk/by-partlabel/root-a, quotes removed;
 * the last root= wins, as in the kernel, and words after "--" are init's.
 * -ENOENT when the last root= names neither slot or there is none. */
int slot_from_cmdline(const char *proc_cmdline, Slot *ret);
/* "/dev/disk/by-partlabel/root-a" or …-b; NULL for an invalid slot. */
const char *slot_partition_path(Slot slot);
/* True for 64 lowercase hex digits. */
bool slot_commit_is_valid(const char *s);
