/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tests.h"
#include "log.h"
#include "manifest.h"

#define COMMIT_V2 "5e8f1c0a9b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f"
#define COMMIT_V1 "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define NOW (1795455415ULL * USEC_PER_SEC)

typedef struct Fixture {
        char *dir;
        EVP_PKEY *key, *other_key;
        Keyring keyring; /* trusts key only */
        char key_id[KEY_ID_LENGTH + 1];
        char *text, *signature;
        ManifestPolicy policy;
} Fixture;

static void fixture_manifest(Fixture *f, void (*modify)(Manifest *m), EVP_PKEY *signer) {
        ManifestDelta delta = { .from_commit = (char *) COMMIT_V1, .size = 123456 };
        Manifest m = {
                .os = (char *) "dreamlink-demo",
                .channel = (char *) "stable",
                .version = (char *) "2",
                .counter = 2,
                .ref = (char *) "dreamlink/demo/x86_64/stable",
                .commit = (char *) COMMIT_V2,
                .kernel = (char *) "7.3.4+bpo-amd64",
                .min_from_version = (char *) "1",
                .issued = NOW - USEC_PER_HOUR,
                .expires = NOW + 14 * USEC_PER_DAY,
                .key_id = f->key_id,
                .tree_size = 512ULL << 20,
                .deltas = &delta,
                .n_deltas = 1,
        };
        if (modify)
                modify(&m);
        free(f->text);
        free(f->signature);
        assert_int_equal(manifest_format(&m, &f->text), 0);
        assert_int_equal(manifest_sign(f->text, strlen(f->text), signer ?: f->key, &f->signature), 0);
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        _cleanup_free_ char *pub = NULL;

        log_set_target(LOG_TARGET_CONSOLE);
        log_set_max_level(LOG_EMERG); /* refusals are expected; tests check the codes */
        assert_int_equal(tmpdir_setup((void **) &f->dir), 0);
        assert_int_equal(ed25519_generate(&f->key), 0);
        assert_int_equal(ed25519_generate(&f->other_key), 0);
        assert_int_equal(key_get_id(f->key, f->key_id), 0);
        pub = path_join2(f->dir, "release.pem");
        assert_int_equal(key_save_public(f->key, pub), 0);
        const char * const dirs[] = { f->dir, NULL };
        assert_int_equal(keyring_load_dirs(&f->keyring, dirs), 0);
        assert_int_equal(f->keyring.n_keys, 1);
        f->policy = (ManifestPolicy) {
                .now = NOW, .os = "dreamlink-demo", .channel = "stable", .min_counter = 1, .booted_version = "1",
        };
        fixture_manifest(f, NULL, NULL);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        keyring_done(&f->keyring);
        EVP_PKEY_free(f->key);
        EVP_PKEY_free(f->other_key);
        free(f->text);
        free(f->signature);
        void *d = f->dir;
        tmpdir_teardown(&d);
        free(f);
        return 0;
}

static int verify(Fixture *f, const char *text, size_t size, const char *sig, size_t sig_size) {
        Manifest *m = NULL;
        int r = manifest_verify(text, size, sig, sig_size, &f->keyring, &f->policy, &m);
        if (r >= 0)
                manifest_free(m);
        else
                assert_null(m);
        return r;
}

static int verify_fixture(Fixture *f) {
        return verify(f, f->text, strlen(f->text), f->signature, strlen(f->signature));
}

static void test_good_manifest(void **state) {
        Fixture *f = *state;
        _cleanup_(manifest_freep) Manifest *m = NULL;

        assert_int_equal(manifest_verify(f->text, strlen(f->text), f->signature, strlen(f->signature),
                                         &f->keyring, &f->policy, &m), 0);
        assert_string_equal(m->version, "2");
        assert_string_equal(m->commit, COMMIT_V2);
        assert_string_equal(m->kernel, "7.3.4+bpo-amd64");
        assert_string_equal(m->ref, "dreamlink/demo/x86_64/stable");
        assert_true(m->counter == 2);
        assert_true(m->expires == NOW + 14 * USEC_PER_DAY);
        assert_true(m->tree_size == 512ULL << 20);
        assert_int_equal(m->n_deltas, 1);
        assert_string_equal(m->deltas[0].from_commit, COMMIT_V1);
        assert_true(m->deltas[0].size == 123456);
}

