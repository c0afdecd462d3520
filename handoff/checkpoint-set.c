/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Checkpoint sets (a directory of checkpoints, one per unit or session): what is done to
 * all of them at once. Garbage collection, the network locks of a new boot, the report and
 * cleanup after the restores of a new boot, and putting a set back in the same boot. */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"
#include "string-util.h"

int handoff_gc(Handoff *h, const char *root_dir) {
        unsigned removed = 0, dropins = 0;
        int r = 0;

        root_dir = root_dir ?: HANDOFF_STATE_DIR;
        DIR *d = opendir(root_dir);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d))) {
                        _cleanup_free_ char *sub = NULL;
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        if (asprintf(&sub, "%s/%s", root_dir, de->d_name) < 0)
                                return log_oom();
                        /* A checkpoint set holds one directory per unit, each with a record. */
                        DIR *s = opendir(sub);
                        if (s) {
                                struct dirent *ue;
                                while ((ue = readdir(s))) {
                                        _cleanup_free_ char *rec = NULL;
                                        Checkpoint c = {};
                                        if (ue->d_name[0] == '.' || asprintf(&rec, "%s/%s/" CHECKPOINT_STATE_FILE, sub, ue->d_name) < 0)
                                                continue;
                                        if (access(rec, F_OK) < 0 || checkpoint_load(rec, &c) < 0)
                                                continue;
                                        netlock_remove(&c);
                                        checkpoint_done(&c);
                                }
                                closedir(s);
                        }
                        int k = rm_rf(sub);
                        if (k < 0)
                                r = log_error_errno(k, "Failed to remove %s: %m", sub);
                        else
                                removed++;
                }
                closedir(d);
        } else if (errno != ENOENT)
                return log_error_errno(errno, "Failed to open %s: %m", root_dir);

        /* Restore drop-ins left by an interrupted handoff would turn the
         * unit's next start into a restore of images that are gone. */
        d = opendir(RESTORE_DROPIN_DIR);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d))) {
                        _cleanup_free_ char *unit = NULL;
                        const char *suffix = ".service.d";
                        if (!endswith(de->d_name, suffix))
                                continue;
                        unit = strndup(de->d_name, strlen(de->d_name) - 2);
                        if (!unit)
                                return log_oom();
                        _cleanup_(unit_info_done) UnitInfo info = {};
                        if (handoff_unit_info(h, unit, &info) >= 0 && streq(info.active_state, "activating"))
                                continue;
                        if (restore_dropin_remove(h->root, unit) > 0)
                                dropins++;
                }
                closedir(d);
        }
        if (dropins > 0)
                (void) daemon_reload();
        log_info("Removed %u checkpoint set%s and %u restore drop-in%s.", removed, removed == 1 ? "" : "s", dropins,
                 dropins == 1 ? "" : "s");
        return r;
}

/* Calls f for each unit directory of a checkpoint set that holds a record. */
static int foreach_checkpoint(const char *set_dir, int (*f)(const char *dir, Checkpoint *c, void *userdata),
                              void *userdata) {
        _cleanup_(closedirp) DIR *d = opendir(set_dir);
        int r = 0;

        if (!d)
                return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                _cleanup_free_ char *dir = NULL, *rec = NULL;
                _cleanup_(checkpoint_done) Checkpoint c = {};
                if (de->d_name[0] == '.')
                        continue;
                if (asprintf(&dir, "%s/%s", set_dir, de->d_name) < 0 || asprintf(&rec, "%s/" CHECKPOINT_STATE_FILE, dir) < 0)
                        return log_oom();
                if (access(rec, F_OK) < 0)
                        continue;
                if (checkpoint_load(rec, &c) < 0)
                        continue; /* logged */
                int k = f(dir, &c, userdata);
                if (k < 0 && r >= 0)
                        r = k;
        }
        return r;
}

typedef struct LockState {
        char **paths;
        char **units;
        int error;       /* a lock that cannot be loaded: the others are, all the same */
} LockState;

static int lock_one(const char *dir, Checkpoint *c, void *userdata) {
        LockState *st = userdata;
        _cleanup_free_ char *path = NULL;
        int r = netlock_file(dir, c, &path);
        if (r < 0 && st->error >= 0)
                st->error = r; /* logged */
        if (r <= 0)
                return 0;
        if (strv_extend(&st->paths, path) < 0 || strv_extend(&st->units, c->unit) < 0)
                return log_oom();
        return 0;
}

int handoff_lock_network(const char *set_dir) {
        _cleanup_strv_free_ char **paths = NULL, **units = NULL;
        LockState st = {};
        int r = foreach_checkpoint(set_dir, lock_one, &st);
        paths = st.paths;
        units = st.units;
        if (r == -ENOENT)
                return log_warning_errno(r, "No checkpoint set %s: nothing to lock.", set_dir);
        unsigned n = netlock_load_files(paths, units);
        log_info("Loaded %u network lock%s from %s.", n, n == 1 ? "" : "s", set_dir);
        if (r >= 0)
                r = st.error;
        if (r >= 0 && n < strv_length(paths))
                r = -EIO;
        return r;
}

