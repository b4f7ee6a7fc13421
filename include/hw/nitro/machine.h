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

/* Size in bytes of the enclave image in guest RAM */
uint64_t nitro_machine_image_size(NitroMachineState *nms);

#endif
