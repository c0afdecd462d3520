/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "macro.h"
#include "os-release.h"
#include "string-util.h"

#define OS_RELEASE_MAX (64U * 1024U)

static int os_release_read(const char *root, char **ret) {
        static const char * const paths[] = { "/etc/os-release", "/usr/lib/os-release" };
        int r = -ENOENT;

        for (size_t i = 0; i < ELEMENTSOF(paths) && r == -ENOENT; i++) {
                _cleanup_free_ char *p = strprintf("%s%s", strempty(root), paths[i]);
                if (!p)
                        return -ENOMEM;
                r = read_file_limited(p, OS_RELEASE_MAX, ret, NULL);
        }
        return r;
}

int os_release_get(const char *root, const char *key, char **ret) {
        _cleanup_free_ char *text = NULL, *value = NULL;
        int r;

        r = os_release_read(root, &text);
        if (r < 0)
                return r;
        /* The last assignment wins, as when the file is sourced by a shell. */
        for (char *l = text, *next; l; l = next) {
                next = strchr(l, '\n');
                if (next)
                        *next++ = 0;
                const char *v = startswith(strstrip(l), key);
                if (!v || *v != '=')
                        continue;
                v++;
                size_t n = strlen(v);
                if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
                        v++;
                        n -= 2;
                }
                free(value);
                value = strndup(v, n);
                if (!value)
                        return -ENOMEM;
        }
        if (isempty(value))
                return -ENOENT;
        *ret = TAKE_PTR(value);
        return 0;
}
