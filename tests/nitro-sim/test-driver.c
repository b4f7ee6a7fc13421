/*
 * nitro-sim tests: the driver contract, one test per NE_ERR_* errno
 *
 * Runs with the simulator preloaded (LD_PRELOAD=libnitro-sim.so); every
 * errno of the brief's table (256..275) is produced for its cause, and
 * the event log must name it.  Needs 2 MiB huge pages (reserved here when
 * run as root, skipped otherwise).
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <stdint.h>
#include "standard-headers/linux/nitro_enclaves.h"

#include "tap.h"
#include "eif-writer.h"
#include "launcher.h"

#define MIB (1024UL * 1024UL)

static int dev = -1, efd = -1;

static const char *const env_vars[] = {
    "NITRO_SIM_CPUS", "NITRO_SIM_THREADS_PER_CORE", "NITRO_SIM_MAX_REGIONS",
    "NITRO_SIM_MIN_MEM_MIB", "NITRO_SIM_NUMA_NODE", "NITRO_SIM_CONTIG",
    "NITRO_SIM_FAKE_PAGE_SIZE", "NITRO_SIM_HEARTBEAT", "NITRO_SIM_HOST_CPUS",
    "NITRO_SIM_LOG", "NITRO_SIM_TOPOLOGY", "NITRO_SIM_NUMA_NODES", NULL,
};

/* a new simulation directory, default configuration, device + enclave */
static void fresh(const char *tag)
{
    int i;

    if (efd >= 0) {
        close(efd);
    }
    if (dev >= 0) {
        close(dev);
    }
    for (i = 0; env_vars[i]; i++) {
        unsetenv(env_vars[i]);
    }
    nl_new_sim_dir(tag);
    efd = -1;
    dev = open("/dev/nitro_enclaves", O_RDWR | O_CLOEXEC);
}

static int create(void)
{
    uint64_t slot = 0;
    int fd = ioctl(dev, NE_CREATE_VM, &slot);

    return fd < 0 ? -errno : fd;
}

static int region(int fd, void *addr, uint64_t size, uint64_t flags)
{
    struct ne_user_memory_region mr = {
        .flags = flags, .memory_size = size,
        .userspace_addr = (uintptr_t)addr,
    };

    return ioctl(fd, NE_SET_USER_MEMORY_REGION, &mr) < 0 ? errno : 0;
}

static int add_vcpu(int fd, uint32_t id, uint32_t *out)
{
    uint32_t v = id;
    int r = ioctl(fd, NE_ADD_VCPU, &v) < 0 ? errno : 0;

    if (out) {
        *out = v;
    }
    return r;
}

static int start(int fd, uint64_t flags, uint64_t cid)
{
    struct ne_enclave_start_info si = { .flags = flags, .enclave_cid = cid };

    return ioctl(fd, NE_START_ENCLAVE, &si) < 0 ? errno : 0;
}

/* the errno is right and the event log says so by name */
static void expect(int got, int want, const char *name, const char *cause)
{
    char e[64];

    snprintf(e, sizeof(e), "\"error\":\"%s\"", name);
    if (!tap_ok(got == want && nl_log_count("\"event\":\"ioctl\"", e, NULL),
                "%d %s: %s", want, name, cause)) {
        tap_diag("got errno %d (%s), log entries naming it: %d", got,
                 strerror(got), nl_log_count(e, NULL, NULL));
    }
}

static void *huge(size_t mib)
{
    void *p = nl_huge_alloc(mib * MIB);

    if (!p) {
        printf("Bail out! cannot allocate %zu MiB of huge pages\n", mib);
        exit(1);
    }
    return p;
}

/* the first line of @path, as a launcher reads it */
static const char *sysfs_line(const char *path)
{
    static char line[256];
    FILE *f = fopen(path, "re");

    line[0] = 0;
    if (f) {
        if (!fgets(line, sizeof(line), f)) {
            line[0] = 0;
        }
        fclose(f);
    }
    line[strcspn(line, "\n")] = 0;
    return line;
}

#define SIBLINGS(n) \
    "/sys/devices/system/cpu/cpu" #n "/topology/thread_siblings_list"

