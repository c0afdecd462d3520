/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-id128.h>
#include <systemd/sd-json.h>

#include "fileio.h"
#include "json-record.h"
#include "log.h"
#include "string-util.h"
#include "transaction.h"

static const char * const transaction_operation_table[_TRANSACTION_OPERATION_MAX] = {
        [TRANSACTION_STAGE] = "stage",
        [TRANSACTION_COMMIT] = "commit",
        [TRANSACTION_ROLLBACK] = "rollback",
};
DEFINE_STRING_TABLE_LOOKUP(transaction_operation, TransactionOperation, transaction_operation_table,
                           _TRANSACTION_OPERATION_INVALID);

static const char * const transaction_step_table[_TRANSACTION_STEP_MAX] = {
        [STEP_STARTED] = "started",
        [STEP_MANIFEST_VERIFIED] = "manifest-verified",
        [STEP_PULLED] = "pulled",
        [STEP_SLOT_WRITTEN] = "slot-written",
        [STEP_STAGED] = "staged",
        [STEP_KERNEL_LOADED] = "kernel-loaded",
        [STEP_SERVICES_DUMPED] = "services-dumped",
        [STEP_SWITCHING] = "switching",
        [STEP_BOOTED] = "booted",
        [STEP_SERVICES_RESTORED] = "services-restored",
        [STEP_HEALTHY] = "healthy",
        [STEP_DONE] = "done",
};
DEFINE_STRING_TABLE_LOOKUP(transaction_step, TransactionStep, transaction_step_table, _TRANSACTION_STEP_INVALID);

static const char * const transaction_outcome_table[_TRANSACTION_OUTCOME_MAX] = {
        [OUTCOME_IN_PROGRESS] = "in-progress",
        [OUTCOME_SUCCEEDED] = "succeeded",
        [OUTCOME_FAILED] = "failed",
        [OUTCOME_CANCELLED] = "cancelled",
        [OUTCOME_ROLLED_BACK] = "rolled-back",
};
DEFINE_STRING_TABLE_LOOKUP(transaction_outcome, TransactionOutcome, transaction_outcome_table,
                           _TRANSACTION_OUTCOME_INVALID);

Transaction *transaction_free(Transaction *t) {
        if (!t)
                return NULL;
        free(t->from_version);
        free(t->to_version);
        free(t->to_commit);
        free(t->boot_id);
        free(t->error);
        strv_free(t->services);
        free(t);
        return NULL;
}

static int transaction_stamp(Transaction *t) {
        sd_id128_t boot;

        t->updated = now_usec(CLOCK_REALTIME);
        /* Tells a record written before a kexec from one written after it. */
        if (sd_id128_get_boot(&boot) >= 0) {
                char s[SD_ID128_STRING_MAX];
                return free_and_strdup(&t->boot_id, sd_id128_to_string(boot, s));
        }
        return 0;
}

int transaction_new(TransactionOperation operation, Slot from, Slot to, Transaction **ret) {
        _cleanup_(transaction_freep) Transaction *t = NULL;
        sd_id128_t id;
        int r;

        if (operation < 0 || operation >= _TRANSACTION_OPERATION_MAX ||
            from < 0 || from >= _SLOT_MAX || to < 0 || to >= _SLOT_MAX || from == to)
                return -EINVAL;

        t = calloc(1, sizeof(Transaction));
        if (!t)
                return -ENOMEM;
        r = sd_id128_randomize(&id);
        if (r < 0)
                return r;
        sd_id128_to_string(id, t->id);
        t->operation = operation;
        t->step = STEP_STARTED;
        t->outcome = OUTCOME_IN_PROGRESS;
        t->from_slot = from;
        t->to_slot = to;
        r = transaction_stamp(t);
        if (r < 0)
                return r;
        t->started = t->updated;

        *ret = TAKE_PTR(t);
        return 0;
}

int transaction_set_step(Transaction *t, TransactionStep step) {
        if (step < 0 || step >= _TRANSACTION_STEP_MAX || step < t->step || t->outcome != OUTCOME_IN_PROGRESS)
                return -EINVAL;
        t->step = step;
        return transaction_stamp(t);
}

