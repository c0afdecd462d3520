/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The machine's connection tracking entries of a container's forwarded connections, saved at
 * the dump and created again before the restore.
 *
 * A client of a bridge-network container talks to a host port, and netfilter's DNAT sends its
 * packets on to the container's address; the container's answers find their way back only
 * through the conntrack entry that holds that translation. A new boot has none, and neither has
 * the old one after podman's teardown. Without the entry, the first packet through makes one:
 * if it is the restored container's (a retransmission, a window update, data it pushes), the
 * entry records the connection the wrong way round, its answers leave masqueraded from the wrong
 * port, and the client never sees them. Created again before the container runs, the entry is
 * there for whichever side speaks first.
 *
 * Saved from /proc/net/nf_conntrack (only IPv4 TCP, established, destination NAT only), created
 * through ctnetlink as `conntrack -I --dst-nat` would, window tracking made liberal: the sequence
 * numbers seen before the switch are not carried. */

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"
#include "string-util.h"

#define CONNTRACK_TCP_TIMEOUT_DEFAULT 432000U /* nf_conntrack_tcp_timeout_established's default */

static bool port_is_valid(unsigned p) {
        return p > 0 && p < 65536;
}

int conntrack_entry_parse(const char *line, ConntrackEntry *ret) {
        /* "ipv4 2 tcp 6 431999 ESTABLISHED src=A dst=B sport=P dport=Q [packets=… bytes=…] src=C
         * dst=D sport=R dport=S [packets=… bytes=…] [ASSURED] mark=0 zone=0 use=2": the original
         * tuple's four keys, then the reply's; the rest as the kernel's options have it. */
        static const char *const keys[] = { "src=", "dst=", "sport=", "dport=" };
        char family[8], proto[8], state[16], a[4][INET_ADDRSTRLEN + 4] = {};
        unsigned port[4] = {}, zone = 0, seen = 0;
        int n = 0;

        if (sscanf(line, "%7s %*u %7s %*u %*u %15s %n", family, proto, state, &n) != 3 || n <= 0)
                return -EBADMSG;
        if (!streq(family, "ipv4") || !streq(proto, "tcp") || !streq(state, "ESTABLISHED"))
                return -EBADMSG;
        for (const char *p = line + n; *p; ) {
                size_t len = strcspn(p, " ");
                char word[64];
                if (len > 0 && len < sizeof(word)) {
                        memcpy(word, p, len);
                        word[len] = 0;
                        const char *v = NULL;
                        if (seen < 8 && (v = startswith(word, keys[seen % 4]))) {
                                unsigned i = seen / 4 * 2 + seen % 2; /* addresses: 0 1 2 3 */
                                if (seen % 4 < 2) {
                                        if (strlen(v) >= sizeof(a[0]))
                                                return -EBADMSG;
                                        strcpy(a[i], v);
                                } else if (parse_unsigned(v, &port[i]) < 0)
                                        return -EBADMSG;
                                seen++;
                        } else if ((v = startswith(word, "zone=")) && parse_unsigned(v, &zone) < 0)
                                return -EBADMSG;
                } else if (len >= sizeof(word))
                        return -EBADMSG;
                p += len;
                p += strspn(p, " ");
        }
        if (seen != 8)
                return -EBADMSG;
        ConntrackEntry e = {};
        struct in_addr *addr[4] = { &e.orig_src, &e.orig_dst, &e.reply_src, &e.reply_dst };
        for (size_t i = 0; i < 4; i++)
                if (inet_pton(AF_INET, a[i], addr[i]) != 1 || !port_is_valid(port[i]))
                        return -EBADMSG;
        e.orig_sport = port[0];
        e.orig_dport = port[1];
        e.reply_sport = port[2];
        e.reply_dport = port[3];
        /* Destination NAT alone: the answers go back to the client as it sent from, from a
         * translated destination; in the default zone, where netavark's rules put it. */
        if (zone != 0 || e.reply_dst.s_addr != e.orig_src.s_addr || e.reply_dport != e.orig_sport ||
            (e.reply_src.s_addr == e.orig_dst.s_addr && e.reply_sport == e.orig_dport))
                return -EBADMSG;
        *ret = e;
        return 0;
}

int conntrack_entry_format(const ConntrackEntry *e, char **ret) {
        char a[4][INET_ADDRSTRLEN];
        const struct in_addr *addr[4] = { &e->orig_src, &e->orig_dst, &e->reply_src, &e->reply_dst };
        for (size_t i = 0; i < 4; i++)
                if (!inet_ntop(AF_INET, addr[i], a[i], sizeof(a[i])))
                        return -errno;
        /* The line it was read from, as far as it is parsed: one format, in and out. */
        *ret = strprintf("ipv4 2 tcp 6 0 ESTABLISHED src=%s dst=%s sport=%u dport=%u src=%s dst=%s sport=%u dport=%u", a[0],
                         a[1], e->orig_sport, e->orig_dport, a[2], a[3], e->reply_sport, e->reply_dport);
        return *ret ? 0 : -ENOMEM;
}

