/*
 * AWS Nitro Enclaves accelerator: the enclave's memory
 *
 * Enclave memory is the concatenation of the regions donated to the
 * driver, in donation order, and the image sits at an offset of it.  The
 * accelerator donates the machine's guest RAM (MachineState::ram: one
 * block, or a container of blocks of different huge page sizes) in RAM
 * order, and nothing else: a memory backend that the machine does not
 * map (-object memory-backend-*, for a device or unused) stays QEMU's.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "hw/boards.h"
#include "system/memory.h"
#include "system/ramblock.h"
#include "system/nitro-accel.h"
#include "nitro-driver.h"

static gint nitro_ram_addr_cmp(gconstpointer a, gconstpointer b)
{
    const MemoryRegion *ma = *(MemoryRegion * const *)a;
    const MemoryRegion *mb = *(MemoryRegion * const *)b;

    return ma->addr < mb->addr ? -1 : ma->addr > mb->addr;
}

int nitro_ram_blocks(MachineState *ms, MemoryRegion **blocks)
{
    MemoryRegion *mr;
    int n = 0;

    if (memory_region_is_ram(ms->ram)) {
        blocks[0] = ms->ram;
        return 1;
    }
    QTAILQ_FOREACH(mr, &ms->ram->subregions, subregions_link) {
        if (n < NITRO_RAM_MAX_BLOCKS) {
            blocks[n++] = mr;
        }
    }
    qsort(blocks, n, sizeof(*blocks), nitro_ram_addr_cmp);
    return n;
}

/*
 * Donate RAM block @rb in calls of at most NITRO_DONATION_MAX bytes of
 * whole pages: for each call the driver allocates arrays proportional to
 * its size, and only pages of one call can merge into one region.
 * @calls counts the calls made so far, for the driver's errors.
 */
static bool nitro_donate_block(int enclave_fd, RAMBlock *rb, unsigned *calls,
                               Error **errp)
{
    uint8_t *host = qemu_ram_get_host_addr(rb);
    uint64_t size = qemu_ram_get_used_length(rb);
    uint64_t page = qemu_ram_pagesize(rb);
    uint64_t chunk = MAX(QEMU_ALIGN_DOWN(NITRO_DONATION_MAX, page), page);
    uint64_t off;

    for (off = 0; off < size; off += chunk) {
        if (!nitro_driver_add_memory(enclave_fd, host + off,
                                     MIN(chunk, size - off), page, *calls,
                                     errp)) {
            return false;
        }
        (*calls)++;
    }
    return true;
}

bool nitro_donate_memory(int enclave_fd, MachineState *ms, Error **errp)
{
    MemoryRegion *ram[NITRO_RAM_MAX_BLOCKS];
    int nram = nitro_ram_blocks(ms, ram);
    unsigned calls = 0;
    int i;

    for (i = 0; i < nram; i++) {
        if (!nitro_donate_block(enclave_fd, ram[i]->ram_block, &calls,
                                errp)) {
            return false;
        }
    }
    return true;
}
