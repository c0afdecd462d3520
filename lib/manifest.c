/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-json.h>

#include "log.h"
#include "manifest.h"
#include "string-util.h"

Manifest *manifest_free(Manifest *m) {
        if (!m)
                return NULL;
        free(m->os);
        free(m->channel);
        free(m->version);
        free(m->ref);
        free(m->commit);
        free(m->kernel);
        free(m->min_from_version);
        free(m->key_id);
        for (size_t i = 0; i < m->n_deltas; i++)
                free(m->deltas[i].from_commit);
        free(m->deltas);
        free(m);
        return NULL;
}

int version_compare(const char *a, const char *b) {
        int c = strverscmp(a, b);
        return c < 0 ? -1 : c > 0;
}

/* Versions, channels and OS names end up in paths, URLs and boot entry names. */
static bool name_is_valid(const char *s) {
        return filename_is_valid(s) && strlen(s) <= 64 &&
               strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-~+") == strlen(s);
}

int manifest_format(const Manifest *m, char **ret) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL, *deltas = NULL;
        char issued[FORMAT_TIMESTAMP_MAX], expires[FORMAT_TIMESTAMP_MAX];
        int r;

        for (size_t i = 0; i < m->n_deltas; i++) {
                r = sd_json_variant_append_arraybo(&deltas,
                                SD_JSON_BUILD_PAIR_STRING("from", m->deltas[i].from_commit),
                                SD_JSON_BUILD_PAIR_UNSIGNED("size", m->deltas[i].size));
                if (r < 0)
                        return r;
        }
        if (!deltas) {
                r = sd_json_variant_new_array(&deltas, NULL, 0);
                if (r < 0)
                        return r;
        }

        r = sd_json_buildo(&v,
                        SD_JSON_BUILD_PAIR_UNSIGNED("format", MANIFEST_FORMAT_VERSION),
                        SD_JSON_BUILD_PAIR_STRING("os", m->os),
                        SD_JSON_BUILD_PAIR_STRING("channel", m->channel),
                        SD_JSON_BUILD_PAIR_STRING("version", m->version),
                        SD_JSON_BUILD_PAIR_UNSIGNED("counter", m->counter),
                        SD_JSON_BUILD_PAIR_STRING("ref", m->ref),
                        SD_JSON_BUILD_PAIR_STRING("commit", m->commit),
                        SD_JSON_BUILD_PAIR_STRING("kernel", m->kernel),
                        SD_JSON_BUILD_PAIR_CONDITION(!!m->min_from_version, "min_from_version",
                                                     SD_JSON_BUILD_STRING(m->min_from_version)),
                        SD_JSON_BUILD_PAIR_STRING("issued", format_timestamp_utc(issued, sizeof(issued), m->issued)),
                        SD_JSON_BUILD_PAIR_STRING("expires", format_timestamp_utc(expires, sizeof(expires), m->expires)),
                        SD_JSON_BUILD_PAIR_STRING("key_id", m->key_id),
                        SD_JSON_BUILD_PAIR_OBJECT("sizes",
                                SD_JSON_BUILD_PAIR_UNSIGNED("tree", m->tree_size),
                                SD_JSON_BUILD_PAIR_VARIANT("deltas", deltas)));
        if (r < 0)
                return r;

        /* Sorted keys, no whitespace: the same manifest always has the same bytes. */
        r = sd_json_variant_normalize(&v);
        if (r < 0)
                return r;
        r = sd_json_variant_format(v, SD_JSON_FORMAT_NEWLINE, ret);
        return r < 0 ? r : 0;
}

static int dispatch_timestamp(const char *name, sd_json_variant *v, sd_json_dispatch_flags_t flags, void *userdata) {
        if (!sd_json_variant_is_string(v) || parse_timestamp_utc(sd_json_variant_string(v), userdata) < 0)
                return -EBADMSG;
        return 0;
}

