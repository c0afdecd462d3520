/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The addresses a service's sockets are bound to, recorded at the dump, and the restore's wait for
 * them in the next boot.
 *
 * criu binds each TCP and UDP socket it restores to the address it had: an IPv4 address the
 * machine does not have (yet) fails the bind (EADDRNOTAVAIL), and an IPv6 one, which criu binds
 * freely, sends nothing while it is tentative. The restores used to wait for network-online.target,
 * that is for every interface and for the boot's slowest minutes; they now wait for exactly the
 * addresses they need. A wildcard needs none, nor does loopback: systemd brings lo up before it
 * starts any unit. Sockets in a network namespace of the service's own come back with it. */

#include <arpa/inet.h>
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"
#include "time-util.h"

static int compare_ino(const void *a, const void *b) {
        ino_t x = *(const ino_t *) a, y = *(const ino_t *) b;
        return x < y ? -1 : x > y;
}

/* The inodes of the sockets open in pids that share our network namespace, sorted. */
static int socket_inodes(const pid_t *pids, size_t n, ino_t **ret, size_t *ret_n) {
        _cleanup_free_ ino_t *inodes = NULL;
        size_t n_inodes = 0, allocated = 0;

        for (size_t i = 0; i < n; i++) {
                char fddir[64];
                if (!pids_share_namespace(pids[i], 0, "net"))
                        continue;
                snprintf(fddir, sizeof(fddir), "/proc/" PID_FMT "/fd", pids[i]);
                _cleanup_(closedirp) DIR *d = opendir(fddir);
                if (!d)
                        continue; /* gone meanwhile */
                struct dirent *de;
                while ((de = readdir(d))) {
                        unsigned long long ino = fd_socket_inode(dirfd(d), de->d_name);
                        if (ino == 0)
                                continue;
                        if (n_inodes == allocated) {
                                allocated = MAX(allocated * 2, (size_t) 64);
                                ino_t *p = reallocarray(inodes, allocated, sizeof(ino_t));
                                if (!p)
                                        return -ENOMEM;
                                inodes = p;
                        }
                        inodes[n_inodes++] = (ino_t) ino;
                }
        }
        if (n_inodes > 0)
                qsort(inodes, n_inodes, sizeof(ino_t), compare_ino);
        *ret = TAKE_PTR(inodes);
        *ret_n = n_inodes;
        return 0;
}

/* The kernel prints an address as the 32-bit words of its memory, each with %08X: read back into
 * memory the same way, it is the address again, whatever the byte order. */
static int parse_address(const char *hex, int family, void *ret) {
        size_t words = family == AF_INET ? 1 : 4;
        uint32_t a[4];

        if (strlen(hex) != words * 8)
                return -EBADMSG;
        for (size_t i = 0; i < words; i++) {
                char word[9];
                char *end;
                memcpy(word, hex + i * 8, 8);
                word[8] = 0;
                errno = 0;
                unsigned long v = strtoul(word, &end, 16);
                if (errno != 0 || *end)
                        return -EBADMSG;
                a[i] = (uint32_t) v;
        }
        memcpy(ret, a, words * 4);
        return 0;
}

static bool address_needs_wait(int family, const void *a) {
        /* A multicast group or the broadcast address is joined or sent to, never configured. */
        if (family == AF_INET) {
                const struct in_addr *in = a;
                uint32_t host = ntohl(in->s_addr);
                return host != INADDR_ANY && host != INADDR_BROADCAST && (host >> 24) != 127 && !IN_MULTICAST(host);
        }
        const struct in6_addr *in6 = a;
        if (IN6_IS_ADDR_UNSPECIFIED(in6) || IN6_IS_ADDR_LOOPBACK(in6) || IN6_IS_ADDR_MULTICAST(in6))
                return false;
        /* An IPv4 socket of a dual-stack listener: its address is an IPv4 one. */
        if (IN6_IS_ADDR_V4MAPPED(in6)) {
                struct in_addr in;
                memcpy(&in, &in6->s6_addr[12], sizeof(in));
                return address_needs_wait(AF_INET, &in);
        }
        return true;
}

