/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* local_repo_pull() from a release server's archive repository, served over HTTP(S) on the
 * loopback by an in-process server, into a bare repository as on a machine's VAR. */
#include <ftw.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "tests.h"
#include "fetch.h"
#include "http-server.h"
#include "log.h"
#include "ostree-image.h"
#include "pull.h"

/* After macro.h (via tests.h): GLib #undefs MIN/MAX before defining its own, macro.h does not. */
#include <ostree.h>

/* The log OUT must contain S; shows the log when not. */
#define assert_log(out, s)                                                              \
        do {                                                                            \
                if (!strstr((out), (s)))                                                \
                        fail_msg("log lacks \"%s\": %s", (s), (out));                  \
        } while (0)

#define BRANCH "dreamlink/test/x86_64/stable"
#define KVER "6.1.0-test"
#define BIG_FILE_SIZE (512U * 1024U)
#define N_MID_FILES 6
#define MID_FILE_SIZE (64U * 1024U)
#define HUGE_FILE_SIZE (3U * 1024U * 1024U)
#define SLOT_REF "dreamlink/slot/a"
#define STAGED_REF "dreamlink/staged"
#define UNKNOWN_COMMIT "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define PULL_CHILD "--pull-child" /* argv[1] of the test run as a child process */
#define CHILD_NO_TMPFS 255

typedef struct Fixture {
        char *dir;         /* the temporary directory, holding: */
        char *tree;        /* tree/: a small OS */
        char *www;         /* www/: the release server's root, with */
        char *server_repo; /* www/repo: its archive repository */
        char *local;       /* var/lib/dreamlink/repo: the machine's repository (created by the tests) */
        OstreeRepo *repo;  /* the server's */
        HttpServer *server;
        char *repo_url;
        char *c1;          /* release 1, committed and in the summary */
} Fixture;

static const FetchOptions http_ok = { .allow_http = true };

static void write_random_file(const char *root, const char *name, size_t size, uint64_t seed) {
        _cleanup_free_ char *p = path_join2(root, name), *data = random_bytes(size, seed);
        assert_int_equal(write_file_atomic(p, data, size, 0644), 0);
}

static void mkdir_in(const char *root, const char *name) {
        _cleanup_free_ char *p = path_join2(root, name);
        assert_int_equal(mkdir_p(p, 0755), 0);
}

/* Kernel and initrd, /etc, a binary, one big library and a few middling ones (incompressible, so
 * object sizes are what they seem). */
static void make_tree(const char *tree) {
        mkdir_in(tree, "boot");
        write_test_file(tree, "boot/vmlinuz-" KVER, "MZ fake kernel\n");
        write_test_file(tree, "boot/initrd.img-" KVER, "fake initramfs\n");
        mkdir_in(tree, "etc");
        write_test_file(tree, "etc/os-release", "ID=dreamlink-test\nVERSION_ID=1\n");
        mkdir_in(tree, "usr/bin");
        write_test_file(tree, "usr/bin/hello", "#!/bin/sh\necho hello\n");
        mkdir_in(tree, "usr/lib");
        write_random_file(tree, "usr/lib/libbig.so", BIG_FILE_SIZE, 42);
        for (unsigned i = 0; i < N_MID_FILES; i++) {
                char name[64];
                snprintf(name, sizeof(name), "usr/lib/libmid-%u.so", i);
                write_random_file(tree, name, MID_FILE_SIZE, 100 + 2 * i); /* seeds are or-ed with 1 */
        }
}

static char *commit_release(Fixture *f, const char *version) {
        ImageCommit c = {
                .tree = f->tree,
                .branch = BRANCH,
                .version = version,
                .os_name = "dreamlink-test",
        };
        char *checksum = NULL;
        assert_int_equal(image_repo_commit(f->repo, &c, &checksum), 0);
        return checksum;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));

        log_set_target(LOG_TARGET_CONSOLE);
        assert_int_equal(tmpdir_setup((void **) &f->dir), 0);
        f->tree = path_join2(f->dir, "tree");
        f->www = path_join2(f->dir, "www");
        f->server_repo = path_join2(f->www, "repo");
        f->local = path_join2(f->dir, "var/lib/dreamlink/repo");
        make_tree(f->tree);
        assert_int_equal(image_repo_open(f->server_repo, true, &f->repo), 0);
        f->c1 = commit_release(f, "1.0");
        assert_int_equal(image_repo_update_summary(f->repo), 0);
        assert_int_equal(http_server_start(f->www, NULL, NULL, &f->server), 0);
        f->repo_url = http_server_url(f->server, "/repo");
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        http_server_stop(f->server);
        image_repo_unref(f->repo);
        tmpdir_teardown((void **) &f->dir);
        free(f->tree);
        free(f->www);
        free(f->server_repo);
        free(f->local);
        free(f->repo_url);
        free(f->c1);
        free(f);
        return 0;
}

/* Bare repositories keep file ownership: only root can write them. */
#define REQUIRE_ROOT()                      \
        do {                                \
                if (geteuid() != 0)         \
                        skip();             \
        } while (0)

typedef struct Progress {
        unsigned calls;
        usec_t times[256];
        PullProgress last;
} Progress;

