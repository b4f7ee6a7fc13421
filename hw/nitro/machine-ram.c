/*
 * AWS Nitro Enclaves machine: guest RAM from huge pages
 *
 * The driver only takes memory backed by huge pages, in a whole number of
 * 2 MiB units, 64 MiB at least.  The machine's default RAM is a hugetlb
 * memfd; before it is created, the host is asked whether it has enough
 * free huge pages of the chosen size, so that a missing reservation is a
 * clear error with the command that fixes it.  The driver takes only
 * memory of the CPU pool's NUMA node: the pages are counted on that node
 * and RAM is bound to it before it is touched.
 *
 * Filling RAM with a big image is bound by memory, and the kernel clears
 * each huge page on first touch: an image file is read on several cores,
 * and while an image is built another thread faults in RAM ahead of it.
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
#include "trace.h"

#define HUGEPAGES_SYSFS "/sys/kernel/mm/hugepages"
/* mbind(2) without libnuma */
#define NITRO_MPOL_BIND 2
#define NITRO_MAX_NODES 1024

static bool nitro_read_count(const char *dir, const char *name,
                             uint64_t *value, Error **errp)
{
    g_autofree char *path = g_strdup_printf("%s/%s", dir, name);
    g_autofree char *text = NULL;
    g_autoptr(GError) gerr = NULL;

    if (!g_file_get_contents(path, &text, NULL, &gerr)) {
        error_setg(errp, "cannot read %s: %s", path, gerr->message);
        return false;
    }
    if (qemu_strtou64(g_strstrip(text), NULL, 10, value) < 0) {
        error_setg(errp, "%s: unexpected content '%s'", path, text);
        return false;
    }
    return true;
}

/* Are @size bytes of @page_size huge pages free on NUMA node @node? */
static bool nitro_check_node_hugepages(uint64_t page_size, uint64_t size,
                                       int node, Error **errp)
{
    ERRP_GUARD();
    g_autofree char *dir = g_strdup_printf(NITRO_NODE_SYSFS "/node%d/"
                                           "hugepages/hugepages-%" PRIu64
                                           "kB", node, page_size / KiB);
    g_autofree char *psize = size_to_str(page_size);
    uint64_t total, free, need = size / page_size;

    if (!nitro_read_count(dir, "nr_hugepages", &total, errp) ||
        !nitro_read_count(dir, "free_hugepages", &free, errp)) {
        return false;
    }
    trace_nitro_node_hugepages(node, page_size, need, free, total);
    if (free < need) {
        error_setg(errp, "guest RAM needs %" PRIu64 " free %s huge pages on "
                   "NUMA node %d, the CPU pool's, but only %" PRIu64 " are "
                   "free there: %" PRIu64 " missing", need, psize, node, free,
                   need - free);
        error_append_hint(errp, "The driver takes only memory of the pool's "
                          "node.  Reserve them as root with: "
                          "echo %" PRIu64 " > %s/nr_hugepages\n",
                          total + need - free, dir);
        return false;
    }
    return true;
}

/* Are @size bytes of @page_size huge pages free (not even reserved)? */
static bool nitro_check_free_hugepages(uint64_t page_size, uint64_t size,
                                       Error **errp)
{
    ERRP_GUARD();
    g_autofree char *dir = g_strdup_printf("%s/hugepages-%" PRIu64 "kB",
                                           HUGEPAGES_SYSFS, page_size / KiB);
    g_autofree char *psize = size_to_str(page_size);
    uint64_t total, free, resv, need = size / page_size;

    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        error_setg(errp, "this host has no %s huge pages", psize);
        error_append_hint(errp, "Choose a huge page size the host supports "
                          "(see %s) with -machine nitro,hugepage-size=...\n",
                          HUGEPAGES_SYSFS);
        return false;
    }
    if (!nitro_read_count(dir, "nr_hugepages", &total, errp) ||
        !nitro_read_count(dir, "free_hugepages", &free, errp) ||
        !nitro_read_count(dir, "resv_hugepages", &resv, errp)) {
        return false;
    }
    free = free > resv ? free - resv : 0;
    trace_nitro_hugepages(page_size, need, free, total);
    if (free < need) {
        g_autofree char *ssize = size_to_str(size);

        error_setg(errp, "guest RAM of %s needs %" PRIu64 " free %s huge "
                   "pages, but only %" PRIu64 " are free: %" PRIu64
                   " missing", ssize, need, psize, free, need - free);
        error_append_hint(errp, "Reserve them as root with: "
                          "echo %" PRIu64 " > %s/nr_hugepages\n",
                          total + need - free, dir);
        return false;
    }
    return true;
}

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

bool nitro_ram_create_default(MachineState *ms, uint64_t page_size,
                              Error **errp)
{
    MachineClass *mc = MACHINE_GET_CLASS(ms);
    g_autoptr(Object) obj = NULL;
    int node = nitro_pool_node();

    if (!nitro_ram_check_size(ms->ram_size, page_size, errp) ||
        !nitro_check_free_hugepages(page_size, ms->ram_size, errp) ||
        (node >= 0 && !nitro_check_node_hugepages(page_size, ms->ram_size,
                                                  node, errp))) {
        return false;
    }
    obj = object_new(TYPE_MEMORY_BACKEND_MEMFD);
    if (!object_property_set_bool(obj, "hugetlb", true, errp) ||
        !object_property_set_uint(obj, "hugetlbsize", page_size, errp) ||
        !object_property_set_uint(obj, "size", ms->ram_size, errp)) {
        return false;
    }
    object_property_add_child(object_get_objects_root(), mc->default_ram_id,
                              obj);
    /* The RAM block takes the machine's default RAM id as its name */
    if (!object_property_set_bool(obj, "x-use-canonical-path-for-ramblock-id",
                                  false, errp) ||
        !user_creatable_complete(USER_CREATABLE(obj), errp)) {
        return false;
    }
    if (node >= 0) {
        MemoryRegion *mr = host_memory_backend_get_memory(
            MEMORY_BACKEND(obj));

        if (!nitro_ram_bind(memory_region_get_ram_ptr(mr), ms->ram_size,
                            node, errp)) {
            return false;
        }
    }
    return object_property_set_link(OBJECT(ms), "memory-backend", obj, errp);
}