int conntrack_save(const char *unit, char * const *ports, const char *dir) {
        _cleanup_free_ char *text = NULL, *joined = NULL, *saved = NULL, *path = strprintf("%s/" CONNTRACK_FILE, dir);
        _cleanup_strv_free_ char **lines = NULL;
        int r;

        if (!path)
                return log_oom();
        r = read_file_limited("/proc/net/nf_conntrack", 64U << 20, &text, NULL);
        if (r == -ENOENT)
                return 0; /* no connection tracking: no translation to keep */
        if (r < 0)
                return log_unit_error_errno(unit, r, "Failed to read the connection tracking table: %m");
        for (char *p = text, *e; p && *p; p = e) {
                ConntrackEntry entry;
                char *line, port[8];
                e = strchr(p, '\n');
                if (e)
                        *e++ = 0;
                if (conntrack_entry_parse(p, &entry) < 0)
                        continue;
                snprintf(port, sizeof(port), "%u", entry.orig_dport);
                if (!strv_contains(ports, port))
                        continue;
                if (conntrack_entry_format(&entry, &line) < 0 || strv_push(&lines, line) < 0)
                        return log_oom();
        }
        if (!lines)
                return 0;
        joined = strv_join(lines, "\n");
        saved = joined ? strprintf("%s\n", joined) : NULL;
        if (!saved)
                return log_oom();
        r = write_string_file_atomic(path, saved, 0600);
        if (r < 0)
                return log_unit_error_errno(unit, r, "Failed to write %s: %m", path);
        log_unit_debug(unit, "Saved %zu forwarded connection(s) of %s.", strv_length(lines), unit);
        return 0;
}

/* Netlink attributes, appended to one message in buf. */
typedef struct NlBuf {
        char buf[1024];
        size_t len;
} NlBuf;

static struct nlattr *nl_put(NlBuf *b, uint16_t type, const void *data, size_t size) {
        size_t total = NLA_HDRLEN + size;
        assert(b->len + NLA_ALIGN(total) <= sizeof(b->buf));
        struct nlattr *a = (struct nlattr *) (b->buf + b->len);
        *a = (struct nlattr) { .nla_len = (uint16_t) total, .nla_type = type };
        if (size > 0)
                memcpy((char *) a + NLA_HDRLEN, data, size);
        memset((char *) a + total, 0, NLA_ALIGN(total) - total);
        b->len += NLA_ALIGN(total);
        return a;
}

static struct nlattr *nl_nest(NlBuf *b, uint16_t type) {
        return nl_put(b, type | NLA_F_NESTED, NULL, 0);
}

static void nl_end(NlBuf *b, struct nlattr *nest) {
        nest->nla_len = (uint16_t) (b->buf + b->len - (char *) nest);
}

static void nl_put_u8(NlBuf *b, uint16_t type, uint8_t v) {
        nl_put(b, type, &v, sizeof(v));
}

static void nl_put_be16(NlBuf *b, uint16_t type, uint16_t v) {
        uint16_t be = htons(v);
        nl_put(b, type, &be, sizeof(be));
}

static void nl_put_be32(NlBuf *b, uint16_t type, uint32_t v) {
        uint32_t be = htonl(v);
        nl_put(b, type, &be, sizeof(be));
}

static void put_tuple(NlBuf *b, uint16_t type, struct in_addr src, struct in_addr dst, unsigned sport, unsigned dport) {
        struct nlattr *tuple = nl_nest(b, type), *ip = nl_nest(b, CTA_TUPLE_IP);
        nl_put(b, CTA_IP_V4_SRC, &src.s_addr, sizeof(src.s_addr));
        nl_put(b, CTA_IP_V4_DST, &dst.s_addr, sizeof(dst.s_addr));
        nl_end(b, ip);
        struct nlattr *proto = nl_nest(b, CTA_TUPLE_PROTO);
        nl_put_u8(b, CTA_PROTO_NUM, IPPROTO_TCP);
        nl_put_be16(b, CTA_PROTO_SRC_PORT, (uint16_t) sport);
        nl_put_be16(b, CTA_PROTO_DST_PORT, (uint16_t) dport);
        nl_end(b, proto);
        nl_end(b, tuple);
}

/* IPCTNL_MSG_CT_NEW for e: the tuple as the client sent it, its reply untranslated, and the
 * destination NAT that turns the reply into the container's, as nf_nat sets it up itself. */