static int dispatch_deltas(const char *name, sd_json_variant *v, sd_json_dispatch_flags_t flags, void *userdata) {
        static const sd_json_dispatch_field table[] = {
                { "from", SD_JSON_VARIANT_STRING,   sd_json_dispatch_string, offsetof(ManifestDelta, from_commit), SD_JSON_MANDATORY },
                { "size", SD_JSON_VARIANT_UNSIGNED, sd_json_dispatch_uint64, offsetof(ManifestDelta, size),        SD_JSON_MANDATORY },
                {}
        };
        Manifest *m = userdata;
        int r;

        if (!sd_json_variant_is_array(v))
                return -EBADMSG;
        size_t n = sd_json_variant_elements(v);
        if (n > 64)
                return -EBADMSG;
        m->deltas = calloc(n ?: 1, sizeof(ManifestDelta));
        if (!m->deltas)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                sd_json_variant *e = sd_json_variant_by_index(v, i);
                ManifestDelta *d = &m->deltas[m->n_deltas++];
                r = sd_json_dispatch(e, table, SD_JSON_ALLOW_EXTENSIONS, d);
                if (r < 0)
                        return r;
                if (!string_is_lower_hex(d->from_commit, 64))
                        return -EBADMSG;
        }
        return 0;
}

/* Called with offset 0, so userdata is the Manifest itself. */
static int dispatch_sizes(const char *name, sd_json_variant *v, sd_json_dispatch_flags_t flags, void *userdata) {
        static const sd_json_dispatch_field table[] = {
                { "tree",   SD_JSON_VARIANT_UNSIGNED, sd_json_dispatch_uint64, offsetof(Manifest, tree_size), SD_JSON_MANDATORY },
                { "deltas", SD_JSON_VARIANT_ARRAY,    dispatch_deltas,         0,                             0 },
                {}
        };
        return sd_json_dispatch(v, table, SD_JSON_ALLOW_EXTENSIONS, userdata);
}

int manifest_parse(const char *text, size_t size, Manifest **ret) {
        static const sd_json_dispatch_field table[] = {
                { "os",               SD_JSON_VARIANT_STRING,   sd_json_dispatch_string, offsetof(Manifest, os),               SD_JSON_MANDATORY },
                { "channel",          SD_JSON_VARIANT_STRING,   sd_json_dispatch_string, offsetof(Manifest, channel),          SD_JSON_MANDATORY },
                { "version",          SD_JSON_VARIANT_STRING,   sd_json_dispatch_string, offsetof(Manifest, version),          SD_JSON_MANDATORY },
                { "counter",          SD_JSON_VARIANT_UNSIGNED, sd_json_dispatch_uint64, offsetof(Manifest, counter),          SD_JSON_MANDATORY },
                { "ref",              SD_JSON_VARIANT_STRING,   sd_json_dispatch_string, offsetof(Manifest, ref),              SD_JSON_MANDATORY },
                { "commit",           SD_JSON_VARIANT_STRING,   sd_json_dispatch_string, offsetof(Manifest, commit),           SD_JSON_MANDATORY },
                { "kernel",           SD_JSON_VARIANT_STRING,   sd_json_dispatch_string, offsetof(Manifest, kernel),           SD_JSON_MANDATORY },
                { "min_from_version", SD_JSON_VARIANT_STRING,   sd_json_dispatch_string, offsetof(Manifest, min_from_version), 0 },
                { "issued",           SD_JSON_VARIANT_STRING,   dispatch_timestamp,      offsetof(Manifest, issued),           SD_JSON_MANDATORY },
                { "expires",          SD_JSON_VARIANT_STRING,   dispatch_timestamp,      offsetof(Manifest, expires),          SD_JSON_MANDATORY },
                { "key_id",           SD_JSON_VARIANT_STRING,   sd_json_dispatch_string, offsetof(Manifest, key_id),           SD_JSON_MANDATORY },
                { "sizes",            SD_JSON_VARIANT_OBJECT,   dispatch_sizes,          0,                                   SD_JSON_MANDATORY },
                {}
        };
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        _cleanup_free_ char *copy = NULL;
        int r;

        if (size > MANIFEST_SIZE_MAX)
                return -EFBIG;
        copy = strndup(text, size);
        if (!copy)
                return -ENOMEM;
        if (strlen(copy) != size)
                return -EBADMSG;
        if (sd_json_parse(copy, 0, &v, NULL, NULL) < 0 || !sd_json_variant_is_object(v))
                return -EBADMSG;

        sd_json_variant *format = sd_json_variant_by_key(v, "format");
        if (!format || !sd_json_variant_is_unsigned(format))
                return -EBADMSG;
        if (sd_json_variant_unsigned(format) != MANIFEST_FORMAT_VERSION)
                return -EPROTONOSUPPORT;

        m = calloc(1, sizeof(Manifest));
        if (!m)
                return -ENOMEM;
        r = sd_json_dispatch(v, table, SD_JSON_ALLOW_EXTENSIONS, m);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EBADMSG;

        if (!name_is_valid(m->os) || !name_is_valid(m->channel) || !name_is_valid(m->version) ||
            (m->min_from_version && !name_is_valid(m->min_from_version)) ||
            !string_is_lower_hex(m->commit, 64) || !string_is_lower_hex(m->key_id, KEY_ID_LENGTH) ||
            isempty(m->ref) || isempty(m->kernel) || m->counter == 0 || m->expires <= m->issued)
                return -EBADMSG;

        *ret = TAKE_PTR(m);
        return 0;
}

