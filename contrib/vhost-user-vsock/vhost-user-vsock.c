/*
 * vhost-user-vsock: a virtio-vsock device backend for vhost-user-vsock
 *
 * Serves QEMU's vhost-user-vsock-device (and -M nitro-enclave, which
 * creates one) over the tree's libvhost-user.  The guest's CID comes from
 * --guest-cid; each guest stream connection is carried over a host
 * socket (host.c): the guest connecting to a port reaches a host server,
 * a host client of the gateway reaches a guest server.  Credit-based flow
 * control both ways: the guest never has more than our buffer in flight
 * and we never send more than the guest's credit, so no byte is dropped.
 *
 * With --guests, the process serves more guests (guests.c): a guest
 * connecting to the CID of another one reaches it through a socket pair
 * whose far end is, for the other guest, a gateway client from the first
 * guest's address; the near end waits for that client's "OK <port>"
 * before the connection is established.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/iov.h"
#include "qemu/sockets.h"
#include "standard-headers/linux/virtio_vsock.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ring.h"
#include "libvhost-user-glib.h"

#include "vhost-user-vsock.h"

#define VUV_RX_QUEUE    0
#define VUV_TX_QUEUE    1
#define VUV_NUM_QUEUES  2
#define VUV_BUF_ALLOC   (256 * 1024)    /* our receive buffer, per conn */
#define VUV_READ_CHUNK  (64 * 1024)     /* host bytes read at a time */
#define VUV_FIRST_PORT  49152           /* host ports of gateway clients */

typedef enum {
    CONN_HANDSHAKE,     /* gateway client: reading "CONNECT <port>" */
    CONN_CONNECTING,    /* REQUEST sent to the guest, or host connect */
    CONN_ESTABLISHED,
} ConnState;

/* A connection, as its guest sees it */
typedef struct ConnKey {
    uint64_t host_cid;          /* the guest's peer */
    uint32_t guest_port;
    uint32_t host_port;
} ConnKey;

typedef struct VuvConn {
    VuvDev *dev;
    ConnKey key;
    uint64_t host_cid;          /* the guest's peer */
    uint32_t host_port;
    uint32_t guest_port;
    int fd;
    guint watch;
    GIOCondition watch_cond;
    ConnState state;
    bool from_gateway;
    bool host_connecting;       /* non-blocking host connect pending */
    bool peer_connecting;       /* another guest: reading its "OK <port>" */
    char line[32];
    size_t line_len;

    /* guest -> host: a ring of VUV_BUF_ALLOC bytes */
    uint8_t *tx;
    uint32_t tx_head, tx_len;
    uint32_t fwd_cnt;           /* bytes written to the host */
    uint32_t fwd_cnt_sent;      /* fwd_cnt last told the guest */

    /* host -> guest */
    uint8_t *rx;
    uint32_t rx_off, rx_len;
    uint32_t rx_cnt;            /* bytes sent to the guest */
    uint32_t peer_buf_alloc, peer_fwd_cnt;

    bool host_eof;              /* the host will send no more */
    bool shutdown_sent;
    bool guest_shut_send;       /* the guest will send no more */
    bool guest_shut_rcv;        /* the guest will receive no more */

    /* control packets owed to the guest */
    bool want_request, want_response, want_credit, want_shutdown;
    bool want_rst;              /* then the connection is freed */
    bool queued;                /* on VuvDev.rxq */
} VuvConn;

struct VuvDev {
    VugDev parent;
    VuvHostConfig cfg;
    GHashTable *conns;          /* key -> VuvConn */
    GQueue rxq;                 /* conns with something for the guest */
    GQueue rsts;                /* headers of RSTs for unknown conns */
    int gateway_fd;
    guint gateway_watch;
    uint64_t host_cid;          /* the guest's peer for gateway clients */
    uint32_t next_port;
    bool started;
    bool first;                 /* the command line's: ends the process */
    bool served;                /* its front-end connected */
    bool ending;                /* its front-end went away */
    int listen_fd;              /* an added guest's, until it connects */
    guint listen_watch;
};

static void conn_update_watch(VuvDev *v, VuvConn *c);
static void rx_pump(VuvDev *v);

static ConnKey conn_key(uint64_t host_cid, uint32_t guest_port,
                        uint32_t host_port)
{
    return (ConnKey) { host_cid, guest_port, host_port };
}

static guint conn_key_hash(gconstpointer p)
{
    const ConnKey *k = p;

    return g_int64_hash(&k->host_cid) ^
           ((guint)k->guest_port * 31 + k->host_port);
}

static gboolean conn_key_equal(gconstpointer a, gconstpointer b)
{
    return !memcmp(a, b, sizeof(ConnKey));
}

static uint32_t conn_credit(VuvConn *c)
{
    return c->peer_buf_alloc - (c->rx_cnt - c->peer_fwd_cnt);
}

