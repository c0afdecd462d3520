/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The window scale of TCP connections restored in a container's network namespace.
 *
 * The kernel gives a socket that is connected in repair mode a receive window scale from the
 * namespace's net.ipv4.tcp_window_scaling, and criu sets it right only for a connection that had
 * negotiated scaling. One whose peer never did (slirp, middleboxes that strip the option) then
 * advertises its window shifted by that scale: a few bytes, which the peer fills and then probes
 * for, seconds a reply. For a service criu restores itself, the machine's sysctl is off during
 * the restore (criu.c). A container's namespace is made by podman while it restores, out of our
 * reach: its sockets are set right afterwards, each taken from its process (pidfd_getfd()) and
 * given the scale it negotiated, none, through TCP_REPAIR_OPTIONS. The kernel allows that only
 * before the socket has sent data again; the restore runs with the clients' packets held, so the
 * container has had nothing to answer yet. */

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fs-util.h"
#include "handoff-internal.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"

/* 0 when fd is not an established TCP socket that negotiated no scaling, 1 when it was one and
 * now has none for sure, else a negative errno. TCP_INFO shows the scale only of a connection that
 * negotiated one: the others are all set, whether the restore gave them one or not. */
static int fix_socket(int fd) {
        struct tcp_info info = {};
        socklen_t len = sizeof(info);

        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
                return errno == EOPNOTSUPP || errno == ENOPROTOOPT ? 0 : -errno;
        if (info.tcpi_state != TCP_ESTABLISHED || (info.tcpi_options & TCPI_OPT_WSCALE))
                return 0;

        int on = TCP_REPAIR_ON, off = TCP_REPAIR_OFF, r = 0;
        /* Scaling on, by 0 both ways: what the peer believes. */
        struct tcp_repair_opt opt = { .opt_code = TCPOPT_WINDOW, .opt_val = 0 };
        if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) < 0)
                return -errno;
        if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, &opt, sizeof(opt)) < 0)
                r = -errno;
        /* Out of repair mode, the socket sends a window probe: the peer learns the window now. */
        if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)) < 0 && r >= 0)
                r = -errno;
        return r < 0 ? r : 1;
}

static int fix_process(pid_t pid, unsigned *fixed, unsigned *failed) {
        _cleanup_close_ int pidfd = pidfd_open(pid, 0);
        char path[64];

        if (pidfd < 0)
                return errno == ESRCH ? 0 : -errno;
        snprintf(path, sizeof(path), "/proc/" PID_FMT "/fd", pid);
        _cleanup_(closedirp) DIR *d = opendir(path);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        for (struct dirent *de; (de = readdir(d));) {
                char target[32];
                unsigned n;
                ssize_t k = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
                if (k <= 0 || parse_unsigned(de->d_name, &n) < 0)
                        continue;
                target[k] = 0;
                if (!startswith(target, "socket:"))
                        continue;
                _cleanup_close_ int fd = pidfd_getfd(pidfd, (int) n, 0);
                if (fd < 0)
                        continue; /* closed meanwhile */
                int r = fix_socket(fd);
                if (r > 0)
                        (*fixed)++;
                else if (r < 0)
                        (*failed)++;
        }
        return 0;
}

void container_fix_window_scale(const char *unit, pid_t container_pid) {
        _cleanup_free_ char *cgroup = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        unsigned fixed = 0, failed = 0;
        size_t n = 0;

        /* A socket two processes share is fixed once: the second finds it right. */
        int r = pid_cgroup(container_pid, &cgroup);
        if (r >= 0)
                r = cgroup_pids(cgroup, &pids, &n);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = fix_process(pids[i], &fixed, &failed);
        if (r < 0)
                log_unit_warning_errno(unit, r, "Failed to look at the restored connections of %s: %m", unit);
        else if (failed > 0)
                log_unit_warning(unit, "%u restored connection(s) of %s keep a window scale their peers never agreed "
                                 "to, and will be slow.", failed, unit);
        else if (fixed > 0)
                log_unit_info(unit, "Set the window scale of %u restored connection(s) of %s that never negotiated one.",
                              fixed, unit);
}
