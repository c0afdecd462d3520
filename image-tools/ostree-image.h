/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The publisher's side of libostree (dreamlink-image): an OS tree becomes a
 * commit in an archive repository, carrying what the updater needs to boot it
 * (kernel version, kernel and initrd paths, command line); commits get static
 * deltas and the repository a summary for clients. What the device shares
 * (opening, reading back, checking out) is lib/ostree/ostree-repo.h. */

#include <stdbool.h>
#include <stdint.h>

#include "ostree-repo.h"

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

/* Commits c->tree onto c->branch (its parent: the branch's previous commit) in one transaction,
 * with the metadata above; -ENOENT for a tree without kernel or initrd. Contents of /dev /proc /sys
 * /run /tmp are left out (the directories stay); sockets, FIFOs and device nodes elsewhere too, with
 * a warning. Keeps uid, gid and mode; of xattrs only security.capability. Returns the 64-hex checksum. */
int image_repo_commit(OstreeRepo *repo, const ImageCommit *c, char **ret_checksum);

/* Generates the static delta FROM -> TO (revs; FROM NULL: a full delta "from scratch"), self-
 * contained (no objects left to fetch separately), and returns its size: superblock plus parts.
 * Only pulls into bare repositories use deltas; ostree ignores them for archive ones. */
int image_repo_generate_delta(OstreeRepo *repo, const char *from, const char *to, uint64_t *ret_size);

/* Regenerates the summary file, so clients see the current refs and deltas. */
int image_repo_update_summary(OstreeRepo *repo);

/* Bytes the objects of REV take in the repository (without its parents): roughly what a pull
 * without a delta downloads, as archive objects are stored compressed. */
int image_repo_commit_size(OstreeRepo *repo, const char *rev, uint64_t *ret_size);

