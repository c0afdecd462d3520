/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* dreamlink-boot-check.service, in every boot: finishes the switch that led
 * here, from the transaction record.
 *
 *   booted the target: report the restores (handoff) → health check →
 *     pass: slot good, boot entry blessed and made the default, done;
 *     fail: slot bad, and the same switch back to the slot we came from
 *   booted the slot we came from (panic, watchdog, power cut): the switch
 *     failed; the services started fresh, their checkpoints are removed
 *   nothing open: nothing to do
 * A failed health check after a rollback stays put: the slot was good before. */

#include "updaterd-conf.h"

int boot_check_run(const UpdaterConfig *c);