int transaction_finish(Transaction *t, TransactionOutcome outcome, const char *error) {
        int r;

        if (outcome <= OUTCOME_IN_PROGRESS || outcome >= _TRANSACTION_OUTCOME_MAX)
                return -EINVAL;
        r = free_and_strdup(&t->error, error);
        if (r < 0)
                return r;
        t->outcome = outcome;
        if (outcome == OUTCOME_SUCCEEDED)
                t->step = STEP_DONE;
        return transaction_stamp(t);
}

int transaction_set_service(Transaction *t, const char *unit, const char *result) {
        STRV_FOREACH_PAIR(u, res, t->services)
                if (streq(*u, unit))
                        return free_and_strdup(res, result);
        int r = strv_extend(&t->services, unit);
        if (r >= 0)
                r = strv_extend(&t->services, result);
        return r;
}

const char *transaction_get_service(const Transaction *t, const char *unit) {
        STRV_FOREACH_PAIR(u, res, t->services)
                if (streq(*u, unit))
                        return *res;
        return NULL;
}

int transaction_to_json(const Transaction *t, char **ret) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL, *services = NULL;
        int r;

        STRV_FOREACH_PAIR(u, res, t->services) {
                r = sd_json_variant_set_field_string(&services, *u, *res);
                if (r < 0)
                        return r;
        }

        r = sd_json_buildo(&v,
                        SD_JSON_BUILD_PAIR_UNSIGNED("version", TRANSACTION_FORMAT_VERSION),
                        SD_JSON_BUILD_PAIR_STRING("id", t->id),
                        SD_JSON_BUILD_PAIR_STRING("operation", transaction_operation_to_string(t->operation)),
                        SD_JSON_BUILD_PAIR_STRING("step", transaction_step_to_string(t->step)),
                        SD_JSON_BUILD_PAIR_STRING("outcome", transaction_outcome_to_string(t->outcome)),
                        SD_JSON_BUILD_PAIR_STRING("from_slot", slot_to_string(t->from_slot)),
                        SD_JSON_BUILD_PAIR_STRING("to_slot", slot_to_string(t->to_slot)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!t->from_version, "from_version", SD_JSON_BUILD_STRING(t->from_version)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!t->to_version, "to_version", SD_JSON_BUILD_STRING(t->to_version)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!t->to_commit, "to_commit", SD_JSON_BUILD_STRING(t->to_commit)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!t->boot_id, "boot_id", SD_JSON_BUILD_STRING(t->boot_id)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!t->error, "error", SD_JSON_BUILD_STRING(t->error)),
                        SD_JSON_BUILD_PAIR_CONDITION(!!services, "services", SD_JSON_BUILD_VARIANT(services)),
                        SD_JSON_BUILD_PAIR_UNSIGNED("started_usec", t->started),
                        SD_JSON_BUILD_PAIR_UNSIGNED("updated_usec", t->updated));
        if (r < 0)
                return r;
        r = sd_json_variant_format(v, SD_JSON_FORMAT_PRETTY | SD_JSON_FORMAT_NEWLINE, ret);
        return r < 0 ? r : 0;
}

typedef struct TransactionFields {
        uint64_t version;
        const char *id, *operation, *step, *outcome, *from_slot, *to_slot;
        const char *from_version, *to_version, *to_commit, *boot_id, *error;
        uint64_t started, updated;
        sd_json_variant *services;
} TransactionFields;

bool transaction_id_is_valid(const char *s) {
        return string_is_lower_hex(s, TRANSACTION_ID_LENGTH);
}

