/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dreamlink-image: build, sign and publish OS releases; build A/B disk images.
 * See dreamlink-image(1). */

#include <dirent.h>
#include <getopt.h>
#include <locale.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf-parser.h"
#include "disk-image.h"
#include "fileio.h"
#include "log.h"
#include "manifest.h"
#include "oci-export.h"
#include "oci-image.h"
#include "os-tree.h"
#include "ostree-image.h"
#include "sign.h"
#include "string-util.h"

#define DEFAULT_EXPIRY (14 * USEC_PER_DAY)
#define DEFAULT_DELTA_BASES 2U

static int help(void) {
        printf("%s [OPTIONS...] COMMAND ...\n\n"
               "Build, sign and publish dreamlink OS releases and A/B disk images.\n\n"
               "Commands:\n"
               "  keygen --output DIR [--name NAME]        Make an ed25519 release key pair\n"
               "  commit --root DIR --tree TREE|--from-oci REF [--overlay DIR] --branch B --version V [--os NAME]\n"
               "         [--cmdline ARGS] [--workdir DIR]\n"
               "                                           Commit an OS tree, or an OCI image\n"
               "                                           (oci:DIR[:NAME], oci-archive:FILE[:NAME],\n"
               "                                           containers-storage:IMAGE) to the release repository\n"
               "  publish --root DIR --key KEY --channel C [--os NAME] [--rev REV] [--counter N]\n"
               "          [--expires-in SPAN] [--min-from-version V] [--delta-bases N] [--delta-from REV]\n"
               "                                           Sign a release manifest, make deltas, update summary\n"
               "  verify --keys DIR [--channel C] [--now TIME] MANIFEST\n"
               "                                           Check a manifest and its signature offline\n"
               "  disk --root DIR --rev REV --output IMAGE [--root-size SIZE] [--var-size SIZE]\n"
               "                                           Build a bootable A/B disk image\n"
               "  prepare --tree TREE                      Make an OS root tree a slot: check it, split /var off\n"
               "  export --tree TREE --output REF [--workdir DIR]\n"
               "                                           Write an OS tree as an OCI base image\n"
               "                                           (oci:DIR[:NAME], oci-archive:FILE[:NAME])\n\n"
               "Options:\n"
               "  -h --help     Show this help\n"
               "     --version  Show package version\n\n"
               "See the dreamlink-image(1) man page for details.\n",
               program_invocation_short_name);
        return 0;
}

/* Options shared by the verbs; each verb checks the ones it needs. */
typedef struct Args {
        const char *root, *tree, *branch, *version, *os, *cmdline, *output, *name;
        const char *key, *channel, *rev, *min_from_version, *keys, *workdir, *overlay, *delta_from, *from_oci;
        uint64_t counter;
        usec_t expires_in, now;
        unsigned delta_bases;
        uint64_t root_size, var_size, esp_size;
        char **positional;
} Args;

enum {
        ARG_VERSION = 0x100, ARG_ROOT, ARG_TREE, ARG_BRANCH, ARG_OS_VERSION, ARG_OS, ARG_CMDLINE, ARG_OUTPUT,
        ARG_NAME, ARG_KEY, ARG_CHANNEL, ARG_REV, ARG_COUNTER, ARG_EXPIRES_IN, ARG_MIN_FROM, ARG_DELTA_BASES,
        ARG_KEYS, ARG_NOW, ARG_ROOT_SIZE, ARG_VAR_SIZE, ARG_ESP_SIZE, ARG_WORKDIR, ARG_OVERLAY, ARG_DELTA_FROM,
        ARG_FROM_OCI,
};

