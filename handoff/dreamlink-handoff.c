/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dreamlink-handoff: checkpoint and restore opted-in services. See dreamlink-handoff(8). */

#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <systemd/sd-login.h>

#include "fileio.h"
#include "handoff.h"
#include "log.h"
#include "handoff-cmdline.h"
#include "string-util.h"
#include "time-util.h"

static const char *arg_images = NULL;
static const char *arg_unit = NULL;
static const char *arg_pidfile = NULL;

static int help(void) {
        printf("%s [OPTIONS...] COMMAND [UNIT...]\n\n"
               "Checkpoints services with CRIU and restores them through their own unit.\n\n"
               "Commands:\n"
               "  list                    Show the opted-in services and whether they can be\n"
               "                          checkpointed now (a dry-run dump)\n"
               "  dump UNIT...            Checkpoint the services into --images\n"
               "  restore UNIT...         Restore them from --images (or start them fresh)\n"
               "  cycle UNIT...           Dump, then restore onto the same OS\n"
               "  gc                      Remove abandoned checkpoints and restore drop-ins\n"
               "  lock-network            Load the network locks of a checkpoint set (--images,\n"
               "                          or the one the kernel command line names)\n"
               "  probe-kernel            Have criu probe the kernel and cache what it found\n"
               "                          for this boot (before the restores)\n"
               "  reap CMD...             Run CMD, collecting the daemons it starts into one\n"
               "                          process tree (the ExecStart= of Type=forking services)\n\n"
               "Options:\n"
               "  -h --help               Show this help\n"
               "     --version            Show package version\n"
               "     --images=DIR         Where the checkpoint images go (root only)\n\n"
               "See the dreamlink-handoff(8) man page for details.\n",
               program_invocation_short_name);
        return 0;
}

static int load_units(char **names, HandoffUnit ***ret_config, HandoffUnit ***ret_units) {
        HandoffUnit **config = NULL, **units;
        size_t n = strv_length(names);
        int r;

        r = handoff_config_load(NULL, &config);
        if (r < 0)
                return r;
        units = calloc(n + 1, sizeof(HandoffUnit *));
        if (!units) {
                handoff_config_free(config);
                return log_oom();
        }
        for (size_t i = 0; i < n; i++) {
                HandoffUnit *u = handoff_config_find(config, names[i]);
                if (!u || !u->enabled) {
                        r = log_error_errno(ENOENT, "%s is not opted in to handoff (no enabled file in handoff.d naming it).", names[i]);
                        free(units);
                        handoff_config_free(config);
                        return r;
                }
                units[i] = u;
        }
        *ret_config = config;
        *ret_units = units;
        return 0;
}

static int verb_list(Handoff *h) {
        HandoffUnit **config = NULL;
        int r;

        r = handoff_config_load(NULL, &config);
        if (r < 0)
                return r;
        if (!config[0])
                printf("No services are opted in (see handoff.d(5)).\n");
        for (HandoffUnit **u = config; *u; u++) {
                _cleanup_(unit_info_done) UnitInfo info = {};
                _cleanup_free_ char *reason = NULL;
                _cleanup_free_ pid_t *pids = NULL;
                size_t n = 0;

                if (!(*u)->enabled) {
                        printf("%s: disabled (%s)\n", (*u)->unit, (*u)->file);
                        continue;
                }
                if (handoff_unit_info(h, (*u)->unit, &info) < 0) {
                        printf("%s: unknown unit\n", (*u)->unit);
                        continue;
                }
                printf("%s: %s (%s), main PID " PID_FMT "\n", (*u)->unit, info.active_state, info.sub_state, info.main_pid);
                if ((*u)->sessions) {
                        /* The unit itself starts fresh; its login sessions are carried by a commit. */
                        _cleanup_strv_free_ char **scopes = NULL;
                        (void) handoff_unit_sessions(h, (*u)->unit, &scopes);
                        printf("  carried by a commit: its login sessions (%zu now:", strv_length(scopes));
                        STRV_FOREACH(s, scopes)
                                printf(" %s", *s);
                        printf("); the unit starts fresh\n");
                        continue;
                }
                if (info.control_group && cgroup_pids(info.control_group, &pids, &n) >= 0)
                        for (size_t i = 0; i < n; i++) {
                                _cleanup_free_ char *path = NULL, *comm = NULL;
                                if (asprintf(&path, "/proc/" PID_FMT "/comm", pids[i]) >= 0 &&
                                    read_file_limited(path, 256, &comm, NULL) >= 0)
                                        strstrip(comm);
                                printf("  process " PID_FMT " %s\n", pids[i], strna(comm));
                        }
                usec_t t0 = now_usec(CLOCK_MONOTONIC);
                r = handoff_try_dump(h, *u, &reason);
                if (r >= 0)
                        printf("  can be checkpointed now: yes (dry run %.2f s)\n",
                               (now_usec(CLOCK_MONOTONIC) - t0) / 1e6);
                else
                        printf("  can be checkpointed now: no, %s\n", strna(reason));
                printf("  on dump failure: %s\n", handoff_failure_policy_to_string((*u)->on_dump_failure));
        }
        handoff_config_free(config);

        /* Not opted in anywhere, yet a user's workload: say what becomes of them. */
        _cleanup_free_ uid_t *uids = NULL;
        _cleanup_free_ unsigned *counts = NULL;
        size_t n = 0;
        if (rootless_containers(&uids, &counts, &n) >= 0)
                for (size_t i = 0; i < n; i++) {
                        struct passwd *pw = getpwuid(uids[i]);
                        printf("rootless containers of %s: %u running\n"
                               "  can be checkpointed: no, podman checkpoints only containers run by root (CRIU needs root); "
                               "they stop at a switch, and a lingering user's quadlet units start them fresh in the new boot\n",
                               pw ? pw->pw_name : "?", counts[i]);
                }
        return 0;
}

