/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Logging: to the journal with structured fields when stderr is connected to
 * it (that is, under systemd), to stderr otherwise. The *_errno() variants
 * take an errno value (either sign), make it available to "%m" and return it
 * negated, so error paths read: return log_error_errno(r, "Failed to …: %m"); */

#include <stdlib.h>
#include <sys/uio.h>
#include <syslog.h>

#include "macro.h"

typedef enum LogTarget {
        LOG_TARGET_AUTO,
        LOG_TARGET_CONSOLE,
        LOG_TARGET_JOURNAL,
        _LOG_TARGET_MAX,
        _LOG_TARGET_INVALID = -EINVAL,
} LogTarget;

/* Picks target and level from the environment: DREAMLINK_LOG_TARGET=auto|console|journal,
 * DREAMLINK_LOG_LEVEL=err|warning|notice|info|debug. */
void log_setup(const char *identifier);

void log_set_target(LogTarget target);
LogTarget log_get_target(void);
LogTarget log_target_from_string(const char *s);
void log_set_max_level(int level);
int log_get_max_level(void);
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);

/* Attached as TRANSACTION_ID= to every journal entry while set (NULL clears). */
int log_set_transaction_id(const char *id);
const char *log_get_transaction_id(void);

/* The text of the last message logged at LOG_ERR or worse (whether or not it
 * was printed), so a worker can hand the reason for a failure to its caller. */
const char *log_get_last_error(void);
void log_clear_last_error(void);
/* Takes over an error another process logged already (a forked helper's). */
void log_set_last_error(const char *message);

/* Where journal entries go; tests replace it to inspect the fields. */
typedef int (*log_journal_sink_t)(const struct iovec *iov, int n);
void log_set_journal_sink(log_journal_sink_t sink);

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *unit, const char *format, ...) _printf_(7, 8);

#define log_full_errno_unit(level, error, unit, ...)                                         \
        ({                                                                                   \
                int _level_ = (level), _e_ = (error);                                        \
                log_get_max_level() >= _level_ || _level_ <= LOG_ERR /* last error */      \
                        ? log_internal(_level_, _e_, __FILE__, __LINE__, __func__, unit, __VA_ARGS__) \
                        : -abs(_e_);                                                         \
        })
#define log_full_errno(level, error, ...) log_full_errno_unit(level, error, NULL, __VA_ARGS__)
#define log_full(level, ...) (void) log_full_errno(level, 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_notice_errno(e, ...) log_full_errno(LOG_NOTICE, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

/* About a systemd unit: UNIT= and OBJECT_SYSTEMD_UNIT= make `journalctl -u UNIT` show it. */
#define log_unit_debug(unit, ...) (void) log_full_errno_unit(LOG_DEBUG, 0, unit, __VA_ARGS__)
#define log_unit_info(unit, ...) (void) log_full_errno_unit(LOG_INFO, 0, unit, __VA_ARGS__)
#define log_unit_warning(unit, ...) (void) log_full_errno_unit(LOG_WARNING, 0, unit, __VA_ARGS__)
#define log_unit_error(unit, ...) (void) log_full_errno_unit(LOG_ERR, 0, unit, __VA_ARGS__)
#define log_unit_warning_errno(unit, e, ...) log_full_errno_unit(LOG_WARNING, e, unit, __VA_ARGS__)
#define log_unit_error_errno(unit, e, ...) log_full_errno_unit(LOG_ERR, e, unit, __VA_ARGS__)

#define log_oom() log_error_errno(ENOMEM, "Out of memory.")