static void conn_queue(VuvDev *v, VuvConn *c)
{
    if (!c->queued) {
        c->queued = true;
        g_queue_push_tail(&v->rxq, c);
    }
    rx_pump(v);
}

static void conn_free(VuvDev *v, VuvConn *c)
{
    if (c->watch) {
        g_source_remove(c->watch);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    if (c->queued) {
        g_queue_remove(&v->rxq, c);
    }
    g_hash_table_remove(v->conns, &c->key);
    g_free(c->tx);
    g_free(c->rx);
    g_free(c);
}

/* end the connection: RST to the guest (unless it sent one), host fd closed */
static void conn_reset(VuvDev *v, VuvConn *c, bool tell_guest)
{
    if (!tell_guest) {
        conn_free(v, c);
        return;
    }
    if (c->fd >= 0) {
        if (c->watch) {
            g_source_remove(c->watch);
            c->watch = 0;
        }
        close(c->fd);
        c->fd = -1;
    }
    c->want_rst = true;
    conn_queue(v, c);
}

static VuvConn *conn_new(VuvDev *v, uint32_t guest_port, uint64_t host_cid,
                         uint32_t host_port, int fd)
{
    VuvConn *c = g_new0(VuvConn, 1);

    c->dev = v;
    c->guest_port = guest_port;
    c->host_cid = host_cid;
    c->host_port = host_port;
    c->key = conn_key(host_cid, guest_port, host_port);
    c->fd = fd;
    c->tx = g_malloc(VUV_BUF_ALLOC);
    c->rx = g_malloc(VUV_READ_CHUNK);
    g_hash_table_insert(v->conns, &c->key, c);
    return c;
}

/* all data from the guest is out: apply the guest's shutdown to the host */
static bool conn_check_closed(VuvDev *v, VuvConn *c)
{
    if (c->tx_len || c->state != CONN_ESTABLISHED) {
        return false;
    }
    if (c->guest_shut_send && c->guest_shut_rcv) {
        /* both ways are done: RST ends it on the guest's side too */
        conn_reset(v, c, true);
        return true;
    }
    if (c->guest_shut_send) {
        shutdown(c->fd, SHUT_WR);
    }
    return false;
}

/*
 * write what the guest sent to the host; false if the conn was freed.
 * A host peer that has closed is EPIPE, never SIGPIPE: that would end
 * the backend, and with it the vsock of every guest it serves.
 */
static bool conn_flush_tx(VuvDev *v, VuvConn *c)
{
    uint32_t before = c->fwd_cnt;

    while (c->tx_len) {
        uint32_t first = MIN(c->tx_len, VUV_BUF_ALLOC - c->tx_head);
        struct iovec iov[2] = {
            { c->tx + c->tx_head, first },
            { c->tx, c->tx_len - first },
        };
        struct msghdr mh = { .msg_iov = iov,
                             .msg_iovlen = iov[1].iov_len ? 2 : 1 };
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            break;
        }
        if (n <= 0) {
            conn_reset(v, c, true);
            return false;
        }
        c->tx_head = (c->tx_head + n) % VUV_BUF_ALLOC;
        c->tx_len -= n;
        c->fwd_cnt += n;
    }
    if (conn_check_closed(v, c)) {
        return false;
    }
    /* tell the guest about freed space before it runs out of credit */
    if (c->fwd_cnt != before &&
        c->fwd_cnt - c->fwd_cnt_sent >= VUV_BUF_ALLOC / 4) {
        c->want_credit = true;
        conn_queue(v, c);
    }
    conn_update_watch(v, c);
    return true;
}

static void conn_read_host(VuvDev *v, VuvConn *c)
{
    uint32_t room = MIN(conn_credit(c), VUV_READ_CHUNK);
    ssize_t n;

    if (!room || c->rx_len) {
        return;
    }
    do {
        n = read(c->fd, c->rx, room);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) {
        return;
    }
    if (n < 0) {
        conn_reset(v, c, true);
        return;
    }
    if (n == 0) {
        c->host_eof = true;
        c->want_shutdown = true;
    } else {
        c->rx_off = 0;
        c->rx_len = n;
    }
    conn_update_watch(v, c);
    conn_queue(v, c);
}

static void gateway_handshake(VuvDev *v, VuvConn *c)
{
    uint32_t port;
    int r = vuv_host_read_line(c->fd, "CONNECT", c->line, sizeof(c->line),
                               &c->line_len, &port);
    VuvConn *old;

    if (r == 0) {
        return;
    }
    if (r < 0) {
        conn_free(v, c);
        return;
    }
    /* now the conn is known by its real ports */
    g_source_remove(c->watch);
    c->watch = 0;
    c->watch_cond = 0;
    g_hash_table_steal(v->conns, &c->key);
    c->guest_port = port;
    c->key = conn_key(c->host_cid, port, c->host_port);
    old = g_hash_table_lookup(v->conns, &c->key);
    if (old) {
        conn_free(v, old);
    }
    g_hash_table_insert(v->conns, &c->key, c);
    c->state = CONN_CONNECTING;
    c->want_request = true;
    conn_update_watch(v, c);
    conn_queue(v, c);
}

