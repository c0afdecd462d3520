/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* What makes a directory tree a dreamlink slot (docs/design.md, "the /var split"), for trees that
 * come from a container image (--from-oci): a Containerfile FROM a dreamlink base image runs
 * package managers that write to /var, which in a slot is only a mount point of the shared var
 * partition. */

/* Checks the rules an OS tree must follow and refuses, naming the path at fault, one that breaks
 * them: systemd as PID 1 (/usr/lib/systemd/systemd), the dpkg database in the slot
 * (/var/lib/dpkg, when there, a link to /usr/lib/sysimage/dpkg), /home, /root and /srv, when
 * there, links to var/home, var/roothome and var/srv. Kernel and initrd are checked by the commit
 * (boot_info_from_tree()). -EMEDIUMTYPE for a broken rule, logged.
 *
 * Then splits /var off as the reference OS does: what the tree has in /var moves to
 * /usr/share/factory/var (replacing the factory's entry of the same path, merging directories),
 * /var is left empty, and usr/lib/tmpfiles.d/dreamlink-factory-var.conf is written again from the
 * factory copy, so that a machine's shared /var receives what this version adds ("C" lines, "L"
 * for links). */
int os_tree_prepare(const char *tree);

/* The tmpfiles.d lines that seed /var from TREE/usr/share/factory/var: top-level entries other
 * than lib, cache, log, spool (one level deeper for those), home, run, lock, tmp (systemd's
 * own), sorted. */
int os_tree_factory_tmpfiles(const char *tree, char **ret);

/* Runtime mounts on a live system (PATH "/dev", "/proc", "/sys", "/run", "/tmp"): their
 * directories are part of the OS, whatever a build left in them is not (and /dev may hold device
 * nodes, which ostree cannot store). */
bool os_tree_is_runtime_dir(const char *path);
