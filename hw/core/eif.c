/*
 * EIF (AWS Nitro Enclaves Enclave Image Format): validate, load, measure
 * and build images
 *
 * The validation code (header, section table, section headers, CRC) works
 * on bytes as they come, from memory or from a file descriptor, and needs
 * nothing but a CRC-32 (ISA-L's when QEMU is built with it, else zlib's);
 * measuring uses QEMU's crypto hashing, and a small CBOR reader for the
 * signature section.
 *
 * Copyright (c) 2024 Dorjoy Chowdhury <dorjoychy111@gmail.com>
 * Copyright (c) 2026 Nitro Enclaves for QEMU contributors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * (at your option) any later version.  See the COPYING file in the
 * top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "crypto/hash.h"
#ifdef CONFIG_ISAL
#include <isa-l/crc.h>
#endif
#include <zlib.h>

#include "hw/core/eif.h"

QEMU_BUILD_BUG_ON(sizeof(EifHeader) != EIF_HEADER_SIZE);
QEMU_BUILD_BUG_ON(sizeof(EifSectionHeader) != EIF_SECTION_HEADER_SIZE);
QEMU_BUILD_BUG_ON(offsetof(EifHeader, crc32) != EIF_HEADER_CRC_OFFSET);

/* Streaming works in chunks of this size: memory use stays flat */
#define EIF_CHUNK_SIZE (1 * MiB)

static const char *const eif_section_type_names[EIF_SECTION__MAX] = {
    [EIF_SECTION_INVALID] = "invalid",
    [EIF_SECTION_KERNEL] = "kernel",
    [EIF_SECTION_CMDLINE] = "cmdline",
    [EIF_SECTION_RAMDISK] = "ramdisk",
    [EIF_SECTION_SIGNATURE] = "signature",
    [EIF_SECTION_METADATA] = "metadata",
};

const char *eif_section_type_name(unsigned type)
{
    return type < EIF_SECTION__MAX ? eif_section_type_names[type] : "unknown";
}

const char *eif_arch_name(EifArch arch)
{
    return arch == EIF_ARCH_AARCH64 ? "aarch64" : "x86_64";
}

const char *eif_default_cmdline(EifArch arch)
{
    if (arch == EIF_ARCH_AARCH64) {
        return "reboot=k panic=30 pci=off nomodules console=ttyS0 "
               "random.trust_cpu=on root=/dev/ram0";
    }
    return "reboot=k panic=30 pci=off nomodules console=ttyS0 "
           "i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd "
           "random.trust_cpu=on";
}

/*
 * The CRC-32 of zlib and gzip.  An image is checked as it is loaded, so
 * this runs over every byte: ISA-L's carry-less multiply folding is about
 * ten times faster than zlib's tables.
 */
uint32_t eif_crc32(uint32_t crc, const void *data, size_t len)
{
#ifdef CONFIG_ISAL
    return crc32_gzip_refl(crc, data, len);
#else
    const uint8_t *p = data;

    /* zlib's crc32() takes 32-bit lengths */
    while (len) {
        uInt n = MIN(len, 1u << 30);

        crc = crc32(crc, p, n);
        p += n;
        len -= n;
    }
    return crc;
#endif
}

uint32_t eif_crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t len2)
{
    return crc32_combine(crc1, crc2, len2);
}

/*
 * Validation
 *
 * The same checks run on an image in memory and on one streamed from a
 * file descriptor: the header (with the section table) first, then each
 * section header and its data, in file order, then the rules about the
 * image as a whole and the CRC.  The parser CRCs the header; whoever
 * brings the bytes after it (memory, a file, or a caller that wrote them)
 * CRCs those.
 */

typedef struct EifParser {
    EifInfo *info;
    /* The CRC that the header says the image has */
    uint32_t header_crc;
    /* The CRC of the header, up to its CRC field */
    uint32_t crc;
    unsigned count[EIF_SECTION__MAX];
    unsigned first[EIF_SECTION__MAX];
} EifParser;

static void eif_parser_init(EifParser *p, EifInfo *info)
{
    memset(p, 0, sizeof(*p));
    memset(info, 0, sizeof(*info));
    p->info = info;
}