static void on_progress(const PullProgress *p, void *userdata) {
        Progress *pr = userdata;
        if (pr->calls < ELEMENTSOF(pr->times))
                pr->times[pr->calls] = now_usec(CLOCK_MONOTONIC);
        pr->calls++;
        pr->last = *p;
}

/* At most ~4 callbacks a second; the last one, with the final figures, may come sooner. */
static void check_progress_rate(const Progress *pr) {
        unsigned n = MIN(pr->calls, (unsigned) ELEMENTSOF(pr->times));
        for (unsigned i = 1; i + 1 < n; i++)
                assert_true(pr->times[i] - pr->times[i - 1] >= (PULL_PROGRESS_INTERVAL_MSEC - 10) * USEC_PER_MSEC);
}

static OstreeRepo *open_local(Fixture *f) {
        OstreeRepo *local = NULL;
        assert_int_equal(local_repo_open(f->local, &local), 0);
        return local;
}

static char *resolve(OstreeRepo *repo, const char *ref) {
        g_autofree char *rev = NULL;
        assert_true(ostree_repo_resolve_rev(repo, ref, TRUE, &rev, NULL));
        return rev ? strdup(rev) : NULL;
}

static void assert_commit_complete(OstreeRepo *repo, const char *commit) {
        g_autoptr(GVariant) v = NULL;
        OstreeRepoCommitState state;
        assert_true(ostree_repo_load_commit(repo, commit, &v, &state, NULL));
        assert_false(state & OSTREE_REPO_COMMIT_STATE_PARTIAL);
}

typedef struct PullCall {
        OstreeRepo *repo;
        const char *url, *commit;
        const FetchOptions *o;
        int r;
} PullCall;

static void do_pull(void *userdata) {
        PullCall *c = userdata;
        c->r = local_repo_pull(c->repo, c->url, c->commit, STAGED_REF, c->o, NULL, NULL, NULL);
}

/* Pulls expecting R (< 0); returns the log, which must name the URL or the commit. */
static char *pull_expect_error(OstreeRepo *repo, const char *url, const char *commit, const FetchOptions *o, int r) {
        PullCall c = { .repo = repo, .url = url, .commit = commit, .o = o };
        char *out = capture_stderr(do_pull, &c);
        if (c.r != r)
                fail_msg("local_repo_pull() = %d (%s), expected %d (%s); log: %s", c.r, strerror(-c.r), r,
                         strerror(-r), out);
        assert_true(strstr(out, url) || strstr(out, commit));
        _cleanup_free_ char *staged = resolve(repo, STAGED_REF);
        assert_null(staged); /* nothing half-done is referenced */
        return out;
}

static bool strv_has_substring(char **l, const char *s) {
        STRV_FOREACH(i, l)
                if (strstr(*i, s))
                        return true;
        return false;
}

static void test_local_repo_open(void **state) {
        Fixture *f = *state;
        OstreeRepo *local = NULL;

        /* Created with its parents, bare; opened again as it is. */
        assert_int_equal(local_repo_open(f->local, &local), 0);
        assert_int_equal(ostree_repo_get_mode(local), OSTREE_REPO_MODE_BARE);
        image_repo_unref(local);
        local = NULL;
        assert_int_equal(local_repo_open(f->local, &local), 0);
        image_repo_unref(local);

        /* An archive repository cannot take deltas: refused, not silently used. */
        local = NULL;
        log_set_max_level(LOG_EMERG);
        assert_int_equal(local_repo_open(f->server_repo, &local), -EMEDIUMTYPE);
        log_set_max_level(LOG_INFO);
        assert_null(local);
}

/* Root only: the set-uid binaries of every release it holds must not be reachable by others. */
static void test_local_repo_open_root_only(void **state) {
        Fixture *f = *state;
        OstreeRepo *local = NULL;

        assert_int_equal(local_repo_open(f->local, &local), 0);
        image_repo_unref(local);
        assert_int_equal(test_mode_of(f->dir, "var/lib/dreamlink/repo"), 0700);
        assert_int_equal(test_mode_of(f->dir, "var/lib/dreamlink"), 0755);

        /* One made 0755 by an earlier version is locked down when opened. */
        assert_int_equal(chmod(f->local, 0755), 0);
        local = NULL;
        assert_int_equal(local_repo_open(f->local, &local), 0);
        image_repo_unref(local);
        assert_int_equal(test_mode_of(f->dir, "var/lib/dreamlink/repo"), 0700);

        /* A link in its place is not followed. */
        _cleanup_free_ char *moved = path_join2(f->dir, "moved");
        assert_int_equal(rename(f->local, moved), 0);
        assert_int_equal(symlink(moved, f->local), 0);
        assert_int_equal(chmod(moved, 0755), 0);
        local = NULL;
        log_set_max_level(LOG_EMERG);
        assert_int_equal(local_repo_open(f->local, &local), -ELOOP);
        log_set_max_level(LOG_INFO);
        assert_null(local);
        assert_int_equal(test_mode_of(f->dir, "moved"), 0755);
}

static bool has_object(OstreeRepo *repo, OstreeObjectType type, const char *checksum) {
        gboolean have = FALSE;
        assert_true(ostree_repo_has_object(repo, type, checksum, &have, NULL, NULL));
        return have;
}