static int parse_args(int argc, char *argv[], Args *a) {
        static const struct option options[] = {
                { "help",             no_argument,       NULL, 'h' },
                { "version",          required_argument, NULL, ARG_OS_VERSION },
                { "root",             required_argument, NULL, ARG_ROOT },
                { "tree",             required_argument, NULL, ARG_TREE },
                { "branch",           required_argument, NULL, ARG_BRANCH },
                { "os",               required_argument, NULL, ARG_OS },
                { "cmdline",          required_argument, NULL, ARG_CMDLINE },
                { "output",           required_argument, NULL, ARG_OUTPUT },
                { "name",             required_argument, NULL, ARG_NAME },
                { "key",              required_argument, NULL, ARG_KEY },
                { "channel",          required_argument, NULL, ARG_CHANNEL },
                { "rev",              required_argument, NULL, ARG_REV },
                { "counter",          required_argument, NULL, ARG_COUNTER },
                { "expires-in",       required_argument, NULL, ARG_EXPIRES_IN },
                { "min-from-version", required_argument, NULL, ARG_MIN_FROM },
                { "delta-bases",      required_argument, NULL, ARG_DELTA_BASES },
                { "keys",             required_argument, NULL, ARG_KEYS },
                { "now",              required_argument, NULL, ARG_NOW },
                { "root-size",        required_argument, NULL, ARG_ROOT_SIZE },
                { "var-size",         required_argument, NULL, ARG_VAR_SIZE },
                { "esp-size",         required_argument, NULL, ARG_ESP_SIZE },
                { "workdir",          required_argument, NULL, ARG_WORKDIR },
                { "overlay",          required_argument, NULL, ARG_OVERLAY },
                { "delta-from",       required_argument, NULL, ARG_DELTA_FROM },
                { "from-oci",         required_argument, NULL, ARG_FROM_OCI },
                {}
        };
        int c, r;

        *a = (Args) {
                .expires_in = DEFAULT_EXPIRY,
                .delta_bases = DEFAULT_DELTA_BASES,
                .os = "dreamlink", /* IMAGE_ID= of the reference OS (image-tools/os) */
                .name = "release",
                .root_size = 3ULL << 30,
                .var_size = 3ULL << 30,
                .esp_size = 256ULL << 20,
        };

        optind = 0; /* the verb is argv[0] of what we are given */
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        exit(EXIT_SUCCESS);
                case ARG_ROOT: a->root = optarg; break;
                case ARG_TREE: a->tree = optarg; break;
                case ARG_BRANCH: a->branch = optarg; break;
                case ARG_OS_VERSION: a->version = optarg; break;
                case ARG_OS: a->os = optarg; break;
                case ARG_CMDLINE: a->cmdline = optarg; break;
                case ARG_OUTPUT: a->output = optarg; break;
                case ARG_NAME: a->name = optarg; break;
                case ARG_KEY: a->key = optarg; break;
                case ARG_CHANNEL: a->channel = optarg; break;
                case ARG_REV: a->rev = optarg; break;
                case ARG_MIN_FROM: a->min_from_version = optarg; break;
                case ARG_KEYS: a->keys = optarg; break;
                case ARG_WORKDIR: a->workdir = optarg; break;
                case ARG_FROM_OCI: a->from_oci = optarg; break;
                case ARG_OVERLAY: a->overlay = optarg; break;
                case ARG_DELTA_FROM: a->delta_from = optarg; break;
                case ARG_COUNTER:
                        if (parse_uint64(optarg, &a->counter) < 0 || a->counter == 0)
                                return log_error_errno(EINVAL, "--counter= expects a positive integer, got '%s'.", optarg);
                        break;
                case ARG_EXPIRES_IN:
                        r = parse_timespan(optarg, &a->expires_in);
                        if (r < 0 || a->expires_in == 0)
                                return log_error_errno(EINVAL, "--expires-in= expects a time span such as 14d, got '%s'.", optarg);
                        break;
                case ARG_DELTA_BASES:
                        if (parse_unsigned(optarg, &a->delta_bases) < 0 || a->delta_bases > 16)
                                return log_error_errno(EINVAL, "--delta-bases= expects 0…16, got '%s'.", optarg);
                        break;
                case ARG_NOW:
                        if (parse_timestamp_utc(optarg, &a->now) < 0)
                                return log_error_errno(EINVAL, "--now= expects YYYY-MM-DDTHH:MM:SSZ, got '%s'.", optarg);
                        break;
                case ARG_ROOT_SIZE:
                case ARG_VAR_SIZE:
                case ARG_ESP_SIZE: {
                        uint64_t *f = c == ARG_ROOT_SIZE ? &a->root_size : c == ARG_VAR_SIZE ? &a->var_size : &a->esp_size;
                        if (parse_size(optarg, f) < 0)
                                return log_error_errno(EINVAL, "Invalid size '%s'.", optarg);
                        break;
                }
                case '?':
                        return -EINVAL;
                default:
                        return log_error_errno(EINVAL, "Unhandled option.");
                }

        a->positional = argv + optind;
        return 0;
}

