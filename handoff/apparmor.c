/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The AppArmor profiles a unit's processes run under, saved at the dump and loaded again before
 * the restore when the new boot has not loaded them.
 *
 * CRIU gives each restored task its old label, and fails the restore ("can't write lsm profile")
 * when no profile of that name is loaded. Profiles from /etc/apparmor.d are loaded early in every
 * boot, but some exist only because a program loaded them: podman generates its
 * containers-default-VERSION profile and loads it when it starts a container, never when it
 * restores one (podman#12437), so after a kexec no container confined by it could come back.
 *
 * The kernel keeps the compiled policy it was given (securityfs' raw_data, when it exports
 * binaries, as Debian's kernels do); that blob is what is saved and loaded, through .load, which
 * never replaces a profile the new boot has: a newer profile of the new release wins. */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"
#include "string-util.h"
#include "time-util.h"

#define APPARMOR_FS "/sys/kernel/security/apparmor"
#define APPARMOR_POLICY_MAX (64U << 20)

int apparmor_label_profile(const char *label, char **ret) {
        assert(label);

        *ret = NULL;
        /* "NAME (MODE)\n", "unconfined\n"; a stack "A//&B" or a namespace ":NS:NAME" is policy
         * someone else (LXD, a container manager) keeps and loads. */
        size_t n = strcspn(label, "\n");
        while (n > 0 && label[n - 1] == ' ')
                n--;
        if (n > 0 && label[n - 1] == ')') {
                const char *open = memrchr(label, '(', n);
                if (!open || open == label || open[-1] != ' ')
                        return -EBADMSG;
                n = open - 1 - label;
        }
        if (n == 0)
                return -EBADMSG;
        _cleanup_free_ char *name = strndup(label, n);
        if (!name)
                return -ENOMEM;
        if (streq(name, "unconfined") || name[0] == ':' || strstr(name, "//&"))
                return 0;
        /* A hat or child profile comes with its parent's policy. */
        char *child = strstr(name, "//");
        if (child)
                *child = 0;
        *ret = TAKE_PTR(name);
        return 1;
}

static int pid_apparmor_profile(pid_t pid, char **ret) {
        _cleanup_free_ char *label = NULL;
        char path[64];
        int r;

        snprintf(path, sizeof(path), "/proc/" PID_FMT "/attr/apparmor/current", pid);
        r = read_file_limited(path, 4096, &label, NULL);
        if (r == -ENOENT) {
                /* Kernels before 5.8 have only the major LSM's attribute. */
                snprintf(path, sizeof(path), "/proc/" PID_FMT "/attr/current", pid);
                r = read_file_limited(path, 4096, &label, NULL);
        }
        if (r < 0)
                return r;
        return apparmor_label_profile(label, ret);
}

/* Whether a profile of this name is loaded: "NAME (MODE)" lines of the profiles file. */
static int profile_is_loaded(const char *fs, const char *name) {
        _cleanup_free_ char *path = strprintf("%s/profiles", fs), *text = NULL;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_file_limited(path, 16U << 20, &text, NULL);
        if (r < 0)
                return r;
        size_t len = strlen(name);
        for (const char *p = text; *p; ) {
                size_t line = strcspn(p, "\n");
                if (line > len + 1 && strncmp(p, name, len) == 0 && strncmp(p + len, " (", 2) == 0)
                        return 1;
                p += line + (p[line] == '\n');
        }
        return 0;
}

/* The compiled policy the profile was loaded from: securityfs names each profile's directory
 * after the profile, made safe for a file name, and a counter, so the name file tells. */
static int profile_policy(const char *fs, const char *name, char **ret, size_t *ret_size) {
        _cleanup_free_ char *dir = strprintf("%s/policy/profiles", fs);
        if (!dir)
                return -ENOMEM;
        _cleanup_(closedirp) DIR *d = opendir(dir);
        if (!d)
                return -errno;
        for (struct dirent *de; (de = readdir(d));) {
                _cleanup_free_ char *name_path = NULL, *text = NULL;
                if (de->d_name[0] == '.')
                        continue;
                name_path = strprintf("%s/%s/name", dir, de->d_name);
                if (!name_path)
                        return -ENOMEM;
                if (read_file_limited(name_path, 4096, &text, NULL) < 0)
                        continue;
                text[strcspn(text, "\n")] = 0;
                if (!streq(text, name))
                        continue;
                _cleanup_free_ char *raw = strprintf("%s/%s/raw_data", dir, de->d_name);
                if (!raw)
                        return -ENOMEM;
                /* No raw_data: the kernel was told not to keep binaries (apparmor.export_binary=0). */
                return read_file_limited(raw, APPARMOR_POLICY_MAX, ret, ret_size);
        }
        return -ENOENT;
}

int apparmor_save_profiles_at(const char *fs, const char *unit, char * const *names, const char *dir) {
        _cleanup_free_ char *save_dir = strprintf("%s/" APPARMOR_DIR, dir);
        unsigned saved = 0;
        int r;

        if (!save_dir)
                return log_oom();
        STRV_FOREACH(name, names) {
                _cleanup_free_ char *policy = NULL, *name_file = NULL, *policy_file = NULL;
                size_t size = 0;

                r = profile_policy(fs, *name, &policy, &size);
                if (r == -ENOMEM)
                        return log_oom();
                if (r < 0) {
                        /* Not fatal: /etc/apparmor.d may well load it in the new boot. */
                        log_unit_warning_errno(unit, r, "Cannot save the AppArmor policy of %s's profile %s, its "
                                               "restore fails unless the new boot loads that profile: %m", unit, *name);
                        continue;
                }
                if (saved == 0 && mkdir(save_dir, 0700) < 0 && errno != EEXIST)
                        return log_unit_error_errno(unit, errno, "Failed to create %s: %m", save_dir);
                name_file = strprintf("%s/%u.name", save_dir, saved);
                policy_file = strprintf("%s/%u.policy", save_dir, saved);
                if (!name_file || !policy_file)
                        return log_oom();
                r = write_string_file_atomic(name_file, *name, 0600);
                if (r >= 0)
                        r = write_file_atomic(policy_file, policy, size, 0600);
                if (r < 0)
                        return log_unit_error_errno(unit, r, "Failed to save the AppArmor profile %s in %s: %m", *name,
                                                    save_dir);
                saved++;
        }
        return 0;
}

int apparmor_save(const char *unit, const pid_t *pids, size_t n, const char *dir) {
        _cleanup_strv_free_ char **names = NULL;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *name = NULL;
                int r = pid_apparmor_profile(pids[i], &name);
                if (r == -ENOMEM)
                        return log_oom();
                /* No attribute (no LSM, the process gone): nothing CRIU would restore either. */
                if (r <= 0 || strv_contains(names, name))
                        continue;
                if (strv_push(&names, TAKE_PTR(name)) < 0)
                        return log_oom();
        }
        if (!names)
                return 0;
        return apparmor_save_profiles_at(APPARMOR_FS, unit, names, dir);
}

static int load_policy(const char *fs, const char *policy_file) {
        _cleanup_free_ char *policy = NULL, *load = strprintf("%s/.load", fs);
        size_t size = 0;
        int r;

        if (!load)
                return -ENOMEM;
        r = read_file_limited(policy_file, APPARMOR_POLICY_MAX, &policy, &size);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(load, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* The kernel takes a policy in one write, never in pieces. */
        ssize_t k = write(fd, policy, size);
        if (k < 0)
                return errno == EEXIST ? 0 : -errno;
        return (size_t) k == size ? 0 : -EIO;
}

/* The kernel refused the saved policy (one compiled for another kernel's features, say): the
 * restore may run before this boot's apparmor.service has loaded its own profile of that name,
 * so wait for it, polling, at most wait_usec. 1 once it is there. */
static int wait_for_profile(const char *fs, const char *unit, const char *name, usec_t wait_usec) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + wait_usec;
        bool said = false;

        for (;;) {
                int r = profile_is_loaded(fs, name);
                if (r != 0)
                        return r;
                if (now_usec(CLOCK_MONOTONIC) >= end)
                        return 0;
                if (!said) {
                        log_unit_info(unit, "Waiting for this boot to load the AppArmor profile %s of %s (apparmor.service).",
                                      name, unit);
                        said = true;
                }
                (void) usleep(250 * 1000);
        }
}

int apparmor_load_saved_at(const char *fs, const char *unit, const char *dir, usec_t wait_usec) {
        int r;

        for (unsigned i = 0;; i++) {
                _cleanup_free_ char *name_file = strprintf("%s/" APPARMOR_DIR "/%u.name", dir, i);
                _cleanup_free_ char *policy_file = strprintf("%s/" APPARMOR_DIR "/%u.policy", dir, i);
                _cleanup_free_ char *name = NULL;

                if (!name_file || !policy_file)
                        return log_oom();
                r = read_file_limited(name_file, 4096, &name, NULL);
                if (r == -ENOENT)
                        return 0;
                if (r < 0)
                        return log_unit_error_errno(unit, r, "Failed to read %s: %m", name_file);
                r = profile_is_loaded(fs, name);
                if (r == -ENOENT) {
                        log_unit_warning(unit, "AppArmor is off in this boot: %s's processes cannot get their "
                                         "profile %s back.", unit, name);
                        return 0;
                }
                if (r < 0)
                        return log_unit_error_errno(unit, r, "Failed to tell whether the AppArmor profile %s is loaded: %m",
                                                    name);
                if (r > 0)
                        continue;
                r = load_policy(fs, policy_file);
                if (r < 0 && wait_for_profile(fs, unit, name, wait_usec) > 0)
                        log_unit_info(unit, "This boot loaded its own AppArmor profile %s for %s.", name, unit);
                else if (r < 0)
                        /* CRIU's own failure then says which task it could not label. */
                        log_unit_warning_errno(unit, r, "Failed to load %s's AppArmor profile %s again from %s: %m",
                                               unit, name, policy_file);
                else
                        log_unit_info(unit, "Loaded %s's AppArmor profile %s again, as its old boot had it.", unit,
                                      name);
        }
}

int apparmor_load_saved(const char *unit, const char *dir) {
        return apparmor_load_saved_at(APPARMOR_FS, unit, dir, APPARMOR_PROFILE_TIMEOUT);
}
