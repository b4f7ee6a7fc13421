/*
 * AWS Nitro Enclaves: the debug console of an enclave (nitro-serial-vsock)
 *
 * An enclave started in debug mode serves its serial console (ttyS0) on
 * vsock, at the hypervisor (CID 0), port enclave CID + 10000.  Once the
 * enclave has started this device connects there without blocking,
 * retrying for connect-timeout seconds (nitro-cli gives it 20), and
 * copies the stream to a chardev (-serial, -nographic or -chardev).
 *
 * The copy never blocks QEMU: it reads from the connection only while
 * the chardev can take bytes (a socket chardev has a client; stdio, a
 * file or a pipe always, also once stdin has ended) and has taken the
 * bytes read before; a chardev that does not keep up (a stalled console
 * client) leaves the bytes waiting in the vsock connection, and a watch
 * on the chardev resumes the copy when it can take more.  No byte is
 * lost.  A null chardev never opens but takes every byte: the console is
 * read all the same, for the registry's console socket (registry.c), which
 * gets every byte read.  When the enclave stops, the console ends (EOF);
 * until then the
 * device is "draining" and QEMU waits for it before it exits, so that
 * every byte the enclave sent reaches the chardev, also from an enclave
 * that stopped before the device was connected (one last attempt).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/sockets.h"
#include "qemu/timer.h"
#include "chardev/char-fd.h"
#include "chardev/char-fe.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "hw/nitro/vsock-bus.h"
#include "system/nitro-accel.h"
#include <linux/vm_sockets.h>
#include "trace.h"

OBJECT_DECLARE_SIMPLE_TYPE(NitroSerialVsock, NITRO_SERIAL_VSOCK)

#define NITRO_CONSOLE_PORT_BASE 10000
/* How often to retry the connection */
#define NITRO_CONSOLE_RETRY_MS 100

struct NitroSerialVsock {
    NitroVsockDevice parent_obj;

    /* Properties */
    CharFrontend chr;
    uint32_t connect_timeout;   /* seconds */

    uint32_t port;
    int fd;
    bool connecting;            /* fd: a connect in progress */
    bool stopped;               /* the enclave stopped: no more retries */
    int64_t deadline_ms;
    QEMUTimer *timer;           /* the next connection attempt */

    bool chr_open;              /* the chardev's frontend is open */
    guint watch;                /* on the chardev, while it is full */
    /* Read from the connection, not yet taken by the chardev */
    uint8_t buf[4096];
    size_t buf_len;
    size_t buf_off;
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

static void nitro_serial_read(void *opaque);

/*
 * Can the chardev take bytes now?  A socket only while a client is
 * connected; a null one always; an fd one (stdio, a file, a pipe) always
 * too: when its input ends (stdin at EOF) QEMU calls it closed, but its
 * output still works.
 */
static bool nitro_serial_chr_takes(NitroSerialVsock *s)
{
    Object *chr = OBJECT(qemu_chr_fe_get_driver(&s->chr));

    return qemu_chr_fe_backend_open(&s->chr) ||
           object_dynamic_cast(chr, TYPE_CHARDEV_NULL) ||
           object_dynamic_cast(chr, TYPE_CHARDEV_FD);
}

/* Read from the connection exactly while the chardev can take bytes. */
static void nitro_serial_update_reading(NitroSerialVsock *s)
{
    bool read = s->fd >= 0 && !s->connecting && s->chr_open &&
                s->buf_off == s->buf_len && !s->watch;

    if (s->fd >= 0 && !s->connecting) {
        qemu_set_fd_handler(s->fd, read ? nitro_serial_read : NULL, NULL, s);
    }
}

static gboolean nitro_serial_chr_writable(void *do_not_use, GIOCondition cond,
                                          void *opaque);

/* Give the chardev what it takes of the pending bytes, without blocking. */
static void nitro_serial_flush(NitroSerialVsock *s)
{
    while (s->buf_off < s->buf_len) {
        int n = qemu_chr_fe_write(&s->chr, s->buf + s->buf_off,
                                  s->buf_len - s->buf_off);

        if (n <= 0) {
            break;
        }
        s->buf_off += n;
    }
    if (s->buf_off < s->buf_len && !s->watch) {
        s->watch = qemu_chr_fe_add_watch(&s->chr, G_IO_OUT | G_IO_HUP,
                                         nitro_serial_chr_writable, s);
        if (!s->watch) {
            /* A chardev that cannot say when it is writable drops them */
            trace_nitro_serial_dropped(s->port, s->buf_len - s->buf_off);
            s->buf_off = s->buf_len;
        }
    }
    if (s->buf_off == s->buf_len) {
        s->buf_off = s->buf_len = 0;
    }
    nitro_serial_update_reading(s);
}

static gboolean nitro_serial_chr_writable(void *do_not_use, GIOCondition cond,
                                          void *opaque)
{
    NitroSerialVsock *s = opaque;

    s->watch = 0;
    nitro_serial_flush(s);
    return G_SOURCE_REMOVE;
}

static void nitro_serial_read(void *opaque)
{
    NitroSerialVsock *s = opaque;
    ssize_t n = read(s->fd, s->buf, sizeof(s->buf));

    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        trace_nitro_serial_eof(s->port);
        nitro_serial_close(s);
        nitro_enclave_device_drained();
        return;
    }
    nitro_registry_console_output(s->buf, n);
    s->buf_off = 0;
    s->buf_len = n;
    nitro_serial_flush(s);
}

