/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A podman container run by a quadlet unit (NAME.container → NAME.service), checkpointed and
 * restored by podman itself: `podman container checkpoint --export` and `restore --import`. Podman
 * knows what CRIU alone does not: the container's overlay root, its network (netavark sets the same
 * address and port forwards up again) and conmon, which it starts anew. CRIU directly on the unit
 * would meet conmon above a PID namespace nested in the unit's, which it cannot dump.
 *
 * Quadlet runs every container with --rm, which podman checkpoints only with --export: the
 * container is removed after the dump and created again, with the same ID and name, from the
 * export at the restore. The restore runs inside the unit (restore-exec, as for any service), so
 * that conmon and the container land in the unit's cgroup as `podman run` had them.
 *
 * From the dump to the restore nothing listens on the container's ports: podman tears its
 * network down at the dump, and in the new boot it is set up again only by the restore. A client's
 * packet in between would be answered with a reset. A lock of our own (an nftables table, saved
 * and loaded in a new boot like criu's) drops them instead, until the restore lifts it. */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"
#include "process-util.h"
#include "string-util.h"
#include "time-util.h"

#define CONTAINER_EXPORT "container.tar"
#define PODMAN_OUTPUT_MAX (256U * 1024U)

/* Podman's own words for why it failed: its last "Error: " line, else its last line. */
static char *podman_error(const char *err) {
        const char *last = NULL, *line = NULL;

        for (const char *p = err; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
                if (*p == '\n')
                        continue;
                line = p;
                if (startswith(p, "Error: "))
                        last = p + strlen("Error: ");
        }
        const char *pick = last ?: line;
        if (!pick)
                return strdup("podman failed without saying why");
        return strndup(pick, strcspn(pick, "\n"));
}

/* Why a podman checkpoint or restore failed, in a user's terms when criu's log tells: crun names
 * the log on a line of its own before podman's "Error: " ("Please check CRIU logfile PATH"). */
static char *podman_failure_reason(const char *err) {
        _cleanup_free_ char *said = podman_error(err), *log = NULL, *criu = NULL;
        const char *p = err ? strstr(err, "CRIU logfile ") : NULL;

        if (!said)
                return NULL;
        if (p) {
                p += strlen("CRIU logfile ");
                log = strndup(p, strcspn(p, " \"':\n"));
                if (log && log[0] == '/')
                        criu_failure_reason(log, &criu);
        }
        if (criu)
                return strprintf("%s (podman: %s)", criu, said);
        return TAKE_PTR(said);
}

int unit_container(const char *unit, char **ret_id) {
        /* Quadlet sets PODMAN_SYSTEMD_UNIT=%n in the unit's environment; podman labels the
         * container with it (the label auto-update goes by). */
        _cleanup_free_ char *filter = strprintf("label=PODMAN_SYSTEMD_UNIT=%s", unit), *out = NULL, *err = NULL;
        _cleanup_free_ char *id = NULL;

        assert(ret_id);
        *ret_id = NULL;
        if (!filter)
                return -ENOMEM;
        const char * const argv[] = { "podman", "ps", "--no-trunc", "--format", "{{.ID}}", "--filter", filter, NULL };
        int r = run_command_output(argv, PODMAN_OUTPUT_MAX, &out, &err);
        if (r < 0) {
                _cleanup_free_ char *said = podman_error(err);
                return log_unit_error_errno(unit, r, "Failed to ask podman for the container of %s: %s", unit, strna(said));
        }
        for (char *p = out, *e; p && *p; p = e) {
                e = strchr(p, '\n');
                if (e)
                        *e++ = 0;
                if (isempty(p))
                        continue;
                if (id || !container_id_is_valid(p))
                        return -ENOTUNIQ; /* one unit, one container: a pod is not carried */
                id = strdup(p);
                if (!id)
                        return -ENOMEM;
        }
        if (!id)
                return -ESRCH;
        *ret_id = TAKE_PTR(id);
        return 0;
}

void container_info_done(ContainerInfo *i) {
        i->network_mode = mfree(i->network_mode);
        i->id_file = mfree(i->id_file);
        i->ports = strv_free(i->ports);
        *i = (ContainerInfo) {};
}

/* The --cidfile of podman's command line that made it (Config.CreateCommand, one word a line). */
static int id_file_of(const char *create_command, char **ret) {
        bool next = false;

        *ret = NULL;
        for (const char *p = create_command; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
                size_t n = strcspn(p, "\n");
                const char *v = next ? p : (n > strlen("--cidfile=") && startswith(p, "--cidfile=")) ? p + strlen("--cidfile=") : NULL;
                next = !v && n == strlen("--cidfile") && startswith(p, "--cidfile");
                if (v) {
                        *ret = strndup(v, p + n - v);
                        return *ret ? 0 : -ENOMEM;
                }
        }
        return 0;
}

int container_inspect(const char *unit, const char *id, ContainerInfo *ret) {
        _cleanup_(container_info_done) ContainerInfo info = {};
        _cleanup_free_ char *out = NULL, *err = NULL, *ports = NULL;
        int r;

        assert(ret);
        /* One line each, then the command line that created it, a word a line. */
        const char * const argv[] = {
                "podman", "container", "inspect", "--format",
                "{{.HostConfig.NetworkMode}}\n{{.State.Pid}}\n{{.State.ConmonPid}}\n{{.AppArmorProfile}}\n"
                "{{range .Config.CreateCommand}}{{println .}}{{end}}",
                id, NULL };
        r = run_command_output(argv, PODMAN_OUTPUT_MAX, &out, &err);
        if (r < 0) {
                _cleanup_free_ char *said = podman_error(err);
                return log_unit_error_errno(unit, r, "Failed to inspect the container %.12s of %s: %s", id, unit, strna(said));
        }
        char *lines[4] = {}, *p = out;
        for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                if (!p)
                        return log_unit_error_errno(unit, EBADMSG, "podman's inspection of %.12s is cut short.", id);
                lines[i] = p;
                p = strchr(p, '\n');
                if (p)
                        *p++ = 0;
        }
        info.network_mode = strdup(lines[0]);
        if (!info.network_mode)
                return log_oom();
        unsigned pid, conmon;
        if (parse_unsigned(lines[1], &pid) < 0 || parse_unsigned(lines[2], &conmon) < 0 || pid > INT32_MAX || conmon > INT32_MAX)
                return log_unit_error_errno(unit, EBADMSG, "podman gave no PIDs for the container %.12s of %s.", id, unit);
        info.pid = (pid_t) pid;
        info.conmon_pid = (pid_t) conmon;
        info.apparmor = !isempty(lines[3]) && !streq(lines[3], "unconfined");
        r = id_file_of(p, &info.id_file);
        if (r < 0)
                return log_oom();

        /* "6379/tcp -> 0.0.0.0:6380": the host ports its clients come to. */
        const char * const port_argv[] = { "podman", "port", id, NULL };
        r = run_command_output(port_argv, PODMAN_OUTPUT_MAX, &ports, NULL);
        if (r < 0)
                return log_unit_error_errno(unit, r, "Failed to ask podman for the published ports of %.12s: %m", id);
        for (char *q = ports, *e; q && *q; q = e) {
                e = strchr(q, '\n');
                if (e)
                        *e++ = 0;
                const char *arrow = strstr(q, "/tcp -> ");
                const char *colon = arrow ? strrchr(arrow, ':') : NULL;
                unsigned port;
                if (colon && parse_unsigned(colon + 1, &port) >= 0 && port > 0 && port < 65536 &&
                    !strv_contains(info.ports, colon + 1) && strv_extend(&info.ports, colon + 1) < 0)
                        return log_oom();
        }
        *ret = info;
        info = (ContainerInfo) {};
        return 0;
}

