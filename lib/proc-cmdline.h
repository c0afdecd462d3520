/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once
/* Reading the kernel command line: words separated by whitespace outside
 * double quotes (the quotes dropped, as the kernel does), the last KEY=VALUE
 * of a key winning, words after "--" left to init. */

#define PROC_CMDLINE_MAX (64U * 1024U)

/* The value of KEY in CMDLINE; -ENOENT when it is not there. */
int proc_cmdline_get_key(const char *cmdline, const char *key, char **ret);
/* The same for the running kernel's /proc/cmdline ($DREAMLINK_PROC_CMDLINE instead, if set). */
int proc_cmdline_get(const char *key, char **ret);
