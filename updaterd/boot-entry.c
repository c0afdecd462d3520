/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot-entry.h"
#include "fileio.h"
#include "log.h"
#include "slot-status.h"
#include "string-util.h"

#define ENTRY_FILE_MAX (64U * 1024U)
#define LOADER_CONF_MAX (64U * 1024U)
#define TEMP_PREFIX ".#" /* write_file_atomic()'s and ours; systemd-boot reads only *.conf */

static bool slot_is_valid(Slot s) {
        return s >= 0 && s < _SLOT_MAX;
}

void boot_entry_state_done(BootEntryState *s) {
        free(s->version);
        free(s->options);
        free(s->filename);
        *s = (BootEntryState) {};
}

static int parse_counter_number(const char *s, size_t n, unsigned *ret) {
        _cleanup_free_ char *t = strndup(s, n);
        if (!t)
                return -ENOMEM;
        return parse_unsigned(t, ret);
}

/* Whether name is one of slot's entry files: "dreamlink-<slot>.conf" or
 * "dreamlink-<slot>+LEFT[-DONE].conf", and if so its counter. */
static bool entry_name_parse(const char *name, Slot slot, bool *ret_counting, unsigned *ret_left,
                             unsigned *ret_done) {
        char prefix[] = "dreamlink-?";
        unsigned left = 0, done = 0;

        prefix[strlen(prefix) - 1] = slot_to_string(slot)[0];
        const char *p = startswith(name, prefix);
        if (!p || !endswith(p, ".conf"))
                return false;
        size_t n = strlen(p) - strlen(".conf");

        if (n == 0) {
                *ret_counting = false;
                *ret_left = *ret_done = 0;
                return true;
        }
        if (p[0] != '+')
                return false;
        p++, n--;

        const char *dash = memchr(p, '-', n);
        size_t nl = dash ? (size_t) (dash - p) : n;
        if (nl == 0 || parse_counter_number(p, nl, &left) < 0)
                return false;
        if (dash && (n - nl - 1 == 0 || parse_counter_number(dash + 1, n - nl - 1, &done) < 0))
                return false;

        *ret_counting = true;
        *ret_left = left;
        *ret_done = done;
        return true;
}

/* Names of slot's entry files in ESP/loader/entries, sorted; none if the directory is missing. */
static int list_slot_entries(const char *entries_dir, Slot slot, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        DIR *d;
        struct dirent *de;
        int r = 0;

        d = opendir(entries_dir);
        if (!d) {
                if (errno == ENOENT) {
                        *ret = NULL;
                        return 0;
                }
                return -errno;
        }
        while ((errno = 0, de = readdir(d))) {
                bool counting;
                unsigned left, done;

                if (!entry_name_parse(de->d_name, slot, &counting, &left, &done))
                        continue;
                r = strv_extend(&l, de->d_name);
                if (r < 0)
                        break;
        }
        if (r == 0 && errno != 0)
                r = -errno;
        closedir(d);
        if (r < 0)
                return r;
        strv_sort(l);
        *ret = TAKE_PTR(l);
        return 0;
}

/* Removes temporary files a crash left behind in dir, those starting with prefix. */
static int remove_temp_files(const char *dir, const char *prefix) {
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d)))
                if (startswith(de->d_name, prefix)) {
                        log_debug("Removing leftover temporary file %s/%s.", dir, de->d_name);
                        (void) unlinkat(dirfd(d), de->d_name, 0);
                }
        closedir(d);
        return 0;
}

/* Copies src over dir/name so that dir/name is either the old or the new file
 * after a crash: temporary file in dir, fsync, rename, fsync of dir. */