/* the other guest accepted (its "OK <port>"), refused or went away */
static void peer_handshake(VuvDev *v, VuvConn *c)
{
    uint32_t port;
    int r = vuv_host_read_line(c->fd, "OK", c->line, sizeof(c->line),
                               &c->line_len, &port);

    if (r == 0) {
        return;
    }
    c->peer_connecting = false;
    if (r < 0) {
        conn_reset(v, c, true);
        return;
    }
    c->state = CONN_ESTABLISHED;
    c->want_response = true;
    conn_update_watch(v, c);
    conn_queue(v, c);
}

static gboolean conn_event(gint fd, GIOCondition cond, gpointer opaque)
{
    VuvConn *c = opaque;
    VuvDev *v = c->dev;

    if (c->state == CONN_HANDSHAKE) {
        gateway_handshake(v, c);
        return G_SOURCE_CONTINUE;
    }
    if (c->peer_connecting) {
        peer_handshake(v, c);
        return G_SOURCE_CONTINUE;
    }
    if (c->host_connecting && (cond & (G_IO_OUT | G_IO_ERR | G_IO_HUP))) {
        int err = 0;
        socklen_t len = sizeof(err);

        c->host_connecting = false;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
            conn_reset(v, c, true);
            return G_SOURCE_CONTINUE;
        }
        c->state = CONN_ESTABLISHED;
        c->want_response = true;
        conn_update_watch(v, c);
        conn_queue(v, c);
        return G_SOURCE_CONTINUE;
    }
    if ((cond & G_IO_OUT) && c->tx_len && !conn_flush_tx(v, c)) {
        return G_SOURCE_CONTINUE;
    }
    if (cond & (G_IO_IN | G_IO_HUP | G_IO_ERR)) {
        conn_read_host(v, c);
    }
    return G_SOURCE_CONTINUE;
}

static void conn_update_watch(VuvDev *v, VuvConn *c)
{
    GIOCondition want = 0;

    if (c->fd < 0) {
        return;
    }
    if (c->state == CONN_HANDSHAKE || c->peer_connecting) {
        want = G_IO_IN;
    } else if (c->host_connecting) {
        want = G_IO_OUT;
    } else if (c->state == CONN_ESTABLISHED) {
        if (c->tx_len) {
            want |= G_IO_OUT;
        }
        if (!c->host_eof && !c->guest_shut_rcv && !c->rx_len &&
            conn_credit(c)) {
            want |= G_IO_IN;
        }
    }
    if (want == c->watch_cond && (c->watch || !want)) {
        return;
    }
    if (c->watch) {
        g_source_remove(c->watch);
        c->watch = 0;
    }
    c->watch_cond = want;
    if (want) {
        c->watch = g_unix_fd_add(c->fd, want, conn_event, c);
    }
}

static void fill_hdr(VuvDev *v, VuvConn *c, struct virtio_vsock_hdr *h,
                     uint16_t op, uint32_t len, uint32_t flags)
{
    memset(h, 0, sizeof(*h));
    h->src_cid = cpu_to_le64(c->host_cid);
    h->dst_cid = cpu_to_le64(v->cfg.guest_cid);
    h->src_port = cpu_to_le32(c->host_port);
    h->dst_port = cpu_to_le32(c->guest_port);
    h->len = cpu_to_le32(len);
    h->type = cpu_to_le16(VIRTIO_VSOCK_TYPE_STREAM);
    h->op = cpu_to_le16(op);
    h->flags = cpu_to_le32(flags);
    h->buf_alloc = cpu_to_le32(VUV_BUF_ALLOC);
    h->fwd_cnt = cpu_to_le32(c->fwd_cnt);
    c->fwd_cnt_sent = c->fwd_cnt;
}

/*
 * The next packet @c owes the guest, in @h (payload, if any, from
 * c->rx); returns its payload length, -1 if it owes nothing.
 */
static int conn_next_packet(VuvDev *v, VuvConn *c, struct virtio_vsock_hdr *h,
                            uint32_t room)
{
    uint32_t len;

    if (c->want_rst) {
        fill_hdr(v, c, h, VIRTIO_VSOCK_OP_RST, 0, 0);
        return 0;
    }
    if (c->want_request) {
        c->want_request = false;
        fill_hdr(v, c, h, VIRTIO_VSOCK_OP_REQUEST, 0, 0);
        return 0;
    }
    if (c->want_response) {
        c->want_response = false;
        fill_hdr(v, c, h, VIRTIO_VSOCK_OP_RESPONSE, 0, 0);
        return 0;
    }
    if (c->state != CONN_ESTABLISHED) {
        return -1;
    }
    if (c->rx_len && room) {
        len = MIN(MIN(c->rx_len, room), conn_credit(c));
        if (len) {
            c->want_credit = false;
            fill_hdr(v, c, h, VIRTIO_VSOCK_OP_RW, len, 0);
            return len;
        }
    }
    if (c->want_credit) {
        c->want_credit = false;
        fill_hdr(v, c, h, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0, 0);
        return 0;
    }
    if (c->want_shutdown && !c->rx_len && !c->shutdown_sent) {
        c->want_shutdown = false;
        c->shutdown_sent = true;
        fill_hdr(v, c, h, VIRTIO_VSOCK_OP_SHUTDOWN, 0,
                 VIRTIO_VSOCK_SHUTDOWN_SEND);
        return 0;
    }
    return -1;
}

