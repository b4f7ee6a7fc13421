/*
 * AWS Nitro Enclaves machine (-M nitro)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_NITRO_MACHINE_H
#define HW_NITRO_MACHINE_H

#include "hw/boards.h"
#include "qom/object.h"

#define TYPE_NITRO_MACHINE MACHINE_TYPE_NAME("nitro")
OBJECT_DECLARE_SIMPLE_TYPE(NitroMachineState, NITRO_MACHINE)

/* libvirt's view of the enclave's vCPUs (vcpus.c) */
#define TYPE_NITRO_VCPUS "nitro-vcpus"

/*
 * Create the placeholder of the enclave's vCPUs that libvirt queries
 * (x86 only), before any other device.
 */
bool nitro_vcpus_create(Error **errp);

#endif
