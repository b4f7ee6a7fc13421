/*
 * AWS Nitro Enclaves accelerator: calls into /dev/nitro_enclaves
 *
 * One function per ioctl of the driver contract, each turning a failure
 * into an Error that names the cause and, in the hint, the fix.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef ACCEL_NITRO_DRIVER_H
#define ACCEL_NITRO_DRIVER_H

#define NITRO_DEVICE "/dev/nitro_enclaves"
#define NITRO_CPU_POOL "/sys/module/nitro_enclaves/parameters/ne_cpus"

/* nitro-pool.c: the pool's content, "empty" or "unreadable" */
char *nitro_cpu_pool(void);

/*
 * nitro-pool.c: the siblings of the first core that may be in the pool
 * (not core 0), as this host numbers them (e.g. "1,5" on EC2 x86), or
 * NULL if the host does not say.
 */
char *nitro_pool_example(void);

/* Open the device; returns the fd or -1 with @errp set. */
int nitro_driver_open(Error **errp);

/* NE_CREATE_VM: returns the enclave fd or -1 with @errp set. */
int nitro_driver_create_vm(int dev_fd, uint64_t *slot_uid, Error **errp);

/* NE_GET_IMAGE_LOAD_INFO for an EIF */
bool nitro_driver_image_offset(int enclave_fd, uint64_t *offset,
                               Error **errp);

/* The largest NE_SET_USER_MEMORY_REGION call: 1 GiB of whole pages */
#define NITRO_DONATION_MAX (1ULL << 30)

/*
 * NE_SET_USER_MEMORY_REGION of memory made of @page_size pages, after
 * @done successful calls.
 */
bool nitro_driver_add_memory(int enclave_fd, void *host, uint64_t size,
                             uint64_t page_size, unsigned done,
                             Error **errp);

/*
 * NE_ADD_VCPU; *cpu is 0 to let the driver choose, the CPU on return.
 * It is vCPU @nth (from 0) of the @total that the enclave asks for.
 */
bool nitro_driver_add_vcpu(int enclave_fd, uint32_t *cpu, unsigned nth,
                           unsigned total, Error **errp);

/*
 * nitro-memory.c: donate the guest RAM of @ms to the enclave, block by
 * block in RAM order, with NE_SET_USER_MEMORY_REGION.
 */
bool nitro_donate_memory(int enclave_fd, MachineState *ms, Error **errp);

/* NE_START_ENCLAVE; *cid is 0 for any, the enclave's CID on return */
bool nitro_driver_start(int enclave_fd, bool debug_mode, uint64_t *cid,
                        Error **errp);

#endif