/* put into the rx queue what the connections owe the guest */
static void rx_pump(VuvDev *v)
{
    VuDev *dev = &v->parent.parent;
    VuVirtq *vq;
    bool pushed = false;

    if (!v->started) {
        return;
    }
    vq = vu_get_queue(dev, VUV_RX_QUEUE);
    while (!g_queue_is_empty(&v->rsts) || !g_queue_is_empty(&v->rxq)) {
        struct virtio_vsock_hdr h, *rst = g_queue_peek_head(&v->rsts);
        VuVirtqElement *elem;
        VuvConn *c = NULL;
        size_t in_size;
        int len;

        elem = vu_queue_pop(dev, vq, sizeof(VuVirtqElement));
        if (!elem) {
            break;
        }
        in_size = iov_size(elem->in_sg, elem->in_num);
        if (in_size < sizeof(h)) {
            vu_queue_push(dev, vq, elem, 0);
            g_free(elem);
            error_report("vhost-user-vsock: rx buffer of %zu bytes", in_size);
            break;
        }
        if (rst) {
            g_queue_pop_head(&v->rsts);
            h = *rst;
            g_free(rst);
            len = 0;
        } else {
            len = -1;
            while (len < 0 && (c = g_queue_peek_head(&v->rxq))) {
                len = conn_next_packet(v, c, &h, in_size - sizeof(h));
                if (len < 0) {
                    g_queue_pop_head(&v->rxq);
                    c->queued = false;
                }
            }
            if (len < 0) {
                vu_queue_unpop(dev, vq, elem, 0);
                g_free(elem);
                break;
            }
        }
        iov_from_buf(elem->in_sg, elem->in_num, 0, &h, sizeof(h));
        if (len > 0) {
            iov_from_buf(elem->in_sg, elem->in_num, sizeof(h),
                         c->rx + c->rx_off, len);
            c->rx_off += len;
            c->rx_len -= len;
            c->rx_cnt += len;
        }
        vu_queue_push(dev, vq, elem, sizeof(h) + len);
        g_free(elem);
        pushed = true;
        if (c && c->want_rst) {
            conn_free(v, c);
        } else if (c && len > 0) {
            conn_update_watch(v, c);
        }
    }
    if (pushed) {
        vu_queue_notify(dev, vq);
    }
}

static void send_rst_for(VuvDev *v, const struct virtio_vsock_hdr *in)
{
    struct virtio_vsock_hdr *h = g_new0(struct virtio_vsock_hdr, 1);

    h->src_cid = in->dst_cid;
    h->dst_cid = cpu_to_le64(v->cfg.guest_cid);
    h->src_port = in->dst_port;
    h->dst_port = in->src_port;
    h->type = cpu_to_le16(VIRTIO_VSOCK_TYPE_STREAM);
    h->op = cpu_to_le16(VIRTIO_VSOCK_OP_RST);
    g_queue_push_tail(&v->rsts, h);
}

/*
 * Connect guest port @src_port to port @dst_port of @peer, another guest:
 * a socket pair, whose far end @peer sees as a gateway client from our
 * guest's (CID, @src_port).  Returns the near end, or -1 with @errp set.
 */
static int peer_connect(VuvDev *v, VuvDev *peer, uint32_t src_port,
                        uint32_t dst_port, Error **errp)
{
    ConnKey key = conn_key(v->cfg.guest_cid, dst_port, src_port);
    VuvConn *c, *old;
    int sv[2];

    if (qemu_socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0) {
        error_setg_errno(errp, errno, "socketpair");
        return -1;
    }
    old = g_hash_table_lookup(peer->conns, &key);
    if (old) {
        conn_free(peer, old);
    }
    c = conn_new(peer, dst_port, v->cfg.guest_cid, src_port, sv[1]);
    c->from_gateway = true;
    c->state = CONN_CONNECTING;
    c->want_request = true;
    conn_update_watch(peer, c);
    conn_queue(peer, c);
    return sv[0];
}