static void test_vcpu_already_used(void)
{
    int efd2, a, b;

    fresh("256");
    efd = create();
    efd2 = create();
    a = add_vcpu(efd, 2, NULL);
    b = add_vcpu(efd, 2, NULL);
    expect(a == 0 ? b : -1, NE_ERR_VCPU_ALREADY_USED,
           "NE_ERR_VCPU_ALREADY_USED", "CPU 2 added twice to one enclave");
    close(efd2);
}

static void test_not_in_pool(void)
{
    int efd2;

    fresh("257");
    /* EC2 layout, 8 CPUs: the siblings of CPU 1 are 1 and 5 */
    setenv("NITRO_SIM_CPUS", "1-2,5-6", 1);
    close(dev);
    dev = open("/dev/nitro_enclaves", O_RDWR | O_CLOEXEC);
    efd = create();
    expect(add_vcpu(efd, 3, NULL), NE_ERR_VCPU_NOT_IN_CPU_POOL,
           "NE_ERR_VCPU_NOT_IN_CPU_POOL", "CPU 3 with pool 1-2,5-6");
    efd2 = create();
    expect(add_vcpu(efd, 2, NULL) ? -1 : add_vcpu(efd2, 6, NULL),
           NE_ERR_VCPU_NOT_IN_CPU_POOL, "NE_ERR_VCPU_NOT_IN_CPU_POOL",
           "CPU 6, whose sibling 2 another enclave has");
    close(efd2);
}

static void reopen_with(const char *var, const char *val)
{
    setenv(var, val, 1);
    close(dev);
    dev = open("/dev/nitro_enclaves", O_RDWR | O_CLOEXEC);
    efd = create();
}

static void test_invalid_core(void)
{
    fresh("258");
    /* CPU 2's core (2, 6) is only half in the pool */
    reopen_with("NITRO_SIM_CPUS", "1-2,5");
    expect(add_vcpu(efd, 2, NULL), NE_ERR_VCPU_INVALID_CPU_CORE,
           "NE_ERR_VCPU_INVALID_CPU_CORE", "CPU 2 of a core that is not "
           "wholly in the pool");
}

static void test_region_size(void)
{
    void *m = huge(4);

    fresh("259");
    efd = create();
    expect(region(efd, m, 3 * MIB, 0), NE_ERR_INVALID_MEM_REGION_SIZE,
           "NE_ERR_INVALID_MEM_REGION_SIZE", "3 MiB region");
    /* as from the driver, whose allocation of no pages fails */
    tap_ok(region(efd, m, 0, 0) == ENOMEM && add_vcpu(efd, 0, NULL) == 0 &&
           add_vcpu(efd, 0, NULL) == 0 &&
           start(efd, 0, 0) == NE_ERR_NO_MEM_REGIONS_ADDED,
           "a region of size 0 is ENOMEM and adds no memory");
    munmap(m, 4 * MIB);
}

static void test_region_addr(void)
{
    void *p;

    fresh("260");
    efd = create();
    expect(region(efd, (void *)0xffff800000000000ULL, 2 * MIB, 0),
           NE_ERR_INVALID_MEM_REGION_ADDR, "NE_ERR_INVALID_MEM_REGION_ADDR",
           "kernel address");
    /* an aligned range with nothing mapped: pinning the pages fails */
    p = huge(4);
    munmap(p, 4 * MIB);
    expect(region(efd, p, 2 * MIB, 0), EFAULT, "EFAULT", "unmapped range");
}

static void test_unaligned(void)
{
    uint8_t *m = huge(4);

    fresh("261");
    efd = create();
    expect(region(efd, m + 4096, 2 * MIB, 0),
           NE_ERR_UNALIGNED_MEM_REGION_ADDR,
           "NE_ERR_UNALIGNED_MEM_REGION_ADDR", "address 4 KiB past 2 MiB");
    munmap(m, 4 * MIB);
}