int proc_net_addresses(const char *text, int family, const ino_t *inodes, size_t n_inodes, char ***addresses) {
        int r = 0;

        assert(text);
        assert(family == AF_INET || family == AF_INET6);
        assert(addresses);

        const char *line = strchr(text, '\n'); /* the header */
        while (line && *++line) {
                _cleanup_free_ char *l = strndup(line, strcspn(line, "\n"));
                char local[40], remote[40];
                unsigned long long ino;
                unsigned port, rport, state;
                union {
                        struct in_addr in;
                        struct in6_addr in6;
                } a;

                line = strchr(line, '\n');
                if (!l)
                        return -ENOMEM;
                /* "sl local:port remote:port st tx:rx tr:when retrnsmt uid timeout inode ...". A
                 * line this does not know is skipped, not fatal: the addresses are what the
                 * restore waits for, and criu says what it could not bind. */
                if (sscanf(l, " %*u: %39[0-9A-Fa-f]:%x %39[0-9A-Fa-f]:%x %x %*x:%*x %*x:%*x %*x %*u %*u %llu",
                           local, &port, remote, &rport, &state, &ino) != 6) {
                        r = -EBADMSG;
                        continue;
                }
                ino_t key = (ino_t) ino;
                if (ino == 0 || !bsearch(&key, inodes, n_inodes, sizeof(ino_t), compare_ino))
                        continue;
                if (parse_address(local, family, &a) < 0) {
                        r = -EBADMSG;
                        continue;
                }
                if (!address_needs_wait(family, &a))
                        continue;
                char s[INET6_ADDRSTRLEN];
                if (!inet_ntop(family, &a, s, sizeof(s)))
                        return -errno;
                /* ::ffff:a.b.c.d is waited for as a.b.c.d, the address an interface has. */
                const char *name = startswith(s, "::ffff:") && strchr(s, '.') ? s + strlen("::ffff:") : s;
                if (!strv_contains(*addresses, name) && strv_extend(addresses, name) < 0)
                        return -ENOMEM;
        }
        return r;
}

int socket_addresses(const char *unit, const pid_t *pids, size_t n, char ***ret) {
        static const struct {
                const char *path;
                int family;
        } tables[] = {
                { "/proc/self/net/tcp", AF_INET },
                { "/proc/self/net/tcp6", AF_INET6 },
                { "/proc/self/net/udp", AF_INET },
                { "/proc/self/net/udp6", AF_INET6 },
        };
        _cleanup_free_ ino_t *inodes = NULL;
        _cleanup_strv_free_ char **addresses = NULL;
        size_t n_inodes = 0;
        int r;

        /* What cannot be read is warned about, not fatal: the restore waits for fewer addresses,
         * and criu still says what it could not bind. */
        r = socket_inodes(pids, n, &inodes, &n_inodes);
        if (r == -ENOMEM)
                return r;
        for (size_t i = 0; n_inodes > 0 && i < ELEMENTSOF(tables); i++) {
                _cleanup_free_ char *text = NULL;
                size_t size;
                r = read_file_limited(tables[i].path, 256U << 20, &text, &size);
                if (r == -ENOENT)
                        continue; /* no IPv6 in this kernel */
                if (r >= 0)
                        r = proc_net_addresses(text, tables[i].family, inodes, n_inodes, &addresses);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        log_unit_warning_errno(unit, r, "Failed to read all of %s, the restore of %s may not wait for "
                                               "every address its sockets are bound to: %m", tables[i].path, unit);
        }
        /* Only the machine's own: a socket bound to an address the machine lacks (IP_FREEBIND,
         * ip_nonlocal_bind: a load balancer's floating address) or to a temporary IPv6 address
         * (another one in the next boot) would hold its restore back for nothing. */
        r = addresses ? addresses_on_machine(&addresses) : 0;
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                log_unit_warning_errno(unit, r, "Failed to list the machine's addresses: %m");
        strv_sort(addresses);
        *ret = TAKE_PTR(addresses);
        return 0;
}

