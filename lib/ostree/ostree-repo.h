/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The ostree repositories both sides use, below updaterd and dreamlink-image:
 * opening a release (archive) repository or the machine's local (bare) one,
 * reading back the boot metadata a commit carries, checking a tree out. What
 * only a publisher does (commit, deltas, summary) is image-tools/ostree-image.h.
 * GLib stays behind this interface: callers see negative errno values,
 * errors are logged here. */

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

/* Same typedef as ostree-types.h; callers need not include GLib headers. */
typedef struct OstreeRepo OstreeRepo;

/* Commit metadata keys besides ostree's own "version", "ostree.linux" and "ostree.bootable". */
#define IMAGE_META_OS "dreamlink.os"                         /* s */
#define IMAGE_META_KERNEL_VERSION "dreamlink.kernel-version" /* s */
#define IMAGE_META_BOOT "dreamlink.boot"                     /* a{ss}: vmlinuz, initrd, cmdline */

typedef struct BootInfo {  /* what a tree boots with, relative to the tree root */
        char *kernel_version; /* e.g. "6.12.57+deb13-amd64" */
        char *vmlinuz;        /* e.g. "boot/vmlinuz-6.12.57+deb13-amd64" */
        char *initrd;         /* e.g. "boot/initrd.img-6.12.57+deb13-amd64" */
} BootInfo;

/* Frees the strings and resets b; safe on a zeroed or already done BootInfo. */
void boot_info_done(BootInfo *b);

/* Opens the ostree repository at PATH. With CREATE, a missing one is created in archive mode
 * (parent directories too); without, a missing one is -ENOENT. */
int image_repo_open(const char *path, bool create, OstreeRepo **ret);

/* Opens the machine's local repository at PATH (/var/lib/dreamlink/repo), creating it and its
 * parents in mode bare if missing: static deltas can only be applied to bare repositories. An
 * existing repository of another mode is refused with -EMEDIUMTYPE. The directory is made
 * LOCAL_REPO_MODE, an existing one too; a link there, or a directory another user owns or may
 * write to, is refused (see fs-util.h). */
#define LOCAL_REPO_MODE 0700
int local_repo_open(const char *path, OstreeRepo **ret);
/* Only that: LOCAL_REPO_MODE on an existing repository directory at PATH, without opening it (for
 * updaterd's start: one an earlier version made 0755 is not left open until the next stage). A
 * missing one is fine. Not logged. */
int local_repo_lock_down(const char *path);

/* Drops the reference image_repo_open() or local_repo_open() returned; NULL is fine. */
void image_repo_unref(OstreeRepo *repo);
DEFINE_TRIVIAL_CLEANUP_FUNC(OstreeRepo *, image_repo_unref);
#define _cleanup_repo_ _cleanup_(image_repo_unrefp)

/* Resolves a branch or checksum; the result is g_free()d. Logs. */
int repo_resolve_rev(OstreeRepo *repo, const char *rev, char **ret);

/* Reads back what image_repo_commit() (image-tools) recorded in REV (a branch or checksum). Every ret_* may be
 * NULL; ret_cmdline is set to NULL when the commit has none. -ENOENT for an unknown REV,
 * -EBADMSG for a commit without (valid) dreamlink metadata. */
int image_repo_read_commit(OstreeRepo *repo, const char *rev, char **ret_checksum, char **ret_version,
                           BootInfo *ret_boot, char **ret_cmdline);

/* What PATH of REV ("/" for the whole tree, or a file such as BootInfo's vmlinuz) takes once checked
 * out on a file system of BLOCK_SIZE-byte blocks: each file rounded up to whole blocks, a block per
 * directory. A lower bound: inodes, journal and large directories come on top. */
int image_repo_disk_usage(OstreeRepo *repo, const char *rev, const char *path, uint64_t block_size, uint64_t *ret);

/* Checks REV out into DEST, which must be missing or empty (a lone lost+found, as on a fresh ext4,
 * counts as empty), keeping ownership, modes and xattrs; files are copies, not repo hardlinks. */
int image_repo_checkout(OstreeRepo *repo, const char *rev, const char *dest);
/* The same for one directory of REV (e.g. "/etc"). */
int image_repo_checkout_subpath(OstreeRepo *repo, const char *rev, const char *subpath, const char *dest);