/* Where the dump's time went, what the images' size over it does not tell apart: criu's
 * share, when it said (collecting the pages, writing them; the rest is the tree's other state),
 * and the sync of the images at the end. */
static void print_dump_split(const DumpStats *s) {
        if (s->memory_usec > 0)
                printf(", memory %.1f MiB in %.2f s (written in %.2f s)", s->memory_bytes / 1048576.0,
                       s->memory_usec / 1e6, s->memory_write_usec / 1e6);
        if (s->sync_usec > 0)
                printf(", synced in %.2f s", s->sync_usec / 1e6);
}

static int verb_dump(Handoff *h, char **names, const char *images, DumpStats *stats) {
        HandoffUnit **config = NULL, **units = NULL;
        int r, ret = 0;

        r = load_units(names, &config, &units);
        if (r < 0)
                return r;
        (void) handoff_prepare(h, units, images);
        for (size_t i = 0; units[i]; i++) {
                DumpStats s;
                r = handoff_dump(h, units[i], images, &s);
                if (stats)
                        stats[i] = s;
                if (r < 0 && ret == 0)
                        ret = r;
                if (r == 0) {
                        printf("%s: checkpointed, dump %.2f s, images %.1f MiB", units[i]->unit, s.dump_usec / 1e6,
                               s.image_bytes / 1048576.0);
                        if (s.pre_dump_usec > 0)
                                printf(" (pre-dump %.2f s, %.1f MiB)", s.pre_dump_usec / 1e6, s.pre_dump_bytes / 1048576.0);
                        print_dump_split(&s);
                        printf("\n");
                }
                else if (r > 0)
                        printf("%s: not checkpointed, will restart fresh\n", units[i]->unit);
        }
        (void) handoff_flush(h);
        free(units);
        handoff_config_free(config);
        return ret;
}

static int verb_restore(Handoff *h, char **names, const char *images, const DumpStats *stats) {
        int r, ret = 0;

        STRV_FOREACH(n, names) {
                RestoreStats s;
                r = handoff_restore(h, *n, images, &s);
                if (r < 0 && ret == 0)
                        ret = r;
                if (r == 0) {
                        /* From the freeze at the start of the dump to the end of the restore. */
                        usec_t frozen = s.restored_at_usec - s.dumped_at_usec;
                        const DumpStats *d = stats ? &stats[n - names] : NULL;
                        if (d)
                                frozen += d->dump_usec;
                        printf("%s: restored, main PID " PID_FMT ", restore %.2f s, frozen %.2f s", *n, s.main_pid,
                               s.restore_usec / 1e6, frozen / 1e6);
                        if (d)
                                printf(", dump %.2f s, images %.1f MiB", d->dump_usec / 1e6, d->image_bytes / 1048576.0);
                        if (d && d->pre_dump_usec > 0)
                                printf(", pre-dump %.2f s, %.1f MiB", d->pre_dump_usec / 1e6, d->pre_dump_bytes / 1048576.0);
                        if (d)
                                print_dump_split(d);
                        printf("\n");
                } else if (r > 0)
                        printf("%s: started fresh, main PID " PID_FMT "\n", *n, s.main_pid);
        }
        (void) handoff_flush(h);
        return ret;
}

