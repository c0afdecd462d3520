/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The FleetLock protocol, as Fedora CoreOS' Zincati speaks it to a lock server (airlock, ...):
 * POST BASE/v1/pre-reboot to take a slot before the switch and BASE/v1/steady-state to give it
 * back once the machine is up and healthy, each with the header "fleet-lock-protocol: true" and
 * the body {"client_params": {"id": ID, "group": GROUP}}. The server answers 200 (2xx) when it did so;
 * anything else, with {"kind": ..., "value": ...} in the body, is a no. Both are idempotent on
 * the server's side, so either is asked again after a lost answer or a power cut. */

#include "http-json.h"

/* Asks each server in turn until one answers: 1 the slot is ours (pre-reboot) or given back
 * (steady-state), 0 the server said no (the reason in *ret_error, "kind: value"), or the last
 * server's transport error (-ECONNREFUSED, -ETIMEDOUT, ...; the reasons in *ret_error). */
int fleetlock_pre_reboot(char * const *servers, const HttpJsonOptions *o, const char *group, const char *id,
                         char **ret_error);
int fleetlock_steady_state(char * const *servers, const HttpJsonOptions *o, const char *group, const char *id,
                           char **ret_error);
