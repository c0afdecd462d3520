/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The fleet's counting semaphore in etcd, as Flatcar's locksmith keeps it: one key per group,
 *   /dreamlink/fleet/GROUP/semaphore = {"semaphore": FREE, "max": MAX, "holders": ["ID", ...]}
 * changed only by a transaction that compares the key's mod_revision with the one the change was
 * computed from, so no two machines can both take the last slot. Taking and releasing are
 * idempotent (a holder that takes again still holds; one that does not hold releases nothing):
 * a request whose answer was lost, or a power cut between etcd's answer and our record of it, is
 * resolved by doing it again. */

#include <stdbool.h>

#include "etcd.h"

#define FLEET_ETCD_PREFIX "/dreamlink/fleet/"

typedef struct FleetSemaphore {
        unsigned max;      /* slots: what the last machine to change the key had as Slots= */
        char **holders;    /* machine ids, in the order they took their slots */
} FleetSemaphore;

void fleet_semaphore_done(FleetSemaphore *s);
/* The key's value; -EBADMSG if it is not a semaphore (an admin's typo must not pass for one). */
int fleet_semaphore_parse(const char *json, FleetSemaphore *ret);
int fleet_semaphore_format(const FleetSemaphore *s, char **ret);
/* FLEET_ETCD_PREFIX GROUP "/semaphore" */
char *fleet_etcd_key(const char *group);

/* Takes one of the group's slots for id, at most slots machines holding one at a time:
 * 1 held (also if id held one already), 0 all taken (*ret_state says by whom). Failures: etcd.h's,
 * -EBADMSG (the key holds something else), -EBUSY (the key kept changing under us). The reason
 * of a failure is in *ret_error. */
int fleet_etcd_acquire(EtcdClient *e, const char *group, const char *id, unsigned slots,
                       FleetSemaphore *ret_state, char **ret_error);
/* Gives up id's slot: 1 released, 0 id held none. */
int fleet_etcd_release(EtcdClient *e, const char *group, const char *id, FleetSemaphore *ret_state,
                       char **ret_error);
/* The group's semaphore as it is (no key yet: no holders, max 0). */
int fleet_etcd_status(EtcdClient *e, const char *group, FleetSemaphore *ret_state, char **ret_error);
