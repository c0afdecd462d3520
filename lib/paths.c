/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "paths.h"
#include "string-util.h"
#include "transaction.h"

char *handoff_set_dir(const char *id) {
        if (!transaction_id_is_valid(id))
                return NULL;
        return strprintf(HANDOFF_STATE_DIR "/%s", id);
}
