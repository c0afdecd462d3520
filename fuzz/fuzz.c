/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "fileio.h"
#include "fuzz.h"
#include "log.h"
#include "string-util.h"

static char *tmpdir;

void fuzz_setup(void) {
        log_setup("fuzz");
        if (!getenv("DREAMLINK_LOG_LEVEL"))
                log_set_max_level(LOG_CRIT);
}

_Noreturn void fuzz_fail(const char *file, int line, const char *expr) {
        fprintf(stderr, "%s:%d: invariant does not hold: %s\n", file, line, expr);
        abort();
}

size_t fuzz_split(const uint8_t *data, size_t size, FuzzPart *parts, size_t max) {
        const size_t sep = strlen(FUZZ_SEPARATOR);
        const char *p = (const char *) data, *end = p + size;
        size_t n = 0;

        fuzz_assert(max > 0);
        while (n + 1 < max) {
                const char *s = memmem(p, (size_t) (end - p), FUZZ_SEPARATOR, sep);
                if (!s)
                        break;
                parts[n++] = (FuzzPart) { p, (size_t) (s - p) };
                p = s + sep;
        }
        parts[n++] = (FuzzPart) { p, (size_t) (end - p) };
        return n;
}

char *fuzz_strndup(const void *data, size_t size) {
        char *s = malloc(size + 1);
        fuzz_assert(s);
        if (size > 0)
                memcpy(s, data, size);
        s[size] = 0;
        return s;
}

static void tmpdir_remove(void) {
        (void) rm_rf(tmpdir);
        free(tmpdir);
}

const char *fuzz_tmpdir(void) {
        if (tmpdir)
                return tmpdir;
        tmpdir = strprintf("%s/dreamlink-fuzz.XXXXXX", getenv("TMPDIR") ?: "/tmp");
        fuzz_assert(tmpdir);
        fuzz_assert(mkdtemp(tmpdir));
        atexit(tmpdir_remove);
        return tmpdir;
}

char *fuzz_reset_dir(const char *sub) {
        char *path = strprintf("%s/%s", fuzz_tmpdir(), sub);
        fuzz_assert(path);
        fuzz_assert(rm_rf(path) >= 0);
        fuzz_assert(mkdir_p(path, 0755) >= 0);
        return path;
}

void fuzz_write_file(const char *dir, const char *relpath, const void *data, size_t size) {
        _cleanup_free_ char *path = strprintf("%s/%s", dir, relpath), *parent = NULL;
        _cleanup_close_ int fd = -EBADF;

        fuzz_assert(path);
        parent = strdup(path);
        fuzz_assert(parent);
        *strrchr(parent, '/') = 0;
        fuzz_assert(mkdir_p(parent, 0755) >= 0);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        fuzz_assert(fd >= 0);
        for (size_t done = 0; done < size;) {
                ssize_t k = write(fd, (const char *) data + done, size - done);
                fuzz_assert(k > 0);
                done += (size_t) k;
        }
}

char *fuzz_write_parts(const uint8_t *data, size_t size, const char * const *files, size_t n) {
        char *root = fuzz_reset_dir("root");
        FuzzPart parts[FUZZ_PARTS_MAX];

        fuzz_assert(n <= FUZZ_PARTS_MAX);
        size_t k = fuzz_split(data, size, parts, n);
        for (size_t i = 0; i < k; i++)
                fuzz_write_file(root, files[i], parts[i].data, parts[i].size);
        return root;
}