/* the guest connects to a host port, or to another guest's */
static void guest_request(VuvDev *v, uint64_t dst_cid, uint32_t src_port,
                          uint32_t dst_port,
                          const struct virtio_vsock_hdr *h)
{
    g_autoptr(Error) err = NULL;
    VuvDev *peer = vuv_guests_find(dst_cid);
    bool in_progress = false;
    VuvConn *c;
    int fd = peer && peer != v && !peer->ending ?
             peer_connect(v, peer, src_port, dst_port, &err) :
             vuv_host_connect(&v->cfg, dst_cid, dst_port, src_port,
                              &in_progress, &err);

    if (fd < 0) {
        g_debug("guest port %" PRIu32 " -> %" PRIu64 ":%" PRIu32 ": %s",
                src_port, dst_cid, dst_port, error_get_pretty(err));
        send_rst_for(v, h);
        return;
    }
    c = conn_new(v, src_port, dst_cid, dst_port, fd);
    c->peer_buf_alloc = le32_to_cpu(h->buf_alloc);
    c->peer_fwd_cnt = le32_to_cpu(h->fwd_cnt);
    if (peer && peer != v && !peer->ending) {
        c->state = CONN_CONNECTING;
        c->peer_connecting = true;
        conn_update_watch(v, c);
        return;
    }
    if (in_progress) {
        c->state = CONN_CONNECTING;
        c->host_connecting = true;
        conn_update_watch(v, c);
        return;
    }
    c->state = CONN_ESTABLISHED;
    c->want_response = true;
    conn_update_watch(v, c);
    c->queued = true;
    g_queue_push_tail(&v->rxq, c);
}

/* one packet from the guest; false if it broke the protocol */
static void tx_packet(VuvDev *v, VuVirtqElement *elem)
{
    struct virtio_vsock_hdr h;
    size_t size = iov_size(elem->out_sg, elem->out_num);
    uint32_t len, src_port, dst_port, flags;
    uint16_t op;
    VuvConn *c;

    if (size < sizeof(h) ||
        iov_to_buf(elem->out_sg, elem->out_num, 0, &h, sizeof(h)) !=
        sizeof(h)) {
        return;
    }
    len = le32_to_cpu(h.len);
    op = le16_to_cpu(h.op);
    src_port = le32_to_cpu(h.src_port);
    dst_port = le32_to_cpu(h.dst_port);
    flags = le32_to_cpu(h.flags);
    if (le64_to_cpu(h.src_cid) != v->cfg.guest_cid ||
        le16_to_cpu(h.type) != VIRTIO_VSOCK_TYPE_STREAM ||
        len > size - sizeof(h)) {
        if (op != VIRTIO_VSOCK_OP_RST) {
            send_rst_for(v, &h);
        }
        return;
    }
    c = g_hash_table_lookup(v->conns, &(ConnKey) {
                                le64_to_cpu(h.dst_cid), src_port, dst_port });
    if (!c) {
        if (op == VIRTIO_VSOCK_OP_REQUEST) {
            guest_request(v, le64_to_cpu(h.dst_cid), src_port, dst_port, &h);
        } else if (op != VIRTIO_VSOCK_OP_RST) {
            send_rst_for(v, &h);
        }
        return;
    }
    c->peer_buf_alloc = le32_to_cpu(h.buf_alloc);
    c->peer_fwd_cnt = le32_to_cpu(h.fwd_cnt);

    switch (op) {
    case VIRTIO_VSOCK_OP_RESPONSE:
        if (c->state != CONN_CONNECTING || !c->from_gateway) {
            conn_reset(v, c, true);
            return;
        }
        c->state = CONN_ESTABLISHED;
        {
            g_autofree char *ok = g_strdup_printf("OK %" PRIu32 "\n",
                                                  c->host_port);

            /* a fresh socket's buffer takes these few bytes */
            if (send(c->fd, ok, strlen(ok), MSG_NOSIGNAL) != strlen(ok)) {
                conn_reset(v, c, true);
                return;
            }
        }
        break;
    case VIRTIO_VSOCK_OP_RW:
        if (c->state != CONN_ESTABLISHED || c->guest_shut_send ||
            len > VUV_BUF_ALLOC - c->tx_len) {
            /* beyond the credit we gave: the guest broke the protocol */
            conn_reset(v, c, true);
            return;
        }
        {
            uint32_t tail = (c->tx_head + c->tx_len) % VUV_BUF_ALLOC;
            uint32_t first = MIN(len, VUV_BUF_ALLOC - tail);

            iov_to_buf(elem->out_sg, elem->out_num, sizeof(h),
                       c->tx + tail, first);
            iov_to_buf(elem->out_sg, elem->out_num, sizeof(h) + first,
                       c->tx, len - first);
            c->tx_len += len;
        }
        if (!conn_flush_tx(v, c)) {
            return;
        }
        break;
    case VIRTIO_VSOCK_OP_CREDIT_REQUEST:
        c->want_credit = true;
        break;
    case VIRTIO_VSOCK_OP_CREDIT_UPDATE:
        break;
    case VIRTIO_VSOCK_OP_SHUTDOWN:
        c->guest_shut_rcv |= flags & VIRTIO_VSOCK_SHUTDOWN_RCV;
        c->guest_shut_send |= flags & VIRTIO_VSOCK_SHUTDOWN_SEND;
        if (conn_check_closed(v, c)) {
            return;
        }
        break;
    case VIRTIO_VSOCK_OP_RST:
        conn_reset(v, c, false);
        return;
    default:
        conn_reset(v, c, true);
        return;
    }
    conn_update_watch(v, c);
    if (c->want_credit || c->rx_len || c->want_shutdown) {
        conn_queue(v, c);
    }
}