static void test_canonical_form(void **state) {
        Fixture *f = *state;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        _cleanup_free_ char *again = NULL;

        /* Sorted keys, no whitespace, one trailing newline. */
        assert_non_null(startswith(f->text, "{\"channel\":\"stable\",\"commit\":\""));
        assert_null(strchr(f->text, ' '));
        assert_int_equal(strchr(f->text, '\n') - f->text, (long) strlen(f->text) - 1);
        /* Parsing and formatting again gives the same bytes. */
        assert_int_equal(manifest_parse(f->text, strlen(f->text), &m), 0);
        assert_int_equal(manifest_format(m, &again), 0);
        assert_string_equal(again, f->text);
}

static void test_canonical_ignores_input_layout(void **state) {
        Fixture *f = *state;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        _cleanup_free_ char *canonical = NULL;
        /* The same content, keys shuffled and pretty-printed. */
#define MESSY \
                "{\n  \"version\" : \"2\",\n  \"sizes\": {\"deltas\": [{\"size\": 123456, \"from\": \"" COMMIT_V1 "\"}], \"tree\": 536870912},\n" \
                "  \"os\": \"dreamlink-demo\", \"key_id\": \"%s\", \"kernel\": \"7.3.4+bpo-amd64\",\n" \
                "  \"expires\": \"2026-12-07T17:36:55Z\", \"issued\": \"2026-11-23T16:36:55Z\", \"min_from_version\": \"1\",\n" \
                "  \"ref\": \"dreamlink/demo/x86_64/stable\", \"format\": 1, \"counter\": 2, \"commit\": \"" COMMIT_V2 "\", \"channel\": \"stable\"\n}\n"
        /* end of MESSY */
        _cleanup_free_ char *text = NULL;
        assert_true(asprintf(&text, MESSY, f->key_id) > 0);
        assert_int_equal(manifest_parse(text, strlen(text), &m), 0);
        assert_int_equal(manifest_format(m, &canonical), 0);
        assert_string_equal(canonical, f->text);
}

static void test_tampered_byte(void **state) {
        Fixture *f = *state;
        size_t n = strlen(f->text);

        /* Any single changed byte, anywhere, is refused. */
        for (size_t i = 0; i < n; i += 3) {
                _cleanup_free_ char *t = strdup(f->text);
                t[i] ^= 0x01;
                assert_int_equal(verify(f, t, n, f->signature, strlen(f->signature)), -EKEYREJECTED);
        }
}

static void test_tampered_signature(void **state) {
        Fixture *f = *state;
        char *p = strstr(f->signature, "\"signature\":\"") + strlen("\"signature\":\"");
        *p = *p == 'A' ? 'B' : 'A';
        assert_int_equal(verify_fixture(f), -EKEYREJECTED);
}

static void test_wrong_key(void **state) {
        Fixture *f = *state;
        /* Signed by a key nobody trusts: its id is unknown. */
        fixture_manifest(f, NULL, f->other_key);
        assert_int_equal(verify_fixture(f), -ENOKEY);
}

static void test_signature_claims_trusted_key(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *forged = NULL;
        char other_id[KEY_ID_LENGTH + 1];

        /* Signed by another key, with the signature file naming the trusted key's id. */
        fixture_manifest(f, NULL, f->other_key);
        assert_int_equal(key_get_id(f->other_key, other_id), 0);
        forged = strdup(f->signature);
        char *p = strstr(forged, other_id);
        assert_non_null(p);
        memcpy(p, f->key_id, KEY_ID_LENGTH);
        assert_int_equal(verify(f, f->text, strlen(f->text), forged, strlen(forged)), -EKEYREJECTED);
}

static void set_unknown_key_id(Manifest *m) {
        m->key_id = (char *) "00000000000000000000000000000000";
}

static void test_key_id_mismatch_inside_manifest(void **state) {
        Fixture *f = *state;
        fixture_manifest(f, set_unknown_key_id, NULL);
        assert_int_equal(verify_fixture(f), -EKEYREJECTED);
}

static void test_unknown_key_id(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *sig = strdup(f->signature);
        memcpy(strstr(sig, f->key_id), "ffffffffffffffffffffffffffffffff", KEY_ID_LENGTH);
        assert_int_equal(verify(f, f->text, strlen(f->text), sig, strlen(sig)), -ENOKEY);
}

