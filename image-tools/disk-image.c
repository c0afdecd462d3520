/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <ostree.h>

#include "boot-layout.h"
#include "conf-parser.h"
#include "disk-image.h"
#include "fileio.h"
#include "log.h"
#include "manifest.h"
#include "ostree-image.h"
#include "ostree-util.h"
#include "paths.h"
#include "process-util.h"
#include "slot-status.h"
#include "string-util.h"

#define MIB (1024ULL * 1024ULL)

/* Discoverable Partitions Specification type UUIDs. */
#define GPT_ESP "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
#define GPT_ROOT_X86_64 "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
#define GPT_VAR "4D21B016-B534-45C2-A9FB-5C16E091FD1D"


/* strprintf() for a build tool, where running out of memory ends the build. */
#define joinf(...)                                          \
        ({                                                  \
                char *_s_ = strprintf(__VA_ARGS__);         \
                if (!_s_)                                   \
                        abort();                            \
                _s_;                                        \
        })

/* Copies src into dst at offset, skipping holes so the image stays sparse. */
static int copy_sparse_at(const char *src, int dst_fd, uint64_t offset) {
        _cleanup_close_ int fd = open(src, O_RDONLY | O_CLOEXEC);
        off_t data = 0, hole, end;

        if (fd < 0)
                return log_error_errno(errno, "Failed to open %s: %m", src);
        end = lseek(fd, 0, SEEK_END);
        if (end < 0)
                return log_error_errno(errno, "Failed to size %s: %m", src);

        while (data < end) {
                data = lseek(fd, data, SEEK_DATA);
                if (data < 0) {
                        if (errno == ENXIO)
                                break; /* only a hole left */
                        return log_error_errno(errno, "Failed to find data in %s: %m", src);
                }
                hole = lseek(fd, data, SEEK_HOLE);
                if (hole < 0)
                        return log_error_errno(errno, "Failed to find a hole in %s: %m", src);
                loff_t in = data, out = (loff_t) offset + data;
                size_t left = (size_t) (hole - data);
                while (left > 0) {
                        ssize_t k = copy_file_range(fd, &in, dst_fd, &out, left, 0);
                        if (k < 0)
                                return log_error_errno(errno, "Failed to copy %s into the image: %m", src);
                        if (k == 0)
                                return log_error_errno(EIO, "Short copy of %s into the image.", src);
                        left -= (size_t) k;
                }
                data = hole;
        }
        return 0;
}

static int make_sparse_file(const char *path, uint64_t size) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, (off_t) size) < 0)
                return log_error_errno(errno, "Failed to create %s: %m", path);
        return 0;
}

static int mkfs_ext4(const char *image, uint64_t size, const char *label, const char *content) {
        _cleanup_free_ char *size_arg = NULL;
        int r;

        r = make_sparse_file(image, size);
        if (r < 0)
                return r;
        /* The file is fresh and sparse: no need to zero inode tables, now or lazily at first mount. */
        const char *argv[] = { "mkfs.ext4", "-q", "-L", label, "-E", "assume_storage_prezeroed=1",
                               content ? "-d" : image, content ?: NULL, content ? image : NULL, NULL };
        return run_command(argv);
}

static int mtools_copy(const char *esp, const char *src, const char *dst) {
        _cleanup_free_ char *target = joinf("::%s", dst);
        const char *argv[] = { "mcopy", "-o", "-i", esp, src, target, NULL };
        return run_command(argv);
}

static int write_text(const char *path, const char *text) {
        int r = write_string_file_atomic(path, text, 0644);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        return 0;
}