static void tx_kick(VuDev *dev, int qidx)
{
    VuvDev *v = container_of(dev, VuvDev, parent.parent);
    VuVirtq *vq = vu_get_queue(dev, qidx);
    VuVirtqElement *elem;
    bool popped = false;

    while ((elem = vu_queue_pop(dev, vq, sizeof(VuVirtqElement)))) {
        tx_packet(v, elem);
        vu_queue_push(dev, vq, elem, 0);
        g_free(elem);
        popped = true;
    }
    if (popped) {
        vu_queue_notify(dev, vq);
    }
    rx_pump(v);
}

static void rx_kick(VuDev *dev, int qidx)
{
    rx_pump(container_of(dev, VuvDev, parent.parent));
}

/* drop every connection: the guest's driver went away */
static void drop_all(VuvDev *v)
{
    GHashTableIter it;
    gpointer value;

    g_hash_table_iter_init(&it, v->conns);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        VuvConn *c = value;

        g_hash_table_iter_steal(&it);
        c->queued = false;
        c->key.host_cid = UINT64_MAX;   /* not in the table any more */
        conn_free(v, c);
    }
    g_queue_clear(&v->rxq);
    g_queue_clear_full(&v->rsts, g_free);
}

static void queue_set_started(VuDev *dev, int qidx, bool started)
{
    VuvDev *v = container_of(dev, VuvDev, parent.parent);
    VuVirtq *vq = vu_get_queue(dev, qidx);

    vu_set_queue_handler(dev, vq, !started ? NULL :
                         qidx == VUV_TX_QUEUE ? tx_kick : rx_kick);
    v->started = vu_queue_started(dev, vu_get_queue(dev, VUV_RX_QUEUE)) &&
                 vu_queue_started(dev, vu_get_queue(dev, VUV_TX_QUEUE));
    if (!v->started) {
        drop_all(v);
    }
}

static uint64_t get_features(VuDev *dev)
{
    return 1ULL << VIRTIO_F_VERSION_1 |
           1ULL << VIRTIO_RING_F_INDIRECT_DESC |
           1ULL << VIRTIO_RING_F_EVENT_IDX;
}

static uint64_t get_protocol_features(VuDev *dev)
{
    return 1ULL << VHOST_USER_PROTOCOL_F_CONFIG;
}

static int get_config(VuDev *dev, uint8_t *config, uint32_t len)
{
    VuvDev *v = container_of(dev, VuvDev, parent.parent);
    struct virtio_vsock_config cfg = {
        .guest_cid = cpu_to_le64(v->cfg.guest_cid),
    };

    memset(config, 0, len);
    memcpy(config, &cfg, MIN(len, sizeof(cfg)));
    return 0;
}

static void vuv_panic(VuDev *dev, const char *msg);

/*
 * The front-end closed the connection: libvhost-user reads that as
 * VHOST_USER_NONE, and would exit the process
 */
static int process_msg(VuDev *dev, VhostUserMsg *msg, int *do_reply)
{
    if (msg->request != VHOST_USER_NONE) {
        return false;
    }
    *do_reply = false;
    vuv_panic(dev, "the front-end disconnected");
    return true;
}

static const VuDevIface vuv_iface = {
    .process_msg = process_msg,
    .get_features = get_features,
    .get_protocol_features = get_protocol_features,
    .queue_set_started = queue_set_started,
    .get_config = get_config,
};

/* a host client of the gateway: it names the guest port first */
static gboolean gateway_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    VuvDev *v = opaque;
    int cfd = qemu_accept(fd, NULL, NULL);
    VuvConn *c;
    uint32_t port;

    if (cfd < 0) {
        return G_SOURCE_CONTINUE;
    }
    if (!qemu_set_blocking(cfd, false, NULL)) {
        close(cfd);
        return G_SOURCE_CONTINUE;
    }
    /* a host port no other connection uses (the guest port is not known) */
    do {
        port = v->next_port++;
        if (v->next_port < VUV_FIRST_PORT) {
            v->next_port = VUV_FIRST_PORT;
        }
    } while (g_hash_table_contains(v->conns, &(ConnKey) {
                                       v->host_cid, 0, port }));
    c = conn_new(v, 0, v->host_cid, port, cfd);
    c->from_gateway = true;
    c->state = CONN_HANDSHAKE;
    conn_update_watch(v, c);
    return G_SOURCE_CONTINUE;
}

static GMainLoop *loop;

