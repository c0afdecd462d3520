/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>

/* The two root partitions of the A/B pair. */
typedef enum Slot {
        SLOT_A,
        SLOT_B,
        _SLOT_MAX,
        _SLOT_INVALID = -EINVAL,
} Slot;

const char *slot_to_string(Slot s);   /* "a", "b" */
Slot slot_from_string(const char *s); /* "a"/"A"/"b"/"B" */
static inline Slot slot_other(Slot s) {
        return s == SLOT_A ? SLOT_B : SLOT_A;
}
