/*
 * AWS Nitro Enclaves accelerator: the CPU pool and the host's SMT layout
 *
 * The pool (the nitro_enclaves module's ne_cpus parameter) must be made
 * of full cores, none of them core 0.  Which CPUs are a core depends on
 * the host: on EC2 x86 instances the siblings of CPU N are N and
 * N + (number of cores), elsewhere they may be consecutive.  The hints
 * therefore read thread_siblings_list and name a pool valid on this host.
 * Guest RAM must be on the pool's NUMA node: find it from the nodes'
 * cpulist.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qemu/cutils.h"
#include "system/nitro-accel.h"
#include "nitro-driver.h"

#define NITRO_SIBLINGS "/sys/devices/system/cpu/cpu%u/topology/" \
                       "thread_siblings_list"

char *nitro_cpu_pool(void)
{
    g_autofree char *pool = NULL;

    if (!g_file_get_contents(NITRO_CPU_POOL, &pool, NULL, NULL)) {
        return g_strdup("unreadable");
    }
    g_strstrip(pool);
    return g_strdup(*pool ? pool : "empty");
}

/* does the CPU list @list ("0,4", "0-1") hold CPU 0? */
static bool nitro_list_has_cpu0(const char *list)
{
    g_auto(GStrv) items = g_strsplit(list, ",", -1);
    char **p;

    for (p = items; *p; p++) {
        if (g_ascii_strtoull(*p, NULL, 10) == 0) {
            return true;
        }
    }
    return false;
}

char *nitro_pool_example(void)
{
    unsigned cpu;

    for (cpu = 1; cpu < NITRO_MAX_HOST_CPUS; cpu++) {
        g_autofree char *path = g_strdup_printf(NITRO_SIBLINGS, cpu);
        g_autofree char *list = NULL;

        if (!g_file_get_contents(path, &list, NULL, NULL)) {
            return NULL;
        }
        g_strstrip(list);
        if (*list && !nitro_list_has_cpu0(list)) {
            return g_steal_pointer(&list);
        }
    }
    return NULL;
}

/* Parse a sysfs CPU or node list ("1-3,5-7") into @bm; false if malformed */
static bool nitro_parse_list(const char *list, unsigned long *bm)
{
    g_auto(GStrv) items = g_strsplit(list, ",", -1);
    char **p;

    for (p = items; *p; p++) {
        const char *end;
        uint64_t a, b;

        if (!**p) {
            continue;
        }
        if (qemu_strtou64(*p, &end, 10, &a) < 0) {
            return false;
        }
        b = a;
        if (*end == '-' && qemu_strtou64(end + 1, &end, 10, &b) < 0) {
            return false;
        }
        if (*end || b < a || b >= NITRO_MAX_HOST_CPUS) {
            return false;
        }
        bitmap_set(bm, a, b - a + 1);
    }
    return true;
}

static bool nitro_read_list(const char *path, unsigned long *bm)
{
    g_autofree char *text = NULL;

    return g_file_get_contents(path, &text, NULL, NULL) &&
           nitro_parse_list(g_strstrip(text), bm);
}

int nitro_pool_node(void)
{
    g_autofree unsigned long *pool = bitmap_new(NITRO_MAX_HOST_CPUS);
    g_autofree unsigned long *nodes = bitmap_new(NITRO_MAX_HOST_CPUS);
    g_autofree unsigned long *cpus = bitmap_new(NITRO_MAX_HOST_CPUS);
    unsigned long n;

    /* without a pool or NUMA information, the driver will tell */
    if (!nitro_read_list(NITRO_CPU_POOL, pool) ||
        bitmap_empty(pool, NITRO_MAX_HOST_CPUS) ||
        !nitro_read_list(NITRO_NODE_SYSFS "/online", nodes)) {
        return -1;
    }
    for (n = find_first_bit(nodes, NITRO_MAX_HOST_CPUS);
         n < NITRO_MAX_HOST_CPUS;
         n = find_next_bit(nodes, NITRO_MAX_HOST_CPUS, n + 1)) {
        g_autofree char *path = g_strdup_printf(NITRO_NODE_SYSFS
                                                "/node%lu/cpulist", n);

        bitmap_zero(cpus, NITRO_MAX_HOST_CPUS);
        if (!nitro_read_list(path, cpus) ||
            !bitmap_intersects(cpus, pool, NITRO_MAX_HOST_CPUS)) {
            continue;
        }
        /* the driver keeps the pool on one node */
        return n;
    }
    return -1;
}
