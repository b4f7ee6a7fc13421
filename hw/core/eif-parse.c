/*
 * EIF library: the validator
 *
 * Every check of an image, in one place: the header and its section
 * table, each section header, the rules about sections (which types, how
 * many, in which order, the cmdline without NUL bytes, the signature
 * section's structure) and the CRC.  eif_validate() and
 * eif_validate_crc() run it over an image in memory; eif_read_fd()
 * (eif-read.c) feeds it from a file descriptor, with the same errors.
 *
 * Copyright (c) 2024 Dorjoy Chowdhury <dorjoychy111@gmail.com>
 * Copyright (c) 2026 Nitro Enclaves for QEMU contributors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qapi/error.h"
#include "elf.h"

#include "hw/core/eif-internal.h"

void eif_parser_init(EifParser *p, EifInfo *info)
{
    memset(p, 0, sizeof(*p));
    memset(info, 0, sizeof(*info));
    p->info = info;
}

void eif_parser_clear(EifParser *p)
{
    if (p->signature) {
        g_byte_array_unref(p->signature);
        p->signature = NULL;
    }
}

bool eif_parse_header(EifParser *p, const uint8_t *buf, Error **errp)
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

bool eif_check_size(const EifInfo *info, uint64_t avail, Error **errp)
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

bool eif_parse_section_header(EifParser *p, unsigned i,
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

bool eif_kernel_arch(const void *data, size_t len, EifArch *arch)
{
    const uint8_t *hdr = data;
    const Elf64_Ehdr *ehdr = data;
    uint16_t machine;

    if (len >= 0x206 && !memcmp(hdr + 0x202, "HdrS", 4)) {
        *arch = EIF_ARCH_X86_64;
        return true;
    }
    if (len >= 0x3c && !memcmp(hdr + 0x38, "ARM\x64", 4)) {
        *arch = EIF_ARCH_AARCH64;
        return true;
    }
    if (len < sizeof(*ehdr) || memcmp(hdr, ELFMAG, SELFMAG) ||
        hdr[EI_CLASS] != ELFCLASS64) {
        return false;
    }
    machine = hdr[EI_DATA] == ELFDATA2MSB ? be16_to_cpu(ehdr->e_machine) :
                                            le16_to_cpu(ehdr->e_machine);
    if (machine != EM_X86_64 && machine != EM_AARCH64) {
        return false;
    }
    *arch = machine == EM_X86_64 ? EIF_ARCH_X86_64 : EIF_ARCH_AARCH64;
    return true;
}

bool eif_parse_data(EifParser *p, const EifSection *s, uint64_t pos,
                    const uint8_t *data, size_t len, Error **errp)
{
    EifArch arch;

    /* The hypervisor would boot it as a kernel of the header's arch */
    if (s->type == EIF_SECTION_KERNEL && pos == 0 &&
        eif_kernel_arch(data, len, &arch) && arch != p->info->arch) {
        error_setg(errp, "section %u (kernel) is a Linux kernel for %s in "
                   "an image for %s", s->index, eif_arch_name(arch),
                   eif_arch_name(p->info->arch));
        return false;
    }
    if (s->type == EIF_SECTION_CMDLINE) {
        const uint8_t *nul = memchr(data, 0, len);

        /* The loaders would cut the command line that was measured */
        if (nul) {
            error_setg(errp, "section %u (cmdline) has a NUL byte at offset %"
                       PRIu64, s->index, s->data_offset + pos + (nul - data));
            return false;
        }
    }
    if (s->type == EIF_SECTION_SIGNATURE) {
        g_autoptr(GByteArray) cert = NULL;

        /* eif_parse_section_header() bounded its size */
        if (!p->signature) {
            p->signature = g_byte_array_sized_new(s->size);
        }
        g_byte_array_append(p->signature, data, len);
        if (pos + len < s->size) {
            return true;
        }
        /* Measuring the image must not fail on it later */
        cert = eif_signing_certificate(p->signature->data,
                                       p->signature->len, errp);
        if (!cert) {
            error_prepend(errp, "section %u (signature) at offset %" PRIu64
                          ": ", s->index, s->offset);
            return false;
        }
    }
    return true;
}

bool eif_parse_finish(EifParser *p, uint32_t body_crc, Error **errp)
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
/*
 * The CRC of the image after its header, computed section by section so
 * that each section's CRC is recorded too.
 */
static uint32_t eif_crc_sections(const uint8_t *base, EifInfo *info)
{
    uint32_t crc = 0;

    for (unsigned i = 0; i < info->nr_sections; i++) {
        EifSection *s = &info->sections[i];

        crc = eif_crc32(crc, base + s->offset, EIF_SECTION_HEADER_SIZE);
        s->crc32 = eif_crc32(0, base + s->data_offset, s->size);
        crc = eif_crc32_combine(crc, s->crc32, s->size);
    }
    info->has_section_crc = true;
    return crc;
}

/* eif_validate(), with the CRC after the header given, or computed */
static bool eif_validate_image(const void *image, size_t size,
                               const uint32_t *body_crc, EifInfo *info,
                               Error **errp)
{
    const uint8_t *base = image;
    g_auto(EifParser) p = { 0 };

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
            (s->size && !eif_parse_data(&p, s, 0, base + s->data_offset,
                                        s->size, errp))) {
            return false;
        }
    }
    return eif_parse_finish(&p, body_crc ? *body_crc :
                            eif_crc_sections(base, info), errp);
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