static bool eif_parse_header(EifParser *p, const uint8_t *buf, Error **errp)
{
    EifInfo *info = p->info;
    EifHeader h;
    uint16_t flags;
    uint64_t end = EIF_HEADER_SIZE;

    memcpy(&h, buf, sizeof(h));
    if (memcmp(h.magic, EIF_MAGIC, sizeof(h.magic))) {
        error_setg(errp, "bad magic 0x%08" PRIx32 ", expected 0x%08" PRIx32
                   " (\"" EIF_MAGIC "\")", (uint32_t)ldl_be_p(h.magic),
                   (uint32_t)ldl_be_p(EIF_MAGIC));
        return false;
    }
    info->version = be16_to_cpu(h.version);
    if (info->version < EIF_VERSION_MIN || info->version > EIF_VERSION) {
        error_setg(errp, "unsupported version %u (supported: %d to %d)",
                   info->version, EIF_VERSION_MIN, EIF_VERSION);
        return false;
    }
    flags = be16_to_cpu(h.flags);
    if (flags & ~EIF_FLAG_ARCH_AARCH64) {
        error_setg(errp, "unknown header flags 0x%04x (only bit 0, the "
                   "architecture, is defined)", flags);
        return false;
    }
    info->arch = flags & EIF_FLAG_ARCH_AARCH64 ? EIF_ARCH_AARCH64
                                               : EIF_ARCH_X86_64;
    info->default_mem = be64_to_cpu(h.default_mem);
    info->default_cpus = be64_to_cpu(h.default_cpus);
    info->nr_sections = be16_to_cpu(h.section_cnt);
    if (info->nr_sections > EIF_MAX_SECTIONS) {
        error_setg(errp, "section count %u exceeds the limit of %d",
                   info->nr_sections, EIF_MAX_SECTIONS);
        return false;
    }

    for (unsigned i = 0; i < info->nr_sections; i++) {
        EifSection *s = &info->sections[i];

        s->index = i;
        s->offset = be64_to_cpu(h.section_offsets[i]);
        s->size = be64_to_cpu(h.section_sizes[i]);
        if (s->offset < end && i == 0) {
            error_setg(errp, "section 0 at offset %" PRIu64 " overlaps the "
                       "%d-byte header", s->offset, EIF_HEADER_SIZE);
            return false;
        }
        if (s->offset < end) {
            error_setg(errp, "section %u at offset %" PRIu64 " overlaps "
                       "section %u (offset %" PRIu64 ", ends at %" PRIu64 ")",
                       i, s->offset, i - 1, s[-1].offset, end);
            return false;
        }
        if (s->offset > end) {
            error_setg(errp, "section %u at offset %" PRIu64 " leaves a gap "
                       "of %" PRIu64 " bytes after %s, which ends at %"
                       PRIu64 " (sections must follow each other)",
                       i, s->offset, s->offset - end,
                       i ? "the previous section" : "the header", end);
            return false;
        }
        if (s->size > UINT64_MAX - EIF_SECTION_HEADER_SIZE - s->offset) {
            error_setg(errp, "section %u at offset %" PRIu64 ": size %" PRIu64
                       " overflows 64-bit offsets", i, s->offset, s->size);
            return false;
        }
        s->data_offset = s->offset + EIF_SECTION_HEADER_SIZE;
        end = s->data_offset + s->size;
    }
    info->size = end;
    p->header_crc = be32_to_cpu(h.crc32);
    p->crc = eif_crc32(0, buf, EIF_HEADER_CRC_OFFSET);
    return true;
}

/* Check that the section table describes exactly @avail bytes */
static bool eif_check_size(const EifInfo *info, uint64_t avail, Error **errp)
{
    for (unsigned i = 0; i < info->nr_sections; i++) {
        const EifSection *s = &info->sections[i];

        if (s->data_offset + s->size > avail) {
            error_setg(errp, "section %u (offset %" PRIu64 ", %" PRIu64
                       " bytes) ends at %" PRIu64 ", beyond the end of the "
                       "image at %" PRIu64, i, s->offset, s->size,
                       s->data_offset + s->size, avail);
            return false;
        }
    }
    if (info->size < avail) {
        error_setg(errp, "%" PRIu64 " bytes of trailing data after the last "
                   "section, which ends at %" PRIu64,
                   avail - info->size, info->size);
        return false;
    }
    return true;
}

