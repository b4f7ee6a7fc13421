/*
 * AWS Nitro Enclaves machine: put the enclave image into guest RAM
 *
 * The driver wants the EIF at an offset of enclave memory (the guest RAM
 * blocks, main RAM first).  -kernel is either an EIF, read straight into
 * guest RAM and validated there, or a Linux kernel that is wrapped with
 * -initrd and -append into an EIF for the target's architecture, built
 * straight into guest RAM.  Both checks that the image is for this
 * QEMU's architecture before the hypervisor sees it.
 *
 * Loading a big image is bound by memory, and the kernel clears each huge
 * page on first touch: an image file is read into RAM on several cores,
 * and an image is built there with another thread faulting in the huge
 * pages ahead of the writer.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/madvise.h"
#include "qemu/thread.h"
#include "qemu/units.h"
#include "qemu/target-info.h"
#include "hw/boards.h"
#include "system/memory.h"
#include "system/nitro-accel.h"
#include "image.h"
#include "machine-ram.h"
#include "signature.h"
#include "trace.h"

EifArch nitro_image_arch(void)
{
    return target_aarch64() ? EIF_ARCH_AARCH64 : EIF_ARCH_X86_64;
}

typedef struct NitroRamPopulate {
    QemuThread thread;
    uint8_t *start;
    uint64_t size;
} NitroRamPopulate;

#define NITRO_LOAD_CHUNK (4 * MiB)
/* Enough to be worth a thread, and to keep memory bandwidth per core */
#define NITRO_LOAD_MIN_SLICE (64 * MiB)
#define NITRO_LOAD_MAX_THREADS 8

typedef struct NitroRamLoader {
    QemuThread thread;
    int fd;
    uint8_t *dst;
    uint64_t offset;
    uint64_t size;
    /* The CRC-32 of what it read from crc_from on */
    uint64_t crc_from;
    uint32_t crc;
    /* Bytes read; on a short read, the errno (0 at end of file) */
    uint64_t done;
    int err;
} NitroRamLoader;

static void *nitro_ram_load_thread(void *opaque)
{
    NitroRamLoader *l = opaque;

    while (l->done < l->size) {
        uint64_t pos = l->offset + l->done;
        ssize_t n = pread(l->fd, l->dst + pos,
                          MIN(l->size - l->done, NITRO_LOAD_CHUNK), pos);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            l->err = n ? errno : 0;
            break;
        }
        /* While the chunk is still in the cache */
        if (pos + n > l->crc_from) {
            uint64_t skip = pos < l->crc_from ? l->crc_from - pos : 0;

            l->crc = eif_crc32(l->crc, l->dst + pos + skip, n - skip);
        }
        l->done += n;
    }
    return NULL;
}

/*
 * Read @size bytes of @fd from offset 0 into guest RAM at @dst, on as
 * many threads as cores (up to a few), each faulting in its own pages,
 * and return in @crc the CRC-32 of the bytes from offset @crc_from on,
 * computed as they arrive.
 */
static bool nitro_ram_load_file(void *dst, int fd, uint64_t size,
                         uint64_t crc_from, uint32_t *crc, Error **errp)
{
    NitroRamLoader l[NITRO_LOAD_MAX_THREADS] = { 0 };
    long cpus = MAX(1, sysconf(_SC_NPROCESSORS_ONLN));
    unsigned i, n = MAX(1, MIN(size / NITRO_LOAD_MIN_SLICE,
                               MIN(cpus, NITRO_LOAD_MAX_THREADS)));
    uint64_t slice = ROUND_UP(DIV_ROUND_UP(size, n), NITRO_LOAD_CHUNK);

    trace_nitro_ram_load(size, n);
    for (i = 0; i < n; i++) {
        l[i].fd = fd;
        l[i].dst = dst;
        l[i].crc_from = crc_from;
        l[i].offset = MIN(i * slice, size);
        l[i].size = MIN(slice, size - l[i].offset);
        if (i) {
            qemu_thread_create(&l[i].thread, "nitro-load",
                               nitro_ram_load_thread, &l[i],
                               QEMU_THREAD_JOINABLE);
        }
    }
    nitro_ram_load_thread(&l[0]);
    for (i = 1; i < n; i++) {
        qemu_thread_join(&l[i].thread);
    }
    for (i = 0; i < n; i++) {
        uint64_t pos = l[i].offset + l[i].done;

        if (l[i].done < l[i].size && l[i].err) {
            error_setg_errno(errp, l[i].err, "cannot read the image at "
                             "offset %" PRIu64, pos);
            return false;
        }
        if (l[i].done < l[i].size) {
            error_setg(errp, "the image shrank to %" PRIu64 " bytes while "
                       "being read (it had %" PRIu64 ")", pos, size);
            return false;
        }
    }
    *crc = 0;
    for (i = 0; i < n; i++) {
        uint64_t from = MAX(l[i].offset, crc_from);
        uint64_t end = l[i].offset + l[i].size;

        if (end > from) {
            *crc = eif_crc32_combine(*crc, l[i].crc, end - from);
        }
    }
    return true;
}

