/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Boot Loader Spec type #1 entries on the ESP, one per slot, for systemd-boot
 * with boot counting. The ESP (mounted at /efi on a running system; any
 * directory in tests) holds:
 *
 *   loader/loader.conf                    "default dreamlink-a.conf", among other lines
 *   loader/entries/dreamlink-a.conf       a blessed (known good) entry, no counter
 *   loader/entries/dreamlink-b+3.conf     a counted entry: 3 tries left
 *   dreamlink/<slot>/vmlinuz, initrd.img  each slot's kernel and initrd
 *
 * systemd-boot renames NAME+LEFT-DONE.conf to NAME+(LEFT-1)-(DONE+1).conf before
 * booting it and sorts entries with no tries left (+0-N, "bad") last;
 * systemd-bless-boot renames it to NAME.conf once the boot is good. The entry id
 * that loader.conf's "default" names is the file name without the counter.
 * Files are replaced by temporary file + fsync + rename, the best vfat offers.
 *
 * Note: an EFI variable set by `bootctl set-default` (LoaderEntryDefault)
 * overrides loader.conf; dreamlink never sets it.
 *
 * Every function logs what went wrong, with the file at fault, except -EINVAL
 * for arguments that are no slot or entry and the -ENOENT each one documents:
 * callers add nothing. */

#include <stdbool.h>

#include "boot-layout.h" /* boot_entry_id() and the entries' format */
#include "macro.h"
#include "slot.h"

typedef struct BootEntryInfo {
        const char *version;    /* release version: the entry's "version" line */
        const char *title;      /* NULL: "dreamlink VERSION (slot X)" */
        const char *options;    /* kernel command line; its root= must name the slot */
        const char *kernel_src; /* files to copy to the ESP */
        const char *initrd_src;
} BootEntryInfo;

typedef struct BootEntryState {
        bool exists;
        bool counting;       /* the file name carries a boot counter */
        unsigned tries_left; /* only when counting */
        unsigned tries_done;
        char *version;       /* the entry's "version" line, NULL if it has none */
        char *options;       /* its kernel command line, NULL if it has none */
        char *filename;      /* e.g. "dreamlink-b+2-1.conf" */
} BootEntryState;

void boot_entry_state_done(BootEntryState *s);
/* A counted entry with no tries left: systemd-boot has given up on it. */
static inline bool boot_entry_state_is_bad(const BootEntryState *s) {
        return s->exists && s->counting && s->tries_left == 0;
}


/* Installs slot's entry: copies kernel and initrd to ESP/dreamlink/<slot>/, then
 * writes loader/entries/dreamlink-<slot>+<tries>.conf (tries 0: no counting, plain
 * name) and only then removes the slot's other entry files and leftover
 * temporary files. Never touches the other slot or the default. -EINVAL for bad
 * input (newlines, root= naming another slot); errors are logged. The ESP needs
 * room for a second copy of the slot's kernel and initrd while they are replaced. */
int boot_entry_install(const char *esp, Slot slot, const BootEntryInfo *info, unsigned tries);
/* Removes slot's entry files first, then its kernel and initrd. -EBUSY (logged)
 * if loader.conf's default names the slot: nothing would be left to boot by default. */
int boot_entry_remove(const char *esp, Slot slot);
/* Reads slot's entry into *ret (exists = false when there is none). -ENOTUNIQ
 * (logged) when the slot has several entry files (a crash mid-install; the next
 * install or remove settles it), -EBADMSG for an unreadable entry. */
int boot_entry_read(const char *esp, Slot slot, BootEntryState *ret);
/* Renames slot's counted entry to the plain name, as systemd-bless-boot does
 * (needed after a kexec, where the firmware never counted). 0 if it is already
 * plain; -ENOENT if slot has no entry. */
int boot_entry_bless(const char *esp, Slot slot);

/* The slot loader.conf's (last) "default" line names. -ENOENT without a
 * loader.conf or default line, -ENXIO (logged) if the default is not a
 * dreamlink slot's plain id. */
int boot_default_get(const char *esp, Slot *ret);
/* Points loader.conf's "default" at boot_entry_id(slot), atomically, keeping
 * every other line (later duplicate default lines are dropped; a missing
 * loader.conf or default line is created). */
int boot_default_set(const char *esp, Slot slot);