int container_precheck(const char *unit, const ContainerInfo *info, char **ret_reason) {
        *ret_reason = NULL;
        /* What podman sets up again itself at the restore: a network namespace of the container's
         * own (netavark's bridge, or only lo), or none (the machine's). Another container's or a
         * given namespace (container:ID, ns:PATH) is not there to join in a new boot. */
        const char *m = info->network_mode;
        if (startswith(m, "bridge") || streq(m, "host") || streq(m, "none") || streq(m, "private") || streq(m, "default"))
                return 0;
        return asprintf(ret_reason, "its network (Network=%s) is not one podman sets up again at a restore "
                        "(a bridge network, Network=host or none are): it restarts fresh", m) < 0 ? -ENOMEM : 0;
}

/* The socket inodes the processes of cgroup hold. */
static int socket_inodes(const char *cgroup, char ***ret) {
        _cleanup_free_ pid_t *pids = NULL;
        _cleanup_strv_free_ char **inodes = NULL;
        size_t n = 0;

        int r = cgroup_pids(cgroup, &pids, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/" PID_FMT "/fd", pids[i]);
                _cleanup_(closedirp) DIR *d = opendir(path);
                if (!d)
                        continue; /* gone meanwhile */
                for (struct dirent *de; (de = readdir(d));) {
                        char target[64];
                        ssize_t k = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
                        if (k <= 0)
                                continue;
                        target[k] = 0;
                        const char *ino = startswith(target, "socket:[");
                        if (!ino)
                                continue;
                        _cleanup_free_ char *s = strndup(ino, strcspn(ino, "]"));
                        if (!s)
                                return -ENOMEM;
                        if (!strv_contains(inodes, s) && strv_push(&inodes, TAKE_PTR(s)) < 0)
                                return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(inodes);
        return 0;
}

/* With Network=host, the TCP ports the container's processes (of cgroup, pid one of them) listen
 * on, from the machine's socket tables as pid sees them. */
static int listening_ports(const char *cgroup, pid_t pid, char ***ret) {
        _cleanup_strv_free_ char **inodes = NULL, **ports = NULL;

        int r = socket_inodes(cgroup, &inodes);
        if (r < 0)
                return r;
        for (const char *const *t = (const char *const[]) { "tcp", "tcp6", NULL }; *t; t++) {
                char path[64];
                _cleanup_free_ char *text = NULL;
                snprintf(path, sizeof(path), "/proc/" PID_FMT "/net/%s", pid, *t);
                r = read_file_limited(path, 64U << 20, &text, NULL);
                if (r == -ENOENT)
                        continue; /* no IPv6 */
                if (r < 0)
                        return r;
                /* "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode" */
                for (char *line = strchr(text, '\n'), *e; line && *++line; line = e) {
                        e = strchr(line, '\n');
                        if (e)
                                *e = 0;
                        char local[64], state[8], inode[32];
                        if (sscanf(line, " %*s %63s %*s %7s %*s %*s %*s %*s %*s %31s", local, state, inode) != 3 ||
                            !streq(state, "0A") || !strv_contains(inodes, inode))
                                continue;
                        const char *colon = strrchr(local, ':');
                        unsigned port;
                        if (!colon || sscanf(colon + 1, "%x", &port) != 1 || port == 0 || port > 65535)
                                continue;
                        char buf[8];
                        snprintf(buf, sizeof(buf), "%u", port);
                        if (!strv_contains(ports, buf) && strv_extend(&ports, buf) < 0)
                                return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(ports);
        return 0;
}

/* The ports held for a container while it is away: the host ports published from its bridge, or
 * with Network=host the ports its processes listen on. */
static int held_ports(const char *cgroup, const ContainerInfo *info, char ***ret) {
        if (streq(info->network_mode, "host"))
                return listening_ports(cgroup, info->pid, ret);
        STRV_FOREACH(p, info->ports)
                if (strv_extend(ret, *p) < 0)
                        return -ENOMEM;
        return 0;
}

int container_lock(const char *unit, const char *cgroup, const ContainerInfo *info, const char *dir, char **ret_table) {
        _cleanup_strv_free_ char **ports = NULL;
        _cleanup_free_ char *list = NULL, *name = NULL, *text = NULL, *path = NULL;
        int r;

        *ret_table = NULL;
        r = held_ports(cgroup, info, &ports);
        if (r < 0)
                return log_unit_error_errno(unit, r, "Failed to find the ports of %s to hold: %m", unit);
        if (strv_length(ports) == 0)
                return 0;
        list = strv_join(ports, ", ");
        name = netlock_table_name(unit);
        if (!list || !name)
                return log_oom();
        /* At raw priority in prerouting: before netavark's DNAT and before conntrack, so that a
         * held packet leaves nothing behind, and the first one after the restore is forwarded
         * again by the rules podman made anew. */
        text = strprintf("table inet %s {\n"
                         "\tchain hold {\n"
                         "\t\ttype filter hook prerouting priority raw; policy accept;\n"
                         "\t\ttcp dport { %s } drop\n"
                         "\t}\n"
                         "}\n", name, list);
        path = strprintf("%s/" NETLOCK_FILE, dir);
        if (!text || !path)
                return log_oom();
        r = write_string_file_atomic(path, text, 0600);
        if (r < 0)
                return log_unit_error_errno(unit, r, "Failed to write %s: %m", path);
        const char * const argv[] = { "nft", "-f", path, NULL };
        r = run_command(argv);
        if (r < 0)
                return log_unit_error_errno(unit, r, "Failed to hold the ports %s of %s: %m", list, unit);
        *ret_table = strprintf("inet %s", name);
        return *ret_table ? 1 : log_oom();
}

int container_checkpoint(const HandoffUnit *u, const char *id, const char *dir, bool leave_running, char **ret_reason) {
        _cleanup_free_ char *export = strprintf("--export=%s/" CONTAINER_EXPORT, dir), *out = NULL, *err = NULL;

        *ret_reason = NULL;
        if (!export)
                return -ENOMEM;
        /* Uncompressed: the container is stopped while it is written. Its volumes go along (the
         * default): an anonymous one goes with the container, which quadlet's --rm removes. */
        const char *argv[16] = { "podman", "container", "checkpoint", export, "--compress=none" };
        size_t n = 5;
        if (u->tcp_established)
                argv[n++] = "--tcp-established";
        if (u->file_locks)
                argv[n++] = "--file-locks";
        if (leave_running)
                argv[n++] = "--leave-running";
        argv[n++] = id;
        argv[n] = NULL;
        int r = run_command_output(argv, PODMAN_OUTPUT_MAX, &out, &err);
        if (r < 0) {
                *ret_reason = podman_failure_reason(err);
                return *ret_reason ? r : -ENOMEM;
        }
        return 0;
}

int container_restore(const Checkpoint *c, const char *images_dir, pid_t *ret_conmon) {
        _cleanup_free_ char *import = strprintf("--import=%s/" CONTAINER_EXPORT, images_dir), *out = NULL, *err = NULL;
        _cleanup_(container_info_done) ContainerInfo info = {};
        int r;

        if (!import)
                return log_oom();
        const char *argv[8] = { "podman", "container", "restore", import };
        size_t n = 4;
        if (c->tcp_established)
                argv[n++] = "--tcp-established";
        if (c->file_locks)
                argv[n++] = "--file-locks";
        argv[n] = NULL;
        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        r = run_command_output(argv, PODMAN_OUTPUT_MAX, &out, &err);
        if (r < 0) {
                _cleanup_free_ char *reason = podman_failure_reason(err);
                return log_unit_error_errno(c->unit, r, "Failed to restore the container %.12s of %s: %s", c->container_id,
                                            c->unit, strna(reason));
        }
        r = container_inspect(c->unit, c->container_id, &info);
        if (r < 0)
                return r;
        if (info.conmon_pid <= 0)
                return log_unit_error_errno(c->unit, ESRCH, "The restored container %.12s of %s has no conmon.", c->container_id, c->unit);
        if (info.pid > 0)
                container_fix_window_scale(c->unit, info.pid);

        /* Quadlet's ExecStop= removes the container named in the file `podman run` wrote, which a
         * restore does not write. In /run, as root: no link is followed, nothing else replaced. */
        if (c->container_id_file) {
                _cleanup_close_ int fd = open(c->container_id_file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (fd < 0 || loop_write(fd, c->container_id, strlen(c->container_id)) < 0)
                        return log_unit_error_errno(c->unit, errno, "Failed to write %s: %m", c->container_id_file);
        }
        log_unit_info(c->unit, "Restored the container %.12s of %s in %.2f s (conmon PID " PID_FMT ").", c->container_id,
                      c->unit, (now_usec(CLOCK_MONOTONIC) - t0) / 1e6, info.conmon_pid);
        *ret_conmon = info.conmon_pid;
        return 0;
}

int rootless_containers(uid_t **ret_uids, unsigned **ret_counts, size_t *ret_n) {
        _cleanup_(closedirp) DIR *d = opendir("/proc");
        _cleanup_free_ uid_t *uids = NULL;
        _cleanup_free_ unsigned *counts = NULL;
        size_t n = 0;

        if (!d)
                return -errno;
        /* Each container has a conmon of its own, running as the user who started it. */
        for (struct dirent *de; (de = readdir(d));) {
                unsigned pid;
                if (parse_unsigned(de->d_name, &pid) < 0)
                        continue;
                _cleanup_free_ char *comm = pid_comm((pid_t) pid);
                if (!comm)
                        return -ENOMEM;
                if (!streq(comm, "conmon"))
                        continue;
                char path[64];
                struct stat st;
                snprintf(path, sizeof(path), "/proc/%u", pid);
                if (stat(path, &st) < 0 || st.st_uid == 0)
                        continue;
                size_t i = 0;
                while (i < n && uids[i] != st.st_uid)
                        i++;
                if (i == n) {
                        uid_t *u = reallocarray(uids, n + 1, sizeof(uid_t));
                        if (!u)
                                return -ENOMEM;
                        uids = u;
                        unsigned *c = reallocarray(counts, n + 1, sizeof(unsigned));
                        if (!c)
                                return -ENOMEM;
                        counts = c;
                        uids[n] = st.st_uid;
                        counts[n++] = 0;
                }
                counts[i]++;
        }
        *ret_uids = TAKE_PTR(uids);
        *ret_counts = TAKE_PTR(counts);
        *ret_n = n;
        return 0;
}
