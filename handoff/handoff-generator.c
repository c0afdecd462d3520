/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dreamlink-handoff-generator: on every boot and reload, gives each service
 * opted in by handoff.d what CRIU needs of it (opt_in_dropin), so that one
 * Unit= line is all a user writes; in the boot a handoff switched into, also
 * turns the next start of each checkpointed unit into its restore. See
 * dreamlink-handoff(8), "OPTING IN" and "ACROSS A KEXEC".
 *
 * The kernel command line written by the switch carries, for this boot only
 * (a later reboot, or a power cut, boots without it and the units start
 * fresh), the checkpoint set, its units and a PID floor (handoff-cmdline.h).
 *
 * Generators run before /var is mounted, so everything comes from there. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dropin.h"
#include "fileio.h"
#include "handoff-cmdline.h"
#include "handoff-config.h"
#include "handoff.h"
#include "log.h"
#include "proc-cmdline.h"
#include "string-util.h"
#include "unit-file.h"

#define LOCK_UNIT "dreamlink-handoff-lock.service"
#define PROBE_UNIT "dreamlink-handoff-probe.service"
#define FINISH_UNIT "dreamlink-boot-check.service"
/* A restored unit's share of the CPU and the disk while the boot runs: ten times the default
 * (100) of the units starting fresh beside it. */
#define RESTORE_STARTUP_WEIGHT "1000"
#define FRESH_CONTAINER_DROPIN_NAME "zz-dreamlink-after-restored-containers.conf"
#define RESTORE_PATH_DROPIN_NAME "zz-dreamlink-restores-wait.conf"

/* What the restores wait for, which a boot starts beside apparmor.service's compilation of the
 * policy and, under load, spends seconds on each: the restore drop-in's own orderings (the file
 * systems: systemd-remount-fs and the static device nodes before local-fs.target, which
 * systemd-tmpfiles-setup-dev needs the system users for; systemd-tmpfiles-setup, which starts
 * once the journal is flushed to /var; the sysctls, after the modules, which criu's probes also
 * wait for); the addresses restore-exec waits for, which networkd configures after
 * network-pre.target (systemd-network-generator) and the sysctls, once udev has initialised the
 * links (udevd starts after its credentials are loaded, systemd >= 256: 12.7 s of the bench's
 * boot without the weight); the checks of the file systems behind the automounts restore-exec
 * opens (systemd-fsck@: a template's drop-in is every instance's). They share the restores' weight (priority
 * inheritance) until the boot is done. */
static const char *const restore_path_units[] = {
        "systemd-remount-fs.service",
        "systemd-sysusers.service",
        "kmod-static-nodes.service",
        "systemd-tmpfiles-setup-dev-early.service",
        "systemd-tmpfiles-setup-dev.service",
        "systemd-journald.service",
        "systemd-journal-flush.service",
        "systemd-tmpfiles-setup.service",
        "systemd-modules-load.service",
        "systemd-sysctl.service",
        "systemd-network-generator.service",
        "systemd-udev-load-credentials.service",
        "systemd-udevd.service",
        "systemd-networkd.service",
        "systemd-fsck@.service",
};

static int write_proc(const char *path, const char *value) {
        FILE *f = fopen(path, "we");
        if (!f)
                return -errno;
        int r = fputs(value, f) < 0 ? -EIO : 0;
        if (fclose(f) < 0 && r >= 0)
                r = -errno;
        return r;
}

/* A restored unit's own ordering after these goes for its restore (restore_fragment). */
static char * const network_targets[] = { (char *) "network.target", (char *) "network-online.target", NULL };

static int write_in(const char *dir, const char *unit, const char *name, const char *text) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s.d/%s", dir, unit, name) < 0)
                return log_oom();
        int r = write_string_file_atomic_mkdir(path, text, 0644);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        return 0;
}

/* TARGET.wants/UNIT in the generator directory: systemd goes by the link's name. */
static int add_wants(const char *dir, const char *target, const char *unit) {
        _cleanup_free_ char *wants = NULL, *link = NULL, *dest = NULL;
        if (asprintf(&wants, "%s/%s.wants", dir, target) < 0 || asprintf(&link, "%s/%s", wants, unit) < 0 ||
            asprintf(&dest, UNITDIR "/%s", unit) < 0)
                return log_oom();
        int r = mkdir_p(wants, 0755);
        if (r >= 0 && symlink(dest, link) < 0 && errno != EEXIST)
                r = -errno;
        if (r < 0)
                return log_error_errno(r, "Failed to add %s to %s: %m", unit, target);
        return 0;
}

