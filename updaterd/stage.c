/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <systemd/sd-json.h>
#include <unistd.h>

#include "boot-entry.h"
#include "boot-layout.h"
#include "context.h"
#include "commit.h"
#include "fetch.h"
#include "fleet-job.h"
#include "fileio.h"
#include "log.h"
#include "manifest.h"
#include "os-release.h"
#include "ostree-repo.h"
#include "policy.h"
#include "process-util.h"
#include "pull.h"
#include "record.h"
#include "slot-status.h"
#include "stage.h"
#include "status.h"
#include "string-util.h"
#include "transaction.h"

#define FETCH_TIMEOUT (30 * USEC_PER_SEC)

/* Everything a check or stage works with; context_done() releases it on every path. */
typedef struct Context {
        WorkerContext w;
        Reporter *reporter;
        SlotTable slots;
        char *os;               /* the booted OS's id: a release must be for it */
        Keyring keys;
        Manifest *manifest;
        Transaction *txn;
        OstreeRepo *repo;
        char *mountpoint;
        bool mounted;
        uint64_t downloaded;
        usec_t deadline;        /* CLOCK_MONOTONIC: the end of DownloadTimeout= */
} Context;

static void context_done(Context *ctx) {
        if (ctx->mounted && umount2(ctx->mountpoint, MNT_DETACH) < 0)
                log_warning_errno(errno, "Failed to unmount %s: %m", ctx->mountpoint);
        free(ctx->mountpoint);
        image_repo_unref(ctx->repo);
        transaction_free(ctx->txn);
        manifest_free(ctx->manifest);
        keyring_done(&ctx->keys);
        slot_table_done(&ctx->slots);
        worker_context_done(&ctx->w);
        free(ctx->os);
        log_set_transaction_id(NULL);
}

static int context_load(Context *ctx, const UpdaterConfig *c, Reporter *r) {
        _cleanup_free_ char *etc_keys = NULL, *os_keys = NULL;
        int q;

        ctx->reporter = r;
        /* From the job's start: the manifest and the pull share one wall-clock budget. */
        ctx->deadline = now_usec(CLOCK_MONOTONIC) + c->download_timeout;
        q = worker_context_load(&ctx->w, c); /* sets root first, which a failed check records under */
        if (q < 0)
                return q;
        if (!c->server)
                return log_error_errno(EINVAL, "No release server configured: set Server= in " UPDATERD_CONF_PATH ".");
        etc_keys = path_prefix(ctx->w.root, "/etc/dreamlink/keys.d");
        os_keys = path_prefix(ctx->w.root, c->trusted_keys_dir);
        if (!etc_keys || !os_keys)
                return log_oom();

        /* IMAGE_ID= names the image the OS was built as, ID= the distribution it is built from. */
        q = os_release_get(ctx->w.root, "IMAGE_ID", &ctx->os);
        if (q == -ENOENT)
                q = os_release_get(ctx->w.root, "ID", &ctx->os);
        if (q == -ENOENT)
                return log_error_errno(q, "Cannot tell which OS this system runs (no IMAGE_ID= or ID= in %s/etc/os-release): "
                                       "refusing to accept a release for it.", ctx->w.root);
        if (q < 0)
                return log_error_errno(q, "Failed to read %s/etc/os-release: %m", ctx->w.root);

        q = slot_table_load(ctx->w.slots_path, &ctx->slots);
        if (q == -ENOENT) {
                /* A system installed without a slot table: the booted slot is what it runs. */
                _cleanup_(status_booted_done) BootedInfo b = {};
                slot_table_init(&ctx->slots);
                (void) status_booted(ctx->w.root, c, &b);
                q = slot_adopt_booted(&ctx->slots, ctx->w.booted, b.version, NULL, 0, b.kernel);
        }
        if (q < 0)
                return q; /* the loader said what is wrong with the file */

        /* Trusted keys come from the booted, verified OS (and the admin), never from a download. */
        const char * const dirs[] = { etc_keys, os_keys, NULL };
        q = keyring_load_dirs(&ctx->keys, dirs);
        if (q < 0)
                return q;
        if (ctx->keys.n_keys == 0)
                return log_error_errno(ENOKEY, "No trusted release keys in %s or %s: cannot verify any release.",
                                       os_keys, etc_keys);
        return 0;
}

