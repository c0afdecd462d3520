/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* When and how updaterd gives back the fleet slot a switch took (fleet.h, fleet-turn.h): once a
 * slot is blessed healthy again, which is when no switch is open and the booted slot is good:
 * the new slot after its boot check, or the old one after a fallback (the firmware's, or the
 * boot check's way back). Until then the slot stays taken, so a release that breaks machines
 * does not spread past the group's slots. */

#include <stdbool.h>

#include "updaterd-conf.h"
#include "worker.h"

/* Whether this machine has a slot to give back (or may have: it was waiting when it went down). */
bool fleet_turn_pending(const char *root, const UpdaterConfig *c);
/* Whether it may be given back now; false, silently, when anything cannot be read. */
bool fleet_release_due(const char *root, const UpdaterConfig *c);

/* The worker's fleet-release job: DONE 0 when given back, -EAGAIN and why when not now. */
int fleet_release_run(const UpdaterConfig *c, Reporter *r);
