/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Whether this machine may switch now, by the fleet's strategy ([Fleet] in updaterd.conf(5)):
 * a slot is taken before a commit switches and given back once a slot is blessed healthy (the new
 * one, or the old one after a fallback), so that no more of a group switch at once than it allows
 * and a broken release cannot spread. Both steps are idempotent: after a crash, a power cut or a
 * lost answer, they are simply done again. */

#include "etcd.h"
#include "http-json.h"
#include "updaterd-conf.h"

typedef struct Fleet {
        const UpdaterConfig *config;
        char *id;               /* ID=, or the machine-id */
        HttpJsonOptions http;
        EtcdClient etcd;
} Fleet;

/* root: the machine's files (tests); logs what is wrong. */
int fleet_init(Fleet *f, const UpdaterConfig *c, const char *root);
void fleet_done(Fleet *f);

static inline bool fleet_enabled(const Fleet *f) {
        return f->config->fleet_strategy != FLEET_NONE;
}

/* Takes this machine's slot: 1 it holds one (always, without a strategy), 0 not now, and why in
 * *ret_why ("all 2 slots of group web are taken: m1, m2", "etcd does not answer: ..."). Only
 * -ENOMEM otherwise: whatever keeps the slot away is waited out, never switched past. */
int fleet_acquire(Fleet *f, char **ret_why);
/* Gives back the slot of group (NULL: Group=) taken as id (NULL: this machine's): 1 given back (or
 * none was held), 0 not now, and why. */
int fleet_release(Fleet *f, const char *group, const char *id, char **ret_why);

/* The switch's half (fleet-turn.h has the record): returns once this machine holds a slot, which
 * may be at once (no strategy; a slot still held from a switch not yet blessed). Until then it
 * asks every RetrySec=, telling on_wait why not each time; on_wait returns negative to give up
 * (its error is returned). Fails otherwise only for what is wrong here (the record cannot be
 * written, no memory): a fleet that says no is waited out. */
typedef int (*fleet_wait_t)(const char *why, void *userdata);
int fleet_wait_for_slot(Fleet *f, const char *turn_path, fleet_wait_t on_wait, void *userdata);

/* The blessing's half: gives back the slot the record names and removes the record. 1 done (also
 * when there was nothing to give back), 0 not now (why), negative for what is wrong here. The
 * caller makes sure a slot was blessed healthy since the switch. */
int fleet_give_back(Fleet *f, const char *turn_path, char **ret_why);
