/*
 * AWS Nitro Enclaves: the nitro vsock bus
 *
 * Devices that talk to the enclave over vsock (its heartbeat, its debug
 * console) sit on this bus.  The bus tells them about the enclave's life
 * through their class's methods (is the device ready for the enclave to
 * start, the enclave started with a CID, it stopped, is the device still
 * copying its bytes), and carries what they report up to the bridge's
 * owner, the nitro machine (ready now, the enclave failed to boot, an
 * error).  The bridge that hosts the bus is created by the nitro machine
 * at /machine/nitro-vsock, where "enclave-cid" can be read with qom-get;
 * the machine sets the bridge's properties that the devices need.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_NITRO_VSOCK_BUS_H
#define HW_NITRO_VSOCK_BUS_H

#include "hw/qdev-core.h"
#include "hw/sysbus.h"
#include "qom/object.h"

#define TYPE_NITRO_VSOCK_BUS "nitro-vsock-bus"
OBJECT_DECLARE_SIMPLE_TYPE(NitroVsockBus, NITRO_VSOCK_BUS)

#define TYPE_NITRO_VSOCK_DEVICE "nitro-vsock-device"
OBJECT_DECLARE_TYPE(NitroVsockDevice, NitroVsockDeviceClass,
                    NITRO_VSOCK_DEVICE)

#define TYPE_NITRO_VSOCK_BRIDGE "nitro-vsock-bridge"
OBJECT_DECLARE_SIMPLE_TYPE(NitroVsockBridge, NITRO_VSOCK_BRIDGE)

#define TYPE_NITRO_HEARTBEAT "nitro-heartbeat"
#define TYPE_NITRO_SERIAL_VSOCK "nitro-serial-vsock"

/* Where the machine puts the bridge */
#define NITRO_VSOCK_BRIDGE_PATH "/machine/nitro-vsock"

/* vsock CIDs of the hypervisor and of the parent instance */
#define NITRO_CID_HYPERVISOR 0
#define NITRO_CID_PARENT 3

struct NitroVsockBus {
    BusState parent_obj;
};

struct NitroVsockDevice {
    DeviceState parent_obj;
};

struct NitroVsockDeviceClass {
    DeviceClass parent_class;

    /* May the enclave start?  False with @errp set if not yet */
    bool (*ready)(NitroVsockDevice *dev, Error **errp);
    /* The enclave runs with vsock CID @cid */
    void (*enclave_started)(NitroVsockDevice *dev, uint64_t cid);
    /* The enclave stopped, failed or is being terminated */
    void (*enclave_stopped)(NitroVsockDevice *dev);
    /* After enclave_stopped: true while the device still copies bytes */
    bool (*draining)(NitroVsockDevice *dev);
};

/* What the devices report, handled by the bridge's owner */
typedef struct NitroVsockBridgeOps {
    /* A device that was not ready is now */
    void (*ready)(void *opaque);
    /* The enclave did not boot */
    void (*failed)(void *opaque, const char *why);
    /* A device cannot go on: QEMU must stop */
    void (*error)(void *opaque, Error *err);
} NitroVsockBridgeOps;

struct NitroVsockBridge {
    SysBusDevice parent_obj;

    NitroVsockBus bus;

    /* Properties, set by the machine for the devices */
    bool debug_mode;
    uint64_t image_size;
    uint64_t ram_size;

    const NitroVsockBridgeOps *ops;
    void *ops_opaque;
};

void nitro_vsock_bridge_set_ops(NitroVsockBridge *bridge,
                                const NitroVsockBridgeOps *ops, void *opaque);

/* Calls into the devices, for the machine */
bool nitro_vsock_bridge_ready(NitroVsockBridge *bridge, Error **errp);
void nitro_vsock_bridge_enclave_started(NitroVsockBridge *bridge,
                                        uint64_t cid);
void nitro_vsock_bridge_enclave_stopped(NitroVsockBridge *bridge);
bool nitro_vsock_bridge_draining(NitroVsockBridge *bridge);
/* Has the bus a device of type @typename? */
bool nitro_vsock_bridge_has(NitroVsockBridge *bridge, const char *typename);

/* For the devices: the bridge of their bus, and their reports */
NitroVsockBridge *nitro_vsock_device_bridge(NitroVsockDevice *dev);
void nitro_vsock_device_ready(NitroVsockDevice *dev);
void nitro_vsock_device_failed(NitroVsockDevice *dev, const char *why);
void nitro_vsock_device_error(NitroVsockDevice *dev, Error *err);

#endif
