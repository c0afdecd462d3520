/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "curl-util.h"
#include "fetch.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "pull.h"
#include "string-util.h"
#include "time-util.h"

/* After macro.h: GLib #undefs MIN/MAX before defining its own, macro.h does not. */
#include <ostree.h>

#include "ostree-util.h"

#define REPO_CONFIG_SIZE_MAX (64U * 1024U)

/* Replaces the whole remote, so nothing of an earlier configuration (another CA) lingers. */
static int remote_configure(OstreeRepo *repo, const char *url, const FetchOptions *o) {
        g_autoptr(GError) error = NULL;
        g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
        g_autoptr(GVariant) options = NULL;

        g_variant_builder_add(&b, "{sv}", "gpg-verify", g_variant_new_boolean(FALSE));
        g_variant_builder_add(&b, "{sv}", "gpg-verify-summary", g_variant_new_boolean(FALSE));
        if (o->ca_file)
                g_variant_builder_add(&b, "{sv}", "tls-ca-path", g_variant_new_string(o->ca_file));
        options = g_variant_ref_sink(g_variant_builder_end(&b));

        if (!ostree_repo_remote_change(repo, NULL, OSTREE_REPO_REMOTE_CHANGE_REPLACE, LOCAL_REPO_REMOTE, url, options,
                                       NULL, &error))
                return log_gerror(error, "Failed to configure the remote " LOCAL_REPO_REMOTE " for %s", url);
        return 0;
}

/* libostree's fetcher tells network failures apart only in its messages ("While fetching URL:
 * [CURLCODE] text", "Server returned HTTP STATUS"), so a first request of our own, for the small
 * repository config, gives a precise error (refused or unreachable, DNS, TLS, a missing
 * repository) before libostree starts retrying. */
static int probe_remote(const char *url, const FetchOptions *o) {
        _cleanup_free_ char *config_url = NULL, *config = NULL;
        FetchOptions limited = *o;

        if (asprintf(&config_url, "%s/config", url) < 0)
                return log_oom();
        limited.max_size = REPO_CONFIG_SIZE_MAX;
        return fetch_url(config_url, &limited, &config, NULL);
}

static bool message_has(const GError *e, const char *s) {
        return strstr(e->message, s);
}

/* Which bound of FetchOptions stopped a pull. */
typedef enum PullBound {
        PULL_WITHIN_BOUNDS,
        PULL_TOO_LARGE,     /* more than max_size in all */
        PULL_TOO_LONG,      /* past the deadline */
} PullBound;

/* Classifies a failed pull; see pull.h for the list. */
static int pull_errno(const GError *e, PullBound bound) {
        const char *p;
        unsigned code;

        if (bound == PULL_TOO_LARGE)
                return -EFBIG;
        if (bound == PULL_TOO_LONG)
                return -ETIMEDOUT;
        /* ostree refuses to fill the file system beyond core.min-free-space-* with a plain error. */
        if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_NO_SPACE) || message_has(e, "min-free-space") ||
            message_has(e, strerror(ENOSPC)))
                return -ENOSPC;
        /* One object reached the file size limit set for the pull. */
        if (message_has(e, strerror(EFBIG)))
                return -EFBIG;
        p = strstr(e->message, "Server returned HTTP ");
        if (p && sscanf(p, "Server returned HTTP %u", &code) == 1)
                return code == 404 || code == 410 ? -ENOENT : -EREMOTEIO;
        p = strstr(e->message, "While fetching ");
        if (p && (p = strstr(p, ": [")) && sscanf(p, ": [%u]", &code) == 1)
                return curl_errno((int) code);
        if (message_has(e, "Corrupted") || message_has(e, "corrupt") || message_has(e, "Checksum mismatch") ||
            message_has(e, "Invalid checksum"))
                return -EBADMSG;
        return -errno_from_gerror(e);
}

