/*
 * AWS Nitro Enclaves: the nitro vsock bus, its bridge and its devices
 *
 * The bridge is the accelerator's listener of the enclave's life: it
 * passes each event on to the devices of its bus.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "hw/nitro/vsock-bus.h"
#include "hw/qdev-properties.h"
#include "system/nitro-accel.h"
#include "trace.h"

#define NITRO_VSOCK_FOREACH(bridge, dev, dc)                                \
    for (BusChild *kid_ = QTAILQ_FIRST(&BUS(&(bridge)->bus)->children);     \
         kid_ && ((dev) = NITRO_VSOCK_DEVICE(kid_->child),                  \
                  (dc) = NITRO_VSOCK_DEVICE_GET_CLASS(dev), true);          \
         kid_ = QTAILQ_NEXT(kid_, sibling))

/* Has the bus a device of type @typename? */
static bool nitro_vsock_bridge_has(NitroVsockBridge *bridge,
                                   const char *typename)
{
    BusChild *kid;

    QTAILQ_FOREACH(kid, &BUS(&bridge->bus)->children, sibling) {
        if (object_dynamic_cast(OBJECT(kid->child), typename)) {
            return true;
        }
    }
    return false;
}

/* -nodefaults (libvirt always passes it) drops the default heartbeat */
static bool nitro_vsock_bridge_prepare(void *opaque, Error **errp)
{
    ERRP_GUARD();
    NitroVsockBridge *bridge = opaque;

    if (!bridge->external_heartbeat &&
        !nitro_vsock_bridge_has(bridge, TYPE_NITRO_HEARTBEAT)) {
        error_setg(errp, "no nitro-heartbeat device: nothing would answer "
                   "the enclave's heartbeat, and it would panic at boot");
        error_append_hint(errp, "Add -device nitro-heartbeat (with libvirt, "
                          "in <qemu:commandline>), or -M nitro,"
                          "external-heartbeat=on if another process "
                          "answers it.\n");
        return false;
    }
    return true;
}

static bool nitro_vsock_bridge_can_start(void *opaque, Error **errp)
{
    NitroVsockBridge *bridge = opaque;
    NitroVsockDevice *dev;
    NitroVsockDeviceClass *dc;

    NITRO_VSOCK_FOREACH(bridge, dev, dc) {
        if (dc->can_start && !dc->can_start(dev, errp)) {
            return false;
        }
    }
    return true;
}

static void nitro_vsock_bridge_started(void *opaque, uint64_t cid)
{
    NitroVsockBridge *bridge = opaque;
    NitroVsockDevice *dev;
    NitroVsockDeviceClass *dc;

    NITRO_VSOCK_FOREACH(bridge, dev, dc) {
        trace_nitro_vsock_enclave_started(object_get_typename(OBJECT(dev)),
                                          cid);
        if (dc->enclave_started) {
            dc->enclave_started(dev, cid);
        }
    }
}

static void nitro_vsock_bridge_stopped(void *opaque)
{
    NitroVsockBridge *bridge = opaque;
    NitroVsockDevice *dev;
    NitroVsockDeviceClass *dc;

    NITRO_VSOCK_FOREACH(bridge, dev, dc) {
        if (dc->enclave_stopped) {
            dc->enclave_stopped(dev);
        }
    }
}

static bool nitro_vsock_bridge_draining(void *opaque)
{
    NitroVsockBridge *bridge = opaque;
    NitroVsockDevice *dev;
    NitroVsockDeviceClass *dc;

    NITRO_VSOCK_FOREACH(bridge, dev, dc) {
        if (dc->draining && dc->draining(dev)) {
            return true;
        }
    }
    return false;
}

static bool nitro_vsock_bridge_booted(void *opaque)
{
    NitroVsockBridge *bridge = opaque;
    NitroVsockDevice *dev;
    NitroVsockDeviceClass *dc;

    NITRO_VSOCK_FOREACH(bridge, dev, dc) {
        if (dc->booted && !dc->booted(dev)) {
            return false;
        }
    }
    return true;
}

