/*
 * nitro-sim: the hypervisor's EIF check and PCR computation
 *
 * An EIF parser written for the simulator, independent of hw/core/eif.c
 * (it is the cross-check).  The image is read where the enclave would
 * find it: at an offset into the concatenation of the donated regions.
 * Nothing is copied: CRC-32 and the SHA-384 digests are streamed over the
 * mapped memory, so a 1 GiB image costs one pass.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <zlib.h>

#include "nitro-sim.h"

#define EIF_HDR_SIZE        548
#define EIF_SEC_HDR_SIZE    12
#define EIF_MAX_SECTIONS    32
#define EIF_CRC_OFFSET      544

enum {
    SEC_INVALID = 0, SEC_KERNEL, SEC_CMDLINE, SEC_RAMDISK, SEC_SIGNATURE,
    SEC_METADATA,
};

typedef struct Img {
    const SimSeg *segs;
    int nsegs;
    uint64_t base;
    uint64_t total;             /* bytes available from base */
} Img;

/* call @cb on the contiguous pieces of [off, off + len) of the image */
static void walk(const Img *img, uint64_t off, uint64_t len,
                 void (*cb)(void *, const uint8_t *, size_t), void *opaque)
{
    uint64_t pos = img->base + off;
    int i;

    for (i = 0; i < img->nsegs && len; i++) {
        uint64_t l = img->segs[i].len;

        if (pos >= l) {
            pos -= l;
            continue;
        }
        while (pos < l && len) {
            uint64_t n = l - pos < len ? l - pos : len;

            /* chunks of at most 1 GiB: zlib and gnutls take int sizes */
            if (n > (1ULL << 30)) {
                n = 1ULL << 30;
            }
            cb(opaque, img->segs[i].p + pos, n);
            pos += n;
            len -= n;
        }
        pos = 0;
    }
}

typedef struct Copy {
    uint8_t *dst;
} Copy;

static void copy_cb(void *opaque, const uint8_t *p, size_t n)
{
    Copy *c = opaque;

    memcpy(c->dst, p, n);
    c->dst += n;
}

static void img_read(const Img *img, uint64_t off, void *buf, uint64_t len)
{
    Copy c = { buf };

    walk(img, off, len, copy_cb, &c);
}

typedef struct Digest {
    uLong crc;
    gnutls_hash_hd_t h[3];
    bool use[3];
    bool crc_on;
} Digest;

static void digest_cb(void *opaque, const uint8_t *p, size_t n)
{
    Digest *d = opaque;
    int i;

    if (d->crc_on) {
        d->crc = crc32_z(d->crc, p, n);
    }
    for (i = 0; i < 3; i++) {
        if (d->use[i]) {
            gnutls_hash(d->h[i], p, n);
        }
    }
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* the verdict is an error, and why: false */
static bool __attribute__((format(printf, 2, 3)))
fail(SimEif *r, const char *fmt, ...)
{
    va_list ap;

    r->ok = false;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof(r->message), fmt, ap);
    va_end(ap);
    return false;
}

static void finish_pcr(gnutls_hash_hd_t h, uint8_t *pcr)
{
    uint8_t buf[96];

    memset(buf, 0, 48);
    gnutls_hash_deinit(h, buf + 48);
    gnutls_hash_fast(GNUTLS_DIG_SHA384, buf, sizeof(buf), pcr);
}

void sim_eif_free(SimEif *r)
{
    free(r->cmdline);
    r->cmdline = NULL;
}

/* the EIF header and where its sections lie */
typedef struct Layout {
    uint8_t hdr[EIF_HDR_SIZE];
    uint64_t off[EIF_MAX_SECTIONS], size[EIF_MAX_SECTIONS];
    unsigned order[EIF_MAX_SECTIONS];   /* file order */
    unsigned types[EIF_MAX_SECTIONS];
} Layout;