static FetchOptions fetch_options(const Context *ctx, uint64_t max_size) {
        const UpdaterConfig *c = ctx->w.config;

        return (FetchOptions) {
                .ca_file = c->ca_file,
                .allow_http = c->allow_http,
                .max_size = max_size,
                .timeout = FETCH_TIMEOUT,
                .stall_timeout = c->stall_timeout,
                .deadline = ctx->deadline,
                .time_limit = c->download_timeout,
        };
}

static int fetch_verified_manifest(Context *ctx) {
        _cleanup_free_ char *text = NULL, *sig = NULL;
        FetchOptions o = fetch_options(ctx, MANIFEST_SIZE_MAX);
        ManifestPolicy policy;
        size_t size, sig_size;
        int r;

        r = fetch_channel_manifest(ctx->w.config->server, ctx->w.config->channel, &o, &text, &size, &sig, &sig_size);
        if (r < 0)
                return r;
        update_policy_init(&policy, &ctx->slots, ctx->w.booted, ctx->os, ctx->w.config->channel, now_usec(CLOCK_REALTIME));
        r = manifest_verify(text, size, sig, sig_size, &ctx->keys, &policy, &ctx->manifest);
        if (r < 0)
                return r;

        /* Whatever becomes of this release, nothing older may be accepted from now on. Not kept,
         * the floor would not hold: refuse rather than go on without it. */
        if (slot_table_raise_floor(&ctx->slots, ctx->manifest->counter) > 0)
                return slot_table_save(&ctx->slots, ctx->w.slots_path); /* logs */
        return 0;
}

static uint64_t download_size(const Manifest *m, const char *booted_commit) {
        for (size_t i = 0; i < m->n_deltas; i++)
                if (streq_ptr(m->deltas[i].from_commit, booted_commit))
                        return m->deltas[i].size;
        return m->tree_size;
}

/* ---- check -------------------------------------------------------------------------------- */

static void check_record(const char *root, const UpdaterConfig *c, const char *result, const Manifest *m,
                         uint64_t size, const char *message) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        _cleanup_free_ char *text = NULL, *path = state_path(root, c, LAST_CHECK_FILE);

        if (!path ||
            sd_json_buildo(&v,
                        SD_JSON_BUILD_PAIR_UNSIGNED("time_usec", now_usec(CLOCK_REALTIME)),
                        SD_JSON_BUILD_PAIR_STRING("result", result),
                        SD_JSON_BUILD_PAIR_CONDITION(!!m, "version", SD_JSON_BUILD_STRING(m ? m->version : NULL)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!m, "counter", SD_JSON_BUILD_UNSIGNED(m ? m->counter : 0)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!m, "kernel", SD_JSON_BUILD_STRING(m ? m->kernel : NULL)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!m, "download_size", SD_JSON_BUILD_UNSIGNED(size)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!message, "message", SD_JSON_BUILD_STRING(message))) < 0 ||
            sd_json_variant_format(v, SD_JSON_FORMAT_NEWLINE, &text) < 0)
                return;
        /* For status only: failing to record it does not fail the check. */
        if (write_string_file_atomic(path, text, 0644) < 0)
                log_warning("Failed to record the check result in %s.", path);
}

int check_run(const UpdaterConfig *c, Reporter *rep) {
        _cleanup_(context_done) Context ctx = {};
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        _cleanup_free_ char *json = NULL, *message = NULL;
        int r;

        r = context_load(&ctx, c, rep);
        if (r >= 0)
                r = fetch_verified_manifest(&ctx);
        if (r < 0) {
                check_record(ctx.w.root, c, "failed", NULL, 0, log_get_last_error());
                return r;
        }

        const Manifest *m = ctx.manifest;
        UpdateState state = update_state_of(&ctx.slots, ctx.w.booted, m);
        uint64_t size = download_size(m, ctx.slots.slots[ctx.w.booted].commit);
        check_record(ctx.w.root, c, update_state_to_string(state), m, size, NULL);

        r = sd_json_buildo(&v,
                        SD_JSON_BUILD_PAIR_BOOLEAN("available", state == UPDATE_AVAILABLE),
                        SD_JSON_BUILD_PAIR_STRING("state", update_state_to_string(state)),
                        SD_JSON_BUILD_PAIR_STRING("version", m->version),
                        SD_JSON_BUILD_PAIR_STRING("kernel", m->kernel),
                        SD_JSON_BUILD_PAIR_UNSIGNED("counter", m->counter),
                        SD_JSON_BUILD_PAIR_UNSIGNED("download_size", size));
        if (r >= 0)
                r = sd_json_variant_format(v, 0, &json);
        if (r < 0)
                return log_error_errno(r, "Failed to format the check result: %m");
        reporter_result(rep, json);

        if (asprintf(&message, "Channel %s offers %s: %s.", c->channel, m->version, update_state_to_string(state)) < 0)
                return log_oom();
        reporter_done(rep, 0, message);
        return 0;
}

