/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "unix-diag.h"

void unix_sockets_free(UnixSocket *l, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(l[i].name);
        free(l);
}

const UnixSocket *unix_sockets_find(const UnixSocket *l, size_t n, uint64_t inode) {
        for (size_t i = 0; i < n; i++)
                if (l[i].inode == inode)
                        return &l[i];
        return NULL;
}

static int parse_one(const struct unix_diag_msg *m, size_t len, UnixSocket *ret) {
        UnixSocket s = { .inode = m->udiag_ino, .type = m->udiag_type };
        size_t left = len - NLMSG_ALIGN(sizeof(*m));
        for (struct rtattr *a = (struct rtattr *) (m + 1); RTA_OK(a, left); a = RTA_NEXT(a, left))
                switch (a->rta_type) {
                case UNIX_DIAG_NAME: {
                        size_t n = RTA_PAYLOAD(a);
                        const char *p = RTA_DATA(a);
                        if (n == 0)
                                break;
                        free(s.name);
                        s.name = strndup(p, n);
                        if (!s.name)
                                return -ENOMEM;
                        if (p[0] == 0)
                                s.name[0] = '@';
                        break;
                }
                case UNIX_DIAG_PEER:
                        if (RTA_PAYLOAD(a) >= sizeof(uint32_t))
                                s.peer = *(uint32_t *) RTA_DATA(a);
                        break;
                }
        *ret = s;
        return 0;
}

int unix_sockets_dump(UnixSocket **ret, size_t *ret_n) {
        _cleanup_close_ int fd = -EBADF;
        UnixSocket *l = NULL;
        size_t n = 0, allocated = 0;
        int r = 0;
        struct {
                struct nlmsghdr nlh;
                struct unix_diag_req req;
        } request = {
                .nlh = {
                        .nlmsg_len = sizeof(request),
                        .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                        .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
                },
                .req = {
                        .sdiag_family = AF_UNIX,
                        .udiag_states = ~0U,
                        .udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER,
                },
        };

        fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (fd < 0)
                return -errno;
        if (send(fd, &request, sizeof(request), 0) < 0)
                return -errno;

        _cleanup_free_ char *buf = malloc(65536);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = recv(fd, buf, 65536, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto fail;
                }
                if (k == 0)
                        break;
                size_t len = (size_t) k;
                for (struct nlmsghdr *h = (struct nlmsghdr *) buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
                        if (h->nlmsg_type == NLMSG_DONE)
                                goto done;
                        if (h->nlmsg_type == NLMSG_ERROR) {
                                struct nlmsgerr *e = NLMSG_DATA(h);
                                r = e->error < 0 ? e->error : -EPROTO;
                                goto fail;
                        }
                        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg)))
                                continue;
                        if (n == allocated) {
                                allocated = allocated ? allocated * 2 : 64;
                                UnixSocket *nl = realloc(l, allocated * sizeof(UnixSocket));
                                if (!nl) {
                                        r = -ENOMEM;
                                        goto fail;
                                }
                                l = nl;
                        }
                        r = parse_one(NLMSG_DATA(h), h->nlmsg_len - NLMSG_LENGTH(0), &l[n]);
                        if (r < 0)
                                goto fail;
                        n++;
                }
        }
done:
        *ret = l;
        *ret_n = n;
        return 0;
fail:
        unix_sockets_free(l, n);
        return r;
}
