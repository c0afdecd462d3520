/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* systemd-style configuration files: "[Section]" headers, "Key=Value" lines,
 * '#' and ';' comments. A main file is read first, then drop-ins
 * (NAME.conf.d/ *.conf from several directories, sorted by file name; a file in
 * an earlier directory hides the same name in a later one), each overriding
 * what came before. Unknown keys are warned about; bad values and syntax
 * errors are errors that name file:line. Parsers log their own errors. */

#include <stddef.h>

#define CONFIG_FILE_MAX (64U * 1024U)

typedef int (*ConfigParser)(const char *filename, unsigned line, const char *key,
                            const char *value, void *field);

typedef struct ConfigItem {
        const char *section;
        const char *key;
        ConfigParser parse;
        size_t offset; /* of the field in the struct given as userdata */
} ConfigItem;

int config_parse_file(const char *path, const ConfigItem *table, void *userdata);
/* A missing main file or drop-in directory is fine; an unreadable one is not. */
int config_parse_with_dropins(const char *main_path, const char * const *dropin_dirs,
                              const ConfigItem *table, void *userdata);

/* Drop-in files, merged over dirs by name and sorted; earlier dirs win. */
int conf_files_list(const char * const *dirs, const char *suffix, char ***ret);

int config_parse_string(const char *filename, unsigned line, const char *key, const char *value, void *field);
int config_parse_path(const char *filename, unsigned line, const char *key, const char *value, void *field);
int config_parse_bool(const char *filename, unsigned line, const char *key, const char *value, void *field);
int config_parse_unsigned(const char *filename, unsigned line, const char *key, const char *value, void *field);
int config_parse_size(const char *filename, unsigned line, const char *key, const char *value, void *field);
int config_parse_timespan(const char *filename, unsigned line, const char *key, const char *value, void *field);
/* Whitespace-separated list, appended to; an empty value resets it. */
int config_parse_strv(const char *filename, unsigned line, const char *key, const char *value, void *field);
