/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Login sessions (Sessions=yes): the sessions a unit started, each dumped from its leader
 * and restored into a scope of its own (see handoff.h). */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-login.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"
#include "process-util.h"
#include "string-util.h"
#include "time-util.h"

int handoff_unit_sessions(Handoff *h, const char *unit, char ***ret) {
        _cleanup_(unit_info_done) UnitInfo info = {};
        _cleanup_strv_free_ char **ids = NULL, **mine = NULL;
        int r;

        *ret = NULL;
        r = handoff_unit_info(h, unit, &info);
        if (r < 0)
                return r;
        if (info.main_pid <= 0)
                return 0;
        r = sd_get_sessions(&ids);
        if (r < 0)
                return log_unit_error_errno(unit, r, "Failed to list the login sessions: %m");
        STRV_FOREACH(id, ids) {
                _cleanup_free_ char *scope = NULL;
                pid_t leader;
                /* sshd's listener forks the session's leader ("sshd-session: USER [priv]"). */
                if (sd_session_get_leader(*id, &leader) < 0 || parent_of(leader) != info.main_pid)
                        continue;
                if (asprintf(&scope, "session-%s.scope", *id) < 0 || strv_push(&mine, TAKE_PTR(scope)) < 0)
                        return log_oom();
        }

        /* Sessions an earlier switch restored: logind does not know them any more. */
        _cleanup_(closedirp) DIR *d = opendir("/sys/fs/cgroup/" RESTORED_SESSION_SLICE);
        struct dirent *de;
        while (d && (de = readdir(d)))
                if (startswith(de->d_name, RESTORED_SESSION_PREFIX) && endswith(de->d_name, ".scope") &&
                    strv_extend(&mine, de->d_name) < 0)
                        return log_oom();
        *ret = TAKE_PTR(mine);
        return 0;
}

/* The root of a restored session's tree: the process whose parent is not in the scope. */
static pid_t restored_session_leader(const char *cgroup) {
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;

        if (cgroup_pids(cgroup, &pids, &n) < 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                pid_t parent = parent_of(pids[i]);
                bool inside = false;
                for (size_t j = 0; j < n && !inside; j++)
                        inside = pids[j] == parent;
                if (!inside)
                        return pids[i];
        }
        return -1;
}

/* How long a login's bus client has to let go of the bus; the services are frozen meanwhile. */
#define BUS_LET_GO_USEC (10 * USEC_PER_SEC)

/* A connection to the system bus cannot be carried (its other end stays; sd-bus holds a pidfd
 * of the bus's listener for it). updatectl, following the switch from the very login being
 * checkpointed, closes its own once the new kernel is loaded (updatectl(8)): wait for that,
 * so that whether the login comes along does not depend on which of us is faster. A client
 * that holds on makes the dump fail, and criu's reason, explained, says why. */
static void wait_for_bus_clients(const char *scope, const char *cgroup) {
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + BUS_LET_GO_USEC;
        bool told = false;
        pid_t pid;

        while ((pid = system_bus_client(cgroup)) > 0) {
                if (now_usec(CLOCK_MONOTONIC) >= deadline) {
                        _cleanup_free_ char *comm = pid_comm(pid);
                        log_unit_warning(scope, "%s (PID " PID_FMT ") in %s did not let go of the system bus within %u s.",
                                         strna(comm), pid, scope, (unsigned) (BUS_LET_GO_USEC / USEC_PER_SEC));
                        return;
                }
                if (!told) {
                        _cleanup_free_ char *comm = pid_comm(pid);
                        log_unit_info(scope, "Waiting for %s (PID " PID_FMT ") in %s to let go of the system bus.",
                                      strna(comm), pid, scope);
                        told = true;
                }
                (void) usleep(50 * USEC_PER_MSEC);
        }
}

/* criu resumes a tree it failed to dump: the session goes on until the switch ends it. */
static int session_not_dumped(const char *scope, const char *dir, Checkpoint *c, const char *reason) {
        assert(c);

        c->reason = strdup(strna(reason));
        (void) write_record(dir, c);
        log_unit_warning(scope, "Cannot checkpoint login %s, it ends with the switch: %s", scope, strna(reason));
        return 1;
}