static void *nitro_ram_populate_thread(void *opaque)
{
    NitroRamPopulate *pop = opaque;

    /*
     * MADV_POPULATE_WRITE never changes what a page holds, so the loader
     * may write the same pages meanwhile.  Where it is missing (Linux
     * before 5.14), the loader faults the pages in itself.
     */
    if (qemu_madvise(pop->start, pop->size, QEMU_MADV_POPULATE_WRITE)) {
        trace_nitro_ram_populate_failed(errno);
    }
    return NULL;
}

/*
 * Fault in guest RAM ahead of a sequential writer, on another thread: the
 * kernel clears each huge page on its first touch, which otherwise costs
 * the writer as much as copying the image.
 */
static void nitro_ram_populate_start(NitroRamPopulate *pop, void *start,
                              uint64_t size)
{
    pop->start = start;
    pop->size = size;
    qemu_thread_create(&pop->thread, "nitro-populate",
                       nitro_ram_populate_thread, pop, QEMU_THREAD_JOINABLE);
}

static void nitro_ram_populate_wait(NitroRamPopulate *pop)
{
    qemu_thread_join(&pop->thread);
}

static bool nitro_image_check_arch(const char *path, EifArch arch,
                                   Error **errp)
{
    ERRP_GUARD();

    if (arch != nitro_image_arch()) {
        error_setg(errp, "%s is for %s, not %s", path, eif_arch_name(arch),
                   eif_arch_name(nitro_image_arch()));
        error_append_hint(errp, "Run it with qemu-system-%s.\n",
                          eif_arch_name(arch));
        return false;
    }
    return true;
}

/* The architecture of the Linux kernel image @fd, when it says */
static bool nitro_image_kernel_arch(int fd, EifArch *arch)
{
    uint8_t hdr[EIF_KERNEL_ARCH_PROBE];
    ssize_t n = pread(fd, hdr, sizeof(hdr), 0);

    return n > 0 && eif_kernel_arch(hdr, n, arch);
}

/*
 * nitro-cli refuses memory below 4 times the image (its E26): the enclave
 * kernel unpacks its initramfs into enclave memory, so an image that
 * merely fits boots into a heartbeat timeout.
 */
static bool nitro_image_check_memory(MachineState *ms, const NitroImage *img,
                                     uint64_t size, Error **errp)
{
    ERRP_GUARD();
    uint64_t min = ROUND_UP(size * NITRO_IMAGE_MEMORY_FACTOR, 2 * MiB);

    if (img->allow_small_memory || ms->ram_size >= min) {
        return true;
    }
    error_setg(errp, "%s: %" PRIu64 " MiB of memory is less than %d times "
               "the image size (%" PRIu64 " bytes)", ms->kernel_filename,
               ms->ram_size / MiB, NITRO_IMAGE_MEMORY_FACTOR, size);
    error_append_hint(errp, "The enclave kernel unpacks its initramfs into "
                      "enclave memory and would not boot (nitro-cli refuses "
                      "this too, E26).  Use -m %" PRIu64 "M or more, or "
                      "-M nitro,allow-small-memory=on if you know the "
                      "image boots in less.\n", min / MiB);
    return false;
}

/*
 * A signed image's signature must verify, as nitro-cli run-enclave checks
 * before it loads one, and Nitro before it boots it
 */
static bool nitro_image_check_signature(const char *path, const void *image,
                                        NitroImage *img, Error **errp)
{
    const EifSection *s = eif_find_section(&img->info, EIF_SECTION_SIGNATURE,
                                           0);

    if (!s) {
        return true;
    }
    if (!eif_signature_parse(eif_section_data(image, s), s->size,
                             &img->signature, errp) ||
        !nitro_signature_verify(&img->signature, time(NULL), errp)) {
        error_prepend(errp, "%s: the image is signed, but ", path);
        error_append_hint(errp, "nitro-cli run-enclave refuses it too (E59) "
                          "and Nitro does not boot it.  Sign the image "
                          "again (qemu-eif sign, nitro-cli sign-eif).\n");
        return false;
    }
    img->is_signed = true;
    return true;
}

