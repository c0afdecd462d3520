/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A slot as the boot loader and the repository see it: where its kernel and
 * initrd live on the ESP, what its Boot Loader Spec entry is called and says,
 * and the ostree ref that keeps its tree. `dreamlink-image disk` writes slot
 * A's; stage and commit write and read either slot's; systemd-boot reads
 * them. docs/design.md, "On-disk layout". */

#include "slot.h"

#define SLOT_KERNEL_FILE "vmlinuz"
#define SLOT_INITRD_FILE "initrd.img"

/* The entry of a slot without a boot counter: "dreamlink-a.conf". */
const char *boot_entry_id(Slot slot);
/* With tries > 0, the counted name systemd-boot decrements: "dreamlink-b+3.conf". */
char *boot_entry_name(Slot slot, unsigned tries);
/* "/dreamlink/a", the slot's directory on the ESP (prefix it with the ESP's mount point). */
char *slot_esp_dir(Slot slot);
/* The entry's text; title NULL: "dreamlink VERSION (slot X)". */
char *boot_entry_text(Slot slot, const char *title, const char *version, const char *options);
/* "dreamlink/slot/a": the local repository's ref that keeps the slot's tree from pruning. */
char *slot_ref(Slot slot);
