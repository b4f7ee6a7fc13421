/*
 * AWS Nitro Enclaves: the nitro vsock bus, its bridge and its devices
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "hw/nitro/vsock-bus.h"
#include "trace.h"

bool nitro_vsock_bridge_enclave_started(NitroVsockBridge *bridge,
                                        uint64_t cid, Error **errp)
{
    BusChild *kid;

    bridge->cid = cid;
    QTAILQ_FOREACH(kid, &BUS(&bridge->bus)->children, sibling) {
        NitroVsockDevice *dev = NITRO_VSOCK_DEVICE(kid->child);
        NitroVsockDeviceClass *dc = NITRO_VSOCK_DEVICE_GET_CLASS(dev);

        trace_nitro_vsock_enclave_started(object_get_typename(OBJECT(dev)),
                                          cid);
        if (dc->enclave_started && !dc->enclave_started(dev, cid, errp)) {
            return false;
        }
    }
    return true;
}

static void nitro_vsock_bridge_get_cid(Object *obj, Visitor *v,
                                       const char *name, void *opaque,
                                       Error **errp)
{
    visit_type_uint64(v, name, &NITRO_VSOCK_BRIDGE(obj)->cid, errp);
}

static void nitro_vsock_bridge_init(Object *obj)
{
    NitroVsockBridge *s = NITRO_VSOCK_BRIDGE(obj);

    qbus_init(&s->bus, sizeof(s->bus), TYPE_NITRO_VSOCK_BUS, DEVICE(obj),
              "nitro-vsock.0");
}

static void nitro_vsock_bridge_class_init(ObjectClass *oc, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);

    dc->desc = "Nitro Enclaves vsock bridge";
    dc->user_creatable = false;
    object_class_property_add(oc, "enclave-cid", "uint64",
                              nitro_vsock_bridge_get_cid, NULL, NULL, NULL);
    object_class_property_set_description(oc, "enclave-cid",
        "vsock CID of the running enclave (0 before it starts)");
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
