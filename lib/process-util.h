/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Runs an external program (mkfs, sfdisk, kexec, criu …) and waits for it.
 * Returns 0 on exit status 0; otherwise logs what ran and how it ended and
 * returns -EPROTO (non-zero exit), -EINTR (killed) or the spawn error. */
int run_command(const char * const argv[]);
/* Same, with stdin from a string (e.g. an sfdisk script). */
int run_command_input(const char * const argv[], const char *input);
/* Same, with stdin from /dev/null and its standard output (at most max bytes) in *ret_out. With
 * ret_err, its standard error too (at most 64 KiB): the caller tells why it failed, and nothing is
 * logged here but the command line; without it, standard error goes where ours does. *ret_out
 * (and *ret_err) are set on a non-zero exit as well, for the caller to report. */
int run_command_output(const char * const argv[], size_t max, char **ret_out, char **ret_err);