static bool eif_parse_section_header(EifParser *p, unsigned i,
                                     const uint8_t *buf, Error **errp)
{
    EifSection *s = &p->info->sections[i];
    EifSectionHeader sh;
    unsigned type, flags;
    uint64_t size;
    const char *name;

    memcpy(&sh, buf, sizeof(sh));
    type = be16_to_cpu(sh.type);
    flags = be16_to_cpu(sh.flags);
    size = be64_to_cpu(sh.size);
    name = eif_section_type_name(type);

    if (type == EIF_SECTION_INVALID || type >= EIF_SECTION__MAX) {
        error_setg(errp, "section %u at offset %" PRIu64 " has %s type %u",
                   i, s->offset, name, type);
        return false;
    }
    if (flags) {
        error_setg(errp, "section %u (%s) at offset %" PRIu64 " has flags "
                   "0x%04x, expected 0", i, name, s->offset, flags);
        return false;
    }
    if (size != s->size) {
        error_setg(errp, "section %u (%s) at offset %" PRIu64 ": its header "
                   "says %" PRIu64 " bytes, the section table %" PRIu64,
                   i, name, s->offset, size, s->size);
        return false;
    }
    if (p->count[type] &&
        (type == EIF_SECTION_KERNEL || type == EIF_SECTION_CMDLINE ||
         type == EIF_SECTION_SIGNATURE || type == EIF_SECTION_METADATA)) {
        error_setg(errp, "section %u at offset %" PRIu64 " is a second %s "
                   "section (the first is section %u)",
                   i, s->offset, name, p->first[type]);
        return false;
    }
    /* An empty signature has no certificate to measure */
    if ((type == EIF_SECTION_KERNEL || type == EIF_SECTION_SIGNATURE) &&
        !size) {
        error_setg(errp, "section %u (%s) at offset %" PRIu64 " is empty",
                   i, name, s->offset);
        return false;
    }
    if (type == EIF_SECTION_RAMDISK && !p->count[EIF_SECTION_KERNEL]) {
        error_setg(errp, "section %u (ramdisk) at offset %" PRIu64 " comes "
                   "before the kernel section", i, s->offset);
        return false;
    }
    if (type == EIF_SECTION_SIGNATURE && size > EIF_SIGNATURE_MAX_SIZE) {
        error_setg(errp, "section %u (signature) at offset %" PRIu64
                   ": %" PRIu64 " bytes exceed the limit of %d",
                   i, s->offset, size, EIF_SIGNATURE_MAX_SIZE);
        return false;
    }

    s->type = type;
    s->nth = p->count[type];
    if (!p->count[type]++) {
        p->first[type] = i;
    }
    return true;
}

/* @len bytes of the data of @s, at @pos within its data */
static bool eif_parse_data(EifParser *p, const EifSection *s, uint64_t pos,
                           const uint8_t *data, size_t len, Error **errp)
{
    if (s->type == EIF_SECTION_CMDLINE) {
        const uint8_t *nul = memchr(data, 0, len);

        /* The loaders would cut the command line that was measured */
        if (nul) {
            error_setg(errp, "section %u (cmdline) has a NUL byte at offset %"
                       PRIu64, s->index, s->data_offset + pos + (nul - data));
            return false;
        }
    }
    return true;
}

/* @body_crc: the CRC of the bytes after the header */
static bool eif_parse_finish(EifParser *p, uint32_t body_crc, Error **errp)
{
    static const EifSectionType required[] = {
        EIF_SECTION_KERNEL, EIF_SECTION_CMDLINE, EIF_SECTION_RAMDISK,
    };
    EifInfo *info = p->info;
    uint32_t crc;

    for (unsigned i = 0; i < ARRAY_SIZE(required); i++) {
        if (!p->count[required[i]]) {
            error_setg(errp, "no %s section",
                       eif_section_type_name(required[i]));
            return false;
        }
    }
    if (info->version >= 4 && !p->count[EIF_SECTION_METADATA]) {
        error_setg(errp, "no metadata section (mandatory from version 4)");
        return false;
    }
    crc = eif_crc32_combine(p->crc, body_crc, info->size - EIF_HEADER_SIZE);
    if (crc != p->header_crc) {
        error_setg(errp, "CRC mismatch: the header says 0x%08" PRIx32
                   ", the image has 0x%08" PRIx32, p->header_crc, crc);
        return false;
    }
    info->crc32 = crc;
    info->nr_ramdisks = p->count[EIF_SECTION_RAMDISK];
    return true;
}

/* eif_validate(), with the CRC after the header given, or computed */
static bool eif_validate_image(const void *image, size_t size,
                               const uint32_t *body_crc, EifInfo *info,
                               Error **errp)
{
    const uint8_t *base = image;
    EifParser p;

    eif_parser_init(&p, info);
    if (size < EIF_HEADER_SIZE) {
        error_setg(errp, "image of %" PRIu64 " bytes is smaller than the "
                   "%d-byte header", (uint64_t)size, EIF_HEADER_SIZE);
        return false;
    }
    if (!eif_parse_header(&p, base, errp) ||
        !eif_check_size(info, size, errp)) {
        return false;
    }
    for (unsigned i = 0; i < info->nr_sections; i++) {
        const EifSection *s = &info->sections[i];

        if (!eif_parse_section_header(&p, i, base + s->offset, errp) ||
            !eif_parse_data(&p, s, 0, base + s->data_offset, s->size, errp)) {
            return false;
        }
    }
    return eif_parse_finish(&p, body_crc ? *body_crc :
                            eif_crc32(0, base + EIF_HEADER_SIZE,
                                      size - EIF_HEADER_SIZE), errp);
}

bool eif_validate(const void *image, size_t size, EifInfo *info,
                  Error **errp)
{
    return eif_validate_image(image, size, NULL, info, errp);
}

bool eif_validate_crc(const void *image, size_t size, uint32_t body_crc,
                      EifInfo *info, Error **errp)
{
    return eif_validate_image(image, size, &body_crc, info, errp);
}

