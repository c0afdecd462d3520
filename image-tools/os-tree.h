/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* What makes a directory tree a dreamlink slot (docs/design.md, "the /var split"): for trees that
 * come from a container image (--from-oci: a Containerfile FROM a dreamlink base image runs package
 * managers that write to /var, which in a slot is only a mount point of the shared var partition),
 * and for trees built any other way (`dreamlink-image prepare`, which the reference OS's recipe
 * runs), so that one piece of code owns the split and the tmpfiles.d file it writes. */

/* Checks the rules an OS tree must follow and refuses, naming the path at fault, one that breaks
 * them: systemd as PID 1 (/usr/lib/systemd/systemd), /boot and /var directories, the dpkg
 * database in the slot (/var/lib/dpkg, when there, a link to /usr/lib/sysimage/dpkg), /home, /root
 * and /srv, when there, links to var/home, var/roothome and var/srv. Kernel and initrd are checked
 * by the commit (boot_info_from_tree()). None of the paths read or written here may go through a
 * symbolic link: the tree is an image's, and its links must not lead this root process to the
 * publisher's files. -EMEDIUMTYPE for a broken rule, logged.
 *
 * Then splits /var off as the reference OS does: when the tree's /var has anything (a base image
 * from `dreamlink-image export` carries its factory copy there, so that package managers work in
 * a Containerfile), it replaces /usr/share/factory/var, with what RUN lines added, changed and
 * removed; /var is left empty, and usr/lib/tmpfiles.d/dreamlink-factory-var.conf is written again
 * from the factory copy ("C" lines for what a machine's shared /var lacks; "L" for links; the
 * top-level entries, one level deeper in lib, cache, log and spool, none of systemd's own). A
 * name that cannot be written in such a line (blanks, "%", "\", quotes) is refused. */
int os_tree_prepare(const char *tree);

/* Runtime mounts on a live system (PATH "/dev", "/proc", "/sys", "/run", "/tmp"): their
 * directories are part of the OS, whatever a build left in them is not (and /dev may hold device
 * nodes, which ostree cannot store). */
bool os_tree_is_runtime_dir(const char *path);