bool nitro_ram_check(MachineState *ms, Error **errp)
{
    ERRP_GUARD();
    uint64_t page_size = qemu_ram_pagesize(ms->ram->ram_block);

    if (page_size < NITRO_MEM_ALIGN || page_size % NITRO_MEM_ALIGN) {
        g_autofree char *psize = size_to_str(page_size);

        error_setg(errp, "enclave RAM must be backed by huge pages, but "
                   "the RAM backend uses %s pages", psize);
        error_append_hint(errp, "Leave RAM to the nitro machine, or give it "
                          "a memory-backend-memfd with hugetlb=on.\n");
        return false;
    }
    return nitro_ram_check_size(ms->ram_size, page_size, errp);
}

#define NITRO_LOAD_CHUNK (4 * MiB)
/* Enough to be worth a thread, and to keep memory bandwidth per core */
#define NITRO_LOAD_MIN_SLICE (64 * MiB)
#define NITRO_LOAD_MAX_THREADS 8

typedef struct NitroRamLoader {
    QemuThread thread;
    int fd;
    uint8_t *dst;
    uint64_t offset;
    uint64_t size;
    /* The CRC-32 of what it read from crc_from on */
    uint64_t crc_from;
    uint32_t crc;
    /* Bytes read; on a short read, the errno (0 at end of file) */
    uint64_t done;
    int err;
} NitroRamLoader;

static void *nitro_ram_load_thread(void *opaque)
{
    NitroRamLoader *l = opaque;

    while (l->done < l->size) {
        uint64_t pos = l->offset + l->done;
        ssize_t n = pread(l->fd, l->dst + pos,
                          MIN(l->size - l->done, NITRO_LOAD_CHUNK), pos);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            l->err = n ? errno : 0;
            break;
        }
        /* While the chunk is still in the cache */
        if (pos + n > l->crc_from) {
            uint64_t skip = pos < l->crc_from ? l->crc_from - pos : 0;

            l->crc = eif_crc32(l->crc, l->dst + pos + skip, n - skip);
        }
        l->done += n;
    }
    return NULL;
}

bool nitro_ram_load_file(void *dst, int fd, uint64_t size,
                         uint64_t crc_from, uint32_t *crc, Error **errp)
{
    NitroRamLoader l[NITRO_LOAD_MAX_THREADS] = { 0 };
    long cpus = MAX(1, sysconf(_SC_NPROCESSORS_ONLN));
    unsigned i, n = MAX(1, MIN(size / NITRO_LOAD_MIN_SLICE,
                               MIN(cpus, NITRO_LOAD_MAX_THREADS)));
    uint64_t slice = ROUND_UP(DIV_ROUND_UP(size, n), NITRO_LOAD_CHUNK);

    trace_nitro_ram_load(size, n);
    for (i = 0; i < n; i++) {
        l[i].fd = fd;
        l[i].dst = dst;
        l[i].crc_from = crc_from;
        l[i].offset = MIN(i * slice, size);
        l[i].size = MIN(slice, size - l[i].offset);
        if (i) {
            qemu_thread_create(&l[i].thread, "nitro-load",
                               nitro_ram_load_thread, &l[i],
                               QEMU_THREAD_JOINABLE);
        }
    }
    nitro_ram_load_thread(&l[0]);
    for (i = 1; i < n; i++) {
        qemu_thread_join(&l[i].thread);
    }
    for (i = 0; i < n; i++) {
        uint64_t pos = l[i].offset + l[i].done;

        if (l[i].done < l[i].size && l[i].err) {
            error_setg_errno(errp, l[i].err, "cannot read the image at "
                             "offset %" PRIu64, pos);
            return false;
        }
        if (l[i].done < l[i].size) {
            error_setg(errp, "the image shrank to %" PRIu64 " bytes while "
                       "being read (it had %" PRIu64 ")", pos, size);
            return false;
        }
    }
    *crc = 0;
    for (i = 0; i < n; i++) {
        uint64_t from = MAX(l[i].offset, crc_from);
        uint64_t end = l[i].offset + l[i].size;

        if (end > from) {
            *crc = eif_crc32_combine(*crc, l[i].crc, end - from);
        }
    }
    return true;
}

static void *nitro_ram_populate_thread(void *opaque)
{
    NitroRamPopulate *pop = opaque;

    /*
     * MADV_POPULATE_WRITE never changes what a page holds, so the loader
     * may write the same pages meanwhile.  Where it is missing (Linux
     * before 5.14), the loader faults the pages in itself.
     */
    if (qemu_madvise(pop->start, pop->size, QEMU_MADV_POPULATE_WRITE)) {
        trace_nitro_ram_populate_failed(errno);
    }
    return NULL;
}

void nitro_ram_populate_start(NitroRamPopulate *pop, void *start,
                              uint64_t size)
{
    pop->start = start;
    pop->size = size;
    qemu_thread_create(&pop->thread, "nitro-populate",
                       nitro_ram_populate_thread, pop, QEMU_THREAD_JOINABLE);
}

void nitro_ram_populate_wait(NitroRamPopulate *pop)
{
    qemu_thread_join(&pop->thread);
}