int manifest_sign(const char *text, size_t size, EVP_PKEY *key, char **ret_signature) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        uint8_t sig[ED25519_SIGNATURE_SIZE];
        char id[KEY_ID_LENGTH + 1];
        int r;

        r = key_get_id(key, id);
        if (r < 0)
                return r;
        r = ed25519_sign(key, text, size, sig);
        if (r < 0)
                return r;
        r = sd_json_buildo(&v,
                        SD_JSON_BUILD_PAIR_UNSIGNED("format", MANIFEST_FORMAT_VERSION),
                        SD_JSON_BUILD_PAIR_STRING("algorithm", "ed25519"),
                        SD_JSON_BUILD_PAIR_STRING("key_id", id),
                        SD_JSON_BUILD_PAIR_BASE64("signature", sig, sizeof(sig)));
        if (r < 0)
                return r;
        r = sd_json_variant_normalize(&v);
        if (r < 0)
                return r;
        r = sd_json_variant_format(v, SD_JSON_FORMAT_NEWLINE, ret_signature);
        return r < 0 ? r : 0;
}

typedef struct Signature {
        uint64_t format;
        const char *algorithm;
        const char *key_id;
        sd_json_variant *signature;
} Signature;

static int signature_parse(const char *text, size_t size, char ret_key_id[static KEY_ID_LENGTH + 1],
                           void **ret_sig, size_t *ret_sig_size) {
        static const sd_json_dispatch_field table[] = {
                { "format",    SD_JSON_VARIANT_UNSIGNED, sd_json_dispatch_uint64,        offsetof(Signature, format),    SD_JSON_MANDATORY },
                { "algorithm", SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string,  offsetof(Signature, algorithm), SD_JSON_MANDATORY },
                { "key_id",    SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string,  offsetof(Signature, key_id),    SD_JSON_MANDATORY },
                { "signature", SD_JSON_VARIANT_STRING,   sd_json_dispatch_variant_noref, offsetof(Signature, signature), SD_JSON_MANDATORY },
                {}
        };
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        _cleanup_free_ char *copy = strndup(text, size);
        Signature s = {};

        if (!copy)
                return -ENOMEM;
        if (strlen(copy) != size || sd_json_parse(copy, 0, &v, NULL, NULL) < 0 ||
            sd_json_dispatch(v, table, SD_JSON_ALLOW_EXTENSIONS, &s) < 0)
                return -EBADMSG;
        if (s.format != MANIFEST_FORMAT_VERSION || !streq(s.algorithm, "ed25519") ||
            !string_is_lower_hex(s.key_id, KEY_ID_LENGTH))
                return -EBADMSG;
        if (sd_json_variant_unbase64(s.signature, ret_sig, ret_sig_size) < 0)
                return -EBADMSG;
        memcpy(ret_key_id, s.key_id, KEY_ID_LENGTH + 1);
        return 0;
}