int lock_table_addresses(const char *text, char ***addresses) {
        assert(text);
        assert(addresses);

        for (const char *p = text; *p;) {
                size_t k = strcspn(p, " \t\n,{}");
                if (k > 0 && k < INET6_ADDRSTRLEN) {
                        char token[INET6_ADDRSTRLEN];
                        struct in6_addr a;
                        int family = 0;
                        memcpy(token, p, k);
                        token[k] = 0;
                        if (inet_pton(AF_INET, token, &a) == 1)
                                family = AF_INET;
                        else if (inet_pton(AF_INET6, token, &a) == 1)
                                family = AF_INET6;
                        /* As netlink's are printed, to compare them as strings at the restore. */
                        if (family != 0 && address_needs_wait(family, &a) && inet_ntop(family, &a, token, sizeof(token)) &&
                            !strv_contains(*addresses, token) && strv_extend(addresses, token) < 0)
                                return -ENOMEM;
                }
                p += k;
                p += strspn(p, " \t\n,{}");
        }
        return 0;
}

int rtnl_addresses_parse(const void *buf, size_t len, const uint32_t exclude[2], char ***addresses) {
        assert(buf);
        assert(addresses);

        for (const struct nlmsghdr *h = buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
                /* The addresses changed while the kernel was listing them. */
                if (h->nlmsg_flags & NLM_F_DUMP_INTR)
                        return -EAGAIN;
                if (h->nlmsg_type == NLMSG_DONE)
                        return 1;
                if (h->nlmsg_type == NLMSG_ERROR) {
                        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
                                return -EBADMSG;
                        const struct nlmsgerr *e = NLMSG_DATA(h);
                        return e->error < 0 ? e->error : -EBADMSG;
                }
                if (h->nlmsg_type != RTM_NEWADDR || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg)))
                        continue;
                const struct ifaddrmsg *m = NLMSG_DATA(h);
                if (m->ifa_family != AF_INET && m->ifa_family != AF_INET6)
                        continue;
                uint32_t flags = m->ifa_flags;
                const void *local = NULL, *address = NULL;
                size_t want = m->ifa_family == AF_INET ? 4 : 16;
                int alen = (int) IFA_PAYLOAD(h);
                for (const struct rtattr *a = IFA_RTA(m); RTA_OK(a, alen); a = RTA_NEXT(a, alen))
                        if (a->rta_type == IFA_LOCAL && RTA_PAYLOAD(a) == want)
                                local = RTA_DATA(a);
                        else if (a->rta_type == IFA_ADDRESS && RTA_PAYLOAD(a) == want)
                                address = RTA_DATA(a);
                        else if (a->rta_type == IFA_FLAGS && RTA_PAYLOAD(a) >= sizeof(uint32_t))
                                memcpy(&flags, RTA_DATA(a), sizeof(flags));
                /* IFA_LOCAL is the machine's end of a point-to-point link, IFA_ADDRESS its peer. */
                const void *mine = local ?: address;
                if (!mine || (flags & exclude[m->ifa_family == AF_INET6]))
                        continue;
                char name[INET6_ADDRSTRLEN];
                if (!inet_ntop(m->ifa_family, mine, name, sizeof(name)))
                        return -errno;
                if (!strv_contains(*addresses, name) && strv_extend(addresses, name) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* The machine's addresses but those with any of exclude[0] (IPv4) or exclude[1] (IPv6) flags. */
static int machine_addresses(const uint32_t exclude[2], char ***ret) {
        /* A listing the kernel says was interrupted (addresses come and go in a boot's first
         * seconds) is asked for again, on a new socket: the rest of it goes with the old one. */
        for (unsigned attempt = 0; attempt < 10; attempt++) {
                _cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
                _cleanup_strv_free_ char **list = NULL;
                struct {
                        struct nlmsghdr h;
                        struct ifaddrmsg m;
                } req = {
                        .h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)),
                        .h.nlmsg_type = RTM_GETADDR,
                        .h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
                        .h.nlmsg_seq = 1,
                        .m.ifa_family = AF_UNSPEC,
                };
                /* The kernel's chunks of a listing are at most 32 KiB. */
                _Alignas(struct nlmsghdr) char buf[32768];
                int r = 0;

                if (fd < 0)
                        return -errno;
                if (send(fd, &req, req.h.nlmsg_len, 0) < 0)
                        return -errno;
                while (r == 0) {
                        ssize_t k = recv(fd, buf, sizeof(buf), 0);
                        if (k < 0)
                                return -errno;
                        if (k == 0)
                                return -EBADMSG;
                        r = rtnl_addresses_parse(buf, (size_t) k, exclude, &list);
                }
                if (r == -EAGAIN)
                        continue;
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(list);
                return 0;
        }
        return -EAGAIN;
}

