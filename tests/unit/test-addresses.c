/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The addresses a restore waits for (handoff/addresses.c): read from the kernel's socket tables
 * and criu's lock, and looked up on the machine, in a network namespace of the test's own. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "tests.h"
#include "handoff-internal.h"

/* A socket table line as the kernel prints it: each 32-bit word of the address with %08X. */
static char *table_line(int family, const char *address, unsigned port, unsigned state, unsigned long long inode) {
        uint32_t words[4] = {};
        char hex[33] = "";

        assert_int_equal(inet_pton(family, address, words), 1);
        for (int i = 0; i < (family == AF_INET ? 1 : 4); i++)
                snprintf(hex + 8 * i, 9, "%08X", words[i]);
        return strprintf("   0: %s:%04X %s:0000 %02X 00000000:00000000 00:00000000 00000000     0        0 %llu 1 "
                         "0000000000000000 100 0 0 10 0\n", hex, port, hex, state, inode);
}

static char *table(int family, char **lines) {
        _cleanup_free_ char *body = strv_join(lines, "");
        return strprintf("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
                         "inode\n%s", body);
}

static void test_proc_net_addresses(void **state) {
        const ino_t ours[] = { 100, 101, 102, 103, 104 };
        _cleanup_strv_free_ char **lines = NULL, **got = NULL;

        assert_int_equal(strv_push(&lines, table_line(AF_INET, "10.0.2.15", 6379, 0x01, 100)), 0); /* established */
        assert_int_equal(strv_push(&lines, table_line(AF_INET, "0.0.0.0", 6379, 0x0A, 101)), 0);    /* wildcard */
        assert_int_equal(strv_push(&lines, table_line(AF_INET, "127.0.0.1", 11211, 0x0A, 102)), 0); /* loopback */
        assert_int_equal(strv_push(&lines, table_line(AF_INET, "192.0.2.7", 80, 0x0A, 200)), 0);    /* not ours */
        assert_int_equal(strv_push(&lines, table_line(AF_INET, "10.0.2.15", 6379, 0x01, 103)), 0); /* again */
        assert_int_equal(strv_push(&lines, table_line(AF_INET, "239.255.255.250", 1900, 0x07, 104)), 0); /* a group */
        assert_int_equal(strv_push(&lines, table_line(AF_INET, "255.255.255.255", 68, 0x07, 104)), 0); /* broadcast */
        _cleanup_free_ char *text = table(AF_INET, lines);
        assert_int_equal(proc_net_addresses(text, AF_INET, ours, ELEMENTSOF(ours), &got), 0);
        assert_int_equal(strv_length(got), 1);
        assert_string_equal(got[0], "10.0.2.15");

        _cleanup_strv_free_ char **lines6 = NULL;
        assert_int_equal(strv_push(&lines6, table_line(AF_INET6, "::ffff:10.0.2.16", 22, 0x01, 100)), 0);
        assert_int_equal(strv_push(&lines6, table_line(AF_INET6, "2001:db8::5", 443, 0x0A, 104)), 0);
        assert_int_equal(strv_push(&lines6, table_line(AF_INET6, "::", 22, 0x0A, 101)), 0);
        assert_int_equal(strv_push(&lines6, table_line(AF_INET6, "::1", 631, 0x0A, 102)), 0);
        _cleanup_free_ char *text6 = table(AF_INET6, lines6);
        assert_int_equal(proc_net_addresses(text6, AF_INET6, ours, ELEMENTSOF(ours), &got), 0);
        /* A dual-stack socket's IPv4 peer: the address an interface has is the IPv4 one. */
        assert_int_equal(strv_length(got), 3);
        assert_true(strv_contains(got, "10.0.2.16"));
        assert_true(strv_contains(got, "2001:db8::5"));

        /* A line it does not know is skipped, and said to be. */
        _cleanup_free_ char *odd = strprintf("header\n   0: not a line\n%s", lines[0]);
        _cleanup_strv_free_ char **some = NULL;
        assert_int_equal(proc_net_addresses(odd, AF_INET, ours, ELEMENTSOF(ours), &some), -EBADMSG);
        assert_int_equal(strv_length(some), 1);
        assert_string_equal(some[0], "10.0.2.15");
}