static int log_pull_error(OstreeRepo *repo, const char *url, const char *commit, const GError *e, PullBound bound,
                          const FetchOptions *o) {
        char buf[FORMAT_BYTES_MAX], span[FORMAT_TIMESPAN_MAX];
        int r = pull_errno(e, bound);

        switch (r) {
        case -ENOSPC: {
                /* Usually the VAR partition: say which file system and how full it is. The repository
                 * is known by its fd ("/proc/self/fd/N" to ostree); that link names its path. */
                char proc[64], path[PATH_MAX] = "the local repository";
                struct statvfs sv;
                const char *free_space = "unknown";
                int fd = ostree_repo_get_dfd(repo);
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
                ssize_t k = readlink(proc, path, sizeof(path) - 1);
                if (k > 0)
                        path[k] = 0;
                if (fstatvfs(fd, &sv) >= 0)
                        free_space = format_bytes(buf, sizeof(buf), (uint64_t) sv.f_bavail * sv.f_frsize);
                return log_error_errno(r, "Failed to pull %s: the file system holding %s is full (%s free): %s", commit,
                                       path, free_space, e->message);
        }
        case -ENOENT:
                return log_error_errno(r, "Failed to pull %s from %s: not on the server: %s", commit, url, e->message);
        case -EBADMSG:
                return log_error_errno(r, "Failed to pull %s from %s: the server sent a corrupt object: %s", commit, url,
                                       e->message);
        case -EFBIG:
                if (bound == PULL_TOO_LARGE)
                        return log_error_errno(r, "Failed to pull %s from %s: the download exceeded the limit of %s (MaxDownloadSize=).",
                                               commit, url, format_bytes(buf, sizeof(buf), o->max_size));
                return log_error_errno(r, "Failed to pull %s from %s: an object exceeded the limit of %s (MaxDownloadSize=): %s",
                                       commit, url, format_bytes(buf, sizeof(buf), o->max_size), e->message);
        case -EPIPE:
                return log_error_errno(r, "Failed to pull %s from %s: the connection closed in the middle of an object: %s",
                                       commit, url, e->message);
        case -ETIMEDOUT:
                if (bound == PULL_TOO_LONG)
                        return log_error_errno(r, "Failed to pull %s from %s: the download exceeded its wall-clock limit of %s (DownloadTimeout=).",
                                               commit, url, format_timespan(span, sizeof(span), o->time_limit));
                return log_error_errno(r, "Failed to pull %s from %s: no data for %s (less than %u bytes a second), or no "
                                       "connection: %s", commit, url, format_timespan(span, sizeof(span), fetch_stall_timeout(o)),
                                       FETCH_STALL_SPEED, e->message);
        default:
                return log_error_errno(r, "Failed to pull %s from %s: %m (%s)", commit, url, e->message);
        }
}

typedef struct PullContext {
        GCancellable *cancellable;
        OstreeAsyncProgress *progress;
        const FetchOptions *options;
        PullBound bound;
        pull_progress_t callback;
        void *userdata;
        usec_t last_callback;
        bool fsize_limited;       /* RLIMIT_FSIZE lowered for the pull: saved_fsize restores it */
        struct rlimit saved_fsize;
        struct sigaction saved_sigxfsz;
} PullContext;

static uint64_t progress_u64(OstreeAsyncProgress *p, const char *key) {
        /* ostree_async_progress_get() asserts that keys exist; before the first update none do. */
        g_autoptr(GVariant) v = ostree_async_progress_get_variant(p, key);
        return v && g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64) ? g_variant_get_uint64(v) : 0;
}

static unsigned progress_u32(OstreeAsyncProgress *p, const char *key) {
        g_autoptr(GVariant) v = ostree_async_progress_get_variant(p, key);
        return v && g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32) ? g_variant_get_uint32(v) : 0;
}

static void progress_read(OstreeAsyncProgress *p, PullProgress *ret) {
        /* A superblock is fetched per commit pulled through a delta. */
        bool delta = progress_u32(p, "total-delta-superblocks") > 0;

        *ret = (PullProgress) {
                .bytes_transferred = progress_u64(p, "bytes-transferred"),
                .bytes_total = delta ? progress_u64(p, "total-delta-part-size") : 0,
                .objects_fetched = progress_u32(p, "fetched"),
                .objects_requested = progress_u32(p, "requested"),
                .delta = delta,
        };
}