/* ---- stage -------------------------------------------------------------------------------- */

static int transaction_save_step(Context *ctx, TransactionStep step) {
        return record_step(ctx->txn, ctx->w.txn_path, step, ctx->reporter);
}

static int stage_plan(Context *ctx) {
        _cleanup_(transaction_freep) Transaction *existing = NULL;
        const Manifest *m = ctx->manifest;
        int r;

        r = transaction_load(ctx->w.txn_path, &existing);
        if (r < 0 && r != -ENOENT)
                log_warning("Starting a new transaction instead of the unreadable one in %s.", ctx->w.txn_path);

        if (existing && existing->outcome == OUTCOME_IN_PROGRESS && existing->operation != TRANSACTION_STAGE)
                return log_error_errno(EBUSY, "A %s (transaction %s) is in progress: staging must wait for it.",
                                       transaction_operation_to_string(existing->operation), existing->id);

        if (stage_can_resume(existing, m, ctx->w.target)) {
                log_info("Resuming transaction %s (staging %s into slot %s), interrupted after step %s.",
                         existing->id, m->version, slot_to_string(ctx->w.target),
                         transaction_step_to_string(existing->step));
                ctx->txn = TAKE_PTR(existing);
        } else {
                r = transaction_new(TRANSACTION_STAGE, ctx->w.booted, ctx->w.target, &ctx->txn);
                if (r < 0)
                        return log_error_errno(r, "Failed to start a transaction: %m");
                if (free_and_strdup(&ctx->txn->from_version, ctx->slots.slots[ctx->w.booted].version) < 0 ||
                    free_and_strdup(&ctx->txn->to_version, m->version) < 0 ||
                    free_and_strdup(&ctx->txn->to_commit, m->commit) < 0)
                        return log_oom();
        }
        (void) log_set_transaction_id(ctx->txn->id);
        reporter_transaction(ctx->reporter, ctx->txn->id);
        return transaction_save_step(ctx, MAX(ctx->txn->step, STEP_MANIFEST_VERIFIED));
}

static int stage_check_space(Context *ctx) {
        _cleanup_free_ char *var = state_path(ctx->w.root, ctx->w.config, "");
        char need[FORMAT_BYTES_MAX], have[FORMAT_BYTES_MAX], missing[FORMAT_BYTES_MAX];
        struct statvfs sv;

        if (!var)
                return log_oom();
        if (statvfs(var, &sv) < 0)
                return log_error_errno(errno, "Failed to check free space in %s: %m", var);
        uint64_t available = (uint64_t) sv.f_bavail * sv.f_frsize;
        uint64_t needed = stage_space_needed(ctx->manifest, ctx->slots.slots[ctx->w.booted].commit);
        if (available < needed)
                return log_error_errno(ENOSPC, "Staging %s needs %s free in %s, only %s is available: free %s more.",
                                       ctx->manifest->version, format_bytes(need, sizeof(need), needed), var,
                                       format_bytes(have, sizeof(have), available),
                                       format_bytes(missing, sizeof(missing), needed - available));
        return 0;
}

static void on_pull_progress(const PullProgress *p, void *userdata) {
        Context *ctx = userdata;
        reporter_progress(ctx->reporter, p->bytes_transferred, p->bytes_total, p->objects_fetched,
                          p->objects_requested, p->delta);
}

