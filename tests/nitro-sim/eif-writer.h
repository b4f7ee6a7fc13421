/*
 * nitro-sim tests: a tiny EIF writer and independent PCR computation
 *
 * Written for the tests from the format facts (nitro-brief.md, section 3
 * and 4), independent of the simulator's parser and of hw/core/eif.c.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef NITRO_SIM_EIF_WRITER_H
#define NITRO_SIM_EIF_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EIF_MAX_RAMDISKS 4

typedef struct EifSpec {
    bool aarch64;
    unsigned version;               /* 0: 4 */
    const uint8_t *kernel;
    size_t kernel_len;
    const char *cmdline;
    const uint8_t *ramdisk[EIF_MAX_RAMDISKS];
    size_t ramdisk_len[EIF_MAX_RAMDISKS];
    int nramdisks;
    const char *metadata;           /* NULL: "{}" */
    bool no_metadata;
    bool bad_crc;
    bool bad_magic;
} EifSpec;

/* "x86_64" or "aarch64" */
const char *eif_host_arch(void);
/* a small made-up image for the host's arch (static buffers) */
void eif_default(EifSpec *s);
/* the EIF file bytes (malloc'd) */
uint8_t *eif_build(const EifSpec *s, size_t *len);
/* PCR0/1/2 as lowercase hex, computed from the spec */
void eif_pcrs(const EifSpec *s, char hex[3][97]);

#endif