/* The checksum of the file object at PATH in COMMIT. */
static char *file_object(OstreeRepo *repo, const char *commit, const char *path) {
        g_autoptr(GFile) root = NULL, file = NULL;
        assert_true(ostree_repo_read_commit(repo, commit, &root, NULL, NULL, NULL));
        file = g_file_resolve_relative_path(root, path);
        assert_true(ostree_repo_file_ensure_resolved(OSTREE_REPO_FILE(file), NULL));
        return strdup(ostree_repo_file_get_checksum(OSTREE_REPO_FILE(file)));
}

static unsigned n_refs(OstreeRepo *repo) {
        g_autoptr(GHashTable) refs = NULL;
        assert_true(ostree_repo_list_refs_ext(repo, NULL, &refs, OSTREE_REPO_LIST_REFS_EXT_NONE, NULL, NULL));
        return g_hash_table_size(refs);
}

static void test_prune_keeps_only_the_slots(void **state) {
        Fixture *f = *state;
        _cleanup_repo_ OstreeRepo *local = NULL;

        REQUIRE_ROOT();
        /* Release 2 has a set-uid binary that release 3 dropped (a fixed hole, say). */
        _cleanup_free_ char *suid = path_join2(f->tree, "usr/bin/old-suid");
        write_test_file(f->tree, "usr/bin/old-suid", "#!/bin/sh\nexit 0\n");
        assert_int_equal(chmod(suid, 04755), 0);
        _cleanup_free_ char *c2 = commit_release(f, "2.0");
        assert_int_equal(unlink(suid), 0);
        write_test_file(f->tree, "etc/os-release", "ID=dreamlink-test\nVERSION_ID=3\n");
        _cleanup_free_ char *c3 = commit_release(f, "3.0");
        assert_int_equal(image_repo_update_summary(f->repo), 0);

        /* Slot a holds 1; 2 was staged into b, then 3 over it. */
        local = open_local(f);
        assert_int_equal(local_repo_pull(local, f->repo_url, f->c1, "dreamlink/slot/a", &http_ok, NULL, NULL, NULL), 0);
        assert_int_equal(local_repo_pull(local, f->repo_url, c2, "dreamlink/slot/b", &http_ok, NULL, NULL, NULL), 0);
        _cleanup_free_ char *suid_object = file_object(local, c2, "/usr/bin/old-suid");
        assert_int_equal(local_repo_pull(local, f->repo_url, c3, "dreamlink/slot/b", &http_ok, NULL, NULL, NULL), 0);
        /* Refs no slot uses: an old one of ours, a remote one. */
        assert_true(ostree_repo_set_ref_immediate(local, NULL, STAGED_REF, c2, NULL, NULL));
        assert_true(ostree_repo_set_ref_immediate(local, LOCAL_REPO_REMOTE, "old", c2, NULL, NULL));
        assert_true(has_object(local, OSTREE_OBJECT_TYPE_COMMIT, c2));
        assert_true(has_object(local, OSTREE_OBJECT_TYPE_FILE, suid_object));

        const RepoKeep keep[] = { { "dreamlink/slot/a", f->c1 }, { "dreamlink/slot/b", c3 } };
        uint64_t freed = 0;
        assert_int_equal(local_repo_prune(local, keep, ELEMENTSOF(keep), &freed), 0);
        assert_false(has_object(local, OSTREE_OBJECT_TYPE_COMMIT, c2));
        assert_false(has_object(local, OSTREE_OBJECT_TYPE_FILE, suid_object));
        assert_true(freed > 0);
        assert_commit_complete(local, f->c1);
        assert_commit_complete(local, c3);
        assert_int_equal(n_refs(local), 2);
        _cleanup_free_ char *a = resolve(local, "dreamlink/slot/a"), *b = resolve(local, "dreamlink/slot/b");
        assert_string_equal(a, f->c1);
        assert_string_equal(b, c3);

        /* A slot that holds nothing (being rewritten) keeps nothing; a commit of a slot that lost
         * its ref gets it back. */
        assert_true(ostree_repo_set_ref_immediate(local, NULL, "dreamlink/slot/a", NULL, NULL, NULL));
        const RepoKeep only_a[] = { { "dreamlink/slot/a", f->c1 }, { "dreamlink/slot/b", NULL } };
        assert_int_equal(local_repo_prune(local, only_a, ELEMENTSOF(only_a), NULL), 0);
        assert_false(has_object(local, OSTREE_OBJECT_TYPE_COMMIT, c3));
        assert_commit_complete(local, f->c1);
        assert_int_equal(n_refs(local), 1);
        _cleanup_free_ char *a_again = resolve(local, "dreamlink/slot/a");
        assert_string_equal(a_again, f->c1);
        assert_int_equal(test_mode_of(f->dir, "var/lib/dreamlink/repo"), 0700);
}

