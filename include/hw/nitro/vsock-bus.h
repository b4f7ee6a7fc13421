/*
 * AWS Nitro Enclaves: the nitro vsock bus
 *
 * Devices that talk to the enclave over vsock (its heartbeat, its debug
 * console) sit on this bus.  The bridge that hosts the bus listens to the
 * enclave's life for them (nitro_enclave_listen): it asks them whether
 * the enclave may start, and tells them that it started with a CID, that
 * it stopped, and asks whether they still copy its bytes, through their
 * class's methods.  The devices report to the accelerator directly
 * (nitro_enclave_devices_ready, nitro_enclave_boot_failed,
 * nitro_enclave_device_error in system/nitro-accel.h).
 *
 * The nitro machine creates the bridge at /machine/nitro-vsock, where
 * "enclave-cid" can be read with qom-get, and sets the bridge's
 * properties that the devices need.
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
#define TYPE_NITRO_REGISTRY "nitro-registry"

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
     * May the enclave start?  False with @errp set if not yet; the
     * device calls nitro_enclave_devices_ready() once it may
     */
    bool (*can_start)(NitroVsockDevice *dev, Error **errp);
    /* The enclave runs with vsock CID @cid */
    void (*enclave_started)(NitroVsockDevice *dev, uint64_t cid);
    /* The enclave stopped, failed or is being terminated */
    void (*enclave_stopped)(NitroVsockDevice *dev);
    /* After enclave_stopped: true while the device still copies bytes */
    bool (*draining)(NitroVsockDevice *dev);
    /*
     * The enclave stopped by itself: false if the device was waiting
     * for a sign that it booted (its heartbeat), which it has not seen
     */
    bool (*booted)(NitroVsockDevice *dev);
};

struct NitroVsockBridge {
    SysBusDevice parent_obj;

    NitroVsockBus bus;

    /* Properties, set by the machine for the devices */
    bool debug_mode;
    uint64_t image_size;
    uint64_t ram_size;
    /* Another process answers the heartbeat: none needed on the bus */
    bool external_heartbeat;
};

/*
 * The console device passes what the enclave's console says to the
 * registry (registry.c), for the clients of its console socket.
 */
void nitro_registry_console_output(const uint8_t *buf, size_t len);

/* For the devices: the bridge of their bus */
NitroVsockBridge *nitro_vsock_device_bridge(NitroVsockDevice *dev);

#endif
