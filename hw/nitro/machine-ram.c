/*
 * AWS Nitro Enclaves machine: guest RAM from huge pages
 *
 * The driver only takes memory backed by huge pages, in a whole number of
 * 2 MiB units, 64 MiB at least, on the CPU pool's NUMA node.  The
 * machine's default RAM is one hugetlb memfd per page size that
 * ram-plan.c chose from the free pages of that node, bound to it before
 * it is touched.  With several, guest RAM is a container of them in RAM
 * order, and the image goes through a contiguous second mapping of them.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/syscall.h>
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/madvise.h"
#include "qemu/thread.h"
#include "qemu/units.h"
#include "qom/object_interfaces.h"
#include "hw/boards.h"
#include "hw/core/eif.h"
#include "system/hostmem.h"
#include "system/nitro-accel.h"
#include "machine-ram.h"
#include "ram-plan.h"
#include "trace.h"

/* The contiguous mapping of guest RAM made of several blocks, or NULL */
static uint8_t *nitro_ram_window;
/* mbind(2) without libnuma */
#define NITRO_MPOL_BIND 2
#define NITRO_MAX_NODES 1024

/* The driver's rules for the size of enclave memory */
static bool nitro_ram_check_size(uint64_t size, uint64_t page_size,
                                 Error **errp)
{
    ERRP_GUARD();
    g_autofree char *ssize = size_to_str(size);
    g_autofree char *psize = size_to_str(page_size);

    if (size < NITRO_MIN_MEM_SIZE) {
        error_setg(errp, "an enclave needs at least 64 MiB of RAM, not %s",
                   ssize);
        error_append_hint(errp, "Use -m 64M or more.\n");
        return false;
    }
    if (size % page_size) {
        error_setg(errp, "RAM size %s is not a multiple of the %s huge page "
                   "size", ssize, psize);
        error_append_hint(errp, "Round -m to a multiple of %s.\n", psize);
        return false;
    }
    return true;
}

/*
 * Bind @size bytes at @host to NUMA node @node before anything faults
 * them in: the loader's threads may run on any node.
 */
static bool nitro_ram_bind(void *host, uint64_t size, int node, Error **errp)
{
    unsigned long mask[NITRO_MAX_NODES / BITS_PER_LONG] = { 0 };

    if (node < 0) {
        return true;
    }
    if (node >= NITRO_MAX_NODES) {
        error_setg(errp, "NUMA node %d is beyond the %d this QEMU can bind "
                   "to", node, NITRO_MAX_NODES);
        return false;
    }
    set_bit(node, mask);
    if (syscall(SYS_mbind, host, size, NITRO_MPOL_BIND, mask,
                NITRO_MAX_NODES + 1, 0) < 0) {
        error_setg_errno(errp, errno, "cannot bind guest RAM to NUMA node "
                         "%d, the CPU pool's", node);
        return false;
    }
    trace_nitro_ram_bind(node, size);
    return true;
}

/* A hugetlb memfd backend of @size bytes of @page_size pages, as @id */
static HostMemoryBackend *nitro_ram_backend(const char *id,
                                            uint64_t page_size,
                                            uint64_t size, int node,
                                            Error **errp)
{
    g_autoptr(Object) obj = object_new(TYPE_MEMORY_BACKEND_MEMFD);
    MemoryRegion *mr;

    if (!object_property_set_bool(obj, "hugetlb", true, errp) ||
        !object_property_set_uint(obj, "hugetlbsize", page_size, errp) ||
        !object_property_set_uint(obj, "size", size, errp)) {
        return NULL;
    }
    object_property_add_child(object_get_objects_root(), id, obj);
    /* The RAM block takes the id as its name */
    if (!object_property_set_bool(obj, "x-use-canonical-path-for-ramblock-id",
                                  false, errp) ||
        !user_creatable_complete(USER_CREATABLE(obj), errp)) {
        return NULL;
    }
    mr = host_memory_backend_get_memory(MEMORY_BACKEND(obj));
    if (!nitro_ram_bind(memory_region_get_ram_ptr(mr), size, node, errp)) {
        return NULL;
    }
    return MEMORY_BACKEND(obj);
}

