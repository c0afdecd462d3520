/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

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

/* Classifies a failed pull; see pull.h for the list. */
static int pull_errno(const GError *e, bool size_exceeded) {
        const char *p;
        unsigned code;

        if (size_exceeded && g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                return -EFBIG;
        /* ostree refuses to fill the file system beyond core.min-free-space-* with a plain error. */
        if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_NO_SPACE) || message_has(e, "min-free-space") ||
            message_has(e, strerror(ENOSPC)))
                return -ENOSPC;
        p = strstr(e->message, "Server returned HTTP ");
        if (p && sscanf(p, "Server returned HTTP %u", &code) == 1)
                return code == 404 || code == 410 ? -ENOENT : -EREMOTEIO;
        p = strstr(e->message, "While fetching ");
        if (p && (p = strstr(p, ": [")) && sscanf(p, ": [%u]", &code) == 1)
                return fetch_errno_from_curl_code((int) code);
        if (message_has(e, "Corrupted") || message_has(e, "corrupt") || message_has(e, "Checksum mismatch") ||
            message_has(e, "Invalid checksum"))
                return -EBADMSG;
        return -errno_from_gerror(e);
}

static int log_pull_error(OstreeRepo *repo, const char *url, const char *commit, const GError *e, bool size_exceeded,
                          uint64_t max_size) {
        char buf[FORMAT_BYTES_MAX];
        int r = pull_errno(e, size_exceeded);

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
                return log_error_errno(r, "Failed to pull %s from %s: it would download more than the limit of %s.",
                                       commit, url, format_bytes(buf, sizeof(buf), max_size));
        case -EPIPE:
                return log_error_errno(r, "Failed to pull %s from %s: the connection closed in the middle of an object: %s",
                                       commit, url, e->message);
        case -ETIMEDOUT:
                return log_error_errno(r, "Failed to pull %s from %s: the transfer timed out or stalled: %s", commit, url,
                                       e->message);
        default:
                return log_error_errno(r, "Failed to pull %s from %s: %m (%s)", commit, url, e->message);
        }
}

typedef struct PullContext {
        GCancellable *cancellable;
        uint64_t max_size;
        bool size_exceeded;
        pull_progress_t callback;
        void *userdata;
        usec_t last_callback;
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

/* Runs from the pull's main loop iterations. */
static void on_progress_changed(OstreeAsyncProgress *p, gpointer userdata) {
        PullContext *c = userdata;
        PullProgress pp;
        usec_t now;

        progress_read(p, &pp);
        if (c->max_size > 0 && pp.bytes_transferred > c->max_size && !c->size_exceeded) {
                c->size_exceeded = true;
                g_cancellable_cancel(c->cancellable);
        }
        if (!c->callback)
                return;
        now = now_usec(CLOCK_MONOTONIC);
        if (c->last_callback > 0 && now < c->last_callback + PULL_PROGRESS_INTERVAL_MSEC * USEC_PER_MSEC)
                return;
        c->last_callback = now;
        c->callback(&pp, c->userdata);
}

static GVariant *pull_options(const char *commit, const FetchOptions *o) {
        g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
        const char *refs[] = { commit, NULL };
        usec_t stall = o->stall_timeout > 0 ? o->stall_timeout : FETCH_STALL_TIMEOUT_DEFAULT;

        /* A checksum, not a branch: exactly what the signed manifest names, and no remote ref. */
        g_variant_builder_add(&b, "{sv}", "refs", g_variant_new_strv(refs, -1));
        /* UNTRUSTED: verify checksums for file:// too (only HTTP objects are checked by default). */
        g_variant_builder_add(&b, "{sv}", "flags", g_variant_new_int32(OSTREE_REPO_PULL_FLAGS_UNTRUSTED));
        g_variant_builder_add(&b, "{sv}", "depth", g_variant_new_int32(0));
        g_variant_builder_add(&b, "{sv}", "gpg-verify", g_variant_new_boolean(FALSE));
        g_variant_builder_add(&b, "{sv}", "gpg-verify-summary", g_variant_new_boolean(FALSE));
        g_variant_builder_add(&b, "{sv}", "disable-sign-verify", g_variant_new_boolean(TRUE));
        g_variant_builder_add(&b, "{sv}", "disable-sign-verify-summary", g_variant_new_boolean(TRUE));
        g_variant_builder_add(&b, "{sv}", "update-frequency", g_variant_new_uint32(PULL_PROGRESS_INTERVAL_MSEC));
        /* The same stall rule as fetch_url(); ostree's connect timeout is fixed at 30 s. */
        g_variant_builder_add(&b, "{sv}", "low-speed-limit-bytes", g_variant_new_uint32(FETCH_STALL_SPEED));
        g_variant_builder_add(&b, "{sv}", "low-speed-time-seconds",
                              g_variant_new_uint32((uint32_t) MAX((stall + USEC_PER_SEC - 1) / USEC_PER_SEC, 1U)));
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
                .max_size = o->max_size,
                .callback = progress,
                .userdata = userdata,
        };
        /* Created here, so its signals go to the main context the pull iterates (the thread's default). */
        p = ostree_async_progress_new_and_connect(on_progress_changed, &ctx);
        options = pull_options(commit, o);

        log_debug("Pulling %s from %s.", commit, url);
        bool ok = ostree_repo_pull_with_options(repo, LOCAL_REPO_REMOTE, options, p, cancellable, &error);
        /* No callback may run after we return: drop a pending one with the handler. */
        g_signal_handlers_disconnect_by_data(p, &ctx);
        ostree_async_progress_finish(p);
        if (!ok)
                return log_pull_error(repo, url, commit, error, ctx.size_exceeded, o->max_size);

        r = verify_pulled_commit(repo, commit);
        if (r < 0)
                return r;
        if (!ostree_repo_set_ref_immediate(repo, NULL, ref, commit, NULL, &error))
                return log_gerror(error, "Failed to point %s at %s", ref, commit);

        progress_read(p, &final);
        if (progress)
                progress(&final, userdata);
        log_debug("Pulled %s from %s into %s: %s downloaded%s.", commit, url, ref,
                 format_bytes(buf, sizeof(buf), final.bytes_transferred), final.delta ? " through a static delta" : "");
        if (ret)
                *ret = (PullResult) {
                        .bytes_transferred = final.bytes_transferred,
                        .delta = final.delta,
                };
        return 0;
}
