/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What criu's logs say went wrong, in the words of the person who opted the service in: criu
 * logs the cause as its first error, but some of its errors are harmless, and its words
 * ("Consider using --ext-unix-sk") name its own options, not the setting a user can change. */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "string-util.h"

/* Logged as errors, but criu goes on. */
static const char * const harmless_errors[] = {
        /* The feature probes of criu's first run in a boot. */
        "tun: Unable to create tun",
        /* A process born after the pre-dump has no pages there: criu dumps it whole. */
        "No parent image found, though parent directory is set",
};

/* criu's words → what they mean for the service, and what to change. Keep in step with
 * dreamlink-handoff(8), LIMITS, and docs/services.md. */
static const struct {
        const char *match;
        const char *hint;
} hints[] = {
        { "External socket is used",
          "it holds a unix stream connection to a program outside the service (or a socket connected to an "
          "unnamed one), which cannot be carried: the other end stays behind. Its journal streams and its "
          "datagram sockets to named sockets (syslog) are not the cause, dreamlink carries those" },
        { "Can't dump half of stream unix connection",
          "it holds a unix stream connection to a program outside the service, which cannot be carried" },
        { "doesn't live in IPC ns",
          "it uses System V shared memory of the whole machine: it needs an IPC namespace of its own, "
          "which dreamlink gives opted-in services (PrivateIPC=yes): restart the service for that to apply" },
        { "Can't dump nested",
          "a process of it made a namespace of its own (a sandbox per connection, like vsftpd's isolate=YES), "
          "which cannot be carried: dreamlink forbids opted-in services to (RestrictNamespaces=), restart the "
          "service for that to apply" },
        { "doesn't belong to the target user namespace",
          "it runs in a user namespace of its own (PrivateUsers=yes), which cannot be carried: dreamlink "
          "turns it off for opted-in services, restart the service for that to apply" },
        { "is not a part of process tree",
          "it holds a pidfd of a process outside it, which cannot be carried (every connection to the system "
          "bus holds one of the bus's listener, PID 1: close it before the switch, as updatectl does)" },
        { "memory.pressure",
          "systemd watches its memory pressure (MemoryPressureWatch=) through a file criu cannot carry: "
          "dreamlink turns it off for opted-in services, restart the service for that to apply" },
        { "has more than 32 groups",
          "a netlink socket of the service listens to more than 32 multicast groups (FRR's zebra does, for "
          "rtnetlink's tunnel and next-hop events), which CRIU cannot carry yet: it restarts fresh, as FRR "
          "is made to (its daemons learn the kernel's state again at start)" },
        { "Can't fork for",
          "a process of this boot holds one of the service's PIDs" },
        /* CRIU's code runs inside the service's main process, under its AppArmor profile (Debian's
         * tor 0.4.9 ships one, system_tor), and opens /proc and its cgroup file there. */
        { "get /proc",
          "CRIU's code inside the service cannot read /proc: the service's AppArmor profile denies it (the "
          "kernel logs apparmor=\"DENIED\" for /proc/). Allow it in the profile's local additions, "
          "/etc/apparmor.d/local/PROFILE (PROFILE: what /proc/MAINPID/attr/current names), with the three lines "
          "'@{PROC}/ r,' '@{PROC}/@{pid}/cgroup r,' '@{PROC}/@{pid}/task/@{tid}/cgroup r,', then "
          "apparmor_parser -r /etc/apparmor.d/PROFILE" },
};

const char *criu_error_hint(const char *error) {
        if (!error)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(hints); i++)
                if (strstr(error, hints[i].match))
                        return hints[i].hint;
        return NULL;
}

/* criu 4.2 logs the group bitmap of a netlink socket it cannot take ("netlink: 8 2") as an
 * error of its own, just before the one that says why. */
static bool is_netlink_groups_preamble(const char *line, const char *end) {
        const char *m = strstr(line, "): netlink: ");
        unsigned size, groups;
        int n = 0;
        if (!m || (end && m > end))
                return false;
        return sscanf(m, "): netlink: %u %x%n", &size, &groups, &n) == 2 && m + n == (end ?: m + strlen(m));
}

static bool error_is_harmless(const char *line, const char *end) {
        for (size_t i = 0; i < ELEMENTSOF(harmless_errors); i++) {
                const char *m = strstr(line, harmless_errors[i]);
                if (m && (!end || m < end))
                        return true;
        }
        return is_netlink_groups_preamble(line, end);
}

int criu_log_reason(const char *path, unsigned lines, char **ret_tail, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r;

        r = read_file_limited(path, 64U << 20, &text, &size);
        if (r < 0)
                return r;
        if (ret_error) {
                *ret_error = NULL;
                /* criu's first error is the cause; later ones are the fallout. */
                for (char *p = text; p && *p; ) {
                        char *e = strchr(p, '\n');
                        const char *err = strstr(p, "Error (");
                        if (err && (!e || err < e) && !error_is_harmless(p, e)) {
                                const char *msg = strstr(err, "): ");
                                msg = msg && (!e || msg < e) ? msg + 3 : err;
                                *ret_error = e ? strndup(msg, (size_t) (e - msg)) : strdup(msg);
                                break;
                        }
                        p = e ? e + 1 : NULL;
                }
        }
        if (ret_tail) {
                while (size > 0 && text[size - 1] == '\n')
                        text[--size] = 0;
                char *p = text + size;
                unsigned n = 0;
                while (p > text && n < lines)
                        if (*--p == '\n')
                                n++;
                if (*p == '\n')
                        p++;
                *ret_tail = strdup(p);
        }
        return 0;
}

int criu_explain(const char *error, char **ret) {
        assert(error);
        const char *hint = criu_error_hint(error);
        if (!hint)
                return (*ret = strdup(error)) ? 0 : -ENOMEM;
        return asprintf(ret, "%s (criu: %s)", hint, error) < 0 ? -ENOMEM : 0;
}

void criu_failure_reason(const char *log, char **ret) {
        _cleanup_free_ char *error = NULL;
        *ret = NULL;
        if (criu_log_reason(log, 5, NULL, &error) < 0 || !error) {
                if (asprintf(ret, "criu failed, see %s", log) < 0)
                        *ret = NULL;
                return;
        }
        (void) criu_explain(error, ret);
}
