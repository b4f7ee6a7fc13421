/*
 * nitro-sim tests: a tiny EIF writer and independent PCR computation
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <zlib.h>
#include <sys/utsname.h>

#include "eif-writer.h"

const char *eif_host_arch(void)
{
    static struct utsname u;

    if (!u.machine[0] && uname(&u) < 0) {
        return "x86_64";
    }
    return strcmp(u.machine, "aarch64") ? "x86_64" : "aarch64";
}

#define HDR 548

static uint8_t kernel_bytes[4096];
static uint8_t ramdisk_bytes[8192];

void eif_default(EifSpec *s)
{
    size_t i;

    memset(s, 0, sizeof(*s));
    for (i = 0; i < sizeof(kernel_bytes); i++) {
        kernel_bytes[i] = (uint8_t)(i * 7 + 1);
    }
    memcpy(kernel_bytes, "made-up kernel", 14);
    for (i = 0; i < sizeof(ramdisk_bytes); i++) {
        ramdisk_bytes[i] = (uint8_t)(i * 13 + 5);
    }
    memcpy(ramdisk_bytes, "made-up ramdisk", 15);
    s->aarch64 = !strcmp(eif_host_arch(), "aarch64");
    /* the official cmdlines (nitro-brief.md, section 3) */
    if (s->aarch64) {
        s->cmdline = "reboot=k panic=30 pci=off nomodules console=ttyS0 "
                     "random.trust_cpu=on root=/dev/ram0";
    } else {
        s->cmdline = "reboot=k panic=30 pci=off nomodules console=ttyS0 "
                     "i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd "
                     "random.trust_cpu=on";
    }
    s->kernel = kernel_bytes;
    s->kernel_len = sizeof(kernel_bytes);
    s->ramdisk[0] = ramdisk_bytes;
    s->ramdisk_len[0] = sizeof(ramdisk_bytes);
    s->nramdisks = 1;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    int i;

    for (i = n - 1; i >= 0; i--) {
        p[i] = v & 0xff;
        v >>= 8;
    }
}

typedef struct Sec {
    unsigned type;
    const uint8_t *data;
    size_t len;
} Sec;

uint8_t *eif_build(const EifSpec *s, size_t *len)
{
    const char *meta = s->metadata ? s->metadata : "{}";
    Sec sec[3 + EIF_MAX_RAMDISKS];
    size_t total = HDR, off;
    uint8_t *b;
    uLong crc;
    int n = 0, i;

    sec[n++] = (Sec) { 1, s->kernel, s->kernel_len };
    sec[n++] = (Sec) { 2, (const uint8_t *)s->cmdline, strlen(s->cmdline) };
    if (!s->no_metadata) {
        sec[n++] = (Sec) { 5, (const uint8_t *)meta, strlen(meta) };
    }
    for (i = 0; i < s->nramdisks; i++) {
        sec[n++] = (Sec) { 3, s->ramdisk[i], s->ramdisk_len[i] };
    }
    for (i = 0; i < n; i++) {
        total += 12 + sec[i].len;
    }
    b = calloc(1, total);
    memcpy(b, s->bad_magic ? "EIF." : ".eif", 4);
    put_be(b + 4, s->version ? s->version : 4, 2);
    put_be(b + 6, s->aarch64 ? 1 : 0, 2);
    put_be(b + 8, 512ULL << 20, 8);
    put_be(b + 16, 2, 8);
    put_be(b + 26, n, 2);
    off = HDR;
    for (i = 0; i < n; i++) {
        put_be(b + 28 + 8 * i, off, 8);
        put_be(b + 28 + 256 + 8 * i, sec[i].len, 8);
        put_be(b + off, sec[i].type, 2);
        put_be(b + off + 4, sec[i].len, 8);
        memcpy(b + off + 12, sec[i].data, sec[i].len);
        off += 12 + sec[i].len;
    }
    /* CRC over the header without its CRC field, then all sections */
    crc = crc32(0, b, 544);
    crc = crc32(crc, b + HDR, total - HDR);
    put_be(b + 544, s->bad_crc ? crc ^ 1 : crc, 4);
    *len = total;
    return b;
}

static void extend(gnutls_hash_hd_t h, char *hex)
{
    uint8_t buf[96], pcr[48];
    int i;

    memset(buf, 0, 48);
    gnutls_hash_deinit(h, buf + 48);
    gnutls_hash_fast(GNUTLS_DIG_SHA384, buf, 96, pcr);
    for (i = 0; i < 48; i++) {
        sprintf(hex + 2 * i, "%02x", pcr[i]);
    }
}

void eif_pcrs(const EifSpec *s, char hex[3][97])
{
    gnutls_hash_hd_t h[3];
    int i;

    for (i = 0; i < 3; i++) {
        gnutls_hash_init(&h[i], GNUTLS_DIG_SHA384);
    }
    for (i = 0; i < 2; i++) {
        gnutls_hash(h[i], s->kernel, s->kernel_len);
        gnutls_hash(h[i], s->cmdline, strlen(s->cmdline));
    }
    for (i = 0; i < s->nramdisks; i++) {
        gnutls_hash(h[0], s->ramdisk[i], s->ramdisk_len[i]);
        gnutls_hash(h[i ? 2 : 1], s->ramdisk[i], s->ramdisk_len[i]);
    }
    for (i = 0; i < 3; i++) {
        extend(h[i], hex[i]);
    }
}