/* the header: magic, version, sections inside memory, their file order */
static bool read_header(const Img *img, SimEif *r, Layout *l)
{
    unsigned i, j;

    img_read(img, 0, l->hdr, sizeof(l->hdr));
    if (memcmp(l->hdr, ".eif", 4)) {
        return fail(r, "bad magic %02x%02x%02x%02x (expected \".eif\")",
                    l->hdr[0], l->hdr[1], l->hdr[2], l->hdr[3]);
    }
    r->version = be(l->hdr + 4, 2);
    r->arch = (be(l->hdr + 6, 2) & 1) ? SIM_ARCH_AARCH64 : SIM_ARCH_X86_64;
    r->nsections = be(l->hdr + 26, 2);
    if (r->version < 2 || r->version > 4) {
        return fail(r, "unsupported EIF version %u", r->version);
    }
    if (r->nsections == 0 || r->nsections > EIF_MAX_SECTIONS) {
        return fail(r, "bad section count %u", r->nsections);
    }
    for (i = 0; i < r->nsections; i++) {
        l->off[i] = be(l->hdr + 28 + 8 * i, 8);
        l->size[i] = be(l->hdr + 28 + 256 + 8 * i, 8);
        if (l->off[i] < EIF_HDR_SIZE || l->off[i] > img->total ||
            l->size[i] > img->total ||
            img->total - l->off[i] < EIF_SEC_HDR_SIZE + l->size[i]) {
            return fail(r, "section %u (offset %llu, size %llu) lies "
                        "outside enclave memory", i,
                        (unsigned long long)l->off[i],
                        (unsigned long long)l->size[i]);
        }
        l->order[i] = i;
    }
    for (i = 1; i < r->nsections; i++) {
        for (j = i; j > 0 && l->off[l->order[j - 1]] > l->off[l->order[j]];
             j--) {
            unsigned t = l->order[j];

            l->order[j] = l->order[j - 1];
            l->order[j - 1] = t;
        }
    }
    return true;
}

/* the section headers, in file order, and which sections there are */
static bool check_sections(const Img *img, SimEif *r, Layout *l)
{
    unsigned nkernel = 0, ncmdline = 0, nmeta = 0, nsig = 0, i;
    uint64_t end = EIF_HDR_SIZE;

    for (i = 0; i < r->nsections; i++) {
        unsigned s = l->order[i];
        uint8_t sh[EIF_SEC_HDR_SIZE];

        if (l->off[s] < end) {
            return fail(r, "section %u overlaps the previous one", s);
        }
        end = l->off[s] + EIF_SEC_HDR_SIZE + l->size[s];
        img_read(img, l->off[s], sh, sizeof(sh));
        l->types[s] = be(sh, 2);
        if (be(sh + 4, 8) != l->size[s]) {
            return fail(r, "section %u: size %llu in its header, %llu in "
                        "the EIF header", s, (unsigned long long)be(sh + 4, 8),
                        (unsigned long long)l->size[s]);
        }
        if (be(sh + 2, 2) != 0) {
            return fail(r, "section %u: flags 0x%x (expected 0)", s,
                        (unsigned)be(sh + 2, 2));
        }
        switch (l->types[s]) {
        case SEC_KERNEL:
            nkernel++;
            r->kernel_size = l->size[s];
            r->kernel_off = l->off[s] + EIF_SEC_HDR_SIZE;
            break;
        case SEC_CMDLINE:
            ncmdline++;
            break;
        case SEC_RAMDISK:
            if (!nkernel) {
                return fail(r, "ramdisk section %u before the kernel", s);
            }
            r->ramdisk_off[r->nramdisks] = l->off[s] + EIF_SEC_HDR_SIZE;
            r->ramdisk_size[r->nramdisks++] = l->size[s];
            break;
        case SEC_SIGNATURE:
            nsig++;
            r->is_signed = true;
            break;
        case SEC_METADATA:
            nmeta++;
            break;
        default:
            return fail(r, "section %u: invalid type %u", s, l->types[s]);
        }
    }
    r->size = end;
    if (nkernel != 1 || ncmdline != 1) {
        return fail(r, "%u kernel and %u cmdline sections (expected one "
                    "each)", nkernel, ncmdline);
    }
    if (!r->nramdisks) {
        return fail(r, "no ramdisk section: not bootable");
    }
    if (nsig > 1 || nmeta > 1) {
        return fail(r, "more than one signature or metadata section");
    }
    if (r->version >= 4 && !nmeta) {
        return fail(r, "EIF version %u without metadata section",
                    r->version);
    }
    return true;
}