static void test_pull_full_then_delta(void **state) {
        Fixture *f = *state;
        _cleanup_repo_ OstreeRepo *local = NULL;
        Progress p1 = {}, p2 = {};
        PullResult r1, r2, r3;
        uint64_t delta_size;

        REQUIRE_ROOT();
        local = open_local(f);

        /* Release 1 into the empty repository: no delta, every object. */
        assert_int_equal(local_repo_pull(local, f->repo_url, f->c1, SLOT_REF, &http_ok, on_progress, &p1, &r1), 0);
        _cleanup_free_ char *slot = resolve(local, SLOT_REF);
        assert_string_equal(slot, f->c1);
        assert_commit_complete(local, f->c1);
        assert_false(r1.delta);
        assert_true(r1.bytes_transferred > BIG_FILE_SIZE + N_MID_FILES * MID_FILE_SIZE);
        assert_true(p1.calls >= 1);
        assert_true(p1.last.bytes_transferred == r1.bytes_transferred);
        assert_false(p1.last.delta);
        assert_true(p1.last.bytes_total == 0);
        /* (Requested also counts the commit's detached metadata, which this server does not have.) */
        assert_true(p1.last.objects_fetched > N_MID_FILES && p1.last.objects_fetched <= p1.last.objects_requested);
        check_progress_rate(&p1);

        /* Release 2 changes one small file; the server publishes the delta 1 → 2. */
        write_test_file(f->tree, "etc/os-release", "ID=dreamlink-test\nVERSION_ID=2\n");
        _cleanup_free_ char *c2 = commit_release(f, "2.0");
        assert_int_equal(image_repo_generate_delta(f->repo, f->c1, c2, &delta_size), 0);
        assert_int_equal(image_repo_update_summary(f->repo), 0);

        http_server_reset_stats(f->server);
        assert_int_equal(local_repo_pull(local, f->repo_url, c2, STAGED_REF, &http_ok, on_progress, &p2, &r2), 0);
        print_message("full pull of release 1: %" PRIu64 " bytes; delta pull of release 2: %" PRIu64
                      " bytes (delta on the server: %" PRIu64 " bytes)\n",
                      r1.bytes_transferred, r2.bytes_transferred, delta_size);
        assert_true(r2.delta);
        assert_true(r2.bytes_transferred * 20 < r1.bytes_transferred);
        assert_true(p2.last.delta);
        assert_true(p2.last.bytes_total > 0 && p2.last.bytes_total <= delta_size);
        /* The superblock and metadata come on top of the parts: still never "more of less". */
        assert_true(r2.bytes_transferred > p2.last.bytes_total);
        assert_true(p2.last.bytes_transferred <= p2.last.bytes_total);
        check_progress_rate(&p2);
        _cleanup_free_ char *staged = resolve(local, STAGED_REF), *still_slot = resolve(local, SLOT_REF);
        assert_string_equal(staged, c2);
        assert_string_equal(still_slot, f->c1);
        assert_commit_complete(local, c2);

        /* Through the delta, not object by object. */
        _cleanup_strv_free_ char **paths = http_server_paths(f->server, true);
        assert_true(strv_has_substring(paths, "/superblock"));
        assert_false(strv_has_substring(paths, ".filez"));

        /* What the delta made is release 2, file for file. */
        _cleanup_free_ char *version = NULL, *dest = path_join2(f->dir, "checkout"), *os_release = NULL,
                            *big = NULL, *expected = random_bytes(BIG_FILE_SIZE, 42);
        assert_int_equal(image_repo_read_commit(local, STAGED_REF, NULL, &version, NULL, NULL), 0);
        assert_string_equal(version, "2.0");
        assert_int_equal(image_repo_checkout(local, c2, dest), 0);
        _cleanup_free_ char *os_release_path = path_join2(dest, "etc/os-release"),
                            *big_path = path_join2(dest, "usr/lib/libbig.so");
        assert_int_equal(read_file_limited(os_release_path, 4096, &os_release, NULL), 0);
        assert_string_equal(os_release, "ID=dreamlink-test\nVERSION_ID=2\n");
        assert_int_equal(read_file_limited(big_path, BIG_FILE_SIZE, &big, NULL), 0);
        assert_memory_equal(big, expected, BIG_FILE_SIZE);

        /* Pulling what we have downloads next to nothing. */
        assert_int_equal(local_repo_pull(local, f->repo_url, c2, STAGED_REF, &http_ok, NULL, NULL, &r3), 0);
        assert_true(r3.bytes_transferred < 4096);
}

static void test_pull_unknown_commit(void **state) {
        Fixture *f = *state;
        _cleanup_repo_ OstreeRepo *local = NULL;
        _cleanup_free_ char *out = NULL;

        REQUIRE_ROOT();
        local = open_local(f);
        out = pull_expect_error(local, f->repo_url, UNKNOWN_COMMIT, &http_ok, -ENOENT);
        assert_log(out, "not on the server");

        /* Not a checksum at all, or a bad ref: refused before any request. */
        http_server_reset_stats(f->server);
        log_set_max_level(LOG_EMERG);
        assert_int_equal(local_repo_pull(local, f->repo_url, BRANCH, STAGED_REF, &http_ok, NULL, NULL, NULL), -EINVAL);
        assert_int_equal(local_repo_pull(local, f->repo_url, f->c1, "bad ref", &http_ok, NULL, NULL, NULL), -EINVAL);
        log_set_max_level(LOG_INFO);
        assert_int_equal(http_server_requests(f->server), 0);
}

