/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf-parser.h"
#include "dropin.h"
#include "fileio.h"
#include "log.h"

static const char * const checkpoint_result_table[_CHECKPOINT_RESULT_MAX] = {
        [CHECKPOINT_DUMPED] = "dumped",
        [CHECKPOINT_FRESH] = "fresh",
};

DEFINE_STRING_TABLE_LOOKUP(checkpoint_result, CheckpointResult, checkpoint_result_table, _CHECKPOINT_RESULT_INVALID);

char *unit_command_word(const char *s) {
        /* Plain words stay as they are: the drop-in reads like a hand-written one. */
        if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-:@=+,") == strlen(s))
                return strdup(s);

        size_t n = 3;
        for (const char *p = s; *p; p++)
                n += strchr("\\\"%$", *p) ? 2 : 1;
        char *w = malloc(n), *q = w;
        if (!w)
                return NULL;
        *q++ = '"';
        for (const char *p = s; *p; p++) {
                if (*p == '%' || *p == '$') /* specifiers, environment variables */
                        *q++ = *p;
                else if (*p == '\\' || *p == '"')
                        *q++ = '\\';
                *q++ = *p;
        }
        *q++ = '"';
        *q = 0;
        return w;
}

/* For values that are not command lines (paths, names): only specifiers matter. */
static char *unit_value(const char *s) {
        size_t n = 1;
        for (const char *p = s; *p; p++)
                n += *p == '%' ? 2 : 1;
        char *v = malloc(n), *q = v;
        if (!v)
                return NULL;
        for (const char *p = s; *p; p++) {
                if (*p == '%')
                        *q++ = '%';
                *q++ = *p;
        }
        *q = 0;
        return v;
}

int restore_dropin_text(const RestoreDropin *d, char **ret) {
        _cleanup_free_ char *helper = NULL, *unit = NULL, *images = NULL, *pidfile = NULL,
                *pidfile_value = NULL, *ident = NULL;

        if (!d->unit || !d->helper || !d->images_dir || !d->pidfile)
                return -EINVAL;
        /* Newlines would end the assignment and start another one. */
        if (strpbrk(d->images_dir, "\n\r") || strpbrk(d->pidfile, "\n\r") || strpbrk(d->helper, "\n\r") ||
            (d->syslog_identifier && strpbrk(d->syslog_identifier, "\n\r")))
                return -EINVAL;

        helper = unit_command_word(d->helper);
        unit = unit_command_word(d->unit);
        images = unit_command_word(d->images_dir);
        pidfile = unit_command_word(d->pidfile);
        pidfile_value = unit_value(d->pidfile);
        ident = d->syslog_identifier ? unit_value(d->syslog_identifier) : NULL;
        if (!helper || !unit || !images || !pidfile || !pidfile_value || (d->syslog_identifier && !ident))
                return -ENOMEM;

        char *s;
        if (asprintf(&s,
                     "# Written by dreamlink-handoff: the next start of %s restores its\n"
                     "# checkpoint instead of starting it fresh. Removed after that start.\n"
                     "[Service]\n"
                     /* criu detaches the restored tree and exits; systemd takes the pid from the pidfile. */
                     "Type=forking\n"
                     "PIDFile=%s\n"
                     /* The unit's own pre/post commands prepare or follow a fresh start, not this one. */
                     "ExecStartPre=\n"
                     "ExecStartPre=+/bin/rm -f %s\n"
                     "ExecStartPost=\n"
                     "ExecCondition=\n"
                     "ExecStart=\n"
                     /* '+': criu needs root and no sandbox; the images bring the service's own back. */
                     "ExecStart=+%s restore-exec --unit=%s --images=%s --pidfile=%s\n"
                     /* The dump kills the service: that must not start it again. */
                     "Restart=no\n"
                     /* The unit's bound is for its own start. A restore runs beside the others in a
                      * boot's busiest minutes (podman's first run in it, for a container): a bound
                      * that only ends a restore that hangs. */
                     "TimeoutStartSec=15min\n"
                     "User=\n"
                     "Group=\n"
                     "DynamicUser=no\n"
                     "PrivateUsers=no\n"
                     "PrivatePIDs=no\n"
                     "%s%s%s",
                     d->unit, pidfile_value, pidfile, helper, unit, images, pidfile,
                     ident ? "SyslogIdentifier=" : "", strempty(ident), ident ? "\n" : "") < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int restore_dropin_path(const char *root, const char *unit, char **ret) {
        char *p;
        if (asprintf(&p, "%s" RESTORE_DROPIN_DIR "/%s.d/" RESTORE_DROPIN_NAME, strempty(root), unit) < 0)
                return -ENOMEM;
        *ret = p;
        return 0;
}

int restore_dropin_write(const char *root, const RestoreDropin *d) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        r = restore_dropin_path(root, d->unit, &path);
        if (r >= 0)
                r = restore_dropin_text(d, &text);
        if (r < 0)
                return log_unit_error_errno(d->unit, r, "Failed to format the restore drop-in: %m");

        r = write_string_file_atomic_mkdir(path, text, 0644);
        if (r < 0)
                return log_unit_error_errno(d->unit, r, "Failed to write %s: %m", path);
        return 0;
}

int restore_dropin_remove(const char *root, const char *unit) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = restore_dropin_path(root, unit, &path);
        if (r < 0)
                return log_oom();
        if (unlink(path) < 0) {
                if (errno == ENOENT)
                        return 0;
                return log_unit_error_errno(unit, errno, "Failed to remove %s: %m", path);
        }
        /* The directory goes too when it was only ours. */
        *strrchr(path, '/') = 0;
        (void) rmdir(path);
        return 1;
}

