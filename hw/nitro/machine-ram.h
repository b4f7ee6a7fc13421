/*
 * AWS Nitro Enclaves machine: guest RAM from huge pages
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_NITRO_MACHINE_RAM_H
#define HW_NITRO_MACHINE_RAM_H

/*
 * Create the default RAM: hugetlb memfds of @page_size pages (0: the
 * largest free pages first, mixing sizes when needed), after checking
 * that the host has them free on the CPU pool's node, and bound to it.
 */
bool nitro_ram_create_default(MachineState *ms, uint64_t page_size,
                              Error **errp);

/* Guest RAM as one buffer: the concatenation of its blocks in RAM order */
uint8_t *nitro_ram_host(MachineState *ms);

/* Check RAM (default or -machine memory-backend=) for the driver's rules. */
bool nitro_ram_check(MachineState *ms, Error **errp);

#endif
