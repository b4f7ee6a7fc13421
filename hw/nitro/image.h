/*
 * AWS Nitro Enclaves machine: the enclave image in guest RAM
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_NITRO_IMAGE_H
#define HW_NITRO_IMAGE_H

#include "hw/core/eif.h"

/* The image that -kernel (with -initrd and -append) put in guest RAM */
typedef struct NitroImage {
    EifInfo info;
    /* -kernel is an EIF; otherwise the image was built from these */
    bool is_eif;
    EifBuildParams build;
    char **initrds;
    /* -M nitro,allow-small-memory=on: below NITRO_IMAGE_MEMORY_FACTOR */
    bool allow_small_memory;
    /* A signed EIF: its signature, verified but for its PCR0 */
    bool is_signed;
    EifSignature signature;
} NitroImage;

/* Enclave memory must be at least this many times the image size */
#define NITRO_IMAGE_MEMORY_FACTOR 4

/*
 * Put the enclave image into guest RAM at the driver's offset: read an
 * EIF -kernel there, or build one there from a Linux -kernel, -initrd
 * and -append.  The image is validated as it lands.
 */
bool nitro_image_load(MachineState *ms, NitroImage *img, Error **errp);

/* The architecture of this QEMU's enclaves */
EifArch nitro_image_arch(void);

#endif