static void test_already_used(void)
{
    uint8_t *m = huge(8);
    int first;

    fresh("262");
    efd = create();
    first = region(efd, m, 4 * MIB, 0);
    expect(first ? -1 : region(efd, m, 4 * MIB, 0),
           NE_ERR_MEM_REGION_ALREADY_USED, "NE_ERR_MEM_REGION_ALREADY_USED",
           "the same region twice");
    expect(region(efd, m + 2 * MIB, 4 * MIB, 0),
           NE_ERR_MEM_REGION_ALREADY_USED, "NE_ERR_MEM_REGION_ALREADY_USED",
           "an overlapping region");
    /* the driver checks overlap against the enclave's own regions only */
    {
        int efd2 = create();

        tap_ok(efd2 >= 0 && region(efd2, m, 4 * MIB, 0) == 0,
               "another enclave may be given the same range");
        close(efd2);
    }
    close(efd);
    efd = -1;
    munmap(m, 8 * MIB);
}

static void test_not_huge(void)
{
    size_t sz = 6 * MIB;
    uint8_t *p = mmap(NULL, sz, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *a = (uint8_t *)(((uintptr_t)p + 2 * MIB - 1) & ~(2 * MIB - 1));

    fresh("263");
    efd = create();
    expect(region(efd, a, 2 * MIB, 0), NE_ERR_MEM_NOT_HUGE_PAGE,
           "NE_ERR_MEM_NOT_HUGE_PAGE", "ordinary anonymous memory");
    munmap(p, sz);
}

static void test_numa(void)
{
    uint8_t *m = huge(2);

    fresh("264");
    /* the pool's node is configurable: memory is on node 0 here */
    reopen_with("NITRO_SIM_NUMA_NODE", "1");
    expect(region(efd, m, 2 * MIB, 0), NE_ERR_MEM_DIFFERENT_NUMA_NODE,
           "NE_ERR_MEM_DIFFERENT_NUMA_NODE", "memory on node 0, CPU pool "
           "on node 1 (NITRO_SIM_NUMA_NODE=1)");
    munmap(m, 2 * MIB);
}

static void test_numa_nodes(void)
{
    uint8_t *m = huge(2);
    char cpus[64];
    int fd;

    /* two simulated nodes: cores 0-1 on node 0, cores 2-3 on node 1 */
    fresh("nodes");
    setenv("NITRO_SIM_NUMA_NODES", "2", 1);
    snprintf(cpus, sizeof(cpus), "%s",
             sysfs_line("/sys/devices/system/node/node1/cpulist"));
    tap_ok(!strcmp(sysfs_line("/sys/devices/system/node/online"), "0-1") &&
           !strcmp(cpus, "2-3,6-7") &&
           !strcmp(sysfs_line("/sys/devices/system/node/node1/hugepages/"
                              "hugepages-2048kB/free_hugepages"), "0"),
           "NITRO_SIM_NUMA_NODES=2: nodes 0-1, node 1 has CPUs 2-3,6-7 "
           "(got %s) and no huge pages", cpus);
    tap_ok(!strcmp(sysfs_line("/sys/module/nitro_enclaves/parameters/"
                              "ne_cpus"), "1,5"),
           "the default pool is the cores of node 0 but core 0: 1,5");
    setenv("NITRO_SIM_CPUS", "1-2,5-6", 1);
    fd = open("/dev/nitro_enclaves", O_RDWR | O_CLOEXEC);
    tap_ok(fd < 0 && errno == EINVAL, "a pool on two nodes is refused");
    /* the pool's node follows its CPUs: memory of node 0 is refused */
    reopen_with("NITRO_SIM_CPUS", "3,7");
    expect(region(efd, m, 2 * MIB, 0), NE_ERR_MEM_DIFFERENT_NUMA_NODE,
           "NE_ERR_MEM_DIFFERENT_NUMA_NODE", "memory on node 0, pool 3,7 on "
           "node 1");
    munmap(m, 2 * MIB);
}

static void test_max_regions(void)
{
    uint8_t *m[3];
    uint8_t *big = huge(8);
    int i, r = 0;

    fresh("265");
    reopen_with("NITRO_SIM_MAX_REGIONS", "2");
    for (i = 0; i < 3; i++) {
        m[i] = huge(4);
    }
    /* pages merge within one call: 4 pages of 2 MiB are one range */
    r |= region(efd, big, 8 * MIB, 0);
    r |= region(efd, m[0], 2 * MIB, 0);
    tap_ok(r == 0, "the pages of one call merge: 2 calls, 2 ranges, "
           "limit 2");
    expect(region(efd, m[2], 2 * MIB, 0), NE_ERR_MEM_MAX_REGIONS,
           "NE_ERR_MEM_MAX_REGIONS", "a third call with limit 2");
    /* never across calls, even for virtually adjacent memory */
    close(efd);
    efd = create();
    r = region(efd, big, 4 * MIB, 0) | region(efd, big + 4 * MIB, 4 * MIB, 0);
    expect(r ? -1 : region(efd, m[0], 2 * MIB, 0), NE_ERR_MEM_MAX_REGIONS,
           "NE_ERR_MEM_MAX_REGIONS", "adjacent halves of a mapping in two "
           "calls are two ranges");

    /* NITRO_SIM_CONTIG=page: each 2 MiB page counts (worst case) */
    close(efd);
    setenv("NITRO_SIM_MAX_REGIONS", "3", 1);
    reopen_with("NITRO_SIM_CONTIG", "page");
    expect(region(efd, big, 8 * MIB, 0), NE_ERR_MEM_MAX_REGIONS,
           "NE_ERR_MEM_MAX_REGIONS", "4 pages of 2 MiB, limit 3, "
           "NITRO_SIM_CONTIG=page");
    for (i = 0; i < 3; i++) {
        munmap(m[i], 4 * MIB);
    }
    munmap(big, 8 * MIB);
}

static void test_no_mem(void)
{
    fresh("266");
    efd = create();
    add_vcpu(efd, 2, NULL);
    add_vcpu(efd, 3, NULL);
    expect(start(efd, 0, 0), NE_ERR_NO_MEM_REGIONS_ADDED,
           "NE_ERR_NO_MEM_REGIONS_ADDED", "start without memory");
}

static void test_no_vcpus(void)
{
    uint8_t *m = huge(64);

    fresh("267");
    efd = create();
    region(efd, m, 64 * MIB, 0);
    expect(start(efd, 0, 0), NE_ERR_NO_VCPUS_ADDED, "NE_ERR_NO_VCPUS_ADDED",
           "start without vCPUs");
    close(efd);
    efd = -1;
    munmap(m, 64 * MIB);
}

static void test_min_mem(void)
{
    uint8_t *m = huge(32);

    fresh("268");
    efd = create();
    region(efd, m, 32 * MIB, 0);
    add_vcpu(efd, 2, NULL);
    add_vcpu(efd, 3, NULL);
    expect(start(efd, 0, 0), NE_ERR_ENCLAVE_MEM_MIN_SIZE,
           "NE_ERR_ENCLAVE_MEM_MIN_SIZE", "32 MiB < 64 MiB");
    close(efd);
    efd = -1;
    munmap(m, 32 * MIB);
}

static void test_full_cores(void)
{
    uint8_t *m = huge(64);

    fresh("269");
    efd = create();
    region(efd, m, 64 * MIB, 0);
    add_vcpu(efd, 2, NULL);
    expect(start(efd, 0, 0), NE_ERR_FULL_CORES_NOT_USED,
           "NE_ERR_FULL_CORES_NOT_USED", "CPU 2 without its sibling 6");
    close(efd);
    efd = -1;
    munmap(m, 64 * MIB);
}

static void test_not_init(void)
{
    EifSpec spec;
    NlParams p = { 0 };
    NlEnclave e;
    uint8_t *eif, *m = huge(2);
    size_t len;

    fresh("270");
    setenv("NITRO_SIM_HEARTBEAT", "none", 1);
    eif_default(&spec);
    eif = eif_build(&spec, &len);
    p.eif = eif;
    p.eif_len = len;
    p.no_heartbeat_listen = true;
    if (nl_launch(&p, &e) < 0) {
        tap_ok(false, "270: launch failed at %s: %s", e.failed_step,
               strerror(e.err));
        tap_ok(false, "270: (second check not run)");
    } else {
        expect(add_vcpu(e.efd, 0, NULL), NE_ERR_NOT_IN_INIT_STATE,
               "NE_ERR_NOT_IN_INIT_STATE", "NE_ADD_VCPU after start");
        expect(region(e.efd, m, 2 * MIB, 0), NE_ERR_NOT_IN_INIT_STATE,
               "NE_ERR_NOT_IN_INIT_STATE", "NE_SET_USER_MEMORY_REGION "
               "after start");
    }
    nl_close(&e);
    munmap(m, 2 * MIB);
    free(eif);
}

static void test_invalid_vcpu(void)
{
    fresh("271");
    efd = create();
    expect(add_vcpu(efd, 100, NULL), NE_ERR_INVALID_VCPU,
           "NE_ERR_INVALID_VCPU", "CPU 100 on a simulated 8-CPU parent");
}

static void test_no_cpus(void)
{
    uint32_t a, b;
    int r;

    fresh("272");
    setenv("NITRO_SIM_CPUS", "", 1);
    close(dev);
    dev = open("/dev/nitro_enclaves", O_RDWR | O_CLOEXEC);
    expect(-create(), NE_ERR_NO_CPUS_AVAIL_IN_POOL,
           "NE_ERR_NO_CPUS_AVAIL_IN_POOL", "NE_CREATE_VM with an empty "
           "pool");
    reopen_with("NITRO_SIM_CPUS", "1,5");
    r = add_vcpu(efd, 0, &a) | add_vcpu(efd, 0, &b);
    expect(r ? -1 : add_vcpu(efd, 0, NULL), NE_ERR_NO_CPUS_AVAIL_IN_POOL,
           "NE_ERR_NO_CPUS_AVAIL_IN_POOL", "a third vCPU from pool 1,5");
    expect(-create(), NE_ERR_NO_CPUS_AVAIL_IN_POOL,
           "NE_ERR_NO_CPUS_AVAIL_IN_POOL", "NE_CREATE_VM while another "
           "enclave holds every core of the pool");
}

static void test_page_size(void)
{
    uint8_t *m = huge(2);

    fresh("273");
    /* a 64 KiB hugetlb page (aarch64 cont-PTE): injected on x86 */
    reopen_with("NITRO_SIM_FAKE_PAGE_SIZE", "65536");
    expect(region(efd, m, 2 * MIB, 0), NE_ERR_INVALID_PAGE_SIZE,
           "NE_ERR_INVALID_PAGE_SIZE", "hugetlb page of 64 KiB "
           "(NITRO_SIM_FAKE_PAGE_SIZE)");
    munmap(m, 2 * MIB);
}

static void test_flags(void)
{
    struct ne_image_load_info info = { .flags = 2 };
    uint8_t *m = huge(2);
    int r;

    fresh("274");
    efd = create();
    r = ioctl(efd, NE_GET_IMAGE_LOAD_INFO, &info) < 0 ? errno : 0;
    expect(r, NE_ERR_INVALID_FLAG_VALUE, "NE_ERR_INVALID_FLAG_VALUE",
           "NE_GET_IMAGE_LOAD_INFO flags 2");
    expect(region(efd, m, 2 * MIB, 1), NE_ERR_INVALID_FLAG_VALUE,
           "NE_ERR_INVALID_FLAG_VALUE", "NE_SET_USER_MEMORY_REGION flags 1");
    expect(start(efd, 2, 0), NE_ERR_INVALID_FLAG_VALUE,
           "NE_ERR_INVALID_FLAG_VALUE", "NE_START_ENCLAVE flags 2");
    munmap(m, 2 * MIB);
}

static void test_cid(void)
{
    fresh("275");
    efd = create();
    expect(start(efd, 0, 3), NE_ERR_INVALID_ENCLAVE_CID,
           "NE_ERR_INVALID_ENCLAVE_CID", "CID 3 (the parent)");
    expect(start(efd, 0, 0xffffffffULL), NE_ERR_INVALID_ENCLAVE_CID,
           "NE_ERR_INVALID_ENCLAVE_CID", "CID U32_MAX");
    expect(start(efd, 0, 1ULL << 32), NE_ERR_INVALID_ENCLAVE_CID,
           "NE_ERR_INVALID_ENCLAVE_CID", "CID wider than 32 bits");
}

static void test_positive(void)
{
    struct ne_image_load_info info = { .flags = NE_EIF_IMAGE };
    uint32_t v[4];
    int r;

    fresh("ok");
    efd = create();
    r = ioctl(efd, NE_GET_IMAGE_LOAD_INFO, &info);
    tap_ok(r == 0 && info.memory_offset == 8 * MIB,
           "NE_GET_IMAGE_LOAD_INFO answers memory_offset 8 MiB");
    r = add_vcpu(efd, 5, &v[0]) | add_vcpu(efd, 0, &v[1]) |
        add_vcpu(efd, 0, &v[2]) | add_vcpu(efd, 0, &v[3]);
    tap_ok(r == 0 && v[0] == 5 && v[1] == 1 && v[2] == 2 && v[3] == 6,
           "NE_ADD_VCPU 0 gives the sibling of an owned core first, then a "
           "new core (got %u %u %u %u)", v[0], v[1], v[2], v[3]);
    tap_ok(nl_log_count("\"cmd\":\"NE_ADD_VCPU\"", "\"vcpu\":1", NULL) == 1 &&
           nl_log_count("\"event\":\"open\"", "/dev/nitro_enclaves",
                        NULL) == 1,
           "the event log has the open and each ioctl with its result");
}

static void test_topology(void)
{
    char s1[64], s6[64];

    fresh("topology");
    snprintf(s1, sizeof(s1), "%s", sysfs_line(SIBLINGS(1)));
    snprintf(s6, sizeof(s6), "%s", sysfs_line(SIBLINGS(6)));
    tap_ok(!strcmp(s1, "1,5") && !strcmp(s6, "2,6") &&
           !strcmp(sysfs_line("/sys/module/nitro_enclaves/parameters/"
                              "ne_cpus"), "1-3,5-7"),
           "EC2 layout by default: siblings of 1 are 1,5, of 6 are 2,6; "
           "pool 1-3,5-7 (got %s, %s)", s1, s6);
    setenv("NITRO_SIM_TOPOLOGY", "consecutive", 1);
    snprintf(s1, sizeof(s1), "%s", sysfs_line(SIBLINGS(2)));
    tap_ok(!strcmp(s1, "2-3") &&
           !strcmp(sysfs_line("/sys/module/nitro_enclaves/parameters/"
                              "ne_cpus"), "2-7"),
           "NITRO_SIM_TOPOLOGY=consecutive: siblings of 2 are 2-3, pool "
           "2-7 (got %s)", s1);
    reopen_with("NITRO_SIM_CPUS", "2-3");
    tap_ok(add_vcpu(efd, 2, NULL) == 0 && add_vcpu(efd, 3, NULL) == 0,
           "consecutive layout: CPUs 2 and 3 make a core");
}

/* NE_CREATE_VM on a device opened with fopen(); 1 if it worked */
static int create_on_file(FILE *f)
{
    uint64_t slot;
    int e = f ? ioctl(fileno(f), NE_CREATE_VM, &slot) : -1;

    if (e >= 0) {
        close(e);
    }
    if (f) {
        fclose(f);
    }
    return e >= 0;
}

static void test_entry_points(void)
{
    int fds[4], i, ok = 0;
    uint64_t slot;

    /* built with _FILE_OFFSET_BITS=64 (as QEMU): open is open64... */
    fresh("open");
    fds[0] = open64("/dev/nitro_enclaves", O_RDWR | O_CLOEXEC);
    fds[1] = openat(AT_FDCWD, "/dev/nitro_enclaves", O_RDWR);
    fds[2] = openat64(AT_FDCWD, "/dev/nitro_enclaves", O_RDWR);
    fds[3] = dev;
    ok += create_on_file(fopen("/dev/nitro_enclaves", "r+e"));
    ok += create_on_file(fopen64("/dev/nitro_enclaves", "r+"));
    for (i = 0; i < 4; i++) {
        int e = fds[i] >= 0 ? ioctl(fds[i], NE_CREATE_VM, &slot) : -1;

        ok += e >= 0;
        if (e >= 0) {
            close(e);
        }
    }
    tap_ok(ok == 6 && access("/dev/nitro_enclaves", R_OK | W_OK) == 0 &&
           nl_log_count("\"event\":\"open\"", "\"via\":\"", NULL) == 6,
           "open, open64, openat, openat64, fopen, fopen64 give a working "
           "device; access() finds it");
    for (i = 0; i < 3; i++) {
        close(fds[i]);
    }
}

/* what the driver's copy_from_user() and mm check give */
static void test_user_pointers(void)
{
    void *bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    uint8_t *m = huge(4);
    int status = -1;
    pid_t pid;

    fresh("efault");
    efd = create();
    tap_ok(ioctl(dev, NE_CREATE_VM, bad) < 0 && errno == EFAULT &&
           ioctl(efd, NE_ADD_VCPU, bad) < 0 && errno == EFAULT &&
           ioctl(efd, NE_GET_IMAGE_LOAD_INFO, bad) < 0 && errno == EFAULT &&
           ioctl(efd, NE_SET_USER_MEMORY_REGION, bad) < 0 &&
           errno == EFAULT &&
           ioctl(efd, NE_START_ENCLAVE, bad) < 0 && errno == EFAULT,
           "a bad pointer is EFAULT for each ioctl, not a crash");
    mprotect(m, 4 * MIB, PROT_NONE);
    tap_ok(region(efd, m, 2 * MIB, 0) == EFAULT,
           "a PROT_NONE region is EFAULT");
    mprotect(m, 4 * MIB, PROT_READ);
    tap_ok(region(efd, m, 2 * MIB, 0) == 0, "a read-only region is taken");

    /* a forked child: memory and vCPUs of another mm are EIO */
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        struct ne_image_load_info info = { .flags = NE_EIF_IMAGE };

        _exit(add_vcpu(efd, 0, NULL) == EIO &&
              region(efd, m + 2 * MIB, 2 * MIB, 0) == EIO &&
              ioctl(efd, NE_GET_IMAGE_LOAD_INFO, &info) == 0 &&
              info.memory_offset == 8 * MIB ? 0 : 1);
    }
    waitpid(pid, &status, 0);
    tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "a forked child's NE_ADD_VCPU and NE_SET_USER_MEMORY_REGION are "
           "EIO, its NE_GET_IMAGE_LOAD_INFO works");
    munmap(m, 4 * MIB);
    munmap(bad, 4096);
}

