/*
 * AWS Nitro Enclaves: the debug console of an enclave (nitro-serial-vsock)
 *
 * An enclave started in debug mode serves its serial console (ttyS0) on
 * vsock, at the hypervisor (CID 0), port enclave CID + 10000.  Once the
 * enclave has started this device connects there without blocking,
 * retrying for connect-timeout seconds (nitro-cli gives it 20), and
 * copies the stream to a chardev (-serial, -nographic or -chardev).
 * While the chardev is not open (a socket chardev without a client) the
 * device stops reading, so the bytes wait in the vsock connection instead
 * of being lost.  When the enclave stops, the console ends (EOF); until
 * then the device is "draining" and QEMU waits for it before it exits,
 * so that every byte the enclave sent reaches the chardev.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/sockets.h"
#include "qemu/timer.h"
#include "chardev/char-fe.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "hw/nitro/vsock-bus.h"
#include <linux/vm_sockets.h>
#include "trace.h"

OBJECT_DECLARE_SIMPLE_TYPE(NitroSerialVsock, NITRO_SERIAL_VSOCK)

#define NITRO_CONSOLE_PORT_BASE 10000
/* How often to retry the connection, and to look at a closed chardev */
#define NITRO_CONSOLE_RETRY_MS 100

struct NitroSerialVsock {
    NitroVsockDevice parent_obj;

    /* Properties */
    CharFrontend chr;
    uint32_t connect_timeout;   /* seconds */

    uint32_t port;
    int fd;
    bool connecting;            /* fd: a connect in progress */
    int64_t deadline_ms;
    QEMUTimer *timer;
};

static void nitro_serial_close(NitroSerialVsock *s)
{
    if (s->fd >= 0) {
        qemu_set_fd_handler(s->fd, NULL, NULL, NULL);
        close(s->fd);
        s->fd = -1;
    }
    s->connecting = false;
}

static void nitro_serial_read(void *opaque)
{
    NitroSerialVsock *s = opaque;
    uint8_t buf[4096];
    ssize_t n;

    if (!qemu_chr_fe_backend_open(&s->chr)) {
        /* Leave the bytes in the connection until someone listens */
        qemu_set_fd_handler(s->fd, NULL, NULL, NULL);
        timer_mod(s->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                  NITRO_CONSOLE_RETRY_MS);
        return;
    }
    n = read(s->fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        trace_nitro_serial_eof(s->port);
        nitro_serial_close(s);
        return;
    }
    qemu_chr_fe_write_all(&s->chr, buf, n);
}

static void nitro_serial_connected(NitroSerialVsock *s)
{
    s->connecting = false;
    trace_nitro_serial_connected(s->port);
    qemu_set_fd_handler(s->fd, nitro_serial_read, NULL, s);
}

static void nitro_serial_retry(NitroSerialVsock *s, int err)
{
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

    trace_nitro_serial_connect_failed(s->port, err);
    nitro_serial_close(s);
    if (now >= s->deadline_ms) {
        warn_report("Nitro Enclaves: no debug console: nothing listens on "
                    "vsock (%u, %u) after %u s", NITRO_CID_HYPERVISOR,
                    s->port, s->connect_timeout);
        return;
    }
    timer_mod(s->timer, now + NITRO_CONSOLE_RETRY_MS);
}

/* The socket of a connect in progress is writable: connected, or not. */
static void nitro_serial_connect_done(void *opaque)
{
    NitroSerialVsock *s = opaque;
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        err = errno;
    }
    if (err) {
        nitro_serial_retry(s, err);
        return;
    }
    nitro_serial_connected(s);
}

static void nitro_serial_connect(NitroSerialVsock *s)
{
    struct sockaddr_vm addr = {
        .svm_family = AF_VSOCK,
        .svm_cid = NITRO_CID_HYPERVISOR,
        .svm_port = s->port,
    };

    s->fd = qemu_socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s->fd < 0 || !qemu_set_blocking(s->fd, false, NULL)) {
        nitro_serial_retry(s, errno);
        return;
    }
    if (connect(s->fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) {
        nitro_serial_connected(s);
    } else if (errno == EINPROGRESS || errno == EAGAIN) {
        s->connecting = true;
        qemu_set_fd_handler(s->fd, NULL, nitro_serial_connect_done, s);
    } else {
        nitro_serial_retry(s, errno);
    }
}

