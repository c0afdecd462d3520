/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Boot entries and loader.conf on the ESP, which anything that mounts the ESP
 * (another OS, the firmware setup, an admin) may have written. The input's
 * parts (see FUZZ_SEPARATOR) are: an entry file name, its text, loader.conf,
 * and optionally a second entry file name (an interrupted install). */
#include <string.h>

#include "boot-entry.h"
#include "fuzz.h"
#include "macro.h"
#include "string-util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup();
        return 0;
}

static void write_entry(const char *esp, const FuzzPart *name, const FuzzPart *text) {
        _cleanup_free_ char *n = fuzz_strndup(name->data, name->size), *path = NULL;

        if (!filename_is_valid(n) || strlen(n) != name->size)
                return;
        path = strprintf("loader/entries/%s", n);
        fuzz_assert(path);
        fuzz_write_file(esp, path, text->data, text->size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *esp = fuzz_reset_dir("esp");
        FuzzPart parts[4] = {};
        Slot def;

        size_t n = fuzz_split(data, size, parts, ELEMENTSOF(parts));
        if (n < 3)
                return 0;
        write_entry(esp, &parts[0], &parts[1]);
        fuzz_write_file(esp, "loader/loader.conf", parts[2].data, parts[2].size);
        if (n == 4)
                write_entry(esp, &parts[3], &parts[1]);

        (void) boot_default_get(esp, &def);
        for (Slot s = 0; s < _SLOT_MAX; s++) {
                _cleanup_(boot_entry_state_done) BootEntryState st = {};

                if (boot_entry_read(esp, s, &st) < 0 || !st.exists)
                        continue;
                fuzz_assert(st.filename);
                /* Blessed, it reads back as the plain, uncounted entry. */
                if (boot_entry_bless(esp, s) >= 0) {
                        boot_entry_state_done(&st);
                        fuzz_assert(boot_entry_read(esp, s, &st) >= 0);
                        fuzz_assert(st.exists && !st.counting && streq(st.filename, boot_entry_id(s)));
                }
        }

        /* Whatever loader.conf held, the default set is the default read. */
        for (Slot s = 0; s < _SLOT_MAX; s++)
                if (boot_default_set(esp, s) >= 0) {
                        fuzz_assert(boot_default_get(esp, &def) >= 0);
                        fuzz_assert(def == s);
                }
        return 0;
}
