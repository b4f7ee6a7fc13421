/*
 * AWS Nitro Enclaves accelerator: calls into /dev/nitro_enclaves
 *
 * The driver reports a broken rule with an errno of 256 and above
 * (NE_ERR_*).  Each one becomes an error message that says what was
 * wrong and a hint that says how to fix it on the parent instance.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "qemu/units.h"
#include <sys/ioctl.h>
#include "standard-headers/linux/nitro_enclaves.h"
#include "system/nitro-host.h"
#include "nitro-driver.h"
#include "trace.h"

typedef struct NitroDriverError {
    int err;
    const char *name;
    const char *message;
    /* How to fix it; CPU_POOL_HINT has the pool's content filled in */
    const char *hint;
} NitroDriverError;

#define HUGEPAGES_HINT \
    "Guest RAM must come from huge pages: reserve them before starting, " \
    "e.g. 'echo N > /proc/sys/vm/nr_hugepages' (2 MiB pages) or " \
    "'echo N > /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages' " \
    "(1 GiB pages), and use the nitro machine's default RAM or a " \
    "memory-backend-memfd with hugetlb=on.\n"

#define CPU_POOL_HINT \
    "Enclave vCPUs come from the CPU pool in " NITRO_CPU_POOL \
    " (now: %s).  CPU 0 and its siblings cannot be in it; add full cores " \
    "(the CPUs of each core are in /sys/devices/system/cpu/cpuN/topology/" \
    "thread_siblings_list)%s%s%s (nitro-cli's allocator service does this " \
    "from /etc/nitro_enclaves/allocator.yaml).\n"

static const NitroDriverError nitro_driver_errors[] = {
    { NE_ERR_VCPU_ALREADY_USED, "VCPU_ALREADY_USED",
      "a vCPU is already used by this enclave", CPU_POOL_HINT },
    { NE_ERR_VCPU_NOT_IN_CPU_POOL, "VCPU_NOT_IN_CPU_POOL",
      "a vCPU is not in the CPU pool or is another enclave's",
      CPU_POOL_HINT },
    { NE_ERR_VCPU_INVALID_CPU_CORE, "VCPU_INVALID_CPU_CORE",
      "a vCPU belongs to an invalid CPU core", CPU_POOL_HINT },
    { NE_ERR_INVALID_MEM_REGION_SIZE, "INVALID_MEM_REGION_SIZE",
      "a memory region is not a multiple of 2 MiB",
      "Make -m a multiple of the huge page size.\n" },
    { NE_ERR_INVALID_MEM_REGION_ADDR, "INVALID_MEM_REGION_ADDR",
      "a memory region has an invalid address range", HUGEPAGES_HINT },
    { NE_ERR_UNALIGNED_MEM_REGION_ADDR, "UNALIGNED_MEM_REGION_ADDR",
      "a memory region is not 2 MiB aligned", HUGEPAGES_HINT },
    { NE_ERR_MEM_REGION_ALREADY_USED, "MEM_REGION_ALREADY_USED",
      "a memory region is already used by an enclave", NULL },
    { NE_ERR_MEM_NOT_HUGE_PAGE, "MEM_NOT_HUGE_PAGE",
      "guest RAM is not backed by huge pages", HUGEPAGES_HINT },
    { NE_ERR_MEM_DIFFERENT_NUMA_NODE, "MEM_DIFFERENT_NUMA_NODE",
      "guest RAM is not on the NUMA node of the CPU pool",
      "Reserve the huge pages on the CPU pool's node (e.g. "
      "/sys/devices/system/node/nodeN/hugepages/) or bind QEMU to it "
      "with numactl --membind=N.\n" },
    { NE_ERR_MEM_MAX_REGIONS, "MEM_MAX_REGIONS",
      "guest RAM needs more memory regions than the driver allows",
      "Huge pages that are physically contiguous within one donation "
      "count as one region: reserve them right after boot, or use larger "
      "pages (/sys/kernel/mm/hugepages/hugepages-SIZEkB/nr_hugepages).\n" },
    { NE_ERR_NO_MEM_REGIONS_ADDED, "NO_MEM_REGIONS_ADDED",
      "the enclave has no memory", NULL },
    { NE_ERR_NO_VCPUS_ADDED, "NO_VCPUS_ADDED",
      "the enclave has no vCPUs", NULL },
    { NE_ERR_ENCLAVE_MEM_MIN_SIZE, "ENCLAVE_MEM_MIN_SIZE",
      "the enclave has less than 64 MiB of memory",
      "Use -m 64M or more.\n" },
    { NE_ERR_FULL_CORES_NOT_USED, "FULL_CORES_NOT_USED",
      "the vCPUs do not make up full CPU cores",
      "Use an -smp count that is a multiple of the threads per core "
      "(usually 2).\n" },
    { NE_ERR_NOT_IN_INIT_STATE, "NOT_IN_INIT_STATE",
      "the enclave is not in its init state any more", NULL },
    { NE_ERR_INVALID_VCPU, "INVALID_VCPU",
      "a vCPU id is outside the available CPUs", CPU_POOL_HINT },
    { NE_ERR_NO_CPUS_AVAIL_IN_POOL, "NO_CPUS_AVAIL_IN_POOL",
      "no CPU is left in the CPU pool", CPU_POOL_HINT },
    { NE_ERR_INVALID_PAGE_SIZE, "INVALID_PAGE_SIZE",
      "guest RAM pages are not a multiple of 2 MiB", HUGEPAGES_HINT },
    { NE_ERR_INVALID_FLAG_VALUE, "INVALID_FLAG_VALUE",
      "the driver does not know a flag it was given", NULL },
    { NE_ERR_INVALID_ENCLAVE_CID, "INVALID_ENCLAVE_CID",
      "the enclave CID is invalid",
      "requested-cid must be 0 (any) or between 4 and 4294967294 and not "
      "used by another enclave on this parent.\n" },
};

