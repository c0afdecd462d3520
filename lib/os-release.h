/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Reading os-release(5): /etc/os-release, or /usr/lib/os-release when that
 * does not exist, KEY=VALUE lines with the value optionally in single or
 * double quotes. */

/* The value of KEY in ROOT's os-release ("" or NULL root: the running
 * system). -ENOENT when neither file exists or KEY is not set (not logged);
 * other read errors as read_file_limited(). */
int os_release_get(const char *root, const char *key, char **ret);
