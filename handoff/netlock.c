/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The network lock: the nftables table criu leaves after a dump, or the one a container's dump
 * makes to hold its ports (container.c), which drops the peers' packets until the restore lifts it. Found with nft after the dump, saved beside the
 * images for a new boot (NETLOCK_FILE), loaded there before the network is up, removed
 * when the checkpoint will not be restored. */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"
#include "process-util.h"
#include "string-util.h"

int nft_criu_tables(char ***ret) {
        static const char * const argv[] = { "nft", "list", "tables", NULL };
        _cleanup_free_ char *out = NULL;
        _cleanup_strv_free_ char **tables = NULL;
        int r;

        r = run_command_output(argv, 1 << 20, &out, NULL);
        if (r < 0)
                return r;
        for (char *p = out, *e; p && *p; p = e) {
                e = strchr(p, '\n');
                if (e)
                        *e++ = 0;
                const char *t = startswith(strstrip(p), "table ");
                if (t && strstr(t, "CRIU-") && strv_extend(&tables, t) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(tables);
        return 0;
}

static void nft_delete_table(const char *unit, const char *table, const char *why) {
        /* "inet CRIU-…": two words for nft */
        _cleanup_free_ char *family = strdup(table);
        if (!family)
                return;
        char *name = strchr(family, ' ');
        if (!name)
                return;
        *name++ = 0;
        const char * const argv[] = { "nft", "delete", "table", family, name, NULL };
        if (run_command(argv) >= 0 && why)
                log_unit_info(unit, "Removed the network lock %s of %s: %s.", table, unit, why);
}

char *netlock_table_name(const char *unit) {
        /* nft names: letters, digits, "_", "-", "."; a unit's "@" and "\\" are not among them. */
        char *name = strprintf("dreamlink-hold-%s", unit);
        for (char *p = name ? name + strlen("dreamlink-hold-") : NULL; p && *p; p++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.", *p))
                        *p = '_';
        return name;
}

void netlock_lift(const Checkpoint *c) {
        if (c->lock_table)
                nft_delete_table(c->unit, c->lock_table, NULL);
}

/* The one way a checkpoint's lock goes when the checkpoint will not be restored (a failed
 * restore, a lost session, gc): until then the peers' packets are dropped. */
void netlock_remove(const Checkpoint *c) {
        if (c->lock_table)
                nft_delete_table(c->unit, c->lock_table, "its checkpoint will not be restored");
}

/* The lock criu leaves after a dump drops the peers' packets until the
 * restore lifts it. A new boot starts without it: NETLOCK_FILE brings it back
 * before the network is up, so the peers are not answered with resets. Its text in *ret_text
 * (optional). */
int save_lock_table(const char *dir, const char *table, char **ret_text) {
        _cleanup_free_ char *family = strdup(table), *out = NULL, *path = NULL;
        if (!family || asprintf(&path, "%s/" NETLOCK_FILE, dir) < 0)
                return -ENOMEM;
        char *name = strchr(family, ' ');
        if (!name)
                return -EINVAL;
        *name++ = 0;
        const char * const argv[] = { "nft", "list", "table", family, name, NULL };
        /* Two set elements a connection, about 130 bytes: room for a busy server's. */
        int r = run_command_output(argv, 64 << 20, &out, NULL);
        if (r < 0)
                return r;
        r = write_string_file_atomic(path, out, 0600);
        if (r >= 0 && ret_text)
                *ret_text = TAKE_PTR(out);
        return r;
}

/* The lock saved beside the checkpoint in dir (save_lock_table()): 1 with its path, 0 if the
 * checkpoint has none. */
int netlock_file(const char *dir, const Checkpoint *c, char **ret_path) {
        _cleanup_free_ char *path = NULL;

        if (c->result != CHECKPOINT_DUMPED || !c->lock_table)
                return 0;
        if (asprintf(&path, "%s/" NETLOCK_FILE, dir) < 0)
                return log_oom();
        if (access(path, F_OK) < 0)
                return log_unit_warning_errno(c->unit, errno, "No saved network lock for %s (%s): %m", c->unit, path);
        *ret_path = TAKE_PTR(path);
        return 1;
}

/* One nft for all the locks of a set: one transaction, and one start of nft instead of one per
 * lock, which an emulated machine measures in seconds, all of them on the way to
 * network-pre.target. When nft refuses the batch, each lock is loaded on its own, so that one
 * bad file does not leave the others' peers unheld. Returns how many were loaded. */
unsigned netlock_load_files(char * const *paths, char * const *units) {
        _cleanup_free_ char *batch = NULL;
        size_t n = strv_length((char **) paths);
        unsigned loaded = 0;
        int r;

        assert(strv_length((char **) units) == n);
        if (n == 0)
                return 0;
        /* nft's own include: the files are read by nft, never copied into one. Only absolute
         * paths nft takes literally: not one its quotes cannot carry (a unit name's "\x2d"
         * escape), nor one it would read as a glob, which matching nothing is no error to
         * nft. Otherwise each is loaded on its own. */
        bool literal = true;
        for (size_t i = 0; i < n; i++)
                literal = literal && paths[i][0] == '/' && !strpbrk(paths[i], "\"\\*?[");
        if (n > 1 && literal) {
                for (size_t i = 0; i < n; i++) {
                        char *b = strprintf("%sinclude \"%s\"\n", strempty(batch), paths[i]);
                        batch = mfree(batch);
                        if (!b)
                                break;
                        batch = b;
                }
                const char * const argv[] = { "nft", "-f", "-", NULL };
                if (batch && run_command_input(argv, batch) >= 0)
                        return n;
                log_warning("nft refused the network locks as one batch; loading them one by one.");
        }
        for (size_t i = 0; i < n; i++) {
                const char * const argv[] = { "nft", "-f", paths[i], NULL };
                r = run_command(argv);
                if (r < 0)
                        log_unit_error_errno(units[i], r, "Failed to load the network lock of %s (%s): %m", units[i],
                                             paths[i]);
                else
                        loaded++;
        }
        return loaded;
}
