/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "conf-parser.h"
#include "health.h"
#include "log.h"
#include "process-util.h"
#include "status.h"
#include "string-util.h"

static int unit_active_state(sd_bus *bus, const char *unit, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "LoadUnit", &error, &reply, "s", unit);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        return sd_bus_get_property_string(bus, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit",
                                          "ActiveState", &error, ret);
}

/* Whether systemd has a job queued for the unit (it is still to be started). */
static bool unit_has_job(sd_bus *bus, const char *unit) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *load = NULL;
        const char *path, *job;
        uint32_t id = 0;

        if (sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "LoadUnit", &error, &load, "s", unit) < 0 ||
            sd_bus_message_read(load, "o", &path) < 0 ||
            sd_bus_get_property(bus, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit", "Job", &error,
                                &reply, "(uo)") < 0 ||
            sd_bus_message_read(reply, "(uo)", &id, &job) < 0)
                return false;
        return id != 0;
}

static int check_units(const UpdaterConfig *c, usec_t deadline, char **ret_reason) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (!c->health_units)
                return 0;
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        STRV_FOREACH(u, c->health_units)
                for (;;) {
                        _cleanup_free_ char *state = NULL;
                        r = unit_active_state(bus, *u, &state);
                        if (r < 0)
                                return asprintf(ret_reason, "cannot read the state of %s: %s", *u, strerror(-r)) < 0 ? -ENOMEM : -EBADE;
                        if (streq(state, "active"))
                                break;
                        bool starting = streq(state, "activating") || streq(state, "reloading") ||
                                        (streq(state, "inactive") && unit_has_job(bus, *u));
                        if (!starting || now_usec(CLOCK_MONOTONIC) >= deadline)
                                return asprintf(ret_reason, "required unit %s is %s", *u, state) < 0 ? -ENOMEM : -EBADE;
                        usleep(500 * 1000);
                }
        return 0;
}

static int check_programs(const char *root, usec_t deadline, char **ret_reason) {
        _cleanup_strv_free_ char **files = NULL;
        const char * const dirs[] = { HEALTH_DIRS, NULL };
        _cleanup_strv_free_ char **rooted = NULL;
        int r;

        for (const char * const *d = dirs; *d; d++) {
                char *p = path_prefix(root, *d);
                if (!p || strv_push(&rooted, p) < 0)
                        return log_oom();
        }
        r = conf_files_list((const char * const *) rooted, "", &files);
        if (r < 0)
                return log_error_errno(r, "Failed to list the health checks: %m");
        STRV_FOREACH(f, files) {
                struct stat st;
                if (stat(*f, &st) < 0 || !S_ISREG(st.st_mode) || access(*f, X_OK) < 0)
                        continue; /* masked (/dev/null) or not executable */
                usec_t now = now_usec(CLOCK_MONOTONIC);
                char secs[32];
                snprintf(secs, sizeof(secs), "%llu", now < deadline ? (unsigned long long) ((deadline - now) / USEC_PER_SEC) + 1 : 1ULL);
                const char * const argv[] = { "timeout", "--kill-after=5", secs, *f, NULL };
                r = run_command(argv);
                if (r < 0)
                        return asprintf(ret_reason, "health check %s failed", *f) < 0 ? -ENOMEM : -EBADE;
                log_info("Health check %s passed.", *f);
        }
        return 0;
}

int health_check(const UpdaterConfig *c, const char *root, char **ret_reason) {
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + c->health_timeout;
        int r;

        *ret_reason = NULL;
        r = check_units(c, deadline, ret_reason);
        if (r >= 0)
                r = check_programs(root, deadline, ret_reason);
        return r;
}