/*
 * The driver's @err for @op, with the fix; a CPU pool example holds at
 * least @pool_cpus CPUs.
 */
static void nitro_driver_pool_error(Error **errp, const char *op, int err,
                                    unsigned pool_cpus)
{
    ERRP_GUARD();
    size_t i;

    for (i = 0; i < ARRAY_SIZE(nitro_driver_errors); i++) {
        const NitroDriverError *e = &nitro_driver_errors[i];

        if (e->err != err) {
            continue;
        }
        error_setg(errp, "Nitro Enclaves: %s failed: %s (NE_ERR_%s)",
                   op, e->message, e->name);
        if (e->hint && strstr(e->hint, "%s")) {
            g_autofree char *pool = nitro_cpu_pool();
            unsigned size;
            g_autofree char *example = nitro_pool_example(pool_cpus, &size);

            error_append_hint(errp, CPU_POOL_HINT, pool,
                              example ? ", on this host e.g. 'echo " : "",
                              example ? example : "",
                              example ? " > " NITRO_CPU_POOL "'" : "");
        } else if (e->hint) {
            error_append_hint(errp, "%s", e->hint);
        }
        return;
    }
    error_setg_errno(errp, err, "Nitro Enclaves: %s failed", op);
}

/* Set @errp for a failed @op with errno @err. */
static void nitro_driver_error(Error **errp, const char *op, int err)
{
    nitro_driver_pool_error(errp, op, err, 1);
}

int nitro_driver_open(Error **errp)
{
    ERRP_GUARD();
    int fd = qemu_open_old(NITRO_DEVICE, O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot open " NITRO_DEVICE);
        if (errno == ENOENT) {
            error_append_hint(errp,
                "This is not a parent instance with Nitro Enclaves enabled, "
                "or the nitro_enclaves driver is not loaded ('modprobe "
                "nitro_enclaves').  Without Nitro hardware, run on the "
                "simulator: see docs/system/nitro.rst.\n");
        } else if (errno == EACCES || errno == EPERM) {
            error_append_hint(errp,
                "Give this user access to " NITRO_DEVICE
                " (usually: add it to the 'ne' group).\n");
        }
    }
    return fd;
}

int nitro_driver_create_vm(int dev_fd, uint64_t *slot_uid, Error **errp)
{
    int fd = ioctl(dev_fd, NE_CREATE_VM, slot_uid);

    if (fd < 0) {
        nitro_driver_error(errp, "creating the enclave", errno);
        return -1;
    }
    trace_nitro_create_vm(fd, *slot_uid);
    return fd;
}

