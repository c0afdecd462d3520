/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf-parser.h"
#include "log.h"
#include "paths.h"
#include "string-util.h"
#include "updaterd-conf.h"

static int config_parse_url(const char *filename, unsigned line, const char *key,
                            const char *value, void *field) {
        if (!isempty(value) && !startswith(value, "https://") && !startswith(value, "http://") &&
            !startswith(value, "file://"))
                return log_error_errno(EINVAL, "%s:%u: %s= expects an https://, http:// or file:// URL, got '%s'.",
                                       filename, line, key, value);
        return config_parse_string(filename, line, key, value, field);
}

static int config_parse_channel(const char *filename, unsigned line, const char *key,
                                const char *value, void *field) {
        /* The channel names a path on the server: keep it to a plain word. */
        if (!filename_is_valid(value) || strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(value))
                return log_error_errno(EINVAL, "%s:%u: %s= expects a name of letters, digits, '.', '_' and '-', got '%s'.",
                                       filename, line, key, value);
        return config_parse_string(filename, line, key, value, field);
}

static int config_parse_boot_tries(const char *filename, unsigned line, const char *key,
                                   const char *value, void *field) {
        unsigned n;
        if (parse_unsigned(value, &n) < 0 || n < 1 || n > 9)
                return log_error_errno(EINVAL, "%s:%u: %s= expects a number from 1 to 9, got '%s'.",
                                       filename, line, key, value);
        *(unsigned *) field = n;
        return 0;
}

static int config_parse_time_window(const char *filename, unsigned line, const char *key,
                                    const char *value, void *field) {
        UpdaterConfig *c = container_of(field, UpdaterConfig, auto_commit_window);

        if (isempty(value)) {
                c->has_auto_commit_window = false;
                return 0;
        }
        if (time_window_parse(value, &c->auto_commit_window) < 0)
                return log_error_errno(EINVAL, "%s:%u: %s= expects a daily window of local time as HH:MM-HH:MM, got '%s'.",
                                       filename, line, key, value);
        c->has_auto_commit_window = true;
        return 0;
}

/* A time span within [min, max]: a huge one would overflow a deadline, a zero one fail at once. */
static int parse_timespan_within(const char *filename, unsigned line, const char *key, const char *value,
                                 usec_t min, usec_t max, usec_t *ret) {
        char a[FORMAT_TIMESPAN_MAX], b[FORMAT_TIMESPAN_MAX];
        usec_t t;

        if (parse_timespan(value, &t) < 0 || t < min || t > max)
                return log_error_errno(EINVAL, "%s:%u: %s= expects a time span from %s to %s, got '%s'.",
                                       filename, line, key, format_timespan(a, sizeof(a), min),
                                       format_timespan(b, sizeof(b), max), value);
        *ret = t;
        return 0;
}

static int config_parse_stall_timeout(const char *filename, unsigned line, const char *key,
                                      const char *value, void *field) {
        return parse_timespan_within(filename, line, key, value, USEC_PER_SEC, STALL_TIMEOUT_MAX, field);
}

static int config_parse_download_timeout(const char *filename, unsigned line, const char *key,
                                         const char *value, void *field) {
        return parse_timespan_within(filename, line, key, value, USEC_PER_SEC, DOWNLOAD_TIMEOUT_MAX, field);
}

static int config_parse_health_timeout(const char *filename, unsigned line, const char *key,
                                       const char *value, void *field) {
        return parse_timespan_within(filename, line, key, value, USEC_PER_SEC, HEALTH_TIMEOUT_MAX, field);
}

/* "infinity" leaves each unit its own stop timeout. */
static int config_parse_stop_timeout(const char *filename, unsigned line, const char *key,
                                     const char *value, void *field) {
        if (streq(value, "infinity")) {
                *(usec_t *) field = USEC_INFINITY;
                return 0;
        }
        return parse_timespan_within(filename, line, key, value, USEC_PER_SEC, STOP_TIMEOUT_MAX, field);
}

static const char * const fleet_strategy_table[_FLEET_STRATEGY_MAX] = {
        [FLEET_NONE] = "none",
        [FLEET_ETCD] = "etcd",
        [FLEET_FLEETLOCK] = "fleetlock",
};

DEFINE_STRING_TABLE_LOOKUP(fleet_strategy, FleetStrategy, fleet_strategy_table, _FLEET_STRATEGY_INVALID);

