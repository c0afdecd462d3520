/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The three-way merge of /etc when switching to a new slot, as ostree does it:
 *
 *   base     the pristine /etc of the booted version (checked out from the local repo)
 *   current  the live /etc, as the admin left it
 *   target   the new version's pristine /etc, turned into the result in place
 *
 * Every path the admin changed relative to base (content, mode, owner, symlink
 * target, file type) or added is copied from current into target, replacing what
 * the new version has there; every path the admin deleted is deleted from
 * target; paths the admin left alone keep the new version's content, so new
 * defaults and new files arrive. Where the new version changed the same path
 * too, the admin's version wins and the path is reported as a conflict.
 * Directories present on both sides are merged entry by entry; one the admin
 * added is copied whole.
 *
 * Compared and preserved: file type, content, mode, owner, group, symlink
 * target, device numbers (mtimes are preserved but not compared). Extended
 * attributes and ACLs are neither compared nor copied: Debian's /etc carries
 * none that matter (no SELinux labels, no file capabilities). Hard links are
 * copied as separate files. Sockets are skipped.
 *
 * Safety: the trees are walked with *at() calls and O_NOFOLLOW, so a symlink is
 * only ever copied as a symlink, never followed out of a tree. Files in target
 * are never written in place (they may be hard links into an ostree repository):
 * a changed path is removed and created anew. */

#include "macro.h"

typedef struct EtcMergeReport {
        unsigned kept_admin;       /* paths the admin changed or added, carried into target */
        unsigned deleted_by_admin; /* paths the admin deleted, removed from target */
        char **conflicts;          /* paths (relative to /etc) the new version changed too */
} EtcMergeReport;

/* Frees the conflict list and zeroes the counters. */
void etc_merge_report_done(EtcMergeReport *r);

/* Merges as described above into target. report may be NULL; it is filled even
 * on failure, with what was done so far. On failure (logged) target is left
 * partly merged: the caller checks the new /etc out again before retrying. */
int etc_merge(const char *base, const char *current, const char *target, EtcMergeReport *report);
