/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a unit's process tree holds that lives outside it, so that criu cannot take it
 * along: its ends of journal streams and its datagram sockets to syslog, the /dev/null
 * systemd opened for it, logind's session reference FIFOs. The dump marks them external;
 * the restore hands in its own or, for datagram sockets, criu connects them again. */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"
#include "string-util.h"
#include "unix-diag.h"

#define JOURNAL_STDOUT_SOCKET "/run/systemd/journal/stdout"
#define SYSTEM_BUS_SOCKET "/run/dbus/system_bus_socket" /* as dbus.socket binds it */

static int inode_add(char ***l, unsigned long long ino) {
        char num[32];
        snprintf(num, sizeof(num), "%llu", ino);
        return strv_contains(*l, num) ? 0 : strv_extend(l, num);
}

typedef int (*unix_peer_fn)(pid_t pid, unsigned long long ino, const UnixSocket *s, const UnixSocket *peer,
                            void *userdata);

/* Calls fn for each unix socket open in the cgroup that is connected to a named one (a
 * listener's, or one its accepted sockets share the name of): its own inode, and both ends
 * as sock_diag sees them. fn returns >0 to stop there, <0 to fail with that error. */
static int unix_peers_walk(const char *cgroup, unix_peer_fn fn, void *userdata) {
        _cleanup_free_ pid_t *pids = NULL;
        UnixSocket *socks = NULL;
        size_t n = 0, nsocks = 0;
        int r;

        r = cgroup_pids(cgroup, &pids, &n);
        if (r < 0)
                return r;
        r = unix_sockets_dump(&socks, &nsocks);
        if (r < 0)
                return log_error_errno(r, "Failed to list unix sockets (sock_diag): %m");

        r = 0;
        for (size_t i = 0; i < n && r == 0; i++) {
                char fddir[64];
                snprintf(fddir, sizeof(fddir), "/proc/" PID_FMT "/fd", pids[i]);
                DIR *d = opendir(fddir);
                if (!d)
                        continue; /* gone meanwhile */
                struct dirent *de;
                while (r == 0 && (de = readdir(d))) {
                        unsigned long long ino = fd_socket_inode(dirfd(d), de->d_name);
                        if (ino == 0)
                                continue;
                        const UnixSocket *sk = unix_sockets_find(socks, nsocks, ino);
                        if (!sk || sk->peer == 0)
                                continue;
                        const UnixSocket *peer = unix_sockets_find(socks, nsocks, sk->peer);
                        if (!peer || !peer->name)
                                continue;
                        r = fn(pids[i], ino, sk, peer, userdata);
                }
                closedir(d);
        }
        unix_sockets_free(socks, nsocks);
        return r < 0 ? r : 0;
}

typedef struct ExternalSockets {
        char **journal, **datagram;
} ExternalSockets;

static int collect_external(pid_t pid, unsigned long long ino, const UnixSocket *s, const UnixSocket *peer,
                            void *userdata) {
        ExternalSockets *e = userdata;
        if (streq(peer->name, JOURNAL_STDOUT_SOCKET))
                return inode_add(&e->journal, ino);
        /* A datagram peer that is connected back to us is a pair within the tree. */
        if (s->type == SOCK_DGRAM && peer->peer != s->inode)
                return inode_add(&e->datagram, ino);
        return 0;
}

/* The unit's unix sockets whose peers are outside it, that criu is told to leave to us:
 * - its ends of its journal streams (StandardOutput=journal): the restore hands in the
 *   restore command's own;
 * - datagram sockets connected to a named socket (syslog(3) to /dev/log, sd_journal_send()
 *   to the journal's socket): criu connects them to that name again at the restore, where
 *   the journal or the syslog daemon is listening again. Datagrams carry no connection
 *   state, so nothing is lost but a message sent while the service was frozen (none is).
 * Streams to other programs stay criu's to refuse: their other end is gone. */
