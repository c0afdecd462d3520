/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The images on their way to disk while criu still makes them.
 *
 * criu writes the tree's memory into the page cache at memory speed (splice from its page
 * pipes). The kernel starts writing dirty pages back on its own only past
 * vm.dirty_background_ratio, 10 % of RAM, more than most services' images, so all of them would
 * go to disk in the syncfs() after the dump, one step after the other, the service stopped
 * throughout. A thread asks for the writeback of the pages images as they grow
 * (sync_file_range(SYNC_FILE_RANGE_WRITE): it starts the I/O and waits for nothing), so that the
 * disk works while criu collects the rest of the memory and the other state of the tree; the
 * sync at the end finds little left to write. */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"
#include "string-util.h"

/* Often enough that the disk never waits long for work, rare enough to cost nothing. */
#define WRITEBACK_INTERVAL_MSEC 50

struct Writeback {
        pthread_t thread;
        int dir_fd;       /* the images directory (ours, a dup) */
        int stop_fd;      /* eventfd: wakes the thread up to end */
        atomic_bool stop;
        uint64_t rounds;
};

static bool is_pages_image(const char *name) {
        /* criu's pages-N.img: the memory, all but a few KiB of the images. */
        return startswith(name, "pages-") && endswith(name, ".img");
}

static void writeback_round(int dir_fd) {
        _cleanup_close_ int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        DIR *d = fdopendir(fd);
        if (!d)
                return;
        TAKE_FD(fd);
        struct dirent *de;
        while ((de = readdir(d)))
                if (is_pages_image(de->d_name)) {
                        _cleanup_close_ int f = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                        if (f >= 0)
                                (void) sync_file_range(f, 0, 0, SYNC_FILE_RANGE_WRITE);
                }
        closedir(d);
}

static void *writeback_thread(void *userdata) {
        Writeback *w = userdata;
        struct pollfd p = { .fd = w->stop_fd, .events = POLLIN };

        while (!atomic_load(&w->stop)) {
                if (poll(&p, 1, WRITEBACK_INTERVAL_MSEC) > 0)
                        break;
                writeback_round(w->dir_fd);
                w->rounds++;
        }
        return NULL;
}

int writeback_start(int dir_fd, Writeback **ret) {
        _cleanup_free_ Writeback *w = NULL;
        int r;

        assert(dir_fd >= 0);
        assert(ret);

        w = calloc(1, sizeof(Writeback));
        if (!w)
                return -ENOMEM;
        w->dir_fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (w->dir_fd < 0)
                return -errno;
        w->stop_fd = eventfd(0, EFD_CLOEXEC);
        if (w->stop_fd < 0) {
                r = -errno;
                close(w->dir_fd);
                return r;
        }
        r = -pthread_create(&w->thread, NULL, writeback_thread, w);
        if (r < 0) {
                close(w->dir_fd);
                close(w->stop_fd);
                return r;
        }
        *ret = TAKE_PTR(w);
        return 0;
}

Writeback *writeback_stop(Writeback *w) {
        if (!w)
                return NULL;
        uint64_t one = 1;
        atomic_store(&w->stop, true);
        /* Without the wake-up the flag ends it within one interval. */
        (void) !write(w->stop_fd, &one, sizeof(one));
        (void) pthread_join(w->thread, NULL);
        log_debug("Asked for the writeback of the images %" PRIu64 " times during the dump.", w->rounds);
        close(w->dir_fd);
        close(w->stop_fd);
        free(w);
        return NULL;
}
