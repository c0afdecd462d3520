/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* handoff.d/ *.conf, one file per carried service: the input's parts (see
 * FUZZ_SEPARATOR) are files in /etc, /run and /usr/lib of a scratch root. */
#include "fuzz.h"
#include "handoff-config.h"
#include "macro.h"
#include "string-util.h"

static const char * const files[] = {
        "etc/dreamlink/handoff.d/sshd.conf",
        "run/dreamlink/handoff.d/redis.conf",
        "usr/lib/dreamlink/handoff.d/nginx.conf",
        "usr/lib/dreamlink/handoff.d/sshd.conf", /* hidden by /etc's */
};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *root = fuzz_write_parts(data, size, files, ELEMENTSOF(files));
        HandoffUnit **l = NULL;

        if (handoff_config_load(root, &l) >= 0)
                for (HandoffUnit **u = l; *u; u++) {
                        /* Unit names go into drop-in paths and command lines unquoted. */
                        fuzz_assert(unit_name_is_service((*u)->unit));
                        fuzz_assert(!(*u)->pre_dump_hook || (*u)->pre_dump_hook[0] == '/');
                        /* One file per unit. */
                        fuzz_assert(handoff_config_find(l, (*u)->unit) == *u);
                }
        handoff_config_free(l);
        return 0;
}
