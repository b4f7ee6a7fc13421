/*
 * AWS Nitro Enclaves accelerator: the interface of -accel nitro for the
 * nitro machine and its devices
 *
 * The accelerator owns the enclave slot of /dev/nitro_enclaves: it opens
 * the device when the machine is set up, donates guest RAM and vCPUs and
 * starts the enclave once the machine is complete.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef SYSTEM_NITRO_ACCEL_H
#define SYSTEM_NITRO_ACCEL_H

#include "qemu/units.h"

#ifdef COMPILING_PER_TARGET
# ifdef CONFIG_NITRO
#  define CONFIG_NITRO_IS_POSSIBLE
# endif
#else
# define CONFIG_NITRO_IS_POSSIBLE
#endif

#ifdef CONFIG_NITRO_IS_POSSIBLE
extern bool nitro_allowed;
#define nitro_enabled() (nitro_allowed)
#else
#define nitro_enabled() 0
#endif

/* The smallest enclave the driver accepts */
#define NITRO_MIN_MEM_SIZE      (64 * MiB)
/* Memory regions are donated in multiples of this */
#define NITRO_MEM_ALIGN         (2 * MiB)

/**
 * nitro_image_offset:
 *
 * Returns: where the driver wants the EIF in enclave memory (the
 * concatenation of the guest RAM blocks, main RAM first), as asked with
 * NE_GET_IMAGE_LOAD_INFO when the accelerator was initialised.
 */
uint64_t nitro_image_offset(void);

/**
 * nitro_enclave_cid:
 *
 * Returns: the vsock CID of the running enclave, 0 before it started.
 */
uint64_t nitro_enclave_cid(void);

/**
 * NitroStartedFunc:
 * @cid: the vsock CID of the enclave, which now runs
 * @opaque: the pointer given to nitro_set_started_handler()
 * @errp: pointer to a NULL-initialized error object
 *
 * Returns: true on success; false with @errp set stops QEMU.
 */
typedef bool NitroStartedFunc(uint64_t cid, void *opaque, Error **errp);

/**
 * nitro_set_started_handler:
 *
 * Have @fn called once the enclave has started (the machine uses it to
 * hand the CID to its vsock devices).
 */
void nitro_set_started_handler(NitroStartedFunc *fn, void *opaque);

/**
 * nitro_debug_mode:
 *
 * Returns: whether the enclave is (to be) started in debug mode.
 */
bool nitro_debug_mode(void);

#endif
