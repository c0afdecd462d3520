/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The checkpoint/restore engine: dumps opted-in services with CRIU (libcriu)
 * and restores them through their own unit, so systemd owns them again; a
 * service whose dump or restore fails is started fresh, never left down.
 * See dreamlink-handoff(8). This is its API; its files, one job each, and
 * the order in which they use each other are in handoff-internal.h. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "dropin.h"
#include "handoff-config.h"
#include "paths.h" /* HANDOFF_STATE_DIR, HANDOFF_RUN_DIR */

#define HANDOFF_FINISHED_FILE HANDOFF_RUN_DIR "/finished" /* the generator's drop-ins are done with */
#define HANDOFF_HELPER_PATH SBINDIR "/dreamlink-handoff"

typedef struct Handoff {
        sd_bus *bus;
        char *helper;        /* our own binary, run by the restore drop-in */
        const char *root;    /* NULL: the running system */
        bool reload_pending; /* drop-ins changed, systemd not told yet */
} Handoff;

int handoff_new(Handoff **ret);
Handoff *handoff_free(Handoff *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Handoff *, handoff_free);

typedef struct UnitInfo {
        char *active_state;
        char *sub_state;
        pid_t main_pid;
        pid_t root_pid;          /* what all its processes descend from: the main process, or the
                                  * reaper above it (reaper.c); set by handoff_precheck() */
        char *control_group;
        char *syslog_identifier; /* the unit's own or its program's name */
        char **consists_of;      /* the units that are PartOf= it (an umbrella's instances) */
} UnitInfo;

void unit_info_done(UnitInfo *i);
int handoff_unit_info(Handoff *h, const char *unit, UnitInfo *ret);

/* PIDs in the unit's cgroup (and below). */
int cgroup_pids(const char *cgroup, pid_t **ret, size_t *ret_n);
/* Whether pid descends from (or is) ancestor. */
bool pid_in_tree(pid_t pid, pid_t ancestor);

typedef struct DumpStats {
        uint64_t pre_dump_usec;   /* PreDump=: the copy while it ran; 0 without one */
        uint64_t pre_dump_bytes;
        uint64_t dump_usec;       /* the final dump, the service stopped, until its images and its
                                   * network lock are saved and on disk */
        uint64_t image_bytes;     /* all images, the pre-dump's included */
        /* criu's share of dump_usec (0 when criu did not say): the pages it collected and
         * wrote, and how long the writing took. */
        uint64_t memory_bytes;
        uint64_t memory_usec;
        uint64_t memory_write_usec;
        /* The sync of the images at its end, what the writeback during it left to write. */
        uint64_t sync_usec;
} DumpStats;

/* Dry run: dump, leaving the service running, into a temporary directory
 * that is deleted. 0 if it can be dumped, else -errno with *ret_reason. */
int handoff_try_dump(Handoff *h, const HandoffUnit *u, char **ret_reason);

/* Writes the restore drop-ins of all units that are running and reloads
 * systemd once: a reload is seconds on a slow machine, and each one done
 * between two dumps would add to the time the services are frozen. */
int handoff_prepare(Handoff *h, HandoffUnit * const *units, const char *images_root);
/* The one reload after a batch of dumps or restores, if drop-ins changed. */
int handoff_flush(Handoff *h);

/* images_root/UNIT/ receives the images and the record. Returns 0 when the
 * unit was checkpointed, 1 when it was not but keeps running (recorded as
 * "fresh", with the reason), <0 when something failed that the caller must
 * see (OnDumpFailure=abort, or the unit could not be kept running). */
int handoff_dump(Handoff *h, const HandoffUnit *u, const char *images_root, DumpStats *ret);

typedef struct RestoreStats {
        uint64_t restore_usec;
        pid_t main_pid;
        bool fresh;          /* started fresh (by record or after a failed restore) */
        uint64_t dumped_at_usec;
        uint64_t restored_at_usec;  /* CLOCK_REALTIME when the unit was running again */
} RestoreStats;

/* Restores (or starts fresh) the unit from images_root/UNIT/. 0 restored,
 * 1 started fresh, <0 the unit could not be started at all. */
int handoff_restore(Handoff *h, const char *unit, const char *images_root, RestoreStats *ret);

/* Runs as the restore drop-in's ExecStart, inside the unit. */
int handoff_restore_exec(const char *unit, const char *images_dir, const char *pidfile);

/* Login sessions (Sessions=yes): the trees logind sessions started by the
 * unit (sshd's, with their shells and ptys), each dumped from its leader
 * into images_root/session-ID.scope and restored into a new scope. The unit
 * itself (the listener) starts fresh. A restored session is no logind
 * session any more; its connection and programs go on. */
#define RESTORED_SESSION_PREFIX "dreamlink-"   /* dreamlink-session-ID.scope */
#define RESTORED_SESSION_SLICE "user.slice"
/* The scopes of those sessions: logind's "session-ID.scope", and the ones an earlier switch
 * restored ("dreamlink-session-ID.scope"), which logind does not know. */
int handoff_unit_sessions(Handoff *h, const char *unit, char ***ret_scopes);
/* 0 dumped; 1 not (recorded with the reason; the session ends with the switch). */
int handoff_dump_session(Handoff *h, const char *scope, const char *images_root, DumpStats *ret);
/* Restores images_root/SCOPE into a new scope; <0 when the session is lost. */
int handoff_restore_session(Handoff *h, const char *scope, const char *images_root, RestoreStats *ret);
/* Runs in that scope (dreamlink-handoff restore-session). */
int handoff_restore_session_exec(const char *images_dir);

/* Removes checkpoint directories under root_dir (default HANDOFF_STATE_DIR),
 * their leftover network locks, and restore drop-ins no start is using. */
int handoff_gc(Handoff *h, const char *root_dir);

/* Across a kexec: the kernel command line of the new boot names the
 * checkpoint set and the units to restore (see handoff-generator.h). */

/* Loads the network locks saved with the checkpoints of set_dir; run before
 * the network comes up in the new boot. */
int handoff_lock_network(const char *set_dir);
/* criu's first run in a boot probes the kernel (loads the socket diagnostics modules, tries
 * features in a scratch network namespace: seconds under emulation) and caches what it found
 * in /run/criu. Run early in the new boot, beside the rest of it, so that the restores find
 * that done. */
int handoff_probe_kernel(void);
/* After the units of set_dir were started (restored by their generated
 * drop-ins): reports what became of each (UNIT, RESULT pairs: "restored",
 * "restarted" when the restore failed and the unit was started fresh,
 * "fresh" when it was never checkpointed), stops the generator's drop-ins
 * and removes the images. */
int handoff_finish_boot(Handoff *h, const char *set_dir, char ***ret_results);

/* In the same boot, after a switch that did not happen: restores every service and session
 * checkpointed in set_dir (or starts it fresh), reports each (UNIT, RESULT pairs), removes
 * the images. */
int handoff_restore_set(Handoff *h, const char *set_dir, char ***ret_results);

/* The users running rootless podman containers now, with how many each (by their conmons): not
 * carried, podman checkpoints only root's (container.c). */
int rootless_containers(uid_t **ret_uids, unsigned **ret_counts, size_t *ret_n);

uint64_t directory_size(const char *path);
/* Last lines of a criu log, and the first error line of it (either may be NULL). */
int criu_log_reason(const char *path, unsigned lines, char **ret_tail, char **ret_error);

/* `dreamlink-handoff reap CMD...` (reaper.c): runs CMD under a child subreaper that collects the
 * daemons it leaves into one process tree; exits as CMD did. Returns only on failure. */
int handoff_reap(char **argv);
