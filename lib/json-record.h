/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* dreamlink's state records (slots.json, transaction.json): JSON objects with
 * a format "version" that decides how the rest is read, bounded in size, and
 * refused, with the file named, when they are anything else. WHAT names the
 * record in messages ("Slot record"). */

#include <stddef.h>
#include <systemd/sd-json.h>

/* Reads PATH, at most MAX bytes. -ENOENT (not logged) when it is missing;
 * larger than MAX or holding a NUL byte: -EBADMSG, logged; other read errors
 * are returned unlogged, for the caller to say what it was reading for. */
int json_record_read(const char *path, size_t max, const char *what, char **ret_text);

/* Parses TEXT (from SOURCE, for messages) and checks its format version is
 * VERSION: -EBADMSG for what is not such a record, -EPROTONOSUPPORT for
 * another version, both logged. */
int json_record_parse(const char *text, const char *source, const char *what, unsigned version, sd_json_variant **ret);