/* Processes of this early boot have taken low PIDs already; the ones
 * started from here on get PIDs above the floor, leaving the checkpointed
 * processes' PIDs free for their restore. */
static void reserve_pids(uint64_t floor) {
        uint64_t pid_max = 0;
        _cleanup_free_ char *cur = NULL, *max = NULL;

        if (read_file_limited("/proc/sys/kernel/pid_max", 64, &max, NULL) >= 0)
                (void) parse_uint64(strstrip(max), &pid_max);
        if (pid_max <= floor + 4096) {
                char buf[32];
                snprintf(buf, sizeof(buf), "%" PRIu64, floor + 65536 < (1U << 22) ? floor + 65536 : (1U << 22));
                int r = write_proc("/proc/sys/kernel/pid_max", buf);
                if (r < 0)
                        log_warning_errno(r, "Failed to raise kernel.pid_max to %s: %m", buf);
        }
        uint64_t last = 0;
        if (read_file_limited("/proc/sys/kernel/ns_last_pid", 64, &cur, NULL) >= 0)
                (void) parse_uint64(strstrip(cur), &last);
        if (last >= floor)
                return; /* a later run (daemon-reload): done already */
        char buf[32];
        snprintf(buf, sizeof(buf), "%" PRIu64, floor);
        int r = write_proc("/proc/sys/kernel/ns_last_pid", buf);
        if (r < 0)
                log_warning_errno(r, "Failed to move the next PID above %s, restores may clash: %m", buf);
}

/* Opted-in services only: the settings CRIU cannot take are the ones of the unit as the
 * vendor wrote it. Sorted late among drop-ins so that it wins over the vendor's, while the
 * admin can still override it (a later name, or the same name in /etc/systemd/system). */
static const char opt_in_dropin[] =
        "# Written by dreamlink-handoff-generator for a service opted in to handoff (handoff.d(5)):\n"
        "# what CRIU needs of it, see dreamlink-handoff(8), OPTING IN.\n"
        "[Service]\n"
        /* CRIU cannot dump a user namespace that owns none of the service's other namespaces
         * ("namespaces doesn't belong to the target user namespace"). */
        "PrivateUsers=no\n"
        /* systemd binds the cgroup's memory.pressure file into sandboxed services; CRIU
         * cannot restore that bind. */
        "MemoryPressureWatch=off\n";

/* For a service carried itself, not for sshd whose logins are (Sessions=yes): every login
 * inherits sshd's namespaces and seccomp filter, so these would put an admin's mounts, System V
 * IPC and /dev/shm apart from the machine's and forbid its users rootless containers. A login
 * that needs what they give is refused at pre-flight instead. */
static const char opt_in_service_dropin[] =
        /* CRIU dumps System V IPC (PostgreSQL's segment) only with the namespace it lives in,
         * and only when that namespace is the service's own. */
        "PrivateIPC=yes\n"
        /* POSIX shared memory lives in /dev/shm, the machine's tmpfs: CRIU leaves it out as
         * not the service's, and the kexec empties it (PostgreSQL's dynamic segments). A
         * tmpfs of the service's own is part of its mount namespace, dumped with its contents. */
        "TemporaryFileSystem=/dev/shm:mode=1777,nosuid,nodev\n"
        /* CRIU takes PID, IPC, UTS, user, cgroup and time namespaces only as the whole tree's,
         * never one a process of it made (vsftpd's sandbox per connection, isolate=YES), and
         * restores a network namespace a process made only inside one of the service's own,
         * never beside the machine's (isolate_network=YES). A program that tries gets EPERM,
         * which vsftpd takes as "no namespaces here": it forks plainly. */
        "RestrictNamespaces=~pid ipc uts user cgroup time net\n";

/* What a service's own unit files call for, beyond opt_in_service_dropin. *ret: the lines, or
 * NULL when there are none. */
