/*
 * AWS Nitro Enclaves accelerator: the CPU pool and the host's SMT layout
 *
 * The pool (the nitro_enclaves module's ne_cpus parameter) must be made
 * of full cores, none of them core 0.  Which CPUs are a core depends on
 * the host: on EC2 x86 instances the siblings of CPU N are N and
 * N + (number of cores), elsewhere they may be consecutive.  The hints
 * therefore read thread_siblings_list and name a pool valid on this host.
 * Guest RAM must be on the pool's NUMA node: find it from the nodes'
 * cpulist.  All of it is read through nitro-host.c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "system/nitro-accel.h"
#include "system/nitro-host.h"
#include "nitro-driver.h"

/* NITRO_CPU_POOL, relative to /sys */
#define NITRO_CPU_POOL_SYSFS "module/nitro_enclaves/parameters/ne_cpus"

char *nitro_cpu_pool(void)
{
    g_autofree char *pool = nitro_sysfs_read(NITRO_CPU_POOL_SYSFS);

    if (!pool) {
        return g_strdup("unreadable");
    }
    return g_strdup(*pool ? pool : "empty");
}

char *nitro_pool_example(void)
{
    g_autofree unsigned long *cpus = bitmap_new(NITRO_MAX_HOST_CPUS);
    unsigned cpu;

    for (cpu = 1; cpu < NITRO_MAX_HOST_CPUS; cpu++) {
        g_autofree char *list = nitro_sysfs_read("devices/system/cpu/cpu%u/"
                                                 "topology/"
                                                 "thread_siblings_list",
                                                 cpu);

        if (!list) {
            return NULL;
        }
        bitmap_zero(cpus, NITRO_MAX_HOST_CPUS);
        if (nitro_parse_cpu_list(list, cpus) &&
            !bitmap_empty(cpus, NITRO_MAX_HOST_CPUS) &&
            !test_bit(0, cpus)) {
            return g_steal_pointer(&list);
        }
    }
    return NULL;
}

int nitro_pool_node(void)
{
    g_autofree unsigned long *pool = bitmap_new(NITRO_MAX_HOST_CPUS);
    g_autofree unsigned long *nodes = bitmap_new(NITRO_MAX_HOST_CPUS);
    g_autofree unsigned long *cpus = bitmap_new(NITRO_MAX_HOST_CPUS);
    unsigned long n;

    /* without a pool or NUMA information, the driver will tell */
    if (!nitro_sysfs_cpu_list(pool, NITRO_CPU_POOL_SYSFS) ||
        bitmap_empty(pool, NITRO_MAX_HOST_CPUS) ||
        !nitro_sysfs_cpu_list(nodes, "devices/system/node/online")) {
        return -1;
    }
    for (n = find_first_bit(nodes, NITRO_MAX_HOST_CPUS);
         n < NITRO_MAX_HOST_CPUS;
         n = find_next_bit(nodes, NITRO_MAX_HOST_CPUS, n + 1)) {
        bitmap_zero(cpus, NITRO_MAX_HOST_CPUS);
        if (!nitro_sysfs_cpu_list(cpus, "devices/system/node/node%lu/cpulist",
                                  n) ||
            !bitmap_intersects(cpus, pool, NITRO_MAX_HOST_CPUS)) {
            continue;
        }
        /* the driver keeps the pool on one node */
        return n;
    }
    return -1;
}
