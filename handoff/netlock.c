/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The network lock: the nftables table criu leaves after a dump, which drops the peers'
 * packets until the restore lifts it. Found with nft after the dump, saved beside the
 * images for a new boot (NETLOCK_FILE), loaded there before the network is up, removed
 * when the checkpoint will not be restored. */

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"
#include "process-util.h"
#include "string-util.h"

#define NETLOCK_FILE "netlock.nft"

extern char **environ;

/* Runs argv and returns its standard output. */
static int run_capture(const char * const argv[], char **ret) {
        posix_spawn_file_actions_t actions;
        int pipefd[2], r, status;
        pid_t pid;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        r = posix_spawn_file_actions_init(&actions);
        if (r != 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                return -r;
        }
        posix_spawn_file_actions_adddup2(&actions, pipefd[1], STDOUT_FILENO);
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        r = posix_spawnp(&pid, argv[0], &actions, NULL, (char * const *) argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        close(pipefd[1]);
        if (r != 0) {
                close(pipefd[0]);
                return -r;
        }
        r = read_fd_limited(pipefd[0], 1 << 20, ret, NULL);
        close(pipefd[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (r < 0)
                return r;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                *ret = mfree(*ret);
                return -EPROTO;
        }
        return 0;
}

int nft_criu_tables(char ***ret) {
        static const char * const argv[] = { "nft", "list", "tables", NULL };
        _cleanup_free_ char *out = NULL;
        _cleanup_strv_free_ char **tables = NULL;
        int r;

        r = run_capture(argv, &out);
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

static void nft_delete_table(const char *unit, const char *table) {
        /* "inet CRIU-…": two words for nft */
        _cleanup_free_ char *family = strdup(table);
        if (!family)
                return;
        char *name = strchr(family, ' ');
        if (!name)
                return;
        *name++ = 0;
        const char * const argv[] = { "nft", "delete", "table", family, name, NULL };
        if (run_command(argv) >= 0)
                log_unit_info(unit, "Removed the network lock %s of the abandoned checkpoint of %s.", table, unit);
}

/* The one way a checkpoint's lock goes when the checkpoint will not be restored (a failed
 * restore, a lost session, gc): until then the peers' packets are dropped. */
void netlock_remove(const Checkpoint *c) {
        if (c->lock_table)
                nft_delete_table(c->unit, c->lock_table);
}

/* The lock criu leaves after a dump drops the peers' packets until the
 * restore lifts it. A new boot starts without it: NETLOCK_FILE brings it back
 * before the network is up, so the peers are not answered with resets. */
int save_lock_table(const char *dir, const char *table) {
        _cleanup_free_ char *family = strdup(table), *out = NULL, *path = NULL;
        if (!family || asprintf(&path, "%s/" NETLOCK_FILE, dir) < 0)
                return -ENOMEM;
        char *name = strchr(family, ' ');
        if (!name)
                return -EINVAL;
        *name++ = 0;
        const char * const argv[] = { "nft", "list", "table", family, name, NULL };
        int r = run_capture(argv, &out);
        if (r < 0)
                return r;
        return write_string_file_atomic(path, out, 0600);
}

/* Loads the lock saved beside the checkpoint in dir (save_lock_table()): 1 if it did, 0 if
 * the checkpoint has none. */
int netlock_load(const char *dir, const Checkpoint *c) {
        _cleanup_free_ char *path = NULL;

        if (c->result != CHECKPOINT_DUMPED || !c->lock_table)
                return 0;
        if (asprintf(&path, "%s/" NETLOCK_FILE, dir) < 0)
                return log_oom();
        if (access(path, F_OK) < 0)
                return log_unit_warning_errno(c->unit, errno, "No saved network lock for %s (%s): %m", c->unit, path);
        const char * const argv[] = { "nft", "-f", path, NULL };
        int r = run_command(argv);
        if (r < 0)
                return log_unit_error_errno(c->unit, r, "Failed to load the network lock %s of %s: %m", c->lock_table, c->unit);
        return 1;
}
