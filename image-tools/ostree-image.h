/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The libostree side of dreamlink-image: an OS tree becomes a commit in an
 * archive repository, carrying what the updater needs to boot it (kernel
 * version, kernel and initrd paths, command line); commits get static deltas
 * and the repository a summary for clients. GLib stays behind this interface:
 * callers see negative errno values, errors are logged here. */

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

/* Finds the kernel and initrd in TREE/boot (Debian names: vmlinuz-VER, initrd.img-VER, regular
 * files); of several kernels the highest version (strverscmp) wins. -ENOENT, logged, without a
 * kernel or when the chosen kernel has no initrd. */
int boot_info_from_tree(const char *tree, BootInfo *ret);

typedef struct ImageCommit {
        const char *tree;    /* the OS tree to commit */
        const char *branch;  /* e.g. "dreamlink/demo/x86_64/stable" */
        const char *version; /* e.g. "2025.3" */
        const char *subject; /* may be NULL: "OS_NAME VERSION" */
        const char *os_name; /* e.g. "dreamlink-demo" */
        const char *cmdline; /* default kernel command line, may be NULL */
        const char * const *overlays; /* trees laid over TREE in order (files replace files), may be NULL */
} ImageCommit;

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

/* Commits c->tree onto c->branch (its parent: the branch's previous commit) in one transaction,
 * with the metadata above; -ENOENT for a tree without kernel or initrd. Contents of /dev /proc /sys
 * /run /tmp are left out (the directories stay); sockets, FIFOs and device nodes elsewhere too, with
 * a warning. Keeps uid, gid and mode; of xattrs only security.capability. Returns the 64-hex checksum. */
int image_repo_commit(OstreeRepo *repo, const ImageCommit *c, char **ret_checksum);

/* Reads back what image_repo_commit() recorded in REV (a branch or checksum). Every ret_* may be
 * NULL; ret_cmdline is set to NULL when the commit has none. -ENOENT for an unknown REV,
 * -EBADMSG for a commit without (valid) dreamlink metadata. */
int image_repo_read_commit(OstreeRepo *repo, const char *rev, char **ret_checksum, char **ret_version,
                           BootInfo *ret_boot, char **ret_cmdline);

/* Generates the static delta FROM -> TO (revs; FROM NULL: a full delta "from scratch"), self-
 * contained (no objects left to fetch separately), and returns its size: superblock plus parts.
 * Only pulls into bare repositories use deltas; ostree ignores them for archive ones. */
int image_repo_generate_delta(OstreeRepo *repo, const char *from, const char *to, uint64_t *ret_size);

/* Regenerates the summary file, so clients see the current refs and deltas. */
int image_repo_update_summary(OstreeRepo *repo);

/* Bytes the objects of REV take in the repository (without its parents): roughly what a pull
 * without a delta downloads, as archive objects are stored compressed. */
int image_repo_commit_size(OstreeRepo *repo, const char *rev, uint64_t *ret_size);

/* Checks REV out into DEST, which must be missing or empty (a lone lost+found, as on a fresh ext4,
 * counts as empty), keeping ownership, modes and xattrs; files are copies, not repo hardlinks. */
int image_repo_checkout(OstreeRepo *repo, const char *rev, const char *dest);
/* The same for one directory of REV (e.g. "/etc"). */
int image_repo_checkout_subpath(OstreeRepo *repo, const char *rev, const char *subpath, const char *dest);