#define REQUIRE(a, field, option)                                                        \
        do {                                                                             \
                if (!(a)->field)                                                         \
                        return log_error_errno(EINVAL, "%s needs --%s=.", verb, option); \
        } while (0)

static char *path_join(const char *a, const char *b) {
        char *p;
        return asprintf(&p, "%s/%s", a, b) < 0 ? NULL : p;
}

static int verb_keygen(const char *verb, const Args *a) {
        _cleanup_pkey_ EVP_PKEY *key = NULL;
        _cleanup_free_ char *priv = NULL, *pub = NULL, *priv_name = NULL, *pub_name = NULL;
        char id[KEY_ID_LENGTH + 1];
        int r;

        REQUIRE(a, output, "output");
        if (!filename_is_valid(a->name))
                return log_error_errno(EINVAL, "Invalid key name '%s'.", a->name);
        if (asprintf(&priv_name, "%s.key", a->name) < 0 || asprintf(&pub_name, "%s.pem", a->name) < 0)
                return log_oom();
        priv = path_join(a->output, priv_name);
        pub = path_join(a->output, pub_name);
        if (!priv || !pub)
                return log_oom();

        if (access(priv, F_OK) == 0)
                return log_error_errno(EEXIST, "%s exists already; refusing to overwrite a release key.", priv);
        r = mkdir_p(a->output, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", a->output);

        r = ed25519_generate(&key);
        if (r < 0)
                return log_error_errno(r, "Failed to generate an ed25519 key: %m");
        r = key_save_private(key, priv);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", priv);
        r = key_save_public(key, pub);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", pub);
        r = key_get_id(key, id);
        if (r < 0)
                return log_error_errno(r, "Failed to compute the key id: %m");

        printf("key id:      %s\nprivate key: %s (keep it secret)\npublic key:  %s (ship it in the OS as /usr/lib/dreamlink/keys.d/%s)\n",
               id, priv, pub, pub_name);
        return 0;
}

static int open_release_repo(const char *root, bool create, OstreeRepo **ret) {
        _cleanup_free_ char *path = path_join(root, "repo");
        if (!path)
                return log_oom();
        return image_repo_open(path, create, ret);
}

/* An OCI image becomes a tree in a temporary directory below WORKDIR (default /var/tmp: the
 * tree of an OS does not fit a tmpfs /tmp), made a slot by os_tree_prepare(). */
static int tree_from_oci(const Args *a, char **ret_tree) {
        _cleanup_(rm_rf_and_freep) char *tree = NULL;
        int r;

        r = mkdtemp_below(a->workdir, "dreamlink-tree", &tree);
        if (r < 0)
                return log_error_errno(r, "Failed to create a directory in %s: %m", a->workdir ?: "/var/tmp");
        r = oci_image_unpack(a->from_oci, tree, a->workdir);
        if (r < 0)
                return r;
        r = os_tree_prepare(tree);
        if (r < 0)
                return r;
        *ret_tree = TAKE_PTR(tree);
        return 0;
}

static int verb_commit(const char *verb, const Args *a) {
        _cleanup_repo_ OstreeRepo *repo = NULL;
        _cleanup_(rm_rf_and_freep) char *unpacked = NULL;
        _cleanup_free_ char *checksum = NULL;
        int r;

        REQUIRE(a, root, "root");
        REQUIRE(a, branch, "branch");
        REQUIRE(a, version, "version");
        if (!a->tree == !a->from_oci)
                return log_error_errno(EINVAL, "%s: give either --tree or --from-oci.", verb);

        r = open_release_repo(a->root, true, &repo);
        if (r < 0)
                return r;
        if (a->from_oci) {
                r = tree_from_oci(a, &unpacked);
                if (r < 0)
                        return r;
        }
        const char * const overlays[] = { a->overlay, NULL };
        ImageCommit c = {
                .tree = a->tree ?: unpacked, .branch = a->branch, .version = a->version,
                .os_name = a->os, .cmdline = a->cmdline, .overlays = overlays,
        };
        r = image_repo_commit(repo, &c, &checksum);
        if (r < 0)
                return r;
        printf("%s\n", checksum);
        return 0;
}

/* The releases of a channel published so far, newest first: ROOT/channels/CHANNEL/N.json. */
typedef struct History {
        Manifest **releases;
        size_t n;
} History;

static void history_done(History *h) {
        for (size_t i = 0; i < h->n; i++)
                manifest_free(h->releases[i]);
        free(h->releases);
        *h = (History) {};
}

static int compare_counter_desc(const void *a, const void *b) {
        const Manifest *x = *(Manifest * const *) a, *y = *(Manifest * const *) b;
        return x->counter < y->counter ? 1 : x->counter > y->counter ? -1 : 0;
}

static int history_load(History *h, const char *dir) {
        _cleanup_strv_free_ char **files = NULL;
        const char * const dirs[] = { dir, NULL };
        int r;

        r = conf_files_list(dirs, ".json", &files);
        if (r < 0)
                return r;
        STRV_FOREACH(f, files) {
                _cleanup_(manifest_freep) Manifest *m = NULL;
                _cleanup_free_ char *text = NULL;
                size_t size;

                r = read_file_limited(*f, MANIFEST_SIZE_MAX, &text, &size);
                if (r >= 0)
                        r = manifest_parse(text, size, &m);
                if (r < 0) {
                        log_warning_errno(r, "Ignoring unreadable release record %s: %m", *f);
                        continue;
                }
                Manifest **l = realloc(h->releases, sizeof(Manifest *) * (h->n + 1));
                if (!l)
                        return -ENOMEM;
                h->releases = l;
                h->releases[h->n++] = TAKE_PTR(m);
        }
        if (h->n > 1)
                qsort(h->releases, h->n, sizeof(Manifest *), compare_counter_desc);
        return 0;
}

static int publish_file(const char *dir, const char *name, const char *data) {
        _cleanup_free_ char *p = path_join(dir, name);
        int r;

        if (!p)
                return log_oom();
        r = write_string_file_atomic(p, data, 0644);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", p);
        return 0;
}

static int verb_publish(const char *verb, const Args *a) {
        _cleanup_repo_ OstreeRepo *repo = NULL;
        _cleanup_pkey_ EVP_PKEY *key = NULL;
        _cleanup_free_ char *checksum = NULL, *version = NULL, *cmdline = NULL, *channels = NULL,
                            *history_dir = NULL, *text = NULL, *sig = NULL, *ref = NULL,
                            *release_name = NULL, *release_sig_name = NULL, *channel_name = NULL, *channel_sig_name = NULL;
        _cleanup_free_ ManifestDelta *deltas = NULL;
        _cleanup_(boot_info_done) BootInfo boot = {};
        _cleanup_(history_done) History history = {};
        char key_id[KEY_ID_LENGTH + 1], expires[FORMAT_TIMESTAMP_MAX], sizebuf[FORMAT_BYTES_MAX];
        size_t n_deltas = 0;
        uint64_t tree_size;
        int r;

        REQUIRE(a, root, "root");
        REQUIRE(a, key, "key");
        REQUIRE(a, channel, "channel");

        r = key_load_private(a->key, &key);
        if (r < 0)
                return log_error_errno(r, "Failed to load the release key %s (an ed25519 private key in PEM): %m", a->key);
        r = key_get_id(key, key_id);
        if (r < 0)
                return log_error_errno(r, "Failed to compute the key id: %m");

        r = open_release_repo(a->root, false, &repo);
        if (r < 0)
                return r;

        channels = path_join(a->root, "channels");
        if (!channels || asprintf(&history_dir, "%s/%s", channels, a->channel) < 0)
                return log_oom();
        r = mkdir_p(history_dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", history_dir);
        r = history_load(&history, history_dir);
        if (r < 0)
                return log_error_errno(r, "Failed to read the release history in %s: %m", history_dir);
        const Manifest *last = history.n > 0 ? history.releases[0] : NULL;

        /* Which commit: --rev, else the branch of the previous release. */
        const char *rev = a->rev ?: (last ? last->ref : NULL);
        if (!rev)
                return log_error_errno(EINVAL, "First release of channel '%s': say which commit with --rev=.", a->channel);
        r = image_repo_read_commit(repo, rev, &checksum, &version, &boot, &cmdline);
        if (r < 0)
                return log_error_errno(r, "Failed to read commit %s: %m", rev);
        /* Clients follow a branch; a bare checksum keeps the previous release's branch. */
        ref = strdup(strlen(rev) == 64 && last ? last->ref : rev);
        if (!ref)
                return log_oom();

        uint64_t counter = a->counter ?: (last ? last->counter + 1 : 1);
        if (last && counter <= last->counter)
                return log_error_errno(ESTALE, "Release counter %" PRIu64 " is not above the last published one (%" PRIu64 "): clients would refuse it.",
                                       counter, last->counter);

        deltas = calloc(a->delta_bases + 2, sizeof(ManifestDelta));
        if (!deltas)
                return log_oom();
        /* An explicit base, e.g. what machines on another channel run. */
        _cleanup_free_ char *from_checksum = NULL;
        if (a->delta_from) {
                uint64_t size;
                r = image_repo_read_commit(repo, a->delta_from, &from_checksum, NULL, NULL, NULL);
                if (r < 0)
                        return log_error_errno(r, "Failed to read the delta base %s: %m", a->delta_from);
                r = image_repo_generate_delta(repo, from_checksum, checksum, &size);
                if (r < 0)
                        return r;
                deltas[n_deltas++] = (ManifestDelta) { .from_commit = from_checksum, .size = size };
                printf("delta from %.12s: %s\n", from_checksum, format_bytes(sizebuf, sizeof(sizebuf), size));
        }
        for (size_t i = 0; i < history.n && n_deltas < a->delta_bases + !!a->delta_from; i++) {
                const Manifest *base = history.releases[i];
                uint64_t size;

                if (streq(base->commit, checksum) || streq_ptr(base->commit, from_checksum))
                        continue;
                r = image_repo_generate_delta(repo, base->commit, checksum, &size);
                if (r < 0)
                        return r;
                deltas[n_deltas++] = (ManifestDelta) { .from_commit = base->commit, .size = size };
                printf("delta from %s (%.12s): %s\n", base->version, base->commit,
                       format_bytes(sizebuf, sizeof(sizebuf), size));
        }

        r = image_repo_commit_size(repo, checksum, &tree_size);
        if (r < 0)
                return r;

        usec_t now = a->now ?: now_usec(CLOCK_REALTIME);
        Manifest m = {
                .os = (char *) a->os,
                .channel = (char *) a->channel,
                .version = version,
                .counter = counter,
                .ref = ref,
                .commit = checksum,
                .kernel = boot.kernel_version,
                .min_from_version = (char *) a->min_from_version,
                .issued = now,
                .expires = now + a->expires_in,
                .key_id = key_id,
                .tree_size = tree_size,
                .deltas = deltas,
                .n_deltas = n_deltas,
        };
        r = manifest_format(&m, &text);
        if (r >= 0)
                r = manifest_sign(text, strlen(text), key, &sig);
        if (r < 0)
                return log_error_errno(r, "Failed to build the signed manifest: %m");

        if (asprintf(&release_name, "%" PRIu64 ".json", counter) < 0 ||
            asprintf(&release_sig_name, "%" PRIu64 ".json.sig", counter) < 0 ||
            asprintf(&channel_name, "%s.json", a->channel) < 0 ||
            asprintf(&channel_sig_name, "%s.json.sig", a->channel) < 0)
                return log_oom();

        /* The history record before the channel: a crash in between leaves the channel at the old
         * release. A client racing the two writes of a pair sees a bad signature and retries later. */
        if ((r = publish_file(history_dir, release_sig_name, sig)) < 0 ||
            (r = publish_file(history_dir, release_name, text)) < 0 ||
            (r = publish_file(channels, channel_sig_name, sig)) < 0 ||
            (r = publish_file(channels, channel_name, text)) < 0)
                return r;

        r = image_repo_update_summary(repo);
        if (r < 0)
                return r;

        printf("published %s %s on channel %s: counter %" PRIu64 ", commit %.12s, kernel %s, %s, expires %s, key %s\n",
               a->os, version, a->channel, counter, checksum, boot.kernel_version,
               format_bytes(sizebuf, sizeof(sizebuf), tree_size),
               format_timestamp_utc(expires, sizeof(expires), m.expires), key_id);
        return 0;
}

static int verb_verify(const char *verb, const Args *a) {
        _cleanup_free_ char *text = NULL, *sig = NULL, *sig_path = NULL;
        _cleanup_(manifest_freep) Manifest *m = NULL;
        _cleanup_(keyring_done) Keyring keys = {};
        size_t size, sig_size;
        char buf[FORMAT_TIMESTAMP_MAX];
        int r;

        REQUIRE(a, keys, "keys");
        if (!a->positional[0] || a->positional[1])
                return log_error_errno(EINVAL, "%s needs exactly one manifest file.", verb);
        const char *path = a->positional[0];

        const char * const dirs[] = { a->keys, NULL };
        r = keyring_load_dirs(&keys, dirs);
        if (r < 0)
                return r;
        if (keys.n_keys == 0)
                return log_error_errno(ENOKEY, "No ed25519 public keys (*.pem) in %s.", a->keys);

        if (asprintf(&sig_path, "%s.sig", path) < 0)
                return log_oom();
        r = read_file_limited(path, MANIFEST_SIZE_MAX, &text, &size);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", path);
        r = read_file_limited(sig_path, SIGNATURE_SIZE_MAX, &sig, &sig_size);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", sig_path);

        ManifestPolicy policy = { .now = a->now ?: now_usec(CLOCK_REALTIME), .channel = a->channel };
        r = manifest_verify(text, size, sig, sig_size, &keys, &policy, &m);
        if (r < 0)
                return r;
        printf("%s: good signature by key %s\n  %s %s (counter %" PRIu64 ") on channel %s, commit %s, kernel %s, expires %s\n",
               path, m->key_id, m->os, m->version, m->counter, m->channel, m->commit, m->kernel,
               format_timestamp_utc(buf, sizeof(buf), m->expires));
        return 0;
}

static int verb_prepare(const char *verb, const Args *a) {
        REQUIRE(a, tree, "tree");
        return os_tree_prepare(a->tree);
}

static int verb_export(const char *verb, const Args *a) {
        REQUIRE(a, tree, "tree");
        REQUIRE(a, output, "output");
        return oci_export(a->tree, a->output, a->workdir);
}

static int verb_disk(const char *verb, const Args *a) {
        REQUIRE(a, root, "root");
        REQUIRE(a, rev, "rev");
        REQUIRE(a, output, "output");

        DiskImage d = {
                .release_root = a->root,
                .rev = a->rev,
                .output = a->output,
                .workdir = a->workdir,
                .esp_size = a->esp_size,
                .root_size = a->root_size,
                .var_size = a->var_size,
        };
        return disk_image_build(&d);
}

static const struct {
        const char *name;
        int (*run)(const char *verb, const Args *a);
} verbs[] = {
        { "keygen", verb_keygen },
        { "commit", verb_commit },
        { "publish", verb_publish },
        { "verify", verb_verify },
        { "disk", verb_disk },
        { "prepare", verb_prepare },
        { "export", verb_export },
};

int main(int argc, char *argv[]) {
        Args args;
        int r;

        log_setup("dreamlink-image");
        /* libarchive converts the UTF-8 names of pax headers (what podman writes) to the locale's
         * charset: one that holds every name. */
        (void) setlocale(LC_CTYPE, "C.UTF-8");

        if (argc < 2 || streq(argv[1], "-h") || streq(argv[1], "--help"))
                return help() < 0 ? EXIT_FAILURE : (argc < 2 ? EXIT_FAILURE : EXIT_SUCCESS);
        if (streq(argv[1], "--version")) {
                printf("dreamlink-image %s\n", PACKAGE_VERSION);
                return EXIT_SUCCESS;
        }

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                if (!streq(argv[1], verbs[i].name))
                        continue;
                r = parse_args(argc - 1, argv + 1, &args);
                if (r < 0)
                        return EXIT_FAILURE;
                r = verbs[i].run(verbs[i].name, &args);
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }
        log_error("Unknown command '%s'. See %s --help.", argv[1], program_invocation_short_name);
        return EXIT_FAILURE;
}
