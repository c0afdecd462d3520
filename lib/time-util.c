/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "time-util.h"

usec_t now_usec(clockid_t clock) {
        struct timespec ts;
        if (clock_gettime(clock, &ts) < 0)
                return 0;
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

char *format_timestamp_utc(char *buf, size_t size, usec_t t) {
        time_t sec = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        if (t == USEC_INFINITY || !gmtime_r(&sec, &tm) ||
            strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, size, "n/a");
        return buf;
}

int parse_timestamp_utc(const char *s, usec_t *ret) {
        struct tm tm = {};
        const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end)
                return -EINVAL;
        time_t t = timegm(&tm);
        if (t < 0)
                return -ERANGE;
        *ret = (usec_t) t * USEC_PER_SEC;
        return 0;
}

static int parse_clock_time(const char *s, size_t n, unsigned *ret) {
        unsigned h, m;
        char buf[6];
        int k = -1;

        if (n < 4 || n > 5)
                return -EINVAL;
        memcpy(buf, s, n);
        buf[n] = 0;
        if (sscanf(buf, "%2u:%2u%n", &h, &m, &k) != 2 || k != (int) n || h > 23 || m > 59)
                return -EINVAL;
        *ret = h * 60 + m;
        return 0;
}

int time_window_parse(const char *s, TimeWindow *ret) {
        const char *dash = strchr(s, '-');
        TimeWindow w;

        if (!dash || parse_clock_time(s, dash - s, &w.start) < 0 ||
            parse_clock_time(dash + 1, strlen(dash + 1), &w.end) < 0 || w.start == w.end)
                return -EINVAL;
        *ret = w;
        return 0;
}

usec_t time_window_next(const TimeWindow *w, usec_t t) {
        time_t sec = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        if (!localtime_r(&sec, &tm))
                return 0;
        unsigned now = (unsigned) (tm.tm_hour * 60 + tm.tm_min);
        bool inside = w->start < w->end ? now >= w->start && now < w->end : now >= w->start || now < w->end;
        if (inside)
                return 0;
        /* Today's opening if it is still ahead, else tomorrow's; mktime() settles DST. */
        if (now >= w->start)
                tm.tm_mday++;
        tm.tm_hour = (int) (w->start / 60);
        tm.tm_min = (int) (w->start % 60);
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        time_t next = mktime(&tm);
        return next < 0 ? 0 : (usec_t) next * USEC_PER_SEC;
}
