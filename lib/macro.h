/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Small building blocks used everywhere: cleanup attributes, ownership
 * transfer and array helpers, in the spirit of systemd's src/basic. */

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _pure_ __attribute__((pure))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))
#define _sentinel_ __attribute__((sentinel))

/* x equals one of the values listed. */
#define IN_SET(x, first, ...)                                                    \
        ({                                                                       \
                __typeof__(x) _x_ = (x);                                         \
                __typeof__(x) _set_[] = { first, __VA_ARGS__ };                  \
                bool _found_ = false;                                            \
                for (size_t _i_ = 0; _i_ < ELEMENTSOF(_set_); _i_++)             \
                        if (_set_[_i_] == _x_)                                   \
                                _found_ = true;                                  \
                _found_;                                                         \
        })

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* The highest errno the kernel returns (its MAX_ERRNO): an errno read from
 * outside is checked against it before it is negated or given to strerror(). */
#define ERRNO_MAX 4095

/* The struct that holds member at ptr (a config parser's field, say). */
#define container_of(ptr, type, member) ((type *) ((char *) (ptr) - offsetof(type, member)))

/* GLib defines the same; either definition will do. */
#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

/* Take ownership out of a variable that a cleanup handler would free. */
#define TAKE_PTR(p)                                  \
        ({                                           \
                __typeof__(p) *_pp_ = &(p);          \
                __typeof__(p) _p_ = *_pp_;           \
                *_pp_ = NULL;                        \
                _p_;                                 \
        })
#define TAKE_FD(fd)                                  \
        ({                                           \
                int *_fdp_ = &(fd);                  \
                int _fd_ = *_fdp_;                   \
                *_fdp_ = -EBADF;                     \
                _fd_;                                \
        })

/* Define foo_freep(foo **p) for a destructor that accepts NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)      \
        static inline void func##p(type *p) {        \
                if (*p)                              \
                        func(*p);                    \
        }

#define PID_FMT "%" PRIi32

/* Frees and returns NULL, for "p = mfree(p);". */
/* Sizes that come from others (a commit's files, a server's figures) saturate instead of wrapping
 * around to a small number that would pass a check. */
static inline uint64_t saturating_add(uint64_t a, uint64_t b) {
        uint64_t s;
        return __builtin_add_overflow(a, b, &s) ? UINT64_MAX : s;
}

static inline uint64_t round_up_blocks(uint64_t n, uint64_t block) {
        uint64_t blocks = n / block + (n % block != 0), r;
        return __builtin_mul_overflow(blocks, block, &r) ? UINT64_MAX : r;
}

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void freep(void *p) {
        free(*(void **) p);
}

/* Closes and keeps errno: cleanup must not clobber the error being returned. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd) {
        safe_close(*fd);
}

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* Turn "r" into a negative errno value, whatever sign it came with. */
static inline int negative_errno(int r) {
        return r < 0 ? r : -r;
}

#define RET_NERRNO(expr)                             \
        ({                                           \
                int _r_ = (expr);                    \
                _r_ < 0 ? -errno : _r_;              \
        })

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
