/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* This machine's turn in its fleet, on disk (STATE_DIR/fleet-turn.json), so that a crash or a power
 * cut while a slot is asked for, held or given back leaves a state the next boot resolves:
 *
 *   (no file)  → "waiting" (written before the first request: an answer lost with the worker may
 *                 still have given us the slot) → "held" (the switch may go on) → (no file, once
 *                 the slot is given back after a slot was blessed healthy)
 *
 * Whoever finds the file when no switch is open and the booted slot is good gives the slot back:
 * both requests are idempotent on the servers' side, so doing one again is always right. The
 * record also names the group and id the slot was taken under, so a changed updaterd.conf gives
 * back what was taken. `updatectl status` shows it. */

#include <stdbool.h>

#include "paths.h" /* FLEET_TURN_FILE */
#include "time-util.h"
#include "updaterd-conf.h"

typedef enum FleetTurnState {
        FLEET_TURN_WAITING,
        FLEET_TURN_HELD,
        _FLEET_TURN_STATE_MAX,
        _FLEET_TURN_STATE_INVALID = -22,
} FleetTurnState;

const char *fleet_turn_state_to_string(FleetTurnState s);
FleetTurnState fleet_turn_state_from_string(const char *s);

typedef struct FleetTurn {
        FleetTurnState state;
        FleetStrategy strategy;
        char *group;
        char *id;
        usec_t since;   /* CLOCK_REALTIME: first asked */
        char *why;      /* waiting: what kept the slot away, as last heard; NULL otherwise */
} FleetTurn;

void fleet_turn_done(FleetTurn *t);

/* -ENOENT (not logged) when this machine neither holds nor waits for a slot; -EBADMSG, logged, for
 * a file that is not such a record. */
int fleet_turn_load(const char *path, FleetTurn *ret);
/* Atomically; logs. */
int fleet_turn_save(const FleetTurn *t, const char *path);
/* Synced, so that a slot given back is not given back again after a power cut (harmless) nor
 * forgotten while still held (harmful). Logs. */
int fleet_turn_remove(const char *path);