static const NitroEnclaveListener nitro_vsock_bridge_listener = {
    .prepare = nitro_vsock_bridge_prepare,
    .can_start = nitro_vsock_bridge_can_start,
    .started = nitro_vsock_bridge_started,
    .stopped = nitro_vsock_bridge_stopped,
    .draining = nitro_vsock_bridge_draining,
    .booted = nitro_vsock_bridge_booted,
};

NitroVsockBridge *nitro_vsock_device_bridge(NitroVsockDevice *dev)
{
    return NITRO_VSOCK_BRIDGE(qdev_get_parent_bus(DEVICE(dev))->parent);
}

/* The CID has one owner, the accelerator: the bridge shows it. */
static void nitro_vsock_bridge_get_cid(Object *obj, Visitor *v,
                                       const char *name, void *opaque,
                                       Error **errp)
{
    uint64_t cid = nitro_enclave_cid();

    visit_type_uint64(v, name, &cid, errp);
}

static void nitro_vsock_bridge_realize(DeviceState *dev, Error **errp)
{
    if (!nitro_enabled()) {
        error_setg(errp, "the nitro vsock bridge needs -accel nitro");
        return;
    }
    nitro_enclave_listen(&nitro_vsock_bridge_listener, dev);
}

static void nitro_vsock_bridge_unrealize(DeviceState *dev)
{
    nitro_enclave_listen(NULL, NULL);
}

static void nitro_vsock_bridge_init(Object *obj)
{
    NitroVsockBridge *s = NITRO_VSOCK_BRIDGE(obj);

    qbus_init(&s->bus, sizeof(s->bus), TYPE_NITRO_VSOCK_BUS, DEVICE(obj),
              "nitro-vsock.0");
}

static const Property nitro_vsock_bridge_properties[] = {
    DEFINE_PROP_BOOL("debug-mode", NitroVsockBridge, debug_mode, false),
    DEFINE_PROP_UINT64("image-size", NitroVsockBridge, image_size, 0),
    DEFINE_PROP_UINT64("ram-size", NitroVsockBridge, ram_size, 0),
    DEFINE_PROP_BOOL("external-heartbeat", NitroVsockBridge,
                     external_heartbeat, false),
};

static void nitro_vsock_bridge_class_init(ObjectClass *oc, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);

    dc->desc = "Nitro Enclaves vsock bridge";
    dc->realize = nitro_vsock_bridge_realize;
    /* It is the enclave's link to its devices until QEMU ends */
    dc->hotpluggable = false;
    dc->unrealize = nitro_vsock_bridge_unrealize;
    dc->user_creatable = false;
    device_class_set_props(dc, nitro_vsock_bridge_properties);
    object_class_property_add(oc, "enclave-cid", "uint64",
                              nitro_vsock_bridge_get_cid, NULL, NULL, NULL);
    object_class_property_set_description(oc, "enclave-cid",
        "vsock CID of the enclave once it has started (0 before)");
}

static void nitro_vsock_device_class_init(ObjectClass *oc, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);

    dc->bus_type = TYPE_NITRO_VSOCK_BUS;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo nitro_vsock_types[] = {
    {
        .name = TYPE_NITRO_VSOCK_BUS,
        .parent = TYPE_BUS,
        .instance_size = sizeof(NitroVsockBus),
    }, {
        .name = TYPE_NITRO_VSOCK_DEVICE,
        .parent = TYPE_DEVICE,
        .instance_size = sizeof(NitroVsockDevice),
        .class_size = sizeof(NitroVsockDeviceClass),
        .class_init = nitro_vsock_device_class_init,
        .abstract = true,
    }, {
        .name = TYPE_NITRO_VSOCK_BRIDGE,
        .parent = TYPE_SYS_BUS_DEVICE,
        .instance_size = sizeof(NitroVsockBridge),
        .instance_init = nitro_vsock_bridge_init,
        .class_init = nitro_vsock_bridge_class_init,
    },
};

DEFINE_TYPES(nitro_vsock_types)