static int copy_file_atomic(const char *src, const char *dir, const char *name) {
        _cleanup_free_ char *template = strprintf("%s/" TEMP_PREFIX "%s.XXXXXX", dir, name),
                            *dst = strprintf("%s/%s", dir, name);
        _cleanup_(unlink_and_freep) char *tmp = NULL;
        _cleanup_close_ int in = -EBADF, out = -EBADF;
        int r;

        if (!template || !dst)
                return log_oom();

        in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (in < 0)
                return log_error_errno(errno, "Failed to open %s: %m", src);
        out = mkostemp(template, O_CLOEXEC);
        if (out < 0)
                return log_error_errno(errno, "Failed to create temporary file in %s: %m", dir);
        tmp = TAKE_PTR(template); /* from here on, removed again unless renamed */

        r = copy_bytes(in, out);
        if (r < 0)
                return log_error_errno(r, "Failed to copy %s to %s: %m", src, dir);
        (void) fchmod(out, 0644); /* vfat has no modes; elsewhere (tests) be tidy */
        if (fsync(out) < 0)
                return log_error_errno(errno, "Failed to write %s: %m", tmp);
        if (rename(tmp, dst) < 0)
                return log_error_errno(errno, "Failed to rename %s to %s: %m", tmp, dst);
        tmp = mfree(tmp);
        r = fsync_directory_of(dst);
        if (r < 0)
                return log_error_errno(r, "Failed to sync %s: %m", dir);
        return 0;
}

/* A value that goes on one line of an entry: no control characters. */
static bool line_value_is_valid(const char *s) {
        if (isempty(s) || strlen(s) > 4096)
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return false;
        return true;
}

static int validate_info(Slot slot, const BootEntryInfo *info) {
        Slot root;

        if (!info || !info->kernel_src || !info->initrd_src)
                return log_error_errno(EINVAL, "Boot entry for slot %s lacks kernel or initrd.", strna(slot_to_string(slot)));
        if (!line_value_is_valid(info->version) || (info->title && !line_value_is_valid(info->title)) ||
            !line_value_is_valid(info->options))
                return log_error_errno(EINVAL, "Refusing boot entry for slot %s: version, title or options empty or not one line.",
                                       slot_to_string(slot));
        /* An entry that boots the other slot's root would silently defeat A/B. */
        if (slot_from_cmdline(info->options, &root) < 0 || root != slot)
                return log_error_errno(EINVAL, "Refusing boot entry for slot %s: its options do not boot root=PARTLABEL=root-%s.",
                                       slot_to_string(slot), slot_to_string(slot));
        return 0;
}

int boot_entry_install(const char *esp, Slot slot, const BootEntryInfo *info, unsigned tries) {
        _cleanup_free_ char *entries = NULL, *slot_dir = NULL, *name = NULL, *path = NULL, *text = NULL,
                            *temp_prefix = NULL;
        _cleanup_strv_free_ char **old = NULL;
        const char *s;
        int r;

        if (!esp || !slot_is_valid(slot))
                return -EINVAL;
        r = validate_info(slot, info);
        if (r < 0)
                return r;
        s = slot_to_string(slot);

        _cleanup_free_ char *esp_dir = slot_esp_dir(slot);
        entries = strprintf("%s/loader/entries", esp);
        slot_dir = esp_dir ? strprintf("%s%s", esp, esp_dir) : NULL;
        name = boot_entry_name(slot, tries);
        temp_prefix = strprintf(TEMP_PREFIX "dreamlink-%s", s);
        if (!entries || !slot_dir || !name || !temp_prefix)
                return log_oom();
        path = strprintf("%s/%s", entries, name);
        text = boot_entry_text(slot, info->title, info->version, info->options);
        if (!path || !text)
                return log_oom();

        if ((r = mkdir_p(entries, 0755)) < 0 || (r = mkdir_p(slot_dir, 0755)) < 0)
                return log_error_errno(r, "Failed to create directories on the ESP %s: %m", esp);

        /* What an earlier, interrupted install left: systemd-boot ignores it, we tidy up. */
        (void) remove_temp_files(slot_dir, TEMP_PREFIX);
        (void) remove_temp_files(entries, temp_prefix);

        /* Kernel and initrd before the entry: an entry must never point at missing files. */
        r = copy_file_atomic(info->kernel_src, slot_dir, SLOT_KERNEL_FILE);
        if (r < 0)
                return r;
        r = copy_file_atomic(info->initrd_src, slot_dir, SLOT_INITRD_FILE);
        if (r < 0)
                return r;

        r = list_slot_entries(entries, slot, &old);
        if (r < 0)
                return log_error_errno(r, "Failed to list %s: %m", entries);

        r = write_string_file_atomic(path, text, 0644);
        if (r < 0)
                return log_error_errno(r, "Failed to write boot entry %s: %m", path);

        /* Only now that the new entry is in place: a crash before this leaves two
         * entries of the slot, which the next install or remove settles. */
        bool removed = false;
        STRV_FOREACH(o, old) {
                if (streq(*o, name))
                        continue;
                _cleanup_free_ char *p = strprintf("%s/%s", entries, *o);
                if (!p)
                        return log_oom();
                if (unlink(p) < 0 && errno != ENOENT)
                        return log_error_errno(errno, "Failed to remove old boot entry %s: %m", p);
                removed = true;
        }
        if (removed) {
                r = fsync_directory_of(path);
                if (r < 0)
                        return log_error_errno(r, "Failed to sync %s: %m", entries);
        }

        log_debug("Installed boot entry %s for version %s.", path, info->version);
        return 0;
}

