/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the fuzz targets share. Each fuzz-<parser>.c defines
 * LLVMFuzzerTestOneInput() and calls the real parser from the project's static
 * libraries; these helpers only shape the input (several files from one input,
 * files on disk for parsers that take a path) and keep the runs quiet. */

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input can hold several files: parts are separated by this line. */
#define FUZZ_SEPARATOR "\n----\n"
#define FUZZ_PARTS_MAX 8

typedef struct FuzzPart {
        const char *data;
        size_t size;
} FuzzPart;

/* Log nothing below LOG_CRIT (millions of refusals are the point, not news),
 * unless $DREAMLINK_LOG_LEVEL asks for more, as when reproducing a finding. */
void fuzz_setup(void);

/* Splits data at FUZZ_SEPARATOR into at most max parts (the last one keeps any
 * further separators); returns how many. */
size_t fuzz_split(const uint8_t *data, size_t size, FuzzPart *parts, size_t max);

/* data as a NUL-terminated string (a parser of C strings sees up to the first
 * NUL, as it would reading a file into a string); aborts when out of memory. */
char *fuzz_strndup(const void *data, size_t size);

/* A private scratch directory, created on first use and removed at exit. */
const char *fuzz_tmpdir(void);
/* Empties dir/sub (creating it) and returns its path, to be freed. */
char *fuzz_reset_dir(const char *sub);
/* Writes data to dir/relpath, creating the parent directories; aborts on failure. */
void fuzz_write_file(const char *dir, const char *relpath, const void *data, size_t size);
/* A fresh scratch root with the parts of data (fuzz_split()) written to files[0], files[1]…
 * (paths relative to it, at most n of them); returns the root, to be freed. */
char *fuzz_write_parts(const uint8_t *data, size_t size, const char * const *files, size_t n);

/* An invariant of the code under test does not hold: report it as a finding. */
#define fuzz_assert(expr)                                                                    \
        do {                                                                                 \
                if (!(expr))                                                                 \
                        fuzz_fail(__FILE__, __LINE__, #expr);                                \
        } while (0)
_Noreturn void fuzz_fail(const char *file, int line, const char *expr);
