/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* OCI layers as a base image from elsewhere could hold them: the input is up to three layer blobs
 * (tar, plain or compressed), "----"-separated, applied in order onto an empty tree, which is then
 * made a slot (os_tree_prepare(), the /var split). Next to the tree lies a file that no entry,
 * link, hard link or whiteout may lead either to touch, and nothing may appear beside the tree. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "fuzz.h"
#include "macro.h"
#include "oci-layer.h"
#include "os-tree.h"
#include "string-util.h"

#define LAYERS_MAX 3
#define VICTIM "untouchable\n"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup();
        return 0;
}

static size_t entries_of(const char *dir) {
        _cleanup_(closedirp) DIR *d = opendir(dir);
        size_t n = 0;

        fuzz_assert(d);
        for (struct dirent *de; (de = readdir(d));)
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *root = fuzz_reset_dir("oci-layer"), *tree = NULL, *outside = NULL, *victim = NULL,
                            *blobs = fuzz_reset_dir("oci-layer-blobs");
        FuzzPart parts[LAYERS_MAX];
        struct stat st;

        tree = strprintf("%s/tree", root);
        outside = strprintf("%s/outside", root);
        victim = strprintf("%s/outside/victim", root);
        fuzz_assert(tree && outside && victim && blobs);
        fuzz_assert(mkdir(tree, 0755) >= 0);
        fuzz_write_file(root, "outside/victim", VICTIM, strlen(VICTIM));

        _cleanup_close_ int tree_fd = open(tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        fuzz_assert(tree_fd >= 0);
        size_t n = fuzz_split(data, size, parts, LAYERS_MAX);
        for (size_t i = 0; i < n; i++) {
                char name[32];
                snprintf(name, sizeof(name), "layer%zu", i);
                fuzz_write_file(blobs, name, parts[i].data, parts[i].size);
                _cleanup_free_ char *path = strprintf("%s/%s", blobs, name);
                fuzz_assert(path);
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                fuzz_assert(fd >= 0);
                if (oci_layer_apply(tree_fd, fd, name, NULL) < 0)
                        break;
        }
        /* What the commit does next with the tree: its links must not lead there either. */
        (void) os_tree_prepare(tree);

        /* Nothing beside the tree, the victim as it was. */
        fuzz_assert(entries_of(root) == 2);
        fuzz_assert(entries_of(outside) == 1);
        fuzz_assert(lstat(victim, &st) >= 0);
        fuzz_assert(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0644 && st.st_size == (off_t) strlen(VICTIM) &&
                    st.st_nlink == 1);
        _cleanup_free_ char *text = NULL;
        fuzz_assert(read_file_limited(victim, 64, &text, NULL) >= 0 && streq(text, VICTIM));
        return 0;
}