/* nft list table of a criu lock: each connection is in its set both ways. */
static void test_lock_table_addresses(void **state) {
        static const char text[] =
                "table inet CRIU-1234 {\n"
                "\tset conns4 {\n"
                "\t\ttype ipv4_addr . inet_service . ipv4_addr . inet_service\n"
                "\t\telements = { 10.0.2.15 . 6379 . 10.0.2.2 . 40312,\n"
                "\t\t\t     10.0.2.2 . 40312 . 10.0.2.15 . 6379,\n"
                "\t\t\t     127.0.0.1 . 5432 . 127.0.0.1 . 51000 }\n"
                "\t}\n"
                "\tset conns6 {\n"
                "\t\ttype ipv6_addr . inet_service . ipv6_addr . inet_service\n"
                "\t\telements = { 2001:0db8:0:0:0:0:0:5 . 22 . 2001:db8::9 . 50000 }\n"
                "\t}\n"
                "\tchain output {\n"
                "\t\ttype filter hook output priority filter; policy accept;\n"
                "\t\tmeta mark 0xc114 accept\n"
                "\t\tip saddr . tcp sport . ip daddr . tcp dport @conns4 drop\n"
                "\t}\n"
                "}\n";
        _cleanup_strv_free_ char **got = NULL;

        assert_int_equal(lock_table_addresses(text, &got), 0);
        strv_sort(got);
        /* Both ends, loopback left out, IPv6 as netlink prints it. */
        assert_int_equal(strv_length(got), 4);
        assert_string_equal(got[0], "10.0.2.15");
        assert_string_equal(got[1], "10.0.2.2");
        assert_string_equal(got[2], "2001:db8::5");
        assert_string_equal(got[3], "2001:db8::9");
}

/* One RTM_NEWADDR message as the kernel lists it. */
static size_t newaddr(void *buf, int family, const char *local, const char *peer, uint32_t flags, uint16_t nlflags) {
        struct nlmsghdr *h = buf;
        struct ifaddrmsg *m = NLMSG_DATA(h);
        size_t alen = family == AF_INET ? 4 : 16, len = NLMSG_LENGTH(sizeof(*m));
        const char *values[] = { local, peer };
        unsigned short types[] = { IFA_LOCAL, IFA_ADDRESS };

        memset(buf, 0, NLMSG_SPACE(sizeof(*m)) + 3 * RTA_SPACE(16));
        *m = (struct ifaddrmsg) { .ifa_family = family, .ifa_prefixlen = 24, .ifa_index = 2 };
        for (int i = 0; i < 2; i++) {
                if (!values[i])
                        continue;
                struct rtattr *a = (struct rtattr *) ((char *) buf + NLMSG_ALIGN(len));
                a->rta_type = types[i];
                a->rta_len = RTA_LENGTH(alen);
                assert_int_equal(inet_pton(family, values[i], RTA_DATA(a)), 1);
                len = NLMSG_ALIGN(len) + RTA_SPACE(alen);
        }
        struct rtattr *a = (struct rtattr *) ((char *) buf + NLMSG_ALIGN(len));
        a->rta_type = IFA_FLAGS;
        a->rta_len = RTA_LENGTH(sizeof(uint32_t));
        memcpy(RTA_DATA(a), &flags, sizeof(flags));
        len = NLMSG_ALIGN(len) + RTA_SPACE(sizeof(uint32_t));
        *h = (struct nlmsghdr) { .nlmsg_len = len, .nlmsg_type = RTM_NEWADDR, .nlmsg_flags = NLM_F_MULTI | nlflags };
        return NLMSG_ALIGN(len);
}

static size_t done(void *buf, uint16_t nlflags) {
        struct nlmsghdr *h = buf;
        *h = (struct nlmsghdr) { .nlmsg_len = NLMSG_LENGTH(sizeof(int)), .nlmsg_type = NLMSG_DONE,
                                 .nlmsg_flags = NLM_F_MULTI | nlflags };
        memset(NLMSG_DATA(h), 0, sizeof(int));
        return NLMSG_ALIGN(h->nlmsg_len);
}