typedef struct FinishState {
        Handoff *h;
        const char *set_dir;
        const char *generator_dir;
        char ***results;
        char **fresh;            /* units whose restore failed: started fresh after the reload */
} FinishState;

static int finish_one(const char *dir, Checkpoint *c, void *userdata) {
        FinishState *st = userdata;
        _cleanup_(unit_info_done) UnitInfo info = {};
        const char *result;

        if (c->session && c->result == CHECKPOINT_DUMPED) {
                RestoreStats stats;
                result = handoff_restore_session(st->h, c->unit, st->set_dir, &stats) >= 0 ? "restored" : "lost";
                /* Lost: its peer should see the connection closed, not hanging. */
                if (streq(result, "lost"))
                        netlock_remove(c);
        } else if (c->session)
                result = "lost";
        else if (c->result == CHECKPOINT_FRESH)
                result = "fresh"; /* never had a restore drop-in: it started as on any boot */
        else if (handoff_unit_info(st->h, c->unit, &info) >= 0 && streq(info.active_state, "active") &&
                 info.main_pid > 0) {
                log_unit_info(c->unit, "Restored %s across the switch (main PID " PID_FMT ").", c->unit, info.main_pid);
                result = "restored";
        } else {
                _cleanup_free_ char *log = NULL, *tail = NULL, *error = NULL, *reason = NULL;
                if (asprintf(&log, "%s/restore.log", dir) >= 0 && criu_log_reason(log, 5, &tail, &error) >= 0 && error)
                        (void) criu_explain(error, &reason);
                log_unit_error(c->unit, "Failed to restore %s across the switch (%s), starting it fresh: %s%s%s", c->unit,
                               strna(info.active_state), reason ?: "see the unit's journal",
                               tail ? "\nLast lines of the restore log:\n" : "", strempty(tail));
                netlock_remove(c);
                if (strv_extend(&st->fresh, c->unit) < 0)
                        return log_oom();
                result = "restarted";
        }
        /* The restore drop-in came from the generator: gone with the reload. */
        if (strv_extend(st->results, c->unit) < 0 || strv_extend(st->results, result) < 0)
                return log_oom();
        return 0;
}

int handoff_finish_boot(Handoff *h, const char *set_dir, char ***ret_results) {
        _cleanup_strv_free_ char **results = NULL;
        FinishState st = { .h = h, .set_dir = set_dir, .results = &results };
        int r;

        r = foreach_checkpoint(set_dir, finish_one, &st);
        if (r == -ENOENT) {
                log_warning("No checkpoint set %s: the restores have nothing to report.", set_dir);
                r = 0;
        }

        /* The generator stops writing restore drop-ins, so a later start of
         * the unit is an ordinary one again. */
        int k = mkdir_p(HANDOFF_RUN_DIR, 0755);
        if (k >= 0)
                k = write_string_file_atomic(HANDOFF_FINISHED_FILE, "finished\n", 0644);
        if (k < 0)
                log_error_errno(k, "Failed to write %s: %m", HANDOFF_FINISHED_FILE);
        (void) daemon_reload();
        umount_criu_leftovers();

        STRV_FOREACH(u, st.fresh)
                if (ensure_running(h, *u, /* restart= */ false) < 0 && r >= 0)
                        r = -ESRCH;
        strv_free(st.fresh);

        if (rm_rf(set_dir) < 0)
                log_warning("Failed to remove the checkpoint set %s: it holds process memory, remove it by hand.", set_dir);
        if (ret_results)
                *ret_results = TAKE_PTR(results);
        return r;
}

typedef struct RestoreSetState {
        Handoff *h;
        const char *set_dir;
        char ***results;
} RestoreSetState;

static int restore_one(const char *dir, Checkpoint *c, void *userdata) {
        RestoreSetState *st = userdata;
        RestoreStats stats;
        const char *result;

        if (c->session)
                result = c->result == CHECKPOINT_DUMPED &&
                         handoff_restore_session(st->h, c->unit, st->set_dir, &stats) >= 0 ? "restored" : "lost";
        else {
                int r = handoff_restore(st->h, c->unit, st->set_dir, &stats);
                result = r < 0 ? "failed" : r == 0 ? "restored" : "restarted";
        }
        if (strv_extend(st->results, c->unit) < 0 || strv_extend(st->results, result) < 0)
                return log_oom();
        return 0;
}

int handoff_restore_set(Handoff *h, const char *set_dir, char ***ret_results) {
        _cleanup_strv_free_ char **results = NULL;
        RestoreSetState st = { .h = h, .set_dir = set_dir, .results = &results };

        int r = foreach_checkpoint(set_dir, restore_one, &st);
        if (r == -ENOENT)
                r = 0;
        (void) handoff_flush(h);
        umount_criu_leftovers();
        if (rm_rf(set_dir) < 0)
                log_warning("Failed to remove the checkpoint set %s: it holds process memory, remove it by hand.", set_dir);
        if (ret_results)
                *ret_results = TAKE_PTR(results);
        return r;
}