int addresses_on_machine(char ***addresses) {
        /* A temporary (privacy) IPv6 address is another one in the next boot. IFA_F_SECONDARY,
         * the same bit, is a plain IPv4 address. */
        static const uint32_t exclude[2] = { IFA_F_DADFAILED, IFA_F_DADFAILED | IFA_F_TEMPORARY };
        _cleanup_strv_free_ char **machine = NULL;
        int r;

        r = machine_addresses(exclude, &machine);
        if (r < 0)
                return r;
        char **to = *addresses;
        STRV_FOREACH(a, *addresses)
                if (strv_contains(machine, *a))
                        *to++ = *a;
                else
                        free(*a);
        if (to)
                *to = NULL;
        return 0;
}

int addresses_missing(char * const *addresses, char ***ret) {
        /* A tentative IPv6 address sends nothing until its duplicate detection is over. */
        static const uint32_t exclude[2] = { IFA_F_DADFAILED, IFA_F_DADFAILED | IFA_F_TENTATIVE };
        _cleanup_strv_free_ char **usable = NULL, **missing = NULL;
        int r;

        r = machine_addresses(exclude, &usable);
        if (r < 0)
                return r;
        STRV_FOREACH(a, addresses)
                if (!strv_contains(usable, *a) && strv_extend(&missing, *a) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(missing);
        return 0;
}

/* Asks again every 100 ms rather than following the kernel's notifications: a dump is a few
 * hundred bytes, the wait is seconds of a boot, and nothing can be missed between two asks. */
int addresses_wait(const char *unit, char * const *addresses, usec_t timeout) {
        usec_t start = now_usec(CLOCK_MONOTONIC);
        bool said = false;
        int r;

        if (!addresses || !*addresses)
                return 0;
        for (;;) {
                _cleanup_strv_free_ char **missing = NULL;
                r = addresses_missing(addresses, &missing);
                /* Changing too fast to be listed: not there yet. */
                for (char * const *a = addresses; r == -EAGAIN && *a; a++)
                        if (strv_extend(&missing, *a) < 0)
                                return log_oom();
                if (r == -EAGAIN)
                        r = 0;
                if (r < 0)
                        return log_unit_warning_errno(unit, r, "Failed to list the machine's addresses, restoring %s "
                                                      "without waiting for them: %m", unit);
                usec_t waited = now_usec(CLOCK_MONOTONIC) - start;
                char span[FORMAT_TIMESPAN_MAX];
                if (!missing) {
                        if (said)
                                log_unit_info(unit, "The addresses of its sockets are there after %s.",
                                              format_timespan(span, sizeof(span), waited));
                        return 0;
                }
                _cleanup_free_ char *list = strv_join(missing, ", ");
                if (!list)
                        return log_oom();
                if (waited >= timeout)
                        return log_unit_warning_errno(unit, ETIMEDOUT, "%s still not configured after %s, restoring %s all "
                                                      "the same: its sockets are bound there.", list,
                                                      format_timespan(span, sizeof(span), waited), unit);
                if (!said) {
                        log_unit_info(unit, "Waiting for %s, which its sockets are bound to.", list);
                        said = true;
                }
                (void) usleep(100 * 1000);
        }
}
