/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Before criu runs: what we can tell ourselves about why criu could not take a service, said
 * in the terms of the person who opted it in, with what to change. criu has the last word
 * (the dry run); these checks catch the cases whose criu error would not say what to do, and
 * the ones that only a restart of the service fixes. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "string-util.h"

/* The first line of a /proc/PID/ file that contains needle, or NULL. */
static char *proc_line_with(pid_t pid, const char *file, const char *needle) {
        _cleanup_free_ char *path = NULL, *text = NULL;

        if (asprintf(&path, "/proc/" PID_FMT "/%s", pid, file) < 0 || read_file_limited(path, 16U << 20, &text, NULL) < 0)
                return NULL;
        for (char *p = text, *e; p && *p; p = e) {
                e = strchr(p, '\n');
                if (e)
                        *e++ = 0;
                if (strstr(p, needle))
                        return strdup(p);
        }
        return NULL;
}

/* A process of the unit that maps System V shared memory: criu dumps such memory only with
 * an IPC namespace of the service's own. */
static pid_t maps_sysv_shm(const pid_t *pids, size_t n) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *line = proc_line_with(pids[i], "maps", " /SYSV");
                if (line)
                        return pids[i];
        }
        return 0;
}

/* The kinds of namespace CRIU takes only as the whole tree's, never one that a process of the
 * tree made for itself (criu/namespaces.c: "Can't dump nested %s namespace"). */
static const char *const unnestable_namespaces[] = { "pid", "ipc", "uts", "user", "cgroup", "time" };

/* Network namespaces it dumps nested, but restores nested only inside one of the tree's own
 * (criu/pstree.c: "Can't restore sub-task in NS"): not beside the machine's network. */
static bool nested_net_is_restorable(pid_t root) {
        return pid_has_own_namespace(root, "net");
}

/* A process of the unit in such a namespace of its own, as a sandbox per connection makes them
 * (vsftpd's isolate=YES, isolate_network=YES): *ret_kind says which. The generator's drop-in
 * forbids the service to make these. */
static pid_t in_nested_namespace(pid_t root, const pid_t *pids, size_t n, const char **ret_kind) {
        bool net_ok = nested_net_is_restorable(root);
        for (size_t i = 0; i < n; i++) {
                for (size_t k = 0; k < ELEMENTSOF(unnestable_namespaces); k++)
                        if (!pids_share_namespace(pids[i], root, unnestable_namespaces[k])) {
                                *ret_kind = unnestable_namespaces[k];
                                return pids[i];
                        }
                if (!net_ok && !pids_share_namespace(pids[i], root, "net")) {
                        *ret_kind = "network";
                        return pids[i];
                }
        }
        return 0;
}

int handoff_precheck(Handoff *h, const char *unit, UnitInfo *info, char **ret_reason) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        int r;

        *ret_reason = NULL;
        /* Debian's postgresql.service and tor.service: a oneshot that starts the instances
         * (postgresql@17-main.service) and runs nothing itself. */
        if (info->main_pid <= 0 && strv_length(info->consists_of) > 0) {
                _cleanup_free_ char *members = strv_join(info->consists_of, ", ");
                return asprintf(ret_reason, "it runs no process of its own: it stands for %s (the units that are "
                                "PartOf= it); name each of those in Unit= of a handoff.d file instead",
                                strna(members)) < 0 ? -ENOMEM : 0;
        }
        if (!streq(info->active_state, "active") || info->main_pid <= 0)
                return asprintf(ret_reason, "not running (%s/%s)", info->active_state, info->sub_state) < 0 ? -ENOMEM : 0;
        if (!info->control_group)
                return asprintf(ret_reason, "no control group") < 0 ? -ENOMEM : 0;
        r = cgroup_pids(info->control_group, &pids, &n);
        if (r < 0)
                return asprintf(ret_reason, "cannot list its processes: %s", strerror(-r)) < 0 ? -ENOMEM : 0;
        /* criu takes a process tree; a process of the unit outside the main
         * process's tree would be lost (and left running beside the restore). */
        info->root_pid = tree_root(info->main_pid, pids, n);
        for (size_t i = 0; i < n; i++)
                if (!pid_in_tree(pids[i], info->root_pid)) {
                        _cleanup_free_ char *comm = pid_comm(pids[i]);
                        return asprintf(ret_reason, "process " PID_FMT " (%s) is not a descendant of the main process " PID_FMT
                                        " (a Type=forking service's daemons are collected into one tree from its next start: "
                                        "systemctl daemon-reload && systemctl restart %s)",
                                        pids[i], strna(comm), info->main_pid, unit) < 0 ? -ENOMEM : 0;
                }

        /* These are lifted by the generator's drop-in for opted-in services (opt_in_dropin in
         * handoff-generator.c), for the next start of the service. */
        if (pid_has_own_namespace(info->main_pid, "user"))
                return asprintf(ret_reason, "it runs in a user namespace of its own (PrivateUsers=yes), which CRIU "
                                "cannot carry; dreamlink turns that off for opted-in services from their next start: "
                                "systemctl daemon-reload && systemctl restart %s", unit) < 0 ? -ENOMEM : 0;
        if (has_own_mount_namespace(info->main_pid)) {
                _cleanup_free_ char *bind = proc_line_with(info->main_pid, "mountinfo", "/memory.pressure ");
                if (bind)
                        return asprintf(ret_reason, "systemd watches its memory pressure through a file CRIU cannot "
                                        "carry (MemoryPressureWatch=); dreamlink turns that off for opted-in services "
                                        "from their next start: systemctl daemon-reload && systemctl restart %s",
                                        unit) < 0 ? -ENOMEM : 0;
        }

        const char *kind;
        pid_t nested = in_nested_namespace(info->root_pid, pids, n, &kind);
        if (nested > 0) {
                _cleanup_free_ char *comm = pid_comm(nested);
                return asprintf(ret_reason, "process " PID_FMT " (%s) runs in a %s namespace it made for itself, which "
                                "CRIU cannot carry; dreamlink forbids opted-in services to make those "
                                "(RestrictNamespaces=) from their next start: systemctl daemon-reload && systemctl "
                                "restart %s", nested, strna(comm), kind, unit) < 0 ? -ENOMEM : 0;
        }

        if (!pid_has_own_namespace(info->main_pid, "ipc")) {
                pid_t pid = maps_sysv_shm(pids, n);
                if (pid > 0) {
                        _cleanup_free_ char *comm = pid_comm(pid);
                        return asprintf(ret_reason, "process " PID_FMT " (%s) uses System V shared memory of the whole "
                                        "machine, which CRIU cannot carry; dreamlink gives opted-in services an IPC "
                                        "namespace of their own (PrivateIPC=yes) from their next start: "
                                        "systemctl daemon-reload && systemctl restart %s", pid, strna(comm), unit) < 0 ? -ENOMEM : 0;
                }
        }
        return 0;
}