static void build_new(NlBuf *b, const ConntrackEntry *e, uint32_t timeout, uint32_t seq) {
        struct nlmsghdr *h = (struct nlmsghdr *) b->buf;
        b->len = NLMSG_HDRLEN;
        *h = (struct nlmsghdr) {
                .nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW,
                .nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK,
                .nlmsg_seq = seq,
        };
        struct nfgenmsg g = { .nfgen_family = AF_INET, .version = NFNETLINK_V0 };
        memcpy(b->buf + b->len, &g, sizeof(g));
        b->len += NLMSG_ALIGN(sizeof(g));

        put_tuple(b, CTA_TUPLE_ORIG, e->orig_src, e->orig_dst, e->orig_sport, e->orig_dport);
        put_tuple(b, CTA_TUPLE_REPLY, e->orig_dst, e->orig_src, e->orig_dport, e->orig_sport);
        struct nlattr *nat = nl_nest(b, CTA_NAT_DST);
        nl_put(b, CTA_NAT_V4_MINIP, &e->reply_src.s_addr, sizeof(e->reply_src.s_addr));
        nl_put(b, CTA_NAT_V4_MAXIP, &e->reply_src.s_addr, sizeof(e->reply_src.s_addr));
        struct nlattr *nat_proto = nl_nest(b, CTA_NAT_PROTO);
        nl_put_be16(b, CTA_PROTONAT_PORT_MIN, (uint16_t) e->reply_sport);
        nl_put_be16(b, CTA_PROTONAT_PORT_MAX, (uint16_t) e->reply_sport);
        nl_end(b, nat_proto);
        nl_end(b, nat);
        /* The kernel confirms an entry it creates before it applies the status, and refuses one
         * that would take that back (EBUSY). */
        nl_put_be32(b, CTA_STATUS, IPS_CONFIRMED | IPS_ASSURED | IPS_SEEN_REPLY);
        nl_put_be32(b, CTA_TIMEOUT, timeout);
        struct nlattr *info = nl_nest(b, CTA_PROTOINFO), *tcp = nl_nest(b, CTA_PROTOINFO_TCP);
        nl_put_u8(b, CTA_PROTOINFO_TCP_STATE, TCP_CONNTRACK_ESTABLISHED);
        struct nf_ct_tcp_flags liberal = { .flags = IP_CT_TCP_FLAG_BE_LIBERAL, .mask = IP_CT_TCP_FLAG_BE_LIBERAL };
        nl_put(b, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, &liberal, sizeof(liberal));
        nl_put(b, CTA_PROTOINFO_TCP_FLAGS_REPLY, &liberal, sizeof(liberal));
        nl_end(b, tcp);
        nl_end(b, info);
        h->nlmsg_len = (uint32_t) b->len;
}

/* The kernel's answer to the request seq: 0 or its negative errno. */
static int read_ack(int fd, uint32_t seq) {
        for (;;) {
                char buf[4096];
                ssize_t k = recv(fd, buf, sizeof(buf), 0);
                if (k < 0)
                        return errno == EINTR ? -EINTR : -errno;
                for (struct nlmsghdr *h = (struct nlmsghdr *) buf; NLMSG_OK(h, (size_t) k); h = NLMSG_NEXT(h, k)) {
                        if (h->nlmsg_seq != seq || h->nlmsg_type != NLMSG_ERROR)
                                continue;
                        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
                                return -EBADMSG;
                        return ((struct nlmsgerr *) NLMSG_DATA(h))->error;
                }
        }
}

static uint32_t established_timeout(void) {
        _cleanup_free_ char *text = NULL;
        unsigned v;
        if (read_file_limited("/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established", 32, &text, NULL) < 0 ||
            parse_unsigned(strstrip(text), &v) < 0 || v == 0)
                return CONNTRACK_TCP_TIMEOUT_DEFAULT;
        return v;
}

int conntrack_restore(const char *unit, const char *dir) {
        _cleanup_free_ char *text = NULL, *path = strprintf("%s/" CONNTRACK_FILE, dir);
        _cleanup_close_ int fd = -EBADF;
        unsigned made = 0, failed = 0;
        uint32_t seq = 0;
        int r, error = 0;

        if (!path)
                return log_oom();
        r = read_file_limited(path, 64U << 20, &text, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_unit_error_errno(unit, r, "Failed to read %s: %m", path);
        fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
        if (fd < 0)
                return log_unit_error_errno(unit, errno, "Failed to open ctnetlink: %m");
        struct timeval tv = { .tv_sec = 10 };
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        uint32_t timeout = established_timeout();

        for (char *p = text, *e; p && *p; p = e) {
                ConntrackEntry entry;
                NlBuf b;
                e = strchr(p, '\n');
                if (e)
                        *e++ = 0;
                if (conntrack_entry_parse(p, &entry) < 0) {
                        error = -EBADMSG;
                        failed++;
                        continue;
                }
                build_new(&b, &entry, timeout, ++seq);
                struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
                if (sendto(fd, b.buf, b.len, 0, (struct sockaddr *) &kernel, sizeof(kernel)) < 0)
                        r = -errno;
                else
                        r = read_ack(fd, seq);
                /* EEXIST: a packet made it already, through the rules that make it right. */
                if (r < 0 && r != -EEXIST) {
                        error = r;
                        failed++;
                } else
                        made++;
        }
        if (failed > 0)
                /* Its clients on those connections may not hear from it: said, not fatal. */
                log_unit_warning_errno(unit, error, "Could not create %u of %u connection tracking entries of %s (%m); "
                                       "those clients may have to reconnect.", failed, failed + made, unit);
        else
                log_unit_debug(unit, "Created %u connection tracking entries of %s.", made, unit);
        return 0;
}