/* Sessions=yes units take part in a cycle through their login sessions: the listener
 * itself keeps running (its sessions are what a user would lose). */
static int split_session_units(char **names, char ***ret_units, char ***ret_scopes, Handoff *h) {
        _cleanup_strv_free_ char **units = NULL, **scopes = NULL;
        _cleanup_free_ char *own = NULL;
        HandoffUnit **config = NULL, **list = NULL;
        int r;

        /* The session this command runs in would be dumped, and ended, with it. */
        (void) sd_pid_get_unit(0, &own);
        r = load_units(names, &config, &list);
        if (r < 0)
                return r;
        for (size_t i = 0; list[i] && r >= 0; i++) {
                if (!list[i]->sessions) {
                        r = strv_extend(&units, list[i]->unit);
                        continue;
                }
                _cleanup_strv_free_ char **s = NULL;
                r = handoff_unit_sessions(h, list[i]->unit, &s);
                STRV_FOREACH(x, s) {
                        if (streq_ptr(*x, own))
                                printf("%s: not checkpointed, this command runs in it\n", *x);
                        else if (r >= 0)
                                r = strv_extend(&scopes, *x);
                }
        }
        free(list);
        handoff_config_free(config);
        if (r < 0)
                return log_error_errno(r, "Failed to list the units and sessions to cycle: %m");
        *ret_units = TAKE_PTR(units);
        *ret_scopes = TAKE_PTR(scopes);
        return 0;
}

static int cycle_sessions(Handoff *h, char **scopes, const char *images) {
        size_t n = strv_length(scopes);
        _cleanup_free_ DumpStats *stats = calloc(n + 1, sizeof(DumpStats));
        _cleanup_free_ bool *dumped = calloc(n + 1, sizeof(bool));
        _cleanup_free_ usec_t *stopped = calloc(n + 1, sizeof(usec_t));
        int r, ret = 0;

        if (!stats || !dumped || !stopped)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                stopped[i] = now_usec(CLOCK_MONOTONIC);
                r = handoff_dump_session(h, scopes[i], images, &stats[i]);
                dumped[i] = r == 0;
                if (r == 0)
                        printf("%s: checkpointed, dump %.2f s, images %.1f MiB\n", scopes[i], stats[i].dump_usec / 1e6,
                               stats[i].image_bytes / 1048576.0);
                else {
                        printf("%s: not checkpointed, the session goes on\n", scopes[i]);
                        if (r < 0 && ret == 0)
                                ret = r;
                }
        }
        for (size_t i = 0; i < n; i++) {
                RestoreStats s;
                if (!dumped[i])
                        continue;
                r = handoff_restore_session(h, scopes[i], images, &s);
                if (r < 0) {
                        printf("%s: lost\n", scopes[i]);
                        if (ret == 0)
                                ret = r;
                        continue;
                }
                const char *id = startswith(scopes[i], RESTORED_SESSION_PREFIX) ?: scopes[i];
                printf("%s: restored as " RESTORED_SESSION_PREFIX "%s, restore %.2f s, frozen %.2f s\n", scopes[i], id,
                       s.restore_usec / 1e6, (now_usec(CLOCK_MONOTONIC) - stopped[i]) / 1e6);
        }
        return ret;
}