static int config_parse_fleet_strategy(const char *filename, unsigned line, const char *key,
                                       const char *value, void *field) {
        FleetStrategy s = fleet_strategy_from_string(value);
        if (s < 0)
                return log_error_errno(EINVAL, "%s:%u: %s= expects none, etcd or fleetlock, got '%s'.",
                                       filename, line, key, value);
        *(FleetStrategy *) field = s;
        return 0;
}

/* Space-separated http:// or https:// URLs; empty resets the list. */
static int config_parse_fleet_endpoints(const char *filename, unsigned line, const char *key,
                                        const char *value, void *field) {
        _cleanup_strv_free_ char **l = NULL;
        char ***list = field;

        if (isempty(value)) {
                *list = strv_free(*list);
                return 0;
        }
        if (strv_split(value, " \t", &l) < 0)
                return log_oom();
        STRV_FOREACH(u, l)
                if (!startswith(*u, "https://") && !startswith(*u, "http://"))
                        return log_error_errno(EINVAL, "%s:%u: %s= expects http:// or https:// URLs, got '%s'.",
                                               filename, line, key, *u);
        STRV_FOREACH(u, l)
                if (strv_extend(list, *u) < 0)
                        return log_oom();
        return 0;
}

/* A group and a machine's id name etcd keys and go into FleetLock requests: plain words. */
static int config_parse_fleet_name(const char *filename, unsigned line, const char *key,
                                   const char *value, void *field) {
        if (!isempty(value) && (strlen(value) > 128 ||
            strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(value)))
                return log_error_errno(EINVAL, "%s:%u: %s= expects up to 128 letters, digits, '.', '_' and '-', got '%s'.",
                                       filename, line, key, value);
        return config_parse_string(filename, line, key, value, field);
}

static int config_parse_fleet_slots(const char *filename, unsigned line, const char *key,
                                    const char *value, void *field) {
        unsigned n;
        if (parse_unsigned(value, &n) < 0 || n < 1 || n > FLEET_SLOTS_MAX)
                return log_error_errno(EINVAL, "%s:%u: %s= expects a number from 1 to %u, got '%s'.",
                                       filename, line, key, FLEET_SLOTS_MAX, value);
        *(unsigned *) field = n;
        return 0;
}

static int config_parse_fleet_retry(const char *filename, unsigned line, const char *key,
                                    const char *value, void *field) {
        return parse_timespan_within(filename, line, key, value, USEC_PER_SEC, FLEET_RETRY_MAX, field);
}

static const ConfigItem updater_config_table[] = {
        { "Update", "Server", config_parse_url, offsetof(UpdaterConfig, server) },
        { "Update", "Channel", config_parse_channel, offsetof(UpdaterConfig, channel) },
        { "Update", "AllowHTTP", config_parse_bool, offsetof(UpdaterConfig, allow_http) },
        { "Update", "CAFile", config_parse_path, offsetof(UpdaterConfig, ca_file) },
        { "Update", "TrustedKeysDirectory", config_parse_path, offsetof(UpdaterConfig, trusted_keys_dir) },
        { "Update", "StateDirectory", config_parse_path, offsetof(UpdaterConfig, state_dir) },
        { "Update", "MaxDownloadSize", config_parse_size, offsetof(UpdaterConfig, max_download_size) },
        { "Update", "StallTimeout", config_parse_stall_timeout, offsetof(UpdaterConfig, stall_timeout) },
        { "Update", "DownloadTimeout", config_parse_download_timeout, offsetof(UpdaterConfig, download_timeout) },
        { "Update", "AutoCommit", config_parse_bool, offsetof(UpdaterConfig, auto_commit) },
        { "Update", "AutoCommitWindow", config_parse_time_window, offsetof(UpdaterConfig, auto_commit_window) },
        { "Handoff", "Enabled", config_parse_bool, offsetof(UpdaterConfig, handoff) },
        { "Handoff", "StopTimeout", config_parse_stop_timeout, offsetof(UpdaterConfig, stop_timeout) },
        { "Health", "Timeout", config_parse_health_timeout, offsetof(UpdaterConfig, health_timeout) },
        { "Health", "RequiredUnits", config_parse_strv, offsetof(UpdaterConfig, health_units) },
        { "Health", "BootTries", config_parse_boot_tries, offsetof(UpdaterConfig, boot_tries) },
        { "Fleet", "Strategy", config_parse_fleet_strategy, offsetof(UpdaterConfig, fleet_strategy) },
        { "Fleet", "Endpoints", config_parse_fleet_endpoints, offsetof(UpdaterConfig, fleet_endpoints) },
        { "Fleet", "Group", config_parse_fleet_name, offsetof(UpdaterConfig, fleet_group) },
        { "Fleet", "ID", config_parse_fleet_name, offsetof(UpdaterConfig, fleet_id) },
        { "Fleet", "Slots", config_parse_fleet_slots, offsetof(UpdaterConfig, fleet_slots) },
        { "Fleet", "RetrySec", config_parse_fleet_retry, offsetof(UpdaterConfig, fleet_retry) },
        { "Fleet", "CAFile", config_parse_path, offsetof(UpdaterConfig, fleet_ca_file) },
        { "Fleet", "CertificateFile", config_parse_path, offsetof(UpdaterConfig, fleet_cert_file) },
        { "Fleet", "KeyFile", config_parse_path, offsetof(UpdaterConfig, fleet_key_file) },
        {}
};