static int stage_pull(Context *ctx) {
        _cleanup_free_ char *repo_path = state_path(ctx->w.root, ctx->w.config, LOCAL_REPO), *url = NULL, *ref = NULL;
        FetchOptions o = fetch_options(ctx, ctx->w.config->max_download_size);
        char buf[FORMAT_BYTES_MAX];
        PullResult result = {};
        int r;

        if (!repo_path || asprintf(&url, "%s/repo", ctx->w.config->server) < 0 ||
            !(ref = slot_ref(ctx->w.target)))
                return log_oom();

        r = local_repo_open(repo_path, &ctx->repo);
        if (r < 0)
                return r;
        r = local_repo_pull(ctx->repo, url, ctx->manifest->commit, ref, &o, on_pull_progress, ctx, &result);
        if (r < 0)
                return r;
        log_info("Pulled %s (%.12s): %" PRIu64 " bytes (%s) downloaded%s, the full tree is %" PRIu64 " bytes.",
                 ctx->manifest->version, ctx->manifest->commit, result.bytes_transferred,
                 format_bytes(buf, sizeof(buf), result.bytes_transferred),
                 result.delta ? " as a static delta" : "", ctx->manifest->tree_size);
        ctx->downloaded = result.bytes_transferred;
        return transaction_save_step(ctx, STEP_PULLED);
}

/* Under DREAMLINK_ROOT (tests) even the device lives in the test root: never a real disk. */
static char *stage_slot_device(const Context *ctx) {
        return path_prefix(ctx->w.root, slot_partition_path(ctx->w.target));
}

static int device_size(const char *path, uint64_t *ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (S_ISREG(st.st_mode)) { /* an image file, as tests have it */
                *ret = st.st_size;
                return 0;
        }
        if (!S_ISBLK(st.st_mode))
                return -ENOTBLK;
        return RET_NERRNO(ioctl(fd, BLKGETSIZE64, ret));
}

/* A slot that cannot take the tree would be wiped for nothing, and an ESP too full for the kernel
 * would only be found after the slot is written: both are checked against the pulled commit before
 * either is touched. The estimates are lower bounds, so a refusal here is certain; what they miss
 * (file system overhead) still ends in the checkout's or the copy's ENOSPC. */
static int stage_check_targets(Context *ctx) {
        _cleanup_(boot_info_done) BootInfo boot = {};
        _cleanup_free_ char *device = stage_slot_device(ctx), *esp_dir = slot_esp_dir(ctx->w.target),
                            *slot_esp = NULL;
        char a[FORMAT_BYTES_MAX], b[FORMAT_BYTES_MAX], c[FORMAT_BYTES_MAX];
        uint64_t tree, slot_bytes, kernel, initrd;
        struct statvfs sv;
        int r;

        if (!device || !esp_dir || asprintf(&slot_esp, "%s%s", ctx->w.esp, esp_dir) < 0)
                return log_oom();

        r = image_repo_disk_usage(ctx->repo, ctx->manifest->commit, "/", 4096, &tree);
        if (r < 0)
                return r;
        r = device_size(device, &slot_bytes);
        if (r < 0)
                return log_error_errno(r, "Failed to read the size of the passive slot %s: %m", device);
        /* ext4 keeps 256 bytes of inode table per 16 KiB (mke2fs' defaults) out of every slot. */
        if (tree > slot_bytes - slot_bytes / 64)
                return log_error_errno(ENOSPC, "The passive slot %s holds %s, %s needs at least %s once unpacked: "
                                       "it does not fit, the slot is left as it is.", device,
                                       format_bytes(a, sizeof(a), slot_bytes), ctx->manifest->version,
                                       format_bytes(b, sizeof(b), tree));

        if (statvfs(ctx->w.esp, &sv) < 0)
                return log_error_errno(errno, "Failed to check free space on the ESP %s: %m", ctx->w.esp);
        uint64_t cluster = sv.f_frsize ?: 4096;
        r = image_repo_read_commit(ctx->repo, ctx->manifest->commit, NULL, NULL, &boot, NULL);
        if (r >= 0)
                r = image_repo_disk_usage(ctx->repo, ctx->manifest->commit, boot.vmlinuz, cluster, &kernel);
        if (r >= 0)
                r = image_repo_disk_usage(ctx->repo, ctx->manifest->commit, boot.initrd, cluster, &initrd);
        if (r < 0)
                return r;
        /* The slot's own kernel and initrd are removed before the new ones are copied; one more
         * cluster for the entry. */
        uint64_t available = (uint64_t) sv.f_bavail * sv.f_frsize;
        for (const char * const *f = (const char * const[]) { SLOT_KERNEL_FILE, SLOT_INITRD_FILE, NULL }; *f; f++) {
                _cleanup_free_ char *p = strprintf("%s/%s", slot_esp, *f);
                struct stat st;
                if (!p)
                        return log_oom();
                if (lstat(p, &st) >= 0 && S_ISREG(st.st_mode))
                        available = saturating_add(available, round_up_blocks(st.st_size, cluster));
        }
        uint64_t needed = saturating_add(saturating_add(kernel, initrd), cluster);
        if (needed > available)
                return log_error_errno(ENOSPC, "The ESP %s has %s free for slot %s, the kernel and initrd of %s need %s: "
                                       "free %s more on it. The slot is left as it is.", ctx->w.esp,
                                       format_bytes(a, sizeof(a), available), slot_to_string(ctx->w.target),
                                       ctx->manifest->version, format_bytes(b, sizeof(b), needed),
                                       format_bytes(c, sizeof(c), needed - available));
        log_debug("Slot %s: %s holds %" PRIu64 " bytes for a tree of %" PRIu64 "; ESP: %" PRIu64 " of %" PRIu64 " bytes free.",
                  slot_to_string(ctx->w.target), device, slot_bytes, tree, available, needed);
        return 0;
}

