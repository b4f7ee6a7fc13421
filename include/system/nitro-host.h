/*
 * AWS Nitro Enclaves: what the host's sysfs says
 *
 * The one place that reads the parent's sysfs: its huge pages (sizes and
 * counts, per NUMA node), its nodes' CPU lists, the CPUs' siblings and
 * the driver's CPU pool.  Every path is under the directory that stands
 * for /sys: $NITRO_SYSFS_ROOT when it is set, so that a test can give a
 * made-up host (huge page sizes this machine lacks, counts nobody else
 * changes), /sys otherwise.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef SYSTEM_NITRO_HOST_H
#define SYSTEM_NITRO_HOST_H

#define NITRO_SYSFS_ROOT_ENV    "NITRO_SYSFS_ROOT"

/* CPU and node numbers of the host are below this */
#define NITRO_MAX_HOST_CPUS     8192

/**
 * nitro_sysfs_path:
 * @fmt: a path relative to /sys, e.g. "kernel/mm/hugepages"
 *
 * Returns: where the host has it (under $NITRO_SYSFS_ROOT or /sys).
 */
char *nitro_sysfs_path(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/**
 * nitro_sysfs_read:
 * @fmt: a path relative to /sys
 *
 * Returns: the file's content without surrounding white space, NULL if
 * it cannot be read.
 */
char *nitro_sysfs_read(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/**
 * nitro_parse_cpu_list:
 * @list: a sysfs CPU or node list, e.g. "1-3,5-7"
 * @bm: a bitmap of NITRO_MAX_HOST_CPUS bits, where they are set
 *
 * Returns: false if @list is malformed.
 */
bool nitro_parse_cpu_list(const char *list, unsigned long *bm);

/**
 * nitro_sysfs_cpu_list:
 * @bm: a bitmap of NITRO_MAX_HOST_CPUS bits
 * @fmt: a path relative to /sys of a CPU or node list
 *
 * Returns: false if the file cannot be read or is malformed.
 */
bool nitro_sysfs_cpu_list(unsigned long *bm, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

/**
 * nitro_host_page_sizes:
 *
 * Returns: the huge page sizes of the host in bytes, smallest first (a
 * GArray of uint64_t, empty if the host has none).
 */
GArray *nitro_host_page_sizes(void);

/* Huge pages of one size: how many are reserved and usable */
typedef struct NitroHostPages {
    uint64_t page_size;
    uint64_t total;     /* reserved (nr_hugepages) */
    uint64_t free;      /* free and not reserved for a mapping */
    char *dir;          /* the sysfs directory where to reserve more */
} NitroHostPages;

void nitro_host_pages_clear(NitroHostPages *p);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(NitroHostPages, nitro_host_pages_clear)

/**
 * nitro_host_pages:
 * @page_size: the huge page size in bytes
 * @node: a NUMA node, -1 for any
 * @p: what is found, to clear with nitro_host_pages_clear()
 * @errp: set if the host has no such pages (on that node)
 *
 * Count the pages of @page_size usable on @node: free and not reserved
 * for a mapping, and on that node.
 */
bool nitro_host_pages(uint64_t page_size, int node, NitroHostPages *p,
                      Error **errp);

#endif
