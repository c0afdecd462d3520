/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the generator reads of a service's unit files (unit-file.c). */

#include <stdbool.h>

typedef struct UnitSettings {
        char *type;        /* Type=, NULL when unset (simple) */
        char **exec_start; /* the ExecStart= lines in effect, prefixes included */
        char *private_tmp; /* PrivateTmp=, NULL when unset */
        bool masked;       /* linked to /dev/null: nothing else is read */
} UnitSettings;

void unit_settings_done(UnitSettings *u);
/* From the unit directories below root (NULL: /); -ENOENT when no fragment names the unit. */
int unit_settings_read(const char *root, const char *unit, UnitSettings *ret);