static void test_pull_refuses_http_unless_allowed(void **state) {
        Fixture *f = *state;
        _cleanup_repo_ OstreeRepo *local = NULL;
        _cleanup_free_ char *out = NULL;
        FetchOptions o = http_ok;

        REQUIRE_ROOT();
        local = open_local(f);
        o.allow_http = false;
        out = pull_expect_error(local, f->repo_url, f->c1, &o, -EPROTONOSUPPORT);
        assert_log(out, "plain HTTP is not allowed");
        assert_int_equal(http_server_requests(f->server), 0);
}

static void test_pull_server_down(void **state) {
        Fixture *f = *state;
        _cleanup_repo_ OstreeRepo *local = NULL;
        _cleanup_free_ char *out = NULL;

        REQUIRE_ROOT();
        local = open_local(f);
        http_server_stop(f->server);
        f->server = NULL;
        out = pull_expect_error(local, f->repo_url, f->c1, &http_ok, -ECONNREFUSED);
        assert_log(out, "Connection refused");

        /* No repository at that URL: the probe says so. */
        assert_int_equal(http_server_start(f->www, NULL, NULL, &f->server), 0);
        _cleanup_free_ char *nowhere = http_server_url(f->server, "/no-repo"), *out2 = NULL;
        out2 = pull_expect_error(local, nowhere, f->c1, &http_ok, -ENOENT);
        assert_log(out2, "HTTP 404");
}

static uint64_t objects_size;

static int add_object_size(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (flag == FTW_F)
                objects_size += (uint64_t) st->st_size;
        return 0;
}

static void test_pull_interrupted_then_resumed(void **state) {
        Fixture *f = *state;
        _cleanup_repo_ OstreeRepo *local = NULL;
        _cleanup_free_ char *out = NULL, *objects = path_join2(f->server_repo, "objects");
        PullResult r;

        REQUIRE_ROOT();
        local = open_local(f);
        /* What a pull from scratch downloads, about. */
        objects_size = 0;
        assert_int_equal(nftw(objects, add_object_size, 16, FTW_PHYS), 0);

        /* Every file object body breaks off after 70 KiB: the middling ones come whole, the big one
         * never does (ostree retries it, in vain). */
        http_server_set_faults(f->server, &(HttpFaults) {
                .match = ".filez", .truncate = true, .truncate_after = 70U * 1024U });
        out = pull_expect_error(local, f->repo_url, f->c1, &http_ok, -EPIPE);
        assert_log(out, "the connection closed in the middle of an object");
        uint64_t first = http_server_bytes_sent(f->server);
        _cleanup_strv_free_ char **complete = http_server_paths(f->server, true);
        unsigned n_complete = 0;
        STRV_FOREACH(p, complete)
                if (strstr(*p, ".filez"))
                        n_complete++;
        assert_true(n_complete >= 2);
        /* The repository is as before: no commit, nothing referenced. */
        gboolean has = TRUE;
        assert_true(ostree_repo_has_object(local, OSTREE_OBJECT_TYPE_COMMIT, f->c1, &has, NULL, NULL));
        assert_false(has);

        /* The server is fixed; the re-run fetches only what is missing. */
        http_server_set_faults(f->server, NULL);
        http_server_reset_stats(f->server);
        assert_int_equal(local_repo_pull(local, f->repo_url, f->c1, STAGED_REF, &http_ok, NULL, NULL, &r), 0);
        assert_commit_complete(local, f->c1);
        _cleanup_free_ char *staged = resolve(local, STAGED_REF);
        assert_string_equal(staged, f->c1);
        _cleanup_strv_free_ char **second = http_server_paths(f->server, false);
        STRV_FOREACH(p, complete)
                if (strstr(*p, "/objects/") && strv_contains(second, *p))
                        fail_msg("%s was fetched again", *p);
        print_message("interrupted pull: %" PRIu64 " bytes served, %u file objects complete; resumed pull: %" PRIu64
                      " bytes; all objects: %" PRIu64 " bytes\n", first, n_complete, r.bytes_transferred, objects_size);
        assert_true(r.bytes_transferred > BIG_FILE_SIZE);
        assert_true(r.bytes_transferred + 2 * MID_FILE_SIZE < objects_size);
}

static char *found_filez[2];

static int find_filez(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (flag != FTW_F || !endswith(path, ".filez") || st->st_size < 1024)
                return 0;
        found_filez[found_filez[0] ? 1 : 0] = strdup(path);
        return found_filez[1] ? 1 : 0;
}

static void test_pull_corrupt_object(void **state) {
        Fixture *f = *state;
        _cleanup_repo_ OstreeRepo *local = NULL;
        _cleanup_free_ char *objects = path_join2(f->server_repo, "objects"), *cmd = NULL, *out = NULL;

        REQUIRE_ROOT();
        local = open_local(f);

        /* One file object replaced by another: valid data, wrong checksum. */
        found_filez[0] = found_filez[1] = NULL;
        assert_int_equal(nftw(objects, find_filez, 16, FTW_PHYS), 1);
        assert_true(asprintf(&cmd, "cp '%s' '%s'", found_filez[0], found_filez[1]) > 0);
        assert_int_equal(system(cmd), 0);
        free(found_filez[0]);
        free(found_filez[1]);

        out = pull_expect_error(local, f->repo_url, f->c1, &http_ok, -EBADMSG);
        assert_log(out, "corrupt object");
}