/*
 * Guest RAM of several blocks: the enclave's memory is their
 * concatenation in RAM order.  The image is loaded through a second,
 * contiguous mapping of the blocks (the window), so that the loader and
 * the EIF builder see one buffer.
 */
static bool nitro_ram_create_blocks(MachineState *ms, const NitroRamPlan *p,
                                    int node, Error **errp)
{
    const char *ram_id = MACHINE_GET_CLASS(ms)->default_ram_id;
    uint64_t align = p->block[0].page_size, off = 0;
    uint8_t *window;
    void *area;
    int i;

    area = mmap(NULL, ms->ram_size + align, PROT_NONE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (area == MAP_FAILED) {
        error_setg_errno(errp, errno, "cannot reserve %" PRIu64 " bytes of "
                         "address space for guest RAM", ms->ram_size);
        return false;
    }
    window = (uint8_t *)QEMU_ALIGN_PTR_UP(area, align);
    ms->ram = g_new(MemoryRegion, 1);
    memory_region_init(ms->ram, OBJECT(ms), ram_id, ms->ram_size);
    for (i = 0; i < p->nblocks; i++) {
        g_autofree char *id = g_strdup_printf("%s.%d", ram_id, i);
        HostMemoryBackend *b = nitro_ram_backend(id, p->block[i].page_size,
                                                 p->block[i].size, node,
                                                 errp);
        MemoryRegion *mr;

        if (!b) {
            return false;
        }
        mr = host_memory_backend_get_memory(b);
        host_memory_backend_set_mapped(b, true);
        memory_region_add_subregion(ms->ram, off, mr);
        /* blocks of larger pages first: each stays aligned to its pages */
        if (mmap(window + off, p->block[i].size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_FIXED, memory_region_get_fd(mr), 0) ==
            MAP_FAILED) {
            error_setg_errno(errp, errno, "cannot map guest RAM block %d",
                             i);
            return false;
        }
        if (!nitro_ram_bind(window + off, p->block[i].size, node, errp)) {
            return false;
        }
        off += p->block[i].size;
    }
    nitro_ram_window = window;
    return true;
}

bool nitro_ram_create_default(MachineState *ms, uint64_t page_size,
                              Error **errp)
{
    MachineClass *mc = MACHINE_GET_CLASS(ms);
    NitroRamPlan plan;
    HostMemoryBackend *b;
    int node = nitro_pool_node();

    if (!nitro_ram_check_size(ms->ram_size,
                              page_size ? page_size : NITRO_MEM_ALIGN, errp) ||
        !nitro_ram_plan(ms->ram_size, page_size, node, &plan, errp)) {
        return false;
    }
    if (plan.nblocks > 1) {
        return nitro_ram_create_blocks(ms, &plan, node, errp);
    }
    b = nitro_ram_backend(mc->default_ram_id, plan.block[0].page_size,
                          ms->ram_size, node, errp);
    return b && object_property_set_link(OBJECT(ms), "memory-backend",
                                         OBJECT(b), errp);
}

uint8_t *nitro_ram_host(MachineState *ms)
{
    return nitro_ram_window ? nitro_ram_window :
           memory_region_get_ram_ptr(ms->ram);
}

bool nitro_ram_check(MachineState *ms, Error **errp)
{
    ERRP_GUARD();
    MemoryRegion *blocks[NITRO_RAM_MAX_BLOCKS];
    int i, n = nitro_ram_blocks(ms, blocks);
    uint64_t page_size = 0;

    for (i = 0; i < n; i++) {
        page_size = qemu_ram_pagesize(blocks[i]->ram_block);
        if (page_size < NITRO_MEM_ALIGN || page_size % NITRO_MEM_ALIGN) {
            g_autofree char *psize = size_to_str(page_size);

            error_setg(errp, "enclave RAM must be backed by huge pages, but "
                       "the RAM backend uses %s pages", psize);
            error_append_hint(errp, "Leave RAM to the nitro machine, or give "
                              "it a memory-backend-memfd with hugetlb=on.\n");
            return false;
        }
    }
    /* the last block has the smallest pages */
    return nitro_ram_check_size(ms->ram_size, page_size, errp);
}
