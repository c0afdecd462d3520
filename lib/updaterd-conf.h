/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* updaterd's configuration: /etc/dreamlink/updaterd.conf plus drop-ins in
 * /etc, /run and /usr/lib dreamlink/updaterd.conf.d/ (see updaterd.conf(5)). */

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"
#include "time-util.h"

/* How the machines of a fleet take turns to switch (updaterd.conf(5), [Fleet]). */
typedef enum FleetStrategy {
        FLEET_NONE,      /* a machine switches whenever it commits */
        FLEET_ETCD,      /* a counting semaphore in an etcd v3 cluster, as Flatcar's locksmith keeps it */
        FLEET_FLEETLOCK, /* a FleetLock server, as Fedora CoreOS' Zincati asks one */
        _FLEET_STRATEGY_MAX,
        _FLEET_STRATEGY_INVALID = -22,
} FleetStrategy;

const char *fleet_strategy_to_string(FleetStrategy s);
FleetStrategy fleet_strategy_from_string(const char *s);

typedef struct UpdaterConfig {
        /* [Update] */
        char *server;               /* base URL of the release server */
        char *channel;
        bool allow_http;            /* plain HTTP only when explicitly allowed */
        char *ca_file;              /* extra CA bundle for the server, besides the system's */
        char *trusted_keys_dir;     /* keys shipped by the booted OS */
        char *state_dir;            /* on the shared VAR partition */
        uint64_t max_download_size; /* bound on what one stage may fetch, and on each object; 0: none */
        usec_t stall_timeout;       /* a transfer under FETCH_STALL_SPEED for this long fails */
        usec_t download_timeout;    /* wall-clock bound on the downloads of one check or stage */
        bool auto_commit;           /* commit a staged release by itself */
        bool has_auto_commit_window;
        TimeWindow auto_commit_window; /* …only inside this daily window */
        /* [Handoff] */
        bool handoff;
        usec_t stop_timeout;        /* what is not carried stops within this during the switch */
        /* [Health] */
        usec_t health_timeout;
        char **health_units;        /* units that must not have failed */
        unsigned boot_tries;        /* boot counting: tries before falling back */
        /* [Fleet] */
        FleetStrategy fleet_strategy;
        char **fleet_endpoints;     /* etcd's client URLs, or FleetLock servers: tried in turn */
        char *fleet_group;
        char *fleet_id;             /* NULL: the machine-id */
        unsigned fleet_slots;       /* etcd: how many machines of the group may switch at once */
        usec_t fleet_retry;         /* between two asks for a slot, and for giving it back */
        char *fleet_ca_file;        /* NULL: the system's CAs */
        char *fleet_cert_file;      /* TLS client certificate and its key, both or neither */
        char *fleet_key_file;
} UpdaterConfig;

#define UPDATERD_CONF_PATH "/etc/dreamlink/updaterd.conf"

#define STALL_TIMEOUT_MAX USEC_PER_HOUR
#define DOWNLOAD_TIMEOUT_MAX (30 * USEC_PER_DAY)
/* dreamlink-boot-check.service gives up after 15 min (TimeoutStartSec=), and the switch back
 * after a failed check has to fit in that time too. */
/* Past this, the bound would not bound anything a user waits for. */
#define STOP_TIMEOUT_MAX USEC_PER_HOUR
#define HEALTH_TIMEOUT_MAX (10 * USEC_PER_MINUTE)
#define FLEET_SLOTS_MAX 10000U
#define FLEET_GROUP_DEFAULT "default"
#define FLEET_RETRY_MAX USEC_PER_HOUR

void updater_config_init(UpdaterConfig *c);
void updater_config_done(UpdaterConfig *c);
/* root is prepended to every path ("" or NULL for the running system). */
int updater_config_load(UpdaterConfig *c, const char *root);
/* root + StateDirectory= + name: one of updaterd's files (paths.h names them). */
char *state_path(const char *root, const UpdaterConfig *c, const char *name);
