/*
 * AWS Nitro Enclaves machine: guest RAM from huge pages
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_NITRO_MACHINE_RAM_H
#define HW_NITRO_MACHINE_RAM_H

#include "qemu/thread.h"

/*
 * Create the default RAM: hugetlb memfds of @page_size pages (0: the
 * largest free pages first, mixing sizes when needed), after checking
 * that the host has them free on the CPU pool's node, and bound to it.
 */
bool nitro_ram_create_default(MachineState *ms, uint64_t page_size,
                              Error **errp);

/* Guest RAM as one buffer: the concatenation of its blocks in RAM order */
uint8_t *nitro_ram_host(MachineState *ms);

/* Check RAM (default or -machine memory-backend=) for the driver's rules. */
bool nitro_ram_check(MachineState *ms, Error **errp);

/*
 * Read @size bytes of @fd from offset 0 into guest RAM at @dst, on as
 * many threads as cores (up to a few), each faulting in its own pages,
 * and return in @crc the CRC-32 of the bytes from offset @crc_from on,
 * computed as they arrive.
 */
bool nitro_ram_load_file(void *dst, int fd, uint64_t size,
                         uint64_t crc_from, uint32_t *crc, Error **errp);

/*
 * Fault in guest RAM ahead of a sequential writer, on another thread: the
 * kernel clears each huge page on its first touch, which otherwise costs
 * the writer as much as copying the image.
 */
typedef struct NitroRamPopulate {
    QemuThread thread;
    uint8_t *start;
    uint64_t size;
} NitroRamPopulate;

/* Start faulting in the @size bytes of guest RAM at @start. */
void nitro_ram_populate_start(NitroRamPopulate *pop, void *start,
                              uint64_t size);

/* Wait for nitro_ram_populate_start()'s thread. */
void nitro_ram_populate_wait(NitroRamPopulate *pop);

#endif
