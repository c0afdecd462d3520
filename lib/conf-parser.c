/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf-parser.h"
#include "fileio.h"
#include "log.h"
#include "string-util.h"

static const ConfigItem *config_find(const ConfigItem *table, const char *section, const char *key) {
        for (const ConfigItem *i = table; i->key; i++)
                if (streq(i->section, section) && streq(i->key, key))
                        return i;
        return NULL;
}

static bool config_has_section(const ConfigItem *table, const char *section) {
        for (const ConfigItem *i = table; i->key; i++)
                if (streq(i->section, section))
                        return true;
        return false;
}

int config_parse_file(const char *path, const ConfigItem *table, void *userdata) {
        _cleanup_free_ char *text = NULL, *section = NULL;
        bool section_known = true;
        unsigned line = 0;
        size_t size;
        int r;

        r = read_file_limited(path, CONFIG_FILE_MAX, &text, &size);
        if (r == -EFBIG)
                return log_error_errno(r, "%s: Configuration file larger than %u bytes, refusing.",
                                       path, CONFIG_FILE_MAX);
        if (r < 0)
                return r; /* the caller decides whether a missing file matters */
        /* Read as a C string, the file would silently end there. */
        const char *nul = memchr(text, 0, size);
        if (nul) {
                unsigned n = 1;
                for (const char *p = text; p < nul; p++)
                        n += *p == '\n';
                return log_error_errno(EBADMSG, "%s:%u: Configuration file contains a NUL byte, refusing the file.", path, n);
        }

        for (char *p = text, *next; p; p = next) {
                next = strchr(p, '\n');
                if (next)
                        *next++ = 0;
                line++;

                char *l = strstrip(p);
                if (!*l || *l == '#' || *l == ';')
                        continue;

                if (*l == '[') {
                        size_t n = strlen(l);
                        if (n < 3 || l[n - 1] != ']')
                                return log_error_errno(EBADMSG, "%s:%u: Invalid section header '%s'.", path, line, l);
                        l[n - 1] = 0;
                        r = free_and_strdup(&section, l + 1);
                        if (r < 0)
                                return log_oom();
                        section_known = config_has_section(table, section);
                        if (!section_known)
                                log_warning("%s:%u: Unknown section [%s], ignoring its keys.", path, line, section);
                        continue;
                }

                char *eq = strchr(l, '=');
                if (!eq)
                        return log_error_errno(EBADMSG, "%s:%u: Expected 'Key=Value', got '%s'.", path, line, l);
                *eq = 0;
                char *key = strstrip(l), *value = strstrip(eq + 1);
                if (!*key)
                        return log_error_errno(EBADMSG, "%s:%u: Missing key before '='.", path, line);
                if (!section)
                        return log_error_errno(EBADMSG, "%s:%u: Key '%s' outside of any section.", path, line, key);
                if (!section_known)
                        continue;

                const ConfigItem *item = config_find(table, section, key);
                if (!item) {
                        log_warning("%s:%u: Unknown key '%s' in section [%s], ignoring.", path, line, key, section);
                        continue;
                }
                r = item->parse(path, line, key, value, (char *) userdata + item->offset);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int name_compare(const void *a, const void *b) {
        const char *x = strrchr(*(char * const *) a, '/'), *y = strrchr(*(char * const *) b, '/');
        return strcmp(x, y);
}

int conf_files_list(const char * const *dirs, const char *suffix, char ***ret) {
        _cleanup_strv_free_ char **files = NULL, **names = NULL;
        int r;

        files = calloc(1, sizeof(char *));
        if (!files)
                return -ENOMEM;

        for (const char * const *dir = dirs; dir && *dir; dir++) {
                DIR *d = opendir(*dir);
                if (!d) {
                        if (errno == ENOENT)
                                continue;
                        return log_error_errno(errno, "Failed to open configuration directory %s: %m", *dir);
                }
                struct dirent *de;
                r = 0;
                errno = 0;
                while ((de = readdir(d))) {
                        if (de->d_name[0] == '.' || !endswith(de->d_name, suffix))
                                continue;
                        if (strv_contains(names, de->d_name))
                                continue; /* hidden by a file in an earlier directory */
                        char *full;
                        if (asprintf(&full, "%s/%s", *dir, de->d_name) < 0 ||
                            strv_extend(&names, de->d_name) < 0 ||
                            strv_push(&files, full) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        errno = 0;
                }
                if (r == 0 && errno != 0)
                        r = log_error_errno(errno, "Failed to read configuration directory %s: %m", *dir);
                closedir(d);
                if (r < 0)
                        return r;
        }

        size_t n = strv_length(files);
        if (n > 1)
                qsort(files, n, sizeof(char *), name_compare);
        *ret = TAKE_PTR(files);
        return 0;
}

int config_parse_with_dropins(const char *main_path, const char * const *dropin_dirs,
                              const ConfigItem *table, void *userdata) {
        _cleanup_strv_free_ char **files = NULL;
        int r;

        if (main_path) {
                r = config_parse_file(main_path, table, userdata);
                if (r == -ENOENT)
                        r = 0;
                else if (r == -EACCES || r == -EISDIR)
                        return log_error_errno(r, "Failed to read %s: %m", main_path);
                else if (r < 0)
                        return r;
        }

        r = conf_files_list(dropin_dirs, ".conf", &files);
        if (r < 0)
                return r;

        STRV_FOREACH(f, files) {
                r = config_parse_file(*f, table, userdata);
                if (r == -ENOENT)
                        continue; /* removed meanwhile */
                if (r == -EACCES || r == -EISDIR)
                        return log_error_errno(r, "Failed to read %s: %m", *f);
                if (r < 0)
                        return r;
        }
        return 0;
}

int config_parse_string(const char *filename, unsigned line, const char *key, const char *value, void *field) {
        (void) filename;
        (void) line;
        (void) key;
        if (free_and_strdup(field, isempty(value) ? NULL : value) < 0)
                return log_oom();
        return 0;
}

int config_parse_path(const char *filename, unsigned line, const char *key, const char *value, void *field) {
        if (!isempty(value) && value[0] != '/')
                return log_error_errno(EINVAL, "%s:%u: %s= must be an absolute path, got '%s'.",
                                       filename, line, key, value);
        return config_parse_string(filename, line, key, value, field);
}

int config_parse_bool(const char *filename, unsigned line, const char *key, const char *value, void *field) {
        int b = parse_boolean(value);
        if (b < 0)
                return log_error_errno(EINVAL, "%s:%u: %s= expects a boolean (yes/no), got '%s'.",
                                       filename, line, key, value);
        *(bool *) field = b;
        return 0;
}

int config_parse_unsigned(const char *filename, unsigned line, const char *key, const char *value, void *field) {
        int r = parse_unsigned(value, field);
        if (r < 0)
                return log_error_errno(EINVAL, "%s:%u: %s= expects a non-negative integer, got '%s'.",
                                       filename, line, key, value);
        return 0;
}

int config_parse_size(const char *filename, unsigned line, const char *key, const char *value, void *field) {
        int r = parse_size(value, field);
        if (r < 0)
                return log_error_errno(EINVAL, "%s:%u: %s= expects a size such as 512M or 4G, got '%s'.",
                                       filename, line, key, value);
        return 0;
}

int config_parse_timespan(const char *filename, unsigned line, const char *key, const char *value, void *field) {
        int r = parse_timespan(value, field);
        if (r < 0)
                return log_error_errno(EINVAL, "%s:%u: %s= expects a time span such as 90s or 5min, got '%s'.",
                                       filename, line, key, value);
        return 0;
}

int config_parse_strv(const char *filename, unsigned line, const char *key, const char *value, void *field) {
        char ***l = field;
        _cleanup_strv_free_ char **words = NULL;

        (void) filename;
        (void) line;
        (void) key;
        if (isempty(value)) {
                *l = strv_free(*l);
                return 0;
        }
        if (strv_split(value, " \t", &words) < 0)
                return log_oom();
        STRV_FOREACH(w, words)
                if (strv_extend(l, *w) < 0)
                        return log_oom();
        return 0;
}
