/*
 * EIF library: what every part of it uses
 *
 * Section type and architecture names, the official kernel command
 * lines, the CRC-32 of images (ISA-L's when QEMU is built with it, else
 * zlib's) and eif_open_file(), which opens input files without ever
 * blocking on or reading anything but a regular file.  The rest of the
 * library is listed in eif-internal.h.
 *
 * Copyright (c) 2024 Dorjoy Chowdhury <dorjoychy111@gmail.com>
 * Copyright (c) 2026 Nitro Enclaves for QEMU contributors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * (at your option) any later version.  See the COPYING file in the
 * top-level directory.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#ifdef CONFIG_ISAL
#include <isa-l/crc.h>
#endif
#include <zlib.h>

#include "hw/core/eif-internal.h"

QEMU_BUILD_BUG_ON(sizeof(EifHeader) != EIF_HEADER_SIZE);
QEMU_BUILD_BUG_ON(sizeof(EifSectionHeader) != EIF_SECTION_HEADER_SIZE);
QEMU_BUILD_BUG_ON(offsetof(EifHeader, crc32) != EIF_HEADER_CRC_OFFSET);

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

/* Why @mode is not a regular file, as "is a FIFO" */
static const char *eif_file_kind(mode_t mode)
{
    if (S_ISDIR(mode)) {
        return "is a directory";
    }
    if (S_ISFIFO(mode)) {
        return "is a FIFO";
    }
    if (S_ISCHR(mode)) {
        return "is a character device";
    }
    if (S_ISBLK(mode)) {
        return "is a block device";
    }
    if (S_ISSOCK(mode)) {
        return "is a socket";
    }
    return "is not a regular file";
}

/*
 * stat() first, so that a device is not even opened (opening some has
 * side effects); then open without blocking (a FIFO would wait for a
 * writer) and check again what was opened, which may have been replaced.
 */
int eif_open_file(const char *path, Error **errp)
{
    struct stat st;
    int fd, flags;

    if (stat(path, &st)) {
        error_setg_errno(errp, errno, "cannot open '%s'", path);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        error_setg(errp, "%s: %s", path, eif_file_kind(st.st_mode));
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        error_setg_errno(errp, errno, "cannot open '%s'", path);
        return -1;
    }
    if (fstat(fd, &st)) {
        error_setg_errno(errp, errno, "cannot stat '%s'", path);
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        error_setg(errp, "%s: %s", path, eif_file_kind(st.st_mode));
        close(fd);
        return -1;
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)) {
        error_setg_errno(errp, errno, "cannot read '%s'", path);
        close(fd);
        return -1;
    }
    return fd;
}
