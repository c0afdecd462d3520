/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The three-way /etc merge, over trees an admin (current) and two releases
 * (base, target) could hold. The input describes the trees, one path a line:
 *
 *   TREE TYPE MODE PATH [DATA]
 *
 * TREE is b(ase), c(urrent) or t(arget); TYPE f(ile), d(irectory), l(ink) or
 * p (fifo); MODE octal; DATA the file's content or the link's target. Next to
 * the trees lies a file that no symlink in them may lead the merge to touch. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "etc-merge.h"
#include "fileio.h"
#include "fuzz.h"
#include "macro.h"
#include "string-util.h"

#define LINES_MAX 64
#define VICTIM "untouchable\n"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup();
        return 0;
}

/* Relative, no "." or "..", at most 4 levels: what a tree in /etc could hold, kept small. */
static bool path_is_ok(const char *p) {
        _cleanup_strv_free_ char **parts = NULL;

        if (isempty(p) || p[0] == '/' || strlen(p) > 128 || strv_split(p, "/", &parts) < 0)
                return false;
        if (strv_length(parts) == 0 || strv_length(parts) > 4)
                return false;
        STRV_FOREACH(c, parts)
                if (!filename_is_valid(*c))
                        return false;
        return true;
}

static void create(const char *root, char tree, char type, unsigned mode, const char *path, const char *data) {
        const char *dir = tree == 'b' ? "base" : tree == 'c' ? "current" : "target";
        _cleanup_free_ char *full = strprintf("%s/%s/%s", root, dir, path), *parent = NULL;
        _cleanup_close_ int fd = -EBADF;

        fuzz_assert(full);
        parent = strdup(full);
        fuzz_assert(parent);
        *strrchr(parent, '/') = 0;
        if (mkdir_p(parent, 0755) < 0)
                return; /* a parent is a file or link already: not a tree */

        switch (type) {
        case 'f':
                fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t) strlen(data))
                        return;
                break;
        case 'd':
                if (mkdir(full, 0700) < 0)
                        return;
                break;
        case 'l':
                (void) symlink(data, full);
                return; /* a link's own mode is always 0777 */
        case 'p':
                if (mkfifo(full, 0600) < 0)
                        return;
                break;
        default:
                return;
        }
        (void) fchmodat(AT_FDCWD, full, mode & 07777, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = fuzz_strndup(data, size), *root = fuzz_reset_dir("etc-merge"),
                            *base = NULL, *current = NULL, *target = NULL, *victim = NULL;
        EtcMergeReport report = {};
        struct stat st;
        unsigned lines = 0;

        base = strprintf("%s/base", root);
        current = strprintf("%s/current", root);
        target = strprintf("%s/target", root);
        victim = strprintf("%s/outside/victim", root);
        fuzz_assert(base && current && target && victim);
        fuzz_assert(mkdir(base, 0755) >= 0 && mkdir(current, 0755) >= 0 && mkdir(target, 0755) >= 0);
        fuzz_write_file(root, "outside/victim", VICTIM, strlen(VICTIM));

        for (char *line = text, *next; line && lines < LINES_MAX; line = next, lines++) {
                char tree, type, path[129];
                unsigned mode;
                int k = 0;

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (sscanf(line, "%c %c %o %128s %n", &tree, &type, &mode, path, &k) < 4 ||
                    !strchr("bct", tree) || !path_is_ok(path))
                        continue;
                create(root, tree, type, mode, path, k > 0 ? line + k : "");
        }

        (void) etc_merge(base, current, target, &report);
        etc_merge_report_done(&report);

        /* The merge never reaches out of the trees, whatever their links say. */
        fuzz_assert(lstat(victim, &st) >= 0);
        fuzz_assert(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644 && st.st_size == (off_t) strlen(VICTIM));
        return 0;
}
