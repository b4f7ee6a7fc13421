/*
 * AWS Nitro Enclaves: answer the enclave's boot heartbeat (nitro-heartbeat)
 *
 * Right after boot, the enclave's init connects to the parent (CID 3) on
 * vsock port 9000, sends 0xB7 and requires 0xB7 back; it does not retry,
 * and without an answer the enclave panics.  This device listens on the
 * port from before the enclave starts (it is realized with the machine),
 * answers once and frees the port.  If no heartbeat arrives in time it
 * reports that the enclave failed to boot and shuts QEMU down with exit
 * status 1 (or only warns, with warn-only=on).
 *
 * Only one process can hold the port: a launcher that holds it is waited
 * for, up to port-wait seconds.
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
#include "hw/boards.h"
#include "hw/qdev-properties.h"
#include "hw/nitro/machine.h"
#include "hw/nitro/vsock-bus.h"
#include "system/runstate.h"
#include <linux/vm_sockets.h>
#include "trace.h"

#define TYPE_NITRO_HEARTBEAT "nitro-heartbeat"
OBJECT_DECLARE_SIMPLE_TYPE(NitroHeartbeat, NITRO_HEARTBEAT)

#define NITRO_HEARTBEAT_BYTE 0xB7

struct NitroHeartbeat {
    NitroVsockDevice parent_obj;

    /* Properties */
    uint32_t port;
    uint32_t timeout;   /* seconds, 0 for nitro-cli's rule */
    uint32_t port_wait; /* seconds */
    bool warn_only;

    int listen_fd;
    int conn_fd;
    QEMUTimer *timer;
    uint64_t wait_s;    /* the timeout in force, seconds */
};

/* Free the port and forget the connection. */
static void nitro_heartbeat_close(NitroHeartbeat *s)
{
    if (s->conn_fd >= 0) {
        qemu_set_fd_handler(s->conn_fd, NULL, NULL, NULL);
        close(s->conn_fd);
        s->conn_fd = -1;
    }
    if (s->listen_fd >= 0) {
        qemu_set_fd_handler(s->listen_fd, NULL, NULL, NULL);
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    timer_del(s->timer);
}

static void nitro_heartbeat_failed(NitroHeartbeat *s, const char *why)
{
    nitro_heartbeat_close(s);
    trace_nitro_heartbeat_failed(why);
    if (s->warn_only) {
        warn_report("Nitro Enclaves: the enclave did not boot: %s", why);
        return;
    }
    error_report("Nitro Enclaves: the enclave did not boot: %s", why);
    qemu_system_shutdown_request_with_code(SHUTDOWN_CAUSE_GUEST_PANIC, 1);
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
    nitro_heartbeat_close(s);
    trace_nitro_heartbeat_answered(s->port);
}

static void nitro_heartbeat_accept(void *opaque)
{
    NitroHeartbeat *s = opaque;
    int fd = qemu_accept(s->listen_fd, NULL, NULL);

    if (fd < 0) {
        return;
    }
    if (s->conn_fd >= 0) {
        /* Only the enclave's init says hello, once */
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
static uint64_t nitro_heartbeat_default_timeout(void)
{
    MachineState *ms = MACHINE(qdev_get_machine());
    uint64_t image = nitro_machine_image_size(NITRO_MACHINE(ms));

    return 90 * DIV_ROUND_UP(image, 6 * GiB) +
           90 * DIV_ROUND_UP(ms->ram_size, 100 * GiB);
}

static bool nitro_heartbeat_enclave_started(NitroVsockDevice *dev,
                                            uint64_t cid, Error **errp)
{
    NitroHeartbeat *s = NITRO_HEARTBEAT(dev);

    s->wait_s = s->timeout ?: nitro_heartbeat_default_timeout();
    trace_nitro_heartbeat_wait(cid, s->wait_s);
    timer_mod(s->timer, qemu_clock_get_ns(QEMU_CLOCK_HOST) +
              s->wait_s * NANOSECONDS_PER_SECOND);
    return true;
}

/* Another heartbeat device of this QEMU on the same port? */
static bool nitro_heartbeat_port_taken_here(NitroHeartbeat *s)
{
    BusChild *kid;

    QTAILQ_FOREACH(kid, &qdev_get_parent_bus(DEVICE(s))->children, sibling) {
        Object *o = OBJECT(kid->child);

        if (o != OBJECT(s) && object_dynamic_cast(o, TYPE_NITRO_HEARTBEAT) &&
            NITRO_HEARTBEAT(o)->port == s->port &&
            NITRO_HEARTBEAT(o)->listen_fd >= 0) {
            return true;
        }
    }
    return false;
}

/* Bind the port, waiting for another launcher that holds it. */
static int nitro_heartbeat_listen(NitroHeartbeat *s, Error **errp)
{
    struct sockaddr_vm addr = {
        .svm_family = AF_VSOCK,
        .svm_cid = VMADDR_CID_ANY,
        .svm_port = s->port,
    };
    int64_t deadline = g_get_monotonic_time() +
                       (int64_t)s->port_wait * G_USEC_PER_SEC;
    bool warned = false;
    int fd = qemu_socket(AF_VSOCK, SOCK_STREAM, 0);

    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot create a vsock socket");
        error_append_hint(errp, "Is the vsock_loopback or vhost_vsock "
                          "module loaded?\n");
        return -1;
    }
    while (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        if (errno != EADDRINUSE || g_get_monotonic_time() >= deadline) {
            error_setg_errno(errp, errno, "cannot listen on vsock port %u",
                             s->port);
            if (errno == EADDRINUSE) {
                error_append_hint(errp, "Another enclave launcher kept the "
                                  "port for more than %u s (port-wait).\n",
                                  s->port_wait);
            }
            close(fd);
            return -1;
        }
        if (!warned) {
            warn_report("Nitro Enclaves: vsock port %u is held by another "
                        "enclave launcher; waiting up to %u s for it",
                        s->port, s->port_wait);
            warned = true;
        }
        g_usleep(100 * 1000);
    }
    if (listen(fd, 1) < 0) {
        error_setg_errno(errp, errno, "cannot listen on vsock port %u",
                         s->port);
        close(fd);
        return -1;
    }
    if (!qemu_set_blocking(fd, false, errp)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void nitro_heartbeat_realize(DeviceState *dev, Error **errp)
{
    NitroHeartbeat *s = NITRO_HEARTBEAT(dev);

    if (nitro_heartbeat_port_taken_here(s)) {
        error_setg(errp, "another nitro-heartbeat already listens on vsock "
                   "port %u", s->port);
        error_append_hint(errp, "Without -nodefaults the nitro machine adds "
                          "its own nitro-heartbeat.\n");
        return;
    }
    s->listen_fd = nitro_heartbeat_listen(s, errp);
    if (s->listen_fd < 0) {
        return;
    }
    qemu_set_fd_handler(s->listen_fd, nitro_heartbeat_accept, NULL, s);
    s->timer = timer_new_ns(QEMU_CLOCK_HOST, nitro_heartbeat_timeout, s);
    trace_nitro_heartbeat_listen(s->port);
}

static void nitro_heartbeat_unrealize(DeviceState *dev)
{
    NitroHeartbeat *s = NITRO_HEARTBEAT(dev);

    nitro_heartbeat_close(s);
    timer_free(s->timer);
}

static void nitro_heartbeat_init(Object *obj)
{
    NitroHeartbeat *s = NITRO_HEARTBEAT(obj);

    s->listen_fd = -1;
    s->conn_fd = -1;
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
    vc->enclave_started = nitro_heartbeat_enclave_started;
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
