/*
 * AWS Nitro Enclaves: answer the enclave's boot heartbeat (nitro-heartbeat)
 *
 * Right after boot, the enclave's init connects to the parent (CID 3) on
 * vsock port 9000, sends 0xB7 and requires 0xB7 back; it does not retry,
 * and without an answer the enclave panics.  This device listens on the
 * port from before the enclave starts (the enclave does not start until
 * it listens), answers the enclave once and frees the port.  A connection
 * from any other CID (a local process, another enclave) is closed and
 * ignored.  If no heartbeat arrives in time, or a wrong one does, or the
 * enclave stops before it sent one, the enclave failed to boot: the
 * machine reports a guest panic (or, with warn-only=on, the device warns
 * and keeps listening for a late one).  Its read-only property
 * "answered" says when the enclave has booted, for a launcher that waits
 * for it (qemu-nitro run-enclave, as nitro-cli's does).
 *
 * Only one process can hold the port: while another launcher holds it,
 * the device retries from a timer, up to port-wait seconds; QEMU stays
 * responsive and the enclave starts once the port is free.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/sockets.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "hw/qdev-properties.h"
#include "hw/nitro/vsock-bus.h"
#include "system/nitro-accel.h"
#include <linux/vm_sockets.h>
#include "trace.h"

OBJECT_DECLARE_SIMPLE_TYPE(NitroHeartbeat, NITRO_HEARTBEAT)

#define NITRO_HEARTBEAT_BYTE 0xB7
/* How often to retry binding a port that another launcher holds */
#define NITRO_HEARTBEAT_BIND_RETRY_MS 100

struct NitroHeartbeat {
    NitroVsockDevice parent_obj;

    /* Properties */
    uint32_t port;
    uint32_t timeout;   /* seconds, 0 for nitro-cli's rule */
    uint32_t port_wait; /* seconds */
    bool warn_only;

    int listen_fd;
    int conn_fd;
    uint64_t cid;       /* of the enclave, 0 before it starts */
    bool answered;
    int64_t bind_deadline_ms;
    QEMUTimer *bind_timer;
    QEMUTimer *timer;   /* the heartbeat's deadline */
    uint64_t wait_s;    /* the timeout in force, seconds */
};

static void nitro_heartbeat_close_conn(NitroHeartbeat *s)
{
    if (s->conn_fd >= 0) {
        qemu_set_fd_handler(s->conn_fd, NULL, NULL, NULL);
        close(s->conn_fd);
        s->conn_fd = -1;
    }
}

/* Free the port, forget the connection, stop waiting. */
static void nitro_heartbeat_close(NitroHeartbeat *s)
{
    nitro_heartbeat_close_conn(s);
    if (s->listen_fd >= 0) {
        qemu_set_fd_handler(s->listen_fd, NULL, NULL, NULL);
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    timer_del(s->timer);
    timer_del(s->bind_timer);
}

static void nitro_heartbeat_failed(NitroHeartbeat *s, const char *why)
{
    trace_nitro_heartbeat_failed(why);
    if (s->warn_only) {
        /* Keep listening: a late heartbeat is still answered */
        nitro_heartbeat_close_conn(s);
        warn_report("Nitro Enclaves: the enclave has not booted yet: %s; "
                    "still listening (warn-only=on)", why);
        return;
    }
    nitro_heartbeat_close(s);
    nitro_enclave_boot_failed(why);
}

static void nitro_heartbeat_timeout(void *opaque)
{
    NitroHeartbeat *s = opaque;
    g_autofree char *why = g_strdup_printf("no heartbeat on vsock port %u "
                                           "within %" PRIu64 " s", s->port,
                                           s->wait_s);

    nitro_heartbeat_failed(s, why);
}

static void nitro_heartbeat_read(void *opaque)
{
    NitroHeartbeat *s = opaque;
    uint8_t byte = NITRO_HEARTBEAT_BYTE;
    ssize_t n = recv(s->conn_fd, &byte, 1, 0);

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n != 1 || byte != NITRO_HEARTBEAT_BYTE) {
        g_autofree char *why = n == 1 ?
            g_strdup_printf("it sent 0x%02x instead of the heartbeat 0x%02x",
                            byte, NITRO_HEARTBEAT_BYTE) :
            g_strdup("it closed the heartbeat connection");

        nitro_heartbeat_failed(s, why);
        return;
    }
    byte = NITRO_HEARTBEAT_BYTE;
    if (send(s->conn_fd, &byte, 1, MSG_NOSIGNAL) != 1) {
        nitro_heartbeat_failed(s, "it closed the heartbeat connection");
        return;
    }
    s->answered = true;
    nitro_heartbeat_close(s);
    trace_nitro_heartbeat_answered(s->port);
}