/* Read the EIF @fd into @dst, then validate it there. */
static bool nitro_image_load_eif(MachineState *ms, int fd, void *dst,
                                 uint64_t capacity, NitroImage *img,
                                 Error **errp)
{
    EifInfo *info = &img->info;

    ERRP_GUARD();
    uint32_t crc;
    off_t size;

    if (ms->initrd_filename || (ms->kernel_cmdline && *ms->kernel_cmdline)) {
        error_setg(errp, "-initrd and -append cannot be used with an EIF "
                   "-kernel");
        error_append_hint(errp, "The EIF carries its ramdisks and command "
                          "line; -initrd and -append are for a Linux "
                          "kernel image.\n");
        return false;
    }
    size = lseek(fd, 0, SEEK_END);
    if (size < 0) {
        error_setg_errno(errp, errno, "%s: cannot find its size",
                         ms->kernel_filename);
        return false;
    }
    if (!nitro_image_check_memory(ms, img, size, errp)) {
        return false;
    }
    if (size > capacity) {
        error_setg(errp, "%s: image of %" PRId64 " bytes does not fit in "
                   "%" PRIu64 " bytes", ms->kernel_filename, (int64_t)size,
                   capacity);
        error_append_hint(errp, "Give the enclave more memory with -m: the "
                          "image starts %" PRIu64 " MiB into RAM.\n",
                          (ms->ram_size - capacity) / MiB);
        return false;
    }
    if (!nitro_ram_load_file(dst, fd, size, EIF_HEADER_SIZE, &crc, errp) ||
        !eif_validate_crc(dst, size, crc, info, errp)) {
        error_prepend(errp, "%s: ", ms->kernel_filename);
        return false;
    }
    return nitro_image_check_arch(ms->kernel_filename, info->arch, errp) &&
           nitro_image_check_signature(ms->kernel_filename, dst, img, errp);
}

/* Wrap the kernel, -initrd and -append into an EIF at @dst. */
static bool nitro_image_build_eif(MachineState *ms, int fd, NitroImage *img,
                                  void *dst, uint64_t capacity, Error **errp)
{
    ERRP_GUARD();
    EifArch arch;
    NitroRamPopulate pop;
    uint64_t want;
    int64_t size;

    if (!ms->initrd_filename || !*ms->initrd_filename) {
        error_setg(errp, "%s is not an EIF, and a Linux kernel needs "
                   "-initrd", ms->kernel_filename);
        error_append_hint(errp, "Give the enclave's init ramdisk(s) with "
                          "-initrd file[:file...], or use an EIF made with "
                          "qemu-eif or nitro-cli build-enclave.\n");
        return false;
    }
    if (nitro_image_kernel_arch(fd, &arch) &&
        !nitro_image_check_arch(ms->kernel_filename, arch, errp)) {
        return false;
    }
    img->initrds = g_strsplit(ms->initrd_filename, ":", -1);
    img->build = (EifBuildParams) {
        .arch = nitro_image_arch(),
        .kernel = ms->kernel_filename,
        .cmdline = ms->kernel_cmdline && *ms->kernel_cmdline ?
                   ms->kernel_cmdline : eif_default_cmdline(nitro_image_arch()),
        .initrds = (const char *const *)img->initrds,
        .nr_initrds = g_strv_length(img->initrds),
    };

    if (!eif_build_size(&img->build, &want, errp) ||
        !nitro_image_check_memory(ms, img, want, errp)) {
        return false;
    }
    nitro_ram_populate_start(&pop, dst, MIN(want, capacity));
    size = eif_build(&img->build, dst, capacity, &img->info, errp);
    nitro_ram_populate_wait(&pop);
    return size >= 0;
}

bool nitro_image_load(MachineState *ms, NitroImage *img, Error **errp)
{
    ERRP_GUARD();
    uint64_t offset = nitro_image_offset();
    uint8_t *dst = nitro_ram_host(ms) + offset;
    char magic[4];
    int fd;
    bool ok;

    if (!ms->kernel_filename) {
        error_setg(errp, "no enclave image");
        error_append_hint(errp, "Give an EIF with -kernel app.eif, or a "
                          "Linux kernel with -kernel, -initrd and "
                          "-append.\n");
        return false;
    }
    if (offset >= ms->ram_size) {
        error_setg(errp, "the driver wants the image at offset %" PRIu64
                   " of %" PRIu64 " bytes of RAM", offset, ms->ram_size);
        return false;
    }
    fd = eif_open_file(ms->kernel_filename, errp);
    if (fd < 0) {
        return false;
    }
    img->build.kernel = ms->kernel_filename;
    img->is_eif = pread(fd, magic, sizeof(magic), 0) == sizeof(magic) &&
                  !memcmp(magic, EIF_MAGIC, sizeof(magic));
    if (img->is_eif) {
        ok = nitro_image_load_eif(ms, fd, dst, ms->ram_size - offset, img,
                                  errp);
    } else {
        ok = nitro_image_build_eif(ms, fd, img, dst, ms->ram_size - offset,
                                   errp);
    }
    close(fd);
    if (ok) {
        trace_nitro_image(offset, img->info.size,
                          eif_arch_name(img->info.arch));
    }
    return ok;
}