/*
 * An enclave's console has no input: what is typed into it is dropped
 * (taken, so that a mux still sees its escape keys, such as ^A c).
 */
static int nitro_serial_chr_can_receive(void *opaque)
{
    return 4096;
}

static void nitro_serial_chr_receive(void *opaque, const uint8_t *buf,
                                     int size)
{
}

/*
 * The chardev opened or closed: look at the backend again (a mux passes on
 * its backend's events, such as the end of stdin, while it stays open).
 */
static void nitro_serial_chr_event(void *opaque, QEMUChrEvent event)
{
    NitroSerialVsock *s = opaque;

    s->chr_open = nitro_serial_chr_takes(s);
    nitro_serial_update_reading(s);
}

static void nitro_serial_connected(NitroSerialVsock *s)
{
    s->connecting = false;
    trace_nitro_serial_connected(s->port);
    nitro_serial_update_reading(s);
}

static void nitro_serial_retry(NitroSerialVsock *s, int err)
{
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

    trace_nitro_serial_connect_failed(s->port, err);
    nitro_serial_close(s);
    if (s->stopped) {
        nitro_enclave_device_drained();
        return;
    }
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
    nitro_serial_connect(opaque);
}

static void nitro_serial_enclave_started(NitroVsockDevice *dev, uint64_t cid)
{
    NitroSerialVsock *s = NITRO_SERIAL_VSOCK(dev);

    s->port = cid + NITRO_CONSOLE_PORT_BASE;
    s->deadline_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                     s->connect_timeout * 1000LL;
    nitro_serial_connect(s);
}

/*
 * The enclave is gone: read the rest to EOF.  An enclave that stopped
 * before the device could connect keeps its console until its fd is
 * closed: one last attempt (or the one in progress) still gets it.
 */
static void nitro_serial_enclave_stopped(NitroVsockDevice *dev)
{
    NitroSerialVsock *s = NITRO_SERIAL_VSOCK(dev);

    s->stopped = true;
    if (s->port && s->fd < 0 && timer_pending(s->timer)) {
        timer_del(s->timer);
        nitro_serial_connect(s);
    }
}

static bool nitro_serial_draining(NitroVsockDevice *dev)
{
    return NITRO_SERIAL_VSOCK(dev)->fd >= 0;
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
    s->chr_open = nitro_serial_chr_takes(s);
    qemu_chr_fe_set_handlers(&s->chr, nitro_serial_chr_can_receive,
                             nitro_serial_chr_receive, nitro_serial_chr_event,
                             NULL, s, NULL, true);
}

static void nitro_serial_unrealize(DeviceState *dev)
{
    NitroSerialVsock *s = NITRO_SERIAL_VSOCK(dev);

    qemu_chr_fe_set_handlers(&s->chr, NULL, NULL, NULL, NULL, NULL, NULL,
                             true);
    if (s->watch) {
        g_source_remove(s->watch);
        s->watch = 0;
    }
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