void checkpoint_done(Checkpoint *c) {
        free(c->unit);
        free(c->reason);
        free(c->syslog_identifier);
        strv_free(c->journal_inodes);
        strv_free(c->datagram_inodes);
        strv_free(c->null_files);
        strv_free(c->tmp_dirs);
        free(c->lock_table);
        free(c->container_id);
        free(c->container_id_file);
        strv_free(c->session_refs);
        strv_free(c->runtime_mounts);
        strv_free(c->skipped_mounts);
        strv_free(c->automounts);
        strv_free(c->rebind_mounts);
        strv_free(c->run_dirs);
        strv_free(c->run_files);
        strv_free(c->addresses);
        *c = (Checkpoint) {};
}

int checkpoint_to_text(const Checkpoint *c, char **ret) {
        _cleanup_free_ char *inodes = NULL, *datagrams = NULL, *tmp = NULL, *nulls = NULL, *refs = NULL, *mounts = NULL,
                            *skipped = NULL, *automounts = NULL, *rebind_mounts = NULL, *run_dirs = NULL, *run_files = NULL, *addresses = NULL;

        if (!c->unit || c->result < 0 || c->result >= _CHECKPOINT_RESULT_MAX)
                return -EINVAL;
        if ((c->reason && strpbrk(c->reason, "\n\r")) || (c->syslog_identifier && strpbrk(c->syslog_identifier, "\n\r")))
                return -EINVAL;
        inodes = strv_join(c->journal_inodes, " ");
        datagrams = strv_join(c->datagram_inodes, " ");
        tmp = strv_join(c->tmp_dirs, " ");
        nulls = strv_join(c->null_files, " ");
        refs = strv_join(c->session_refs, " ");
        mounts = strv_join(c->runtime_mounts, " ");
        skipped = strv_join(c->skipped_mounts, " ");
        automounts = strv_join(c->automounts, " ");
        rebind_mounts = strv_join(c->rebind_mounts, " ");
        run_dirs = strv_join(c->run_dirs, " ");
        run_files = strv_join(c->run_files, " ");
        addresses = strv_join(c->addresses, " ");
        if (!inodes || !datagrams || !tmp || !nulls || !refs || !mounts || !skipped || !automounts || !rebind_mounts || !run_dirs || !run_files || !addresses)
                return -ENOMEM;

        char *s;
        if (asprintf(&s,
                     "# dreamlink-handoff checkpoint record\n"
                     "[Checkpoint]\n"
                     "Unit=%s\n"
                     "Result=%s\n"
                     "Reason=%s\n"
                     "MainPID=" PID_FMT "\n"
                     "SyslogIdentifier=%s\n"
                     "TCPEstablished=%s\n"
                     "FileLocks=%s\n"
                     "ShellJob=%s\n"
                     "MountNamespace=%s\n"
                     "JournalInodes=%s\n"
                     "DatagramInodes=%s\n"
                     "NullFiles=%s\n"
                     "TmpDirectories=%s\n"
                     "RuntimeMounts=%s\n"
                     "SkippedMounts=%s\n"
                     "Automounts=%s\n"
                     "RebindMounts=%s\n"
                     "RunDirectories=%s\n"
                     "RunFiles=%s\n"
                     "Addresses=%s\n"
                     "LockTable=%s\n"
                     "Container=%s\n"
                     "ContainerIDFile=%s\n"
                     "Session=%s\n"
                     "SessionRefs=%s\n"
                     "PreDumpUSec=%" PRIu64 "\n"
                     "PreDumpBytes=%" PRIu64 "\n"
                     "DumpUSec=%" PRIu64 "\n"
                     "ImageBytes=%" PRIu64 "\n"
                     "DumpedAtUSec=%" PRIu64 "\n",
                     c->unit, checkpoint_result_to_string(c->result), strempty(c->reason), c->main_pid,
                     strempty(c->syslog_identifier), c->tcp_established ? "yes" : "no",
                     c->file_locks ? "yes" : "no", c->shell_job ? "yes" : "no", c->mount_namespace ? "yes" : "no", inodes, datagrams, nulls, tmp, mounts,
                     skipped, automounts, rebind_mounts, run_dirs, run_files, addresses, strempty(c->lock_table), strempty(c->container_id), strempty(c->container_id_file), c->session ? "yes" : "no", refs, c->pre_dump_usec, c->pre_dump_bytes, c->dump_usec, c->image_bytes, c->dumped_at_usec) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int parse_result(const char *filename, unsigned line, const char *key, const char *value, void *field) {
        CheckpointResult r = checkpoint_result_from_string(value);
        if (r < 0)
                return log_error_errno(EINVAL, "%s:%u: %s= expects dumped or fresh, got '%s'.", filename, line, key, value);
        *(CheckpointResult *) field = r;
        return 0;
}

static int parse_pid(const char *filename, unsigned line, const char *key, const char *value, void *field) {
        unsigned u;
        if (parse_unsigned(value, &u) < 0 || u > INT32_MAX)
                return log_error_errno(EINVAL, "%s:%u: %s= expects a PID, got '%s'.", filename, line, key, value);
        *(pid_t *) field = (pid_t) u;
        return 0;
}

static int parse_u64(const char *filename, unsigned line, const char *key, const char *value, void *field) {
        if (parse_uint64(value, field) < 0)
                return log_error_errno(EINVAL, "%s:%u: %s= expects a number, got '%s'.", filename, line, key, value);
        return 0;
}

static int parse_inodes(const char *filename, unsigned line, const char *key, const char *value, void *field) {
        int r = config_parse_strv(filename, line, key, value, field);
        if (r < 0)
                return r;
        STRV_FOREACH(i, *(char ***) field) {
                uint64_t u;
                if (parse_uint64(*i, &u) < 0)
                        return log_error_errno(EINVAL, "%s:%u: %s= expects inode numbers, got '%s'.", filename, line, key, *i);
        }
        return 0;
}

static int parse_null_files(const char *filename, unsigned line, const char *key, const char *value, void *field) {
        int r = config_parse_strv(filename, line, key, value, field);
        if (r < 0)
                return r;
        STRV_FOREACH(i, *(char ***) field) {
                unsigned mnt;
                unsigned long long ino;
                char end;
                if (sscanf(*i, "file[%x:%llx]%c", &mnt, &ino, &end) != 2 || !endswith(*i, "]"))
                        return log_error_errno(EINVAL, "%s:%u: %s= expects keys such as file[1a:5], got '%s'.", filename, line, key, *i);
        }
        return 0;
}

bool container_id_is_valid(const char *id) {
        return id && string_is_lower_hex(id, 64);
}

/* Quadlet's --cidfile=%t/%N.cid: a file directly in /run, which only root may write. */
bool container_id_file_is_valid(const char *path) {
        const char *name = path ? startswith(path, "/run/") : NULL;
        return name && name[0] != '.' && !strchr(name, '/') && endswith(name, ".cid") && strlen(name) > strlen(".cid");
}

static const ConfigItem checkpoint_table[] = {
        { "Checkpoint", "Unit", config_parse_string, offsetof(Checkpoint, unit) },
        { "Checkpoint", "Result", parse_result, offsetof(Checkpoint, result) },
        { "Checkpoint", "Reason", config_parse_string, offsetof(Checkpoint, reason) },
        { "Checkpoint", "MainPID", parse_pid, offsetof(Checkpoint, main_pid) },
        { "Checkpoint", "SyslogIdentifier", config_parse_string, offsetof(Checkpoint, syslog_identifier) },
        { "Checkpoint", "TCPEstablished", config_parse_bool, offsetof(Checkpoint, tcp_established) },
        { "Checkpoint", "FileLocks", config_parse_bool, offsetof(Checkpoint, file_locks) },
        { "Checkpoint", "ShellJob", config_parse_bool, offsetof(Checkpoint, shell_job) },
        { "Checkpoint", "MountNamespace", config_parse_bool, offsetof(Checkpoint, mount_namespace) },
        { "Checkpoint", "JournalInodes", parse_inodes, offsetof(Checkpoint, journal_inodes) },
        { "Checkpoint", "DatagramInodes", parse_inodes, offsetof(Checkpoint, datagram_inodes) },
        { "Checkpoint", "NullFiles", parse_null_files, offsetof(Checkpoint, null_files) },
        { "Checkpoint", "TmpDirectories", config_parse_strv, offsetof(Checkpoint, tmp_dirs) },
        { "Checkpoint", "RuntimeMounts", config_parse_strv, offsetof(Checkpoint, runtime_mounts) },
        { "Checkpoint", "SkippedMounts", config_parse_strv, offsetof(Checkpoint, skipped_mounts) },
        { "Checkpoint", "Automounts", config_parse_strv, offsetof(Checkpoint, automounts) },
        { "Checkpoint", "RebindMounts", config_parse_strv, offsetof(Checkpoint, rebind_mounts) },
        { "Checkpoint", "RunDirectories", config_parse_strv, offsetof(Checkpoint, run_dirs) },
        { "Checkpoint", "RunFiles", config_parse_strv, offsetof(Checkpoint, run_files) },
        { "Checkpoint", "Addresses", config_parse_strv, offsetof(Checkpoint, addresses) },
        { "Checkpoint", "LockTable", config_parse_string, offsetof(Checkpoint, lock_table) },
        { "Checkpoint", "Container", config_parse_string, offsetof(Checkpoint, container_id) },
        { "Checkpoint", "ContainerIDFile", config_parse_string, offsetof(Checkpoint, container_id_file) },
        { "Checkpoint", "Session", config_parse_bool, offsetof(Checkpoint, session) },
        { "Checkpoint", "SessionRefs", parse_null_files, offsetof(Checkpoint, session_refs) },
        { "Checkpoint", "PreDumpUSec", parse_u64, offsetof(Checkpoint, pre_dump_usec) },
        { "Checkpoint", "PreDumpBytes", parse_u64, offsetof(Checkpoint, pre_dump_bytes) },
        { "Checkpoint", "DumpUSec", parse_u64, offsetof(Checkpoint, dump_usec) },
        { "Checkpoint", "ImageBytes", parse_u64, offsetof(Checkpoint, image_bytes) },
        { "Checkpoint", "DumpedAtUSec", parse_u64, offsetof(Checkpoint, dumped_at_usec) },
        {}
};

bool runtime_mount_point_is_valid(const char *path) {
        const char *name = startswith(path, "/run/credentials/") ?: startswith(path, "/run/user/");
        return name && *name && *name != '.' && !strchr(name, '/');
}

/* Absolute, no empty, "." or ".." component, no blank or escape: what it says, nothing else. */
static bool path_is_plain(const char *path) {
        if (path[0] != '/' || strpbrk(path, " \t\n\\"))
                return false;
        for (const char *p = path; (p = strchr(p, '/')); p++)
                if (p[1] == '/' || startswith(p, "/./") || startswith(p, "/../") || streq(p, "/.") || streq(p, "/.."))
                        return false;
        return true;
}

/* Where other code owns the directories: systemd's, users' and credentials' (see mounts.c). */
bool run_dir_path_is_valid(const char *path) {
        const char *rest = startswith(path, "/run/");
        if (!rest || !*rest || startswith(rest, "systemd/") || startswith(rest, "user/") ||
            startswith(rest, "credentials/"))
                return false;
        return path_is_plain(path);
}

bool automount_point_is_valid(const char *path) {
        return !streq(path, "/") && path_is_plain(path);
}

const char *rebind_entry_parse(const char *entry, char **ret_flags) {
        static const char * const known[] = { "ro", "nosuid", "nodev", "noexec" };
        const char *colon = strchr(entry, ':');
        _cleanup_strv_free_ char **words = NULL;

        if (!colon || !automount_point_is_valid(colon + 1))
                return NULL;
        _cleanup_free_ char *flags = strndup(entry, colon - entry);
        if (!flags || strv_split(flags, ",", &words) < 0)
                return NULL;
        if (!streq(flags, "rw")) {
                _cleanup_free_ char *joined = strv_join(words, ",");
                /* No empty words: "ro,", ",ro". */
                if (strv_length(words) == 0 || !joined || !streq(joined, flags))
                        return NULL;
                STRV_FOREACH(w, words) {
                        bool ok = false;
                        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                                ok = ok || streq(*w, known[i]);
                        if (!ok)
                                return NULL;
                }
        }
        *ret_flags = TAKE_PTR(flags);
        return colon + 1;
}

bool rebind_entry_is_valid(const char *entry) {
        _cleanup_free_ char *flags = NULL;
        return rebind_entry_parse(entry, &flags);
}

const char *run_entry_parse(const char *entry, unsigned *ret_mode, unsigned *ret_uid, unsigned *ret_gid) {
        int n = 0;
        if (sscanf(entry, "%o:%u:%u:%n", ret_mode, ret_uid, ret_gid, &n) != 3 || n <= 0)
                return NULL;
        return entry + n;
}

bool run_dir_entry_is_valid(const char *entry) {
        unsigned mode, uid, gid;
        const char *path = run_entry_parse(entry, &mode, &uid, &gid);
        return path && mode <= 07777 && run_dir_path_is_valid(path);
}

bool run_file_entry_is_valid(const char *entry) {
        unsigned mode, uid, gid;
        const char *path = run_entry_parse(entry, &mode, &uid, &gid);
        return path && mode <= 0777 && run_dir_path_is_valid(path);
}

int checkpoint_load(const char *path, Checkpoint *ret) {
        Checkpoint c = { .result = _CHECKPOINT_RESULT_INVALID };
        int r;

        r = config_parse_file(path, checkpoint_table, &c);
        if (r == -ENOENT)
                r = log_error_errno(r, "No checkpoint record %s.", path);
        else if (r >= 0 && (!c.unit || c.result < 0))
                r = log_error_errno(EBADMSG, "%s: Incomplete checkpoint record (no Unit= or Result=), refusing.", path);
        else if (r >= 0 && c.tmp_dirs)
                /* These are recreated as root: only systemd's per-unit directories. */
                STRV_FOREACH(d, c.tmp_dirs)
                        if (!(startswith(*d, "/tmp/systemd-private-") || startswith(*d, "/var/tmp/systemd-private-") ||
                              startswith(*d, "/run/systemd/propagate/")) ||
                            strstr(*d, "/../") || strstr(*d, "/./")) {
                                r = log_error_errno(EBADMSG, "%s: TmpDirectories= lists '%s', refusing.", path, *d);
                                break;
                        }
        if (r >= 0)
                /* These are created as root: only the runtime directories of units and users. */
                STRV_FOREACH(m, c.runtime_mounts)
                        if (!runtime_mount_point_is_valid(*m)) {
                                r = log_error_errno(EBADMSG, "%s: RuntimeMounts= lists '%s', refusing.", path, *m);
                                break;
                        }
        if (r >= 0)
                /* These are opened as root. */
                STRV_FOREACH(m, c.automounts)
                        if (!automount_point_is_valid(*m)) {
                                r = log_error_errno(EBADMSG, "%s: Automounts= lists '%s', refusing.", path, *m);
                                break;
                        }
        if (r >= 0)
                /* These are mount points of the machine's, as root. */
                STRV_FOREACH(m, c.rebind_mounts)
                        if (!rebind_entry_is_valid(*m)) {
                                r = log_error_errno(EBADMSG, "%s: RebindMounts= lists '%s', refusing.", path, *m);
                                break;
                        }
        if (r >= 0)
                /* These are created as root, owned as recorded: only below /run, none of systemd's. */
                STRV_FOREACH(d, c.run_dirs)
                        if (!run_dir_entry_is_valid(*d)) {
                                r = log_error_errno(EBADMSG, "%s: RunDirectories= lists '%s', refusing.", path, *d);
                                break;
                        }
        if (r >= 0)
                /* The same, and written as root: never with a set-ID or sticky bit. */
                STRV_FOREACH(f, c.run_files)
                        if (!run_file_entry_is_valid(*f)) {
                                r = log_error_errno(EBADMSG, "%s: RunFiles= lists '%s', refusing.", path, *f);
                                break;
                        }
        if (r >= 0)
                /* Looked up by name among the machine's. */
                STRV_FOREACH(a, c.addresses) {
                        struct in6_addr buf;
                        if (inet_pton(AF_INET, *a, &buf) != 1 && inet_pton(AF_INET6, *a, &buf) != 1) {
                                r = log_error_errno(EBADMSG, "%s: Addresses= lists '%s', not an IP address, refusing.", path, *a);
                                break;
                        }
                }
        /* The ID goes to podman; the file is written as root. */
        if (r >= 0 && c.container_id && !container_id_is_valid(c.container_id))
                r = log_error_errno(EBADMSG, "%s: Container= is not a container ID, refusing.", path);
        if (r >= 0 && c.container_id_file && (!c.container_id || !container_id_file_is_valid(c.container_id_file)))
                r = log_error_errno(EBADMSG, "%s: ContainerIDFile= lists '%s', refusing.", path, c.container_id_file);
        if (r < 0) {
                checkpoint_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}