int external_unix_sockets(const char *cgroup, char ***ret_journal, char ***ret_datagram) {
        ExternalSockets e = {};
        int r = unix_peers_walk(cgroup, collect_external, &e);
        if (r < 0) {
                strv_free(e.journal);
                strv_free(e.datagram);
                return r;
        }
        *ret_journal = e.journal;
        *ret_datagram = e.datagram;
        return 0;
}

static int find_bus_client(pid_t pid, unsigned long long ino, const UnixSocket *s, const UnixSocket *peer,
                           void *userdata) {
        if (s->type != SOCK_STREAM || !streq(peer->name, SYSTEM_BUS_SOCKET))
                return 0;
        *(pid_t *) userdata = pid;
        return 1; /* found: stop */
}

pid_t system_bus_client(const char *cgroup) {
        pid_t pid = 0;
        int r = unix_peers_walk(cgroup, find_bus_client, &pid);
        return r < 0 ? r : pid;
}

/* /dev/null as systemd opened it for the service's stdin: on a mount of
 * ours that the service's own mount namespace (PrivateDevices=) lacks, so
 * criu cannot find it ("Can't lookup mount"). It is marked external and the
 * restore hands in a /dev/null of its own. Matched by device, not by name:
 * one handed in by an earlier restore shows up as "/null" on a mount the
 * service cannot see. */
bool is_dev_null(int dir_fd, const char *name, const struct stat *st) {
        return S_ISCHR(st->st_mode) && st->st_rdev == makedev(1, 3);
}

/* logind's reference of a session (/run/systemd/sessions/ID.ref), held by its leader. */
bool is_session_ref(int dir_fd, const char *name, const struct stat *st) {
        char target[PATH_MAX];
        if (!S_ISFIFO(st->st_mode))
                return false;
        ssize_t k = readlinkat(dir_fd, name, target, sizeof(target) - 1);
        if (k < 0)
                return false;
        target[k] = 0;
        /* …or, in a session restored before, the FIFO that stands in for it. */
        return (startswith(target, "/run/systemd/sessions/") || startswith(target, HANDOFF_RUN_DIR "/")) &&
               endswith(target, ".ref");
}

/* criu's keys (file[MNT:INO]) of the files open in the cgroup that match. */
int files_matching(const char *cgroup, bool (*match)(int dir_fd, const char *name, const struct stat *st),
                          char ***ret) {
        _cleanup_free_ pid_t *pids = NULL;
        _cleanup_strv_free_ char **keys = NULL;
        size_t n = 0;
        int r;

        r = cgroup_pids(cgroup, &pids, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char fddir[64];
                snprintf(fddir, sizeof(fddir), "/proc/" PID_FMT "/fd", pids[i]);
                DIR *d = opendir(fddir);
                if (!d)
                        continue;
                struct dirent *de;
                while ((de = readdir(d))) {
                        char info[320], key[64];
                        struct stat st;
                        if (de->d_name[0] == '.')
                                continue;
                        if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !match(dirfd(d), de->d_name, &st))
                                continue;
                        _cleanup_free_ char *fdinfo = NULL;
                        snprintf(info, sizeof(info), "/proc/" PID_FMT "/fdinfo/%s", pids[i], de->d_name);
                        if (read_file_limited(info, 4096, &fdinfo, NULL) < 0)
                                continue;
                        const char *m = strstr(fdinfo, "mnt_id:");
                        unsigned mnt;
                        if (!m || sscanf(m, "mnt_id: %u", &mnt) != 1)
                                continue;
                        snprintf(key, sizeof(key), "file[%x:%llx]", mnt, (unsigned long long) st.st_ino);
                        if (!strv_contains(keys, key) && strv_extend(&keys, key) < 0) {
                                closedir(d);
                                return -ENOMEM;
                        }
                }
                closedir(d);
        }
        *ret = TAKE_PTR(keys);
        return 0;
}