void updater_config_init(UpdaterConfig *c) {
        *c = (UpdaterConfig) {
                .allow_http = false,
                .max_download_size = 8ULL << 30,
                .stall_timeout = 30 * USEC_PER_SEC,
                .download_timeout = 6 * USEC_PER_HOUR,
                .auto_commit = false,
                .handoff = true,
                .stop_timeout = 30 * USEC_PER_SEC,
                .health_timeout = 5 * USEC_PER_MINUTE,
                .boot_tries = 3,
                .fleet_strategy = FLEET_NONE,
                .fleet_slots = 1,
                .fleet_retry = USEC_PER_MINUTE,
        };
}

void updater_config_done(UpdaterConfig *c) {
        free(c->server);
        free(c->channel);
        free(c->ca_file);
        free(c->trusted_keys_dir);
        free(c->state_dir);
        strv_free(c->health_units);
        strv_free(c->fleet_endpoints);
        free(c->fleet_group);
        free(c->fleet_id);
        free(c->fleet_ca_file);
        free(c->fleet_cert_file);
        free(c->fleet_key_file);
        *c = (UpdaterConfig) {};
}

/* Compiled-in defaults for whatever the files left unset. */
static int updater_config_fill_defaults(UpdaterConfig *c) {
        if (!c->channel && free_and_strdup(&c->channel, "stable") < 0)
                return -ENOMEM;
        if (!c->trusted_keys_dir && free_and_strdup(&c->trusted_keys_dir, "/usr/lib/dreamlink/keys.d") < 0)
                return -ENOMEM;
        if (!c->state_dir && free_and_strdup(&c->state_dir, STATE_DIR_DEFAULT) < 0)
                return -ENOMEM;
        if (!c->fleet_group && free_and_strdup(&c->fleet_group, FLEET_GROUP_DEFAULT) < 0)
                return -ENOMEM;
        return 0;
}

/* What no single line can tell: settings that only make sense together. */
static int updater_config_check(const UpdaterConfig *c, const char *path) {
        if (c->fleet_strategy != FLEET_NONE && strv_length(c->fleet_endpoints) == 0)
                return log_error_errno(EINVAL, "%s: [Fleet] Strategy=%s needs Endpoints=.", path,
                                       fleet_strategy_to_string(c->fleet_strategy));
        if (!c->fleet_cert_file != !c->fleet_key_file)
                return log_error_errno(EINVAL, "%s: [Fleet] CertificateFile= and KeyFile= go together.", path);
        return 0;
}

int updater_config_load(UpdaterConfig *c, const char *root) {
        _cleanup_free_ char *main_path = NULL, *etc = NULL, *run = NULL, *lib = NULL;
        int r;

        root = root ?: "";
        if (asprintf(&main_path, "%s" UPDATERD_CONF_PATH, root) < 0 ||
            asprintf(&etc, "%s/etc/dreamlink/updaterd.conf.d", root) < 0 ||
            asprintf(&run, "%s/run/dreamlink/updaterd.conf.d", root) < 0 ||
            asprintf(&lib, "%s/usr/lib/dreamlink/updaterd.conf.d", root) < 0)
                return log_oom();

        const char * const dirs[] = { etc, run, lib, NULL };
        r = config_parse_with_dropins(main_path, dirs, updater_config_table, c);
        if (r < 0)
                return r;

        if (updater_config_fill_defaults(c) < 0)
                return log_oom();
        return updater_config_check(c, main_path);
}

char *state_path(const char *root, const UpdaterConfig *c, const char *name) {
        char *p;
        return asprintf(&p, "%s%s/%s", strempty(root), c->state_dir, name) < 0 ? NULL : p;
}