/* the driver takes the pool's CPUs offline */
static void test_cpu_online(void)
{
    char pool[8] = "", other[8] = "";
    int fd;

    fresh("online");
    setenv("NITRO_SIM_CPUS", "1,5", 1);
    fd = open("/sys/devices/system/cpu/cpu5/online", O_RDONLY);
    if (fd >= 0 && read(fd, pool, sizeof(pool) - 1) < 0) {
        pool[0] = 0;
    }
    close(fd);
    fd = open("/sys/devices/system/cpu/cpu2/online", O_RDONLY);
    if (fd >= 0 && read(fd, other, sizeof(other) - 1) < 0) {
        other[0] = 0;
    }
    close(fd);
    tap_ok(!strcmp(pool, "0\n") && !strcmp(other, "1\n"),
           "cpuN/online: 0 for a pool CPU, 1 for another");
}

int main(void)
{
    char why[256];

    if (nl_hugepages(96, why, sizeof(why)) < 0) {
        tap_skip_all(why);
    }
    tap_plan(51);
    test_entry_points();
    test_topology();
    test_vcpu_already_used();
    test_not_in_pool();
    test_invalid_core();
    test_region_size();
    test_region_addr();
    test_unaligned();
    test_already_used();
    test_not_huge();
    test_numa();
    test_numa_nodes();
    test_max_regions();
    test_no_mem();
    test_no_vcpus();
    test_min_mem();
    test_full_cores();
    test_not_init();
    test_invalid_vcpu();
    test_no_cpus();
    test_page_size();
    test_flags();
    test_cid();
    test_positive();
    test_user_pointers();
    test_cpu_online();
    return tap_done();
}