static int unit_specific_lines(const char *root, const char *unit, char **ret) {
        _cleanup_(unit_settings_done) UnitSettings e = {};
        _cleanup_free_ char *reap = NULL;
        bool private_tmp = false;
        int r;

        *ret = NULL;
        r = unit_settings_read(root, unit, &e);
        if (r == -ENOENT)
                return 0; /* not installed (yet): the drop-in is written again at the next reload */
        if (r < 0)
                return log_error_errno(r, "Failed to read the unit files of %s: %m", unit);
        if (e.masked)
                return 0;

        /* A Type=forking service's start script may leave several daemons, each reparented to
         * PID 1 (FRR's frrinit.sh): CRIU takes one tree. Its ExecStart= runs under `dreamlink-handoff
         * reap`, which stays their parent when there is more than one (reaper.c). */
        if (streq_ptr(e.type, "forking") && strv_length(e.exec_start) == 1) {
                const char *cmd = e.exec_start[0];
                size_t n = strspn(cmd, "-:+!@"); /* systemd's prefixes, which stay in front */
                if (memchr(cmd, '@', n))
                        /* "@" gives the program another argv[0], which reap cannot pass on. */
                        log_warning("%s: ExecStart= sets argv[0] (\"@\"); its daemons are not collected into one tree.", unit);
                else if (!(reap = strprintf("ExecStart=\nExecStart=%.*s" HANDOFF_HELPER_PATH " reap %s\n", (int) n, cmd, cmd + n)))
                        return log_oom();
        }

        /* PrivateTmp=yes binds directories of the machine's /tmp and /var/tmp, which systemd
         * deletes when the dump ends the service: what it kept there would be lost. A tmpfs on each
         * instead is part of the service's mount namespace, which CRIU dumps with its contents.
         * Not PrivateTmp=disconnected: systemd binds both from subdirectories of one tmpfs whose
         * root it leaves mounted nowhere, and CRIU refuses such a bind ("doesn't have a proper
         * root mount"). Their lifetime is the same (the service's); /var/tmp is in memory. */
        if (e.private_tmp)
                private_tmp = parse_boolean(e.private_tmp) > 0;

        *ret = strprintf("%s%s", strempty(reap),
                         private_tmp ? "PrivateTmp=no\n"
                                       "TemporaryFileSystem=/tmp:mode=1777,nosuid,nodev /var/tmp:mode=1777,nosuid,nodev\n" : "");
        return *ret ? 0 : log_oom();
}

static void write_opt_in_dropins(const char *normal_dir) {
        _cleanup_(handoff_config_freep) HandoffUnit **config = NULL;
        /* For tests: a root holding etc/dreamlink/handoff.d and the unit directories. */
        const char *root = secure_getenv("DREAMLINK_HANDOFF_CONFIG_ROOT");
        int r = handoff_config_load(root, &config);
        if (r < 0) {
                log_error_errno(r, "Failed to read handoff.d, opted-in services get no drop-in: %m");
                return;
        }
        for (HandoffUnit **u = config; *u; u++) {
                _cleanup_free_ char *text = NULL, *own = NULL;
                if (!(*u)->enabled)
                        continue;
                /* A quadlet unit's container is checkpointed by podman, which needs none of this
                 * and could not make its namespaces with RestrictNamespaces=. */
                _cleanup_free_ char *quadlet = NULL;
                if (unit_quadlet_source(root, (*u)->unit, &quadlet) > 0)
                        continue;
                if (!(*u)->sessions)
                        (void) unit_specific_lines(root, (*u)->unit, &own);
                text = strprintf("%s%s%s", opt_in_dropin, (*u)->sessions ? "" : opt_in_service_dropin, strempty(own));
                if (!text) {
                        log_oom();
                        return;
                }
                (void) write_in(normal_dir, (*u)->unit, OPT_IN_DROPIN_NAME, text);
        }
}

/* Podman gives an address of its networks to the first container that asks, and a container
 * restored needs the one it had: its connections are bound to it. The quadlet units that start
 * fresh in this boot wait for the restored ones (After=, not more: a failed restore holds nobody
 * back). Containers started otherwise (a script's `podman run`) are not ordered. */
