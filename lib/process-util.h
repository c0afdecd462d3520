/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Runs an external program (mkfs, sfdisk, kexec, criu …) and waits for it.
 * Returns 0 on exit status 0; otherwise logs what ran and how it ended and
 * returns -EPROTO (non-zero exit), -EINTR (killed) or the spawn error. */
int run_command(const char * const argv[]);
/* Same, with stdin from a string (e.g. an sfdisk script). */
int run_command_input(const char * const argv[], const char *input);
