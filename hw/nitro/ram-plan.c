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
#include "ram-plan.h"
#include "trace.h"

#define HUGEPAGES_SYSFS "/sys/kernel/mm/hugepages"

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

/* Pages of one size: how many are reserved and free, where to add more */
typedef struct NitroPages {
    uint64_t page_size;
    uint64_t total;
    uint64_t free;
    char *dir;
} NitroPages;

static void nitro_pages_free(NitroPages *p)
{
    g_clear_pointer(&p->dir, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(NitroPages, nitro_pages_free)

/*
 * The pages of @page_size usable on @node (-1: any): free and not
 * reserved for a mapping, and on that node.
 */
static bool nitro_count_pages(uint64_t page_size, int node, NitroPages *p,
                              Error **errp)
{
    g_autofree char *dir = g_strdup_printf("%s/hugepages-%" PRIu64 "kB",
                                           HUGEPAGES_SYSFS, page_size / KiB);
    uint64_t free, resv;

    p->page_size = page_size;
    if (!nitro_read_count(dir, "nr_hugepages", &p->total, errp) ||
        !nitro_read_count(dir, "free_hugepages", &free, errp) ||
        !nitro_read_count(dir, "resv_hugepages", &resv, errp)) {
        return false;
    }
    p->free = free > resv ? free - resv : 0;
    p->dir = g_steal_pointer(&dir);
    if (node >= 0) {
        g_free(p->dir);
        p->dir = g_strdup_printf(NITRO_NODE_SYSFS "/node%d/hugepages/"
                                 "hugepages-%" PRIu64 "kB", node,
                                 page_size / KiB);
        if (!nitro_read_count(p->dir, "nr_hugepages", &p->total, errp) ||
            !nitro_read_count(p->dir, "free_hugepages", &free, errp)) {
            return false;
        }
        p->free = MIN(p->free, free);
    }
    trace_nitro_hugepages(node, page_size, p->free, p->total);
    return true;
}

static gint nitro_size_desc(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? 1 : x > y ? -1 : 0;
}

/* The huge page sizes of the host the driver can take, largest first */
static GArray *nitro_host_page_sizes(void)
{
    g_autoptr(GDir) dir = g_dir_open(HUGEPAGES_SYSFS, 0, NULL);
    GArray *sizes = g_array_new(false, false, sizeof(uint64_t));
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        uint64_t kib, size;

        if (sscanf(name, "hugepages-%" SCNu64 "kB", &kib) != 1) {
            continue;
        }
        size = kib * KiB;
        if (size >= NITRO_MEM_ALIGN && !(size % NITRO_MEM_ALIGN)) {
            g_array_append_val(sizes, size);
        }
    }
    g_array_sort(sizes, nitro_size_desc);
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
    g_auto(NitroPages) p = { 0 };
    uint64_t need = size / page_size;
    char where[64];

    if (!g_file_test(HUGEPAGES_SYSFS, G_FILE_TEST_IS_DIR) ||
        !nitro_count_pages(page_size, -1, &p, NULL)) {
        error_setg(errp, "this host has no %s huge pages", psize);
        error_append_hint(errp, "Choose a huge page size the host supports "
                          "(see %s) with -machine nitro,hugepage-size=..., "
                          "or leave it out to use what is free.\n",
                          HUGEPAGES_SYSFS);
        return false;
    }
    nitro_pages_free(&p);
    if (!nitro_count_pages(page_size, node, &p, errp)) {
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
    g_autoptr(GArray) sizes = nitro_host_page_sizes();
    g_autoptr(GString) table = g_string_new("");
    g_autofree char *ssize = size_to_str(size);
    g_auto(NitroPages) smallest = { 0 };
    uint64_t left = size, missing;
    char where[64];
    guint i;

    if (!sizes->len) {
        error_setg(errp, "this host has no huge pages of 2 MiB or a "
                   "multiple of it");
        error_append_hint(errp, "The driver takes only huge pages (see %s)."
                          "\n", HUGEPAGES_SYSFS);
        return false;
    }
    for (i = 0; i < sizes->len; i++) {
        uint64_t page_size = g_array_index(sizes, uint64_t, i);
        g_auto(NitroPages) p = { 0 };
        g_autofree char *psize = size_to_str(page_size);
        uint64_t take;

        if (!nitro_count_pages(page_size, node, &p, errp)) {
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
