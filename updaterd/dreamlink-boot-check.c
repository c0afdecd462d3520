/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* dreamlink-boot-check: run by dreamlink-boot-check.service in every boot. */
#include <stdlib.h>

#include "boot-check.h"
#include "log.h"

int main(int argc, char *argv[]) {
        UpdaterConfig c;
        int r;

        log_setup("dreamlink-boot-check");
        updater_config_init(&c);
        r = updater_config_load(&c, "");
        if (r >= 0)
                r = boot_check_run(&c);
        updater_config_done(&c);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
