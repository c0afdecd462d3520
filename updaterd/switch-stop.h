/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The bound on the switch's stop: while a handoff switches, the carried
 * services wait frozen until the new slot restores them, so one service
 * that is not carried and ignores SIGTERM would hold all of them for its
 * whole stop timeout (90 s by default, hours for some). Top-level drop-ins
 * for every service and scope (service.d/, scope.d/ in /run, gone with the
 * boot) set TimeoutStopSec= to updaterd.conf's [Handoff] StopTimeout=;
 * systemd then kills what is still running after it. systemd cannot
 * change a loaded service's stop timeout over D-Bus, hence files and a
 * daemon-reload (the caller's, before the first freeze). */

#include "time-util.h"

#define SWITCH_STOP_DROPIN_NAME "zz-dreamlink-switch-stop.conf" /* last by name: it wins */

/* Writes the drop-ins under root (NULL: /). The caller reloads systemd. */
int switch_stop_bound_install(const char *root, usec_t timeout, const char *transaction_id);
/* Removes them: 1 when there were any (the caller reloads), 0 when none. */
int switch_stop_bound_remove(const char *root);
