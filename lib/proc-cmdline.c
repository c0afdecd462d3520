/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "macro.h"
#include "proc-cmdline.h"
#include "string-util.h"

/* Splits off the next word of a kernel command line: whitespace outside double
 * quotes separates words, and the quotes themselves are dropped (as the kernel
 * does for root="…" and "root=…"). Returns 0 at the end. */
static int cmdline_next_word(const char **p, char **ret) {
        const char *s = *p;
        _cleanup_free_ char *w = NULL;
        size_t n = 0;
        bool quoted = false;

        while (*s && isspace((unsigned char) *s))
                s++;
        if (!*s) {
                *p = s;
                return 0;
        }

        w = malloc(strlen(s) + 1);
        if (!w)
                return -ENOMEM;
        for (; *s && (quoted || !isspace((unsigned char) *s)); s++) {
                if (*s == '"')
                        quoted = !quoted;
                else
                        w[n++] = *s;
        }
        w[n] = 0;
        *p = s;
        *ret = TAKE_PTR(w);
        return 1;
}

int proc_cmdline_get_key(const char *cmdline, const char *key, char **ret) {
        _cleanup_free_ char *value = NULL;
        const char *p = cmdline;
        int r;

        for (;;) {
                _cleanup_free_ char *word = NULL;

                r = cmdline_next_word(&p, &word);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (streq(word, "--")) /* the rest is for init, not the kernel */
                        break;
                const char *v = startswith(word, key);
                if (v && *v == '=') {
                        r = free_and_strdup(&value, v + 1);
                        if (r < 0)
                                return r;
                }
        }
        if (!value)
                return -ENOENT;
        *ret = TAKE_PTR(value);
        return 0;
}

int proc_cmdline_get(const char *key, char **ret) {
        _cleanup_free_ char *cmdline = NULL;
        /* For tests, as systemd's $SYSTEMD_PROC_CMDLINE. */
        const char *e = secure_getenv("DREAMLINK_PROC_CMDLINE");
        if (e)
                return proc_cmdline_get_key(e, key, ret);
        int r = read_file_limited("/proc/cmdline", PROC_CMDLINE_MAX, &cmdline, NULL);
        if (r < 0)
                return r;
        return proc_cmdline_get_key(cmdline, key, ret);
}