static void test_expired(void **state) {
        Fixture *f = *state;
        f->policy.now = NOW + 14 * USEC_PER_DAY;
        assert_int_equal(verify_fixture(f), -ETIME);
        f->policy.now = NOW + 14 * USEC_PER_DAY - 1;
        assert_int_equal(verify_fixture(f), 0);
}

static void test_counter_rollback(void **state) {
        Fixture *f = *state;
        f->policy.min_counter = 3;
        assert_int_equal(verify_fixture(f), -ESTALE);
        f->policy.min_counter = 2; /* the same release again is not a rollback */
        assert_int_equal(verify_fixture(f), 0);
}

static void set_counter_max(Manifest *m) {
        m->counter = UINT64_MAX;
}

/* Accepted, 2^64-1 would be the floor for good: nothing could be released after it. */
static void test_counter_max_refused(void **state) {
        Fixture *f = *state;
        fixture_manifest(f, set_counter_max, NULL);
        assert_int_equal(verify_fixture(f), -EOVERFLOW);
        assert_non_null(strstr(log_get_last_error(), "release counter 18446744073709551615, the largest there is"));
}

static void set_issued_tomorrow(Manifest *m) {
        m->issued = NOW + USEC_PER_DAY;
        m->expires = NOW + 14 * USEC_PER_DAY;
}

static void set_issued_a_minute_ahead(Manifest *m) {
        m->issued = NOW + USEC_PER_MINUTE;
}

/* Issued in the future: this clock is behind, or the manifest lies; a little skew passes. */
static void test_issued_in_future_refused(void **state) {
        Fixture *f = *state;
        fixture_manifest(f, set_issued_tomorrow, NULL);
        assert_int_equal(verify_fixture(f), -ETIME);
        assert_non_null(strstr(log_get_last_error(), "in the future"));
        fixture_manifest(f, set_issued_a_minute_ahead, NULL);
        assert_int_equal(verify_fixture(f), 0);
}

static void test_min_from_version(void **state) {
        Fixture *f = *state;
        f->policy.booted_version = "0.9";
        assert_int_equal(verify_fixture(f), -ERANGE);
        f->policy.booted_version = "1";
        assert_int_equal(verify_fixture(f), 0);
}

static void test_other_channel_or_os(void **state) {
        Fixture *f = *state;
        f->policy.channel = "beta";
        assert_int_equal(verify_fixture(f), -EXDEV);
        f->policy.channel = "stable";
        f->policy.os = "other-os";
        assert_int_equal(verify_fixture(f), -EXDEV);
}

static void test_truncated_file(void **state) {
        Fixture *f = *state;
        size_t n = strlen(f->text);

        /* A download cut short: the signature covers every byte. */
        for (size_t cut = 0; cut < n; cut += 11)
                assert_int_equal(verify(f, f->text, cut, f->signature, strlen(f->signature)), -EKEYREJECTED);
        assert_int_equal(verify(f, f->text, n, f->signature, strlen(f->signature) / 2), -EBADMSG);
        assert_int_equal(verify(f, f->text, n, f->signature, 0), -EBADMSG);
}

static void test_oversized_file(void **state) {
        Fixture *f = *state;
        size_t n = MANIFEST_SIZE_MAX + 1;
        _cleanup_free_ char *big = malloc(n);

        memset(big, ' ', n);
        memcpy(big, f->text, strlen(f->text));
        assert_int_equal(verify(f, big, n, f->signature, strlen(f->signature)), -EFBIG);
        assert_int_equal(verify(f, f->text, strlen(f->text), big, SIGNATURE_SIZE_MAX + 1), -EFBIG);
}

static void test_signed_but_malformed(void **state) {
        Fixture *f = *state;
        const char *junk = "{\"format\":1,\"os\":\"x\"}\n";
        _cleanup_free_ char *sig = NULL;

        assert_int_equal(manifest_sign(junk, strlen(junk), f->key, &sig), 0);
        assert_int_equal(verify(f, junk, strlen(junk), sig, strlen(sig)), -EBADMSG);
}

static void test_signed_unknown_format(void **state) {
        Fixture *f = *state;
        const char *future = "{\"format\":2,\"whatever\":true}\n";
        _cleanup_free_ char *sig = NULL;

        assert_int_equal(manifest_sign(future, strlen(future), f->key, &sig), 0);
        assert_int_equal(verify(f, future, strlen(future), sig, strlen(sig)), -EPROTONOSUPPORT);
}