int boot_entry_remove(const char *esp, Slot slot) {
        _cleanup_free_ char *entries = NULL, *slot_dir = NULL, *temp_prefix = NULL;
        _cleanup_strv_free_ char **names = NULL;
        Slot def;
        int r;

        if (!esp || !slot_is_valid(slot))
                return -EINVAL;

        r = boot_default_get(esp, &def);
        if (r >= 0 && def == slot)
                return log_error_errno(EBUSY, "Refusing to remove the boot entry of slot %s: it is the default.",
                                       slot_to_string(slot));
        if (r < 0 && r != -ENOENT && r != -ENXIO)
                return r;

        entries = strprintf("%s/loader/entries", esp);
        _cleanup_free_ char *esp_dir = slot_esp_dir(slot);
        slot_dir = esp_dir ? strprintf("%s%s", esp, esp_dir) : NULL;
        temp_prefix = strprintf(TEMP_PREFIX "dreamlink-%s", slot_to_string(slot));
        if (!entries || !slot_dir || !temp_prefix)
                return log_oom();

        r = list_slot_entries(entries, slot, &names);
        if (r < 0)
                return log_error_errno(r, "Failed to list %s: %m", entries);
        /* Entries first, so that nothing ever points at a missing kernel. */
        STRV_FOREACH(n, names) {
                _cleanup_free_ char *p = strprintf("%s/%s", entries, *n);
                if (!p)
                        return log_oom();
                if (unlink(p) < 0 && errno != ENOENT)
                        return log_error_errno(errno, "Failed to remove boot entry %s: %m", p);
        }
        (void) remove_temp_files(entries, temp_prefix);
        if (names) {
                _cleanup_free_ char *p = strprintf("%s/%s", entries, names[0]);
                if (!p)
                        return log_oom();
                r = fsync_directory_of(p);
                if (r < 0)
                        return log_error_errno(r, "Failed to sync %s: %m", entries);
        }

        for (const char * const *f = (const char * const[]) { SLOT_KERNEL_FILE, SLOT_INITRD_FILE, NULL }; *f; f++) {
                _cleanup_free_ char *p = strprintf("%s/%s", slot_dir, *f);
                if (!p)
                        return log_oom();
                if (unlink(p) < 0 && errno != ENOENT)
                        return log_error_errno(errno, "Failed to remove %s: %m", p);
        }
        (void) remove_temp_files(slot_dir, TEMP_PREFIX);
        return 0;
}

