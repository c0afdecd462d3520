/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "boot-layout.h"
#include "string-util.h"

const char *boot_entry_id(Slot slot) {
        switch (slot) {
        case SLOT_A:
                return "dreamlink-a.conf";
        case SLOT_B:
                return "dreamlink-b.conf";
        default:
                return NULL;
        }
}

char *boot_entry_name(Slot slot, unsigned tries) {
        if (tries == 0)
                return strdup(boot_entry_id(slot));
        return strprintf("dreamlink-%s+%u.conf", slot_to_string(slot), tries);
}

char *slot_esp_dir(Slot slot) {
        return strprintf("/dreamlink/%s", slot_to_string(slot));
}

char *boot_entry_text(Slot slot, const char *title, const char *version, const char *options) {
        const char *s = slot_to_string(slot);
        _cleanup_free_ char *t = title ? strdup(title) : strprintf("dreamlink %s (slot %s)", version, s);
        if (!t)
                return NULL;
        return strprintf("title      %s\n"
                         "sort-key   dreamlink\n"
                         "version    %s\n"
                         "linux      /dreamlink/%s/" SLOT_KERNEL_FILE "\n"
                         "initrd     /dreamlink/%s/" SLOT_INITRD_FILE "\n"
                         "options    %s\n",
                         t, version, s, s, options);
}

char *slot_ref(Slot slot) {
        return strprintf("dreamlink/slot/%s", slot_to_string(slot));
}
