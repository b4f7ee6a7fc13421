/*
 * AWS Nitro Enclaves machine: which huge pages make up guest RAM
 *
 * The driver takes only huge pages of the CPU pool's NUMA node.  On a
 * parent set up by nitro-cli's allocator service, they are the largest
 * sizes first (on x86, 1 GiB pages, plus 2 MiB pages for the rest; on
 * Graviton, sizes such as 32 MiB): by default guest RAM is made the same
 * way from what is free, so that it starts wherever nitro-cli would.
 * Before anything is allocated, the free pages are counted per size on
 * the pool's node, and a shortage is reported with the commands that fix
 * it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/units.h"
#include "system/nitro-accel.h"
#include "system/nitro-host.h"
#include "ram-plan.h"
#include "trace.h"

/* The host's huge page sizes that the driver can take, largest first */
static GArray *nitro_usable_page_sizes(void)
{
    g_autoptr(GArray) host = nitro_host_page_sizes();
    GArray *sizes = g_array_new(false, false, sizeof(uint64_t));
    guint i;

    for (i = host->len; i-- > 0;) {
        uint64_t size = g_array_index(host, uint64_t, i);

        if (size >= NITRO_MEM_ALIGN && !(size % NITRO_MEM_ALIGN)) {
            g_array_append_val(sizes, size);
        }
    }
    return sizes;
}

static void nitro_plan_add(NitroRamPlan *plan, uint64_t page_size,
                           uint64_t size)
{
    plan->block[plan->nblocks].page_size = page_size;
    plan->block[plan->nblocks].size = size;
    plan->nblocks++;
    trace_nitro_ram_plan_block(page_size, size);
}

static const char *nitro_node_name(int node, char *buf, size_t len)
{
    if (node < 0) {
        return "on this host";
    }
    snprintf(buf, len, "on NUMA node %d, the CPU pool's", node);
    return buf;
}

/* Only pages of @page_size */
static bool nitro_plan_one_size(uint64_t size, uint64_t page_size, int node,
                                NitroRamPlan *plan, Error **errp)
{
    ERRP_GUARD();
    g_autofree char *psize = size_to_str(page_size);
    g_autofree char *sysfs = nitro_sysfs_path("kernel/mm/hugepages");
    g_auto(NitroHostPages) p = { 0 };
    uint64_t need = size / page_size;
    char where[64];

    if (!nitro_host_pages(page_size, -1, &p, NULL)) {
        error_setg(errp, "this host has no %s huge pages", psize);
        error_append_hint(errp, "Choose a huge page size the host supports "
                          "(see %s) with -machine nitro,hugepage-size=..., "
                          "or leave it out to use what is free.\n", sysfs);
        return false;
    }
    if (!nitro_host_pages(page_size, node, &p, errp)) {
        return false;
    }
    if (p.free < need) {
        g_autofree char *ssize = size_to_str(size);

        error_setg(errp, "guest RAM of %s needs %" PRIu64 " free %s huge "
                   "pages, but only %" PRIu64 " are free %s: %" PRIu64
                   " missing", ssize, need, psize, p.free,
                   nitro_node_name(node, where, sizeof(where)),
                   need - p.free);
        error_append_hint(errp, "Reserve them as root with: "
                          "echo %" PRIu64 " > %s/nr_hugepages\n",
                          p.total + need - p.free, p.dir);
        return false;
    }
    nitro_plan_add(plan, page_size, size);
    return true;
}

/* The largest free pages first, as the allocator service reserves them */
static bool nitro_plan_auto(uint64_t size, int node, NitroRamPlan *plan,
                            Error **errp)
{
    ERRP_GUARD();
    g_autoptr(GArray) sizes = nitro_usable_page_sizes();
    g_autoptr(GString) table = g_string_new("");
    g_autofree char *ssize = size_to_str(size);
    g_auto(NitroHostPages) smallest = { 0 };
    uint64_t left = size, missing;
    char where[64];
    guint i;

    if (!sizes->len) {
        g_autofree char *sysfs = nitro_sysfs_path("kernel/mm/hugepages");

        error_setg(errp, "this host has no huge pages of 2 MiB or a "
                   "multiple of it");
        error_append_hint(errp, "The driver takes only huge pages (see %s)."
                          "\n", sysfs);
        return false;
    }
    for (i = 0; i < sizes->len; i++) {
        uint64_t page_size = g_array_index(sizes, uint64_t, i);
        g_auto(NitroHostPages) p = { 0 };
        g_autofree char *psize = size_to_str(page_size);
        uint64_t take;

        if (!nitro_host_pages(page_size, node, &p, errp)) {
            return false;
        }
        take = MIN(p.free, left / page_size);
        g_string_append_printf(table, "%s%" PRIu64 " of %s", i ? ", " : "",
                               p.free, psize);
        if (take && plan->nblocks < NITRO_RAM_MAX_BLOCKS) {
            nitro_plan_add(plan, page_size, take * page_size);
            left -= take * page_size;
        }
        if (i == sizes->len - 1) {
            smallest = p;
            p.dir = NULL;
        }
    }
    if (!left) {
        return true;
    }
    missing = DIV_ROUND_UP(left, smallest.page_size);
    error_setg(errp, "guest RAM of %s does not fit in the free huge pages "
               "%s (%s): %" PRIu64 " MiB missing", ssize,
               nitro_node_name(node, where, sizeof(where)), table->str,
               left / MiB);
    error_append_hint(errp, "Reserve them as root with: echo %" PRIu64
                      " > %s/nr_hugepages (or give nitro-cli's allocator "
                      "service memory_mib: %" PRIu64 " in "
                      "/etc/nitro_enclaves/allocator.yaml).\n",
                      smallest.total + missing, smallest.dir, size / MiB);
    return false;
}

bool nitro_ram_plan(uint64_t size, uint64_t page_size, int node,
                    NitroRamPlan *plan, Error **errp)
{
    plan->nblocks = 0;
    if (page_size) {
        return nitro_plan_one_size(size, page_size, node, plan, errp);
    }
    return nitro_plan_auto(size, node, plan, errp);
}