static int stage_write_slot(Context *ctx) {
        _cleanup_free_ char *device = stage_slot_device(ctx);
        const char *label = ctx->w.target == SLOT_A ? "root-a" : "root-b";
        int r;

        if (!device)
                return log_oom();

        /* The default must name the slot that keeps running, not the one about to be rewritten
         * (it may not, if someone switched by hand). */
        Slot def;
        if (boot_default_get(ctx->w.esp, &def) < 0 || def != ctx->w.booted) {
                r = boot_default_set(ctx->w.esp, ctx->w.booted);
                if (r < 0)
                        return r; /* logged */
        }

        /* From here until the boot entry is back, the slot must not be bootable. */
        r = boot_entry_remove(ctx->w.esp, ctx->w.target);
        if (r < 0)
                return r; /* logged */
        r = slot_mark_writing(&ctx->slots, ctx->w.target, ctx->w.booted);
        if (r >= 0)
                r = slot_table_save(&ctx->slots, ctx->w.slots_path);
        if (r < 0)
                return log_error_errno(r, "Failed to mark slot %s as being written: %m", slot_to_string(ctx->w.target));

        const char *mkfs[] = { "mkfs.ext4", "-F", "-q", "-L", label, device, NULL };
        r = run_command(mkfs);
        if (r < 0)
                return log_error_errno(r, "Failed to make a file system on the passive slot %s.", device);

        if (asprintf(&ctx->mountpoint, "%s/run/dreamlink/staging-%s", ctx->w.root, slot_to_string(ctx->w.target)) < 0)
                return log_oom();
        r = mkdir_p(ctx->mountpoint, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", ctx->mountpoint);
        if (mount(device, ctx->mountpoint, "ext4", MS_NOATIME, NULL) < 0)
                return log_error_errno(errno, "Failed to mount the passive slot %s: %m", device);
        ctx->mounted = true;

        r = image_repo_checkout(ctx->repo, ctx->manifest->commit, ctx->mountpoint);
        if (r == -ENOSPC)
                return log_error_errno(r, "The passive slot %s is too small for %s.", device, ctx->manifest->version);
        if (r < 0)
                return r;
        return transaction_save_step(ctx, STEP_SLOT_WRITTEN);
}

/* The pulled commit is the one the signed manifest names (ostree checked every object against
 * it); what it says it boots must be what the manifest promised too, before the slot is touched. */
static int stage_verify_commit(Context *ctx) {
        _cleanup_(boot_info_done) BootInfo boot = {};
        int r;

        r = image_repo_read_commit(ctx->repo, ctx->manifest->commit, NULL, NULL, &boot, NULL);
        if (r < 0)
                return r;
        if (!streq(boot.kernel_version, ctx->manifest->kernel))
                return log_error_errno(EBADMSG, "Commit %.12s carries kernel %s, the manifest promised %s.",
                                       ctx->manifest->commit, boot.kernel_version, ctx->manifest->kernel);
        return 0;
}

static int stage_install_boot_entry(Context *ctx) {
        _cleanup_(boot_info_done) BootInfo boot = {};
        _cleanup_free_ char *cmdline = NULL, *options = NULL, *kernel = NULL, *initrd = NULL;
        int r;

        r = image_repo_read_commit(ctx->repo, ctx->manifest->commit, NULL, NULL, &boot, &cmdline);
        if (r < 0)
                return r;

        if (asprintf(&options, "root=PARTLABEL=%s rw%s%s", ctx->w.target == SLOT_A ? "root-a" : "root-b",
                     cmdline ? " " : "", strempty(cmdline)) < 0 ||
            asprintf(&kernel, "%s/%s", ctx->mountpoint, boot.vmlinuz) < 0 ||
            asprintf(&initrd, "%s/%s", ctx->mountpoint, boot.initrd) < 0)
                return log_oom();

        BootEntryInfo info = {
                .version = ctx->manifest->version,
                .options = options,
                .kernel_src = kernel,
                .initrd_src = initrd,
        };
        /* Counted, and not the default: only a blessed slot becomes the default. */
        r = boot_entry_install(ctx->w.esp, ctx->w.target, &info, ctx->w.config->boot_tries);
        if (r < 0)
                return r; /* logged */

        if (umount2(ctx->mountpoint, 0) < 0)
                return log_error_errno(errno, "Failed to unmount %s: %m", ctx->mountpoint);
        ctx->mounted = false;
        sync();
        return 0;
}

static int stage_mark_staged(Context *ctx) {
        const Manifest *m = ctx->manifest;
        int r;

        /* Also raises the highest accepted release counter. */
        r = slot_mark_staged(&ctx->slots, ctx->w.target, m->version, m->commit, m->counter, m->kernel);
        if (r >= 0)
                r = slot_table_save(&ctx->slots, ctx->w.slots_path);
        if (r < 0)
                return log_error_errno(r, "Failed to record slot %s as staged: %m", slot_to_string(ctx->w.target));
        r = transaction_save_step(ctx, STEP_STAGED);
        if (r < 0)
                return r;
        return record_finish(ctx->txn, ctx->w.txn_path, OUTCOME_SUCCEEDED, NULL, ctx->w.root, ctx->w.config);
}

/* The slot says staged: a stage of this release got as far as stage_mark_staged()'s slots.json and
 * was cut off (a power cut) before its record was closed. Its work is done: close it as such, or
 * it stays in progress forever and blocks commit. */
static int stage_close_interrupted(Context *ctx) {
        _cleanup_(transaction_freep) Transaction *t = NULL;
        int r;

        r = transaction_load(ctx->w.txn_path, &t);
        if (r < 0 || !stage_can_resume(t, ctx->manifest, ctx->w.target))
                return 0; /* nothing of this stage open (an unreadable record: the next stage starts anew) */

        log_info("Transaction %s staged %s into slot %s and was interrupted before it was closed: closing it now.",
                 t->id, ctx->manifest->version, slot_to_string(ctx->w.target));
        (void) log_set_transaction_id(t->id);
        r = record_step(t, ctx->w.txn_path, STEP_STAGED, ctx->reporter);
        if (r < 0)
                return r;
        return record_finish(t, ctx->w.txn_path, OUTCOME_SUCCEEDED, NULL, ctx->w.root, ctx->w.config);
}

/* Once the slot table says what each slot holds: the releases neither holds go from the local
 * repository, so /var does not fill up with every release ever staged and nothing of theirs (their
 * set-uid binaries) stays on disk. The stage is done already: failing here fails nothing. */
static void stage_prune(Context *ctx) {
        _cleanup_free_ char *ref_a = slot_ref(SLOT_A), *ref_b = slot_ref(SLOT_B);
        char buf[FORMAT_BYTES_MAX];
        uint64_t freed;

        if (!ref_a || !ref_b) {
                log_oom();
                return;
        }
        const RepoKeep keep[] = {
                { .ref = ref_a, .commit = ctx->slots.slots[SLOT_A].commit },
                { .ref = ref_b, .commit = ctx->slots.slots[SLOT_B].commit },
        };
        if (local_repo_prune(ctx->repo, keep, ELEMENTSOF(keep), &freed) >= 0)
                log_info("Removed what no slot holds from the local repository: %s freed.",
                         format_bytes(buf, sizeof(buf), freed));
}

/* Runs in the worker: lower priority, and a mount namespace of its own so the slot's mount
 * is private and vanishes with the worker, however it ends. */
static int stage_prepare_process(Context *ctx) {
        (void) setpriority(PRIO_PROCESS, 0, 10);
        /* ioprio_set(IOPRIO_WHO_PROCESS, self, IOPRIO_CLASS_IDLE): disk time only when nobody else wants it. */
        (void) syscall(SYS_ioprio_set, 1, 0, 3 << 13);

        /* Trigger the ESP's automount first: mounts made later in the parent still propagate to a slave. */
        _cleanup_free_ char *loader = NULL;
        if (asprintf(&loader, "%s/loader", ctx->w.esp) >= 0)
                (void) access(loader, F_OK);
        if (unshare(CLONE_NEWNS) < 0)
                return log_error_errno(errno, "Failed to create a mount namespace: %m");
        if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
                return log_error_errno(errno, "Failed to make mounts private: %m");
        return 0;
}

static int stage_fail(Context *ctx, int error) {
        if (!ctx->txn)
                return error;
        (void) record_finish(ctx->txn, ctx->w.txn_path, OUTCOME_FAILED, log_get_last_error() ?: strerror(-error),
                             ctx->w.root, ctx->w.config);
        return error;
}

int stage_run(const UpdaterConfig *c, const char *version, Reporter *rep) {
        _cleanup_(context_done) Context ctx = {};
        _cleanup_free_ char *message = NULL;
        int r;

        r = context_load(&ctx, c, rep);
        if (r < 0)
                return r;
        r = fetch_verified_manifest(&ctx);
        if (r < 0)
                return r;
        const Manifest *m = ctx.manifest;

        if (!isempty(version) && !streq(version, m->version))
                return log_error_errno(ENOENT, "Channel %s offers %s, not %s.", c->channel, m->version, version);

        switch (update_state_of(&ctx.slots, ctx.w.booted, m)) {
        case UPDATE_RUNNING:
                (void) asprintf(&message, "This system already runs %s.", m->version);
                reporter_done(rep, 0, message);
                return 0;
        case UPDATE_STAGED:
                r = stage_close_interrupted(&ctx);
                if (r < 0)
                        return r;
                (void) asprintf(&message, "%s is already staged in slot %s.", m->version, slot_to_string(ctx.w.target));
                reporter_done(rep, 0, message);
                return 0;
        default:
                break;
        }

        r = stage_prepare_process(&ctx);
        if (r < 0)
                return r;
        r = stage_plan(&ctx);
        if (r < 0)
                return r;

        if ((r = stage_check_space(&ctx)) < 0 ||
            (r = stage_pull(&ctx)) < 0 ||
            (r = stage_verify_commit(&ctx)) < 0 ||
            (r = stage_check_targets(&ctx)) < 0 ||
            (r = stage_write_slot(&ctx)) < 0 ||
            (r = stage_install_boot_entry(&ctx)) < 0 ||
            (r = stage_mark_staged(&ctx)) < 0)
                return stage_fail(&ctx, r);
        stage_prune(&ctx);

        char buf[FORMAT_BYTES_MAX];
        if (asprintf(&message, "Staged %s (kernel %s) into slot %s, %s downloaded.",
                     m->version, m->kernel, slot_to_string(ctx.w.target), format_bytes(buf, sizeof(buf), ctx.downloaded)) < 0)
                return log_oom();
        log_info("%s", message);
        reporter_done(rep, 0, message);
        return 0;
}

int updater_worker_main(JobOperation op, const UpdaterConfig *c, const char *version, uint64_t flags, Reporter *r) {
        switch (op) {
        case JOB_CHECK:
                return check_run(c, r);
        case JOB_STAGE:
                return stage_run(c, version, r);
        case JOB_COMMIT:
                return commit_run(c, TRANSACTION_COMMIT, (CommitFlags) flags, r);
        case JOB_ROLLBACK:
                return commit_run(c, TRANSACTION_ROLLBACK, (CommitFlags) flags, r);
        case JOB_PLAN_COMMIT:
                return commit_plan_run(c, TRANSACTION_COMMIT, (CommitFlags) flags, r);
        case JOB_PLAN_ROLLBACK:
                return commit_plan_run(c, TRANSACTION_ROLLBACK, (CommitFlags) flags, r);
        case JOB_FLEET_RELEASE:
                return fleet_release_run(c, r);
        default:
                return -EINVAL;
        }
}
