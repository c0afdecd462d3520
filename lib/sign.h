/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* ed25519 keys and signatures through OpenSSL, and the keyring of trusted
 * release keys that the booted OS ships (keys.d/ *.pem). A key is named by
 * its id: the first 16 bytes of the SHA-256 of the raw public key, in hex. */

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define ED25519_SIGNATURE_SIZE 64
#define KEY_ID_LENGTH 32

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free);
#define _cleanup_pkey_ _cleanup_(EVP_PKEY_freep)

int ed25519_generate(EVP_PKEY **ret);
/* Private keys are written 0600, public keys 0644; both atomically, PEM. */
int key_save_private(EVP_PKEY *key, const char *path);
int key_save_public(EVP_PKEY *key, const char *path);
/* -EINVAL for a file that is not an ed25519 key of the requested kind. */
int key_load_private(const char *path, EVP_PKEY **ret);
int key_load_public(const char *path, EVP_PKEY **ret);
int key_get_id(EVP_PKEY *key, char ret[static KEY_ID_LENGTH + 1]);

int ed25519_sign(EVP_PKEY *key, const void *data, size_t size, uint8_t ret[static ED25519_SIGNATURE_SIZE]);
/* 0 when sig is key's signature over data, -EKEYREJECTED otherwise. */
int ed25519_verify(EVP_PKEY *key, const void *data, size_t size, const uint8_t *sig, size_t sig_size);

typedef struct TrustedKey {
        char id[KEY_ID_LENGTH + 1];
        char *path;
        EVP_PKEY *key;
} TrustedKey;

typedef struct Keyring {
        TrustedKey *keys;
        size_t n_keys;
} Keyring;

void keyring_done(Keyring *k);
/* Adds every *.pem public key of each directory (missing ones are skipped);
 * a file that is not an ed25519 public key is warned about and skipped. */
int keyring_load_dirs(Keyring *k, const char * const *dirs);
int keyring_add_file(Keyring *k, const char *path);
const TrustedKey *keyring_find(const Keyring *k, const char *id);
