/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet-etcd.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"

/* Each lost race means another machine got its change in: a bound only against a key that
 * something else keeps rewriting. */
#define CAS_ATTEMPTS_MAX 64U

void fleet_semaphore_done(FleetSemaphore *s) {
        strv_free(s->holders);
        *s = (FleetSemaphore) {};
}

int fleet_semaphore_parse(const char *json, FleetSemaphore *ret) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL;
        _cleanup_strv_free_ char **holders = NULL;
        sd_json_variant *max, *list;

        if (sd_json_parse(json, 0, &v, NULL, NULL) < 0 || !sd_json_variant_is_object(v))
                return -EBADMSG;
        max = sd_json_variant_by_key(v, "max");
        list = sd_json_variant_by_key(v, "holders");
        if (!max || !sd_json_variant_is_unsigned(max) || sd_json_variant_unsigned(max) > UINT_MAX)
                return -EBADMSG;
        /* locksmith writes null for no holders. */
        if (list && !sd_json_variant_is_null(list)) {
                if (!sd_json_variant_is_array(list))
                        return -EBADMSG;
                for (size_t i = 0; i < sd_json_variant_elements(list); i++) {
                        sd_json_variant *h = sd_json_variant_by_index(list, i);
                        if (!sd_json_variant_is_string(h) || isempty(sd_json_variant_string(h)))
                                return -EBADMSG;
                        if (strv_extend(&holders, sd_json_variant_string(h)) < 0)
                                return -ENOMEM;
                }
        }
        *ret = (FleetSemaphore) {
                .max = (unsigned) sd_json_variant_unsigned(max),
                .holders = TAKE_PTR(holders),
        };
        return 0;
}

int fleet_semaphore_format(const FleetSemaphore *s, char **ret) {
        _cleanup_(sd_json_variant_unrefp) sd_json_variant *v = NULL, *holders = NULL;
        size_t n = strv_length(s->holders);
        int r;

        r = sd_json_variant_new_array_strv(&holders, s->holders);
        if (r < 0)
                return r;
        /* "semaphore" (the free slots) only for whoever reads the key by hand, as in locksmith. */
        r = sd_json_buildo(&v,
                           SD_JSON_BUILD_PAIR_INTEGER("semaphore", (int64_t) s->max - (int64_t) n),
                           SD_JSON_BUILD_PAIR_UNSIGNED("max", s->max),
                           SD_JSON_BUILD_PAIR_VARIANT("holders", holders));
        if (r < 0)
                return r;
        r = sd_json_variant_format(v, 0, ret);
        return r < 0 ? r : 0;
}

char *fleet_etcd_key(const char *group) {
        return strprintf(FLEET_ETCD_PREFIX "%s/semaphore", group);
}

/* The semaphore and the revision it was read at; none yet: empty, mod_revision 0. */
static int read_semaphore(EtcdClient *e, const char *key, FleetSemaphore *ret, int64_t *ret_mod_revision,
                          char **ret_error) {
        _cleanup_(etcd_value_done) EtcdValue v = {};
        int r;

        r = etcd_get(e, key, 0, &v, ret_error);
        if (r < 0)
                return r;
        *ret_mod_revision = v.mod_revision;
        if (!v.value) {
                *ret = (FleetSemaphore) {};
                return 0;
        }
        r = fleet_semaphore_parse(v.value, ret);
        if (r == -EBADMSG)
                *ret_error = strprintf("%s does not hold a semaphore of {\"max\": N, \"holders\": [...]}", key);
        return r;
}

static void random_pause(unsigned attempt) {
        /* Up to 10 ms times the attempt: two machines that raced are unlikely to race again. */
        struct timespec ts = { .tv_nsec = (long) (random() % 10000000L) * (long) MIN(attempt, 50U) / 5 };
        while (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        (void) nanosleep(&ts, NULL);
}

static void holders_remove(char **holders, const char *id) {
        char **to = holders;
        for (char **from = holders; *from; from++)
                if (streq(*from, id))
                        free(*from);
                else
                        *to++ = *from;
        *to = NULL;
}

typedef enum Change { CHANGE_TAKE, CHANGE_GIVE } Change;

/* Reads, changes and writes back until the write lands on the revision it was computed from. */
static int change_semaphore(EtcdClient *e, const char *group, const char *id, Change change, unsigned slots,
                            FleetSemaphore *ret_state, char **ret_error) {
        _cleanup_free_ char *key = fleet_etcd_key(group);
        int r;

        assert(e);
        assert(id);
        assert(ret_error);

        *ret_error = NULL;
        if (!key)
                return -ENOMEM;
        for (unsigned attempt = 0; attempt < CAS_ATTEMPTS_MAX; attempt++) {
                _cleanup_(fleet_semaphore_done) FleetSemaphore s = {};
                _cleanup_free_ char *json = NULL;
                int64_t mod_revision = 0;
                int result;

                if (attempt > 0)
                        random_pause(attempt);
                r = read_semaphore(e, key, &s, &mod_revision, ret_error);
                if (r < 0)
                        return r;
                bool holds = strv_contains(s.holders, id);
                if (change == CHANGE_TAKE) {
                        if (holds) {
                                result = 1;
                                goto done;
                        }
                        if (strv_length(s.holders) >= slots) {
                                result = 0;
                                goto done;
                        }
                        if (strv_extend(&s.holders, id) < 0)
                                return -ENOMEM;
                        s.max = slots;
                } else {
                        if (!holds) {
                                result = 0;
                                goto done;
                        }
                        holders_remove(s.holders, id);
                }
                r = fleet_semaphore_format(&s, &json);
                if (r < 0)
                        return r;
                r = etcd_put_if_unchanged(e, key, mod_revision, json, NULL, ret_error);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;
                result = 1;
        done:
                if (ret_state)
                        *ret_state = (FleetSemaphore) { .max = s.max, .holders = TAKE_PTR(s.holders) };
                return result;
        }
        *ret_error = strprintf("%s changed under us %u times in a row", key, CAS_ATTEMPTS_MAX);
        return -EBUSY;
}

int fleet_etcd_acquire(EtcdClient *e, const char *group, const char *id, unsigned slots,
                       FleetSemaphore *ret_state, char **ret_error) {
        assert(slots > 0);
        return change_semaphore(e, group, id, CHANGE_TAKE, slots, ret_state, ret_error);
}

int fleet_etcd_release(EtcdClient *e, const char *group, const char *id, FleetSemaphore *ret_state,
                       char **ret_error) {
        return change_semaphore(e, group, id, CHANGE_GIVE, 0, ret_state, ret_error);
}

int fleet_etcd_status(EtcdClient *e, const char *group, FleetSemaphore *ret_state, char **ret_error) {
        _cleanup_free_ char *key = fleet_etcd_key(group);
        int64_t mod_revision;

        *ret_error = NULL;
        if (!key)
                return -ENOMEM;
        return read_semaphore(e, key, ret_state, &mod_revision, ret_error);
}
