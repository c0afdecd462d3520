/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The replay driver: without libFuzzer (gcc builds), each fuzz target is linked
 * with this main(), which feeds every file of the directories (or the files)
 * given to LLVMFuzzerTestOneInput() once, in name order. The unit suite runs it
 * over the target's corpus, so a kept crash reproducer that crashes again fails
 * `make check`. Its last line is in cmocka's format: tools/check-unit.sh counts
 * each target's replay as one test. */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "fuzz.h"
#include "macro.h"
#include "string-util.h"

/* Inputs larger than this are no corpus entries (the -max_len of `make fuzz` is far below). */
#define REPLAY_INPUT_MAX (16U * 1024U * 1024U)

static int replay_file(const char *path) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = read_file_limited(path, REPLAY_INPUT_MAX, &data, &size);
        if (r < 0) {
                fprintf(stderr, "Failed to read %s: %s\n", path, strerror(-r));
                return r;
        }
        /* Announced first: if the input crashes the target, the log names it. */
        printf("[ RUN      ] %s\n", path);
        fflush(stdout);
        /* A copy of exactly size bytes, so that ASan sees reads past the input's end. */
        _cleanup_free_ uint8_t *copy = malloc(MAX(size, (size_t) 1));
        if (!copy)
                return -ENOMEM;
        memcpy(copy, data, size);
        (void) LLVMFuzzerTestOneInput(copy, size);
        return 1;
}

static int replay_dir(const char *dir) {
        _cleanup_strv_free_ char **names = NULL;
        int n = 0, r;

        DIR *d = opendir(dir);
        if (!d) {
                fprintf(stderr, "Failed to open %s: %m\n", dir);
                return -errno;
        }
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && strv_extend(&names, de->d_name) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
        closedir(d);
        strv_sort(names);

        STRV_FOREACH(name, names) {
                _cleanup_free_ char *path = strprintf("%s/%s", dir, *name);
                if (!path)
                        return -ENOMEM;
                r = replay_file(path);
                if (r < 0)
                        return r;
                n += r;
        }
        return n;
}

int main(int argc, char *argv[]) {
        const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
        int n = 0, r;

        if (argc < 2) {
                fprintf(stderr, "Usage: %s CORPUS-DIR|FILE...\n", name);
                return EXIT_FAILURE;
        }
        (void) LLVMFuzzerInitialize(&argc, &argv);

        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "Failed to stat %s: %m\n", argv[i]);
                        return EXIT_FAILURE;
                }
                r = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]);
                if (r < 0)
                        return EXIT_FAILURE;
                n += r;
        }
        if (n == 0) {
                /* An empty corpus replays nothing: that is a mistake, not a pass. */
                printf("[  FAILED  ] %s: 1 test(s), no inputs found.\n", name);
                return EXIT_FAILURE;
        }
        printf("%s: replayed %d inputs\n", name, n);
        printf("[  PASSED  ] 1 test(s).\n");
        return EXIT_SUCCESS;
}
