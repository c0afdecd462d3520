/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* updaterd: the dreamlink update service. See updaterd(8). */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "manager.h"
#include "ostree-repo.h"
#include "stage.h"
#include "status.h"
#include "string-util.h"


/* As systemd's own bus services (hostnamed, sysupdated) do: a daemon for a few jobs a month costs
 * nothing the rest of the time. */
#define EXIT_IDLE_DEFAULT (30 * USEC_PER_SEC)

static usec_t arg_exit_idle = EXIT_IDLE_DEFAULT;

static int help(void) {
        printf("%s [OPTIONS...]\n\n"
               "The dreamlink update service: stages signed OS releases into the passive slot.\n"
               "Controlled over D-Bus (org.dreamlink.Updater1), usually with updatectl.\n\n"
               "  -h --help              Show this help\n"
               "     --version           Show package version\n"
               "     --exit-idle-time=T  Exit after T with nothing to do (default 30s;\n"
               "                         infinity: never)\n\n"
               "See the updaterd(8) man page for details.\n",
               program_invocation_short_name);
        return 0;
}

static int run(void) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        sigset_t mask;
        int r;

        /* Signals are handled by the event loop; children (workers) too. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = sd_event_default(&event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");
        r = sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to watch signals: %m");

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");

        /* DREAMLINK_ROOT lets the tests run the daemon against a directory tree. */
        r = manager_new(event, bus, secure_getenv("DREAMLINK_ROOT"), updater_worker_main, &m);
        if (r < 0)
                return r;
        /* An earlier version made the local repository 0755: root only from now, not from the
         * next stage on (local_repo_open() does it too). */
        _cleanup_free_ char *repo = state_path(m->root, &m->config, LOCAL_REPO);
        r = repo ? local_repo_lock_down(repo) : -ENOMEM;
        if (r < 0)
                log_warning_errno(r, "Failed to make the local repository %s root only: %m", strna(repo));

        r = manager_bus_register(m);
        if (r < 0)
                return r;
        r = sd_bus_request_name(bus, UPDATER_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to acquire the bus name %s: %m", UPDATER_BUS_NAME);

        (void) sd_notify(false, "READY=1\nSTATUS=Idle.");
        log_info("updaterd %s ready: channel %s, server %s.", PACKAGE_VERSION, m->config.channel,
                 m->config.server ?: "(none configured)");
        manager_schedule_auto_commit(m);
        manager_schedule_fleet_release(m);

        r = manager_run(m, arg_exit_idle);
        (void) sd_notify(false, "STOPPING=1");
        return r;
}

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_EXIT_IDLE };
        static const struct option options[] = {
                { "help",           no_argument,       NULL, 'h' },
                { "version",        no_argument,       NULL, ARG_VERSION },
                { "exit-idle-time", required_argument, NULL, ARG_EXIT_IDLE },
                {}
        };
        int c;

        log_setup("updaterd");
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("updaterd (dreamlink) %s\n", PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                case ARG_EXIT_IDLE:
                        if (streq(optarg, "infinity"))
                                arg_exit_idle = USEC_INFINITY;
                        else if (parse_timespan(optarg, &arg_exit_idle) < 0 || arg_exit_idle == 0) {
                                log_error("--exit-idle-time= expects a time span above 0 or \"infinity\", got '%s'.", optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                default:
                        return EXIT_FAILURE;
                }
        if (optind < argc) {
                log_error("%s takes no arguments.", program_invocation_short_name);
                return EXIT_FAILURE;
        }
        return run() < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
