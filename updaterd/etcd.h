/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The few requests of etcd's v3 API the fleet semaphore needs, over etcd's JSON gateway (POST
 * /v3/kv/range and /v3/kv/txn on a member's client URL; keys and values in base64, 64-bit numbers
 * as strings, zero values left out). A request goes to the member that answered last, then to
 * each other in turn: one member down, or cut off from the others, does not stop a rollout; a
 * cluster without quorum answers nothing, and that is told as such. */

#include <stddef.h>
#include <stdint.h>

#include "http-json.h"

typedef struct EtcdClient {
        char * const *endpoints; /* client URLs of the cluster's members (not owned) */
        size_t preferred;        /* the one asked first: the last that answered */
        HttpJsonOptions http;
        unsigned requests;       /* sent so far, to any member (make bench counts them) */
} EtcdClient;

typedef struct EtcdValue {
        char *value;             /* NUL-terminated (the NUL not counted in size); NULL: no such key */
        size_t size;
        int64_t mod_revision;    /* the key's last change; 0: no such key */
        int64_t revision;        /* the store's revision the answer was read at */
} EtcdValue;

void etcd_value_done(EtcdValue *v);

/* Reads key (linearizable: only a member that is part of a quorum answers), as of revision
 * (0: now). Failures, with the reason in *ret_error:
 *   -ESTALE        revision was compacted away, or is in the future
 *   -EREMOTEIO     every member refused the request or failed to serve it (no quorum, no leader)
 *   other          the last member's transport error (-ECONNREFUSED, -ETIMEDOUT, -EKEYREJECTED, ...) */
int etcd_get(EtcdClient *e, const char *key, int64_t revision, EtcdValue *ret, char **ret_error);

/* Writes key = value only if its mod_revision is still mod_revision (0: it does not exist yet):
 * 1 written (*ret_revision: the new revision), 0 someone changed it first. Failures as above. */
int etcd_put_if_unchanged(EtcdClient *e, const char *key, int64_t mod_revision, const char *value,
                          int64_t *ret_revision, char **ret_error);
