/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <gio/gio.h>

#include "ostree-util.h"

int errno_from_gerror(const GError *e) {
        if (e->domain != G_IO_ERROR)
                return EIO;
        switch (e->code) {
        case G_IO_ERROR_NOT_FOUND:
                return ENOENT;
        case G_IO_ERROR_EXISTS:
                return EEXIST;
        case G_IO_ERROR_IS_DIRECTORY:
                return EISDIR;
        case G_IO_ERROR_NOT_DIRECTORY:
                return ENOTDIR;
        case G_IO_ERROR_NOT_EMPTY:
                return ENOTEMPTY;
        case G_IO_ERROR_PERMISSION_DENIED:
                return EACCES;
        case G_IO_ERROR_NO_SPACE:
                return ENOSPC;
        case G_IO_ERROR_INVALID_ARGUMENT:
                return EINVAL;
        case G_IO_ERROR_INVALID_DATA:
                return EBADMSG;
        case G_IO_ERROR_NOT_SUPPORTED:
                return EOPNOTSUPP;
        case G_IO_ERROR_READ_ONLY:
                return EROFS;
        case G_IO_ERROR_TOO_MANY_OPEN_FILES:
                return EMFILE;
        case G_IO_ERROR_TIMED_OUT:
                return ETIMEDOUT;
        case G_IO_ERROR_CANCELLED:
                return ECANCELED;
        default:
                return EIO;
        }
}
