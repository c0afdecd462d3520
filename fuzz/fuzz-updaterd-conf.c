/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* updaterd.conf and its drop-ins: the input's parts (see FUZZ_SEPARATOR) are
 * the main file and drop-ins in /etc, /run and /usr/lib of a scratch root. */
#include "fuzz.h"
#include "macro.h"
#include "string-util.h"
#include "updaterd-conf.h"

static const char * const files[] = {
        "etc/dreamlink/updaterd.conf",
        "etc/dreamlink/updaterd.conf.d/50-admin.conf",
        "run/dreamlink/updaterd.conf.d/60-runtime.conf",
        "usr/lib/dreamlink/updaterd.conf.d/40-vendor.conf",
        "usr/lib/dreamlink/updaterd.conf.d/50-admin.conf", /* hidden by /etc's */
};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *root = fuzz_write_parts(data, size, files, ELEMENTSOF(files));
        UpdaterConfig c;

        updater_config_init(&c);
        if (updater_config_load(&c, root) >= 0) {
                /* What the daemon relies on without checking again. */
                fuzz_assert(c.channel && c.trusted_keys_dir && c.state_dir);
                fuzz_assert(c.trusted_keys_dir[0] == '/' && c.state_dir[0] == '/');
                fuzz_assert(!c.ca_file || c.ca_file[0] == '/');
                fuzz_assert(c.boot_tries >= 1 && c.boot_tries <= 9);
        }
        updater_config_done(&c);
        return 0;
}
