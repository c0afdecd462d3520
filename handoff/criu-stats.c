/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* criu's own account of a dump, the "stats-dump" image it leaves in the images directory:
 * where the frozen time went (collecting the pages, writing them out). libcriu has no call for
 * it and crit is not installed on the machines, so the one message is decoded here; it is
 * small and stable (images/stats.proto, criu 3.x and 4.x). */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"

/* The file's head (criu/include/magic.h): the service-image magic, then the stats magic. */
#define IMG_SERVICE_MAGIC 0x55105940u
#define STATS_MAGIC 0x57093306u
#define STATS_MAX_SIZE 4096

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret) {
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
                if (*p >= end)
                        return -EBADMSG;
                uint8_t b = *(*p)++;
                v |= (uint64_t) (b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -EBADMSG;
}

/* Skips a field of a wire type this reader does not use. */
static int skip_field(const uint8_t **p, const uint8_t *end, unsigned wire_type) {
        uint64_t n;
        switch (wire_type) {
        case 0:
                return read_varint(p, end, &n);
        case 1:
                n = 8;
                break;
        case 2:
                if (read_varint(p, end, &n) < 0)
                        return -EBADMSG;
                break;
        case 5:
                n = 4;
                break;
        default:
                return -EBADMSG;
        }
        if (n > (uint64_t) (end - *p))
                return -EBADMSG;
        *p += n;
        return 0;
}

/* dump_stats_entry: the times in microseconds, the counts in pages. */
static int parse_dump_stats(const uint8_t *p, const uint8_t *end, CriuDumpStats *ret) {
        CriuDumpStats s = {};
        long page = sysconf(_SC_PAGESIZE);

        while (p < end) {
                uint64_t key, v;
                if (read_varint(&p, end, &key) < 0)
                        return -EBADMSG;
                if ((key & 7) != 0) {
                        if (skip_field(&p, end, key & 7) < 0)
                                return -EBADMSG;
                        continue;
                }
                if (read_varint(&p, end, &v) < 0)
                        return -EBADMSG;
                switch (key >> 3) {
                case 2: s.frozen_usec = v; break;
                case 3: s.memdump_usec = v; break;
                case 4: s.memwrite_usec = v; break;
                case 5: s.pages_scanned_bytes = v * page; break;
                case 7: s.pages_written_bytes += v * page; break;
                case 14: s.pages_written_bytes += v * page; break; /* shared memory's (shpages_written) */
                }
        }
        *ret = s;
        return 0;
}

int criu_stats_parse(const void *data, size_t size, CriuDumpStats *ret) {
        const uint8_t *p = data, *end = p + size;
        uint32_t magic[3];

        assert(data || size == 0);
        assert(ret);

        if (size < sizeof(magic))
                return -EBADMSG;
        memcpy(magic, p, sizeof(magic));
        if (magic[0] != IMG_SERVICE_MAGIC || magic[1] != STATS_MAGIC || magic[2] > size - sizeof(magic))
                return -EBADMSG;
        p += sizeof(magic);
        end = p + magic[2];

        /* stats_entry: field 1 is the dump's, field 2 a restore's. */
        while (p < end) {
                uint64_t key, n;
                if (read_varint(&p, end, &key) < 0)
                        return -EBADMSG;
                if (key != ((1 << 3) | 2)) {
                        if (skip_field(&p, end, key & 7) < 0)
                                return -EBADMSG;
                        continue;
                }
                if (read_varint(&p, end, &n) < 0 || n > (uint64_t) (end - p))
                        return -EBADMSG;
                return parse_dump_stats(p, p + n, ret);
        }
        return -ENODATA;
}

int criu_dump_stats(const char *images_dir, CriuDumpStats *ret) {
        _cleanup_free_ char *path = NULL, *data = NULL;
        size_t size;
        int r;

        if (asprintf(&path, "%s/stats-dump", images_dir) < 0)
                return -ENOMEM;
        r = read_file_limited(path, STATS_MAX_SIZE, &data, &size);
        if (r < 0)
                return r;
        return criu_stats_parse(data, size, ret);
}
