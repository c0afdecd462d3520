/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "macro.h"

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}
static inline bool streq_ptr(const char *a, const char *b) {
        return (!a && !b) || (a && b && streq(a, b));
}
static inline bool isempty(const char *s) {
        return !s || !*s;
}
static inline const char *strempty(const char *s) {
        return s ?: "";
}
static inline const char *strna(const char *s) {
        return s ?: "n/a";
}

/* Returns a pointer past the prefix, NULL when s does not start with it. */
const char *startswith(const char *s, const char *prefix);
bool endswith(const char *s, const char *suffix);

/* Removes leading and trailing whitespace in place, returns the new start. */
char *strstrip(char *s);

int free_and_strdup(char **p, const char *s);

/* asprintf() that returns the string, or NULL when out of memory. */
char *strprintf(const char *format, ...) _printf_(1, 2);

/* NULL-terminated string vectors. */
char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
#define _cleanup_strv_free_ _cleanup_(strv_freep)
size_t strv_length(char * const *l);
int strv_push(char ***l, char *value);         /* takes ownership of value, also on failure */
int strv_extend(char ***l, const char *value); /* copies value */
char **strv_copy(char * const *l);             /* NULL on ENOMEM; of NULL, an empty list */
bool strv_contains(char * const *l, const char *s);
/* The same strings in the same order (NULL is the empty list). */
bool strv_equal(char * const *a, char * const *b);
void strv_sort(char **l);
/* Splits s at any of the separator characters, skipping empty words. */
int strv_split(const char *s, const char *separators, char ***ret);
/* The strings with sep between them ("" for none); NULL if out of memory. */
char *strv_join(char * const *l, const char *sep);
#define STRV_FOREACH(s, l) for (char * const *s = (l); s && *s; s++)
/* Over a list of KEY, VALUE, KEY, VALUE… */
#define STRV_FOREACH_PAIR(k, v, l) \
        for (char **k = (l), **v = (l) ? (l) + 1 : NULL; k && *k && *v; k += 2, v += 2)

/* Strict parsers: the whole string must be a value, else -EINVAL; -ERANGE on overflow. */
int parse_boolean(const char *s);                  /* 1, 0 or -EINVAL */
int parse_uint64(const char *s, uint64_t *ret);
int parse_unsigned(const char *s, unsigned *ret);
int parse_size(const char *s, uint64_t *ret);      /* bytes, with optional K/M/G/T (base 1024) */
int parse_timespan(const char *s, uint64_t *ret);  /* microseconds; "90", "1min 30s", "500ms" */

/* Human-readable output into a caller's buffer, which is returned. */
#define FORMAT_BYTES_MAX 16
char *format_bytes(char *buf, size_t size, uint64_t bytes);
#define FORMAT_TIMESPAN_MAX 64
char *format_timespan(char *buf, size_t size, uint64_t usec);

/* A copy of S with control characters and DEL written as \xNN: text from a server or a file,
 * made safe to print on a terminal (no escape sequences). NULL when out of memory. */
char *escape_control(const char *s);

bool filename_is_valid(const char *s);
/* SIZE bytes as lowercase hex into RET (2 * SIZE + 1 bytes); returns RET. */
char *hex_encode(const void *data, size_t size, char *ret);
/* Exactly length digits of lowercase hex: checksums, key and transaction ids. */
bool string_is_lower_hex(const char *s, size_t length);

/* Index of s in a table of names (NULL entries skipped), -EINVAL if absent. */
int string_table_lookup(const char * const *table, size_t n, const char *s);
#define DEFINE_STRING_TABLE_LOOKUP(name, type, table, invalid)          \
        const char *name##_to_string(type i) {                          \
                if ((int) i < 0 || (size_t) i >= ELEMENTSOF(table))      \
                        return NULL;                                    \
                return table[i];                                        \
        }                                                               \
        type name##_from_string(const char *s) {                        \
                int i = string_table_lookup(table, ELEMENTSOF(table), s); \
                return i < 0 ? (invalid) : (type) i;                    \
        }