const EifSection *eif_find_section(const EifInfo *info, EifSectionType type,
                                   unsigned nth)
{
    for (unsigned i = 0; i < info->nr_sections; i++) {
        const EifSection *s = &info->sections[i];

        if (s->type == type && s->nth == nth) {
            return s;
        }
    }
    return NULL;
}

/*
 * Measurement
 */

struct EifMeasure {
    /* PCR0, PCR1, PCR2 */
    QCryptoHash *hash[EIF_PCR8];
    GByteArray *signature;
};

static const unsigned eif_pcr_indexes[EIF_NR_PCRS] = { 0, 1, 2, 8 };

unsigned eif_pcr_index(EifPcr pcr)
{
    return eif_pcr_indexes[pcr];
}

void eif_pcr_to_hex(const uint8_t pcr[EIF_PCR_LEN],
                    char hex[EIF_PCR_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";

    for (unsigned i = 0; i < EIF_PCR_LEN; i++) {
        hex[2 * i] = digits[pcr[i] >> 4];
        hex[2 * i + 1] = digits[pcr[i] & 0xf];
    }
    hex[EIF_PCR_HEX_LEN] = '\0';
}

void eif_measure_free(EifMeasure *m)
{
    if (!m) {
        return;
    }
    for (unsigned i = 0; i < ARRAY_SIZE(m->hash); i++) {
        qcrypto_hash_free(m->hash[i]);
    }
    if (m->signature) {
        g_byte_array_unref(m->signature);
    }
    g_free(m);
}

EifMeasure *eif_measure_new(Error **errp)
{
    g_autoptr(EifMeasure) m = g_new0(EifMeasure, 1);

    for (unsigned i = 0; i < ARRAY_SIZE(m->hash); i++) {
        m->hash[i] = qcrypto_hash_new(QCRYPTO_HASH_ALGO_SHA384, errp);
        if (!m->hash[i]) {
            return NULL;
        }
    }
    return g_steal_pointer(&m);
}

bool eif_measure_update(EifMeasure *m, const EifSection *s,
                        const void *data, size_t len, Error **errp)
{
    switch (s->type) {
    case EIF_SECTION_KERNEL:
    case EIF_SECTION_CMDLINE:
        return !qcrypto_hash_update(m->hash[EIF_PCR0], data, len, errp) &&
               !qcrypto_hash_update(m->hash[EIF_PCR1], data, len, errp);
    case EIF_SECTION_RAMDISK:
        return !qcrypto_hash_update(m->hash[EIF_PCR0], data, len, errp) &&
               !qcrypto_hash_update(m->hash[s->nth ? EIF_PCR2 : EIF_PCR1],
                                    data, len, errp);
    case EIF_SECTION_SIGNATURE:
        if (!m->signature) {
            m->signature = g_byte_array_new();
        }
        if (len > EIF_SIGNATURE_MAX_SIZE - m->signature->len) {
            error_setg(errp, "signature section exceeds the limit of %d "
                       "bytes", EIF_SIGNATURE_MAX_SIZE);
            return false;
        }
        g_byte_array_append(m->signature, data, len);
        return true;
    default:
        /* Metadata is not measured */
        return true;
    }
}

/*
 * Just enough CBOR (RFC 8949) for signature sections, bounds-checked:
 * definite lengths only, nesting limited.
 */
#define EIF_CBOR_MAX_DEPTH 16

typedef struct EifCbor {
    const uint8_t *p;
    const uint8_t *end;
} EifCbor;

/* The head of the next item: its major type and argument */
static bool eif_cbor_head(EifCbor *c, unsigned *major, uint64_t *arg)
{
    unsigned info, len;

    if (c->p == c->end) {
        return false;
    }
    *major = *c->p >> 5;
    info = *c->p++ & 0x1f;
    if (info < 24) {
        *arg = info;
        return true;
    }
    /* 28..30 are reserved, 31 is an indefinite length */
    if (info > 27) {
        return false;
    }
    len = 1 << (info - 24);
    if (c->end - c->p < len) {
        return false;
    }
    *arg = 0;
    while (len--) {
        *arg = *arg << 8 | *c->p++;
    }
    return true;
}

static bool eif_cbor_skip(EifCbor *c, unsigned depth)
{
    unsigned major;
    uint64_t arg;

    if (!depth || !eif_cbor_head(c, &major, &arg)) {
        return false;
    }
    switch (major) {
    case 2: /* byte string */
    case 3: /* text string */
        if (arg > c->end - c->p) {
            return false;
        }
        c->p += arg;
        return true;
    case 5: /* map: pairs */
        if (arg > (c->end - c->p) / 2) {
            return false;
        }
        arg *= 2;
        /* fall through */
    case 4: /* array; every item takes a byte at least */
        if (arg > c->end - c->p) {
            return false;
        }
        while (arg--) {
            if (!eif_cbor_skip(c, depth - 1)) {
                return false;
            }
        }
        return true;
    case 6: /* tag */
        return eif_cbor_skip(c, depth - 1);
    default: /* integers, simple values and floats: all in the head */
        return true;
    }
}

/*
 * The DER bytes of the signing certificate: a byte string or an array of
 * byte values, in a well-formed item (eif_cbor_skip() checked it)
 */
static GByteArray *eif_cbor_bytes(EifCbor *c, Error **errp)
{
    g_autoptr(GByteArray) bytes = g_byte_array_new();
    unsigned major;
    uint64_t arg, byte;

    eif_cbor_head(c, &major, &arg);
    if (major == 2) {
        g_byte_array_append(bytes, c->p, arg);
    } else if (major == 4) {
        for (uint64_t i = 0; i < arg; i++) {
            uint8_t b;

            eif_cbor_head(c, &major, &byte);
            if (major != 0 || byte > UINT8_MAX) {
                error_setg(errp, "signature section: signing_certificate "
                           "element %" PRIu64 " is not a byte value", i);
                return NULL;
            }
            b = byte;
            g_byte_array_append(bytes, &b, 1);
        }
    } else {
        error_setg(errp, "signature section: signing_certificate is neither "
                   "a byte string nor an array");
        return NULL;
    }
    if (!bytes->len) {
        error_setg(errp, "signature section: empty signing_certificate");
        return NULL;
    }
    return g_steal_pointer(&bytes);
}

/*
 * The signing certificate of a signature section: a CBOR array of
 * { "signing_certificate": DER, "signature": COSE_Sign1 }, the first of
 * which signs PCR0.
 */
static GByteArray *eif_signing_certificate(const GByteArray *sig,
                                           Error **errp)
{
    static const char key[] = "signing_certificate";
    EifCbor c = { sig->data, sig->data + sig->len };
    unsigned major;
    uint64_t arg, pairs;

    if (!eif_cbor_skip(&c, EIF_CBOR_MAX_DEPTH)) {
        error_setg(errp, "signature section: invalid or unsupported CBOR at "
                   "byte %td", c.p - sig->data);
        return NULL;
    }
    if (c.p != c.end) {
        error_setg(errp, "signature section: %td bytes after the CBOR item",
                   c.end - c.p);
        return NULL;
    }
    c.p = sig->data;
    eif_cbor_head(&c, &major, &arg);
    if (major != 4 || !arg) {
        error_setg(errp, "signature section: not a non-empty CBOR array");
        return NULL;
    }
    eif_cbor_head(&c, &major, &pairs);
    if (major != 5) {
        error_setg(errp, "signature section: entry 0 is not a map");
        return NULL;
    }
    while (pairs--) {
        EifCbor k = c;

        eif_cbor_head(&k, &major, &arg);
        if (major == 3 && arg == strlen(key) && !memcmp(k.p, key, arg)) {
            k.p += arg;
            return eif_cbor_bytes(&k, errp);
        }
        eif_cbor_skip(&c, EIF_CBOR_MAX_DEPTH);
        eif_cbor_skip(&c, EIF_CBOR_MAX_DEPTH);
    }
    error_setg(errp, "signature section: entry 0 has no "
               "signing_certificate");
    return NULL;
}

bool eif_measure_finish(EifMeasure *m, EifMeasurements *out, Error **errp)
{
    static const uint8_t zeros[EIF_PCR_LEN];
    size_t len = EIF_PCR_LEN;
    uint8_t *digest;

    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < ARRAY_SIZE(m->hash); i++) {
        digest = out->digest[i];
        if (qcrypto_hash_finalize_bytes(m->hash[i], &digest, &len, errp)) {
            return false;
        }
    }
    if (m->signature) {
        g_autoptr(GByteArray) cert = eif_signing_certificate(m->signature,
                                                             errp);

        digest = out->digest[EIF_PCR8];
        if (!cert ||
            qcrypto_hash_bytes(QCRYPTO_HASH_ALGO_SHA384, cert->data,
                               cert->len, &digest, &len, errp)) {
            return false;
        }
        out->has_pcr8 = true;
    }
    for (unsigned i = 0; i < EIF_NR_PCRS; i++) {
        struct iovec iov[] = {
            { .iov_base = (void *)zeros, .iov_len = EIF_PCR_LEN },
            { .iov_base = out->digest[i], .iov_len = EIF_PCR_LEN },
        };

        if (i == EIF_PCR8 && !out->has_pcr8) {
            break;
        }
        digest = out->pcr[i];
        if (qcrypto_hash_bytesv(QCRYPTO_HASH_ALGO_SHA384, iov,
                                ARRAY_SIZE(iov), &digest, &len, errp)) {
            return false;
        }
    }
    return true;
}