static void progress_report(PullContext *c, const PullProgress *p) {
        PullProgress shown = *p;

        /* The total counts the delta's parts only, the bytes also its superblock and the commit's
         * metadata: never show more done than there is ("154.3M of 154.1M"). */
        if (shown.bytes_total > 0)
                shown.bytes_transferred = MIN(shown.bytes_transferred, shown.bytes_total);
        c->callback(&shown, c->userdata);
}

/* The per-object bound, enforced by the kernel on every file the pull writes (downloads land in
 * temporary files of the repository): libostree bounds metadata and delta parts, not file
 * objects, and its libcurl fetcher does not stop a transfer in flight when the pull is cancelled.
 * Writes beyond the limit fail with EFBIG (SIGXFSZ ignored meanwhile), which ends that transfer. */
static void fsize_limit(PullContext *c, uint64_t limit) {
        struct rlimit rl;

        if (!c->fsize_limited) {
                if (getrlimit(RLIMIT_FSIZE, &c->saved_fsize) < 0 ||
                    sigaction(SIGXFSZ, &(struct sigaction) { .sa_handler = SIG_IGN }, &c->saved_sigxfsz) < 0)
                        return;
                c->fsize_limited = true;
        }
        rl = c->saved_fsize;
        if (rl.rlim_cur == RLIM_INFINITY || limit < rl.rlim_cur)
                rl.rlim_cur = (rlim_t) limit;
        (void) setrlimit(RLIMIT_FSIZE, &rl);
}

static void fsize_limit_restore(PullContext *c) {
        if (!c->fsize_limited)
                return;
        (void) setrlimit(RLIMIT_FSIZE, &c->saved_fsize);
        (void) sigaction(SIGXFSZ, &c->saved_sigxfsz, NULL);
        c->fsize_limited = false;
}

/* Runs every PULL_WATCH_INTERVAL_MSEC at G_PRIORITY_HIGH, ahead of the transfers' own sources: on a
 * fast link those are always ready and starve anything of lower priority, such as the idle source
 * OstreeAsyncProgress emits "changed" from (checked there, an endless object went by unchecked).
 * The figures are as fresh as libostree's own updates, every PULL_WATCH_INTERVAL_MSEC too. */
static gboolean on_pull_watch(gpointer userdata) {
        PullContext *c = userdata;
        const FetchOptions *o = c->options;
        PullProgress pp;

        progress_read(c->progress, &pp);
        if (c->bound == PULL_WITHIN_BOUNDS) {
                if (o->max_size > 0 && pp.bytes_transferred > o->max_size)
                        c->bound = PULL_TOO_LARGE;
                else if (fetch_deadline_passed(o))
                        c->bound = PULL_TOO_LONG;
                if (c->bound != PULL_WITHIN_BOUNDS) {
                        g_cancellable_cancel(c->cancellable);
                        /* Transfers in flight end at their next write; a silent one at the stall timeout. */
                        fsize_limit(c, 0);
                }
        }

        usec_t now = now_usec(CLOCK_MONOTONIC);
        if (c->callback && (c->last_callback == 0 || now >= c->last_callback + PULL_PROGRESS_INTERVAL_MSEC * USEC_PER_MSEC)) {
                c->last_callback = now;
                progress_report(c, &pp);
        }
        return G_SOURCE_CONTINUE;
}

