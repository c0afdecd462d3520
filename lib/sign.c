/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf-parser.h"
#include "fileio.h"
#include "log.h"
#include "sign.h"
#include "string-util.h"

#define KEY_FILE_MAX (16U * 1024U)

DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free_all);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free);

int ed25519_generate(EVP_PKEY **ret) {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        if (!k)
                return -EIO;
        *ret = k;
        return 0;
}

static int key_save(EVP_PKEY *key, const char *path, bool private) {
        _cleanup_(BIO_free_allp) BIO *b = BIO_new(BIO_s_mem());
        char *data;
        long size;

        if (!b)
                return -ENOMEM;
        if (private ? !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
                    : !PEM_write_bio_PUBKEY(b, key))
                return -EIO;
        size = BIO_get_mem_data(b, &data);
        if (size <= 0)
                return -EIO;
        return write_file_atomic(path, data, (size_t) size, private ? 0600 : 0644);
}

int key_save_private(EVP_PKEY *key, const char *path) {
        return key_save(key, path, true);
}

int key_save_public(EVP_PKEY *key, const char *path) {
        return key_save(key, path, false);
}

static int key_load(const char *path, bool private, EVP_PKEY **ret) {
        _cleanup_free_ char *pem = NULL;
        _cleanup_(BIO_free_allp) BIO *b = NULL;
        size_t size;
        int r;

        r = read_file_limited(path, KEY_FILE_MAX, &pem, &size);
        if (r < 0)
                return r;
        b = BIO_new_mem_buf(pem, (int) size);
        if (!b)
                return -ENOMEM;
        EVP_PKEY *k = private ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        ERR_clear_error();
        if (!k)
                return -EINVAL;
        if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
                EVP_PKEY_free(k);
                return -EINVAL;
        }
        *ret = k;
        return 0;
}

int key_load_private(const char *path, EVP_PKEY **ret) {
        return key_load(path, true, ret);
}

int key_load_public(const char *path, EVP_PKEY **ret) {
        return key_load(path, false, ret);
}

int key_get_id(EVP_PKEY *key, char ret[static KEY_ID_LENGTH + 1]) {
        uint8_t raw[32], digest[EVP_MAX_MD_SIZE];
        size_t raw_size = sizeof(raw);
        unsigned digest_size;

        if (!EVP_PKEY_get_raw_public_key(key, raw, &raw_size) || raw_size != sizeof(raw))
                return -EINVAL;
        if (!EVP_Digest(raw, raw_size, digest, &digest_size, EVP_sha256(), NULL))
                return -EIO;
        hex_encode(digest, KEY_ID_LENGTH / 2, ret);
        return 0;
}

int ed25519_sign(EVP_PKEY *key, const void *data, size_t size, uint8_t ret[static ED25519_SIGNATURE_SIZE]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t sig_size = ED25519_SIGNATURE_SIZE;

        if (!ctx)
                return -ENOMEM;
        /* ed25519 hashes internally: no digest, one shot. */
        if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) != 1 ||
            EVP_DigestSign(ctx, ret, &sig_size, data, size) != 1 ||
            sig_size != ED25519_SIGNATURE_SIZE)
                return -EIO;
        return 0;
}

int ed25519_verify(EVP_PKEY *key, const void *data, size_t size, const uint8_t *sig, size_t sig_size) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();

        if (!ctx)
                return -ENOMEM;
        if (sig_size != ED25519_SIGNATURE_SIZE)
                return -EKEYREJECTED;
        if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) != 1)
                return -EIO;
        int ok = EVP_DigestVerify(ctx, sig, sig_size, data, size);
        ERR_clear_error();
        return ok == 1 ? 0 : -EKEYREJECTED;
}

void keyring_done(Keyring *k) {
        for (size_t i = 0; i < k->n_keys; i++) {
                free(k->keys[i].path);
                EVP_PKEY_free(k->keys[i].key);
        }
        free(k->keys);
        *k = (Keyring) {};
}

const TrustedKey *keyring_find(const Keyring *k, const char *id) {
        for (size_t i = 0; i < k->n_keys; i++)
                if (streq(k->keys[i].id, id))
                        return &k->keys[i];
        return NULL;
}

int keyring_add_file(Keyring *k, const char *path) {
        _cleanup_pkey_ EVP_PKEY *key = NULL;
        char id[KEY_ID_LENGTH + 1];
        int r;

        r = key_load_public(path, &key);
        if (r < 0)
                return r;
        r = key_get_id(key, id);
        if (r < 0)
                return r;
        if (keyring_find(k, id))
                return 0; /* the same key installed twice */

        TrustedKey *n = realloc(k->keys, sizeof(TrustedKey) * (k->n_keys + 1));
        if (!n)
                return -ENOMEM;
        k->keys = n;
        char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        n[k->n_keys] = (TrustedKey) { .path = p, .key = TAKE_PTR(key) };
        memcpy(n[k->n_keys].id, id, sizeof(id));
        k->n_keys++;
        return 0;
}

int keyring_load_dirs(Keyring *k, const char * const *dirs) {
        _cleanup_strv_free_ char **files = NULL;
        int r;

        r = conf_files_list(dirs, ".pem", &files);
        if (r < 0)
                return r;
        STRV_FOREACH(f, files) {
                struct stat st;
                /* An empty file in /etc masks the vendor key of the same name. */
                if (stat(*f, &st) == 0 && st.st_size == 0) {
                        log_debug("%s is empty: key masked.", *f);
                        continue;
                }
                r = keyring_add_file(k, *f);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        log_warning_errno(r, "Ignoring %s: not an ed25519 public key in PEM format.", *f);
        }
        return 0;
}