bool eif_measure(const void *image, const EifInfo *info,
                 EifMeasurements *out, Error **errp)
{
    g_autoptr(EifMeasure) m = eif_measure_new(errp);

    if (!m) {
        return false;
    }
    for (unsigned i = 0; i < info->nr_sections; i++) {
        const EifSection *s = &info->sections[i];

        if (!eif_measure_update(m, s, eif_section_data(image, s), s->size,
                                errp)) {
            return false;
        }
    }
    return eif_measure_finish(m, out, errp);
}

/*
 * Reading from a file descriptor
 */

typedef struct EifReader {
    int fd;
    /* A chunk of the image */
    uint8_t *buf;
    /* The CRC of what was read after the header */
    uint32_t crc;
    /* Bytes of the image read so far */
    uint64_t pos;
    EifDataFunc fn;
    void *opaque;
} EifReader;

/* Read exactly @len bytes at @buf: 1 if done, 0 at end of file, -1 on error */
static int eif_read_full(EifReader *r, uint8_t *buf, size_t len, Error **errp)
{
    size_t done = 0;
    ssize_t n;

    while (done < len) {
        n = read(r->fd, buf + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_setg_errno(errp, errno, "cannot read the image at offset %"
                             PRIu64, r->pos + done);
            return -1;
        }
        if (!n) {
            r->pos += done;
            return 0;
        }
        done += n;
    }
    r->pos += len;
    return 1;
}

