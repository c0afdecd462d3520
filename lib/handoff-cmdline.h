/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The handoff's words on the next kernel's command line: a commit writes
 * them (updaterd/commit.c), the boot they switch into reads them (the
 * generator, `dreamlink-handoff lock-network`, the boot check). One owner
 * for the format:
 *
 *   dreamlink.handoff=ID             the checkpoint set, named by the transaction id
 *   dreamlink.handoff.units=A,B…     the services it holds (none: login sessions only)
 *   dreamlink.handoff.pid_floor=N    PIDs up to N stay free for the restores
 */

#include <stdint.h>

#include "macro.h"

typedef struct HandoffCmdline {
        char *set_id;
        char **units;
        uint64_t pid_floor; /* 0: none */
        char **rejected;    /* parsing: the words left out, "KEY=VALUE", for the caller to report */
} HandoffCmdline;

/* The lowest and highest floors a boot can honour (pid_max tops out at 2^22). */
#define HANDOFF_PID_FLOOR_MIN 300U
#define HANDOFF_PID_FLOOR_MAX ((1U << 22) - 4096U)

/* " dreamlink.handoff=ID[ dreamlink.handoff.units=A,B][ dreamlink.handoff.pid_floor=N]",
 * to append to the next kernel's options. -EINVAL for an id, unit or floor the reading
 * side would refuse. */
int handoff_cmdline_format(const HandoffCmdline *c, char **ret);

/* The handoff named by cmdline (NULL: the running kernel's, see proc_cmdline_get()).
 * -ENOENT: none; -EINVAL: the set id is no transaction id (nothing can be restored from
 * it). A unit that is no service name, or a floor out of range, is left out and listed in
 * ->rejected; the rest stands. Nothing of ours writes such words. */
int handoff_cmdline_parse(const char *cmdline, HandoffCmdline *ret);

void handoff_cmdline_done(HandoffCmdline *c);