static void test_pull_size_limit(void **state) {
        Fixture *f = *state;
        _cleanup_repo_ OstreeRepo *local = NULL;
        _cleanup_free_ char *out = NULL;
        FetchOptions o = http_ok;

        REQUIRE_ROOT();
        local = open_local(f);
        /* Slow enough for a few progress updates, which is where the limit is checked. */
        http_server_set_faults(f->server, &(HttpFaults) {
                .match = ".filez", .stall = true, .stall_after = 32U * 1024U, .stall_usec = 600 * USEC_PER_MSEC });
        o.max_size = 128U * 1024U;
        out = pull_expect_error(local, f->repo_url, f->c1, &o, -EFBIG);
        assert_log(out, "exceeded the limit of 128.0K (MaxDownloadSize=)");
}

static uint64_t tree_size(const char *dir) {
        objects_size = 0;
        assert_int_equal(nftw(dir, add_object_size, 16, FTW_PHYS), 0);
        return objects_size;
}

static void assert_fsize_unlimited_as_before(const struct rlimit *before) {
        struct rlimit after;
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &after), 0);
        assert_true(after.rlim_cur == before->rlim_cur && after.rlim_max == before->rlim_max);
}

/* File objects that never end, as fast as the loopback goes: the pull ends at the bound, and
 * nothing of the endless data stays on disk. Before the bound was checked ahead of the transfers,
 * this pull never ended. */
static void test_pull_endless_object(void **state) {
        Fixture *f = *state;
        _cleanup_repo_ OstreeRepo *local = NULL;
        _cleanup_free_ char *out = NULL;
        FetchOptions o = http_ok;
        struct rlimit before;

        REQUIRE_ROOT();
        local = open_local(f);
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &before), 0);
        http_server_set_faults(f->server, &(HttpFaults) { .match = ".filez", .endless = true });
        o.max_size = 1U << 20;
        out = pull_expect_error(local, f->repo_url, f->c1, &o, -EFBIG);
        assert_log(out, "exceeded the limit of 1.0M (MaxDownloadSize=)");
        /* No file object came whole: what is left is the commit's metadata, no partial download. */
        uint64_t left = tree_size(f->local);
        print_message("endless objects: refused after %" PRIu64 " bytes served; %" PRIu64 " bytes left in the repository\n",
                      http_server_bytes_sent(f->server), left);
        assert_true(left < 256U * 1024U);
        assert_fsize_unlimited_as_before(&before);

        /* Chunked, the same. */
        http_server_set_faults(f->server, &(HttpFaults) { .match = ".filez", .endless = true, .chunked = true });
        free(out);
        out = pull_expect_error(local, f->repo_url, f->c1, &o, -EFBIG);
        assert_log(out, "exceeded the limit of 1.0M (MaxDownloadSize=)");
        assert_true(tree_size(f->local) < 256U * 1024U);

        /* The server is fixed: the next pull gets the release. */
        http_server_set_faults(f->server, NULL);
        assert_int_equal(local_repo_pull(local, f->repo_url, f->c1, STAGED_REF, &o, NULL, NULL, NULL), 0);
        assert_commit_complete(local, f->c1);
}

/* Slow retrieval: file objects that trickle in forever just above the stall speed. Only the
 * wall-clock limit can end this pull, and does. */
static void test_pull_trickle_wall_clock(void **state) {
        Fixture *f = *state;
        _cleanup_repo_ OstreeRepo *local = NULL;
        _cleanup_free_ char *out = NULL;
        FetchOptions o = http_ok;
        struct rlimit before;

        REQUIRE_ROOT();
        local = open_local(f);
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &before), 0);
        http_server_set_faults(f->server, &(HttpFaults) {
                .match = ".filez", .endless = true, .trickle_bps = 1200 });
        o.time_limit = 2 * USEC_PER_SEC;
        o.deadline = now_usec(CLOCK_MONOTONIC) + o.time_limit;
        out = pull_expect_error(local, f->repo_url, f->c1, &o, -ETIMEDOUT);
        assert_log(out, "exceeded its wall-clock limit of 2.0s (DownloadTimeout=)");
        assert_true(tree_size(f->local) < 256U * 1024U);
        assert_fsize_unlimited_as_before(&before);

        /* Past the deadline nothing more is fetched. */
        http_server_reset_stats(f->server);
        free(out);
        out = pull_expect_error(local, f->repo_url, f->c1, &o, -ETIMEDOUT);
        assert_log(out, "wall-clock limit of 2.0s");
        assert_int_equal(http_server_requests(f->server), 0);
}