static void nitro_serial_timer(void *opaque)
{
    NitroSerialVsock *s = opaque;

    if (s->fd < 0) {
        nitro_serial_connect(s);
    } else if (qemu_chr_fe_backend_open(&s->chr)) {
        qemu_set_fd_handler(s->fd, nitro_serial_read, NULL, s);
    } else {
        /* Waiting for the chardev to open */
        timer_mod(s->timer, qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                  NITRO_CONSOLE_RETRY_MS);
    }
}

static void nitro_serial_enclave_started(NitroVsockDevice *dev, uint64_t cid)
{
    NitroSerialVsock *s = NITRO_SERIAL_VSOCK(dev);

    s->port = cid + NITRO_CONSOLE_PORT_BASE;
    s->deadline_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                     s->connect_timeout * 1000LL;
    nitro_serial_connect(s);
}

/* The enclave is gone: no new connection, but read the rest to EOF. */
static void nitro_serial_enclave_stopped(NitroVsockDevice *dev)
{
    NitroSerialVsock *s = NITRO_SERIAL_VSOCK(dev);

    if (s->fd < 0 || s->connecting) {
        nitro_serial_close(s);
        timer_del(s->timer);
    }
}

static bool nitro_serial_draining(NitroVsockDevice *dev)
{
    NitroSerialVsock *s = NITRO_SERIAL_VSOCK(dev);

    return s->fd >= 0 && !s->connecting;
}

static void nitro_serial_realize(DeviceState *dev, Error **errp)
{
    ERRP_GUARD();
    NitroSerialVsock *s = NITRO_SERIAL_VSOCK(dev);
    NitroVsockBridge *bridge;

    if (!qemu_chr_fe_backend_connected(&s->chr)) {
        error_setg(errp, "nitro-serial-vsock needs a chardev");
        error_append_hint(errp, "Use -device nitro-serial-vsock,chardev=ID "
                          "with a -chardev of that id.\n");
        return;
    }
    bridge = nitro_vsock_device_bridge(NITRO_VSOCK_DEVICE(s));
    if (!bridge->debug_mode) {
        error_setg(errp, "an enclave has a console only in debug mode");
        error_append_hint(errp, "Use -accel nitro,debug-mode=on.\n");
        return;
    }
    s->timer = timer_new_ms(QEMU_CLOCK_REALTIME, nitro_serial_timer, s);
}

static void nitro_serial_unrealize(DeviceState *dev)
{
    NitroSerialVsock *s = NITRO_SERIAL_VSOCK(dev);

    nitro_serial_close(s);
    timer_free(s->timer);
}

static void nitro_serial_init(Object *obj)
{
    NITRO_SERIAL_VSOCK(obj)->fd = -1;
}

static const Property nitro_serial_properties[] = {
    DEFINE_PROP_CHR("chardev", NitroSerialVsock, chr),
    DEFINE_PROP_UINT32("connect-timeout", NitroSerialVsock, connect_timeout,
                       20),
};

static void nitro_serial_class_init(ObjectClass *oc, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);
    NitroVsockDeviceClass *vc = NITRO_VSOCK_DEVICE_CLASS(oc);

    dc->desc = "Nitro Enclaves debug console (vsock, debug mode)";
    dc->realize = nitro_serial_realize;
    dc->unrealize = nitro_serial_unrealize;
    dc->hotpluggable = false;
    device_class_set_props(dc, nitro_serial_properties);
    vc->enclave_started = nitro_serial_enclave_started;
    vc->enclave_stopped = nitro_serial_enclave_stopped;
    vc->draining = nitro_serial_draining;
}

static const TypeInfo nitro_serial_info = {
    .name = TYPE_NITRO_SERIAL_VSOCK,
    .parent = TYPE_NITRO_VSOCK_DEVICE,
    .instance_size = sizeof(NitroSerialVsock),
    .instance_init = nitro_serial_init,
    .class_init = nitro_serial_class_init,
};

static void nitro_serial_register_types(void)
{
    type_register_static(&nitro_serial_info);
}

type_init(nitro_serial_register_types)
