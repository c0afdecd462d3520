/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The runtime drop-in that turns a service's next start into a restore of
 * its checkpoint, and the record kept beside the images. Pure text in and
 * out, so both are unit-tested. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"
#include "paths.h"
#include "string-util.h"

#define RESTORE_DROPIN_NAME "zz-dreamlink-restore.conf" /* sorts after the unit's own drop-ins */
#define OPT_IN_DROPIN_NAME "90-dreamlink-handoff.conf"   /* the generator's, for every opted-in service */
#define RESTORE_DROPIN_DIR SYSTEMD_RUNTIME_UNIT_DIR

typedef struct RestoreDropin {
        const char *unit;
        const char *helper;            /* absolute path of dreamlink-handoff */
        const char *images_dir;        /* this unit's images */
        const char *pidfile;
        const char *syslog_identifier; /* the unit's own, or its program's name */
} RestoreDropin;

/* One word for a unit file command line: as is when plain, else "…" with
 * \ and " escaped, % and $ doubled (systemd expands specifiers and
 * variables there). */
char *unit_command_word(const char *s);

int restore_dropin_text(const RestoreDropin *d, char **ret);
/* RESTORE_DROPIN_DIR/UNIT.d/RESTORE_DROPIN_NAME under root (NULL: /) */
int restore_dropin_path(const char *root, const char *unit, char **ret);
int restore_dropin_write(const char *root, const RestoreDropin *d);
/* A missing drop-in is fine. Returns 1 if one was removed. */
int restore_dropin_remove(const char *root, const char *unit);

typedef enum CheckpointResult {
        CHECKPOINT_DUMPED, /* images are complete: restore them */
        CHECKPOINT_FRESH,  /* the dump failed: the service starts fresh */
        _CHECKPOINT_RESULT_MAX,
        _CHECKPOINT_RESULT_INVALID = -EINVAL,
} CheckpointResult;

const char *checkpoint_result_to_string(CheckpointResult r);
CheckpointResult checkpoint_result_from_string(const char *s);

/* What a dump left for the restore, in IMAGES/handoff.state: everything
 * restore-exec needs, so a restore in a new boot needs no other input. */
typedef struct Checkpoint {
        char *unit;
        CheckpointResult result;
        char *reason;              /* why it will start fresh */
        pid_t main_pid;
        char *syslog_identifier;
        bool tcp_established;
        bool file_locks;
        bool shell_job;
        bool mount_namespace;      /* the service has a mount namespace of its own */
        char **journal_inodes;     /* the service's ends of its journal streams */
        char **datagram_inodes;    /* its datagram sockets to named sockets outside it (syslog):
                                    * criu connects them by name again at the restore */
        char **null_files;         /* criu keys (file[MNT:INO]) of /dev/null opened outside the
                                    * service's mount namespace (its stdin, from systemd) */
        char **tmp_dirs;           /* systemd's per-unit directories the service's mount namespace binds
                                    * (PrivateTmp=, /run/systemd/propagate/UNIT): gone with the unit,
                                    * recreated before the restore */
        char **runtime_mounts;     /* only from a dreamlink-handoff older than SkippedMounts= for
                                    * /run/credentials/… and /run/user/… recorded, the mount points it
                                    * dumped as binds, created empty before the restore of its
                                    * checkpoint (the old slot dumps, the new one restores) */
        char **skipped_mounts;     /* other units', users' and containers' mounts that propagated into
                                    * it, left out of the dump (criu --skip-mnt, mounts.c): the restored
                                    * namespace lacks them */
        char **automounts;         /* its mount points where the machine has an automount and it holds
                                    * files below (automounts.c): mounted before the restore, criu cannot
                                    * cross them from its own namespace */
        char **rebind_mounts;      /* "FLAGS:PATH" of the machine's mounts a boot makes late (automounts,
                                    * configfs …) where it holds nothing below: left out of the dump, the
                                    * machine's bound into the restored namespace before it runs with
                                    * FLAGS (automounts.c; a dreamlink-handoff without RebindMounts=
                                    * ignores the key, and the service has the directory there) */
        char **run_dirs;           /* "MODE:UID:GID:PATH" of the directories below /run the tree uses by
                                    * path (rundirs.c): created as they were before the restore */
        char **run_files;          /* "MODE:UID:GID:PATH" of the files saved from there and of its PID
                                    * file (runfiles.c): written again after the restore */
        char **addresses;          /* the machine's addresses its TCP and UDP sockets are bound to
                                    * (addresses.c): the restore waits for them */
        char *lock_table;          /* the nftables table criu locked the connections with, or the one
                                    * holding a container's ports */
        char *container_id;        /* a quadlet unit's podman container, checkpointed by podman: the
                                    * restore imports it (container.c) instead of running criu */
        char *container_id_file;   /* the --cidfile it was created with, written again at the restore */
        bool session;              /* a login session (unit is its scope), not a service */
        char **session_refs;       /* criu keys of the session's logind reference FIFOs: a new
                                    * FIFO stands in for each at the restore */
        uint64_t pre_dump_usec;    /* PreDump=: 0 if there was none */
        uint64_t pre_dump_bytes;   /* its images (in pre/, part of image_bytes) */
        uint64_t dump_usec;        /* the final dump: the tree is stopped this long */
        uint64_t image_bytes;
        uint64_t dumped_at_usec;   /* CLOCK_REALTIME at the end of the dump */
        uint64_t sync_usec;        /* the sync of the images, part of dump_usec; not in the record */
} Checkpoint;

#define CHECKPOINT_STATE_FILE "handoff.state"

void checkpoint_done(Checkpoint *c);
int checkpoint_to_text(const Checkpoint *c, char **ret);
int checkpoint_load(const char *path, Checkpoint *ret);
/* /run/credentials/NAME or /run/user/NAME (one level, no dot names): what RuntimeMounts= may hold. */
bool runtime_mount_point_is_valid(const char *path);
/* An absolute path without "." or ".." components, blanks or escapes: what Automounts= may hold. */
bool automount_point_is_valid(const char *path);
/* A RebindMounts= entry, "FLAGS:PATH": FLAGS "rw" or some of ro, nosuid, nodev, noexec joined by
 * commas, PATH as Automounts= has them. */
bool rebind_entry_is_valid(const char *entry);
/* Its PATH, a pointer into entry, and its FLAGS in *ret_flags; NULL if it is not one. */
const char *rebind_entry_parse(const char *entry, char **ret_flags);
/* A directory below /run that is none of systemd's, users' or credentials' (and a plain path). */
bool run_dir_path_is_valid(const char *path);
/* The PATH of a RunDirectories= or RunFiles= entry "MODE:UID:GID:PATH", the numbers in *ret_*;
 * NULL when it is not of that form. */
const char *run_entry_parse(const char *entry, unsigned *ret_mode, unsigned *ret_uid, unsigned *ret_gid);
/* A RunDirectories= entry that the restore may create as root. */
bool run_dir_entry_is_valid(const char *entry);
/* A podman container's full ID: 64 lowercase hex digits. */
bool container_id_is_valid(const char *id);
/* A container ID file the restore may write as root: quadlet's /run/NAME.cid. */
bool container_id_file_is_valid(const char *path);
/* A RunFiles= entry that the restore may write as root: the same places, no set-ID or sticky bit. */
bool run_file_entry_is_valid(const char *entry);
