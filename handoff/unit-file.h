/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the generator reads of a service's unit files (unit-file.c). */

#include <stdbool.h>

typedef struct UnitExec {
        char *type;        /* Type=, NULL when unset (simple) */
        char **exec_start; /* the ExecStart= lines in effect, prefixes included */
        bool masked;       /* linked to /dev/null: nothing else is read */
} UnitExec;

void unit_exec_done(UnitExec *u);
/* From the unit directories below root (NULL: /); -ENOENT when no fragment names the unit. */
int unit_exec_read(const char *root, const char *unit, UnitExec *ret);
