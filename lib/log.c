/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "log.h"
#include "string-util.h"

#define LOG_LINE_MAX 2048

static LogTarget log_target = LOG_TARGET_AUTO;
static int log_max_level = LOG_INFO;
static const char *log_identifier;
static char *log_transaction_id;
static log_journal_sink_t journal_sink = sd_journal_sendv;
static char last_error[LOG_LINE_MAX];

static const char * const log_target_table[_LOG_TARGET_MAX] = {
        [LOG_TARGET_AUTO] = "auto",
        [LOG_TARGET_CONSOLE] = "console",
        [LOG_TARGET_JOURNAL] = "journal",
};

static const char * const log_level_table[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit", [LOG_ERR] = "err",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

LogTarget log_target_from_string(const char *s) {
        int i = string_table_lookup(log_target_table, ELEMENTSOF(log_target_table), s);
        return i < 0 ? _LOG_TARGET_INVALID : (LogTarget) i;
}

int log_level_from_string(const char *s) {
        if (streq(s, "error"))
                return LOG_ERR;
        return string_table_lookup(log_level_table, ELEMENTSOF(log_level_table), s);
}

const char *log_level_to_string(int level) {
        if (level < 0 || (size_t) level >= ELEMENTSOF(log_level_table))
                return NULL;
        return log_level_table[level];
}

void log_set_target(LogTarget target) {
        log_target = target;
}

/* stderr is the journal when it is the stream named by $JOURNAL_STREAM ("dev:ino"). */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == dev && st.st_ino == ino;
}

LogTarget log_get_target(void) {
        if (log_target != LOG_TARGET_AUTO)
                return log_target;
        return stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_CONSOLE;
}

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

void log_setup(const char *identifier) {
        const char *e;

        log_identifier = identifier;

        e = getenv("DREAMLINK_LOG_LEVEL");
        if (e) {
                int l = log_level_from_string(e);
                if (l >= 0)
                        log_max_level = l;
                else
                        log_warning("Ignoring unknown DREAMLINK_LOG_LEVEL=%s.", e);
        }
        e = getenv("DREAMLINK_LOG_TARGET");
        if (e) {
                LogTarget t = log_target_from_string(e);
                if (t >= 0)
                        log_target = t;
                else
                        log_warning("Ignoring unknown DREAMLINK_LOG_TARGET=%s.", e);
        }
}

int log_set_transaction_id(const char *id) {
        return free_and_strdup(&log_transaction_id, id);
}

const char *log_get_transaction_id(void) {
        return log_transaction_id;
}

const char *log_get_last_error(void) {
        return last_error[0] ? last_error : NULL;
}

void log_set_last_error(const char *message) {
        snprintf(last_error, sizeof(last_error), "%s", message ?: "");
}

void log_clear_last_error(void) {
        last_error[0] = 0;
}

void log_set_journal_sink(log_journal_sink_t sink) {
        journal_sink = sink ?: sd_journal_sendv;
}

static int write_to_journal(int level, int error, const char *file, int line, const char *func,
                            const char *unit, const char *message) {
        char f_priority[32], f_file[512], f_line[32], f_func[256], f_errno[32];
        char f_ident[128], f_unit[512], f_object[512], f_transaction[160];
        _cleanup_free_ char *f_message = NULL;
        struct iovec iov[12];
        int n = 0;

#define ADD(buf, ...)                                                              \
        do {                                                                       \
                snprintf(buf, sizeof(buf), __VA_ARGS__);                           \
                iov[n++] = (struct iovec) { .iov_base = buf, .iov_len = strlen(buf) }; \
        } while (0)

        if (asprintf(&f_message, "MESSAGE=%s", message) < 0)
                return -ENOMEM;
        iov[n++] = (struct iovec) { .iov_base = f_message, .iov_len = strlen(f_message) };
        ADD(f_priority, "PRIORITY=%i", level);
        ADD(f_file, "CODE_FILE=%s", file);
        ADD(f_line, "CODE_LINE=%i", line);
        ADD(f_func, "CODE_FUNC=%s", func);
        if (log_identifier)
                ADD(f_ident, "SYSLOG_IDENTIFIER=%s", log_identifier);
        if (error != 0)
                ADD(f_errno, "ERRNO=%i", abs(error));
        if (unit) {
                ADD(f_unit, "UNIT=%s", unit);
                ADD(f_object, "OBJECT_SYSTEMD_UNIT=%s", unit);
        }
        if (log_transaction_id)
                ADD(f_transaction, "TRANSACTION_ID=%s", log_transaction_id);
#undef ADD

        return journal_sink(iov, n);
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *unit, const char *format, ...) {
        char message[LOG_LINE_MAX];
        int saved_errno = errno;
        va_list ap;

        /* "%m" formats errno: make it the error we were given. */
        errno = abs(error);
        va_start(ap, format);
        vsnprintf(message, sizeof(message), format, ap);
        va_end(ap);
        if (level <= LOG_ERR)
                memcpy(last_error, message, sizeof(last_error));
        /* stderr when the journal is not the target, or cannot be written to. */
        if (level <= log_max_level &&
            !(log_get_target() == LOG_TARGET_JOURNAL &&
              write_to_journal(level, error, file, line, func, unit, message) >= 0)) {
                if (unit)
                        fprintf(stderr, "%s: %s\n", unit, message);
                else
                        fprintf(stderr, "%s\n", message);
        }

        errno = saved_errno;
        return -abs(error);
}
