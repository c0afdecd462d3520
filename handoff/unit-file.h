/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the generator and the dump read of a service's unit files (unit-file.c): the unit as its
 * files say, without the restore drop-in that replaces some of it for one start. */

#include <stdbool.h>

typedef struct UnitSettings {
        char *type;        /* Type=, NULL when unset (simple) */
        char **exec_start; /* the ExecStart= lines in effect, prefixes included */
        char *private_tmp; /* PrivateTmp=, NULL when unset */
        char *pid_file;    /* PIDFile= as written (specifiers unexpanded), NULL when unset */
        bool masked;       /* linked to /dev/null: nothing else is read */
} UnitSettings;

void unit_settings_done(UnitSettings *u);
/* From the unit directories below root (NULL: /); -ENOENT when no fragment names the unit. */
int unit_settings_read(const char *root, const char *unit, UnitSettings *ret);
/* UNIT's fragment, where unit_settings_read finds it, without ordering after the units in DROP
 * ([Unit] After=; drop-ins are not read): 1 with *ret_path (on the running system) and
 * *ret_text, 0 when it orders after none of them or is masked, -ENOENT when no fragment names
 * the unit. */
int unit_fragment_drop_after(const char *root, const char *unit, char * const *drop, char **ret_path, char **ret_text);
/* PIDFile= of UNIT with the specifiers a PID file's path uses expanded (%i %I %n %N %p %P %t %%)
 * and /var/run/ as /run/, as systemd has it; *ret NULL when unset. -EOPNOTSUPP for another specifier. */
int unit_settings_pid_file(const UnitSettings *u, const char *unit, char **ret);
/* The quadlet file UNIT is generated from (NAME.container, a podman container), as a path on the
 * running system: 1 with *ret, 0 when the unit is not a quadlet container's. A unit quadlet names
 * otherwise (ServiceName=) is not recognized. */
int unit_quadlet_source(const char *root, const char *unit, char **ret);
/* The units quadlet makes of the NAME.container files it finds (templates left out): NAME.service
 * each, sorted, no duplicates. */
int quadlet_units(const char *root, char ***ret);
