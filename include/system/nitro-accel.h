/*
 * AWS Nitro Enclaves accelerator: the interface of -accel nitro for the
 * nitro machine
 *
 * The accelerator owns the enclave: the slot of /dev/nitro_enclaves, the
 * requested and the actual CID, and the enclave's state, which follows
 * QEMU's run state.  It prepares the enclave when the machine is complete
 * (guest RAM and vCPUs donated, image loaded by the machine), starts it
 * when the guest first runs (at start-up, or at "cont" after -S), and
 * refuses what an enclave cannot do (pause, reset, migrate, be read).
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

#define TYPE_NITRO_ACCEL ACCEL_CLASS_NAME("nitro")

/* The smallest enclave the driver accepts */
#define NITRO_MIN_MEM_SIZE      (64 * MiB)
/* Memory regions are donated in multiples of this */
#define NITRO_MEM_ALIGN         (2 * MiB)

/**
 * nitro_pool_node:
 *
 * The driver takes only memory on the NUMA node of its CPU pool (which
 * it keeps on one node).
 *
 * Returns: that node, -1 if unknown (no pool, or no NUMA information).
 */
int nitro_pool_node(void);

/* Guest RAM is made of at most this many blocks */
#define NITRO_RAM_MAX_BLOCKS    16

/**
 * nitro_ram_blocks:
 * @ms: the machine
 * @blocks: where to put them, NITRO_RAM_MAX_BLOCKS at most
 *
 * The machine's guest RAM (MachineState::ram) is one block, or a
 * container of several blocks (of different huge page sizes): enclave
 * memory is their concatenation in RAM order.
 *
 * Returns: the number of blocks, put in @blocks in RAM order.
 */
int nitro_ram_blocks(MachineState *ms, MemoryRegion **blocks);

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
 * Returns: the vsock CID of the enclave once it has started (it stays
 * readable after the enclave stopped), 0 before.  The CID that the user
 * asked for is the accelerator's property requested-cid.
 */
uint64_t nitro_enclave_cid(void);

/**
 * nitro_enclave_slot_uid:
 *
 * Returns: the driver's unique ID of the enclave slot (NE_CREATE_VM), of
 * which nitro-cli makes the enclave ID; 0 without the accelerator.
 */
uint64_t nitro_enclave_slot_uid(void);

/**
 * nitro_enclave_cpus:
 * @n: set to the number of vCPUs
 *
 * Returns: the host CPUs that the driver gave the enclave, once it is
 * prepared (@n is 0 before).
 */
const uint32_t *nitro_enclave_cpus(unsigned *n);

/**
 * nitro_enclave_state:
 *
 * Returns: where the enclave is in its life: "created" (nothing donated
 * yet), "prepared" (ready to start), "running", "stopping" (it stopped or
 * failed: QEMU terminates it and copies the rest of its console before
 * it reports the end) or "stopped"; "none" without the accelerator.
 */
const char *nitro_enclave_state(void);

/**
 * nitro_debug_mode:
 *
 * Returns: whether the enclave is (to be) started in debug mode.
 */
bool nitro_debug_mode(void);

/**
 * NitroEnclaveListener:
 * What the accelerator tells, and asks, the devices that talk to the
 * enclave (the nitro vsock bridge registers itself) along its life.
 *
 * @prepare: the machine is complete; check that the enclave can start
 * (false with @errp set stops QEMU at start-up)
 * @can_start: may the enclave start now?  False with @errp set if not
 * yet; the listener calls nitro_enclave_devices_ready() once it may
 * @started: the enclave runs with vsock CID @cid
 * @stopped: the enclave has stopped, failed or is being terminated
 * @draining: the enclave has stopped; true while its console still has
 * bytes to copy, which QEMU waits for (a bounded time) before it exits
 * @booted: the enclave stopped by itself: had it booted (its heartbeat
 * was received)?  An enclave that stops before is a boot failure
 */
typedef struct NitroEnclaveListener {
    bool (*prepare)(void *opaque, Error **errp);
    bool (*can_start)(void *opaque, Error **errp);
    void (*started)(void *opaque, uint64_t cid);
    void (*stopped)(void *opaque);
    bool (*draining)(void *opaque);
    bool (*booted)(void *opaque);
} NitroEnclaveListener;

/**
 * nitro_enclave_listen:
 * @l: what to call, or NULL to stop listening
 * @opaque: its argument
 *
 * Register the one listener of the enclave's life.
 */
void nitro_enclave_listen(const NitroEnclaveListener *l, void *opaque);

/*
 * What the devices that talk to the enclave report to the accelerator
 */

/**
 * nitro_enclave_devices_ready:
 *
 * The devices that could not let the enclave start (can_start failed)
 * now can: if QEMU waits to start it, start it.
 */
void nitro_enclave_devices_ready(void);

/**
 * nitro_enclave_boot_failed:
 * @why: what went wrong, for the error message
 *
 * The enclave did not boot (its heartbeat failed): give it a moment to
 * stop by itself, terminate it, copy the rest of its console, then
 * report a guest panic (GUEST_PANICKED event, exit status 1).
 */
void nitro_enclave_boot_failed(const char *why);

/**
 * nitro_enclave_device_drained:
 *
 * A device that was draining (NitroEnclaveListener::draining) has copied
 * all it had: if QEMU waits for the end of a stopped enclave, it looks
 * again.
 */
void nitro_enclave_device_drained(void);

/**
 * nitro_enclave_device_error:
 * @err: what went wrong (freed)
 *
 * A device that the enclave needs cannot go on: report @err and end
 * QEMU with exit status 1.
 */
void nitro_enclave_device_error(Error *err);

#endif