static void test_rtnl_addresses_parse(void **state) {
        _Alignas(struct nlmsghdr) char buf[4096];
        static const uint32_t restore_mask[2] = { IFA_F_DADFAILED, IFA_F_DADFAILED | IFA_F_TENTATIVE };
        static const uint32_t dump_mask[2] = { IFA_F_DADFAILED, IFA_F_DADFAILED | IFA_F_TEMPORARY };
        size_t n = 0;

        n += newaddr(buf + n, AF_INET, "10.0.2.15", "10.0.2.15", 0, 0);
        n += newaddr(buf + n, AF_INET, "10.0.2.16", NULL, IFA_F_SECONDARY, 0);       /* a second IPv4 address */
        n += newaddr(buf + n, AF_INET, "192.168.9.1", "192.168.9.2", 0, 0);          /* point-to-point: ours is LOCAL */
        n += newaddr(buf + n, AF_INET6, NULL, "2001:db8::5", IFA_F_TENTATIVE, 0);    /* duplicate detection running */
        n += newaddr(buf + n, AF_INET6, NULL, "2001:db8::6", 0, 0);
        n += newaddr(buf + n, AF_INET6, NULL, "2001:db8::77", IFA_F_TEMPORARY, 0);   /* privacy address */
        n += newaddr(buf + n, AF_INET6, NULL, "2001:db8::8", IFA_F_DADFAILED, 0);
        size_t more = n;
        n += done(buf + n, 0);

        /* What a restore may bind to and send from now. */
        _cleanup_strv_free_ char **usable = NULL;
        assert_int_equal(rtnl_addresses_parse(buf, more, restore_mask, &usable), 0); /* no end yet: more follows */
        assert_int_equal(rtnl_addresses_parse(buf + more, n - more, restore_mask, &usable), 1);
        strv_sort(usable);
        assert_int_equal(strv_length(usable), 5);
        assert_string_equal(usable[0], "10.0.2.15");
        assert_string_equal(usable[1], "10.0.2.16");
        assert_string_equal(usable[2], "192.168.9.1");
        assert_string_equal(usable[3], "2001:db8::6");
        assert_string_equal(usable[4], "2001:db8::77");

        /* What a dump records: tentative ones will be there, temporary ones will not. */
        _cleanup_strv_free_ char **recorded = NULL;
        assert_int_equal(rtnl_addresses_parse(buf, n, dump_mask, &recorded), 1);
        assert_true(strv_contains(recorded, "2001:db8::5"));
        assert_false(strv_contains(recorded, "2001:db8::77"));
        assert_true(strv_contains(recorded, "10.0.2.16"));
        assert_false(strv_contains(recorded, "2001:db8::8"));

        /* Interrupted: the caller asks again. */
        _cleanup_strv_free_ char **partial = NULL;
        n = newaddr(buf, AF_INET, "10.0.2.15", NULL, 0, NLM_F_DUMP_INTR);
        n += done(buf + n, NLM_F_DUMP_INTR);
        assert_int_equal(rtnl_addresses_parse(buf, n, restore_mask, &partial), -EAGAIN);

        /* The kernel's error. */
        struct nlmsghdr *h = (struct nlmsghdr *) buf;
        *h = (struct nlmsghdr) { .nlmsg_len = NLMSG_LENGTH(sizeof(struct nlmsgerr)), .nlmsg_type = NLMSG_ERROR };
        ((struct nlmsgerr *) NLMSG_DATA(h))->error = -EPERM;
        assert_int_equal(rtnl_addresses_parse(buf, h->nlmsg_len, restore_mask, &partial), -EPERM);
}

/* In the child of in_own_network(): a failure ends the child, and so fails the test, rather than
 * going back into cmocka's copy of the test runner. */
#define child_assert(expr)                                                                          \
        do {                                                                                        \
                if (!(expr)) {                                                                      \
                        fprintf(stderr, "%s:%d: %s failed (%m)\n", __FILE__, __LINE__, #expr);      \
                        _exit(1);                                                                   \
                }                                                                                   \
        } while (0)

static void set_lo_up(void) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = {};

        child_assert(fd >= 0);
        strcpy(ifr.ifr_name, "lo");
        child_assert(ioctl(fd, SIOCGIFFLAGS, &ifr) == 0);
        ifr.ifr_flags |= IFF_UP;
        child_assert(ioctl(fd, SIOCSIFFLAGS, &ifr) == 0);
}