int handoff_dump_session(Handoff *h, const char *scope, const char *images_root, DumpStats *ret) {
        _cleanup_free_ char *dir = NULL, *log = NULL, *cgroup = NULL, *reason = NULL, *id = NULL;
        _cleanup_(checkpoint_done) Checkpoint c = { .result = CHECKPOINT_FRESH, .session = true, .tcp_established = true };
        pid_t leader = -1;
        int r;

        *ret = (DumpStats) {};
        if (asprintf(&dir, "%s/%s", images_root, scope) < 0 || asprintf(&log, "%s/dump.log", dir) < 0 ||
            !(c.unit = strdup(scope)))
                return log_oom();
        r = mkdir_p(images_root, 0700);
        if (r >= 0) {
                (void) rm_rf(dir);
                r = mkdir(dir, 0700) < 0 ? -errno : 0;
        }
        if (r < 0)
                return log_unit_error_errno(scope, r, "Failed to create %s: %m", dir);

        const char *logind = startswith(scope, "session-");
        if (logind) {
                id = strndup(logind, strlen(logind) - strlen(".scope"));
                r = id ? sd_session_get_leader(id, &leader) : -ENOMEM;
                if (r >= 0)
                        r = pid_cgroup(leader, &cgroup);
        } else {
                cgroup = strprintf("/" RESTORED_SESSION_SLICE "/%s", scope);
                leader = cgroup ? restored_session_leader(cgroup) : -1;
                r = !cgroup ? -ENOMEM : leader < 0 ? -ESRCH : 0;
        }
        if (r >= 0) {
                c.main_pid = leader;
                wait_for_bus_clients(scope, cgroup);
                r = external_unix_sockets(cgroup, &c.journal_inodes, &c.datagram_inodes);
        }
        if (r >= 0)
                r = files_matching(cgroup, is_session_ref, &c.session_refs);
        if (r < 0) {
                (void) asprintf(&reason, "cannot inspect it: %s", strerror(-r));
                return session_not_dumped(scope, dir, &c, reason);
        }

        /* The session's unix sockets to the outside (syslog, logind) reconnect or are
         * left behind; its reference FIFO is replaced at the restore. */
        HandoffUnit u = {
                .unit = c.unit,
                .tcp_established = true,
                .ext_unix_sk = true,
                .external = c.session_refs,
        };
        r = dump_into(&u, leader, dir, &c);
        if (r < 0) {
                criu_failure_reason(log, &reason);
                return session_not_dumped(scope, dir, &c, reason);
        }
        r = write_record(dir, &c);
        if (r < 0)
                return r; /* the session is gone with its dump: nothing to bring back without a record */
        *ret = (DumpStats) { .dump_usec = c.dump_usec, .image_bytes = c.image_bytes };
        log_unit_info(scope, "Checkpointed login %s (leader PID " PID_FMT ") in %.2f s, %.1f MiB of images.", scope,
                      leader, c.dump_usec / 1e6, c.image_bytes / 1048576.0);
        return 0;
}

int handoff_restore_session(Handoff *h, const char *scope, const char *images_root, RestoreStats *ret) {
        _cleanup_free_ char *dir = NULL, *images = NULL, *description = NULL, *log = NULL, *name = NULL;
        int r;

        *ret = (RestoreStats) {};
        /* Named so that the next switch finds it again (handoff_unit_sessions()). */
        const char *original = startswith(scope, RESTORED_SESSION_PREFIX) ?: scope;
        if (asprintf(&dir, "%s/%s", images_root, scope) < 0 || asprintf(&images, "--images=%s", dir) < 0 ||
            asprintf(&description, "--description=Login %s, restored by dreamlink handoff", original) < 0 ||
            asprintf(&name, "--unit=" RESTORED_SESSION_PREFIX "%s", original) < 0 ||
            asprintf(&log, "%s/restore.log", dir) < 0)
                return log_oom();
        /* A scope of its own: criu leaves the restored tree in its cgroup, and the
         * scope lives on once criu is gone. */
        const char * const argv[] = { "systemd-run", "--scope", "--quiet", "--collect", name,
                                       "--slice=" RESTORED_SESSION_SLICE, description, h->helper, "restore-session",
                                       images, NULL };
        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        r = run_command(argv);
        ret->restore_usec = now_usec(CLOCK_MONOTONIC) - t0;
        ret->restored_at_usec = now_usec(CLOCK_REALTIME);
        if (r < 0) {
                _cleanup_free_ char *error = NULL;
                (void) criu_log_reason(log, 5, NULL, &error);
                return log_unit_error_errno(scope, r, "Failed to restore login %s, it is lost: %s", scope,
                                            error ?: "see the journal");
        }
        log_unit_info(scope, "Restored login %s in %.2f s.", scope, ret->restore_usec / 1e6);
        return 0;
}

int handoff_restore_session_exec(const char *images_dir) {
        _cleanup_(checkpoint_done) Checkpoint c = {};
        pid_t pid;
        int r;

        r = load_dumped_record(images_dir, NULL, &c);
        if (r < 0)
                return r;
        if (!c.session)
                return log_error_errno(EINVAL, "%s holds a service's checkpoint, not a session's.", images_dir);
        /* The boot check restores sessions after the services, and nothing orders it after the
         * network: the addresses of its connection, as for a service (restore.c). */
        (void) addresses_wait(c.unit, c.addresses, ADDRESSES_TIMEOUT);
        r = restore_images(&c, /* late= */ NULL, images_dir, &pid);
        if (r < 0)
                return r;
        log_unit_info(c.unit, "Restored the login session of %s (leader PID " PID_FMT ").", c.unit, pid);
        return 0;
}