bool nitro_driver_image_offset(int enclave_fd, uint64_t *offset,
                               Error **errp)
{
    struct ne_image_load_info info = { .flags = NE_EIF_IMAGE };

    if (ioctl(enclave_fd, NE_GET_IMAGE_LOAD_INFO, &info) < 0) {
        nitro_driver_error(errp, "getting the image load offset", errno);
        return false;
    }
    *offset = info.memory_offset;
    trace_nitro_image_offset(*offset);
    return true;
}

/* the smallest huge page size of the host larger than @page_size, or 0 */
static uint64_t nitro_larger_page_size(uint64_t page_size)
{
    g_autoptr(GArray) sizes = nitro_host_page_sizes();
    guint i;

    for (i = 0; i < sizes->len; i++) {
        if (g_array_index(sizes, uint64_t, i) > page_size) {
            return g_array_index(sizes, uint64_t, i);
        }
    }
    return 0;
}

bool nitro_driver_add_memory(int enclave_fd, void *host, uint64_t size,
                             uint64_t page_size, unsigned done,
                             Error **errp)
{
    ERRP_GUARD();
    struct ne_user_memory_region region = {
        .flags = NE_DEFAULT_MEMORY_REGION,
        .memory_size = size,
        .userspace_addr = (uintptr_t)host,
    };

    trace_nitro_add_memory_call(host, size, page_size, done);
    if (ioctl(enclave_fd, NE_SET_USER_MEMORY_REGION, &region) < 0) {
        int err = errno;
        uint64_t larger = nitro_larger_page_size(page_size);

        nitro_driver_error(errp, "donating guest RAM", err);
        if (err != NE_ERR_MEM_MAX_REGIONS) {
            return false;
        }
        error_append_hint(errp, "The driver refused the region after %u "
                          "calls that donated pages of %" PRIu64 " KiB.\n",
                          done, page_size / KiB);
        if (larger) {
            bool g = !(larger % GiB);

            error_append_hint(errp, "Pages of %" PRIu64 " %s need fewer "
                              "regions: -machine nitro,hugepage-size=%"
                              PRIu64 "%s.\n", g ? larger / GiB : larger / MiB,
                              g ? "GiB" : "MiB", g ? larger / GiB :
                              larger / MiB, g ? "G" : "M");
        }
        return false;
    }
    trace_nitro_add_memory(host, size);
    return true;
}

bool nitro_driver_add_vcpu(int enclave_fd, uint32_t *cpu, unsigned nth,
                           unsigned total, Error **errp)
{
    ERRP_GUARD();
    uint32_t want = *cpu;

    if (ioctl(enclave_fd, NE_ADD_VCPU, cpu) < 0) {
        int err = errno;
        g_autofree char *op = want ?
            g_strdup_printf("adding CPU %u of cpu-ids", want) :
            g_strdup_printf("adding vCPU %u of the %u asked with -smp",
                            nth + 1, total);

        nitro_driver_pool_error(errp, op, err, total);
        if (err == NE_ERR_NO_CPUS_AVAIL_IN_POOL) {
            unsigned most;
            g_autofree char *all = nitro_pool_example(UINT_MAX, &most);

            error_append_hint(errp, "The pool had %u CPUs free for this "
                              "enclave; -smp %u asks for %u.\n", nth, total,
                              total);
            if (all && most < total) {
                error_append_hint(errp, "This host has %u CPUs outside "
                                  "core 0: use -smp %u or less.\n", most,
                                  most);
            }
        }
        return false;
    }
    trace_nitro_add_vcpu(want, *cpu);
    return true;
}

bool nitro_driver_start(int enclave_fd, bool debug_mode, uint64_t *cid,
                        Error **errp)
{
    ERRP_GUARD();
    struct ne_enclave_start_info info = {
        .flags = debug_mode ? NE_ENCLAVE_DEBUG_MODE : 0,
        .enclave_cid = *cid,
    };

    if (ioctl(enclave_fd, NE_START_ENCLAVE, &info) < 0) {
        if (errno == EADDRINUSE) {
            /* all in the message: QMP clients (libvirt) show no hint */
            error_setg(errp, "Nitro Enclaves: starting the enclave failed: "
                       "CID %" PRIu64 " is already used by another enclave "
                       "or VM; choose another requested-cid, or 0 to let "
                       "the hypervisor choose", *cid);
            return false;
        }
        nitro_driver_error(errp, "starting the enclave", errno);
        return false;
    }
    *cid = info.enclave_cid;
    trace_nitro_start(debug_mode, *cid);
    return true;
}
