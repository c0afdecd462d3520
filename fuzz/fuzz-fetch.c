/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a server sends: the header lines and the body chunks libcurl hands
 * fetch_url()'s callbacks. The first byte picks the size limit and the chunk
 * size; then come the headers up to an empty line, then the body. */
#include <string.h>

#include "fetch.h"
#include "fuzz.h"
#include "macro.h"
#include "manifest.h"

static const uint64_t limits[] = { 0, 1, 100, 4096, MANIFEST_SIZE_MAX };

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup();
        return 0;
}

/* Hands over a copy of exactly n bytes, as libcurl's buffers are not NUL-terminated. */
static size_t feed(size_t (*cb)(char *, size_t, size_t, void *), const char *p, size_t n, Download *d) {
        _cleanup_free_ char *copy = malloc(MAX(n, (size_t) 1));
        fuzz_assert(copy);
        memcpy(copy, p, n);
        return cb(copy, 1, n, d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;

        Download d = { .max_size = limits[data[0] % ELEMENTSOF(limits)], .announced = -1 };
        size_t chunk = 1 + data[0] / ELEMENTSOF(limits) * 7;
        const char *p = (const char *) data + 1, *end = (const char *) data + size;

        /* Headers: one line per call, up to and with the empty line. */
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = nl ? (size_t) (nl - p) + 1 : (size_t) (end - p);
                bool last = n <= 2 && (n == 1 || p[0] == '\r');
                fuzz_assert(feed(fetch_header_cb, p, n, &d) == n);
                fuzz_assert(d.announced >= -1);
                p += n;
                if (last)
                        break;
        }

        const char *body = p;
        while (p < end) {
                size_t n = MIN(chunk, (size_t) (end - p));
                if (feed(fetch_write_cb, p, n, &d) != n) {
                        fuzz_assert(d.too_large || d.oom);
                        break;
                }
                p += n;
        }
        /* The limit holds, and what was kept is what came. */
        fuzz_assert(d.max_size == 0 || d.size <= d.max_size);
        fuzz_assert(d.size <= (size_t) (end - body));
        fuzz_assert(d.size == 0 || memcmp(d.data, body, d.size) == 0);
        free(d.data);
        return 0;
}
