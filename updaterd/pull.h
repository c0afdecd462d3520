/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The machine's local ostree repository (on VAR) and pulls into it from the release server's
 * archive repository. The repository is "bare": libostree applies static deltas only there. A
 * pull runs in one ostree transaction: if it is interrupted (error, or the worker process killed)
 * the repository stays consistent, and the objects already downloaded stay in ostree's staging
 * directory, which the next pull in the same boot reuses, so a re-run resumes. GLib stays behind
 * this interface; errors are logged here, once, and returned as negative errno values. */

#include <stdbool.h>
#include <stdint.h>

#include "fetch.h"
#include "ostree-repo.h" /* local_repo_open() */
#include "macro.h"

#define LOCAL_REPO_REMOTE "dreamlink"     /* the remote local_repo_pull() (re)configures */
#define PULL_PROGRESS_INTERVAL_MSEC 250U  /* at most 4 progress callbacks a second */
#define PULL_WATCH_INTERVAL_MSEC 100U     /* how often the bounds are checked */

typedef struct PullProgress {
        uint64_t bytes_transferred; /* in callbacks, never above bytes_total when that is known */
        uint64_t bytes_total;      /* 0 when unknown; with a static delta: total delta part size */
        unsigned objects_fetched, objects_requested;
        bool delta;                /* a static delta is being used */
} PullProgress;

typedef void (*pull_progress_t)(const PullProgress *p, void *userdata);

typedef struct PullResult {
        uint64_t bytes_transferred;
        bool delta;
} PullResult;


/* Points the repository's LOCAL_REPO_REMOTE remote at REPO_URL (GPG off: the signed manifest names
 * the commit and everything pulled is checked against its checksum; TLS CA from o->ca_file as
 * ostree's tls-ca-path, which libostree's libcurl trusts besides the system's CAs), then pulls
 * COMMIT (a checksum; depth 0), using a static delta when the server has one from a commit we have
 * (libostree picks the newest such commit from the server's summary). Progress callbacks come at
 * most every PULL_PROGRESS_INTERVAL_MSEC, from within this call; PROGRESS may be NULL. Bounded by O:
 * o->max_size bounds the bytes downloaded in all (checked every PULL_WATCH_INTERVAL_MSEC, so it may
 * be overshot by what arrives in that time) and every file the pull writes (RLIMIT_FSIZE, for the
 * duration of the call); o->deadline ends it wherever it is; a transfer that stalls ends after
 * o->stall_timeout. A pull stopped by a bound keeps the objects that arrived whole (the next pull
 * resumes from them); what was half-downloaded is removed. Afterwards checks that the commit is
 * complete locally with exactly that checksum and points REF (e.g. "dreamlink/staged") at it. RET
 * may be NULL.
 *   -EINVAL           COMMIT is not a checksum, or REF not a valid ref name
 *   -EPROTONOSUPPORT  REPO_URL refused by policy (plain http:// without allow_http), before anything
 *   -ENOENT           no repository at REPO_URL, or COMMIT (or an object of it) not on the server
 *   -ENOSPC           the file system of the local repository is full
 *   -EBADMSG          an object from the server is corrupt (checksum mismatch, bad compression)
 *   -EFBIG            more than o->max_size downloaded, or one object larger than that
 *   -ETIMEDOUT        past o->deadline, or a transfer stalled
 *   and the network errors of fetch_url(): -ECONNREFUSED, -EHOSTUNREACH, -ENXIO, -EPIPE,
 *   -ECONNRESET, -EKEYREJECTED, -EREMOTEIO, … */
int local_repo_pull(OstreeRepo *repo, const char *repo_url, const char *commit, const char *ref,
                    const FetchOptions *o, pull_progress_t progress, void *userdata, PullResult *ret);

typedef struct RepoKeep {
        const char *ref;     /* e.g. "dreamlink/slot/a" */
        const char *commit;  /* what it must point at; NULL: nothing, the ref goes */
} RepoKeep;

/* Makes the repository hold what the slots need and nothing else: each KEEP[i].ref points at its
 * commit (dropped when the commit is NULL or not in the repository), every other ref, remote ones
 * included, is deleted, and the objects no ref's commit reaches any more are removed, its parent
 * commits included (ostree_repo_prune(), OSTREE_REPO_PRUNE_FLAGS_REFS_ONLY, depth 0). Old releases
 * take space on /var, and their set-uid binaries would stay on disk. RET_FREED (bytes) may be NULL. */
int local_repo_prune(OstreeRepo *repo, const RepoKeep *keep, size_t n_keep, uint64_t *ret_freed);
