/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "fileio.h"
#include "fleet-etcd.h"
#include "fleet.h"
#include "fleet-turn.h"
#include "fleetlock.h"
#include "log.h"
#include "string-util.h"

static int read_machine_id(const char *root, char **ret) {
        _cleanup_free_ char *path = strprintf("%s/etc/machine-id", strempty(root)), *text = NULL;
        int r;

        if (!path)
                return -ENOMEM;
        r = read_file_limited(path, 4096, &text, NULL);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s, the machine's id in its fleet (or set [Fleet] ID=): %m",
                                       path);
        text[strcspn(text, "\n")] = 0;
        if (!string_is_lower_hex(text, 32))
                return log_error_errno(EBADMSG, "%s holds no machine id; set [Fleet] ID= instead.", path);
        *ret = TAKE_PTR(text);
        return 0;
}

int fleet_init(Fleet *f, const UpdaterConfig *c, const char *root) {
        int r;

        assert(f);
        assert(c);

        *f = (Fleet) {
                .config = c,
                .http = {
                        .ca_file = c->fleet_ca_file,
                        .cert_file = c->fleet_cert_file,
                        .key_file = c->fleet_key_file,
                },
        };
        f->etcd = (EtcdClient) { .endpoints = c->fleet_endpoints, .http = f->http };
        if (!fleet_enabled(f))
                return 0;
        if (c->fleet_id)
                f->id = strdup(c->fleet_id);
        else {
                r = read_machine_id(root, &f->id);
                if (r < 0)
                        return r;
        }
        return f->id ? 0 : log_oom();
}

void fleet_done(Fleet *f) {
        free(f->id);
        *f = (Fleet) {};
}

static char *holders_why(const FleetSemaphore *s, const char *group) {
        _cleanup_free_ char *list = strv_join(s->holders, ", ");
        if (!list)
                return NULL;
        return strprintf("all %u slot%s of group %s %s taken: %s", s->max, s->max == 1 ? "" : "s", group,
                         s->max == 1 ? "is" : "are", list);
}

static int etcd_step(Fleet *f, bool take, const char *group, const char *id, char **ret_why) {
        _cleanup_(fleet_semaphore_done) FleetSemaphore s = {};
        _cleanup_free_ char *error = NULL;
        int r;

        r = take ? fleet_etcd_acquire(&f->etcd, group, id, f->config->fleet_slots, &s, &error)
                 : fleet_etcd_release(&f->etcd, group, id, &s, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret_why = strprintf("etcd does not answer: %s", strna(error));
                return *ret_why ? 0 : -ENOMEM;
        }
        if (take && r == 0) {
                *ret_why = holders_why(&s, group);
                return *ret_why ? 0 : -ENOMEM;
        }
        /* A release of a slot not held is done all the same. */
        return 1;
}

static int fleetlock_step(Fleet *f, bool take, const char *group, const char *id, char **ret_why) {
        _cleanup_free_ char *error = NULL;
        const UpdaterConfig *c = f->config;
        int r;

        r = take ? fleetlock_pre_reboot(c->fleet_endpoints, &f->http, group, id, &error)
                 : fleetlock_steady_state(c->fleet_endpoints, &f->http, group, id, &error);
        if (r == -ENOMEM)
                return r;
        if (r > 0)
                return 1;
        *ret_why = strprintf(r == 0 ? "the FleetLock server said no: %s" : "no FleetLock server answers: %s",
                             strna(error));
        return *ret_why ? 0 : -ENOMEM;
}

static int fleet_step(Fleet *f, bool take, const char *group, const char *id, char **ret_why) {
        assert(f);
        assert(ret_why);

        *ret_why = NULL;
        switch (f->config->fleet_strategy) {
        case FLEET_NONE:
                return 1;
        case FLEET_ETCD:
                return etcd_step(f, take, group, id, ret_why);
        case FLEET_FLEETLOCK:
                return fleetlock_step(f, take, group, id, ret_why);
        default:
                assert(false);
                return -EINVAL;
        }
}

int fleet_acquire(Fleet *f, char **ret_why) {
        return fleet_step(f, true, f->config->fleet_group, f->id, ret_why);
}

int fleet_release(Fleet *f, const char *group, const char *id, char **ret_why) {
        return fleet_step(f, false, group ?: f->config->fleet_group, id ?: f->id, ret_why);
}

