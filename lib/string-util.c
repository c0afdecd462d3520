/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "string-util.h"
#include "time-util.h"

const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}

bool endswith(const char *s, const char *suffix) {
        size_t ls = strlen(s), lx = strlen(suffix);
        return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

char *strstrip(char *s) {
        while (isspace((unsigned char) *s))
                s++;
        size_t l = strlen(s);
        while (l > 0 && isspace((unsigned char) s[l - 1]))
                s[--l] = 0;
        return s;
}

int free_and_strdup(char **p, const char *s) {
        char *t = NULL;
        if (s) {
                t = strdup(s);
                if (!t)
                        return -ENOMEM;
        }
        free(*p);
        *p = t;
        return 0;
}

char *strprintf(const char *format, ...) {
        va_list ap;
        char *s;

        va_start(ap, format);
        int r = vasprintf(&s, format, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

char **strv_free(char **l) {
        STRV_FOREACH(s, l)
                free(*s);
        free(l);
        return NULL;
}

size_t strv_length(char * const *l) {
        size_t n = 0;
        STRV_FOREACH(s, l)
                n++;
        return n;
}

int strv_push(char ***l, char *value) {
        size_t n = strv_length(*l);
        char **c = realloc(*l, sizeof(char *) * (n + 2));
        if (!c) {
                free(value);
                return -ENOMEM;
        }
        c[n] = value;
        c[n + 1] = NULL;
        *l = c;
        return 0;
}

int strv_extend(char ***l, const char *value) {
        char *v = strdup(value);
        if (!v)
                return -ENOMEM;
        return strv_push(l, v);
}

char **strv_copy(char * const *l) {
        _cleanup_strv_free_ char **copy = calloc(strv_length(l) + 1, sizeof(char *));
        if (!copy)
                return NULL;
        for (size_t i = 0; l && l[i]; i++)
                if (!(copy[i] = strdup(l[i])))
                        return NULL;
        return TAKE_PTR(copy);
}

bool strv_contains(char * const *l, const char *s) {
        STRV_FOREACH(i, l)
                if (streq(*i, s))
                        return true;
        return false;
}

bool strv_equal(char * const *a, char * const *b) {
        size_t n = strv_length(a);
        if (n != strv_length(b))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

static int str_compare(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

void strv_sort(char **l) {
        size_t n = strv_length(l);
        if (n > 1)
                qsort(l, n, sizeof(char *), str_compare);
}

int strv_split(const char *s, const char *separators, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        /* An empty result is an empty vector, not NULL. */
        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        for (const char *p = s; *p;) {
                p += strspn(p, separators);
                size_t n = strcspn(p, separators);
                if (n == 0)
                        break;
                char *w = strndup(p, n);
                if (!w)
                        return -ENOMEM;
                r = strv_push(&l, w);
                if (r < 0)
                        return r;
                p += n;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

int parse_boolean(const char *s) {
        static const char * const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char * const no[] = { "0", "no", "n", "false", "f", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

int parse_uint64(const char *s, uint64_t *ret) {
        char *end;

        /* strtoull() accepts "-1" and leading blanks; a config value must not. */
        if (!isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (*end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_unsigned(const char *s, unsigned *ret) {
        uint64_t v;
        int r = parse_uint64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (unsigned) v;
        return 0;
}

/* Parses "<number><unit>" words, summing them; shared by sizes and time spans. */
typedef struct Unit {
        const char *suffix;
        uint64_t factor;
} Unit;

static int parse_with_units(const char *s, const Unit *units, size_t n_units, bool allow_several, uint64_t *ret) {
        uint64_t total = 0;
        const char *p = s;
        bool any = false;

        for (;;) {
                while (isspace((unsigned char) *p))
                        p++;
                if (!*p)
                        break;
                if (any && !allow_several)
                        return -EINVAL;
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;

                char *end;
                errno = 0;
                unsigned long long v = strtoull(p, &end, 10);
                if (errno == ERANGE)
                        return -ERANGE;
                p = end;
                while (isspace((unsigned char) *p))
                        p++;

                size_t ul = 0;
                while (isalpha((unsigned char) p[ul]))
                        ul++;

                const Unit *u = NULL;
                for (size_t i = 0; i < n_units; i++)
                        if (strlen(units[i].suffix) == ul && strncasecmp(p, units[i].suffix, ul) == 0) {
                                u = &units[i];
                                break;
                        }
                if (!u)
                        return -EINVAL;
                p += ul;

                if (v > UINT64_MAX / u->factor || total > UINT64_MAX - v * u->factor)
                        return -ERANGE;
                total += v * u->factor;
                any = true;
        }
        if (!any)
                return -EINVAL;
        *ret = total;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        static const Unit units[] = {
                { "",  1 },
                { "B", 1 },
                { "K", 1ULL << 10 }, { "KiB", 1ULL << 10 },
                { "M", 1ULL << 20 }, { "MiB", 1ULL << 20 },
                { "G", 1ULL << 30 }, { "GiB", 1ULL << 30 },
                { "T", 1ULL << 40 }, { "TiB", 1ULL << 40 },
        };
        return parse_with_units(s, units, ELEMENTSOF(units), false, ret);
}

int parse_timespan(const char *s, uint64_t *ret) {
        static const Unit units[] = {
                { "",     USEC_PER_SEC }, /* a bare number is seconds, as in systemd */
                { "us",   1 },
                { "ms",   USEC_PER_MSEC },
                { "s",    USEC_PER_SEC }, { "sec", USEC_PER_SEC },
                { "m",    USEC_PER_MINUTE }, { "min", USEC_PER_MINUTE },
                { "h",    USEC_PER_HOUR }, { "hr", USEC_PER_HOUR },
                { "d",    USEC_PER_DAY }, { "day", USEC_PER_DAY }, { "days", USEC_PER_DAY },
        };
        return parse_with_units(s, units, ELEMENTSOF(units), true, ret);
}

char *format_bytes(char *buf, size_t size, uint64_t bytes) {
        static const char suffix[] = "KMGTPE";

        if (bytes < 1024) {
                snprintf(buf, size, "%" PRIu64 "B", bytes);
                return buf;
        }
        double v = (double) bytes;
        size_t i = 0;
        for (v /= 1024; v >= 1024 && i + 1 < sizeof(suffix) - 1; v /= 1024)
                i++;
        snprintf(buf, size, "%.1f%c", v, suffix[i]);
        return buf;
}

char *format_timespan(char *buf, size_t size, uint64_t usec) {
        if (usec < USEC_PER_MSEC)
                snprintf(buf, size, "%" PRIu64 "us", usec);
        else if (usec < USEC_PER_SEC)
                snprintf(buf, size, "%" PRIu64 "ms", usec / USEC_PER_MSEC);
        else if (usec < USEC_PER_MINUTE)
                snprintf(buf, size, "%.1fs", (double) usec / USEC_PER_SEC);
        else if (usec < USEC_PER_HOUR)
                snprintf(buf, size, "%" PRIu64 "min %" PRIu64 "s",
                         usec / USEC_PER_MINUTE, (usec % USEC_PER_MINUTE) / USEC_PER_SEC);
        else
                snprintf(buf, size, "%" PRIu64 "h %" PRIu64 "min",
                         usec / USEC_PER_HOUR, (usec % USEC_PER_HOUR) / USEC_PER_MINUTE);
        return buf;
}

char *escape_control(const char *s) {
        char *buf = malloc(strlen(s) * 4 + 1), *q = buf;

        if (!buf)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p < 0x20 || *p == 0x7f)
                        q += sprintf(q, "\\x%02x", *p);
                else
                        *q++ = (char) *p;
        }
        *q = 0;
        return buf;
}

bool filename_is_valid(const char *s) {
        if (isempty(s) || streq(s, ".") || streq(s, ".."))
                return false;
        if (strchr(s, '/'))
                return false;
        return strlen(s) <= 255;
}

char *hex_encode(const void *data, size_t size, char *ret) {
        static const char digits[] = "0123456789abcdef";
        const uint8_t *p = data;

        for (size_t i = 0; i < size; i++) {
                ret[2 * i] = digits[p[i] >> 4];
                ret[2 * i + 1] = digits[p[i] & 15];
        }
        ret[2 * size] = 0;
        return ret;
}

bool string_is_lower_hex(const char *s, size_t length) {
        if (!s || strlen(s) != length)
                return false;
        for (const char *p = s; *p; p++)
                if (!(*p >= '0' && *p <= '9') && !(*p >= 'a' && *p <= 'f'))
                        return false;
        return true;
}

int string_table_lookup(const char * const *table, size_t n, const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (table[i] && streq(table[i], s))
                        return (int) i;
        return -EINVAL;
}

char *strv_join(char * const *l, const char *sep) {
        size_t n = 1, k = strlen(sep);
        STRV_FOREACH(s, l)
                n += strlen(*s) + k;
        char *j = malloc(n), *p = j;
        if (!j)
                return NULL;
        STRV_FOREACH(s, l) {
                if (s != l)
                        p = stpcpy(p, sep);
                p = stpcpy(p, *s);
        }
        *p = 0;
        return j;
}
