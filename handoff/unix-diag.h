/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Which unix sockets are connected to what: sock_diag over netlink. */

#include <stdint.h>
#include <stddef.h>

typedef struct UnixSocket {
        uint64_t inode;
        uint64_t peer;  /* 0: not connected */
        int type;       /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
        char *name;     /* bound path, NULL if unbound; abstract names start with '@' */
} UnixSocket;

int unix_sockets_dump(UnixSocket **ret, size_t *ret_n);
void unix_sockets_free(UnixSocket *l, size_t n);
const UnixSocket *unix_sockets_find(const UnixSocket *l, size_t n, uint64_t inode);
