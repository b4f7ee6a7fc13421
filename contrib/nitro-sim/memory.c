/*
 * nitro-sim: donated memory as the kernel sees it
 *
 * NE_SET_USER_MEMORY_REGION needs what the driver learns from pinning the
 * pages: whether [addr, addr + size) is mapped, whether it is hugetlb
 * (VmFlags "ht" in /proc/self/smaps; hugetlbfs files, MAP_HUGETLB
 * "anon_hugepage" and MFD_HUGETLB memfds all have it), the page size
 * (KernelPageSize) and the NUMA node of the pages (get_mempolicy, which
 * faults the pages in as pinning would).
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "nitro-sim.h"

#ifndef MPOL_F_NODE
#define MPOL_F_NODE (1 << 0)
#define MPOL_F_ADDR (1 << 1)
#endif

static int page_node(uint64_t addr)
{
    int node = -1;

    if (syscall(SYS_get_mempolicy, &node, NULL, 0, (void *)addr,
                MPOL_F_NODE | MPOL_F_ADDR) < 0) {
        return -1;
    }
    return node;
}

bool sim_map_info(uint64_t addr, uint64_t size, SimMapInfo *mi)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    char line[512];
    uint64_t covered = addr, end = addr + size;
    bool in_range = false, first = true;
    uint64_t p;

    memset(mi, 0, sizeof(*mi));
    mi->numa_node = -1;
    mi->hugetlb = true;
    if (!f) {
        return false;
    }
    while (fgets(line, sizeof(line), f)) {
        unsigned long long s, e;
        char perms[8];
        int n = 0;

        /* mapping lines start with lowercase hex, field lines with A-Z */
        if (((line[0] >= '0' && line[0] <= '9') ||
             (line[0] >= 'a' && line[0] <= 'f')) &&
            sscanf(line, "%llx-%llx %7s %*s %*s %*s%n", &s, &e, perms,
                   &n) == 3) {
            in_range = e > addr && s < end;
            if (!in_range) {
                continue;
            }
            if (s > covered) {
                break;          /* a hole */
            }
            if (e > covered) {
                covered = e;
            }
            if (first) {
                const char *name = line + n;

                while (*name == ' ') {
                    name++;
                }
                snprintf(mi->name, sizeof(mi->name), "%s", name);
                mi->name[strcspn(mi->name, "\n")] = 0;
                mi->prot = (perms[0] == 'r' ? PROT_READ : 0) |
                           (perms[1] == 'w' ? PROT_WRITE : 0) |
                           (perms[2] == 'x' ? PROT_EXEC : 0);
                first = false;
            }
            continue;
        }
        if (!in_range) {
            continue;
        }
        if (!strncmp(line, "KernelPageSize:", 15)) {
            const char *v = line + 15;
            uint64_t kb = 0;

            while (*v == ' ') {
                v++;
            }
            sim_parse_u64(v, NULL, &kb);
            kb *= 1024;

            if (!mi->page_size || kb < mi->page_size) {
                mi->page_size = kb;
            }
        } else if (!strncmp(line, "VmFlags:", 8)) {
            if (!strstr(line + 8, " ht")) {
                mi->hugetlb = false;
            }
        }
    }
    fclose(f);
    mi->mapped = !first && covered >= end;
    if (!mi->mapped) {
        mi->hugetlb = false;
        return true;
    }
    if (!mi->hugetlb || !mi->page_size) {
        return true;
    }
    for (p = addr; p < end; p += mi->page_size) {
        int node = page_node(p);

        if (p == addr) {
            mi->numa_node = node;
        } else if (node != mi->numa_node) {
            mi->numa_mixed = true;
        }
    }
    return true;
}
