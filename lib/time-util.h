/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <time.h>

typedef uint64_t usec_t;

#define USEC_INFINITY ((usec_t) UINT64_MAX)
#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_PER_SEC ((usec_t) 1000000ULL)
#define USEC_PER_MINUTE ((usec_t) (60ULL * USEC_PER_SEC))
#define USEC_PER_HOUR ((usec_t) (60ULL * USEC_PER_MINUTE))
#define USEC_PER_DAY ((usec_t) (24ULL * USEC_PER_HOUR))

usec_t now_usec(clockid_t clock);

/* "2026-11-23T17:36:55Z" (UTC, second precision) into buf, which is returned. */
#define FORMAT_TIMESTAMP_MAX 32
char *format_timestamp_utc(char *buf, size_t size, usec_t t);
/* Parses the format above; -EINVAL on anything else. */
int parse_timestamp_utc(const char *s, usec_t *ret);

/* A daily window of local time, "HH:MM-HH:MM" (it may cross midnight): a
 * maintenance window. start and end are minutes since midnight. */
typedef struct TimeWindow {
        unsigned start, end;
} TimeWindow;
int time_window_parse(const char *s, TimeWindow *ret);
/* 0 when t (CLOCK_REALTIME) is inside w, else the time w opens next. */
usec_t time_window_next(const TimeWindow *w, usec_t t);
