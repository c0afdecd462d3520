/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* A FleetLock server for tests, as http-server.h's POST handler: a counting semaphore for one
 * group behind POST /v1/pre-reboot and /v1/steady-state, as airlock keeps it, which refuses (and
 * counts) what Zincati would never send: no "fleet-lock-protocol: true" header, no client_params. */

typedef struct LockServer {
        unsigned max;
        char **holders;
        char *group;
        unsigned bad_requests;
        unsigned pre_reboot, steady_state; /* requests for the group */
} LockServer;

void fleetlock_server_handler(const char *path, const char *headers, const char *body, size_t size,
                              unsigned *ret_status, char **ret_body, void *userdata);
