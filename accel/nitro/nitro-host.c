/*
 * AWS Nitro Enclaves: what the host's sysfs says
 *
 * Huge pages, CPU and node lists, read and parsed here only, under
 * $NITRO_SYSFS_ROOT or /sys (see include/system/nitro-host.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/bitmap.h"
#include "qemu/cutils.h"
#include "qemu/units.h"
#include "system/nitro-host.h"
#include "trace.h"

static G_GNUC_PRINTF(1, 0)
char *nitro_sysfs_vpath(const char *fmt, va_list ap)
{
    const char *root = g_getenv(NITRO_SYSFS_ROOT_ENV);
    g_autofree char *rel = g_strdup_vprintf(fmt, ap);

    return g_build_filename(root && *root ? root : "/sys", rel, NULL);
}

char *nitro_sysfs_path(const char *fmt, ...)
{
    va_list ap;
    char *path;

    va_start(ap, fmt);
    path = nitro_sysfs_vpath(fmt, ap);
    va_end(ap);
    return path;
}

static char *nitro_read_stripped(const char *path)
{
    char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return NULL;
    }
    return g_strstrip(text);
}

char *nitro_sysfs_read(const char *fmt, ...)
{
    g_autofree char *path = NULL;
    va_list ap;

    va_start(ap, fmt);
    path = nitro_sysfs_vpath(fmt, ap);
    va_end(ap);
    return nitro_read_stripped(path);
}

bool nitro_parse_cpu_list(const char *list, unsigned long *bm)
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

bool nitro_sysfs_cpu_list(unsigned long *bm, const char *fmt, ...)
{
    g_autofree char *path = NULL;
    g_autofree char *text = NULL;
    va_list ap;

    va_start(ap, fmt);
    path = nitro_sysfs_vpath(fmt, ap);
    va_end(ap);
    text = nitro_read_stripped(path);
    return text && nitro_parse_cpu_list(text, bm);
}

static gint nitro_size_asc(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y ? 1 : 0;
}

GArray *nitro_host_page_sizes(void)
{
    g_autofree char *path = nitro_sysfs_path("kernel/mm/hugepages");
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    GArray *sizes = g_array_new(false, false, sizeof(uint64_t));
    const char *name;

    while (dir && (name = g_dir_read_name(dir))) {
        uint64_t kib, size;

        if (sscanf(name, "hugepages-%" SCNu64 "kB", &kib) == 1) {
            size = kib * KiB;
            g_array_append_val(sizes, size);
        }
    }
    g_array_sort(sizes, nitro_size_asc);
    return sizes;
}

static bool nitro_read_count(const char *dir, const char *name,
                             uint64_t *value, Error **errp)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
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

void nitro_host_pages_clear(NitroHostPages *p)
{
    g_clear_pointer(&p->dir, g_free);
}

bool nitro_host_pages(uint64_t page_size, int node, NitroHostPages *p,
                      Error **errp)
{
    uint64_t free, resv;

    nitro_host_pages_clear(p);
    p->page_size = page_size;
    p->dir = nitro_sysfs_path("kernel/mm/hugepages/hugepages-%" PRIu64 "kB",
                              page_size / KiB);
    if (!nitro_read_count(p->dir, "nr_hugepages", &p->total, errp) ||
        !nitro_read_count(p->dir, "free_hugepages", &free, errp) ||
        !nitro_read_count(p->dir, "resv_hugepages", &resv, errp)) {
        return false;
    }
    p->free = free > resv ? free - resv : 0;
    if (node >= 0) {
        g_free(p->dir);
        p->dir = nitro_sysfs_path("devices/system/node/node%d/hugepages/"
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