static void nitro_heartbeat_accept(void *opaque)
{
    NitroHeartbeat *s = opaque;
    struct sockaddr_vm peer = { 0 };
    socklen_t len = sizeof(peer);
    int fd = qemu_accept(s->listen_fd, (struct sockaddr *)&peer, &len);

    if (fd < 0) {
        return;
    }
    /* Only the enclave's init says hello, once */
    if (!s->cid || peer.svm_cid != s->cid || s->conn_fd >= 0) {
        trace_nitro_heartbeat_foreign(peer.svm_cid, peer.svm_port, s->cid);
        close(fd);
        return;
    }
    if (!qemu_set_blocking(fd, false, NULL)) {
        close(fd);
        return;
    }
    s->conn_fd = fd;
    qemu_set_fd_handler(fd, nitro_heartbeat_read, NULL, s);
}

/* nitro-cli's rule: 90 s per 6 GiB of image plus 90 s per 100 GiB of RAM */
static uint64_t nitro_heartbeat_default_timeout(NitroHeartbeat *s)
{
    NitroVsockBridge *b = nitro_vsock_device_bridge(NITRO_VSOCK_DEVICE(s));

    return 90 * DIV_ROUND_UP(b->image_size, 6 * GiB) +
           90 * DIV_ROUND_UP(b->ram_size, 100 * GiB);
}

static void nitro_heartbeat_enclave_started(NitroVsockDevice *dev,
                                            uint64_t cid)
{
    NitroHeartbeat *s = NITRO_HEARTBEAT(dev);

    s->cid = cid;
    s->wait_s = s->timeout ?: nitro_heartbeat_default_timeout(s);
    trace_nitro_heartbeat_wait(cid, s->wait_s);
    timer_mod(s->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
              s->wait_s * 1000);
}

/*
 * The enclave stopped by itself: it booted if its init sent the
 * heartbeat, even if the enclave stopped before this device read it (or
 * accepted its connection).  With warn-only=on, a missing heartbeat is
 * not a boot failure.
 */
static bool nitro_heartbeat_booted(NitroVsockDevice *dev)
{
    NitroHeartbeat *s = NITRO_HEARTBEAT(dev);
    uint8_t byte = 0;

    if (s->answered || s->warn_only) {
        return true;
    }
    if (s->conn_fd < 0 && s->listen_fd >= 0) {
        nitro_heartbeat_accept(s);
    }
    return s->conn_fd >= 0 &&
           recv(s->conn_fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 1 &&
           byte == NITRO_HEARTBEAT_BYTE;
}

static void nitro_heartbeat_enclave_stopped(NitroVsockDevice *dev)
{
    nitro_heartbeat_close(NITRO_HEARTBEAT(dev));
}

static bool nitro_heartbeat_can_start(NitroVsockDevice *dev, Error **errp)
{
    NitroHeartbeat *s = NITRO_HEARTBEAT(dev);

    if (s->listen_fd < 0 && !s->answered) {
        error_setg(errp, "vsock port %u is held by another enclave "
                   "launcher: the enclave starts once it is free (waiting "
                   "up to %u s, port-wait)", s->port, s->port_wait);
        return false;
    }
    return true;
}

/* Another heartbeat device of this QEMU on the same port? */
static bool nitro_heartbeat_port_taken_here(NitroHeartbeat *s)
{
    BusChild *kid;

    QTAILQ_FOREACH(kid, &qdev_get_parent_bus(DEVICE(s))->children, sibling) {
        Object *o = OBJECT(kid->child);

        if (o != OBJECT(s) && object_dynamic_cast(o, TYPE_NITRO_HEARTBEAT) &&
            NITRO_HEARTBEAT(o)->port == s->port) {
            return true;
        }
    }
    return false;
}

/*
 * Listen on the port: returns the fd, or -1 with @errp set, or -1 with
 * *@busy set when another process holds the port.
 */
static int nitro_heartbeat_listen(NitroHeartbeat *s, bool *busy,
                                  Error **errp)
{
    ERRP_GUARD();
    struct sockaddr_vm addr = {
        .svm_family = AF_VSOCK,
        .svm_cid = VMADDR_CID_ANY,
        .svm_port = s->port,
    };
    int fd = qemu_socket(AF_VSOCK, SOCK_STREAM, 0);

    *busy = false;
    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot create a vsock socket");
        error_append_hint(errp, "Is the vsock_loopback or vhost_vsock "
                          "module loaded?\n");
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        if (errno == EADDRINUSE) {
            *busy = true;
        } else {
            error_setg_errno(errp, errno, "cannot listen on vsock port %u",
                             s->port);
        }
        close(fd);
        return -1;
    }
    if (listen(fd, 4) < 0) {
        error_setg_errno(errp, errno, "cannot listen on vsock port %u",
                         s->port);
        close(fd);
        return -1;
    }
    if (!qemu_set_blocking(fd, false, errp)) {
        close(fd);
        return -1;
    }
    trace_nitro_heartbeat_listen(s->port);
    return fd;
}

