/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "paths.h"
/* TEST ONLY fault injection: a power cut at a named point of an update.
 *
 * When FAULT_POWER_CUT_FILE names POINT, fault_power_cut(POINT) removes the
 * file (synced, so the next boot does not cut again) and powers the machine
 * off at once, without syncing anything else (sysrq 'o'), as pulling the
 * plug would. The VM tests write the file; nothing else ever does. */

#define FAULT_POWER_CUT_FILE STATE_DIR_DEFAULT "/test-power-cut"

void fault_power_cut(const char *point);
