/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A unit's process tree: the PIDs of its cgroup, who descends from whom, which namespaces
 * are its own. Reads /sys/fs/cgroup and /proc only. */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "string-util.h"

static int cgroup_pids_append(const char *dir, pid_t **pids, size_t *n) {
        _cleanup_free_ char *procs = NULL, *text = NULL;
        int r;

        if (asprintf(&procs, "%s/cgroup.procs", dir) < 0)
                return -ENOMEM;
        r = read_file_limited(procs, 1 << 20, &text, NULL);
        if (r < 0)
                return r;
        for (char *p = text, *e; p && *p; p = e) {
                e = strchr(p, '\n');
                if (e)
                        *e++ = 0;
                unsigned u;
                if (parse_unsigned(p, &u) < 0)
                        continue;
                pid_t *np = realloc(*pids, (*n + 1) * sizeof(pid_t));
                if (!np)
                        return -ENOMEM;
                *pids = np;
                (*pids)[(*n)++] = (pid_t) u;
        }

        DIR *d = opendir(dir);
        if (!d)
                return -errno;
        struct dirent *de;
        r = 0;
        while ((de = readdir(d)))
                if (de->d_type == DT_DIR && de->d_name[0] != '.') {
                        _cleanup_free_ char *sub = NULL;
                        if (asprintf(&sub, "%s/%s", dir, de->d_name) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        r = cgroup_pids_append(sub, pids, n);
                        if (r < 0)
                                break;
                }
        closedir(d);
        return r;
}

int cgroup_pids(const char *cgroup, pid_t **ret, size_t *ret_n) {
        _cleanup_free_ char *dir = NULL;
        pid_t *pids = NULL;
        size_t n = 0;
        int r;

        if (asprintf(&dir, "/sys/fs/cgroup%s", cgroup) < 0)
                return -ENOMEM;
        r = cgroup_pids_append(dir, &pids, &n);
        if (r < 0) {
                free(pids);
                return r;
        }
        *ret = pids;
        *ret_n = n;
        return 0;
}

pid_t parent_of(pid_t pid) {
        _cleanup_free_ char *path = NULL, *stat = NULL;
        if (asprintf(&path, "/proc/" PID_FMT "/stat", pid) < 0 || read_file_limited(path, 4096, &stat, NULL) < 0)
                return -1;
        /* The command name may hold anything, ')' too: the state follows the last one. */
        char *p = strrchr(stat, ')');
        int ppid;
        if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
                return -1;
        return ppid;
}

bool pid_in_tree(pid_t pid, pid_t ancestor) {
        for (unsigned i = 0; i < 4096 && pid > 1; i++) {
                if (pid == ancestor)
                        return true;
                pid = parent_of(pid);
        }
        return pid == ancestor;
}

pid_t tree_root(pid_t main_pid, const pid_t *pids, size_t n) {
        pid_t root = main_pid;

        assert(main_pid > 0);
        for (unsigned depth = 0; depth < 64; depth++) {
                pid_t parent = parent_of(root);
                bool ours = false;
                for (size_t i = 0; i < n && !ours; i++)
                        ours = pids[i] == parent;
                if (!ours)
                        break;
                root = parent;
        }
        return root;
}

char *pid_comm(pid_t pid) {
        _cleanup_free_ char *path = NULL;
        char *comm = NULL;
        if (asprintf(&path, "/proc/" PID_FMT "/comm", pid) < 0 || read_file_limited(path, 256, &comm, NULL) < 0)
                return strdup("?");
        strstrip(comm);
        return comm;
}

/* "/proc/PID/ns/KIND" (or self's) as its link text, "" if it cannot be read. */
static void ns_link(pid_t pid, const char *ns, char buf[static 64]) {
        char path[64];
        ssize_t n;

        if (pid > 0)
                snprintf(path, sizeof(path), "/proc/" PID_FMT "/ns/%s", pid, ns);
        else
                snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
        n = readlink(path, buf, 63);
        buf[n < 0 ? 0 : n] = 0;
}

bool pids_share_namespace(pid_t a, pid_t b, const char *ns) {
        char x[64], y[64];

        ns_link(a, ns, x);
        ns_link(b, ns, y);
        /* A process gone meanwhile, or a kernel without that kind: nothing to tell. */
        return isempty(x) || isempty(y) || streq(x, y);
}

bool pid_has_own_namespace(pid_t pid, const char *ns) {
        assert(pid > 0);
        return !pids_share_namespace(pid, 0, ns);
}

unsigned long long fd_socket_inode(int fd_dir, const char *name) {
        char target[64];
        unsigned long long ino;

        ssize_t k = readlinkat(fd_dir, name, target, sizeof(target) - 1);
        if (k < 0)
                return 0;
        target[k] = 0;
        return sscanf(target, "socket:[%llu]", &ino) == 1 ? ino : 0;
}

int pid_cgroup(pid_t pid, char **ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (asprintf(&path, "/proc/" PID_FMT "/cgroup", pid) < 0)
                return -ENOMEM;
        r = read_file_limited(path, 4096, &text, NULL);
        if (r < 0)
                return r;
        const char *cg = startswith(strstrip(text), "0::"); /* the unified hierarchy */
        if (!cg)
                return -ENOMEDIUM;
        char *c = strdup(cg);
        if (!c)
                return -ENOMEM;
        *ret = c;
        return 0;
}
