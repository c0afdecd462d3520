/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lines a worker sends updaterd over its pipe, one event each. */
#include <string.h>

#include "fuzz.h"
#include "macro.h"
#include "worker.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *p = (const char *) data, *end = p + size;

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);
                /* Each line in a buffer of its own size: reads past it are caught. */
                _cleanup_free_ char *line = fuzz_strndup(p, n);
                WorkerEvent e;

                if (worker_event_parse(line, &e) >= 0) {
                        if (e.type != EVENT_PROGRESS)
                                fuzz_assert(e.text);
                        /* "0 or a negative errno": updaterd negates it and hands it to strerror(). */
                        if (e.type == EVENT_DONE)
                                fuzz_assert(e.result <= 0 && e.result >= -ERRNO_MAX);
                }
                p += n + 1;
        }
        return 0;
}
