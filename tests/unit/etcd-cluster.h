/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A real three-member etcd cluster for tests (Debian: etcd-server, its path in $ETCD), on loopback
 * ports with its data in a temporary directory, its members started and killed one by one. */

#include <stdbool.h>
#include <sys/types.h>

#include "etcd.h"

#define ETCD_MEMBERS 3

typedef struct EtcdCluster {
        char *dir;
        const char *etcd;
        int client_port[ETCD_MEMBERS], peer_port[ETCD_MEMBERS];
        char *endpoints[ETCD_MEMBERS + 1];
        pid_t pid[ETCD_MEMBERS];
} EtcdCluster;

/* Starts every member of ETCD (the binary) and waits for quorum; -ENOENT (said why) without etcd:
 * a test then fails, it is not skipped. Negative errno otherwise. */
int etcd_cluster_start(EtcdCluster *c, const char *etcd);
void etcd_cluster_stop(EtcdCluster *c);
int etcd_cluster_member_start(EtcdCluster *c, int i);
void etcd_cluster_member_kill(EtcdCluster *c, int i);
int etcd_cluster_wait_for_quorum(EtcdCluster *c);
/* The member that leads now; -ETIMEDOUT when none does. */
int etcd_cluster_leader(EtcdCluster *c);
/* A client of all members. */
EtcdClient etcd_cluster_client(EtcdCluster *c);

/* Every value etcd kept of a group's semaphore key, summed up. */
typedef struct EtcdHistory {
        unsigned changes;       /* values the key had */
        unsigned max_holders;   /* the most holders any of them listed */
        char **holders_seen;    /* every id that ever held a slot */
        unsigned holders_now;
} EtcdHistory;

void etcd_history_done(EtcdHistory *h);
int etcd_cluster_history(EtcdCluster *c, const char *group, EtcdHistory *ret);
/* A rollout of MACHINES machines through the semaphore: never more holders than slots, every
 * machine among them, none left at the end, and exactly one change to take and one to give back a
 * slot per machine (a request asked again after a lost answer changed nothing twice). */
bool etcd_history_is_rollout(const EtcdHistory *h, unsigned machines, unsigned slots);
