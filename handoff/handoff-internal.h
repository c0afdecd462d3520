/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the files of the engine use of each other; the engine's API is handoff.h. The files
 * depend one way, each only on the ones before it here, and the sections below go in that
 * order:
 *
 *   unit-file.c       a unit's settings as its files say (unit-file.h), for the generator and dumps
 *   unit.c            the Handoff object; units over D-Bus; systemctl
 *   proctree.c        a unit's processes and their namespaces
 *   apparmor.c        the AppArmor profiles they run under, loaded again where a boot lacks them
 *   rundirs.c         directories below /run the tree uses, for a restore in a new boot
 *   runfiles.c        small files it keeps there (PID files, tor's cookie), written again for its restore
 *   mounts.c          PrivateTmp=, mount namespaces, criu's leftover mounts
 *   automounts.c      the machine's late mounts in a service's namespace: left out of a dump, bound again
 *   netlock.c         criu's nftables lock: find, save, load, remove
 *   addresses.c       the addresses the tree's sockets are bound to, waited for before a restore
 *   externals.c       what the tree holds outside it: journal streams, /dev/null, session FIFOs
 *   precheck.c        why criu could not take a service, told before it runs
 *   criu-log.c        what criu's logs say went wrong, in a user's terms
 *   criu.c            libcriu: the dump and restore calls and their options
 *   container.c       a quadlet unit's podman container: checkpoint, restore, its ports held
 *   conntrack.c       the conntrack entries of a container's forwarded connections, made again
 *   tcp-window.c      the window scale of a restored container's connections, set right
 *   checkpoint.c      the checkpoint record, the restore drop-in
 *   dump.c            dumping a service
 *   restore.c         restoring a service
 *   sessions.c        login sessions (dumps with dump.c's dump_into())
 *   reaper.c          `dreamlink-handoff reap`, a Type=forking start's daemons in one tree
 *   checkpoint-set.c  gc, and what is done to a whole set (with restore.c and sessions.c)
 */

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "handoff.h"
#include "time-util.h"

/* unit.c */
/* systemctl VERB UNIT, and systemctl daemon-reload. */
int systemctl(const char *verb, const char *unit);
int daemon_reload(void);
/* The unit runs when this returns 0: started if it does not, restarted if restart. */
int ensure_running(Handoff *h, const char *unit, bool restart);

/* proctree.c (cgroup_pids() and pid_in_tree() are in handoff.h) */
/* The parent of pid, -1 if it cannot be read. */
pid_t parent_of(pid_t pid);
/* The topmost ancestor of main_pid among pids (a unit's): the main process itself, or the
 * reaper of a Type=forking unit's start (reaper.c). */
pid_t tree_root(pid_t main_pid, const pid_t *pids, size_t n);
/* Its command name, "?" if it cannot be read; NULL if out of memory. */
char *pid_comm(pid_t pid);
/* Its cgroup in the unified hierarchy ("/system.slice/…"); -ENOMEDIUM without one. */
int pid_cgroup(pid_t pid, char **ret);
/* Whether pid's namespace of that kind ("mnt", "user", "ipc" …) is not ours. */
bool pid_has_own_namespace(pid_t pid, const char *ns);
/* Whether a and b (0: ourselves) are in the same namespace of that kind. */
bool pids_share_namespace(pid_t a, pid_t b, const char *ns);
/* The inode of the socket that the entry NAME of fd_dir (a /proc/PID/fd) is, 0 if it is none. */
unsigned long long fd_socket_inode(int fd_dir, const char *name);

/* apparmor.c */
#define APPARMOR_DIR "apparmor" /* beside the images: N.name and N.policy, a profile and its policy */
/* The profile an AppArmor label ("NAME (MODE)") confines with: 1 with its name, a hat's or child's
 * parent; 0 for unconfined, a stack or another policy namespace; -EBADMSG. */
int apparmor_label_profile(const char *label, char **ret);
/* Saves in dir the policy of each profile that confines one of pids, securityfs at fs (fs: for
 * tests). A policy the kernel does not give is only warned about: the new boot may load it. */
int apparmor_save(const char *unit, const pid_t *pids, size_t n, const char *dir);
int apparmor_save_profiles_at(const char *fs, const char *unit, char * const *names, const char *dir);
/* Loads each profile saved in dir that is not loaded. One the kernel refuses is waited for, at
 * most wait_usec: the restore runs early in the boot, maybe before apparmor.service loads the
 * new release's profile of that name. One still missing is only warned about, as CRIU's failure
 * then says which task it could not label. */
#define APPARMOR_PROFILE_TIMEOUT (5 * USEC_PER_MINUTE)
int apparmor_load_saved(const char *unit, const char *dir);
int apparmor_load_saved_at(const char *fs, const char *unit, const char *dir, usec_t wait_usec);

/* rundirs.c */
/* The directories below /run the tree rooted at root (its processes: pids) uses by path: working
 * directories, chroots, the directories of its bound unix sockets; entries "MODE:UID:GID:PATH". */
int run_dirs_collect(pid_t root, const pid_t *pids, size_t n, char ***ret);
/* "/run/a", "/run/a/b" for "/run/a/b": the directories a restore makes, outermost first. */
int run_dir_prefixes(const char *dir, char ***ret);
/* Before a restore, below ROOT_FD: creates the ones missing, with their mode and owner. */
int run_dirs_recreate(int root_fd, const char *unit, char * const *entries);

/* runfiles.c */
#define RUN_FILES_DIR "run-files"
/* At the dump: the small regular files in those directories and the unit's PID file (NULL: none),
 * read through ROOT_FD (the tree's root), saved in IMAGES_DIR/RUN_FILES_DIR; entries
 * "MODE:UID:GID:PATH" in the order saved. */
int run_files_save(int root_fd, char * const *run_dirs, const char *pid_file, const char *images_dir, char ***ret);
/* Before a restore, below ROOT_FD: writes the ones missing again, with their mode and owner; what
 * cannot be written is logged and left out. *ret_written: the entries written, for
 * run_files_remove() when the restore fails. */
int run_files_restore(int root_fd, const char *unit, const char *images_dir, char * const *entries, char ***ret_written);
void run_files_remove(int root_fd, const char *unit, char * const *written);

/* mounts.c */
int private_tmp_dirs(const char *unit, char ***ret);
/* Before a restore, below ROOT_FD (AT_FDCWD: /), as root, where other users can write (see
 * fs-util.h): the unit's PrivateTmp= directories (DIR 0700 with DIR/tmp 1777) and its
 * /run/systemd/propagate/UNIT, as the record lists them. A link or another user's directory in
 * the way is refused, logged, and fails the restore: the unit starts fresh. */
int recreate_tmp_dirs(int root_fd, const char *unit, char * const *dirs);
bool has_own_mount_namespace(pid_t pid);
/* /proc/PID/mountinfo, as text. */
int read_mountinfo(pid_t pid, char **ret);
/* The mounts of other units, users and containers in PID's namespace, to leave out of its dump. */
int foreign_runtime_mounts(pid_t pid, const char *unit, char ***ret_skipped);
/* The same, from the text of a mountinfo file. */
int mountinfo_foreign_mounts(const char *mountinfo, const char *unit, char ***ret_skipped);
/* For a checkpoint an older dreamlink-handoff wrote (RuntimeMounts=): the mount points it dumped
 * as binds, created empty (0700) where missing; one already there (the user's own
 * /run/user/UID) is left as it is. A refusal is logged: criu then fails the restore on that
 * mount point. */
void create_runtime_mount_points(int root_fd, const char *unit, char * const *points);
void umount_criu_leftovers(void);

/* automounts.c */
/* From the texts of the machine's and a service's mountinfo: the mount points of its namespace where the machine has an automount (the record's
 * Automounts=, or RebindMounts=, see late_mounts()): criu binds the machine's mounts at the same paths from a mount namespace of its own,
 * and an automount the boot has not mounted yet cannot be crossed from there ("Unable to statfs
 * …: Too many levels of symbolic links"). The service may see what was mounted there, or a copy
 * criu made of it, not the autofs itself. */
int mountinfo_automounts(const char *machine, const char *service, char ***ret);
/* Before a restore, in the machine's mount namespace: opens each of points, which has systemd
 * mount what is behind an automount, as an access of the service's would have. A failure is
 * logged; criu then says whether the service needed it. */
void automounts_trigger(const char *unit, char * const *points);
/* The same in a thread, from the start of restore-exec: systemd mounts an ESP behind /efi (its
 * fsck first) while the restore waits for its addresses and reads its images, not in front of
 * criu. automounts_trigger_finish() returns when all are mounted (or failed); it is the cleanup
 * too, so that no thread reads the points after they are freed. */
typedef struct AutomountsTrigger {
        const char *unit;
        char **points;
        pthread_t thread;
        bool running;
} AutomountsTrigger;
void automounts_trigger_start(AutomountsTrigger *t, const char *unit, char * const *points);
void automounts_trigger_finish(AutomountsTrigger *t);
/* The IDs of the mounts (mountinfo's first field) that pids hold: their open files, working and
 * root directories, executables and mapped files. */
int tree_mount_ids(const pid_t *pids, size_t n_pids, uint64_t **ret, size_t *ret_n);
/* The late mounts of PID's namespace (above) below which pids hold nothing: "FLAGS:PATH" entries
 * in *ret_rebind (RebindMounts=; FLAGS are the confining ones of the service's mount there: ro,
 * nosuid, nodev, noexec, or rw), their mount points and all below them added to *skipped_mounts
 * (criu --skip-mnt); its other automount points in *ret_automounts (Automounts=). */
int late_mounts(pid_t root_pid, const pid_t *pids, size_t n_pids, char ***ret_automounts, char ***ret_rebind,
                char ***skipped_mounts);
/* The same, from the machine's and the service's mountinfo texts, the mount IDs its processes
 * hold, and its automount points in *automounts, which keeps those it holds files below. */
int mountinfo_late_mounts(const char *machine, const char *service, char ***automounts, const uint64_t *used,
                          size_t n_used, char ***ret_rebind, char ***skipped_mounts);
/* The RebindMounts= entries of a restore, each with an O_PATH descriptor of what the machine has
 * there, opened at the start of restore-exec without triggering an automount (-EBADF if none):
 * later, a path onto the automount would wait for whatever mount of it another process triggered
 * (bootctl's of the ESP), the clone from the descriptor does not. */
typedef struct LateMounts {
        char * const *entries;
        int *fds;
        size_t n;
} LateMounts;
void late_mounts_open(LateMounts *lm, char * const *entries);
void late_mounts_done(LateMounts *lm);
/* At the end of a restore, before its processes run (criu's post-restore notification): binds
 * the machine's mounts of lm (an automount where the boot has not mounted what is behind it yet)
 * into the namespace of PID with the recorded flags, as slaves of the machine's. One the machine
 * has not mounted yet comes in by propagation when it does. Failures are logged; the service
 * runs without. */
int late_mounts_bind(const char *unit, pid_t pid, const LateMounts *lm);
int join_machine_mount_namespace(const char *unit);

/* addresses.c */
/* How long a restore waits for the addresses of its sockets: as systemd-networkd-wait-online does
 * for the whole network by default, and more, for a TCG guest's or a slow DHCP server's boot. */
#define ADDRESSES_TIMEOUT (5 * USEC_PER_MINUTE)
/* The machine's own addresses (not wildcards, loopback, multicast; not temporary IPv6 ones) that
 * the TCP and UDP sockets open in pids are bound to, sorted; sockets in another network namespace
 * than ours are left out. What cannot be read is warned about: only -ENOMEM fails. */
int socket_addresses(const char *unit, const pid_t *pids, size_t n, char ***ret);
/* Adds to addresses those of the sockets among inodes (sorted) in TEXT, a /proc/net/{tcp,udp}[6]
 * table of FAMILY; the lines it cannot read are skipped, and then it returns -EBADMSG. */
int proc_net_addresses(const char *text, int family, const ino_t *inodes, size_t n_inodes, char ***addresses);
/* Adds to addresses those of the connections in the text of a criu lock table (nft list table:
 * its sets hold each connection both ways, so local and remote ones) that need a wait. */
int lock_table_addresses(const char *text, char ***addresses);
/* Adds to addresses those in a chunk of an RTM_GETADDR listing without any of the flags
 * exclude[0] (IPv4) or exclude[1] (IPv6): 1 at its end, 0 when more chunks follow, -EAGAIN when
 * the kernel says the listing was interrupted, the kernel's error, or -EBADMSG. */
int rtnl_addresses_parse(const void *buf, size_t len, const uint32_t exclude[2], char ***addresses);
/* Keeps of addresses those the machine has (tentative ones too, not temporary IPv6 ones). */
int addresses_on_machine(char ***addresses);
/* Those of addresses the machine does not have, or has but cannot send from yet (tentative). */
int addresses_missing(char * const *addresses, char ***ret);
/* Until the machine has all of addresses, at most timeout: -ETIMEDOUT then, or the netlink error.
 * Logged; the restore goes on either way, and criu says what it could not bind. */
int addresses_wait(const char *unit, char * const *addresses, usec_t timeout);

/* netlock.c */
#define NETLOCK_FILE "netlock.nft" /* beside the images: the lock, for a new boot */
/* The name of the table that holds a container's ports (container.c); NULL if out of memory. */
char *netlock_table_name(const char *unit);
/* Lifts the lock after a restore that did not lift it itself (criu lifts its own). */
void netlock_lift(const Checkpoint *c);
/* The tables criu made ("inet CRIU-…"): the one a dump added is its lock. */
int nft_criu_tables(char ***ret);
int save_lock_table(const char *dir, const char *table, char **ret_text);
int netlock_file(const char *dir, const Checkpoint *c, char **ret_path);
unsigned netlock_load_files(char * const *paths, char * const *units);
void netlock_remove(const Checkpoint *c);

/* externals.c */
/* The inodes of the unit's ends of its journal streams (StandardOutput=journal), and of its
 * datagram sockets connected to a named socket outside it (syslog): criu leaves both to us. */
int external_unix_sockets(const char *cgroup, char ***ret_journal, char ***ret_datagram);
/* A process of the cgroup connected to the system bus (0: none; <0: cannot tell). */
pid_t system_bus_client(const char *cgroup);
/* For files_matching(): /dev/null (by device), and logind's session reference FIFOs. */
bool is_dev_null(int dir_fd, const char *name, const struct stat *st);
bool is_session_ref(int dir_fd, const char *name, const struct stat *st);
int files_matching(const char *cgroup, bool (*match)(int dir_fd, const char *name, const struct stat *st),
                   char ***ret);

/* precheck.c */
/* Why CRIU cannot take the unit now, by our own checks, with what to change (NULL if it can). */
int handoff_precheck(Handoff *h, const char *unit, UnitInfo *info, char **ret_reason);

/* criu-log.c (criu_log_reason() is in handoff.h) */
/* What criu's error means for the service and what to change, or NULL when we do not know. */
const char *criu_error_hint(const char *error);
/* error with its hint in front: "HINT (criu: ERROR)", or error alone. */
int criu_explain(const char *error, char **ret);
/* criu's first error in log, explained, or where to look; NULL if out of memory. */
void criu_failure_reason(const char *log, char **ret);

/* readahead.c: the pages images read into the page cache ahead of the restore's criu. What was
 * asked for (at most budget bytes, the pre-dumps' parents included); the second in a thread of
 * its own, half of MemAvailable at most, best effort. */
uint64_t images_readahead_at(int dir_fd, uint64_t budget);
void images_readahead_start(const char *unit, const char *images_dir);

/* writeback.c: the pages images written back to disk while criu makes them. */
typedef struct Writeback Writeback;
int writeback_start(int dir_fd, Writeback **ret);
/* Ends the thread; returns NULL. */
Writeback *writeback_stop(Writeback *w);

/* criu-stats.c: criu's figures of a dump (its stats-dump image). */
typedef struct CriuDumpStats {
        uint64_t frozen_usec;          /* criu's own: from the freeze to the kill */
        uint64_t memdump_usec;         /* collecting the pages from the tree and writing them */
        uint64_t memwrite_usec;        /* writing them, part of memdump_usec */
        uint64_t pages_scanned_bytes;
        uint64_t pages_written_bytes;  /* private and shared; not those left to a pre-dump (parent images) */
} CriuDumpStats;
/* data: a stats-dump image. -EBADMSG when it is none, -ENODATA when it has no dump's figures. */
int criu_stats_parse(const void *data, size_t size, CriuDumpStats *ret);
int criu_dump_stats(const char *images_dir, CriuDumpStats *ret);

/* criu.c (directory_size() is in handoff.h) */

typedef enum DumpMode {
        DUMP_FINAL,    /* the tree is gone afterwards (criu kills it) */
        DUMP_DRY_RUN,  /* the tree keeps running */
        DUMP_PRE,      /* memory only, the tree keeps running; dirty pages are tracked from here */
} DumpMode;
/* ext: the sockets and files of the tree that criu leaves to us (journal_inodes,
 * datagram_inodes, null_files). */
int criu_dump_to(const HandoffUnit *u, pid_t pid, int images_fd, const Checkpoint *ext, DumpMode mode,
                 const char *parent);
/* A descriptor of dir for criu, which inherits it: no O_CLOEXEC. */
int open_images_dir(const char *dir);
int restore_images(const Checkpoint *c, const LateMounts *late, const char *images_dir, pid_t *ret_pid);
/* criu's probe of the kernel (handoff_probe_kernel()), unlogged: the time it took, whether
 * criu can track dirty memory (pre-dumps). */
int criu_probe_kernel(usec_t *ret_usec, bool *ret_mem_track);

/* container.c */
typedef struct ContainerInfo {
        char *network_mode;  /* "bridge", "host", … (HostConfig.NetworkMode) */
        pid_t pid;           /* the container's first process */
        pid_t conmon_pid;
        bool apparmor;       /* it runs confined by an AppArmor profile */
        char *id_file;       /* the --cidfile it was created with (quadlet's /run/NAME.cid), or NULL */
        char **ports;        /* the host TCP ports published from it */
} ContainerInfo;
void container_info_done(ContainerInfo *i);
/* The ID of the running container podman labels with the unit (quadlet's PODMAN_SYSTEMD_UNIT=): 0,
 * -ESRCH without one, -ENOTUNIQ with several (a pod). */
int unit_container(const char *unit, char **ret_id);
int container_inspect(const char *unit, const char *id, ContainerInfo *ret);
/* Why podman's checkpoint will not carry it (NULL when it will). */
int container_precheck(const char *unit, const ContainerInfo *info, char **ret_reason);
/* Drops the packets to its ports until the restore (NETLOCK_FILE in dir, for a new boot): 1 with
 * the table in *ret_table, 0 when it has no ports to hold. */
int container_lock(const char *unit, const char *cgroup, const ContainerInfo *info, const char *dir, char **ret_table);
/* podman container checkpoint --export into dir (leave_running: a dry run); *ret_reason tells why
 * it failed, in a user's terms where criu's log does. */
int container_checkpoint(const HandoffUnit *u, const char *id, const char *dir, bool leave_running, char **ret_reason);
/* Its restored TCP connections that never negotiated window scaling get none again (tcp-window.c). */
void container_fix_window_scale(const char *unit, pid_t container_pid);
/* podman container restore --import, inside the unit; *ret_conmon: its main process from now. */
int container_restore(const Checkpoint *c, const char *images_dir, pid_t *ret_conmon);

/* conntrack.c */
#define CONNTRACK_FILE "conntrack" /* beside the images: a container's forwarded connections */
typedef struct ConntrackEntry {
        struct in_addr orig_src, orig_dst, reply_src, reply_dst;
        unsigned orig_sport, orig_dport, reply_sport, reply_dport;
} ConntrackEntry;
/* A line of /proc/net/nf_conntrack that is an established IPv4 TCP connection with destination
 * NAT alone, else -EBADMSG. */
int conntrack_entry_parse(const char *line, ConntrackEntry *ret);
/* The same line, as far as it is parsed (no newline). */
int conntrack_entry_format(const ConntrackEntry *e, char **ret);
/* Saves the entries of the connections to ports (host ports forwarded to the container) in
 * CONNTRACK_FILE in dir; none saved, no file. */
int conntrack_save(const char *unit, char * const *ports, const char *dir);
/* Creates them again: before the container runs, so that its first packet finds them. Failing
 * costs those clients their connection, not the restore: only said. */
int conntrack_restore(const char *unit, const char *dir);

/* checkpoint.c */
int write_record(const char *dir, const Checkpoint *c);
/* The record of a complete dump of unit (NULL: of a session) in images_dir, else an error. */
int load_dumped_record(const char *images_dir, const char *unit, Checkpoint *ret);
/* reload: reload systemd now, else at the next handoff_flush(). */
int write_restore_dropin(Handoff *h, const char *unit, const char *dir, const char *ident, bool reload);
bool dropin_is_current(Handoff *h, const char *unit, const char *dir, const char *ident);

/* dump.c */
/* A quadlet unit, whose podman container is carried (container.c), not its processes. */
bool unit_is_container(const char *unit);
/* The dump of the tree rooted at pid into dir, with the externals c lists, and its times, lock
 * table and image size in c. */
int dump_into(const HandoffUnit *u, pid_t pid, const char *dir, Checkpoint *c);
