/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The machine's mounts that a new boot makes late, in a service's mount namespace: its
 * automounts (/efi, x-systemd.automount entries) and the kernel interfaces systemd mounts from
 * units of their own (configfs after its module). criu restores the service's view of them as
 * binds of the machine's paths, made from a mount namespace of its own: an automount is crossed,
 * so the boot must mount what is behind it first (an ESP waits for udev's coldplug to find its
 * disk, then for its fsck: 20 s of a TCG boot), and the service then has a copy of that mount,
 * no automount; a mount the boot has not made yet fails the restore. So one below which the
 * service's processes hold nothing is left out of the dump, and the machine's is bound into the
 * restored namespace again before the service runs, as confined as the service had it
 * (RebindMounts= of the record); an automount it holds files below is mounted before its restore
 * (Automounts=). */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs-util.h"
#include "handoff-internal.h"
#include "log.h"
#include "string-util.h"

typedef struct MountLine {
        uint64_t id;
        char dev[32];
        char *root;
        char *point;
        char options[256];
        char fstype[64];
} MountLine;

/* A mountinfo text's lines, in its order (a mount after the one it is on). */
typedef struct MountTable {
        MountLine *lines;
        size_t n;
} MountTable;

static void mount_table_done(MountTable *t) {
        for (size_t i = 0; i < t->n; i++) {
                free(t->lines[i].root);
                free(t->lines[i].point);
        }
        free(t->lines);
        *t = (MountTable) {};
}

/* Lines that are none (no " - " before the file system type) are left out. */
static int mount_table_parse(const char *mountinfo, MountTable *ret) {
        _cleanup_(mount_table_done) MountTable t = {};
        _cleanup_free_ char *text = strdup(mountinfo);

        if (!text)
                return -ENOMEM;
        for (char *p = text, *e; p && *p; p = e) {
                char root[4096], point[4096];
                MountLine m = {};
                e = strchr(p, '\n');
                if (e)
                        *e++ = 0;
                const char *tail = strstr(p, " - ");
                if (sscanf(p, "%" SCNu64 " %*s %31s %4095s %4095s %255s", &m.id, m.dev, root, point, m.options) != 5 ||
                    !tail || sscanf(tail, " - %63s", m.fstype) != 1)
                        continue;
                MountLine *a = reallocarray(t.lines, t.n + 1, sizeof(MountLine));
                if (!a)
                        return -ENOMEM;
                t.lines = a;
                m.root = strdup(root);
                m.point = strdup(point);
                if (!m.root || !m.point) {
                        free(m.root);
                        free(m.point);
                        return -ENOMEM;
                }
                t.lines[t.n++] = m;
        }
        *ret = t;
        t = (MountTable) {};
        return 0;
}

static bool mount_table_has(const MountTable *t, const char *point) {
        for (size_t i = 0; i < t->n; i++)
                if (streq(t->lines[i].point, point))
                        return true;
        return false;
}

static int mount_tables_parse(const char *machine, const char *service, MountTable *theirs, MountTable *ours) {
        int r = mount_table_parse(machine, theirs);
        if (r >= 0)
                r = mount_table_parse(service, ours);
        return r;
}