static int build_esp(const char *work, const char *tree, uint64_t size, const char *version,
                     const BootInfo *boot, const char *cmdline, char **ret_image) {
        _cleanup_free_ char *esp = joinf("%s/esp.img", work), *kib = joinf("%" PRIu64, size / 1024),
                            *sdboot = joinf("%s/usr/lib/systemd/boot/efi/systemd-bootx64.efi", tree),
                            *vmlinuz = joinf("%s/%s", tree, boot->vmlinuz), *initrd = joinf("%s/%s", tree, boot->initrd),
                            *loader = joinf("%s/loader.conf", work), *srel = joinf("%s/entries.srel", work),
                            *entry = joinf("%s/entry.conf", work), *entry_text = NULL, *slot_dir = slot_esp_dir(SLOT_A);
        int r;

        if (!slot_dir)
                return log_oom();
        _cleanup_free_ char *kernel_dest = joinf("%s/" SLOT_KERNEL_FILE, slot_dir),
                            *initrd_dest = joinf("%s/" SLOT_INITRD_FILE, slot_dir);

        if (access(sdboot, R_OK) < 0)
                return log_error_errno(errno, "The tree has no systemd-boot (%s): install systemd-boot-efi in the OS. %m", sdboot);

        (void) unlink(esp);
        const char *mkfs[] = { "mkfs.fat", "-F", "32", "-n", "ESP", "-C", esp, kib, NULL };
        r = run_command(mkfs);
        if (r < 0)
                return r;

        setenv("MTOOLS_SKIP_CHECK", "1", 1); /* mtools frets over a plain file's geometry */
        const char *mmd[] = { "mmd", "-i", esp, "::/EFI", "::/EFI/BOOT", "::/EFI/systemd", "::/loader",
                              "::/loader/entries", "::/dreamlink", "::/dreamlink/a", "::/dreamlink/b", NULL };
        r = run_command(mmd);
        if (r < 0)
                return r;

        /* BOOTX64.EFI is the removable-media path that firmware with empty NVRAM boots;
         * EFI/systemd/ is where bootctl keeps it. */
        if ((r = mtools_copy(esp, sdboot, "/EFI/BOOT/BOOTX64.EFI")) < 0 ||
            (r = mtools_copy(esp, sdboot, "/EFI/systemd/systemd-bootx64.efi")) < 0 ||
            (r = mtools_copy(esp, vmlinuz, kernel_dest)) < 0 ||
            (r = mtools_copy(esp, initrd, initrd_dest)) < 0)
                return r;

        /* The installed slot is known good: its entry has no boot counter and is the default.
         * Staged slots get a counted entry ("+N") and become default only once blessed. */
        _cleanup_free_ char *options = joinf("root=PARTLABEL=root-a rw%s%s", cmdline ? " " : "", strempty(cmdline)),
                            *loader_text = joinf("timeout 0\ndefault %s\neditor no\nauto-entries no\nauto-firmware no\n",
                                                 boot_entry_id(SLOT_A)),
                            *entry_dest = joinf("/loader/entries/%s", boot_entry_id(SLOT_A));
        entry_text = boot_entry_text(SLOT_A, NULL, version, options);
        if (!entry_text)
                return log_oom();
        if ((r = write_text(loader, loader_text)) < 0 ||
            (r = write_text(srel, "type1\n")) < 0 ||
            (r = write_text(entry, entry_text)) < 0)
                return r;
        if ((r = mtools_copy(esp, loader, "/loader/loader.conf")) < 0 ||
            (r = mtools_copy(esp, srel, "/loader/entries.srel")) < 0 ||
            (r = mtools_copy(esp, entry, entry_dest)) < 0)
                return r;

        *ret_image = TAKE_PTR(esp);
        return 0;
}

/* Pulls CHECKSUM from the repository at SRC_PATH and points REF at it, so the
 * installed commit is never pruned. */
static int repo_pull_local(OstreeRepo *repo, const char *src_path, const char *checksum, const char *ref) {
        g_autoptr(GError) error = NULL;
        g_autofree char *abs_path = realpath(src_path, NULL), *url = NULL;
        GVariantBuilder b;

        if (!abs_path)
                return log_error_errno(errno, "Failed to resolve %s: %m", src_path);
        url = g_strconcat("file://", abs_path, NULL);

        const char *refs[] = { checksum, NULL };
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{s@v}", "refs", g_variant_new_variant(g_variant_new_strv(refs, -1)));
        g_autoptr(GVariant) options = g_variant_ref_sink(g_variant_builder_end(&b));

        if (!ostree_repo_pull_with_options(repo, url, options, NULL, NULL, &error) ||
            !ostree_repo_set_ref_immediate(repo, NULL, ref, checksum, NULL, &error))
                return log_gerror(error, "Failed to pull %.12s from %s into the local repository", checksum, src_path);
        return 0;
}

/* The release counter of COMMIT as published in any channel of the release root (0 when it was
 * never published), so the installed system starts with the right anti-rollback floor. */
