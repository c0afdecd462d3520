/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "json-record.h"
#include "log.h"
#include "macro.h"

int json_record_read(const char *path, size_t max, const char *what, char **ret_text) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r;

        r = read_file_limited(path, max, &text, &size);
        if (r == -EFBIG)
                return log_error_errno(EBADMSG, "%s: %s larger than %zu bytes, refusing it.", path, what, max);
        if (r < 0)
                return r;
        if (strlen(text) != size)
                return log_error_errno(EBADMSG, "%s: %s contains NUL bytes, refusing it.", path, what);
        *ret_text = TAKE_PTR(text);
        return 0;
}

int json_record_parse(const char *text, const char *source, const char *what, unsigned version, sd_json_variant **ret) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        unsigned line = 0, column = 0;
        int r;

        r = sd_json_parse(text, 0, &v, &line, &column);
        if (r < 0)
                return log_error_errno(EBADMSG, "%s:%u:%u: %s is not valid JSON, refusing it.", source, line, column, what);
        if (!sd_json_variant_is_object(v))
                return log_error_errno(EBADMSG, "%s: %s is not a JSON object, refusing it.", source, what);

        /* The version decides how to read the rest: check it before anything else. */
        sd_json_variant *e = sd_json_variant_by_key(v, "version");
        if (!e || !sd_json_variant_is_unsigned(e))
                return log_error_errno(EBADMSG, "%s: %s has no format version, refusing it.", source, what);
        if (sd_json_variant_unsigned(e) != version)
                return log_error_errno(EPROTONOSUPPORT, "%s: %s has format version %" PRIu64 ", this build reads only version %u.",
                                       source, what, sd_json_variant_unsigned(e), version);
        *ret = TAKE_PTR(v);
        return 0;
}
