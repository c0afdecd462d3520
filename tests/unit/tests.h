/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared bits of the cmocka unit tests. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "string-util.h"

/* A fresh temporary directory per test, removed afterwards. */
static inline int tmpdir_setup(void **state) {
        char *d = strdup("/tmp/dreamlink-test.XXXXXX");
        if (!d || !mkdtemp(d))
                return -1;
        *state = d;
        return 0;
}

static inline int tmpdir_teardown(void **state) {
        (void) rm_rf(*state);
        free(*state);
        return 0;
}

static inline char *path_join2(const char *a, const char *b) {
        char *p;
        if (asprintf(&p, "%s/%s", a, b) < 0)
                abort();
        return p;
}

/* A fresh temporary root (as tmpdir_setup()) holding the drop-in directories of
 * NAME.d below /etc, /run and /usr/lib dreamlink/, as a configuration loader reads them. */
static inline int conf_root_setup(void **state, const char *name) {
        static const char * const prefixes[] = { "etc", "run", "usr/lib" };

        if (tmpdir_setup(state) < 0)
                return -1;
        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
                char *p;
                if (asprintf(&p, "%s/%s/dreamlink/%s.d", (const char *) *state, prefixes[i], name) < 0)
                        return -1;
                int r = mkdir_p(p, 0755);
                free(p);
                if (r < 0)
                        return -1;
        }
        return 0;
}

static inline void write_test_file(const char *dir, const char *name, const char *content) {
        _cleanup_free_ char *p = path_join2(dir, name);
        FILE *f = fopen(p, "we");
        assert_non_null(f);
        fputs(content, f);
        assert_int_equal(fclose(f), 0);
}

/* ROOT/NAME as a directory of MODE (missing parents 0755). */
static inline void make_test_dir(const char *root, const char *name, mode_t mode) {
        _cleanup_free_ char *p = path_join2(root, name);
        assert_int_equal(mkdir_p(p, 0755), 0);
        assert_int_equal(chmod(p, mode), 0);
}

/* The same, owned by nobody; skips the test unless it runs as root. */
static inline void make_foreign_test_dir(const char *root, const char *name, mode_t mode) {
        if (geteuid() != 0)
                skip();
        _cleanup_free_ char *p = path_join2(root, name);
        make_test_dir(root, name, mode);
        assert_int_equal(lchown(p, 65534, 65534), 0);
}

static inline void make_test_symlink(const char *root, const char *name, const char *target) {
        _cleanup_free_ char *p = path_join2(root, name);
        assert_int_equal(symlink(target, p), 0);
}

/* The permission bits of ROOT/NAME itself (a link's own). */
static inline mode_t test_mode_of(const char *root, const char *name) {
        _cleanup_free_ char *p = path_join2(root, name);
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        return st.st_mode & 07777;
}

/* Incompressible but reproducible bytes (xorshift), so sizes of transfers,
 * commits and deltas mean something. */
static inline char *random_bytes(size_t size, uint64_t seed) {
        char *buf = malloc(size);
        uint64_t x = seed | 1;

        assert_non_null(buf);
        for (size_t i = 0; i < size; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf[i] = (char) (x >> 24);
        }
        return buf;
}

/* Runs fn with stderr going to a buffer; returns what was written there. */
static inline char *capture_stderr(void (*fn)(void *), void *userdata) {
        char path[] = "/tmp/dreamlink-stderr.XXXXXX";
        int fd = mkstemp(path), saved;
        char *out = NULL;

        assert_true(fd >= 0);
        unlink(path);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        dup2(fd, STDERR_FILENO);
        fn(userdata);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        lseek(fd, 0, SEEK_SET);
        assert_int_equal(read_fd_limited(fd, 1 << 20, &out, NULL), 0);
        close(fd);
        return out;
}

/* Runs fn in a child without root's power to bypass file permissions (as
 * nobody when we are root), returning fn's result (a negative errno). */
static inline int run_unprivileged(int (*fn)(void *), void *userdata) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
                                       setresuid(65534, 65534, 65534) < 0))
                        _exit(255);
                int r = fn(userdata);
                _exit(r < 0 ? -r : 0);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_not_equal(WEXITSTATUS(status), 255);
        return -WEXITSTATUS(status);
}