/* The one entry file of slot in *ret_name (NULL if none); -ENOTUNIQ if several. */
static int find_slot_entry(const char *entries, Slot slot, char **ret_name) {
        _cleanup_strv_free_ char **names = NULL;
        int r;

        r = list_slot_entries(entries, slot, &names);
        if (r < 0)
                return log_error_errno(r, "Failed to list %s: %m", entries);
        if (strv_length(names) > 1)
                return log_error_errno(ENOTUNIQ, "Slot %s has several boot entries in %s (%s, %s…), an interrupted install?",
                                       slot_to_string(slot), entries, names[0], names[1]);
        *ret_name = names ? strdup(names[0]) : NULL;
        if (names && !*ret_name)
                return log_oom();
        return 0;
}

/* The value of the last "key value" line of a loader.conf or entry text, or NULL. Lines are
 * split as systemd-boot splits them (line_get_key_value()): blanks are spaces and tabs only, a
 * trailing \r is dropped, a key without a value is no line, one pair of quotes around the value
 * goes. Any other reading (say, isspace()'s) sees defaults systemd-boot does not, and a default
 * boot_default_set() wrote would not be the one read back. */
static int find_key(const char *text, const char *key, char **ret) {
        _cleanup_free_ char *found = NULL;
        size_t key_len = strlen(key);

        for (const char *p = text, *eol; *p; p = *eol ? eol + 1 : eol) {
                eol = strchrnul(p, '\n');
                const char *l = p, *end = eol;
                while (end > l && strchr(" \t\r", end[-1]))
                        end--;
                while (l < end && strchr(" \t", *l))
                        l++;
                if ((size_t) (end - l) <= key_len || memcmp(l, key, key_len) != 0 || !strchr(" \t", l[key_len]))
                        continue;
                const char *v = l + key_len;
                while (v < end && strchr(" \t", *v))
                        v++;
                size_t n = (size_t) (end - v);
                if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
                        v++;
                        n -= 2;
                }
                free(found);
                found = strndup(v, n);
                if (!found)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(found);
        return 0;
}

int boot_entry_read(const char *esp, Slot slot, BootEntryState *ret) {
        _cleanup_free_ char *entries = NULL, *name = NULL, *path = NULL, *text = NULL, *version = NULL,
                *options = NULL;
        BootEntryState st = {};
        size_t size;
        int r;

        if (!esp || !slot_is_valid(slot))
                return -EINVAL;
        entries = strprintf("%s/loader/entries", esp);
        if (!entries)
                return log_oom();
        r = find_slot_entry(entries, slot, &name);
        if (r < 0)
                return r;
        if (!name) {
                *ret = st;
                return 0;
        }

        path = strprintf("%s/%s", entries, name);
        if (!path)
                return log_oom();
        r = read_file_limited(path, ENTRY_FILE_MAX, &text, &size);
        if (r < 0)
                return log_error_errno(r == -EFBIG ? EBADMSG : r, "Failed to read boot entry %s: %m", path);
        if (strlen(text) != size)
                return log_error_errno(EBADMSG, "Boot entry %s contains NUL bytes.", path);
        r = find_key(text, "version", &version);
        if (r >= 0)
                r = find_key(text, "options", &options);
        if (r < 0)
                return log_oom();

        (void) entry_name_parse(name, slot, &st.counting, &st.tries_left, &st.tries_done);
        st.exists = true;
        st.version = TAKE_PTR(version);
        st.options = TAKE_PTR(options);
        st.filename = TAKE_PTR(name);
        *ret = st;
        return 0;
}

