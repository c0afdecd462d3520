/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fetch_url() and fetch_channel_manifest() against a real HTTP(S) server on the loopback. */
#include <inttypes.h>
#include <time.h>

#include "tests.h"
#include "fetch.h"
#include "http-server.h"
#include "log.h"
#include "manifest.h"

/* The log OUT must contain S; shows the log when not. */
#define assert_log(out, s)                                                              \
        do {                                                                            \
                if (!strstr((out), (s)))                                                \
                        fail_msg("log lacks \"%s\": %s", (s), (out));                  \
        } while (0)

#define BIG_SIZE (256U * 1024U)
#define HELLO "Hello, dreamlink!\n"

typedef struct Fixture {
        char *dir;  /* the temporary directory, holding: */
        char *www;  /* www/: what the server serves */
        HttpServer *server;
} Fixture;

static void write_bytes(const char *dir, const char *name, const void *data, size_t size) {
        _cleanup_free_ char *p = path_join2(dir, name);
        assert_int_equal(write_file_atomic(p, data, size, 0644), 0);
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        _cleanup_free_ char *big = random_bytes(BIG_SIZE, 7);

        log_set_target(LOG_TARGET_CONSOLE);
        assert_int_equal(tmpdir_setup((void **) &f->dir), 0);
        f->www = path_join2(f->dir, "www");
        assert_int_equal(mkdir_p(f->www, 0755), 0);
        write_test_file(f->www, "hello.txt", HELLO);
        write_bytes(f->www, "big.bin", big, BIG_SIZE);
        write_bytes(f->www, "empty", "", 0);
        assert_int_equal(http_server_start(f->www, NULL, NULL, &f->server), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        http_server_stop(f->server);
        tmpdir_teardown((void **) &f->dir);
        free(f->www);
        free(f);
        return 0;
}

static const FetchOptions http_ok = { .allow_http = true, .max_size = 1U << 20 };

/* What a fetch logged, with its result. */
typedef struct Call {
        const char *url;
        const FetchOptions *o;
        int r;
        char *data;
        size_t size;
} Call;

static void do_fetch(void *userdata) {
        Call *c = userdata;
        c->r = fetch_url(c->url, c->o, &c->data, &c->size);
}

/* Fetches URL with O, expecting R; returns the log output, which must name the URL on failure. */
static char *fetch_expect(const char *url, const FetchOptions *o, int r) {
        Call c = { .url = url, .o = o, .data = NULL };
        char *out = capture_stderr(do_fetch, &c);
        if (c.r != r)
                fail_msg("fetch_url(%s) = %d (%s), expected %d; log: %s", url, c.r, strerror(-c.r), r, out);
        if (r < 0) {
                assert_null(c.data);
                assert_log(out, url);
                /* One line per failure, logged where it happens. */
                assert_non_null(strchr(out, '\n'));
                assert_null(strchr(strchr(out, '\n') + 1, '\n'));
        }
        free(c.data);
        return out;
}

static void test_fetch_good(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *url = http_server_url(f->server, "/hello.txt"),
                            *big_url = http_server_url(f->server, "big.bin"),
                            *empty_url = http_server_url(f->server, "/empty"), *data = NULL, *big = NULL,
                            *empty = NULL, *expected = random_bytes(BIG_SIZE, 7);
        size_t size;

        assert_int_equal(fetch_url(url, &http_ok, &data, &size), 0);
        assert_int_equal(size, strlen(HELLO));
        assert_string_equal(data, HELLO); /* NUL-terminated */

        assert_int_equal(fetch_url(big_url, &http_ok, &big, &size), 0);
        assert_int_equal(size, BIG_SIZE);
        assert_memory_equal(big, expected, BIG_SIZE);

        assert_int_equal(fetch_url(empty_url, &http_ok, &empty, NULL), 0);
        assert_string_equal(empty, "");

        assert_int_equal(http_server_requests(f->server), 3);
        assert_true(http_server_bytes_sent(f->server) == strlen(HELLO) + BIG_SIZE);
}

static void test_fetch_http_refused_unless_allowed(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *url = http_server_url(f->server, "/hello.txt"), *out = NULL, *out2 = NULL;
        FetchOptions o = http_ok;

        o.allow_http = false;
        out = fetch_expect(url, &o, -EPROTONOSUPPORT);
        assert_log(out, "plain HTTP is not allowed");
        assert_int_equal(http_server_requests(f->server), 0); /* refused before connecting */

        /* Upper case is still http; other schemes are never fetched. */
        _cleanup_free_ char *upper = strdup(url);
        memcpy(upper, "HTTP", 4);
        free(fetch_expect(upper, &o, -EPROTONOSUPPORT));
        out2 = fetch_expect("ftp://127.0.0.1/hello.txt", &http_ok, -EPROTONOSUPPORT);
        assert_log(out2, "only https://, http:// and file://");
        free(fetch_expect("/etc/hostname", &http_ok, -EPROTONOSUPPORT));
        assert_int_equal(http_server_requests(f->server), 0);

        o.allow_http = true;
        free(fetch_expect(url, &o, 0));
        free(fetch_expect(upper, &o, 0));
        assert_int_equal(http_server_requests(f->server), 2);
}

static void test_fetch_file_url(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *url = NULL, *missing = NULL, *data = NULL, *out = NULL;
        FetchOptions o = { .max_size = 1024 }; /* no HTTP needed for file:// */

        assert_true(asprintf(&url, "file://%s/hello.txt", f->www) > 0);
        assert_int_equal(fetch_url(url, &o, &data, NULL), 0);
        assert_string_equal(data, HELLO);

        assert_true(asprintf(&missing, "file://%s/missing.txt", f->www) > 0);
        out = fetch_expect(missing, &o, -ENOENT);
        assert_log(out, "no such file");

        /* The size limit holds for local files too. */
        _cleanup_free_ char *big = NULL;
        assert_true(asprintf(&big, "file://%s/big.bin", f->www) > 0);
        free(fetch_expect(big, &o, -EFBIG));
}

static void test_fetch_404(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *url = http_server_url(f->server, "/no/such/file"), *out = NULL;

        out = fetch_expect(url, &http_ok, -ENOENT);
        assert_log(out, "not found on the server (HTTP 404)");
}

static void test_fetch_server_error(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *url = http_server_url(f->server, "/hello.txt"), *out = NULL, *out2 = NULL;

        http_server_set_faults(f->server, &(HttpFaults) { .status = 500 });
        out = fetch_expect(url, &http_ok, -EREMOTEIO);
        assert_log(out, "HTTP 500");
        http_server_set_faults(f->server, &(HttpFaults) { .status = 403 });
        out2 = fetch_expect(url, &http_ok, -EREMOTEIO);
        assert_log(out2, "HTTP 403");
        /* Error bodies are not taken for content. */
        assert_true(http_server_bytes_sent(f->server) == 0);
}

static void test_fetch_server_down(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *url = http_server_url(f->server, "/hello.txt"), *out = NULL;

        /* Nobody listens on the port once the server is gone. */
        http_server_stop(f->server);
        f->server = NULL;
        out = fetch_expect(url, &http_ok, -ECONNREFUSED);
        assert_log(out, "Connection refused");
}

static void test_fetch_unresolvable_host(void **state) {
        _cleanup_free_ char *out = NULL;
        FetchOptions o = http_ok;

        /* .invalid never resolves (RFC 6761); without any DNS it fails as fast. */
        o.timeout = 5 * USEC_PER_SEC;
        out = fetch_expect("http://dreamlink-test.invalid/hello.txt", &o, -ENXIO);
        assert_log(out, "cannot resolve the host name");
}

static void test_fetch_truncated(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *url = http_server_url(f->server, "/big.bin"), *out = NULL;

        http_server_set_faults(f->server, &(HttpFaults) { .truncate = true, .truncate_after = 1000 });
        out = fetch_expect(url, &http_ok, -EPIPE);
        assert_log(out, "closed after 1000 of 262144 bytes");
        assert_true(http_server_bytes_sent(f->server) == 1000);
}

static void test_fetch_too_large(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *url = http_server_url(f->server, "/big.bin"), *out = NULL, *out2 = NULL, *data = NULL;
        FetchOptions o = http_ok;

        /* Announced by Content-Length: refused before the body. */
        o.max_size = BIG_SIZE - 1;
        out = fetch_expect(url, &o, -EFBIG);
        assert_log(out, "262144 bytes, the limit is 262143");

        /* Exactly the limit is fine. */
        o.max_size = BIG_SIZE;
        assert_int_equal(fetch_url(url, &o, &data, NULL), 0);

        /* Without a length (chunked): counted while receiving, stopped once over. */
        http_server_set_faults(f->server, &(HttpFaults) { .chunked = true });
        http_server_reset_stats(f->server);
        o.max_size = 64U * 1024U;
        out2 = fetch_expect(url, &o, -EFBIG);
        assert_log(out2, "larger than the limit of 65536 bytes");
        /* The chunked path works when within the limit. */
        o.max_size = BIG_SIZE;
        free(fetch_expect(url, &o, 0));
}

static void test_fetch_stall_times_out(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *url = http_server_url(f->server, "/big.bin"), *out = NULL;
        FetchOptions o = http_ok;
        struct timespec a, b;

        /* 1000 bytes, then silence for longer than the test may take. */
        http_server_set_faults(f->server, &(HttpFaults) {
                .stall = true, .stall_after = 1000, .stall_usec = 20 * USEC_PER_SEC });
        o.stall_timeout = 1 * USEC_PER_SEC;
        clock_gettime(CLOCK_MONOTONIC, &a);
        out = fetch_expect(url, &o, -ETIMEDOUT);
        clock_gettime(CLOCK_MONOTONIC, &b);
        print_message("stalled transfer given up after %.1f s\n",
                      (double) (b.tv_sec - a.tv_sec) + (double) (b.tv_nsec - a.tv_nsec) / 1e9);
        assert_true(b.tv_sec - a.tv_sec < 10);
        assert_log(out, "no data for 1.0s (less than 1024 bytes a second)");
}

/* A body that never ends, with no length announced: stopped at the limit. */
static void test_fetch_endless_body(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *url = http_server_url(f->server, "/big.bin"), *out = NULL, *out2 = NULL;
        FetchOptions o = http_ok;

        http_server_set_faults(f->server, &(HttpFaults) { .endless = true });
        o.max_size = 1U << 20;
        out = fetch_expect(url, &o, -EFBIG);
        assert_log(out, "larger than the limit of 1048576 bytes");
        http_server_set_faults(f->server, &(HttpFaults) { .endless = true, .chunked = true });
        out2 = fetch_expect(url, &o, -EFBIG);
        assert_log(out2, "larger than the limit of 1048576 bytes");
}

/* Slow retrieval: a body trickling in forever above the stall speed ends at the deadline. */
static void test_fetch_trickle_wall_clock(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *url = http_server_url(f->server, "/big.bin"), *out = NULL, *out2 = NULL;
        FetchOptions o = http_ok;

        http_server_set_faults(f->server, &(HttpFaults) { .endless = true, .trickle_bps = 1200 });
        o.max_size = 0;
        o.time_limit = 1 * USEC_PER_SEC;
        o.deadline = now_usec(CLOCK_MONOTONIC) + o.time_limit;
        out = fetch_expect(url, &o, -ETIMEDOUT);
        assert_log(out, "exceeded its wall-clock limit of 1.0s (DownloadTimeout=)");

        /* Once past it, nothing is asked for. */
        http_server_reset_stats(f->server);
        out2 = fetch_expect(url, &o, -ETIMEDOUT);
        assert_log(out2, "wall-clock limit of 1.0s");
        assert_int_equal(http_server_requests(f->server), 0);
}

static void test_fetch_redirects_stay_within_policy(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *url = http_server_url(f->server, "/moved"), *target = http_server_url(f->server, "/hello.txt"),
                            *file_target = NULL, *data = NULL, *out = NULL;

        /* Within HTTP: followed. */
        http_server_set_faults(f->server, &(HttpFaults) { .match = "/moved", .redirect = target });
        assert_int_equal(fetch_url(url, &http_ok, &data, NULL), 0);
        assert_string_equal(data, HELLO);

        /* A server must not make us read a local file. */
        assert_true(asprintf(&file_target, "file://%s/hello.txt", f->www) > 0);
        http_server_set_faults(f->server, &(HttpFaults) { .match = "/moved", .redirect = file_target });
        out = fetch_expect(url, &http_ok, -EPROTONOSUPPORT);
        assert_log(out, "redirects to a protocol that is not allowed");
}

static void test_fetch_tls_trust(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *cert = NULL, *key = NULL, *url = NULL, *data = NULL, *out = NULL, *out2 = NULL,
                            *other_cert = NULL, *other_key = NULL, *other_dir = path_join2(f->dir, "other"),
                            *out3 = NULL, *missing = path_join2(f->dir, "missing.pem"), *redirect = NULL;
        _cleanup_http_server_ HttpServer *tls = NULL;

        if (!http_server_make_certificate(f->dir, &cert, &key))
                skip(); /* no openssl tool */
        assert_int_equal(http_server_start(f->www, cert, key, &tls), 0);
        url = http_server_url(tls, "/hello.txt");

        /* Not signed by a system CA. */
        FetchOptions o = { .max_size = 1024 };
        out = fetch_expect(url, &o, -EKEYREJECTED);
        assert_log(out, "TLS certificate is not trusted");

        /* Trusted with its CA; https needs no allow_http. */
        o.ca_file = cert;
        assert_int_equal(fetch_url(url, &o, &data, NULL), 0);
        assert_string_equal(data, HELLO);

        /* Only the given bundle counts: another CA does not vouch for this server. */
        assert_int_equal(mkdir(other_dir, 0755), 0);
        assert_true(http_server_make_certificate(other_dir, &other_cert, &other_key));
        o.ca_file = other_cert;
        out2 = fetch_expect(url, &o, -EKEYREJECTED);

        o.ca_file = missing;
        out3 = fetch_expect(url, &o, -ENOKEY);
        assert_log(out3, "cannot load the CA bundle");

        /* No downgrade: https redirecting to plain http is refused without allow_http. */
        o.ca_file = cert;
        redirect = http_server_url(f->server, "/hello.txt");
        http_server_set_faults(tls, &(HttpFaults) { .match = "/hello.txt", .redirect = redirect });
        free(fetch_expect(url, &o, -EPROTONOSUPPORT));
        assert_int_equal(http_server_requests(f->server), 0);
}

typedef struct Release {
        EVP_PKEY *key;
        Keyring keyring;
        ManifestPolicy policy;
} Release;

/* Publishes a signed manifest for CHANNEL under www/channels/, as dreamlink-image publish does. */
static void publish(Fixture *f, Release *rel, const char *channel) {
        char id[KEY_ID_LENGTH + 1];
        _cleanup_free_ char *text = NULL, *sig = NULL, *pub = path_join2(f->dir, "release.pem"),
                            *channels = path_join2(f->www, "channels"), *name = NULL, *sig_name = NULL;

        assert_int_equal(ed25519_generate(&rel->key), 0);
        assert_int_equal(key_get_id(rel->key, id), 0);
        assert_int_equal(key_save_public(rel->key, pub), 0);
        assert_int_equal(keyring_add_file(&rel->keyring, pub), 0);

        Manifest m = {
                .os = (char *) "dreamlink-test",
                .channel = (char *) channel,
                .version = (char *) "2",
                .counter = 2,
                .ref = (char *) "dreamlink/test/x86_64/stable",
                .commit = (char *) "5e8f1c0a9b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f",
                .kernel = (char *) "6.1.0-test",
                .issued = now_usec(CLOCK_REALTIME) - USEC_PER_HOUR,
                .expires = now_usec(CLOCK_REALTIME) + USEC_PER_DAY,
                .key_id = id,
                .tree_size = 1234,
        };
        assert_int_equal(manifest_format(&m, &text), 0);
        assert_int_equal(manifest_sign(text, strlen(text), rel->key, &sig), 0);
        assert_int_equal(mkdir_p(channels, 0755), 0);
        assert_true(asprintf(&name, "%s.json", channel) > 0);
        assert_true(asprintf(&sig_name, "%s.json.sig", channel) > 0);
        write_test_file(channels, name, text);
        write_test_file(channels, sig_name, sig);
        rel->policy = (ManifestPolicy) { .now = now_usec(CLOCK_REALTIME), .os = "dreamlink-test", .channel = channel };
}

static void release_done(Release *rel) {
        EVP_PKEY_free(rel->key);
        keyring_done(&rel->keyring);
}

static void test_channel_manifest_fetched_and_verified(void **state) {
        Fixture *f = *state;
        _cleanup_(release_done) Release rel = {};
        _cleanup_free_ char *server = http_server_url(f->server, "/"), *manifest = NULL, *sig = NULL;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        size_t manifest_size, sig_size;

        publish(f, &rel, "stable");
        /* The server URL with a trailing slash names the same server. */
        assert_int_equal(fetch_channel_manifest(server, "stable", &http_ok, &manifest, &manifest_size, &sig, &sig_size), 0);
        assert_int_equal(manifest_size, strlen(manifest));
        assert_int_equal(manifest_verify(manifest, manifest_size, sig, sig_size, &rel.keyring, &rel.policy, &m), 0);
        assert_string_equal(m->version, "2");
        assert_string_equal(m->channel, "stable");

        _cleanup_strv_free_ char **paths = http_server_paths(f->server, true);
        assert_int_equal(strv_length(paths), 2);
        assert_string_equal(paths[0], "/channels/stable.json");
        assert_string_equal(paths[1], "/channels/stable.json.sig");
}

static void test_channel_manifest_tampered_or_missing(void **state) {
        Fixture *f = *state;
        _cleanup_(release_done) Release rel = {};
        _cleanup_free_ char *server = http_server_url(f->server, ""), *manifest = NULL, *sig = NULL,
                            *channels = path_join2(f->www, "channels");
        Manifest *m = NULL;
        size_t manifest_size, sig_size;

        publish(f, &rel, "stable");
        /* A server (or someone between) changes the commit: fetched fine, refused by the check. */
        _cleanup_free_ char *path = path_join2(channels, "stable.json"), *text = NULL;
        assert_int_equal(read_file_limited(path, MANIFEST_SIZE_MAX, &text, NULL), 0);
        char *c = strstr(text, "5e8f1c0a");
        assert_non_null(c);
        c[0] = '6';
        write_test_file(channels, "stable.json", text);
        assert_int_equal(fetch_channel_manifest(server, "stable", &http_ok, &manifest, &manifest_size, &sig, &sig_size), 0);
        log_set_max_level(LOG_EMERG);
        assert_int_equal(manifest_verify(manifest, manifest_size, sig, sig_size, &rel.keyring, &rel.policy, &m),
                         -EKEYREJECTED);
        log_set_max_level(LOG_INFO);
        assert_null(m);

        /* An unknown channel, or a manifest without its signature. */
        char *x = NULL, *y = NULL;
        assert_int_equal(fetch_channel_manifest(server, "beta", &http_ok, &x, NULL, &y, NULL), -ENOENT);
        _cleanup_free_ char *sig_path = path_join2(channels, "stable.json.sig");
        assert_int_equal(unlink(sig_path), 0);
        assert_int_equal(fetch_channel_manifest(server, "stable", &http_ok, &x, NULL, &y, NULL), -ENOENT);
        assert_null(x);
        assert_null(y);

        /* A channel is a plain name, never a path. */
        assert_int_equal(fetch_channel_manifest(server, "../stable", &http_ok, &x, NULL, &y, NULL), -EINVAL);
        assert_int_equal(fetch_channel_manifest(server, "sta ble", &http_ok, &x, NULL, &y, NULL), -EINVAL);
}

static void test_channel_manifest_oversized(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *server = http_server_url(f->server, ""), *huge = random_bytes(MANIFEST_SIZE_MAX + 1, 3),
                            *channels = path_join2(f->www, "channels");
        char *x = NULL, *y = NULL;

        assert_int_equal(mkdir_p(channels, 0755), 0);
        write_bytes(channels, "stable.json", huge, MANIFEST_SIZE_MAX + 1);
        write_test_file(channels, "stable.json.sig", "{}\n");
        /* Even when the caller allows more, a manifest is at most MANIFEST_SIZE_MAX. */
        FetchOptions o = http_ok;
        o.max_size = 0;
        assert_int_equal(fetch_channel_manifest(server, "stable", &o, &x, NULL, &y, NULL), -EFBIG);
        write_bytes(channels, "stable.json", huge, MANIFEST_SIZE_MAX);
        write_bytes(channels, "stable.json.sig", huge, SIGNATURE_SIZE_MAX + 1);
        assert_int_equal(fetch_channel_manifest(server, "stable", &o, &x, NULL, &y, NULL), -EFBIG);
        assert_null(x);
        assert_null(y);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_fetch_good, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fetch_http_refused_unless_allowed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fetch_file_url, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fetch_404, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fetch_server_error, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fetch_server_down, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fetch_unresolvable_host, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fetch_truncated, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fetch_too_large, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fetch_stall_times_out, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fetch_endless_body, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fetch_trickle_wall_clock, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fetch_redirects_stay_within_policy, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fetch_tls_trust, setup, teardown),
                cmocka_unit_test_setup_teardown(test_channel_manifest_fetched_and_verified, setup, teardown),
                cmocka_unit_test_setup_teardown(test_channel_manifest_tampered_or_missing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_channel_manifest_oversized, setup, teardown),
        };
        return cmocka_run_group_tests_name("fetch", tests, NULL, NULL);
}