static int verb_cycle(Handoff *h, char **names) {
        _cleanup_strv_free_ char **units = NULL, **scopes = NULL;
        _cleanup_free_ DumpStats *stats = NULL;
        char images[] = HANDOFF_STATE_DIR "/cycle.XXXXXX";
        int r, k, s = 0;

        r = split_session_units(names, &units, &scopes, h);
        if (r < 0)
                return r;
        stats = calloc(strv_length(units) + 1, sizeof(DumpStats));
        if (!stats)
                return log_oom();
        r = mkdir_p(HANDOFF_STATE_DIR, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", HANDOFF_STATE_DIR);
        if (!mkdtemp(images))
                return log_error_errno(errno, "Failed to create a directory in %s: %m", HANDOFF_STATE_DIR);

        r = units ? verb_dump(h, units, images, stats) : 0;
        /* Whatever the dump did, every unit comes back (restored or fresh). */
        k = units ? verb_restore(h, units, images, stats) : 0;
        if (scopes)
                s = cycle_sessions(h, scopes, images);
        if (r >= 0 && k >= 0 && s >= 0)
                (void) rm_rf(images);
        return r < 0 ? r : k < 0 ? k : s;
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_IMAGES, ARG_UNIT, ARG_PIDFILE };
        static const struct option options[] = {
                { "help",    no_argument,       NULL, 'h' },
                { "version", no_argument,       NULL, ARG_VERSION },
                { "images",  required_argument, NULL, ARG_IMAGES },
                { "unit",    required_argument, NULL, ARG_UNIT },
                { "pidfile", required_argument, NULL, ARG_PIDFILE },
                {}
        };
        _cleanup_(handoff_freep) Handoff *h = NULL;
        int c, r;

        log_setup("dreamlink-handoff");
        /* The ExecStart= of a Type=forking service (the generator's drop-in): nothing of ours
         * may reach CMD, neither our umask nor getopt's reading of its options. */
        if (argc >= 2 && streq(argv[1], "reap")) {
                char **cmd = argv + 2;
                if (cmd[0] && streq(cmd[0], "--"))
                        cmd++;
                (void) handoff_reap(cmd);
                return EXIT_FAILURE;
        }
        umask(0077);
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("dreamlink-handoff (dreamlink) %s\n", PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                case ARG_IMAGES:
                        arg_images = optarg;
                        break;
                case ARG_UNIT:
                        arg_unit = optarg;
                        break;
                case ARG_PIDFILE:
                        arg_pidfile = optarg;
                        break;
                default:
                        return EXIT_FAILURE;
                }
        if (optind >= argc) {
                log_error("Missing command; see --help.");
                return EXIT_FAILURE;
        }
        const char *verb = argv[optind];
        char **units = argv + optind + 1;

        if (streq(verb, "restore-exec")) {
                /* Run by the restore drop-in, inside the unit. */
                if (!arg_unit || !arg_images || !arg_pidfile) {
                        log_error("restore-exec needs --unit=, --images= and --pidfile=.");
                        return EXIT_FAILURE;
                }
                umask(0022);
                return handoff_restore_exec(arg_unit, arg_images, arg_pidfile) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }

        if (streq(verb, "restore-session")) {
                /* Run by handoff_restore_session(), in the session's new scope. */
                if (!arg_images) {
                        log_error("restore-session needs --images=.");
                        return EXIT_FAILURE;
                }
                umask(0022);
                return handoff_restore_session_exec(arg_images) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }

        if (streq(verb, "probe-kernel"))
                /* Early in the boot a handoff switched into (dreamlink-handoff-probe.service). */
                return handoff_probe_kernel() < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        if (streq(verb, "lock-network")) {
                /* Early in the boot a handoff switched into: no bus yet. */
                _cleanup_(handoff_cmdline_done) HandoffCmdline cmdline = {};
                _cleanup_free_ char *dir = NULL;
                if (!arg_images) {
                        r = handoff_cmdline_parse(NULL, &cmdline);
                        if (r < 0) {
                                log_error_errno(r, "No --images= and no valid dreamlink.handoff= on the kernel command line: %m");
                                return EXIT_FAILURE;
                        }
                        dir = handoff_set_dir(cmdline.set_id);
                        if (!dir) {
                                log_oom();
                                return EXIT_FAILURE;
                        }
                }
                return handoff_lock_network(arg_images ?: dir) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }

        bool needs_units = streq(verb, "dump") || streq(verb, "restore") || streq(verb, "cycle");
        if (needs_units && !units[0]) {
                log_error("%s needs at least one unit.", verb);
                return EXIT_FAILURE;
        }
        if (!needs_units && units[0]) {
                log_error("%s takes no units.", verb);
                return EXIT_FAILURE;
        }
        if ((streq(verb, "dump") || streq(verb, "restore")) && !arg_images) {
                log_error("%s needs --images=DIR.", verb);
                return EXIT_FAILURE;
        }
        for (char **u = units; *u; u++)
                if (!unit_name_is_service(*u)) {
                        log_error("'%s' is not a service unit name.", *u);
                        return EXIT_FAILURE;
                }

        r = handoff_new(&h);
        if (r < 0)
                return EXIT_FAILURE;

        if (streq(verb, "list"))
                r = verb_list(h);
        else if (streq(verb, "dump"))
                r = verb_dump(h, units, arg_images, NULL);
        else if (streq(verb, "restore"))
                r = verb_restore(h, units, arg_images, NULL);
        else if (streq(verb, "cycle"))
                r = verb_cycle(h, units);
        else if (streq(verb, "gc"))
                r = handoff_gc(h, arg_images);
        else {
                log_error("Unknown command '%s'; see --help.", verb);
                return EXIT_FAILURE;
        }
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
