/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <systemd/sd-json.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "string-util.h"

#include "etcd-cluster.h"
#include "fleet-etcd.h"
#include "http-json.h"

/* A port nothing listens on now. etcd binds it a moment later; nothing else on this machine
 * hands out ports from the ephemeral range to listeners in between. */
static int free_port(void) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof(a)) < 0 ||
            getsockname(fd, (struct sockaddr *) &a, &len) < 0)
                return -errno;
        return ntohs(a.sin_port);
}

int etcd_cluster_member_start(EtcdCluster *cluster, int i) {
        _cleanup_free_ char *name = strprintf("m%d", i), *data = strprintf("%s/m%d", cluster->dir, i),
                             *log = strprintf("%s/m%d.log", cluster->dir, i),
                             *client = strprintf("http://127.0.0.1:%d", cluster->client_port[i]),
                             *peer = strprintf("http://127.0.0.1:%d", cluster->peer_port[i]), *initial = NULL;

        for (int k = 0; k < ETCD_MEMBERS; k++) {
                char *n = strprintf("%s%sm%d=http://127.0.0.1:%d", strempty(initial), initial ? "," : "", k,
                                    cluster->peer_port[k]);
                free(initial);
                initial = n;
        }
        if (!name || !data || !log || !client || !peer || !initial)
                return -ENOMEM;
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                /* A failed assertion ends a test without its teardown: the members go with it. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                        _exit(127);
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
                        _exit(127);
                /* A restarted member finds its data directory and ignores the --initial-* flags. */
                execl(cluster->etcd, "etcd", "--name", name, "--data-dir", data, "--listen-client-urls", client,
                      "--advertise-client-urls", client, "--listen-peer-urls", peer,
                      "--initial-advertise-peer-urls", peer, "--initial-cluster", initial,
                      "--initial-cluster-state", "new", "--initial-cluster-token", "dreamlink-test",
                      "--log-level", "warn", NULL);
                _exit(127);
        }
        cluster->pid[i] = pid;
        return 0;
}

void etcd_cluster_member_kill(EtcdCluster *cluster, int i) {
        if (cluster->pid[i] <= 0)
                return;
        (void) kill(cluster->pid[i], SIGKILL);
        (void) waitpid(cluster->pid[i], NULL, 0);
        cluster->pid[i] = 0;
}

EtcdClient etcd_cluster_client(EtcdCluster *cluster) {
        return (EtcdClient) { .endpoints = cluster->endpoints, .http.timeout = 15 * USEC_PER_SEC };
}

/* Until the cluster answers a linearizable read, which takes a quorum with a leader. */
int etcd_cluster_wait_for_quorum(EtcdCluster *cluster) {
        EtcdClient e = etcd_cluster_client(cluster);
        for (unsigned i = 0;; i++) {
                _cleanup_(etcd_value_done) EtcdValue v = {};
                _cleanup_free_ char *error = NULL;
                int r = etcd_get(&e, "/ping", 0, &v, &error);
                if (r >= 0)
                        return 0;
                /* Each try is a request etcd answers or times out within seconds: 600 of them is
                 * a cluster that will not come up, not a slow one. */
                if (i >= 600) {
                        fprintf(stderr, "etcd did not come up: %s (logs in %s)\n", strna(error), cluster->dir);
                        return r;
                }
                (void) usleep(200 * 1000);
        }
}

/* Which member leads: the one whose own id is the leader's, by /v3/maintenance/status. */
int etcd_cluster_leader(EtcdCluster *cluster) {
        for (unsigned k = 0; k < 600; k++) {
                for (int i = 0; i < ETCD_MEMBERS; i++) {
                        _cleanup_(sd_json_variant_unrefp) sd_json_variant *body = NULL, *reply = NULL;
                        _cleanup_free_ char *url = strprintf("%s/v3/maintenance/status", cluster->endpoints[i]);
                        _cleanup_free_ char *error = NULL;
                        HttpJsonOptions o = { .timeout = 5 * USEC_PER_SEC };
                        long status = 0;

                        if (cluster->pid[i] == 0)
                                continue;
                        if (sd_json_buildo(&body, SD_JSON_BUILD_PAIR_STRING("x", "")) < 0)
                                return -ENOMEM;
                        if (http_post_json(url, body, NULL, &o, &status, &reply, &error) < 0 || status != 200)
                                continue;
                        sd_json_variant *h = sd_json_variant_by_key(reply, "header");
                        sd_json_variant *me = h ? sd_json_variant_by_key(h, "member_id") : NULL;
                        sd_json_variant *l = sd_json_variant_by_key(reply, "leader");
                        if (me && l && sd_json_variant_equal(me, l))
                                return i;
                }
                (void) usleep(200 * 1000);
        }
        return -ETIMEDOUT;
}

