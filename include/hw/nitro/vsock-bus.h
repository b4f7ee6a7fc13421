/*
 * AWS Nitro Enclaves: the nitro vsock bus
 *
 * Devices that talk to the enclave over vsock (its heartbeat, its debug
 * console) sit on this bus.  The bus hands them the enclave's CID once
 * the enclave has started, through their class's enclave_started().
 * The bridge that hosts the bus is created by the nitro machine at
 * /machine/nitro-vsock, where "enclave-cid" can be read with qom-get.
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

    /*
     * The enclave runs with vsock CID @cid.  An error stops QEMU: the
     * enclave cannot be used without the device.
     */
    bool (*enclave_started)(NitroVsockDevice *dev, uint64_t cid,
                            Error **errp);
};

struct NitroVsockBridge {
    SysBusDevice parent_obj;

    NitroVsockBus bus;
    uint64_t cid;
};

/* Tell the bridge's devices that the enclave runs with vsock CID @cid. */
bool nitro_vsock_bridge_enclave_started(NitroVsockBridge *bridge,
                                        uint64_t cid, Error **errp);

#endif