static int order_fresh_containers(const char *normal_dir, char * const *restored) {
        _cleanup_strv_free_ char **carried = NULL, **all = NULL;
        _cleanup_free_ char *after = NULL, *text = NULL;
        const char *root = secure_getenv("DREAMLINK_HANDOFF_CONFIG_ROOT");

        STRV_FOREACH(u, restored) {
                _cleanup_free_ char *source = NULL;
                if (unit_quadlet_source(root, *u, &source) > 0 && strv_extend(&carried, *u) < 0)
                        return log_oom();
        }
        if (!carried)
                return 0;
        int r = quadlet_units(root, &all);
        if (r < 0)
                return log_error_errno(r, "Failed to list quadlet's units: %m");
        after = strv_join(carried, " ");
        text = after ? strprintf("[Unit]\nAfter=%s\n", after) : NULL;
        if (!text)
                return log_oom();
        STRV_FOREACH(u, all)
                if (!strv_contains(carried, *u)) {
                        r = write_in(normal_dir, *u, FRESH_CONTAINER_DROPIN_NAME, text);
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* The restore needs the addresses its sockets are bound to, which restore-exec waits for, not the
 * network (network.target: systemd-networkd started, after the lock; most services' units order
 * themselves after it for their start and, in reverse, to stop before the network goes). For
 * this boot's start of UNIT only, a copy of its fragment without that ordering, in the early
 * generator directory, which comes before /etc and /usr; the boot check's reload, generating
 * none, gives the unit its own back. Drop-ins cannot remove a dependency: an ordering a drop-in
 * adds stays, as does all of a unit another generator makes (no fragment in the unit
 * directories). Should the machine shut down before the boot check, the unit stops beside the
 * network rather than before it. */
static int restore_fragment(const char *early_dir, const char *root, const char *unit) {
        _cleanup_free_ char *from = NULL, *text = NULL, *path = NULL, *full = NULL;

        int r = unit_fragment_drop_after(root, unit, network_targets, &from, &text);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0 && r != -ENOENT)
                return log_warning_errno(r, "%s: failed to read its unit file, its restore waits for the network: %m", unit);
        if (r <= 0)
                return 0;
        if (asprintf(&path, "%s/%s", early_dir, unit) < 0 ||
            asprintf(&full, "# Written by dreamlink-handoff-generator for the restore of %s in this boot\n"
                            "# (dreamlink-handoff(8), ACROSS A KEXEC): %s without its ordering after\n"
                            "# network.target and network-online.target. The boot check's reload brings it back.\n%s",
                     unit, from, text) < 0)
                return log_oom();
        r = write_string_file_atomic_mkdir(path, full, 0644);
        if (r < 0)
                return log_error_errno(r, "Failed to write %s: %m", path);
        return 0;
}

static int run(const char *normal_dir, const char *early_dir) {
        _cleanup_(handoff_cmdline_done) HandoffCmdline c = {};
        _cleanup_free_ char *after = NULL;
        int r;

        write_opt_in_dropins(normal_dir);

        if (access(HANDOFF_FINISHED_FILE, F_OK) >= 0)
                return 0; /* the restores are over: the units are themselves again */
        r = handoff_cmdline_parse(NULL, &c);
        if (r == -ENOENT)
                return 0;
        if (r == -EINVAL)
                return log_error_errno(r, "Ignoring dreamlink.handoff= of the kernel command line: not a checkpoint set id.");
        if (r < 0)
                return log_error_errno(r, "Failed to read the kernel command line: %m");
        STRV_FOREACH(w, c.rejected)
                log_error("Ignoring %s of the kernel command line: not a service name or not a PID.", *w);
        if (c.pid_floor > 0)
                reserve_pids(c.pid_floor);
        /* Sessions or services: their connections are held until they are back. */
        r = add_wants(normal_dir, "sysinit.target", LOCK_UNIT);
        if (r < 0)
                return r;
        /* criu's probes of the kernel, once, from the start of the boot: the restores (and the
         * boot check's of sessions) find them cached. */
        r = add_wants(normal_dir, "sysinit.target", PROBE_UNIT);
        if (r < 0)
                return r;
        if (!c.units)
                return 0; /* only sessions: the boot check restores them */

        STRV_FOREACH(u, c.units) {
                _cleanup_free_ char *images = NULL, *pidfile = NULL, *text = NULL, *full = NULL;
                if (asprintf(&images, HANDOFF_STATE_DIR "/%s/%s", c.set_id, *u) < 0 ||
                    asprintf(&pidfile, HANDOFF_RUN_DIR "/%s.pid", *u) < 0)
                        return log_oom();
                RestoreDropin d = {
                        .unit = *u,
                        .helper = HANDOFF_HELPER_PATH,
                        .images_dir = images,
                        .pidfile = pidfile,
                        /* The record has the unit's own; journald takes the unit's name meanwhile. */
                };
                r = restore_dropin_text(&d, &text);
                if (r < 0)
                        return log_error_errno(r, "Failed to format the restore drop-in of %s: %m", *u);
                /* The peers' packets are held by the lock from early in the boot on. A service
                 * comes back as early as its resources allow, the rest of the boot going on
                 * beside it: not after basic.target (the AppArmor profiles compiled and loaded,
                 * udev's coldplug, timers, D-Bus: most of a boot's userspace, and nothing a
                 * restored process asks for: apparmor.c loads its own profiles, or waits for
                 * apparmor.service's when the kernel refuses the saved ones), only after the
                 * file systems, the sysctls, the directories systemd-tmpfiles makes and criu's
                 * probes of the kernel (which start with the boot), with its own unit's ordering
                 * on top but for the network's (restore_fragment): restore-exec waits for the
                 * addresses its sockets are bound to, not for the network. Its files may be on
                 * a network file system (remote-fs.target: at once when there is none). Until
                 * the boot check's reload takes this drop-in away, it is stopped before shutdown
                 * as with its default dependencies. A unit that fails to restore starts fresh
                 * from the boot check, after the reload, as on any boot. A quadlet container
                 * keeps its default dependencies and its own, and waits for the network: podman
                 * sets up the container's from the host's. Until the boot is done its clients
                 * have more of the CPU and the disk than the units starting fresh beside it
                 * (StartupCPUWeight=, StartupIOWeight=): they are waiting for it, nobody waits
                 * yet for a fresh one, and in the first boot of a new kernel apparmor.service
                 * compiles the whole policy beside it. */
                _cleanup_free_ char *quadlet = NULL;
                r = unit_quadlet_source(secure_getenv("DREAMLINK_HANDOFF_CONFIG_ROOT"), *u, &quadlet);
                if (r == -ENOMEM)
                        return log_oom();
                bool container = r > 0;
                if (!container && early_dir)
                        (void) restore_fragment(early_dir, secure_getenv("DREAMLINK_HANDOFF_CONFIG_ROOT"), *u);
                const char *order = container ?
                        "Wants=network-online.target\n"
                        "After=network-online.target " LOCK_UNIT " remote-fs.target\n" :
                        "DefaultDependencies=no\n"
                        "After=local-fs.target systemd-sysctl.service systemd-tmpfiles-setup.service "
                        LOCK_UNIT " " PROBE_UNIT " remote-fs.target\n"
                        "Conflicts=shutdown.target\nBefore=shutdown.target\n";
                r = asprintf(&full, "%s\n[Unit]\n%sRequiresMountsFor=" HANDOFF_STATE_DIR "\n\n"
                             "[Service]\nStartupCPUWeight=" RESTORE_STARTUP_WEIGHT "\n"
                             "StartupIOWeight=" RESTORE_STARTUP_WEIGHT "\n", text, order);
                if (r < 0)
                        return log_oom();
                r = write_in(normal_dir, *u, RESTORE_DROPIN_NAME, full);
                if (r < 0)
                        return r;
                /* It ran before the switch: it runs after it, enabled or not. */
                r = add_wants(normal_dir, "multi-user.target", *u);
                if (r < 0)
                        return r;
                char *a = strprintf("%s%s%s", strempty(after), after ? " " : "", *u);
                if (!a)
                        return log_oom();
                free(after);
                after = a;
        }
        if (!after)
                return 0;
        /* Only sooner restores hang on these: logged, the boot check is ordered all the same. */
        for (size_t i = 0; i < ELEMENTSOF(restore_path_units); i++)
                (void) write_in(normal_dir, restore_path_units[i], RESTORE_PATH_DROPIN_NAME,
                                "# Written by dreamlink-handoff-generator: this boot's restores wait for this unit.\n"
                                "[Service]\nStartupCPUWeight=" RESTORE_STARTUP_WEIGHT "\n"
                                "StartupIOWeight=" RESTORE_STARTUP_WEIGHT "\n");
        r = order_fresh_containers(normal_dir, c.units);
        if (r < 0)
                return r;

        _cleanup_free_ char *finish = NULL;
        if (asprintf(&finish, "[Unit]\nAfter=%s\n", after) < 0)
                return log_oom();
        /* The boot check reports the restores: after the units' starts. */
        return write_in(normal_dir, FINISH_UNIT, "50-handoff.conf", finish);
}

int main(int argc, char *argv[]) {
        log_setup("dreamlink-handoff-generator");
        if (argc != 2 && argc != 4) {
                log_error("This program is a systemd generator: it takes one or three directories.");
                return EXIT_FAILURE;
        }
        umask(0022);
        return run(argv[1], argc == 4 ? argv[2] : NULL) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
