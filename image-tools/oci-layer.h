/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One layer of an OCI image (image-spec layer.md): a tar stream, plain or compressed (gzip, zstd,
 * xz: what libarchive recognises), applied onto a directory tree as a changeset. */

/* Applies the layer read from LAYER_FD (a regular file: it is read twice) onto the tree at TREE_FD,
 * as the image-spec says: first its whiteouts remove what lower layers put there (".wh.NAME": NAME;
 * ".wh..wh..opq": everything in its directory), then its entries are created, replacing what is in
 * their way (a directory only by a directory, which keeps its contents). Owners, modes,
 * security.capability and user.* xattrs are kept (run as root, or in a user namespace that maps the
 * layer's owners, e.g. `podman unshare`); device nodes, FIFOs and sockets are skipped with a
 * warning, as ostree cannot hold them; missing parent directories are created (0755, root).
 *
 * Nothing is ever written, removed or linked outside the tree: a name with a ".." component, or
 * whose parent leads out of the tree through a symlink (absolute, or with too many ".."), or a
 * hard link to such a path, fails the layer with -EXDEV. A whiteout's directory is one of its own
 * layer, never reached through a link: below a link (or a file) of a lower layer it hides
 * nothing. A directory entry for the root itself
 * ("./", as `tar -C DIR .` writes it) sets the tree's owner and mode; any other entry naming the
 * root (or an empty name) fails the layer with -EBADMSG. Links inside the tree are followed as
 * the image would resolve them, except the last component, which is always replaced, never
 * followed.
 *
 * DIGEST ("sha256:HEX", may be NULL) is checked over the whole blob before anything is changed:
 * -EBADMSG on a mismatch. NAME names the layer in log messages. Errors are logged. */
int oci_layer_apply(int tree_fd, int layer_fd, const char *name, const char *digest);