int transaction_from_json(const char *text, const char *source, Transaction **ret) {
        static const sd_json_dispatch_field table[] = {
                { "version",      SD_JSON_VARIANT_UNSIGNED, sd_json_dispatch_uint64,       offsetof(TransactionFields, version),      SD_JSON_MANDATORY },
                { "id",           SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TransactionFields, id),           SD_JSON_MANDATORY },
                { "operation",    SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TransactionFields, operation),    SD_JSON_MANDATORY },
                { "step",         SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TransactionFields, step),         SD_JSON_MANDATORY },
                { "outcome",      SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TransactionFields, outcome),      SD_JSON_MANDATORY },
                { "from_slot",    SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TransactionFields, from_slot),    SD_JSON_MANDATORY },
                { "to_slot",      SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TransactionFields, to_slot),      SD_JSON_MANDATORY },
                { "from_version", SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TransactionFields, from_version), 0 },
                { "to_version",   SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TransactionFields, to_version),   0 },
                { "to_commit",    SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TransactionFields, to_commit),    0 },
                { "boot_id",      SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TransactionFields, boot_id),      0 },
                { "error",        SD_JSON_VARIANT_STRING,   sd_json_dispatch_const_string, offsetof(TransactionFields, error),        0 },
                { "started_usec", SD_JSON_VARIANT_UNSIGNED, sd_json_dispatch_uint64,       offsetof(TransactionFields, started),      SD_JSON_MANDATORY },
                { "updated_usec", SD_JSON_VARIANT_UNSIGNED, sd_json_dispatch_uint64,       offsetof(TransactionFields, updated),      SD_JSON_MANDATORY },
                { "services",     SD_JSON_VARIANT_OBJECT,   sd_json_dispatch_variant_noref, offsetof(TransactionFields, services),    0 },
                {}
        };
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        _cleanup_(transaction_freep) Transaction *t = NULL;
        TransactionFields f = {};
        const char *bad = NULL;
        int r;

        r = json_record_parse(text, source, "Transaction record", TRANSACTION_FORMAT_VERSION, &v);
        if (r < 0)
                return r;

        r = sd_json_dispatch_full(v, table, NULL, SD_JSON_ALLOW_EXTENSIONS, &f, &bad);
        if (r < 0)
                return log_error_errno(EBADMSG, "%s: Transaction record field '%s' is missing or of the wrong type, refusing it.",
                                       source, strna(bad));

        t = calloc(1, sizeof(Transaction));
        if (!t)
                return -ENOMEM;

        if (!transaction_id_is_valid(f.id))
                return log_error_errno(EBADMSG, "%s: Transaction id '%s' is not 32 lowercase hex digits.", source, f.id);
        memcpy(t->id, f.id, sizeof(t->id));

#define ENUM_FIELD(field, parser, name)                                                              \
        t->field = parser(f.field);                                                                  \
        if ((int) t->field < 0)                                                                      \
                return log_error_errno(EBADMSG, "%s: Unknown %s '%s' in transaction record.", source, name, f.field)
        ENUM_FIELD(operation, transaction_operation_from_string, "operation");
        ENUM_FIELD(step, transaction_step_from_string, "step");
        ENUM_FIELD(outcome, transaction_outcome_from_string, "outcome");
        ENUM_FIELD(from_slot, slot_from_string, "slot");
        ENUM_FIELD(to_slot, slot_from_string, "slot");
#undef ENUM_FIELD

        if (t->from_slot == t->to_slot)
                return log_error_errno(EBADMSG, "%s: Transaction goes from slot %s to itself.", source,
                                       slot_to_string(t->from_slot));
        if (f.started > f.updated)
                return log_error_errno(EBADMSG, "%s: Transaction was updated before it started.", source);
        t->started = f.started;
        t->updated = f.updated;

        if (free_and_strdup(&t->from_version, f.from_version) < 0 ||
            free_and_strdup(&t->to_version, f.to_version) < 0 ||
            free_and_strdup(&t->to_commit, f.to_commit) < 0 ||
            free_and_strdup(&t->boot_id, f.boot_id) < 0 ||
            free_and_strdup(&t->error, f.error) < 0)
                return -ENOMEM;

        /* An object's elements are its keys and values, alternating. */
        for (size_t i = 0; f.services && i + 1 < sd_json_variant_elements(f.services); i += 2) {
                sd_json_variant *unit = sd_json_variant_by_index(f.services, i),
                                *result = sd_json_variant_by_index(f.services, i + 1);
                if (!sd_json_variant_is_string(result))
                        return log_error_errno(EBADMSG, "%s: Service '%s' has no result string in the transaction record.",
                                               source, sd_json_variant_string(unit));
                if (transaction_set_service(t, sd_json_variant_string(unit), sd_json_variant_string(result)) < 0)
                        return -ENOMEM;
        }

        *ret = TAKE_PTR(t);
        return 0;
}

int transaction_save(Transaction *t, const char *path) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = transaction_to_json(t, &text);
        if (r < 0)
                return r;
        /* World-readable: status is for everyone, and the record holds no secrets. */
        return write_string_file_atomic(path, text, 0644);
}

int transaction_load(const char *path, Transaction **ret) {
        _cleanup_free_ char *text = NULL;
        int r;

        r = json_record_read(path, TRANSACTION_FILE_MAX, "Transaction record", &text);
        if (r < 0)
                return r;

        return transaction_from_json(text, path, ret);
}
