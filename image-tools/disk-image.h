/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Bootable A/B disk images, built without loop devices or mounts: each
 * filesystem is made in its own file (mkfs.ext4 -d, mkfs.fat + mtools), then
 * copied sparsely into a GPT laid out by sfdisk.
 *
 *   1 esp     vfat  systemd-boot, loader entries, each slot's kernel + initrd
 *   2 root-a  ext4  the release's tree
 *   3 root-b  -     same size, left empty until an update is staged
 *   4 var     ext4  shared /var: the tree's factory /var, the local ostree repo
 *                   holding the installed commit, dreamlink's state
 *
 * Partition types follow the Discoverable Partitions Specification; the
 * partition names (PARTLABEL) are what root= and fstab use. */

#include <stdint.h>

typedef struct DiskImage {
        const char *release_root; /* holds repo/ */
        const char *rev;          /* branch or checksum to install in slot A */
        const char *output;
        const char *workdir;      /* NULL: a temporary directory under $TMPDIR or /var/tmp */
        uint64_t esp_size, root_size, var_size;
} DiskImage;

int disk_image_build(const DiskImage *d);
