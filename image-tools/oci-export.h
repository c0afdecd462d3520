/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* An OS tree written as a one-layer OCI image: the base image users build FROM. */

/* Writes TREE as an OCI image to REF ("oci:DIR[:NAME]", a new or empty layout directory;
 * "oci-archive:FILE[:NAME]", the same as a tar file, replaced atomically): one uncompressed layer
 * holding the tree as a commit would take it (owners, modes, security.capability; hard links as
 * links; runtime directories empty; sockets, FIFOs and device nodes left out), a config for
 * linux/amd64 whose command is a shell, and NAME as the manifest's ref.name annotation. Entries are
 * sorted, so the same tree gives the same layer. An archive is assembled below WORKDIR (default
 * /var/tmp). Errors are logged. */
int oci_export(const char *tree, const char *ref, const char *workdir);