/* Retry a port that another launcher holds, until port-wait runs out. */
static void nitro_heartbeat_bind_retry(void *opaque)
{
    NitroHeartbeat *s = opaque;
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    Error *err = NULL;
    bool busy;

    s->listen_fd = nitro_heartbeat_listen(s, &busy, &err);
    if (s->listen_fd >= 0) {
        qemu_set_fd_handler(s->listen_fd, nitro_heartbeat_accept, NULL, s);
        nitro_enclave_devices_ready();
        return;
    }
    if (busy && now < s->bind_deadline_ms) {
        timer_mod(s->bind_timer, now + NITRO_HEARTBEAT_BIND_RETRY_MS);
        return;
    }
    if (busy) {
        error_setg(&err, "cannot listen on vsock port %u: another enclave "
                   "launcher kept it for more than %u s (port-wait)",
                   s->port, s->port_wait);
    }
    nitro_enclave_device_error(err);
}

static void nitro_heartbeat_realize(DeviceState *dev, Error **errp)
{
    ERRP_GUARD();
    NitroHeartbeat *s = NITRO_HEARTBEAT(dev);
    bool busy;

    if (s->port == 0 || s->port == VMADDR_PORT_ANY) {
        error_setg(errp, "nitro-heartbeat: port=%u is not a port an "
                   "enclave can connect to", s->port);
        error_append_hint(errp, "Use a vsock port from 1 to 4294967294; "
                          "enclaves' init uses 9000.\n");
        return;
    }
    if (nitro_heartbeat_port_taken_here(s)) {
        error_setg(errp, "another nitro-heartbeat already listens on vsock "
                   "port %u", s->port);
        error_append_hint(errp, "Without -nodefaults the nitro machine adds "
                          "its own nitro-heartbeat.\n");
        return;
    }
    s->timer = timer_new_ms(QEMU_CLOCK_REALTIME, nitro_heartbeat_timeout, s);
    s->bind_timer = timer_new_ms(QEMU_CLOCK_REALTIME,
                                 nitro_heartbeat_bind_retry, s);
    s->listen_fd = nitro_heartbeat_listen(s, &busy, errp);
    if (s->listen_fd >= 0) {
        qemu_set_fd_handler(s->listen_fd, nitro_heartbeat_accept, NULL, s);
        return;
    }
    if (!busy) {
        return;
    }
    warn_report("Nitro Enclaves: vsock port %u is held by another enclave "
                "launcher; the enclave starts once it is free (waiting up "
                "to %u s)", s->port, s->port_wait);
    s->bind_deadline_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                          s->port_wait * 1000LL;
    timer_mod(s->bind_timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
              NITRO_HEARTBEAT_BIND_RETRY_MS);
}

static void nitro_heartbeat_unrealize(DeviceState *dev)
{
    NitroHeartbeat *s = NITRO_HEARTBEAT(dev);

    nitro_heartbeat_close(s);
    timer_free(s->timer);
    timer_free(s->bind_timer);
}

static void nitro_heartbeat_init(Object *obj)
{
    NitroHeartbeat *s = NITRO_HEARTBEAT(obj);

    s->listen_fd = -1;
    s->conn_fd = -1;
}

static bool nitro_heartbeat_get_answered(Object *obj, Error **errp)
{
    return NITRO_HEARTBEAT(obj)->answered;
}

static const Property nitro_heartbeat_properties[] = {
    DEFINE_PROP_UINT32("port", NitroHeartbeat, port, 9000),
    DEFINE_PROP_UINT32("timeout", NitroHeartbeat, timeout, 0),
    DEFINE_PROP_UINT32("port-wait", NitroHeartbeat, port_wait, 60),
    DEFINE_PROP_BOOL("warn-only", NitroHeartbeat, warn_only, false),
};

static void nitro_heartbeat_class_init(ObjectClass *oc, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);
    NitroVsockDeviceClass *vc = NITRO_VSOCK_DEVICE_CLASS(oc);

    dc->desc = "Nitro Enclaves boot heartbeat (vsock port 9000)";
    dc->realize = nitro_heartbeat_realize;
    dc->unrealize = nitro_heartbeat_unrealize;
    dc->hotpluggable = false;
    device_class_set_props(dc, nitro_heartbeat_properties);
    object_class_property_add_bool(oc, "answered",
                                   nitro_heartbeat_get_answered, NULL);
    object_class_property_set_description(oc, "answered",
        "The enclave's init sent its heartbeat and got the answer: the "
        "enclave has booted (what nitro-cli's run-enclave waits for)");
    vc->can_start = nitro_heartbeat_can_start;
    vc->enclave_started = nitro_heartbeat_enclave_started;
    vc->enclave_stopped = nitro_heartbeat_enclave_stopped;
    vc->booted = nitro_heartbeat_booted;
}

static const TypeInfo nitro_heartbeat_info = {
    .name = TYPE_NITRO_HEARTBEAT,
    .parent = TYPE_NITRO_VSOCK_DEVICE,
    .instance_size = sizeof(NitroHeartbeat),
    .instance_init = nitro_heartbeat_init,
    .class_init = nitro_heartbeat_class_init,
};

static void nitro_heartbeat_register_types(void)
{
    type_register_static(&nitro_heartbeat_info);
}

type_init(nitro_heartbeat_register_types)