static void set_bad_commit(Manifest *m) {
        m->commit = (char *) "../../../etc/shadow";
}

static void set_bad_version(Manifest *m) {
        m->version = (char *) "2/../../x";
}

static void test_invalid_fields_refused(void **state) {
        Fixture *f = *state;
        fixture_manifest(f, set_bad_commit, NULL);
        assert_int_equal(verify_fixture(f), -EBADMSG);
        fixture_manifest(f, set_bad_version, NULL);
        assert_int_equal(verify_fixture(f), -EBADMSG);
}

static void test_key_files(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *priv = path_join2(f->dir, "release.key"), *pub = path_join2(f->dir, "release.pem");
        _cleanup_pkey_ EVP_PKEY *loaded = NULL, *loaded_pub = NULL;
        char id[KEY_ID_LENGTH + 1];
        struct stat st;

        assert_int_equal(key_save_private(f->key, priv), 0);
        assert_int_equal(stat(priv, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(key_load_private(priv, &loaded), 0);
        assert_int_equal(key_get_id(loaded, id), 0);
        assert_string_equal(id, f->key_id);
        /* A private key is not a public key file, and vice versa. */
        assert_int_equal(key_load_public(priv, &loaded_pub), -EINVAL);
        assert_int_equal(key_load_private(pub, &loaded_pub), -EINVAL);
        write_test_file(f->dir, "bad.pem", "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n");
        _cleanup_free_ char *bad = path_join2(f->dir, "bad.pem");
        assert_int_equal(key_load_public(bad, &loaded_pub), -EINVAL);
        assert_null(loaded_pub);
}

static void test_keyring_rotation_and_masking(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *vendor = path_join2(f->dir, "vendor"), *admin = path_join2(f->dir, "admin"),
                            *old = path_join2(f->dir, "vendor/old.pem"), *new = path_join2(f->dir, "vendor/new.pem");
        Keyring k = {};
        char other_id[KEY_ID_LENGTH + 1];

        assert_int_equal(mkdir_p(vendor, 0755), 0);
        assert_int_equal(mkdir_p(admin, 0755), 0);
        assert_int_equal(key_save_public(f->key, old), 0);
        assert_int_equal(key_save_public(f->other_key, new), 0);
        write_test_file(vendor, "junk.pem", "garbage");
        write_test_file(vendor, "README", "not a key");

        const char * const dirs[] = { admin, vendor, NULL };
        assert_int_equal(keyring_load_dirs(&k, dirs), 0);
        assert_int_equal(k.n_keys, 2); /* both keys trusted during a rotation; junk skipped */
        assert_int_equal(key_get_id(f->other_key, other_id), 0);
        assert_non_null(keyring_find(&k, other_id));
        keyring_done(&k);

        /* The admin retires the old key by masking it. */
        write_test_file(admin, "old.pem", "");
        assert_int_equal(keyring_load_dirs(&k, dirs), 0);
        assert_int_equal(k.n_keys, 1);
        assert_null(keyring_find(&k, f->key_id));
        keyring_done(&k);
}

static void test_version_compare(void **state) {
        assert_int_equal(version_compare("2", "10"), -1);
        assert_int_equal(version_compare("1.10", "1.2"), 1);
        assert_int_equal(version_compare("3", "3"), 0);
}

int main(void) {
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(test_good_manifest),
                T(test_canonical_form),
                T(test_canonical_ignores_input_layout),
                T(test_tampered_byte),
                T(test_tampered_signature),
                T(test_wrong_key),
                T(test_signature_claims_trusted_key),
                T(test_key_id_mismatch_inside_manifest),
                T(test_unknown_key_id),
                T(test_expired),
                T(test_counter_rollback),
                T(test_counter_max_refused),
                T(test_issued_in_future_refused),
                T(test_min_from_version),
                T(test_other_channel_or_os),
                T(test_truncated_file),
                T(test_oversized_file),
                T(test_signed_but_malformed),
                T(test_signed_unknown_format),
                T(test_invalid_fields_refused),
                T(test_key_files),
                T(test_keyring_rotation_and_masking),
                T(test_version_compare),
        };
        return cmocka_run_group_tests_name("manifest", tests, NULL, NULL);
}