static int tables_automounts(const MountTable *theirs, const MountTable *ours, char ***ret) {
        _cleanup_strv_free_ char **points = NULL;

        for (size_t i = 0; i < theirs->n; i++) {
                const char *a = theirs->lines[i].point;
                if (streq(theirs->lines[i].fstype, "autofs") && mount_table_has(ours, a) && automount_point_is_valid(a) &&
                    !strv_contains(points, a) && strv_extend(&points, a) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(points);
        return 0;
}

int mountinfo_automounts(const char *machine, const char *service, char ***ret) {
        _cleanup_(mount_table_done) MountTable ours = {}, theirs = {};

        int r = mount_tables_parse(machine, service, &theirs, &ours);
        return r < 0 ? r : tables_automounts(&theirs, &ours, ret);
}

void automounts_trigger(const char *unit, char * const *points) {
        STRV_FOREACH(p, points) {
                /* An open, unlike a stat, crosses the mount point: systemd mounts what is behind. */
                _cleanup_close_ int fd = open(*p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        log_unit_warning_errno(unit, errno, "Failed to open the automount point %s before the restore, "
                                               "criu may fail to bind it: %m", *p);
        }
}

static void *automounts_thread(void *p) {
        AutomountsTrigger *t = p;
        automounts_trigger(t->unit, t->points);
        return NULL;
}

void automounts_trigger_start(AutomountsTrigger *t, const char *unit, char * const *points) {
        assert(t);
        assert(!t->running && !t->points);

        t->unit = unit;
        if (!points || !*points)
                return;
        /* Copied: the thread may outlive the record on an error path, until the join. */
        t->points = strv_copy(points);
        if (!t->points) {
                log_oom();
                return;
        }
        int r = -pthread_create(&t->thread, NULL, automounts_thread, t);
        if (r < 0) {
                /* automounts_trigger_finish() mounts them itself. */
                log_debug_errno(r, "%s: failed to start the thread that mounts the automounts: %m", unit);
                return;
        }
        t->running = true;
}

void automounts_trigger_finish(AutomountsTrigger *t) {
        assert(t);

        if (t->running)
                (void) pthread_join(t->thread, NULL);
        else if (t->points)
                automounts_trigger(t->unit, t->points);
        t->running = false;
        t->points = strv_free(t->points);
}

static bool ids_contain(const uint64_t *ids, size_t n, uint64_t id) {
        for (size_t i = 0; i < n; i++)
                if (ids[i] == id)
                        return true;
        return false;
}

static int ids_add(uint64_t **ids, size_t *n, uint64_t id) {
        if (ids_contain(*ids, *n, id))
                return 0;
        uint64_t *a = reallocarray(*ids, *n + 1, sizeof(uint64_t));
        if (!a)
                return -ENOMEM;
        a[(*n)++] = id;
        *ids = a;
        return 0;
}

/* Following the magic link: the mount of what it points to. */
static int add_mount_id_of(int dir_fd, const char *name, uint64_t **ids, size_t *n) {
        struct statx sx;
        if (statx(dir_fd, name, AT_NO_AUTOMOUNT, STATX_MNT_ID, &sx) < 0 || !(sx.stx_mask & STATX_MNT_ID))
                return 0; /* gone with its process or file, or a kernel older than 5.8: nothing held */
        return ids_add(ids, n, sx.stx_mnt_id);
}

static int add_mount_ids_in(const char *dir, uint64_t **ids, size_t *n) {
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        struct dirent *de;
        int r = 0;
        while (r >= 0 && (de = readdir(d)))
                if (de->d_name[0] != '.')
                        r = add_mount_id_of(dirfd(d), de->d_name, ids, n);
        closedir(d);
        return r;
}

int tree_mount_ids(const pid_t *pids, size_t n_pids, uint64_t **ret, size_t *ret_n) {
        static const char * const links[] = { "cwd", "root", "exe" };
        _cleanup_free_ uint64_t *ids = NULL;
        size_t n = 0;
        int r = 0;

        for (size_t i = 0; r >= 0 && i < n_pids; i++) {
                char dir[64];
                for (size_t l = 0; r >= 0 && l < ELEMENTSOF(links); l++) {
                        snprintf(dir, sizeof(dir), "/proc/" PID_FMT "/%s", pids[i], links[l]);
                        r = add_mount_id_of(AT_FDCWD, dir, &ids, &n);
                }
                snprintf(dir, sizeof(dir), "/proc/" PID_FMT "/fd", pids[i]);
                if (r >= 0)
                        r = add_mount_ids_in(dir, &ids, &n);
                snprintf(dir, sizeof(dir), "/proc/" PID_FMT "/map_files", pids[i]);
                if (r >= 0)
                        r = add_mount_ids_in(dir, &ids, &n);
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(ids);
        *ret_n = n;
        return 0;
}

/* The file systems of the kernel's interfaces that systemd mounts from units of their own late
 * in a boot, after a module loaded (sys-kernel-config.mount, sys-fs-fuse-connections.mount) or
 * behind an automount (proc-sys-fs-binfmt_misc): 75 s into the bench's boot for configfs, which
 * an early restore does not wait for ("mnt-v2: Can't stat mountpoint …/kernel/config"). The
 * others (proc, sysfs, debugfs, tracefs, mqueue, hugetlbfs …) are mounted by PID 1 itself or
 * first thing in the boot. */
static const char * const late_fstypes[] = { "configfs", "fusectl", "binfmt_misc" };

static bool is_late_fstype(const char *fstype) {
        for (size_t i = 0; i < ELEMENTSOF(late_fstypes); i++)
                if (streq(fstype, late_fstypes[i]))
                        return true;
        return false;
}

/* The flags of a mount's own options that a bind of another mount must be given to be as
 * confined (ProtectSystem=, ProtectKernelTunables= made them read-only). */
static char *confining_flags(const char *options) {
        static const char * const kept[] = { "ro", "nosuid", "nodev", "noexec" };
        _cleanup_strv_free_ char **words = NULL, **flags = NULL;

        if (strv_split(options, ",", &words) < 0)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(kept); i++)
                if (strv_contains(words, kept[i]) && strv_extend(&flags, kept[i]) < 0)
                        return NULL;
        return flags ? strv_join(flags, ",") : strdup("rw");
}

/* The mounts at or below point, as "POINT FSTYPE DEV ROOT", sorted, each once: a service's stack
 * there is the machine's when the mounts came in from the machine, binds of them onto themselves
 * included (ProtectSystem= remounts /efi read-only so), not when its unit put its own on top
 * (InaccessiblePaths=, TemporaryFileSystem=), which a bind of the machine's would undo. */
static int mount_stack(const MountTable *t, const char *point, char ***ret) {
        _cleanup_strv_free_ char **stack = NULL;

        for (size_t i = 0; i < t->n; i++) {
                const MountLine *m = &t->lines[i];
                if (!path_is_at_or_below(m->point, point))
                        continue;
                _cleanup_free_ char *entry = strprintf("%s %s %s %s", m->point, m->fstype, m->dev, m->root);
                if (!entry || (!strv_contains(stack, entry) && strv_extend(&stack, entry) < 0))
                        return -ENOMEM;
        }
        strv_sort(stack);
        *ret = TAKE_PTR(stack);
        return 0;
}

static int tables_late_mounts(const MountTable *theirs, const MountTable *ours, char ***automounts,
                              const uint64_t *used, size_t n_used, char ***ret_rebind, char ***skipped_mounts) {
        _cleanup_strv_free_ char **candidates = strv_copy(*automounts), **keep = NULL, **rebind = NULL,
                                 **rebound = NULL, **skip = NULL;
        int r;

        if (!candidates)
                return -ENOMEM;
        for (size_t i = 0; i < ours->n; i++) {
                const MountLine *m = &ours->lines[i];
                if (is_late_fstype(m->fstype) && mount_table_has(theirs, m->point) && automount_point_is_valid(m->point) &&
                    !strv_contains(candidates, m->point) && strv_extend(&candidates, m->point) < 0)
                        return -ENOMEM;
        }
        /* Parents first: a mount below one rebound comes with it. */
        strv_sort(candidates);

        STRV_FOREACH(c, candidates) {
                _cleanup_strv_free_ char **below = NULL, **our_stack = NULL, **their_stack = NULL;
                _cleanup_free_ char *flags = NULL;
                bool inside = false;
                STRV_FOREACH(b, rebound)
                        inside = inside || path_is_at_or_below(*c, *b);
                if (inside)
                        continue;
                r = mount_stack(ours, *c, &our_stack);
                if (r >= 0)
                        r = mount_stack(theirs, *c, &their_stack);
                if (r < 0)
                        return r;
                /* One the unit covered with its own (InaccessiblePaths=) is dumped as it is. */
                bool held = !strv_equal(our_stack, their_stack);
                const MountLine *lowest = NULL;
                for (size_t i = 0; i < ours->n && !held; i++) {
                        const MountLine *m = &ours->lines[i];
                        if (!path_is_at_or_below(m->point, *c))
                                continue;
                        /* The lowest at the point is the machine's mount as it came in, the
                         * last of the same device there its unit's bind of it onto itself
                         * (ProtectSystem=): the service's own confinement, which the bind gets. */
                        if (streq(m->point, *c) && (!lowest || streq(m->dev, lowest->dev))) {
                                lowest = lowest ?: m;
                                free(flags);
                                if (!(flags = confining_flags(m->options)))
                                        return -ENOMEM;
                        }
                        /* A mount criu could not be told to skip (mountinfo escapes blanks) is
                         * one the service keeps, as one it holds a file on. */
                        held = ids_contain(used, n_used, m->id) || strchr(m->point, '\\');
                        if (!held && !strv_contains(below, m->point) && strv_extend(&below, m->point) < 0)
                                return -ENOMEM;
                }
                if (held || !flags) {
                        /* Dumped as it is: an automount is mounted before the restore. */
                        if (strv_contains(*automounts, *c) && strv_extend(&keep, *c) < 0)
                                return -ENOMEM;
                        continue;
                }
                _cleanup_free_ char *entry = strprintf("%s:%s", flags, *c);
                if (!entry || strv_extend(&rebind, entry) < 0 || strv_extend(&rebound, *c) < 0)
                        return -ENOMEM;
                STRV_FOREACH(m, below)
                        if (!strv_contains(skip, *m) && strv_extend(&skip, *m) < 0)
                                return -ENOMEM;
        }
        STRV_FOREACH(m, skip)
                if (!strv_contains(*skipped_mounts, *m) && strv_extend(skipped_mounts, *m) < 0)
                        return -ENOMEM;
        strv_free(*automounts);
        *automounts = TAKE_PTR(keep);
        *ret_rebind = TAKE_PTR(rebind);
        return 0;
}

int mountinfo_late_mounts(const char *machine, const char *service, char ***automounts, const uint64_t *used,
                          size_t n_used, char ***ret_rebind, char ***skipped_mounts) {
        _cleanup_(mount_table_done) MountTable ours = {}, theirs = {};

        int r = mount_tables_parse(machine, service, &theirs, &ours);
        return r < 0 ? r : tables_late_mounts(&theirs, &ours, automounts, used, n_used, ret_rebind, skipped_mounts);
}

int late_mounts(pid_t root_pid, const pid_t *pids, size_t n_pids, char ***ret_automounts, char ***ret_rebind,
                char ***skipped_mounts) {
        _cleanup_free_ char *machine = NULL, *service = NULL;
        _cleanup_(mount_table_done) MountTable ours = {}, theirs = {};
        _cleanup_strv_free_ char **automounts = NULL;
        _cleanup_free_ uint64_t *used = NULL;
        size_t n_used = 0;

        int r = read_mountinfo(1, &machine);
        if (r >= 0)
                r = read_mountinfo(root_pid, &service);
        if (r >= 0)
                r = mount_tables_parse(machine, service, &theirs, &ours);
        if (r >= 0)
                r = tables_automounts(&theirs, &ours, &automounts);
        if (r >= 0)
                r = tree_mount_ids(pids, n_pids, &used, &n_used);
        if (r >= 0)
                r = tables_late_mounts(&theirs, &ours, &automounts, used, n_used, ret_rebind, skipped_mounts);
        if (r < 0)
                return r;
        *ret_automounts = TAKE_PTR(automounts);
        return 0;
}

static bool is_mount_root(int dir_fd, const char *path, int flags) {
        struct statx sx;
        return statx(dir_fd, path, flags | AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW, STATX_TYPE, &sx) >= 0 &&
               (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

static bool is_mount_point(const char *path) {
        return is_mount_root(AT_FDCWD, path, 0);
}

void late_mounts_open(LateMounts *lm, char * const *entries) {
        assert(lm);
        assert(!lm->fds);

        lm->entries = entries;
        lm->n = strv_length(entries);
        if (lm->n == 0)
                return;
        lm->fds = calloc(lm->n, sizeof(int));
        if (!lm->fds) {
                lm->n = 0;
                log_oom();
                return;
        }
        for (size_t i = 0; i < lm->n; i++) {
                _cleanup_free_ char *flags = NULL;
                const char *point = rebind_entry_parse(entries[i], &flags);
                /* O_PATH without O_DIRECTORY: no automount is triggered. */
                lm->fds[i] = point ? open(point, O_PATH | O_NOFOLLOW | O_CLOEXEC) : -EBADF;
        }
}

void late_mounts_done(LateMounts *lm) {
        assert(lm);
        for (size_t i = 0; i < lm->n; i++)
                safe_close(lm->fds[i]);
        free(lm->fds);
        *lm = (LateMounts) {};
}

static uint64_t mount_attr_flags(const char *flags) {
        _cleanup_strv_free_ char **words = NULL;
        uint64_t attr = 0;

        if (strv_split(flags, ",", &words) < 0)
                return MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        attr |= strv_contains(words, "ro") ? MOUNT_ATTR_RDONLY : 0;
        attr |= strv_contains(words, "nosuid") ? MOUNT_ATTR_NOSUID : 0;
        attr |= strv_contains(words, "nodev") ? MOUNT_ATTR_NODEV : 0;
        attr |= strv_contains(words, "noexec") ? MOUNT_ATTR_NOEXEC : 0;
        return attr;
}

/* In a child of ours, single-threaded as setns() into a mount namespace wants it: clones the
 * machine's mounts, then moves them into the namespace. */
static int bind_into_namespace(const char *unit, int ns_fd, int root_fd, const LateMounts *lm) {
        size_t n = lm->n;
        _cleanup_free_ int *trees = calloc(n, sizeof(int));
        _cleanup_free_ const char **points = calloc(n, sizeof(char *));
        int r = 0;

        if (!trees || !points)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *flags = NULL;
                trees[i] = -EBADF;
                points[i] = rebind_entry_parse(lm->entries[i], &flags);
                if (!points[i])
                        return log_unit_warning_errno(unit, EINVAL, "Failed to parse %s: %m", lm->entries[i]);
                /* A walk onto an automount waits while something else has it mounted (bootctl at
                 * the ESP: 27 s of the bench's boot), even one that does not cross it: the clone
                 * is taken from the mount restore-exec opened first, with what was mounted on it
                 * since (AT_RECURSIVE). A clone of a shared mount is its peer. */
                if (lm->fds[i] >= 0 && is_mount_root(lm->fds[i], "", AT_EMPTY_PATH))
                        trees[i] = open_tree(lm->fds[i], "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
                else if (is_mount_point(points[i]))
                        /* Mounted since restore-exec started: configfs, after its module. */
                        trees[i] = open_tree(AT_FDCWD, points[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE |
                                                                  AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW);
                else {
                        /* Its parent in the namespace is a slave of the machine's: it comes in
                         * when the boot mounts it. */
                        log_unit_debug(unit, "%s is not mounted yet; it propagates into %s's namespace when it is.",
                                       points[i], unit);
                        continue;
                }
                struct mount_attr attr = { .attr_set = mount_attr_flags(flags) };
                if (trees[i] < 0 ||
                    mount_setattr(trees[i], "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
                        r = log_unit_warning_errno(unit, errno, "Failed to clone the machine's mount at %s: %m", points[i]);
                        trees[i] = safe_close(trees[i]);
                }
        }
        if (setns(ns_fd, CLONE_NEWNS) < 0)
                return log_unit_warning_errno(unit, errno, "Failed to join %s's mount namespace: %m", unit);
        /* Its paths are its root's (RootDirectory=). */
        if (fchdir(root_fd) < 0 || chroot(".") < 0)
                return log_unit_warning_errno(unit, errno, "Failed to enter %s's root directory: %m", unit);
        for (size_t i = 0; i < n; i++) {
                struct statfs sf;
                if (trees[i] < 0)
                        continue;
                if (is_mount_point(points[i])) {
                        log_unit_debug(unit, "%s propagated into %s's namespace already.", points[i], unit);
                        continue;
                }
                bool autofs = fstatfs(trees[i], &sf) >= 0 && sf.f_type == AUTOFS_SUPER_MAGIC;
                if (move_mount(trees[i], "", AT_FDCWD, points[i], MOVE_MOUNT_F_EMPTY_PATH) < 0) {
                        r = log_unit_warning_errno(unit, errno, "Failed to bind the machine's %s into %s's namespace: %m",
                                                   points[i], unit);
                        continue;
                }
                /* What systemd mounts there later (and unmounts) reaches the service, as it did
                 * the namespace systemd made; nothing the service mounts reaches the machine. */
                struct mount_attr slave = { .propagation = MS_SLAVE };
                /* By its descriptor: the path leads onto the automount, and waits as above. */
                if (mount_setattr(trees[i], "", AT_EMPTY_PATH | AT_RECURSIVE, &slave, sizeof(slave)) < 0)
                        r = log_unit_warning_errno(unit, errno, "Failed to make %s in %s's namespace a slave of the machine's: %m",
                                                   points[i], unit);
                else
                        log_unit_debug(unit, "Bound the machine's %s%s into %s's namespace.", autofs ? "automount " : "",
                                       points[i], unit);
        }
        return r;
}

int late_mounts_bind(const char *unit, pid_t pid, const LateMounts *lm) {
        char path[64];

        if (!lm || lm->n == 0)
                return 0;
        snprintf(path, sizeof(path), "/proc/" PID_FMT "/ns/mnt", pid);
        _cleanup_close_ int ns_fd = open(path, O_RDONLY | O_CLOEXEC);
        if (ns_fd < 0)
                return log_unit_warning_errno(unit, errno, "Failed to open %s's mount namespace: %m", unit);
        snprintf(path, sizeof(path), "/proc/" PID_FMT "/root", pid);
        _cleanup_close_ int root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return log_unit_warning_errno(unit, errno, "Failed to open %s's root directory: %m", unit);

        pid_t child = fork();
        if (child < 0)
                return log_unit_warning_errno(unit, errno, "Failed to fork to bind the machine's mounts into %s's namespace: %m", unit);
        if (child == 0)
                _exit(bind_into_namespace(unit, ns_fd, root_fd, lm) < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
        int status;
        while (waitpid(child, &status, 0) < 0)
                if (errno != EINTR)
                        return log_unit_warning_errno(unit, errno, "Failed to wait for the binds into %s's namespace: %m", unit);
        /* The child logged what failed. */
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPROTO;
}