static GVariant *pull_options(const char *commit, const FetchOptions *o) {
        g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
        const char *refs[] = { commit, NULL };

        /* A checksum, not a branch: exactly what the signed manifest names, and no remote ref. */
        g_variant_builder_add(&b, "{sv}", "refs", g_variant_new_strv(refs, -1));
        /* UNTRUSTED: verify checksums for file:// too (only HTTP objects are checked by default). */
        g_variant_builder_add(&b, "{sv}", "flags", g_variant_new_int32(OSTREE_REPO_PULL_FLAGS_UNTRUSTED));
        g_variant_builder_add(&b, "{sv}", "depth", g_variant_new_int32(0));
        g_variant_builder_add(&b, "{sv}", "gpg-verify", g_variant_new_boolean(FALSE));
        g_variant_builder_add(&b, "{sv}", "gpg-verify-summary", g_variant_new_boolean(FALSE));
        g_variant_builder_add(&b, "{sv}", "disable-sign-verify", g_variant_new_boolean(TRUE));
        g_variant_builder_add(&b, "{sv}", "disable-sign-verify-summary", g_variant_new_boolean(TRUE));
        g_variant_builder_add(&b, "{sv}", "update-frequency", g_variant_new_uint32(PULL_WATCH_INTERVAL_MSEC));
        /* The same stall rule as fetch_url(); ostree's connect timeout is fixed at 30 s. */
        g_variant_builder_add(&b, "{sv}", "low-speed-limit-bytes", g_variant_new_uint32(FETCH_STALL_SPEED));
        g_variant_builder_add(&b, "{sv}", "low-speed-time-seconds",
                              g_variant_new_uint32((uint32_t) MIN(fetch_stall_timeout(o) / USEC_PER_SEC, UINT32_MAX)));
        g_variant_builder_add(&b, "{sv}", "append-user-agent", g_variant_new_string("dreamlink/" PACKAGE_VERSION));
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

/* The pulled commit must be complete and be exactly COMMIT, whatever the server sent. */
static int verify_pulled_commit(OstreeRepo *repo, const char *commit) {
        g_autoptr(GError) error = NULL;
        OstreeRepoCommitState state;

        if (!ostree_repo_load_commit(repo, commit, NULL, &state, &error))
                return log_gerror(error, "Pulled %s, but cannot load it", commit);
        if (state & OSTREE_REPO_COMMIT_STATE_PARTIAL)
                return log_error_errno(EBADMSG, "Pulled %s, but it is incomplete in the local repository.", commit);
        if (!ostree_repo_fsck_object(repo, OSTREE_OBJECT_TYPE_COMMIT, commit, NULL, &error))
                return log_error_errno(EBADMSG, "Pulled %s, but the commit object does not match its checksum: %s",
                                       commit, error->message);
        return 0;
}

int local_repo_pull(OstreeRepo *repo, const char *repo_url, const char *commit, const char *ref,
                    const FetchOptions *o, pull_progress_t progress, void *userdata, PullResult *ret) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GCancellable) cancellable = g_cancellable_new();
        g_autoptr(OstreeAsyncProgress) p = NULL;
        g_autoptr(GSource) watch = NULL;
        g_autoptr(GVariant) options = NULL;
        _cleanup_free_ char *url = NULL;
        char buf[FORMAT_BYTES_MAX];
        PullProgress final;
        size_t n;
        int r;

        if (!ostree_validate_checksum_string(commit, NULL))
                return log_error_errno(EINVAL, "Refusing to pull '%s': not a commit checksum.", commit);
        if (!ostree_validate_rev(ref, NULL))
                return log_error_errno(EINVAL, "Refusing to pull %s: invalid ref name '%s'.", commit, ref);
        r = fetch_check_url(repo_url, o);
        if (r < 0)
                return r;

        n = strlen(repo_url);
        while (n > 0 && repo_url[n - 1] == '/')
                n--;
        url = strndup(repo_url, n);
        if (!url)
                return log_oom();

        r = remote_configure(repo, url, o);
        if (r < 0)
                return r;
        r = probe_remote(url, o);
        if (r < 0)
                return r;

        PullContext ctx = {
                .cancellable = cancellable,
                .options = o,
                .callback = progress,
                .userdata = userdata,
        };
        /* The pull iterates the thread's default main context: the watch goes there. */
        p = ostree_async_progress_new();
        ctx.progress = p;
        watch = g_timeout_source_new(PULL_WATCH_INTERVAL_MSEC);
        g_source_set_priority(watch, G_PRIORITY_HIGH);
        g_source_set_callback(watch, on_pull_watch, &ctx, NULL);
        g_source_attach(watch, g_main_context_get_thread_default());
        if (o->max_size > 0)
                fsize_limit(&ctx, o->max_size);
        options = pull_options(commit, o);

        log_debug("Pulling %s from %s.", commit, url);
        bool ok = ostree_repo_pull_with_options(repo, LOCAL_REPO_REMOTE, options, p, cancellable, &error);
        g_source_destroy(watch);
        fsize_limit_restore(&ctx);
        ostree_async_progress_finish(p);
        if (!ok)
                return log_pull_error(repo, url, commit, error, ctx.bound, o);

        r = verify_pulled_commit(repo, commit);
        if (r < 0)
                return r;
        if (!ostree_repo_set_ref_immediate(repo, NULL, ref, commit, NULL, &error))
                return log_gerror(error, "Failed to point %s at %s", ref, commit);

        progress_read(p, &final);
        if (progress)
                progress_report(&ctx, &final);
        log_debug("Pulled %s from %s into %s: %s downloaded%s.", commit, url, ref,
                 format_bytes(buf, sizeof(buf), final.bytes_transferred), final.delta ? " through a static delta" : "");
        if (ret)
                *ret = (PullResult) {
                        .bytes_transferred = final.bytes_transferred,
                        .delta = final.delta,
                };
        return 0;
}