static uint64_t release_counter_of(const char *release_root, const char *checksum) {
        _cleanup_free_ char *channels = joinf("%s/channels", release_root);
        uint64_t counter = 0;
        DIR *d = opendir(channels);
        struct dirent *de;

        if (!d)
                return 0;
        while ((de = readdir(d))) {
                _cleanup_strv_free_ char **files = NULL;
                _cleanup_free_ char *dir = NULL;

                /* CHANNEL.json is the channel's latest; CHANNEL/ holds them all. */
                if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
                        continue;
                dir = joinf("%s/%s", channels, de->d_name);
                const char * const dirs[] = { dir, NULL };
                if (conf_files_list(dirs, ".json", &files) < 0)
                        continue;
                STRV_FOREACH(f, files) {
                        _cleanup_(manifest_freep) Manifest *m = NULL;
                        _cleanup_free_ char *text = NULL;
                        size_t size;

                        if (read_file_limited(*f, MANIFEST_SIZE_MAX, &text, &size) >= 0 &&
                            manifest_parse(text, size, &m) >= 0 && streq(m->commit, checksum))
                                counter = MAX(counter, m->counter);
                }
        }
        closedir(d);
        return counter;
}

/* The shared /var: the tree's factory copy of /var (where the OS recipe keeps what packages
 * put there), plus a local ostree repo with the installed commit, so that updates can be
 * pulled as deltas against it and /etc merged against its pristine /etc. */
