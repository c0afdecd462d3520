/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A release manifest and its detached signature, as a mirror serves them: the
 * input is the signature file, FUZZ_SEPARATOR, the manifest. With no signature
 * part the target signs the manifest itself with its test key, so that the
 * checks after the signature (key id, OS, channel, expiry, rollback) see
 * every mutation too, not only the few that keep a signature valid. */
#include <string.h>

#include "fuzz.h"
#include "macro.h"
#include "manifest.h"
#include "sign.h"
#include "string-util.h"

/* A test key and no secret: its id, 897ee3259edba60099f41e464099bfef, is in the corpus's manifests. */
static const char test_key_pem[] =
        "-----BEGIN PRIVATE KEY-----\n"
        "MC4CAQAwBQYDK2VwBCIEIFTSE5gCNZBhMoiTXoZKzsAi0JL7qyV10VLVNtpNBPb7\n"
        "-----END PRIVATE KEY-----\n";

/* 2026-06-01T00:00:00Z: a fixed clock, so that a finding reproduces on any day. */
#define FUZZ_NOW (UINT64_C(1780272000) * USEC_PER_SEC)

static Keyring keyring;
static EVP_PKEY *test_key;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        _cleanup_free_ char *private = NULL, *public = NULL;

        fuzz_setup();
        private = strprintf("%s/test-key.pem", fuzz_tmpdir());
        public = strprintf("%s/test-key.pub", fuzz_tmpdir());
        fuzz_assert(private && public);
        fuzz_write_file(fuzz_tmpdir(), "test-key.pem", test_key_pem, strlen(test_key_pem));
        fuzz_assert(key_load_private(private, &test_key) >= 0);
        fuzz_assert(key_save_public(test_key, public) >= 0);
        fuzz_assert(keyring_add_file(&keyring, public) >= 0);
        return 0;
}

/* Whatever parses is formatted (as dreamlink-image signs it) and parses again to the same bytes. */
static void check_round_trip(const char *text, size_t size) {
        _cleanup_(manifest_freep) Manifest *m = NULL, *again = NULL;
        _cleanup_free_ char *formatted = NULL, *reformatted = NULL;

        if (manifest_parse(text, size, &m) < 0)
                return;
        fuzz_assert(manifest_format(m, &formatted) >= 0);
        fuzz_assert(manifest_parse(formatted, strlen(formatted), &again) >= 0);
        fuzz_assert(manifest_format(again, &reformatted) >= 0);
        fuzz_assert(streq(formatted, reformatted));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const ManifestPolicy policy = {
                .now = FUZZ_NOW,
                .os = "dreamlink",
                .channel = "stable",
                .min_counter = 2,
                .booted_version = "1.0",
        };
        _cleanup_(manifest_freep) Manifest *m = NULL;
        _cleanup_free_ char *own_signature = NULL;
        FuzzPart parts[2];

        size_t n = fuzz_split(data, size, parts, ELEMENTSOF(parts));
        FuzzPart signature = n == 2 ? parts[0] : (FuzzPart) {}, manifest = parts[n - 1];

        check_round_trip(manifest.data, manifest.size);

        if (signature.size == 0) {
                fuzz_assert(manifest_sign(manifest.data, manifest.size, test_key, &own_signature) >= 0);
                signature = (FuzzPart) { own_signature, strlen(own_signature) };
        }
        if (manifest_verify(manifest.data, manifest.size, signature.data, signature.size, &keyring, &policy, &m) >= 0) {
                /* Accepted means: signed by the key it names, for us, current, no rollback. */
                fuzz_assert(keyring_find(&keyring, m->key_id));
                fuzz_assert(streq(m->os, policy.os) && streq(m->channel, policy.channel));
                fuzz_assert(m->expires > policy.now && m->counter >= policy.min_counter);
        }
        return 0;
}