int etcd_cluster_start(EtcdCluster *cluster, const char *etcd) {
        int r;

        *cluster = (EtcdCluster) { .etcd = etcd };
        if (isempty(etcd) || access(etcd, X_OK) < 0) {
                fprintf(stderr, "No etcd to run (%s): install etcd-server.\n", strna(etcd));
                return -ENOENT;
        }
        cluster->dir = strdup("/tmp/dreamlink-etcd.XXXXXX");
        if (!cluster->dir || !mkdtemp(cluster->dir))
                return -errno;
        for (int i = 0; i < ETCD_MEMBERS; i++) {
                cluster->client_port[i] = free_port();
                cluster->peer_port[i] = free_port();
                if (cluster->client_port[i] < 0 || cluster->peer_port[i] < 0)
                        return -EADDRNOTAVAIL;
                cluster->endpoints[i] = strprintf("http://127.0.0.1:%d", cluster->client_port[i]);
                if (!cluster->endpoints[i])
                        return -ENOMEM;
        }
        for (int i = 0; i < ETCD_MEMBERS; i++) {
                r = etcd_cluster_member_start(cluster, i);
                if (r < 0)
                        return r;
        }
        return etcd_cluster_wait_for_quorum(cluster);
}

void etcd_cluster_stop(EtcdCluster *cluster) {
        for (int i = 0; i < ETCD_MEMBERS; i++) {
                if (cluster->pid[i] > 0)
                        etcd_cluster_member_kill(cluster, i);
                free(cluster->endpoints[i]);
        }
        if (cluster->dir)
                (void) rm_rf(cluster->dir);
        free(cluster->dir);
        *cluster = (EtcdCluster) {};
}

void etcd_history_done(EtcdHistory *h) {
        strv_free(h->holders_seen);
        *h = (EtcdHistory) {};
}

int etcd_cluster_history(EtcdCluster *cluster, const char *group, EtcdHistory *ret) {
        _cleanup_free_ char *key = fleet_etcd_key(group);
        _cleanup_(etcd_value_done) EtcdValue now = {};
        _cleanup_free_ char *error = NULL;
        _cleanup_(fleet_semaphore_done) FleetSemaphore last = {};
        _cleanup_(etcd_history_done) EtcdHistory h = {};
        EtcdClient e = etcd_cluster_client(cluster);
        int r;

        if (!key)
                return -ENOMEM;
        r = etcd_get(&e, key, 0, &now, &error);
        if (r < 0)
                return r;
        if (!now.value)
                return -ENOENT;
        /* Each value as of the revision before the last one's change, back to the key's creation. */
        for (int64_t rev = now.mod_revision; rev > 0;) {
                _cleanup_(etcd_value_done) EtcdValue v = {};
                _cleanup_(fleet_semaphore_done) FleetSemaphore s = {};

                free(error);
                error = NULL;
                r = etcd_get(&e, key, rev, &v, &error);
                if (r < 0)
                        return r;
                if (!v.value)
                        break;
                r = fleet_semaphore_parse(v.value, &s);
                if (r < 0)
                        return r;
                h.max_holders = MAX(h.max_holders, (unsigned) strv_length(s.holders));
                STRV_FOREACH(id, s.holders)
                        if (!strv_contains(h.holders_seen, *id) && strv_extend(&h.holders_seen, *id) < 0)
                                return -ENOMEM;
                h.changes++;
                rev = v.mod_revision - 1;
        }
        r = fleet_semaphore_parse(now.value, &last);
        if (r < 0)
                return r;
        h.holders_now = strv_length(last.holders);
        *ret = h;
        h = (EtcdHistory) {};
        return 0;
}

bool etcd_history_is_rollout(const EtcdHistory *h, unsigned machines, unsigned slots) {
        /* One change to take a slot and one to give it back, each exactly once: a request whose
         * answer was lost and that was asked again did not change the key twice. */
        return h->max_holders <= slots && strv_length(h->holders_seen) == machines && h->holders_now == 0 &&
               h->changes == 2 * machines;
}
