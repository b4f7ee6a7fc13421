/*
 * AWS Nitro Enclaves: the nitro vsock bus, its bridge and its devices
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

void nitro_vsock_bridge_set_ops(NitroVsockBridge *bridge,
                                const NitroVsockBridgeOps *ops, void *opaque)
{
    bridge->ops = ops;
    bridge->ops_opaque = opaque;
}

#define NITRO_VSOCK_FOREACH(bridge, dev, dc)                                \
    for (BusChild *kid_ = QTAILQ_FIRST(&BUS(&(bridge)->bus)->children);     \
         kid_ && ((dev) = NITRO_VSOCK_DEVICE(kid_->child),                  \
                  (dc) = NITRO_VSOCK_DEVICE_GET_CLASS(dev), true);          \
         kid_ = QTAILQ_NEXT(kid_, sibling))

bool nitro_vsock_bridge_ready(NitroVsockBridge *bridge, Error **errp)
{
    NitroVsockDevice *dev;
    NitroVsockDeviceClass *dc;

    NITRO_VSOCK_FOREACH(bridge, dev, dc) {
        if (dc->ready && !dc->ready(dev, errp)) {
            return false;
        }
    }
    return true;
}

void nitro_vsock_bridge_enclave_started(NitroVsockBridge *bridge,
                                        uint64_t cid)
{
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

void nitro_vsock_bridge_enclave_stopped(NitroVsockBridge *bridge)
{
    NitroVsockDevice *dev;
    NitroVsockDeviceClass *dc;

    NITRO_VSOCK_FOREACH(bridge, dev, dc) {
        if (dc->enclave_stopped) {
            dc->enclave_stopped(dev);
        }
    }
}

bool nitro_vsock_bridge_draining(NitroVsockBridge *bridge)
{
    NitroVsockDevice *dev;
    NitroVsockDeviceClass *dc;

    NITRO_VSOCK_FOREACH(bridge, dev, dc) {
        if (dc->draining && dc->draining(dev)) {
            return true;
        }
    }
    return false;
}

bool nitro_vsock_bridge_has(NitroVsockBridge *bridge, const char *typename)
{
    BusChild *kid;

    QTAILQ_FOREACH(kid, &BUS(&bridge->bus)->children, sibling) {
        if (object_dynamic_cast(OBJECT(kid->child), typename)) {
            return true;
        }
    }
    return false;
}

NitroVsockBridge *nitro_vsock_device_bridge(NitroVsockDevice *dev)
{
    return NITRO_VSOCK_BRIDGE(qdev_get_parent_bus(DEVICE(dev))->parent);
}

void nitro_vsock_device_ready(NitroVsockDevice *dev)
{
    NitroVsockBridge *bridge = nitro_vsock_device_bridge(dev);

    bridge->ops->ready(bridge->ops_opaque);
}

void nitro_vsock_device_failed(NitroVsockDevice *dev, const char *why)
{
    NitroVsockBridge *bridge = nitro_vsock_device_bridge(dev);

    bridge->ops->failed(bridge->ops_opaque, why);
}

void nitro_vsock_device_error(NitroVsockDevice *dev, Error *err)
{
    NitroVsockBridge *bridge = nitro_vsock_device_bridge(dev);

    bridge->ops->error(bridge->ops_opaque, err);
}

/* The CID has one owner, the accelerator: the bridge shows it. */
static void nitro_vsock_bridge_get_cid(Object *obj, Visitor *v,
                                       const char *name, void *opaque,
                                       Error **errp)
{
    uint64_t cid = nitro_enclave_cid();

    visit_type_uint64(v, name, &cid, errp);
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
};

static void nitro_vsock_bridge_class_init(ObjectClass *oc, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);

    dc->desc = "Nitro Enclaves vsock bridge";
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