/* A server that answers and then sends nothing: given up after the stall timeout (per try). */
static void test_pull_stall_no_data(void **state) {
        Fixture *f = *state;
        _cleanup_repo_ OstreeRepo *local = NULL;
        _cleanup_free_ char *out = NULL;
        FetchOptions o = http_ok;

        REQUIRE_ROOT();
        local = open_local(f);
        http_server_set_faults(f->server, &(HttpFaults) {
                .match = ".filez", .stall = true, .stall_after = 0, .stall_usec = 600 * USEC_PER_SEC });
        o.stall_timeout = 1 * USEC_PER_SEC;
        out = pull_expect_error(local, f->repo_url, f->c1, &o, -ETIMEDOUT);
        assert_log(out, "no data for 1.0s");
}

static void test_pull_file_url(void **state) {
        Fixture *f = *state;
        _cleanup_repo_ OstreeRepo *local = NULL;
        _cleanup_free_ char *url = NULL;
        PullResult r;

        REQUIRE_ROOT();
        local = open_local(f);
        /* A local mirror: no HTTP at all, and still verified. */
        assert_true(asprintf(&url, "file://%s", f->server_repo) > 0);
        assert_int_equal(local_repo_pull(local, url, f->c1, STAGED_REF, &(FetchOptions) {}, NULL, NULL, &r), 0);
        assert_commit_complete(local, f->c1);
        assert_int_equal(http_server_requests(f->server), 0);
}

static void test_pull_https_with_ca_file(void **state) {
        Fixture *f = *state;
        _cleanup_repo_ OstreeRepo *local = NULL;
        _cleanup_http_server_ HttpServer *tls = NULL;
        _cleanup_free_ char *cert = NULL, *key = NULL, *url = NULL, *out = NULL;
        PullResult r;

        REQUIRE_ROOT();
        if (!http_server_make_certificate(f->dir, &cert, &key))
                skip();
        assert_int_equal(http_server_start(f->www, cert, key, &tls), 0);
        url = http_server_url(tls, "/repo");
        local = open_local(f);

        out = pull_expect_error(local, url, f->c1, &(FetchOptions) {}, -EKEYREJECTED);
        assert_log(out, "TLS certificate is not trusted");
        /* The CA reaches libostree's own fetcher too (tls-ca-path). */
        FetchOptions o = { .ca_file = cert };
        assert_int_equal(local_repo_pull(local, url, f->c1, STAGED_REF, &o, NULL, NULL, &r), 0);
        assert_commit_complete(local, f->c1);
        assert_true(r.bytes_transferred > BIG_FILE_SIZE);
}

/* Makes the innermost mount holding DIR (and those below it) private, so that mounts on DIR stay
 * in our namespace. Not simply "/": in a chroot (the devroot) that is not a mount point. */
static int make_mounts_private(const char *dir) {
        _cleanup_free_ char *p = strdup(dir);

        assert_non_null(p);
        for (;;) {
                if (mount(NULL, p, NULL, MS_REC | MS_PRIVATE, NULL) >= 0)
                        return 0;
                if (errno != EINVAL) /* EINVAL: not a mount point */
                        return -errno;
                char *slash = strrchr(p, '/');
                if (!slash || streq(p, "/"))
                        return -EINVAL;
                slash[slash == p ? 1 : 0] = 0;
        }
}

/* The test binary run again as a child (exec, as mount namespaces and GLib's threads do not mix
 * with fork()): pulls COMMIT from URL into DIR/repo, on a 2 MiB tmpfs mounted on DIR in a mount
 * namespace of its own if TMPFS is "tmpfs". Exits with the errno of the pull. */
static int pull_child(const char *url, const char *commit, const char *dir, const char *tmpfs) {
        _cleanup_free_ char *path = path_join2(dir, "repo");
        OstreeRepo *local = NULL;
        int r;

        if (streq(tmpfs, "tmpfs") &&
            (unshare(CLONE_NEWNS) < 0 || (errno = -make_mounts_private(dir)) != 0 ||
             mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=2m,mode=0755") < 0)) {
                fprintf(stderr, "Cannot mount a tmpfs: %m\n");
                return CHILD_NO_TMPFS;
        }
        log_set_target(LOG_TARGET_CONSOLE);
        r = local_repo_open(path, &local);
        if (r >= 0)
                r = local_repo_pull(local, url, commit, STAGED_REF, &http_ok, NULL, NULL, NULL);
        image_repo_unref(local);
        return MIN(-r, CHILD_NO_TMPFS - 1);
}

/* Starts pull_child() with its stderr going to LOG_PATH. */
static pid_t spawn_pull_child(const char *url, const char *commit, const char *dir, bool tmpfs, const char *log_path) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
                        _exit(CHILD_NO_TMPFS - 1);
                execl("/proc/self/exe", "test-pull", PULL_CHILD, url, commit, dir, tmpfs ? "tmpfs" : "plain",
                      (char *) NULL);
                _exit(CHILD_NO_TMPFS - 1);
        }
        return pid;
}