/* ip address add ADDRESS dev lo (a host address, IPv6 without duplicate detection), over rtnetlink. */
static void add_address(const char *address) {
        _cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        int family = strchr(address, ':') ? AF_INET6 : AF_INET;
        size_t alen = family == AF_INET ? 4 : 16;
        struct {
                struct nlmsghdr h;
                struct ifaddrmsg m;
                char attrs[2 * RTA_SPACE(16)];
        } req = {
                .h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)) + 2 * RTA_SPACE(alen),
                .h.nlmsg_type = RTM_NEWADDR,
                .h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                .m.ifa_family = family,
                .m.ifa_prefixlen = family == AF_INET ? 32 : 128,
                .m.ifa_flags = family == AF_INET6 ? IFA_F_NODAD : 0,
                .m.ifa_scope = RT_SCOPE_UNIVERSE,
        };
        unsigned char a[16];

        child_assert(fd >= 0);
        req.m.ifa_index = if_nametoindex("lo");
        child_assert(req.m.ifa_index > 0);
        child_assert(inet_pton(family, address, a) == 1);
        unsigned short types[] = { IFA_LOCAL, IFA_ADDRESS };
        for (int i = 0; i < 2; i++) {
                struct rtattr *rta = (struct rtattr *) (req.attrs + i * RTA_SPACE(alen));
                rta->rta_type = types[i];
                rta->rta_len = RTA_LENGTH(alen);
                memcpy(RTA_DATA(rta), a, alen);
        }
        child_assert(send(fd, &req, req.h.nlmsg_len, 0) == (ssize_t) req.h.nlmsg_len);
        _Alignas(struct nlmsghdr) char buf[4096];
        ssize_t k = recv(fd, buf, sizeof(buf), 0);
        child_assert(k > 0);
        struct nlmsghdr *h = (struct nlmsghdr *) buf;
        child_assert(h->nlmsg_type == NLMSG_ERROR);
        child_assert(((struct nlmsgerr *) NLMSG_DATA(h))->error == 0);
}

static int bound_socket(int type, const char *address, uint16_t port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

        child_assert(fd >= 0);
        child_assert(inet_pton(AF_INET, address, &sa.sin_addr) == 1);
        child_assert(bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        return fd;
}

static int write_proc(const char *path, const char *text) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        return fd >= 0 && write(fd, text, strlen(text)) == (ssize_t) strlen(text) ? 0 : -1;
}

/* In a network namespace of its own: what the machine has is what the test gave it. */
static void in_own_network(void (*test)(void)) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                /* Not root: a user namespace gives the network namespace's powers. */
                uid_t uid = getuid();
                gid_t gid = getgid();
                if (unshare(uid == 0 ? CLONE_NEWNET : CLONE_NEWUSER | CLONE_NEWNET) < 0) {
                        fprintf(stderr, "No network namespace of the test's own (%m): run it as root.\n");
                        _exit(77);
                }
                if (uid != 0) {
                        char map[64];
                        snprintf(map, sizeof(map), "0 %u 1", (unsigned) uid);
                        if (write_proc("/proc/self/uid_map", map) < 0 ||
                            write_proc("/proc/self/setgroups", "deny") < 0)
                                _exit(3);
                        snprintf(map, sizeof(map), "0 %u 1", (unsigned) gid);
                        if (write_proc("/proc/self/gid_map", map) < 0)
                                _exit(3);
                }
                set_lo_up();
                test();
                _exit(0);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        /* Only where a user may not make namespaces: make check runs as root. */
        if (WEXITSTATUS(status) == 77)
                skip();
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void *add_later(void *arg) {
        /* While the wait below is under way: whenever it asks next, the address is there. */
        (void) usleep(300 * 1000);
        add_address(arg);
        return NULL;
}