/* An added guest is gone: free it (from the main loop, never inside it) */
static gboolean dev_free(gpointer opaque)
{
    VuvDev *v = opaque;

    if (vuv_guests_find(v->cfg.guest_cid) == v) {
        vuv_guests_remove(v->cfg.guest_cid);
    }
    drop_all(v);
    if (v->listen_fd >= 0) {
        g_source_remove(v->listen_watch);
        close(v->listen_fd);
    }
    if (v->served) {
        vu_deinit(&v->parent.parent);
        vug_deinit(&v->parent);
    }
    if (v->gateway_fd >= 0) {
        g_source_remove(v->gateway_watch);
        close(v->gateway_fd);
        unlink(v->cfg.uds_path);
    }
    g_hash_table_destroy(v->conns);
    g_free(v->cfg.uds_path);
    g_free(v);
    return G_SOURCE_REMOVE;
}

static void dev_end(VuvDev *v)
{
    if (v->ending) {
        return;
    }
    v->ending = true;
    if (v->first) {
        g_main_loop_quit(loop);
    } else {
        /* before its closed socket is polled again */
        g_idle_add_full(G_PRIORITY_HIGH, dev_free, v, NULL);
    }
}

static void vuv_panic(VuDev *dev, const char *msg)
{
    VuvDev *v = container_of(dev, VuvDev, parent.parent);

    /*
     * the front-end went away (the guest exited): so does the guest, and
     * with the first one the process
     */
    g_debug("vhost-user (CID %" PRIu64 "): %s", v->cfg.guest_cid, msg);
    dev_end(v);
}

/* A guest of CID @cfg->guest_cid, with its gateway: NULL with @errp set */
static VuvDev *dev_new(const VuvHostConfig *cfg, uint64_t host_cid,
                       Error **errp)
{
    VuvDev *v = g_new0(VuvDev, 1);

    v->cfg = *cfg;
    v->cfg.uds_path = g_strdup(cfg->uds_path);
    v->host_cid = host_cid;
    v->conns = g_hash_table_new(conn_key_hash, conn_key_equal);
    g_queue_init(&v->rxq);
    g_queue_init(&v->rsts);
    v->next_port = VUV_FIRST_PORT;
    v->gateway_fd = -1;
    v->listen_fd = -1;
    if (v->cfg.uds_path) {
        v->gateway_fd = vuv_host_listen(&v->cfg, errp);
        if (v->gateway_fd < 0) {
            g_hash_table_destroy(v->conns);
            g_free(v->cfg.uds_path);
            g_free(v);
            return NULL;
        }
        v->gateway_watch = g_unix_fd_add(v->gateway_fd, G_IO_IN,
                                         gateway_accept, v);
    }
    return v;
}

/* @v's front-end connected on @conn */
static bool dev_serve(VuvDev *v, int conn, Error **errp)
{
    if (!vug_init(&v->parent, VUV_NUM_QUEUES, conn, vuv_panic, &vuv_iface)) {
        error_setg(errp, "cannot initialise libvhost-user");
        close(conn);
        return false;
    }
    v->served = true;
    return true;
}

/* an added guest's front-end connects */
static gboolean dev_accept(gint fd, GIOCondition cond, gpointer opaque)
{
    VuvDev *v = opaque;
    g_autoptr(Error) err = NULL;
    int conn = qemu_accept(fd, NULL, NULL);

    if (conn < 0) {
        return G_SOURCE_CONTINUE;
    }
    close(v->listen_fd);
    v->listen_fd = -1;
    if (!dev_serve(v, conn, &err)) {
        g_warning("CID %" PRIu64 ": %s", v->cfg.guest_cid,
                  error_get_pretty(err));
        dev_end(v);
    }
    return G_SOURCE_REMOVE;
}

bool vuv_dev_add(uint64_t cid, const char *uds_path, int listen_fd,
                 Error **errp)
{
    VuvHostConfig cfg = { .uds_path = (char *)uds_path, .guest_cid = cid };
    VuvDev *old = vuv_guests_find(cid);
    VuvDev *v;

    if (cid < 3 || cid >= UINT32_MAX || (old && old->first)) {
        error_setg(errp, "CID %" PRIu64 " cannot be added", cid);
        close(listen_fd);
        return false;
    }
    if (old) {
        /* the device reuses the CID of an enclave that ended */
        vuv_guests_remove(cid);
        dev_end(old);
    }
    v = dev_new(&cfg, 2, errp);
    if (!v || !qemu_set_blocking(listen_fd, false, errp)) {
        if (v) {
            dev_end(v);
        }
        close(listen_fd);
        return false;
    }
    vuv_guests_add(cid, v);
    v->listen_fd = listen_fd;
    v->listen_watch = g_unix_fd_add(listen_fd, G_IO_IN, dev_accept, v);
    g_debug("CID %" PRIu64 " added, gateway %s", cid, uds_path);
    return true;
}

static bool parse_cid(const char *name, const char *value, uint64_t *cid,
                      Error **errp)
{
    ERRP_GUARD();

    if (qemu_strtou64(value, NULL, 0, cid) < 0 || *cid > UINT32_MAX - 1) {
        error_setg(errp, "%s: '%s' is not a CID", name, value);
        error_append_hint(errp, "A CID is a number below 4294967295.\n");
        return false;
    }
    return true;
}

