/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Which services are carried over an update, and how: one file per service in
 * /etc, /run or /usr/lib dreamlink/handoff.d/ *.conf (see handoff.d(5)). */

#include <errno.h>
#include <stdbool.h>

#include "macro.h"

/* OnDumpFailure=: per service only; a commit has no default of its own. */
typedef enum HandoffFailurePolicy {
        HANDOFF_FAILURE_RESTART_FRESH, /* carry on; that service starts fresh in the new boot */
        HANDOFF_FAILURE_ABORT,         /* cancel the commit; nothing is frozen for long */
        _HANDOFF_FAILURE_MAX,
        _HANDOFF_FAILURE_INVALID = -EINVAL,
} HandoffFailurePolicy;

const char *handoff_failure_policy_to_string(HandoffFailurePolicy p);
HandoffFailurePolicy handoff_failure_policy_from_string(const char *s);

typedef struct HandoffUnit {
        char *file;               /* where it was configured, for messages */
        char *unit;               /* a .service */
        bool enabled;
        bool tcp_established;     /* carry established TCP connections */
        bool file_locks;          /* carry flock/posix locks */
        bool shell_job;           /* the tree is a shell job (sessions, ttys) */
        bool ext_unix_sk;         /* let unix sockets to outside peers (e.g. /dev/log) reconnect */
        char **external;          /* extra criu --external keys */
        char *pre_dump_hook;      /* run with the unit name before the dump; failing cancels it */
        bool pre_dump;            /* copy the memory while it runs first: a shorter stop */
        HandoffFailurePolicy on_dump_failure;
        bool sessions;            /* carry the login sessions the unit started (sshd's), not the unit */
} HandoffUnit;

#define HANDOFF_CONFIG_DIRS_NULSTR "/etc/dreamlink/handoff.d", "/run/dreamlink/handoff.d", "/usr/lib/dreamlink/handoff.d"

void handoff_unit_init(HandoffUnit *u);
void handoff_unit_done(HandoffUnit *u);
HandoffUnit *handoff_unit_free(HandoffUnit *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(HandoffUnit *, handoff_unit_free);

/* Parses one file; a file without Unit= or with a unit name that is not a
 * plain .service is refused, naming the file. */
int handoff_unit_load(const char *path, HandoffUnit **ret);

/* All files under root ("" or NULL: the running system), merged by name over
 * /etc, /run, /usr/lib. *ret is NULL-terminated. Two files naming the same
 * unit are refused. */
int handoff_config_load(const char *root, HandoffUnit ***ret);
void handoff_config_free(HandoffUnit **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(HandoffUnit **, handoff_config_free);

/* The configuration of unit, or NULL. */
HandoffUnit *handoff_config_find(HandoffUnit **l, const char *unit);

bool unit_name_is_service(const char *s);
