/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* slots.json, the per-slot record on the shared /var. */
#include "fuzz.h"
#include "macro.h"
#include "slot-status.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        fuzz_setup();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = fuzz_strndup(data, size), *json = NULL;
        _cleanup_(slot_table_done) SlotTable t, again;

        slot_table_init(&t);
        slot_table_init(&again);
        if (slot_table_from_json(text, "fuzz", &t) < 0)
                return 0;
        /* What was accepted is written back and read again unchanged. */
        fuzz_assert(slot_table_to_json(&t, &json) >= 0);
        fuzz_assert(slot_table_from_json(json, "fuzz-again", &again) >= 0);
        fuzz_assert(again.highest_counter == t.highest_counter);
        for (Slot s = 0; s < _SLOT_MAX; s++) {
                fuzz_assert(again.slots[s].state == t.slots[s].state);
                fuzz_assert(again.slots[s].counter == t.slots[s].counter);
        }
        return 0;
}
