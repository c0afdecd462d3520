/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Handoff object and every way the engine reaches systemd's manager: a unit's state
 * over D-Bus (LoadUnit and its properties), and the systemctl commands that start units
 * and reload the manager. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "handoff-internal.h"
#include "log.h"
#include "process-util.h"
#include "string-util.h"

int handoff_new(Handoff **ret) {
        _cleanup_(handoff_freep) Handoff *h = NULL;
        int r;

        h = calloc(1, sizeof(*h));
        if (!h)
                return log_oom();
        r = sd_bus_open_system(&h->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        /* The restore drop-in runs dreamlink-handoff: this very binary when
         * it is one (a build tree's too), else the installed one. */
        h->helper = realpath("/proc/self/exe", NULL);
        if (!h->helper)
                return log_error_errno(errno, "Failed to find our own binary: %m");
        const char *base = strrchr(h->helper, '/');
        if (!base || !streq(base + 1, "dreamlink-handoff")) {
                free(h->helper);
                h->helper = strdup(HANDOFF_HELPER_PATH);
                if (!h->helper)
                        return log_oom();
        }
        *ret = TAKE_PTR(h);
        return 0;
}

Handoff *handoff_free(Handoff *h) {
        if (!h)
                return NULL;
        sd_bus_flush_close_unref(h->bus);
        free(h->helper);
        return mfree(h);
}

void unit_info_done(UnitInfo *i) {
        free(i->active_state);
        free(i->sub_state);
        free(i->control_group);
        free(i->syslog_identifier);
        strv_free(i->consists_of);
        *i = (UnitInfo) {};
}

static int unit_object_path(Handoff *h, const char *unit, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        r = sd_bus_call_method(h->bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "LoadUnit", &error, &reply, "s", unit);
        if (r < 0)
                return log_unit_error_errno(unit, r, "Failed to load %s: %s", unit, error.message ?: strerror(-r));
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply of LoadUnit: %m");
        *ret = strdup(path);
        return *ret ? 0 : log_oom();
}

/* The name systemd tags a unit's log lines with when SyslogIdentifier= is unset. */
static int exec_start_name(Handoff *h, const char *path, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *binary;
        int r;

        *ret = NULL;
        r = sd_bus_get_property(h->bus, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Service",
                                "ExecStart", &error, &reply, "a(sasbttttuii)");
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(sasbttttuii)");
        if (r <= 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'r', "sasbttttuii");
        if (r <= 0)
                return r;
        r = sd_bus_message_read(reply, "s", &binary);
        if (r < 0)
                return r;
        const char *slash = strrchr(binary, '/');
        *ret = strdup(slash ? slash + 1 : binary);
        return *ret ? 0 : -ENOMEM;
}

int handoff_unit_info(Handoff *h, const char *unit, UnitInfo *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        UnitInfo i = {};
        uint32_t pid = 0;
        int r;

        r = unit_object_path(h, unit, &path);
        if (r < 0)
                return r;
        r = sd_bus_get_property_string(h->bus, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit",
                                       "ActiveState", &error, &i.active_state);
        if (r >= 0)
                r = sd_bus_get_property_string(h->bus, "org.freedesktop.systemd1", path,
                                               "org.freedesktop.systemd1.Unit", "SubState", &error, &i.sub_state);
        if (r >= 0)
                r = sd_bus_get_property_trivial(h->bus, "org.freedesktop.systemd1", path,
                                                "org.freedesktop.systemd1.Service", "MainPID", &error, 'u', &pid);
        if (r >= 0)
                r = sd_bus_get_property_string(h->bus, "org.freedesktop.systemd1", path,
                                               "org.freedesktop.systemd1.Service", "ControlGroup", &error,
                                               &i.control_group);
        if (r >= 0)
                r = sd_bus_get_property_string(h->bus, "org.freedesktop.systemd1", path,
                                               "org.freedesktop.systemd1.Service", "SyslogIdentifier", &error,
                                               &i.syslog_identifier);
        if (r >= 0)
                r = sd_bus_get_property_strv(h->bus, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit",
                                             "ConsistsOf", &error, &i.consists_of);

        if (r < 0) {
                unit_info_done(&i);
                return log_unit_error_errno(unit, r, "Failed to read the state of %s: %s", unit,
                                            error.message ?: strerror(-r));
        }
        i.main_pid = (pid_t) pid;
        if (isempty(i.syslog_identifier)) {
                i.syslog_identifier = mfree(i.syslog_identifier);
                (void) exec_start_name(h, path, &i.syslog_identifier);
        }
        if (isempty(i.control_group))
                i.control_group = mfree(i.control_group);
        *ret = i;
        return 0;
}

int systemctl(const char *verb, const char *unit) {
        const char * const argv[] = { "systemctl", verb, unit, NULL };
        return run_command(argv);
}

int daemon_reload(void) {
        static const char * const argv[] = { "systemctl", "daemon-reload", NULL };
        return run_command(argv);
}

/* After a failed dump or restore: whatever happened, the unit runs again. */
int ensure_running(Handoff *h, const char *unit, bool restart) {
        _cleanup_(unit_info_done) UnitInfo info = {};
        int r;

        r = handoff_unit_info(h, unit, &info);
        if (r >= 0 && streq(info.active_state, "active") && !restart)
                return 0;
        (void) systemctl("reset-failed", unit);
        r = systemctl(restart ? "restart" : "start", unit);
        if (r < 0)
                return log_unit_error_errno(unit, r, "Failed to start %s fresh: %m", unit);
        log_unit_info(unit, "Started %s fresh.", unit);
        return 0;
}