static void missing_then_there(void) {
        char *want[] = { (char *) "192.0.2.1", (char *) "2001:db8::1", NULL };
        _cleanup_strv_free_ char **missing = NULL, **after = NULL;
        pthread_t t;

        child_assert(addresses_missing(want, &missing) == 0);
        child_assert(strv_length(missing) == 2);
        /* Not there: the wait gives up at its bound, here at once. */
        child_assert(addresses_wait("test.service", want, 0) == -ETIMEDOUT);

        add_address("2001:db8::1");
        child_assert(pthread_create(&t, NULL, add_later, (void *) "192.0.2.1") == 0);
        /* The bound only catches a wait that never ends. */
        child_assert(addresses_wait("test.service", want, 60 * USEC_PER_SEC) == 0);
        child_assert(pthread_join(t, NULL) == 0);
        child_assert(addresses_missing(want, &after) == 0);
        child_assert(!after);
}

static void test_addresses_missing(void **state) {
        in_own_network(missing_then_there);
}

static int bound_socket6(int type, const char *address, uint16_t port) {
        struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
        int fd = socket(AF_INET6, type | SOCK_CLOEXEC, 0);

        child_assert(fd >= 0);
        child_assert(inet_pton(AF_INET6, address, &sa.sin6_addr) == 1);
        child_assert(bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        return fd;
}

static void sockets_of_a_service(void) {
        add_address("192.0.2.1");
        add_address("192.0.2.2");
        add_address("2001:db8::1");
        _cleanup_close_ int listener = bound_socket(SOCK_STREAM, "192.0.2.1", 6379),
                            wildcard = bound_socket(SOCK_STREAM, "0.0.0.0", 6380),
                            loopback = bound_socket(SOCK_DGRAM, "127.0.0.1", 0),
                            datagram = bound_socket(SOCK_DGRAM, "192.0.2.2", 0),
                            six = bound_socket6(SOCK_STREAM, "2001:db8::1", 443),
                            mapped = bound_socket6(SOCK_DGRAM, "::ffff:192.0.2.1", 0),
                            group = bound_socket(SOCK_DGRAM, "239.255.255.250", 1900),
                            floating = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0),
                            client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        child_assert(listen(listener, 1) == 0);
        child_assert(listen(wildcard, 1) == 0);
        child_assert(listen(six, 1) == 0);
        /* A load balancer's floating address, not the machine's (IP_FREEBIND): never waited for. */
        int on = 1;
        struct sockaddr_in fl = { .sin_family = AF_INET, .sin_port = htons(8080) };
        child_assert(inet_pton(AF_INET, "198.51.100.7", &fl.sin_addr) == 1);
        child_assert(setsockopt(floating, IPPROTO_IP, IP_FREEBIND, &on, sizeof(on)) == 0);
        child_assert(bind(floating, (struct sockaddr *) &fl, sizeof(fl)) == 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(6380) };
        child_assert(inet_pton(AF_INET, "192.0.2.2", &sa.sin_addr) == 1);
        /* A connection accepted on a wildcard listener is bound to the address it came to. */
        child_assert(connect(client, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        _cleanup_close_ int accepted = accept4(wildcard, NULL, NULL, SOCK_CLOEXEC);
        child_assert(accepted >= 0);
        /* The client end is ours too here: only its address counts, the same. */
        pid_t self = getpid();
        _cleanup_strv_free_ char **got = NULL;
        child_assert(socket_addresses("test.service", &self, 1, &got) == 0);
        /* The kernel's own tables: IPv6 as written there, the v4-mapped socket as its IPv4 address. */
        child_assert(strv_length(got) == 3);
        child_assert(streq(got[0], "192.0.2.1"));
        child_assert(streq(got[1], "192.0.2.2"));
        child_assert(streq(got[2], "2001:db8::1"));
}

static void test_socket_addresses(void **state) {
        in_own_network(sockets_of_a_service);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_proc_net_addresses),
                cmocka_unit_test(test_lock_table_addresses),
                cmocka_unit_test(test_rtnl_addresses_parse),
                cmocka_unit_test(test_addresses_missing),
                cmocka_unit_test(test_socket_addresses),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