static int vhost_user_socket(const char *path, int fd, Error **errp)
{
    int lsock, conn;

    if (fd >= 0) {
        lsock = fd;
    } else {
        lsock = unix_listen(path, errp);
        if (lsock < 0) {
            return -1;
        }
    }
    /* the front-end connects once; until then there is nothing to do */
    do {
        conn = accept(lsock, NULL, NULL);
    } while (conn < 0 && errno == EINTR);
    if (conn < 0) {
        error_setg_errno(errp, errno, "accept on the vhost-user socket");
    }
    close(lsock);
    if (path) {
        unlink(path);
    }
    return conn;
}

int main(int argc, char **argv)
{
    VuvHostConfig cfg = { 0 };
    VuvDev *v;
    uint64_t gateway_cid = 2;
    g_autofree char *socket_path = NULL;
    g_autofree char *guests_path = NULL;
    g_autofree char *guest_cid = NULL;
    g_autofree char *host_cid = NULL;
    gint fd = -1;
    gboolean use_vsock = FALSE, verbose = FALSE;
    Error *err = NULL;
    GOptionEntry entries[] = {
        { "socket-path", 's', 0, G_OPTION_ARG_FILENAME, &socket_path,
          "vhost-user socket to listen on", "PATH" },
        { "fd", 'f', 0, G_OPTION_ARG_INT, &fd,
          "an inherited listening vhost-user socket", "FD" },
        { "guest-cid", 'c', 0, G_OPTION_ARG_STRING, &guest_cid,
          "the guest's CID (required)", "CID" },
        { "uds-path", 'u', 0, G_OPTION_ARG_FILENAME, &cfg.uds_path,
          "host AF_UNIX gateway: clients send \"CONNECT <port>\\n\" to "
          "reach a guest port; the guest reaches PATH_<port>", "PATH" },
        { "vsock", 0, 0, G_OPTION_ARG_NONE, &use_vsock,
          "connect the guest to host ports with AF_VSOCK", NULL },
        { "host-cid", 0, 0, G_OPTION_ARG_STRING, &host_cid,
          "the CID the guest sees gateway clients come from (default 2)",
          "CID" },
        { "guests", 'g', 0, G_OPTION_ARG_FILENAME, &guests_path,
          "serve more guests, added on this socket, and connect the "
          "guests to each other", "PATH" },
        { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose,
          "log connections", NULL },
        { NULL }
    };
    g_autoptr(GOptionContext) ctx =
        g_option_context_new("- vhost-user-vsock device backend");
    g_autoptr(GError) gerr = NULL;
    int conn;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &gerr)) {
        error_report("%s", gerr->message);
        return EXIT_FAILURE;
    }
    if (verbose) {
        g_setenv("G_MESSAGES_DEBUG", "all", true);
    }
    if (!guest_cid || (!socket_path) == (fd < 0)) {
        error_report("--guest-cid and one of --socket-path or --fd "
                     "are required");
        error_printf("Try '%s --help'.\n", g_get_prgname());
        return EXIT_FAILURE;
    }
    if (!parse_cid("--guest-cid", guest_cid, &cfg.guest_cid, &err) ||
        (host_cid && !parse_cid("--host-cid", host_cid, &gateway_cid, &err))) {
        error_report_err(err);
        return EXIT_FAILURE;
    }
    if (cfg.guest_cid < 3) {
        error_report("--guest-cid: %" PRIu64 " is reserved (0: hypervisor, "
                     "1: local, 2: host); a guest has 3 or more",
                     cfg.guest_cid);
        return EXIT_FAILURE;
    }
    cfg.use_vsock = use_vsock;
    if (!cfg.uds_path && !use_vsock) {
        error_report("no host side: give --uds-path or --vsock");
        return EXIT_FAILURE;
    }
    v = dev_new(&cfg, gateway_cid, &err);
    if (!v || (guests_path && !vuv_guests_listen(guests_path, &err))) {
        error_report_err(err);
        return EXIT_FAILURE;
    }
    v->first = true;
    vuv_guests_add(cfg.guest_cid, v);
    conn = vhost_user_socket(socket_path, fd, &err);
    if (conn < 0 || !dev_serve(v, conn, &err)) {
        error_report_err(err);
        return EXIT_FAILURE;
    }
    loop = g_main_loop_new(NULL, FALSE);
    g_main_loop_run(loop);

    drop_all(v);
    vu_deinit(&v->parent.parent);
    vug_deinit(&v->parent);
    g_main_loop_unref(loop);
    if (v->gateway_fd >= 0) {
        g_source_remove(v->gateway_watch);
        close(v->gateway_fd);
        unlink(cfg.uds_path);
    }
    if (guests_path) {
        unlink(guests_path);
    }
    return EXIT_SUCCESS;
}