/* RetrySec= ± a quarter, so that the machines a full group turned away do not all ask again at
 * the same moment. */
static usec_t retry_pause(const UpdaterConfig *c) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
                r = (uint64_t) now_usec(CLOCK_MONOTONIC);
        usec_t spread = c->fleet_retry / 2;
        return c->fleet_retry - spread / 2 + (spread > 0 ? r % spread : 0);
}

int fleet_wait_for_slot(Fleet *f, const char *turn_path, fleet_wait_t on_wait, void *userdata) {
        _cleanup_(fleet_turn_done) FleetTurn t = {};
        int r;

        assert(f);
        assert(turn_path);

        if (!fleet_enabled(f))
                return 0;

        r = fleet_turn_load(turn_path, &t);
        if (r >= 0 && t.state == FLEET_TURN_HELD && t.strategy == f->config->fleet_strategy &&
            streq(t.group, f->config->fleet_group) && streq(t.id, f->id)) {
                /* Taken for a switch that has not been blessed yet (the way back from a bad
                 * slot, a commit again after a failed one): still ours. */
                log_info("This machine still holds its slot of fleet group %s.", t.group);
                return 0;
        }
        if (r < 0 && r != -ENOENT && r != -EBADMSG)
                return r;

        fleet_turn_done(&t);
        t = (FleetTurn) {
                .state = FLEET_TURN_WAITING,
                .strategy = f->config->fleet_strategy,
                .group = strdup(f->config->fleet_group),
                .id = strdup(f->id),
                .since = now_usec(CLOCK_REALTIME),
        };
        if (!t.group || !t.id)
                return log_oom();

        /* Written before the first request: if the answer is lost with us, the record still says a
         * slot may be ours, and it is given back. */
        r = fleet_turn_save(&t, turn_path);
        if (r < 0)
                return r;
        for (;;) {
                _cleanup_free_ char *why = NULL;

                r = fleet_acquire(f, &why);
                if (r < 0)
                        return log_oom();
                if (r > 0)
                        break;
                /* on_wait's to tell (updaterd logs it once, as the job's step); the record keeps
                 * the last why for status. */
                log_debug("No slot of fleet group %s yet: %s", t.group, why);
                free(t.why);
                t.why = TAKE_PTR(why);
                r = fleet_turn_save(&t, turn_path);
                if (r < 0)
                        return r;
                if (on_wait) {
                        r = on_wait(t.why, userdata);
                        if (r < 0)
                                return r; /* the record says "waiting": what may be ours is given back */
                }
                usec_t pause = retry_pause(f->config);
                struct timespec ts = { .tv_sec = pause / USEC_PER_SEC, .tv_nsec = (pause % USEC_PER_SEC) * 1000 };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
        }

        t.state = FLEET_TURN_HELD;
        t.why = mfree(t.why);
        r = fleet_turn_save(&t, turn_path);
        if (r < 0)
                return r; /* the slot stays taken: the record still says "waiting", which gives it back */
        log_info("Took a slot of fleet group %s as %s.", t.group, t.id);
        return 0;
}

int fleet_give_back(Fleet *f, const char *turn_path, char **ret_why) {
        _cleanup_(fleet_turn_done) FleetTurn t = {};
        int r;

        assert(f);
        assert(turn_path);
        assert(ret_why);

        *ret_why = NULL;
        r = fleet_turn_load(turn_path, &t);
        if (r == -ENOENT)
                return 1;
        if (r == -EBADMSG) /* logged: no group, no id to give anything back for */
                return fleet_turn_remove(turn_path) < 0 ? -EIO : 1;
        if (r < 0)
                return r;
        if (t.strategy != f->config->fleet_strategy) {
                log_warning("The slot of fleet group %s was taken from %s, which updaterd.conf no longer names: "
                            "give it back by hand (updatectl fleet release %s) if it is still held.",
                            t.group, fleet_strategy_to_string(t.strategy), t.id);
                return fleet_turn_remove(turn_path) < 0 ? -EIO : 1;
        }
        r = fleet_release(f, t.group, t.id, ret_why);
        if (r <= 0)
                return r;
        r = fleet_turn_remove(turn_path);
        if (r < 0)
                return r;
        log_info("Gave back the slot of fleet group %s held as %s.", t.group, t.id);
        return 1;
}
