/*
 * AWS Nitro Enclaves machine: which huge pages make up guest RAM
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_NITRO_RAM_PLAN_H
#define HW_NITRO_RAM_PLAN_H

#include "system/nitro-accel.h"

/* Guest RAM as blocks of one huge page size each, in RAM order */
typedef struct NitroRamPlan {
    int nblocks;
    struct {
        uint64_t page_size;
        uint64_t size;
    } block[NITRO_RAM_MAX_BLOCKS];
} NitroRamPlan;

/*
 * Plan @size bytes of guest RAM on NUMA node @node (-1: any) from the
 * free huge pages of the host.  With @page_size 0, use the largest pages
 * first, as nitro-cli's allocator service reserves them, mixing sizes
 * when needed; otherwise only pages of @page_size.  False with @errp set
 * (what is needed and free, per size, and how to reserve it) if the host
 * does not have them.
 */
bool nitro_ram_plan(uint64_t size, uint64_t page_size, int node,
                    NitroRamPlan *plan, Error **errp);

#endif
