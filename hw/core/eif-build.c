/*
 * EIF library: the builder
 *
 * eif_build() and eif_build_fd() write a version 4 image from a kernel,
 * a command line, metadata and ramdisks, the way the official builder
 * lays it out, reading the input files straight into the destination
 * (guest RAM, or a file through a small buffer) and computing the CRC on
 * the way - of the image, and of each section for eif_measure_inputs().
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qapi/error.h"

#include "hw/core/eif-internal.h"

typedef struct EifBuildInput {
    EifSectionType type;
    /* A file (fd >= 0) or a string */
    const char *path;
    int fd;
    const char *data;
    uint64_t size;
    /* The CRC of the data, once written */
    uint32_t crc;
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
    /* The CRC of the header (up to its CRC field), and of what follows */
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
        in->fd = eif_open_file(path, errp);
        if (in->fd < 0) {
            error_prepend(errp, "%s: ", name);
            return false;
        }
        if (fstat(in->fd, &st)) {
            error_setg_errno(errp, errno, "cannot stat %s '%s'", name, path);
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

/* A kernel that says it is for another architecture would not boot */
static bool eif_builder_check_kernel(EifBuilder *b, const EifBuildParams *p,
                                     Error **errp)
{
    uint8_t hdr[EIF_KERNEL_ARCH_PROBE];
    ssize_t n = pread(b->in[0].fd, hdr, sizeof(hdr), 0);
    EifArch arch;

    if (n <= 0 || !eif_kernel_arch(hdr, n, &arch) || arch == p->arch) {
        return true;
    }
    error_setg(errp, "kernel '%s' is a Linux kernel for %s, not %s (the "
               "image's architecture)", p->kernel, eif_arch_name(arch),
               eif_arch_name(p->arch));
    return false;
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
        !eif_builder_check_kernel(b, p, errp) ||
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

/* Append @len bytes at @p to the image */
static bool eif_builder_emit(EifBuilder *b, const void *p, size_t len,
                             Error **errp)
{
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
        in->crc = eif_crc32(in->crc, p, n);
        if (!eif_builder_emit(b, p, n, errp)) {
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
    b->head_crc = eif_crc32(0, &h, EIF_HEADER_CRC_OFFSET);
    if (!eif_builder_emit(b, &h, sizeof(h), errp)) {
        return false;
    }

    for (unsigned i = 0; i < b->nr_in; i++) {
        EifBuildInput *in = &b->in[i];
        EifSectionHeader sh = {
            .type = cpu_to_be16(in->type),
            .size = cpu_to_be64(in->size),
        };

        b->crc = eif_crc32(b->crc, &sh, sizeof(sh));
        if (!eif_builder_emit(b, &sh, sizeof(sh), errp)) {
            return false;
        }
        if (in->fd >= 0 && !eif_builder_copy(b, in, errp)) {
            return false;
        }
        if (in->fd < 0) {
            in->crc = eif_crc32(0, in->data, in->size);
            if (!eif_builder_emit(b, in->data, in->size, errp)) {
                return false;
            }
        }
        b->crc = eif_crc32_combine(b->crc, in->crc, in->size);
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
    if (!info) {
        return b.size;
    }
    if (!eif_validate_crc(b.dst, b.size, b.crc, info, errp)) {
        return -1;
    }
    for (unsigned i = 0; i < b.nr_in; i++) {
        info->sections[i].crc32 = b.in[i].crc;
    }
    info->has_section_crc = true;
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
