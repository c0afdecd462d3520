/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Release manifests: the signed statement "release VERSION of OS on CHANNEL is
 * ostree commit C". The manifest file is canonical JSON (sorted keys, no
 * whitespace) signed with ed25519 in a detached signature file naming the key.
 * Signatures are checked over the exact bytes received, before the manifest is
 * parsed; then format, key, channel, expiry (anti-freeze), release counter
 * (anti-rollback) and the oldest version it updates from. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sign.h"
#include "time-util.h"

#define MANIFEST_FORMAT_VERSION 1
#define MANIFEST_SIZE_MAX (64U * 1024U)
#define SIGNATURE_SIZE_MAX (4U * 1024U)
#define MANIFEST_CLOCK_SKEW_MAX (5 * USEC_PER_MINUTE) /* how far in the future "issued" may lie */

typedef struct ManifestDelta {
        char *from_commit;
        uint64_t size;
} ManifestDelta;

typedef struct Manifest {
        char *os;
        char *channel;
        char *version;
        uint64_t counter;          /* strictly increasing per channel */
        char *ref;                 /* ostree branch */
        char *commit;              /* ostree checksum, 64 hex digits */
        char *kernel;              /* kernel version of the tree */
        char *min_from_version;    /* NULL: updates from any version */
        usec_t issued;
        usec_t expires;
        char *key_id;
        uint64_t tree_size;        /* bytes of a full pull */
        ManifestDelta *deltas;
        size_t n_deltas;
} Manifest;

Manifest *manifest_free(Manifest *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manifest *, manifest_free);

/* Canonical JSON text of m, ending in a newline: what is signed and served. */
int manifest_format(const Manifest *m, char **ret);
/* Parses manifest JSON (of any formatting); -EBADMSG, -EPROTONOSUPPORT. */
int manifest_parse(const char *text, size_t size, Manifest **ret);

/* The detached signature file: JSON naming the algorithm and key id. */
int manifest_sign(const char *text, size_t size, EVP_PKEY *key, char **ret_signature);

typedef struct ManifestPolicy {
        usec_t now;                  /* CLOCK_REALTIME */
        const char *os;              /* NULL: any */
        const char *channel;         /* NULL: any */
        uint64_t min_counter;        /* counter of the booted or last accepted release */
        const char *booted_version;  /* NULL: skip the from-version check */
} ManifestPolicy;

/* Verifies text+signature against the keyring and policy and returns the
 * parsed manifest. Each refusal is logged once, with its reason:
 *   -EFBIG           manifest or signature too large
 *   -EBADMSG         malformed manifest or signature file
 *   -ENOKEY          signed by a key that is not trusted
 *   -EKEYREJECTED    signature does not match (tampered or truncated)
 *   -EPROTONOSUPPORT unknown manifest format
 *   -EXDEV           for another OS or channel
 *   -ETIME           expired, or issued more than MANIFEST_CLOCK_SKEW_MAX in the future
 *   -EOVERFLOW       release counter 2^64-1 (nothing could ever follow it)
 *   -ESTALE          release counter lower than min_counter (rollback)
 *   -ERANGE          booted version older than the release's min_from_version */
int manifest_verify(const char *text, size_t size, const char *signature, size_t signature_size,
                    const Keyring *keys, const ManifestPolicy *policy, Manifest **ret);

/* Release versions compare as in strverscmp(): "9" < "10", "1.2" < "1.10". */
int version_compare(const char *a, const char *b);
