/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf-parser.h"
#include "handoff-config.h"
#include "log.h"
#include "string-util.h"

bool unit_name_is_service(const char *s) {
        if (isempty(s) || !filename_is_valid(s) || !endswith(s, ".service") || strlen(s) <= strlen(".service"))
                return false;
        /* Characters systemd allows in unit names; anything else would need
         * quoting in the drop-ins and command lines we write. */
        for (const char *p = s; *p; p++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@", *p))
                        return false;
        return true;
}

static int config_parse_unit(const char *filename, unsigned line, const char *key, const char *value, void *field) {
        if (!unit_name_is_service(value))
                return log_error_errno(EINVAL, "%s:%u: %s= expects a service unit name such as foo.service, got '%s'.",
                                       filename, line, key, value);
        return config_parse_string(filename, line, key, value, field);
}

static const char * const handoff_failure_policy_table[_HANDOFF_FAILURE_MAX] = {
        [HANDOFF_FAILURE_RESTART_FRESH] = "restart-fresh",
        [HANDOFF_FAILURE_ABORT] = "abort",
};

DEFINE_STRING_TABLE_LOOKUP(handoff_failure_policy, HandoffFailurePolicy, handoff_failure_policy_table,
                           _HANDOFF_FAILURE_INVALID);

static int config_parse_failure(const char *filename, unsigned line, const char *key, const char *value, void *field) {
        HandoffFailurePolicy p = handoff_failure_policy_from_string(value);
        if (p < 0)
                return log_error_errno(EINVAL, "%s:%u: %s= expects restart-fresh or abort, got '%s'.",
                                       filename, line, key, value);
        *(HandoffFailurePolicy *) field = p;
        return 0;
}

static int config_parse_external(const char *filename, unsigned line, const char *key, const char *value, void *field) {
        int r = config_parse_strv(filename, line, key, value, field);
        if (r < 0)
                return r;
        /* criu's external keys look like "kind[id]" or "kind[id]:value". */
        STRV_FOREACH(e, *(char ***) field)
                if (!strchr(*e, '[') || !strchr(*e, ']'))
                        return log_error_errno(EINVAL, "%s:%u: %s= expects criu external keys such as unix[1234] or mnt[/path]:key, got '%s'.",
                                               filename, line, key, *e);
        return 0;
}

static const ConfigItem handoff_unit_table[] = {
        { "Handoff", "Unit", config_parse_unit, offsetof(HandoffUnit, unit) },
        { "Handoff", "Enabled", config_parse_bool, offsetof(HandoffUnit, enabled) },
        { "Handoff", "TCPEstablished", config_parse_bool, offsetof(HandoffUnit, tcp_established) },
        { "Handoff", "FileLocks", config_parse_bool, offsetof(HandoffUnit, file_locks) },
        { "Handoff", "ShellJob", config_parse_bool, offsetof(HandoffUnit, shell_job) },
        { "Handoff", "ExternalUnixSockets", config_parse_bool, offsetof(HandoffUnit, ext_unix_sk) },
        { "Handoff", "External", config_parse_external, offsetof(HandoffUnit, external) },
        { "Handoff", "PreDumpHook", config_parse_path, offsetof(HandoffUnit, pre_dump_hook) },
        { "Handoff", "PreDump", config_parse_bool, offsetof(HandoffUnit, pre_dump) },
        { "Handoff", "OnDumpFailure", config_parse_failure, offsetof(HandoffUnit, on_dump_failure) },
        { "Handoff", "Sessions", config_parse_bool, offsetof(HandoffUnit, sessions) },
        {}
};

void handoff_unit_init(HandoffUnit *u) {
        *u = (HandoffUnit) {
                .enabled = true,
                .tcp_established = true,
                .file_locks = true,
                .pre_dump = true,
                .on_dump_failure = HANDOFF_FAILURE_RESTART_FRESH,
        };
}

void handoff_unit_done(HandoffUnit *u) {
        free(u->file);
        free(u->unit);
        strv_free(u->external);
        free(u->pre_dump_hook);
        handoff_unit_init(u);
}

HandoffUnit *handoff_unit_free(HandoffUnit *u) {
        if (!u)
                return NULL;
        handoff_unit_done(u);
        return mfree(u);
}

int handoff_unit_load(const char *path, HandoffUnit **ret) {
        _cleanup_(handoff_unit_freep) HandoffUnit *u = NULL;
        int r;

        u = malloc(sizeof(*u));
        if (!u)
                return log_oom();
        handoff_unit_init(u);
        u->file = strdup(path);
        if (!u->file)
                return log_oom();

        r = config_parse_file(path, handoff_unit_table, u);
        if (r < 0)
                return r == -ENOENT || r == -EACCES || r == -EISDIR ? log_error_errno(r, "Failed to read %s: %m", path) : r;
        if (!u->unit)
                return log_error_errno(EINVAL, "%s: No Unit= in [Handoff], refusing.", path);

        *ret = TAKE_PTR(u);
        return 0;
}

void handoff_config_free(HandoffUnit **l) {
        for (HandoffUnit **u = l; u && *u; u++)
                handoff_unit_free(*u);
        free(l);
}

HandoffUnit *handoff_config_find(HandoffUnit **l, const char *unit) {
        for (HandoffUnit **u = l; u && *u; u++)
                if (streq((*u)->unit, unit))
                        return *u;
        return NULL;
}

int handoff_config_load(const char *root, HandoffUnit ***ret) {
        static const char * const dirs[] = { HANDOFF_CONFIG_DIRS_NULSTR };
        _cleanup_strv_free_ char **files = NULL, **rooted = NULL;
        _cleanup_(handoff_config_freep) HandoffUnit **l = NULL;
        size_t n = 0;
        int r;

        root = root ?: "";
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                char *p = strprintf("%s%s", root, dirs[i]);
                if (!p || strv_push(&rooted, p) < 0)
                        return log_oom();
        }

        r = conf_files_list((const char * const *) rooted, ".conf", &files);
        if (r < 0)
                return r;

        l = calloc(strv_length(files) + 1, sizeof(HandoffUnit *));
        if (!l)
                return log_oom();
        STRV_FOREACH(f, files) {
                _cleanup_(handoff_unit_freep) HandoffUnit *u = NULL;
                r = handoff_unit_load(*f, &u);
                if (r < 0)
                        return r;
                HandoffUnit *other = handoff_config_find(l, u->unit);
                if (other)
                        return log_error_errno(EEXIST, "%s: %s is already configured in %s, refusing.",
                                               u->file, u->unit, other->file);
                l[n++] = TAKE_PTR(u);
        }
        *ret = TAKE_PTR(l);
        return 0;
}