static void test_pull_disk_full(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *mnt = path_join2(f->dir, "small-var"), *log_path = path_join2(f->dir, "child.log"),
                            *out = NULL;
        int status;

        REQUIRE_ROOT();
        /* A release bigger than the file system. */
        write_random_file(f->tree, "usr/lib/libhuge.so", HUGE_FILE_SIZE, 9);
        _cleanup_free_ char *c2 = commit_release(f, "2.0");
        assert_int_equal(image_repo_update_summary(f->repo), 0);
        assert_int_equal(mkdir(mnt, 0755), 0);

        pid_t pid = spawn_pull_child(f->repo_url, c2, mnt, true, log_path);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(read_file_limited(log_path, 1U << 20, &out, NULL), 0);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) == CHILD_NO_TMPFS) {
                print_message("skipped, no tmpfs: %s", out);
                skip(); /* no CAP_SYS_ADMIN here: not faked */
        }
        if (WEXITSTATUS(status) != ENOSPC)
                fail_msg("the child did not get -ENOSPC but %d; its log: %s", -WEXITSTATUS(status), out);
        print_message("%s", out);
        assert_log(out, "is full");
        assert_log(out, mnt);
}

static char *biggest_filez;
static uint64_t biggest_size;
static unsigned n_filez;

static int find_biggest_filez(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (flag != FTW_F || !endswith(path, ".filez"))
                return 0;
        n_filez++;
        if ((uint64_t) st->st_size > biggest_size) {
                biggest_size = (uint64_t) st->st_size;
                free(biggest_filez);
                biggest_filez = strdup(strstr(path, "/objects/"));
        }
        return 0;
}

static bool wait_for_complete_objects(HttpServer *s, unsigned n) {
        for (unsigned i = 0; i < 200; i++) {
                _cleanup_strv_free_ char **complete = http_server_paths(s, true);
                unsigned k = 0;
                STRV_FOREACH(p, complete)
                        if (strstr(*p, ".filez"))
                                k++;
                if (k >= n)
                        return true;
                usleep(50 * 1000);
        }
        return false;
}

/* Cancelling a stage kills the worker process: the repository stays consistent and the next
 * pull (a new process, the same boot) reuses what the killed one had downloaded. */
static void test_pull_killed_then_resumed(void **state) {
        Fixture *f = *state;
        _cleanup_repo_ OstreeRepo *local = NULL;
        _cleanup_free_ char *log_path = path_join2(f->dir, "child.log"), *var = path_join2(f->dir, "var/lib/dreamlink"),
                            *objects = path_join2(f->server_repo, "objects"), *big = NULL;
        PullResult r;
        int status;

        REQUIRE_ROOT();
        biggest_size = n_filez = 0;
        assert_int_equal(nftw(objects, find_biggest_filez, 16, FTW_PHYS), 0);
        big = TAKE_PTR(biggest_filez);
        assert_true(biggest_size > BIG_FILE_SIZE);

        /* The big file object hangs after 64 KiB; the others arrive. */
        http_server_set_faults(f->server, &(HttpFaults) {
                .match = big, .stall = true, .stall_after = 64U * 1024U, .stall_usec = 60 * USEC_PER_SEC });
        assert_int_equal(mkdir_p(var, 0755), 0);
        pid_t pid = spawn_pull_child(f->repo_url, f->c1, var, false, log_path);
        assert_true(wait_for_complete_objects(f->server, n_filez - 1));
        usleep(500 * 1000); /* for the child to store what it received */
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        _cleanup_strv_free_ char **complete = http_server_paths(f->server, true);

        /* Consistent: the commit is not there, nothing points at it. */
        http_server_set_faults(f->server, NULL); /* also ends the stall */
        local = open_local(f);
        gboolean has = TRUE;
        assert_true(ostree_repo_has_object(local, OSTREE_OBJECT_TYPE_COMMIT, f->c1, &has, NULL, NULL));
        assert_false(has);
        _cleanup_free_ char *none = resolve(local, STAGED_REF);
        assert_null(none);

        /* The re-run fetches only the big object's file again. */
        http_server_reset_stats(f->server);
        assert_int_equal(local_repo_pull(local, f->repo_url, f->c1, STAGED_REF, &http_ok, NULL, NULL, &r), 0);
        assert_commit_complete(local, f->c1);
        _cleanup_strv_free_ char **second = http_server_paths(f->server, false);
        STRV_FOREACH(p, second)
                if (strstr(*p, ".filez") && !endswith(*p, big))
                        fail_msg("%s was fetched again", *p);
        print_message("killed mid-pull after %u of %u file objects; the re-run downloaded %" PRIu64 " bytes (the big "
                      "object: %" PRIu64 ")\n", n_filez - 1, n_filez, r.bytes_transferred, biggest_size);
        assert_true(r.bytes_transferred < biggest_size + 64U * 1024U);
}

int main(int argc, char *argv[]) {
        if (argc == 6 && streq(argv[1], PULL_CHILD))
                return pull_child(argv[2], argv[3], argv[4], argv[5]);

        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_local_repo_open, setup, teardown),
                cmocka_unit_test_setup_teardown(test_local_repo_open_root_only, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prune_keeps_only_the_slots, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pull_full_then_delta, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pull_unknown_commit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pull_refuses_http_unless_allowed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pull_server_down, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pull_interrupted_then_resumed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pull_corrupt_object, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pull_size_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pull_endless_object, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pull_trickle_wall_clock, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pull_stall_no_data, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pull_file_url, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pull_https_with_ca_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pull_disk_full, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pull_killed_then_resumed, setup, teardown),
        };
        return cmocka_run_group_tests_name("pull", tests, NULL, NULL);
}
