/*
 * vhost-user-vsock: the guests one process serves
 *
 * One process can serve several guests, each through its own vhost-user
 * front-end (a parent instance's VM, CID 3, and its enclaves): a guest
 * connecting to the CID of another guest of the process reaches that
 * guest, not the host.  The first guest comes from the command line;
 * more are added at run time through a control socket (--guests PATH):
 * a client, the Nitro Enclaves PCI device when it boots an enclave,
 * sends "GUEST <cid> <gateway path>\n" in one message with the guest's
 * listening vhost-user socket attached, and closes.  A guest leaves when
 * its front-end disconnects.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/sockets.h"

#include "vhost-user-vsock.h"

#define GUESTS_MSG_MAX  4096

static GHashTable *guests;      /* CID -> VuvDev */

VuvDev *vuv_guests_find(uint64_t cid)
{
    return guests ? g_hash_table_lookup(guests, &cid) : NULL;
}

bool vuv_guests_add(uint64_t cid, VuvDev *v)
{
    if (!guests) {
        guests = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                       NULL);
    }
    if (g_hash_table_contains(guests, &cid)) {
        return false;
    }
    g_hash_table_insert(guests, g_memdup2(&cid, sizeof(cid)), v);
    return true;
}

void vuv_guests_remove(uint64_t cid)
{
    if (guests) {
        g_hash_table_remove(guests, &cid);
    }
}

/* "GUEST <cid> <path>" of @msg; false if it is not that */
static bool guests_parse(char *msg, uint64_t *cid, const char **path)
{
    char *end;

    if (!g_str_has_prefix(msg, "GUEST ")) {
        return false;
    }
    if (qemu_strtou64(msg + 6, (const char **)&end, 10, cid) < 0 ||
        *end != ' ' || !end[1]) {
        return false;
    }
    *path = end + 1;
    return true;
}

/* The message of a control client: one request, then it is closed */
static gboolean guests_request(gint fd, GIOCondition cond, gpointer opaque)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    char msg[GUESTS_MSG_MAX];
    struct iovec iov = { .iov_base = msg, .iov_len = sizeof(msg) - 1 };
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1,
        .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
    };
    struct cmsghdr *cm;
    g_autoptr(Error) err = NULL;
    const char *path;
    uint64_t cid;
    int lsock = -1;
    ssize_t n;

    do {
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) {
        return G_SOURCE_CONTINUE;
    }
    cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
    if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
        cm->cmsg_len == CMSG_LEN(sizeof(int))) {
        memcpy(&lsock, CMSG_DATA(cm), sizeof(int));
    }
    msg[MAX(n, 0)] = 0;
    g_strchomp(msg);
    if (lsock < 0 || !guests_parse(msg, &cid, &path)) {
        error_setg(&err, "a bad request on the guests socket: '%s'", msg);
    } else {
        vuv_dev_add(cid, path, lsock, &err);
        lsock = -1;
    }
    if (err) {
        g_warning("%s", error_get_pretty(err));
    }
    if (lsock >= 0) {
        close(lsock);
    }
    close(fd);
    return G_SOURCE_REMOVE;
}

static gboolean guests_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    int cfd = qemu_accept(fd, NULL, NULL);

    if (cfd >= 0) {
        g_unix_fd_add(cfd, G_IO_IN | G_IO_HUP | G_IO_ERR, guests_request,
                      NULL);
    }
    return G_SOURCE_CONTINUE;
}

bool vuv_guests_listen(const char *path, Error **errp)
{
    int fd;

    unlink(path);
    fd = unix_listen(path, errp);
    if (fd < 0) {
        return false;
    }
    if (!qemu_set_blocking(fd, false, errp)) {
        close(fd);
        return false;
    }
    g_unix_fd_add(fd, G_IO_IN, guests_accept, NULL);
    return true;
}