static bool ref_is_kept(const char *refspec, const RepoKeep *keep, size_t n_keep) {
        for (size_t i = 0; i < n_keep; i++)
                if (streq(refspec, keep[i].ref))
                        return true;
        return false;
}

int local_repo_prune(OstreeRepo *repo, const RepoKeep *keep, size_t n_keep, uint64_t *ret_freed) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GHashTable) refs = NULL;
        gint n_total = 0, n_pruned = 0;
        guint64 freed = 0;
        GHashTableIter it;
        gpointer refspec;

        for (size_t i = 0; i < n_keep; i++) {
                gboolean have = FALSE;
                if (keep[i].commit &&
                    !ostree_repo_has_object(repo, OSTREE_OBJECT_TYPE_COMMIT, keep[i].commit, &have, NULL, &error))
                        return log_gerror(error, "Failed to look up %s in the local repository", keep[i].commit);
                if (!ostree_repo_set_ref_immediate(repo, NULL, keep[i].ref, have ? keep[i].commit : NULL, NULL, &error))
                        return log_gerror(error, "Failed to point %s at %s", keep[i].ref, strna(keep[i].commit));
        }

        if (!ostree_repo_list_refs_ext(repo, NULL, &refs, OSTREE_REPO_LIST_REFS_EXT_NONE, NULL, &error))
                return log_gerror(error, "Failed to list the refs of the local repository");
        g_hash_table_iter_init(&it, refs);
        while (g_hash_table_iter_next(&it, &refspec, NULL)) {
                g_autofree char *remote = NULL, *ref = NULL;
                if (ref_is_kept(refspec, keep, n_keep))
                        continue;
                if (!ostree_parse_refspec(refspec, &remote, &ref, &error) ||
                    !ostree_repo_set_ref_immediate(repo, remote, ref, NULL, NULL, &error))
                        return log_gerror(error, "Failed to delete the ref %s", (const char *) refspec);
        }

        /* Depth 0: a slot needs its commit, not the release before it (which is the parent on the
         * server's branch, and would be kept whole if it was ever pulled). */
        if (!ostree_repo_prune(repo, OSTREE_REPO_PRUNE_FLAGS_REFS_ONLY, 0, &n_total, &n_pruned, &freed, NULL, &error))
                return log_gerror(error, "Failed to prune the local repository");
        log_debug("Pruned the local repository: %d of %d objects removed, %" PRIu64 " bytes freed.", n_pruned, n_total,
                  (uint64_t) freed);
        if (ret_freed)
                *ret_freed = freed;
        return 0;
}
