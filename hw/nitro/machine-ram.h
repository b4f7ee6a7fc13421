/*
 * AWS Nitro Enclaves machine: guest RAM from huge pages
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_NITRO_MACHINE_RAM_H
#define HW_NITRO_MACHINE_RAM_H

/*
 * Create the default RAM backend: a hugetlb memfd of @page_size pages,
 * after checking that the host has enough of them free.
 */
bool nitro_ram_create_default(MachineState *ms, uint64_t page_size,
                              Error **errp);

/* Check RAM (default or -machine memory-backend=) for the driver's rules. */
bool nitro_ram_check(MachineState *ms, Error **errp);

#endif
