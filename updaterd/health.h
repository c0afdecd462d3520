/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Whether the booted system works: every unit in [Health] RequiredUnits= is
 * active (a unit still starting is waited for, one that failed fails the
 * check), then every executable in the health.d directories exits 0, all
 * within [Health] Timeout=. Fails with a one-line reason in *ret_reason. */

#include "updaterd-conf.h"

#define HEALTH_DIRS "/etc/dreamlink/health.d", "/run/dreamlink/health.d", "/usr/lib/dreamlink/health.d"

int health_check(const UpdaterConfig *c, const char *root, char **ret_reason);