int boot_entry_bless(const char *esp, Slot slot) {
        _cleanup_free_ char *entries = NULL, *name = NULL, *from = NULL, *to = NULL;
        int r;

        if (!esp || !slot_is_valid(slot))
                return -EINVAL;
        entries = strprintf("%s/loader/entries", esp);
        if (!entries)
                return log_oom();
        r = find_slot_entry(entries, slot, &name);
        if (r < 0)
                return r;
        if (!name)
                return -ENOENT; /* the caller knows whether that is wrong */
        if (streq(name, boot_entry_id(slot)))
                return 0; /* already blessed */

        from = strprintf("%s/%s", entries, name);
        to = strprintf("%s/%s", entries, boot_entry_id(slot));
        if (!from || !to)
                return log_oom();
        if (rename(from, to) < 0)
                return log_error_errno(errno, "Failed to rename %s to %s: %m", from, to);
        r = fsync_directory_of(to);
        if (r < 0)
                return log_error_errno(r, "Failed to sync %s: %m", entries);
        log_debug("Blessed boot entry %s (was %s).", to, name);
        return 0;
}

static int read_loader_conf(const char *esp, char **ret_path, char **ret_text) {
        _cleanup_free_ char *path = strprintf("%s/loader/loader.conf", esp), *text = NULL;
        size_t size;
        int r;

        if (!path)
                return log_oom();
        r = read_file_limited(path, LOADER_CONF_MAX, &text, &size);
        if (r == -ENOENT) {
                *ret_path = TAKE_PTR(path);
                *ret_text = NULL;
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", path);
        if (strlen(text) != size)
                return log_error_errno(EBADMSG, "%s contains NUL bytes.", path);
        *ret_path = TAKE_PTR(path);
        *ret_text = TAKE_PTR(text);
        return 0;
}

int boot_default_get(const char *esp, Slot *ret) {
        _cleanup_free_ char *path = NULL, *text = NULL, *value = NULL;
        int r;

        if (!esp)
                return -EINVAL;
        r = read_loader_conf(esp, &path, &text);
        if (r < 0)
                return r;
        if (!text)
                return -ENOENT;
        r = find_key(text, "default", &value);
        if (r < 0)
                return log_oom();
        if (!value)
                return -ENOENT;
        /* systemd-boot case-folds both the pattern and the entry ids. */
        for (Slot s = 0; s < _SLOT_MAX; s++)
                if (strcasecmp(value, boot_entry_id(s)) == 0) {
                        *ret = s;
                        return 0;
                }
        return -ENXIO;
}

int boot_default_set(const char *esp, Slot slot) {
        _cleanup_free_ char *path = NULL, *text = NULL, *dir = NULL, *out = NULL;
        size_t n = 0;
        bool replaced = false;
        int r;

        if (!esp || !slot_is_valid(slot))
                return -EINVAL;
        r = read_loader_conf(esp, &path, &text);
        if (r < 0)
                return r;

        const char *p = strempty(text);
        out = malloc(strlen(p) + 64);
        if (!out)
                return log_oom();
        while (*p) {
                const char *eol = strchrnul(p, '\n');
                size_t len = (size_t) (eol - p);
                const char *l = p, *v;

                while (l < eol && (*l == ' ' || *l == '\t'))
                        l++;
                v = startswith(l, "default");
                if (v && v <= eol && (v == eol || *v == ' ' || *v == '\t')) {
                        /* Later default lines would override ours: drop them. */
                        if (!replaced)
                                n += (size_t) sprintf(out + n, "default %s\n", boot_entry_id(slot));
                        replaced = true;
                } else {
                        memcpy(out + n, p, len);
                        n += len;
                        out[n++] = '\n';
                }
                p = *eol ? eol + 1 : eol;
        }
        if (!replaced)
                n += (size_t) sprintf(out + n, "default %s\n", boot_entry_id(slot));

        dir = strprintf("%s/loader", esp);
        if (!dir)
                return log_oom();
        r = mkdir_p(dir, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", dir);
        r = write_file_atomic(path, out, n, 0644);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        log_debug("Default boot entry is now %s.", boot_entry_id(slot));
        return 0;
}