/* one pass: the CRC over everything, PCR0/1/2 over what they measure */
static uint32_t measure(const Img *img, SimEif *r, const Layout *l)
{
    bool seen_ramdisk = false;
    Digest d;
    unsigned i;
    int k;

    memset(&d, 0, sizeof(d));
    for (k = 0; k < 3; k++) {
        gnutls_hash_init(&d.h[k], GNUTLS_DIG_SHA384);
    }
    d.crc = crc32_z(0, l->hdr, EIF_CRC_OFFSET);
    for (i = 0; i < r->nsections; i++) {
        unsigned s = l->order[i];
        uint64_t data = l->off[s] + EIF_SEC_HDR_SIZE;

        d.crc_on = true;
        memset(d.use, 0, sizeof(d.use));
        walk(img, l->off[s], EIF_SEC_HDR_SIZE, digest_cb, &d);
        switch (l->types[s]) {
        case SEC_KERNEL:
            d.use[0] = d.use[1] = true;
            break;
        case SEC_CMDLINE:
            d.use[0] = d.use[1] = true;
            r->cmdline = malloc(l->size[s] + 1);
            if (r->cmdline) {
                img_read(img, data, r->cmdline, l->size[s]);
                r->cmdline[l->size[s]] = 0;
            }
            break;
        case SEC_RAMDISK:
            /* the first ramdisk in file order goes to PCR1, others PCR2 */
            d.use[0] = true;
            d.use[1] = !seen_ramdisk;
            d.use[2] = seen_ramdisk;
            seen_ramdisk = true;
            break;
        default:
            break;
        }
        walk(img, data, l->size[s], digest_cb, &d);
    }
    for (k = 0; k < 3; k++) {
        finish_pcr(d.h[k], r->pcr[k]);
        for (i = 0; i < 48; i++) {
            snprintf(r->pcr_hex[k] + 2 * i, 3, "%02x", r->pcr[k][i]);
        }
    }
    return d.crc;
}

void sim_eif_check(const SimSeg *segs, int nsegs, uint64_t offset, int arch,
                   SimEif *r)
{
    Img img = { segs, nsegs, offset, 0 };
    uint64_t total = 0;
    uint32_t crc, want;
    Layout l;
    int k;

    memset(r, 0, sizeof(*r));
    r->ok = true;
    r->arch = -1;
    for (k = 0; k < nsegs; k++) {
        total += segs[k].len;
    }
    if (total < offset + EIF_HDR_SIZE) {
        fail(r, "enclave memory ends before the EIF header (%llu bytes "
             "after the image offset)",
             (unsigned long long)(total > offset ? total - offset : 0));
        return;
    }
    img.total = total - offset;
    if (!read_header(&img, r, &l) || !check_sections(&img, r, &l)) {
        return;
    }
    crc = measure(&img, r, &l);
    want = be(l.hdr + EIF_CRC_OFFSET, 4);
    r->crc_ok = crc == want;
    if (!r->crc_ok) {
        fail(r, "CRC mismatch: computed %08x, header says %08x",
             (unsigned)crc, (unsigned)want);
        return;
    }
    if (arch >= 0 && r->arch != arch) {
        fail(r, "EIF is for %s, the simulated host is %s",
             sim_arch_name(r->arch), sim_arch_name(arch));
    }
}
