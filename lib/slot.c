/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stddef.h>
#include <strings.h>

#include "slot.h"

const char *slot_to_string(Slot s) {
        switch (s) {
        case SLOT_A:
                return "a";
        case SLOT_B:
                return "b";
        default:
                return NULL;
        }
}

Slot slot_from_string(const char *s) {
        if (strcasecmp(s, "a") == 0)
                return SLOT_A;
        if (strcasecmp(s, "b") == 0)
                return SLOT_B;
        return _SLOT_INVALID;
}
