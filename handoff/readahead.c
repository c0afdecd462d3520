/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The images on their way into memory before criu asks for them.
 *
 * restore-exec may wait for the addresses of the unit's sockets (networkd's start, a DHCP lease)
 * before criu reads a byte, and the disk is idle meanwhile. A thread asks the kernel to read the
 * pages images (all but a few KiB of a checkpoint) into the page cache from the start
 * (POSIX_FADV_WILLNEED), so that criu finds them there. At most half of MemAvailable: the
 * restore itself needs the memory the images describe, and pages read ahead that the kernel
 * drops again before criu gets to them are only read twice. */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"
#include "string-util.h"

static int mem_available(uint64_t *ret) {
        _cleanup_free_ char *text = NULL;
        int r = read_file_limited("/proc/meminfo", 65536, &text, NULL);
        if (r < 0)
                return r;
        const char *p = strstr(text, "\nMemAvailable:");
        unsigned long long kib;
        if (!p || sscanf(p, "\nMemAvailable: %llu kB", &kib) != 1)
                return -EBADMSG;
        *ret = (uint64_t) kib * 1024;
        return 0;
}

/* A pre-dump's pages are in the directory "parent" points to, and its parent's: a chain of at
 * most this many. */
#define PARENT_DEPTH_MAX 8

static void readahead_dir(int dir_fd, uint64_t budget, uint64_t *asked, unsigned depth) {
        int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!startswith(de->d_name, "pages-") || !endswith(de->d_name, ".img"))
                        continue;
                _cleanup_close_ int f = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                struct stat st;
                if (f < 0 || fstat(f, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t) st.st_size > budget - *asked)
                        continue;
                if (posix_fadvise(f, 0, 0, POSIX_FADV_WILLNEED) == 0)
                        *asked += st.st_size;
        }
        if (depth < PARENT_DEPTH_MAX) {
                _cleanup_close_ int parent = openat(dirfd(d), "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (parent >= 0)
                        readahead_dir(parent, budget, asked, depth + 1);
        }
        closedir(d);
}

uint64_t images_readahead_at(int dir_fd, uint64_t budget) {
        uint64_t asked = 0;

        assert(dir_fd >= 0);
        readahead_dir(dir_fd, budget, &asked, 0);
        return asked;
}

static void *readahead_thread(void *userdata) {
        int dir_fd = (int) (intptr_t) userdata;
        uint64_t avail, asked = 0;

        if (mem_available(&avail) >= 0)
                asked = images_readahead_at(dir_fd, avail / 2);
        log_debug("Asked for %" PRIu64 " bytes of images to be read ahead.", asked);
        close(dir_fd);
        return NULL;
}

void images_readahead_start(const char *unit, const char *images_dir) {
        pthread_attr_t attr;
        pthread_t thread;

        int dir_fd = open(images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return; /* the restore says what is wrong with the directory */
        if (pthread_attr_init(&attr) != 0) {
                close(dir_fd);
                return;
        }
        (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int r = -pthread_create(&thread, &attr, readahead_thread, (void *) (intptr_t) dir_fd);
        pthread_attr_destroy(&attr);
        if (r < 0) {
                /* Only an optimisation: criu reads them all the same. */
                (void) log_full_errno_unit(LOG_DEBUG, r, unit, "Failed to start reading %s's images ahead: %m", unit);
                close(dir_fd);
        }
}
