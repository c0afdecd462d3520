/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* transaction.json, the record of an update in progress. */
#include "fuzz.h"
#include "macro.h"
#include "string-util.h"
#include "transaction.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = fuzz_strndup(data, size), *json = NULL;
        _cleanup_(transaction_freep) Transaction *t = NULL, *again = NULL;

        if (transaction_from_json(text, "fuzz", &t) < 0)
                return 0;
        /* What was accepted is written back and read again unchanged. */
        fuzz_assert(transaction_to_json(t, &json) >= 0);
        fuzz_assert(transaction_from_json(json, "fuzz-again", &again) >= 0);
        fuzz_assert(streq(again->id, t->id));
        fuzz_assert(again->step == t->step && again->outcome == t->outcome);
        fuzz_assert(strv_length(again->services) == strv_length(t->services));
        return 0;
}