static int build_var_tree(const char *work, const char *tree, const char *release_root,
                          const char *checksum, const char *version, const char *kernel, char **ret_dir) {
        _cleanup_free_ char *var = joinf("%s/var", work), *factory = joinf("%s/usr/share/factory/var", tree),
                            *factory_contents = joinf("%s/.", factory), *in_tree = joinf("%s/var/.", tree),
                            *repo_path = joinf("%s/" STATE_DIR_IN_VAR "/" LOCAL_REPO, var), *release_repo_path = joinf("%s/repo", release_root);
        _cleanup_repo_ OstreeRepo *local = NULL;
        int r;

        r = rm_rf(var);
        if (r < 0)
                return log_error_errno(r, "Failed to clear %s: %m", var);
        r = mkdir_p(var, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", var);

        const char *src = access(factory, F_OK) == 0 ? factory_contents : in_tree;
        const char *cp[] = { "cp", "-a", "--reflink=auto", src, var, NULL };
        r = run_command(cp);
        if (r < 0)
                return r;

        r = local_repo_open(repo_path, &local);
        if (r < 0)
                return r;
        _cleanup_free_ char *ref = slot_ref(SLOT_A);
        if (!ref)
                return log_oom();
        r = repo_pull_local(local, release_repo_path, checksum, ref);
        if (r < 0)
                return r;

        /* Slot A holds a known-good release; B is empty. */
        _cleanup_(slot_table_done) SlotTable slots = {};
        _cleanup_free_ char *slots_path = joinf("%s/" STATE_DIR_IN_VAR "/" SLOT_TABLE_FILE, var);
        slot_table_init(&slots);
        r = slot_adopt_booted(&slots, SLOT_A, version, checksum, release_counter_of(release_root, checksum), kernel);
        if (r >= 0)
                r = slot_table_save(&slots, slots_path);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", slots_path);

        *ret_dir = TAKE_PTR(var);
        return 0;
}

static int assemble_gpt(const DiskImage *d, const char *esp, const char *root, const char *var) {
        const uint64_t s = MIB / 512;
        uint64_t esp_at = 1, root_a_at = esp_at + d->esp_size / MIB, root_b_at = root_a_at + d->root_size / MIB,
                 var_at = root_b_at + d->root_size / MIB, total = var_at + d->var_size / MIB + 1;
        _cleanup_free_ char *partial = joinf("%s.partial", d->output), *script = NULL;
        _cleanup_(unlink_and_freep) char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = make_sparse_file(partial, total * MIB);
        if (r < 0)
                return r;
        tmp = TAKE_PTR(partial); /* removed again unless it became the image */

        script = joinf("label: gpt\nunit: sectors\nfirst-lba: %" PRIu64 "\n"
                       "start=%" PRIu64 ", size=%" PRIu64 ", type=" GPT_ESP ", name=esp\n"
                       "start=%" PRIu64 ", size=%" PRIu64 ", type=" GPT_ROOT_X86_64 ", name=root-a\n"
                       "start=%" PRIu64 ", size=%" PRIu64 ", type=" GPT_ROOT_X86_64 ", name=root-b\n"
                       "start=%" PRIu64 ", size=%" PRIu64 ", type=" GPT_VAR ", name=var\n",
                       s, esp_at * s, d->esp_size / 512, root_a_at * s, d->root_size / 512,
                       root_b_at * s, d->root_size / 512, var_at * s, d->var_size / 512);
        const char *sfdisk[] = { "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", tmp, NULL };
        r = run_command_input(sfdisk, script);
        if (r < 0)
                return r;

        fd = open(tmp, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Failed to open %s: %m", tmp);
        if ((r = copy_sparse_at(esp, fd, esp_at * MIB)) < 0 ||
            (r = copy_sparse_at(root, fd, root_a_at * MIB)) < 0 ||
            (r = copy_sparse_at(var, fd, var_at * MIB)) < 0)
                return r;
        if (fsync(fd) < 0 || rename(tmp, d->output) < 0)
                return log_error_errno(errno, "Failed to finish %s: %m", d->output);
        tmp = mfree(tmp);
        return 0;
}

int disk_image_build(const DiskImage *d) {
        _cleanup_repo_ OstreeRepo *repo = NULL;
        /* The work directory is ours to remove only when we made it. */
        _cleanup_(rm_rf_and_freep) char *made_work = NULL;
        _cleanup_free_ char *work = NULL, *checksum = NULL, *version = NULL, *cmdline = NULL,
                            *tree = NULL, *esp = NULL, *var = NULL, *root_img = NULL, *var_img = NULL,
                            *release_repo = NULL;
        _cleanup_(boot_info_done) BootInfo boot = {};
        char buf[FORMAT_BYTES_MAX];
        int r;

        if (d->esp_size % MIB || d->root_size % MIB || d->var_size % MIB ||
            d->esp_size < 64 * MIB || d->root_size < 256 * MIB || d->var_size < 256 * MIB)
                return log_error_errno(EINVAL, "Partition sizes must be whole MiB: ESP ≥ 64M, root and var ≥ 256M.");

        if (d->workdir) {
                r = mkdir_p(d->workdir, 0700);
                if (r < 0)
                        return log_error_errno(r, "Failed to create %s: %m", d->workdir);
                work = joinf("%s", d->workdir);
        } else {
                const char *t = getenv("TMPDIR") ?: "/var/tmp";
                made_work = joinf("%s/dreamlink-disk.XXXXXX", t);
                if (!mkdtemp(made_work)) {
                        r = -errno;
                        made_work = mfree(made_work); /* nothing was made: nothing to remove */
                        return log_error_errno(r, "Failed to create a work directory under %s: %m", t);
                }
                work = joinf("%s", made_work);
        }

        release_repo = joinf("%s/repo", d->release_root);
        r = image_repo_open(release_repo, false, &repo);
        if (r < 0)
                return r;
        r = image_repo_read_commit(repo, d->rev, &checksum, &version, &boot, &cmdline);
        if (r < 0) {
                return log_error_errno(r, "Failed to read %s from %s: %m", d->rev, release_repo);
        }
        log_info("Building %s: slot A = %s (commit %.12s, kernel %s).", d->output, version, checksum, boot.kernel_version);

        tree = joinf("%s/tree", work);
        r = rm_rf(tree);
        if (r >= 0)
                r = image_repo_checkout(repo, checksum, tree);
        if (r < 0)
                return r;

        r = build_esp(work, tree, d->esp_size, version, &boot, cmdline, &esp);
        if (r < 0)
                return r;
        r = build_var_tree(work, tree, d->release_root, checksum, version, boot.kernel_version, &var);
        if (r < 0)
                return r;

        root_img = joinf("%s/root-a.img", work);
        var_img = joinf("%s/var.img", work);
        if ((r = mkfs_ext4(root_img, d->root_size, "root-a", tree)) < 0 ||
            (r = mkfs_ext4(var_img, d->var_size, "var", var)) < 0)
                return r;

        r = assemble_gpt(d, esp, root_img, var_img);
        if (r < 0)
                return r;

        struct stat st;
        if (stat(d->output, &st) == 0)
                log_info("Wrote %s: %s, %s allocated.", d->output, format_bytes(buf, sizeof(buf), (uint64_t) st.st_size),
                         format_bytes((char[FORMAT_BYTES_MAX]) {}, FORMAT_BYTES_MAX, (uint64_t) st.st_blocks * 512));
        return 0;
}
