/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* Reading an OCI image (image-spec image-layout.md, manifest.md) into a directory tree. */

#define OCI_MEDIA_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MEDIA_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_MEDIA_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
#define OCI_REF_NAME "org.opencontainers.image.ref.name"

/* REF is "oci:DIR[:NAME]", an OCI image layout directory (`skopeo copy … oci:DIR:NAME`),
 * "oci-archive:FILE[:NAME]", the same as a tar file (`podman save --format oci-archive`), or
 * "containers-storage:IMAGE", an image of podman's local storage (saved as an archive with
 * `podman image save` first). NAME picks the manifest by its org.opencontainers.image.ref.name annotation;
 * without it the layout must hold exactly one image (one manifest for linux/amd64 when the index
 * lists several platforms). Every blob read is checked against its digest and size.
 *
 * Applies the image's layers in order (oci-layer.h) into TREE, an empty directory, which becomes
 * root's, 0755, unless a layer says otherwise. An archive (and a saved image) is unpacked into a
 * temporary directory below WORKDIR first, removed afterwards. Errors are logged with the reference and the blob or
 * path at fault. */
int oci_image_unpack(const char *ref, const char *tree, const char *workdir);

typedef enum OciTransport {
        OCI_LAYOUT,             /* oci:DIR[:NAME] */
        OCI_ARCHIVE,            /* oci-archive:FILE[:NAME] */
        OCI_CONTAINERS_STORAGE, /* containers-storage:IMAGE, podman's local storage */
} OciTransport;

/* Splits REF ("oci:PATH[:NAME]", "oci-archive:PATH[:NAME]": the path ends at the first colon, as
 * containers/image reads them; "containers-storage:IMAGE": all of it, tags included) into its
 * transport, its path (the image for containers-storage) and its name (NULL when none). -EINVAL,
 * logged, for anything else. */
int oci_ref_parse(const char *ref, OciTransport *ret_transport, char **ret_path, char **ret_name);