/* Read the next @len bytes of @s into the chunk buffer */
static const uint8_t *eif_reader_next(EifReader *r, size_t len,
                                      const EifSection *s, Error **errp)
{
    int ret = eif_read_full(r, r->buf, len, errp);

    if (ret > 0) {
        r->crc = eif_crc32(r->crc, r->buf, len);
    }
    if (!ret && s->type == EIF_SECTION_INVALID) {
        error_setg(errp, "image truncated at offset %" PRIu64 ", in the "
                   "header of section %u", r->pos, s->index);
    } else if (!ret) {
        error_setg(errp, "image truncated at offset %" PRIu64 ", in section "
                   "%u (%s), which ends at %" PRIu64, r->pos, s->index,
                   eif_section_type_name(s->type), s->data_offset + s->size);
    }
    return ret > 0 ? r->buf : NULL;
}

static bool eif_read_image(EifReader *r, EifInfo *info,
                           EifMeasurements *pcrs, Error **errp)
{
    g_autoptr(EifMeasure) m = NULL;
    uint8_t header[EIF_HEADER_SIZE];
    const uint8_t *data;
    struct stat st;
    EifParser p;
    off_t start;
    int64_t avail = -1;
    ssize_t n;
    int ret;

    eif_parser_init(&p, info);
    if (pcrs) {
        m = eif_measure_new(errp);
        if (!m) {
            return false;
        }
    }
    /* A regular file: report size mismatches as eif_validate() does */
    if (!fstat(r->fd, &st) && S_ISREG(st.st_mode)) {
        start = lseek(r->fd, 0, SEEK_CUR);
        if (start >= 0 && st.st_size >= start) {
            avail = st.st_size - start;
        }
    }
    if (avail >= 0 && avail < EIF_HEADER_SIZE) {
        error_setg(errp, "image of %" PRId64 " bytes is smaller than the "
                   "%d-byte header", avail, EIF_HEADER_SIZE);
        return false;
    }
    ret = eif_read_full(r, header, sizeof(header), errp);
    if (!ret) {
        error_setg(errp, "image truncated at offset %" PRIu64 ", in the "
                   "%d-byte header", r->pos, EIF_HEADER_SIZE);
    }
    if (ret <= 0 || !eif_parse_header(&p, header, errp)) {
        return false;
    }
    if (avail >= 0 && !eif_check_size(info, avail, errp)) {
        return false;
    }
    r->buf = g_malloc(MIN(info->size, EIF_CHUNK_SIZE));

    for (unsigned i = 0; i < info->nr_sections; i++) {
        const EifSection *s = &info->sections[i];

        data = eif_reader_next(r, EIF_SECTION_HEADER_SIZE, s, errp);
        if (!data || !eif_parse_section_header(&p, i, data, errp)) {
            return false;
        }
        for (uint64_t pos = 0; pos < s->size; pos += n) {
            n = MIN(s->size - pos, EIF_CHUNK_SIZE);
            data = eif_reader_next(r, n, s, errp);
            if (!data || !eif_parse_data(&p, s, pos, data, n, errp) ||
                (m && !eif_measure_update(m, s, data, n, errp)) ||
                (r->fn && !r->fn(s, pos, data, n, r->opaque, errp))) {
                return false;
            }
        }
    }
    do {
        n = read(r->fd, header, 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        error_setg_errno(errp, errno, "cannot read the image at offset %"
                         PRIu64, r->pos);
        return false;
    }
    if (n) {
        error_setg(errp, "trailing data after the last section, which ends "
                   "at %" PRIu64, info->size);
        return false;
    }
    return eif_parse_finish(&p, r->crc, errp) &&
           (!m || eif_measure_finish(m, pcrs, errp));
}

bool eif_read_fd(int fd, EifDataFunc fn, void *opaque, EifInfo *info,
                 EifMeasurements *pcrs, Error **errp)
{
    EifReader r = { .fd = fd, .fn = fn, .opaque = opaque };
    bool ok = eif_read_image(&r, info, pcrs, errp);

    g_free(r.buf);
    return ok;
}

/*
 * Building
 */

typedef struct EifBuildInput {
    EifSectionType type;
    /* A file (fd >= 0) or a string */
    const char *path;
    int fd;
    const char *data;
    uint64_t size;
} EifBuildInput;

typedef struct EifBuilder {
    EifBuildInput in[EIF_MAX_SECTIONS];
    unsigned nr_in;
    uint64_t size;
    /* eif_build(): the destination, else the bounce buffer and fd */
    uint8_t *dst;
    uint8_t *buf;
    int out_fd;
    uint64_t pos;
    /* The CRC of the header (up to its CRC field), then of what follows */
    uint32_t head_crc;
    uint32_t crc;
} EifBuilder;

static void eif_builder_clear(EifBuilder *b)
{
    for (unsigned i = 0; i < b->nr_in; i++) {
        if (b->in[i].fd >= 0) {
            close(b->in[i].fd);
        }
    }
    g_free(b->buf);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(EifBuilder, eif_builder_clear)

static bool eif_builder_add(EifBuilder *b, EifSectionType type,
                            const char *path, const char *data, Error **errp)
{
    EifBuildInput *in = &b->in[b->nr_in++];
    const char *name = eif_section_type_name(type);
    struct stat st;

    in->type = type;
    in->path = path;
    in->fd = -1;
    in->data = data;
    in->size = data ? strlen(data) : 0;
    if (path) {
        in->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (in->fd < 0) {
            error_setg_errno(errp, errno, "cannot open %s '%s'", name, path);
            return false;
        }
        if (fstat(in->fd, &st)) {
            error_setg_errno(errp, errno, "cannot stat %s '%s'", name, path);
            return false;
        }
        if (!S_ISREG(st.st_mode)) {
            error_setg(errp, "%s '%s' is not a regular file", name, path);
            return false;
        }
        in->size = st.st_size;
    }
    if (type == EIF_SECTION_KERNEL && !in->size) {
        error_setg(errp, "kernel '%s' is empty", path);
        return false;
    }
    if (in->size > INT64_MAX - EIF_SECTION_HEADER_SIZE - b->size) {
        error_setg(errp, "%s '%s' makes the image too big", name, path);
        return false;
    }
    b->size += EIF_SECTION_HEADER_SIZE + in->size;
    return true;
}

static bool eif_builder_open(EifBuilder *b, const EifBuildParams *p,
                             Error **errp)
{
    b->size = EIF_HEADER_SIZE;
    if (p->arch != EIF_ARCH_X86_64 && p->arch != EIF_ARCH_AARCH64) {
        error_setg(errp, "unknown architecture %d", p->arch);
        return false;
    }
    if (!p->kernel) {
        error_setg(errp, "no kernel");
        return false;
    }
    if (p->nr_initrds < 1 || p->nr_initrds > EIF_MAX_SECTIONS - 3) {
        error_setg(errp, "%u ramdisks: an image takes 1 to %d",
                   p->nr_initrds, EIF_MAX_SECTIONS - 3);
        return false;
    }
    if (!eif_builder_add(b, EIF_SECTION_KERNEL, p->kernel, NULL, errp) ||
        !eif_builder_add(b, EIF_SECTION_CMDLINE, NULL,
                         p->cmdline ?: eif_default_cmdline(p->arch), errp) ||
        !eif_builder_add(b, EIF_SECTION_METADATA, NULL,
                         p->metadata ?: "{}", errp)) {
        return false;
    }
    for (unsigned i = 0; i < p->nr_initrds; i++) {
        if (!eif_builder_add(b, EIF_SECTION_RAMDISK, p->initrds[i], NULL,
                             errp)) {
            return false;
        }
    }
    return true;
}

/* Where the next chunk of an input file is read to */
static uint8_t *eif_builder_space(EifBuilder *b)
{
    return b->dst ? b->dst + b->pos : b->buf;
}

/* Append @len bytes at @p to the image, CRC'ing the first @crc_len */
static bool eif_builder_emit(EifBuilder *b, const void *p, size_t len,
                             size_t crc_len, Error **errp)
{
    b->crc = eif_crc32(b->crc, p, crc_len);
    if (b->dst && p != b->dst + b->pos) {
        memcpy(b->dst + b->pos, p, len);
    } else if (!b->dst && qemu_write_full(b->out_fd, p, len) != len) {
        error_setg_errno(errp, errno, "cannot write the image at offset %"
                         PRIu64, b->pos);
        return false;
    }
    b->pos += len;
    return true;
}

static bool eif_builder_copy(EifBuilder *b, EifBuildInput *in, Error **errp)
{
    const char *name = eif_section_type_name(in->type);
    uint64_t done = 0;
    uint8_t *p;
    ssize_t n;

    while (done < in->size) {
        p = eif_builder_space(b);
        n = read(in->fd, p, MIN(in->size - done, EIF_CHUNK_SIZE));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_setg_errno(errp, errno, "cannot read %s '%s'",
                             name, in->path);
            return false;
        }
        if (!n) {
            error_setg(errp, "%s '%s' shrank to %" PRIu64 " bytes while "
                       "being read (it had %" PRIu64 ")",
                       name, in->path, done, in->size);
            return false;
        }
        if (!eif_builder_emit(b, p, n, n, errp)) {
            return false;
        }
        done += n;
    }
    do {
        uint8_t byte;

        n = read(in->fd, &byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n) {
        error_setg(errp, "%s '%s' grew beyond %" PRIu64 " bytes while being "
                   "read", name, in->path, in->size);
        return false;
    }
    return true;
}

static bool eif_builder_write(EifBuilder *b, EifArch arch, Error **errp)
{
    EifHeader h = {
        .version = cpu_to_be16(EIF_VERSION),
        .flags = cpu_to_be16(arch == EIF_ARCH_AARCH64 ?
                             EIF_FLAG_ARCH_AARCH64 : 0),
        .section_cnt = cpu_to_be16(b->nr_in),
    };
    uint64_t offset = EIF_HEADER_SIZE;

    memcpy(h.magic, EIF_MAGIC, sizeof(h.magic));
    for (unsigned i = 0; i < b->nr_in; i++) {
        h.section_offsets[i] = cpu_to_be64(offset);
        h.section_sizes[i] = cpu_to_be64(b->in[i].size);
        offset += EIF_SECTION_HEADER_SIZE + b->in[i].size;
    }
    if (!eif_builder_emit(b, &h, sizeof(h), EIF_HEADER_CRC_OFFSET, errp)) {
        return false;
    }
    b->head_crc = b->crc;
    b->crc = 0;

    for (unsigned i = 0; i < b->nr_in; i++) {
        EifBuildInput *in = &b->in[i];
        EifSectionHeader sh = {
            .type = cpu_to_be16(in->type),
            .size = cpu_to_be64(in->size),
        };

        if (!eif_builder_emit(b, &sh, sizeof(sh), sizeof(sh), errp) ||
            (in->fd >= 0 && !eif_builder_copy(b, in, errp)) ||
            (in->fd < 0 &&
             !eif_builder_emit(b, in->data, in->size, in->size, errp))) {
            return false;
        }
    }
    return true;
}

/* The CRC of the whole image, for its header */
static uint32_t eif_builder_crc(const EifBuilder *b)
{
    return eif_crc32_combine(b->head_crc, b->crc, b->size - EIF_HEADER_SIZE);
}

bool eif_build_size(const EifBuildParams *p, uint64_t *size, Error **errp)
{
    g_auto(EifBuilder) b = { 0 };

    if (!eif_builder_open(&b, p, errp)) {
        return false;
    }
    *size = b.size;
    return true;
}

int64_t eif_build(const EifBuildParams *p, void *dst, size_t capacity,
                  EifInfo *info, Error **errp)
{
    g_auto(EifBuilder) b = { .dst = dst };

    if (!eif_builder_open(&b, p, errp)) {
        return -1;
    }
    if (b.size > capacity) {
        error_setg(errp, "image of %" PRIu64 " bytes does not fit in %zu "
                   "bytes", b.size, capacity);
        return -1;
    }
    if (!eif_builder_write(&b, p->arch, errp)) {
        return -1;
    }
    stl_be_p(b.dst + EIF_HEADER_CRC_OFFSET, eif_builder_crc(&b));
    if (info && !eif_validate_crc(b.dst, b.size, b.crc, info, errp)) {
        return -1;
    }
    return b.size;
}

int64_t eif_build_fd(const EifBuildParams *p, int fd, Error **errp)
{
    g_auto(EifBuilder) b = { .out_fd = fd };
    uint8_t crc[4];
    off_t start;

    if (!eif_builder_open(&b, p, errp)) {
        return -1;
    }
    start = lseek(fd, 0, SEEK_CUR);
    if (start < 0) {
        error_setg_errno(errp, errno, "the output is not seekable");
        return -1;
    }
    b.buf = g_malloc(EIF_CHUNK_SIZE);
    if (!eif_builder_write(&b, p->arch, errp)) {
        return -1;
    }
    stl_be_p(crc, eif_builder_crc(&b));
    if (pwrite(fd, crc, sizeof(crc), start + EIF_HEADER_CRC_OFFSET) !=
        sizeof(crc)) {
        error_setg_errno(errp, errno, "cannot write the image CRC");
        return -1;
    }
    return b.size;
}
