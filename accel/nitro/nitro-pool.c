/*
 * AWS Nitro Enclaves accelerator: the CPU pool and the host's SMT layout
 *
 * The pool (the nitro_enclaves module's ne_cpus parameter) must be made
 * of full cores, none of them core 0.  Which CPUs are a core depends on
 * the host: on EC2 x86 instances the siblings of CPU N are N and
 * N + (number of cores), elsewhere they may be consecutive.  The hints
 * therefore read thread_siblings_list and name a pool valid on this host.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
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
