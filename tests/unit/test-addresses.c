/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The addresses a restore waits for (handoff/addresses.c): read from the kernel's socket tables
 * and criu's lock, and looked up on the machine, in a network namespace of the test's own. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
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

        /* Not a table: refused, not half read. */
        assert_int_equal(proc_net_addresses("header\n   0: not a line\n", AF_INET, ours, ELEMENTSOF(ours), &got), -EBADMSG);
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

static void set_lo_up(void) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = {};

        assert_true(fd >= 0);
        strcpy(ifr.ifr_name, "lo");
        assert_int_equal(ioctl(fd, SIOCGIFFLAGS, &ifr), 0);
        ifr.ifr_flags |= IFF_UP;
        assert_int_equal(ioctl(fd, SIOCSIFFLAGS, &ifr), 0);
}

/* ip address add ADDRESS/32 dev lo, over rtnetlink. */
static void add_address(const char *address) {
        _cleanup_close_ int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        struct {
                struct nlmsghdr h;
                struct ifaddrmsg m;
                char attrs[2 * RTA_SPACE(4)];
        } req = {
                .h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg)) + 2 * RTA_SPACE(4),
                .h.nlmsg_type = RTM_NEWADDR,
                .h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                .m.ifa_family = AF_INET,
                .m.ifa_prefixlen = 32,
                .m.ifa_scope = RT_SCOPE_UNIVERSE,
        };
        struct in_addr a;

        assert_true(fd >= 0);
        req.m.ifa_index = if_nametoindex("lo");
        assert_true(req.m.ifa_index > 0);
        assert_int_equal(inet_pton(AF_INET, address, &a), 1);
        unsigned short types[] = { IFA_LOCAL, IFA_ADDRESS };
        for (int i = 0; i < 2; i++) {
                struct rtattr *rta = (struct rtattr *) (req.attrs + i * RTA_SPACE(4));
                rta->rta_type = types[i];
                rta->rta_len = RTA_LENGTH(4);
                memcpy(RTA_DATA(rta), &a, 4);
        }
        assert_true(send(fd, &req, req.h.nlmsg_len, 0) == (ssize_t) req.h.nlmsg_len);
        char buf[4096];
        ssize_t k = recv(fd, buf, sizeof(buf), 0);
        assert_true(k > 0);
        struct nlmsghdr *h = (struct nlmsghdr *) buf;
        assert_int_equal(h->nlmsg_type, NLMSG_ERROR);
        assert_int_equal(((struct nlmsgerr *) NLMSG_DATA(h))->error, 0);
}

static int bound_socket(int type, const char *address, uint16_t port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(inet_pton(AF_INET, address, &sa.sin_addr), 1);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        return fd;
}

/* In a network namespace of its own: what the machine has is what the test gave it. */
static void in_own_network(void (*test)(void)) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (unshare(CLONE_NEWNET) < 0) {
                        fprintf(stderr, "unshare(CLONE_NEWNET): %m (the test needs root)\n");
                        _exit(2);
                }
                set_lo_up();
                test();
                _exit(0);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

static void missing_then_there(void) {
        char *want[] = { (char *) "192.0.2.1", (char *) "127.0.0.1", NULL };
        _cleanup_strv_free_ char **missing = NULL, **after = NULL;

        assert_int_equal(addresses_missing(want, &missing), 0);
        assert_int_equal(strv_length(missing), 1);
        assert_string_equal(missing[0], "192.0.2.1");
        /* Not there: the wait gives up at its bound, here at once. */
        assert_int_equal(addresses_wait("test.service", want, 0), -ETIMEDOUT);

        add_address("192.0.2.1");
        assert_int_equal(addresses_missing(want, &after), 0);
        assert_null(after);
        assert_int_equal(addresses_wait("test.service", want, 0), 0);
}

static void test_addresses_missing(void **state) {
        in_own_network(missing_then_there);
}

static void sockets_of_a_service(void) {
        add_address("192.0.2.1");
        add_address("192.0.2.2");
        _cleanup_close_ int listener = bound_socket(SOCK_STREAM, "192.0.2.1", 6379),
                            wildcard = bound_socket(SOCK_STREAM, "0.0.0.0", 6380),
                            loopback = bound_socket(SOCK_DGRAM, "127.0.0.1", 0),
                            datagram = bound_socket(SOCK_DGRAM, "192.0.2.2", 0),
                            client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(listen(listener, 1), 0);
        assert_int_equal(listen(wildcard, 1), 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(6380) };
        assert_int_equal(inet_pton(AF_INET, "192.0.2.2", &sa.sin_addr), 1);
        /* A connection accepted on a wildcard listener is bound to the address it came to. */
        assert_int_equal(connect(client, (struct sockaddr *) &sa, sizeof(sa)), 0);
        _cleanup_close_ int accepted = accept4(wildcard, NULL, NULL, SOCK_CLOEXEC);
        assert_true(accepted >= 0);
        /* The client end is ours too here: only its address counts, the same. */
        pid_t self = getpid();
        _cleanup_strv_free_ char **got = NULL;
        assert_int_equal(socket_addresses(&self, 1, &got), 0);
        assert_int_equal(strv_length(got), 2);
        assert_string_equal(got[0], "192.0.2.1");
        assert_string_equal(got[1], "192.0.2.2");
}

static void test_socket_addresses(void **state) {
        in_own_network(sockets_of_a_service);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_proc_net_addresses),
                cmocka_unit_test(test_lock_table_addresses),
                cmocka_unit_test(test_addresses_missing),
                cmocka_unit_test(test_socket_addresses),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