int manifest_verify(const char *text, size_t size, const char *signature, size_t signature_size,
                    const Keyring *keys, const ManifestPolicy *policy, Manifest **ret) {
        _cleanup_(manifest_freep) Manifest *m = NULL;
        _cleanup_free_ void *sig = NULL;
        char key_id[KEY_ID_LENGTH + 1], buf[FORMAT_TIMESTAMP_MAX];
        size_t sig_size;
        int r;

        if (size > MANIFEST_SIZE_MAX)
                return log_error_errno(EFBIG, "Manifest is %zu bytes, more than the %u allowed: refusing it.",
                                       size, MANIFEST_SIZE_MAX);
        if (signature_size > SIGNATURE_SIZE_MAX)
                return log_error_errno(EFBIG, "Manifest signature is %zu bytes, more than the %u allowed: refusing it.",
                                       signature_size, SIGNATURE_SIZE_MAX);

        r = signature_parse(signature, signature_size, key_id, &sig, &sig_size);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(EBADMSG, "Manifest signature file is malformed: refusing the manifest.");

        const TrustedKey *k = keyring_find(keys, key_id);
        if (!k)
                return log_error_errno(ENOKEY, "Manifest is signed with key %s, which is not among the %zu trusted keys: refusing it.",
                                       key_id, keys->n_keys);

        r = ed25519_verify(k->key, text, size, sig, sig_size);
        if (r == -EKEYREJECTED)
                return log_error_errno(r, "Manifest signature does not match key %s (%s): the manifest was altered or cut short, refusing it.",
                                       key_id, k->path);
        if (r < 0)
                return log_error_errno(r, "Failed to verify manifest signature: %m");

        /* Only now, authenticated, is the content parsed. */
        r = manifest_parse(text, size, &m);
        if (r == -EPROTONOSUPPORT)
                return log_error_errno(r, "Manifest has a format this build does not know (expected %u): refusing it.",
                                       MANIFEST_FORMAT_VERSION);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(EBADMSG, "Signed manifest is malformed: refusing it.");

        if (!streq(m->key_id, key_id))
                return log_error_errno(EKEYREJECTED, "Manifest names key %s but is signed with %s: refusing it.",
                                       m->key_id, key_id);
        if (policy->os && !streq(m->os, policy->os))
                return log_error_errno(EXDEV, "Manifest is for OS '%s', this system runs '%s': refusing it.",
                                       m->os, policy->os);
        if (policy->channel && !streq(m->channel, policy->channel))
                return log_error_errno(EXDEV, "Manifest is for channel '%s', this system follows '%s': refusing it.",
                                       m->channel, policy->channel);
        /* Issued later than now: this clock is behind (a replayed manifest would look fresh to it)
         * or the manifest is forged with a time to come. A little skew between clocks is fine. */
        if (m->issued > policy->now && m->issued - policy->now > MANIFEST_CLOCK_SKEW_MAX)
                return log_error_errno(ETIME, "Manifest for %s is issued at %s, in the future: this system's clock or the manifest is wrong, refusing it.",
                                       m->version, format_timestamp_utc(buf, sizeof(buf), m->issued));
        if (policy->now >= m->expires)
                return log_error_errno(ETIME, "Manifest for %s expired at %s: the server may be replaying an old release, refusing it.",
                                       m->version, format_timestamp_utc(buf, sizeof(buf), m->expires));
        /* Accepted, it would become the rollback floor, and no release could ever follow it. */
        if (m->counter == UINT64_MAX)
                return log_error_errno(EOVERFLOW, "Manifest for %s has release counter %" PRIu64 ", the largest there is: no later release could follow it, refusing it.",
                                       m->version, m->counter);
        if (m->counter < policy->min_counter)
                return log_error_errno(ESTALE, "Manifest release counter %" PRIu64 " is lower than %" PRIu64 ", already seen: refusing a rollback to %s.",
                                       m->counter, policy->min_counter, m->version);
        if (policy->booted_version && m->min_from_version &&
            version_compare(policy->booted_version, m->min_from_version) < 0)
                return log_error_errno(ERANGE, "Release %s updates only from %s or later, this system runs %s.",
                                       m->version, m->min_from_version, policy->booted_version);

        *ret = TAKE_PTR(m);
        return 0;
}
