/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The libostree boundary, shared by image-tools and updaterd: where a GError
 * becomes a negative errno and one log line. Include after our own headers
 * (GLib #undefs MIN/MAX before defining its own). */

#include <glib.h>

#include "log.h"

/* The errno behind a GError of libglnx or GIO (libglnx turns failed syscalls
 * into G_IO_ERROR codes); anything else, ostree's own "corrupted object" and
 * the like, is EIO. Positive. */
int errno_from_gerror(const GError *e);

#define log_gerror(error, fmt, ...) \
        log_error_errno(errno_from_gerror(error), fmt ": %s", ##__VA_ARGS__, (error)->message)
