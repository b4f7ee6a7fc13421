/*
 * Tests of the EIF library (hw/core/eif.c): build, validate, load, measure
 *
 * Images are also written by an independent writer in this file, and the
 * PCRs recomputed here with gnutls directly.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <zlib.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "crypto/init.h"
#include "hw/core/eif.h"

/* PCR2 of every image with a single ramdisk (nitro-brief.md) */
#define PCR2_ONE_RAMDISK \
    "21b9efbc184807662e966d34f390821309eeac6802309798826296bf3e8bec7c" \
    "10edb30948c90ba67310f7b964fc500a"

/* Header field offsets */
#define H_VERSION   4
#define H_FLAGS     6
#define H_MEM       8
#define H_CPUS      16
#define H_RESERVED  24
#define H_COUNT     26
#define H_OFFSETS   28
#define H_SIZES     (H_OFFSETS + 8 * EIF_MAX_SECTIONS)
#define H_UNUSED    (H_SIZES + 8 * EIF_MAX_SECTIONS)
#define H_CRC       (H_UNUSED + 4)

static char *tmpdir;

typedef struct TSection {
    uint16_t type;
    const void *data;
    size_t size;
} TSection;

/* Inputs of a build: files with known contents */
typedef struct TInputs {
    GByteArray *kernel;
    GByteArray *initrd[3];
    char *kernel_path;
    char *initrd_path[3];
} TInputs;

static GByteArray *random_bytes(size_t len, uint32_t seed)
{
    GByteArray *b = g_byte_array_sized_new(len);
    GRand *r = g_rand_new_with_seed(seed);

    for (size_t i = 0; i < len; i++) {
        uint8_t c = g_rand_int(r);
        g_byte_array_append(b, &c, 1);
    }
    g_rand_free(r);
    return b;
}

static char *write_file(const char *name, const void *data, size_t len)
{
    char *path = g_build_filename(tmpdir, name, NULL);

    g_assert_true(g_file_set_contents(path, data, len, NULL));
    return path;
}

static void inputs_init(TInputs *in)
{
    in->kernel = random_bytes(8000, 1);
    in->kernel_path = write_file("kernel", in->kernel->data, in->kernel->len);
    for (unsigned i = 0; i < 3; i++) {
        g_autofree char *name = g_strdup_printf("initrd%u", i);

        in->initrd[i] = random_bytes(3000 + i * 100, 10 + i);
        in->initrd_path[i] = write_file(name, in->initrd[i]->data,
                                        in->initrd[i]->len);
    }
}

static void inputs_free(TInputs *in)
{
    g_byte_array_unref(in->kernel);
    unlink(in->kernel_path);
    g_free(in->kernel_path);
    for (unsigned i = 0; i < 3; i++) {
        g_byte_array_unref(in->initrd[i]);
        unlink(in->initrd_path[i]);
        g_free(in->initrd_path[i]);
    }
}

/* The independent writer: sections back to back, good CRC */
static void fix_crc(uint8_t *img, size_t size)
{
    uint32_t crc = crc32(0, img, H_CRC);

    crc = crc32(crc, img + EIF_HEADER_SIZE, size - EIF_HEADER_SIZE);
    stl_be_p(img + H_CRC, crc);
}

static GByteArray *t_image(uint16_t version, uint16_t flags,
                           const TSection *s, unsigned n)
{
    GByteArray *img = g_byte_array_new();
    uint64_t offset = EIF_HEADER_SIZE;

    g_byte_array_set_size(img, EIF_HEADER_SIZE);
    memset(img->data, 0, EIF_HEADER_SIZE);
    memcpy(img->data, ".eif", 4);
    stw_be_p(img->data + H_VERSION, version);
    stw_be_p(img->data + H_FLAGS, flags);
    stw_be_p(img->data + H_COUNT, n);
    for (unsigned i = 0; i < n; i++) {
        uint8_t sh[EIF_SECTION_HEADER_SIZE];

        if (i < EIF_MAX_SECTIONS) {
            stq_be_p(img->data + H_OFFSETS + 8 * i, offset);
            stq_be_p(img->data + H_SIZES + 8 * i, s[i].size);
        }
        stw_be_p(sh, s[i].type);
        stw_be_p(sh + 2, 0);
        stq_be_p(sh + 4, s[i].size);
        g_byte_array_append(img, sh, sizeof(sh));
        g_byte_array_append(img, s[i].data, s[i].size);
        offset += EIF_SECTION_HEADER_SIZE + s[i].size;
    }
    fix_crc(img->data, img->len);
    return img;
}

static const char metadata_json[] = "{\"ImageName\":\"test\"}";

static GByteArray *t_image_from(const TInputs *in, EifArch arch,
                                const char *cmdline, unsigned nr_initrds)
{
    TSection s[6] = {
        { EIF_SECTION_KERNEL, in->kernel->data, in->kernel->len },
        { EIF_SECTION_CMDLINE, cmdline, strlen(cmdline) },
        { EIF_SECTION_METADATA, metadata_json, strlen(metadata_json) },
    };

    for (unsigned i = 0; i < nr_initrds; i++) {
        s[3 + i] = (TSection) { EIF_SECTION_RAMDISK, in->initrd[i]->data,
                                in->initrd[i]->len };
    }
    return t_image(4, arch == EIF_ARCH_AARCH64 ? 1 : 0, s, 3 + nr_initrds);
}

/* The independent measurement, with gnutls */
static void sha384(const GByteArray *const *parts, unsigned n,
                   uint8_t out[EIF_PCR_LEN])
{
    gnutls_hash_hd_t h;

    g_assert_cmpint(gnutls_hash_init(&h, GNUTLS_DIG_SHA384), ==, 0);
    for (unsigned i = 0; i < n; i++) {
        g_assert_cmpint(gnutls_hash(h, parts[i]->data, parts[i]->len), ==, 0);
    }
    gnutls_hash_deinit(h, out);
}

static void extend(const GByteArray *const *parts, unsigned n,
                   char hex[EIF_PCR_HEX_LEN + 1])
{
    uint8_t buf[2 * EIF_PCR_LEN] = { 0 };
    uint8_t pcr[EIF_PCR_LEN];

    sha384(parts, n, buf + EIF_PCR_LEN);
    gnutls_hash_fast(GNUTLS_DIG_SHA384, buf, sizeof(buf), pcr);
    for (unsigned i = 0; i < EIF_PCR_LEN; i++) {
        sprintf(hex + 2 * i, "%02x", pcr[i]);
    }
}

static void assert_pcr(const EifMeasurements *m, EifPcr pcr,
                       const char *expected)
{
    char hex[EIF_PCR_HEX_LEN + 1];

    eif_pcr_to_hex(m->pcr[pcr], hex);
    g_assert_cmpstr(hex, ==, expected);
}

static void assert_measurements(const EifMeasurements *m, const TInputs *in,
                                const char *cmdline, unsigned nr_initrds)
{
    g_autoptr(GByteArray) cmd = g_byte_array_new();
    const GByteArray *parts[8] = { in->kernel, cmd };
    char hex[EIF_PCR_HEX_LEN + 1];

    g_byte_array_append(cmd, (const uint8_t *)cmdline, strlen(cmdline));
    for (unsigned i = 0; i < nr_initrds; i++) {
        parts[2 + i] = in->initrd[i];
    }
    extend(parts, 2 + nr_initrds, hex);
    assert_pcr(m, EIF_PCR0, hex);
    extend(parts, 3, hex);
    assert_pcr(m, EIF_PCR1, hex);
    extend(parts + 3, nr_initrds - 1, hex);
    assert_pcr(m, EIF_PCR2, hex);
    if (nr_initrds == 1) {
        assert_pcr(m, EIF_PCR2, PCR2_ONE_RAMDISK);
    }
    g_assert_false(m->has_pcr8);
}

static int open_image_file(const GByteArray *img)
{
    g_autofree char *path = write_file("image.eif", img->data, img->len);
    int fd = open(path, O_RDONLY);

    g_assert_cmpint(fd, >=, 0);
    unlink(path);
    return fd;
}

/* A pipe holding @len bytes, at most PIPE_MAX (the pipe buffer) */
#define PIPE_MAX 65536

static int open_image_pipe(const void *data, size_t len)
{
    int fds[2];

    g_assert_cmpint(pipe(fds), ==, 0);
    g_assert_cmpint(write(fds[1], data, len), ==, len);
    close(fds[1]);
    return fds[0];
}

/*
 * @img must be rejected with an error containing @expected, the same one
 * from memory and from a file, and also from a pipe.
 */
static void assert_invalid(const void *img, size_t size, const char *expected)
{
    g_autoptr(GByteArray) copy = g_byte_array_new();
    Error *err = NULL, *err2 = NULL;
    EifInfo info;
    int fd;

    g_byte_array_append(copy, img, size);
    g_assert_false(eif_validate(copy->data, size, &info, &err));
    if (!strstr(error_get_pretty(err), expected)) {
        g_error("expected '%s' in '%s'", expected, error_get_pretty(err));
    }

    /* What the machine's loader runs: the same verdict and message */
    if (size >= EIF_HEADER_SIZE) {
        uint32_t crc = crc32(0, copy->data + EIF_HEADER_SIZE,
                             size - EIF_HEADER_SIZE);

        g_assert_false(eif_validate_crc(copy->data, size, crc, &info, &err2));
        g_assert_cmpstr(error_get_pretty(err2), ==, error_get_pretty(err));
        error_free(err2);
        err2 = NULL;
    }

    fd = open_image_file(copy);
    g_assert_false(eif_read_fd(fd, NULL, NULL, &info, NULL, &err2));
    g_assert_cmpstr(error_get_pretty(err2), ==, error_get_pretty(err));
    error_free(err2);
    err2 = NULL;
    close(fd);

    if (size <= PIPE_MAX) {
        fd = open_image_pipe(img, size);
        g_assert_false(eif_read_fd(fd, NULL, NULL, &info, NULL, &err2));
        close(fd);
        error_free(err2);
    }
    error_free(err);
}

static void assert_valid(const void *img, size_t size, EifInfo *info,
                         EifMeasurements *m)
{
    g_autoptr(GByteArray) copy = g_byte_array_new();
    EifMeasurements m2;
    EifInfo info2;
    int fd;

    g_byte_array_append(copy, img, size);
    eif_validate(copy->data, size, info, &error_abort);
    eif_measure(copy->data, info, m, &error_abort);

    fd = open_image_file(copy);
    eif_read_fd(fd, NULL, NULL, &info2, &m2, &error_abort);
    close(fd);
    g_assert_cmpmem(&info2, sizeof(info2), info, sizeof(*info));
    g_assert_cmpmem(&m2, sizeof(m2), m, sizeof(*m));

    if (size <= PIPE_MAX) {
        fd = open_image_pipe(img, size);
        eif_read_fd(fd, NULL, NULL, &info2, &m2, &error_abort);
        close(fd);
        g_assert_cmpmem(&info2, sizeof(info2), info, sizeof(*info));
        g_assert_cmpmem(&m2, sizeof(m2), m, sizeof(*m));
    }
}

typedef struct RoundTrip {
    EifArch arch;
    unsigned nr_initrds;
} RoundTrip;

typedef struct Collect {
    GByteArray *data[EIF_MAX_SECTIONS];
} Collect;

static bool collect_data(const EifSection *s, uint64_t pos, const void *data,
                         size_t len, void *opaque, Error **errp)
{
    Collect *c = opaque;

    if (!c->data[s->index]) {
        c->data[s->index] = g_byte_array_new();
    }
    g_assert_cmpuint(pos, ==, c->data[s->index]->len);
    g_byte_array_append(c->data[s->index], data, len);
    return true;
}

static void test_roundtrip(const void *opaque)
{
    const RoundTrip *rt = opaque;
    const char *cmdline = eif_default_cmdline(rt->arch);
    EifBuildParams p = {
        .arch = rt->arch,
        .metadata = metadata_json,
        .nr_initrds = rt->nr_initrds,
    };
    g_autoptr(GByteArray) expected = NULL;
    g_autofree uint8_t *img = NULL;
    g_autofree char *path = NULL;
    g_autofree char *file = NULL;
    g_autofree char *too_big = NULL;
    const EifSection *s;
    EifMeasurements m;
    Collect c = { 0 };
    Error *err = NULL;
    uint64_t size;
    EifInfo info, built;
    TInputs in;
    gsize len;
    int fd;

    inputs_init(&in);
    p.kernel = in.kernel_path;
    p.initrds = (const char *const *)in.initrd_path;
    expected = t_image_from(&in, rt->arch, cmdline, rt->nr_initrds);

    /* Build into memory: the independent writer's bytes */
    g_assert_true(eif_build_size(&p, &size, &error_abort));
    g_assert_cmpuint(size, ==, expected->len);
    img = g_malloc(size);
    too_big = g_strdup_printf("image of %" PRIu64 " bytes does not fit in %"
                              PRIu64 " bytes", size, size - 1);
    g_assert_cmpint(eif_build(&p, img, size - 1, NULL, &err), ==, -1);
    g_assert_cmpstr(error_get_pretty(err), ==, too_big);
    error_free(err);
    err = NULL;
    g_assert_cmpint(eif_build(&p, img, size, &built, &error_abort), ==, size);
    g_assert_cmpmem(img, size, expected->data, expected->len);

    /* Build into a file */
    path = g_build_filename(tmpdir, "built.eif", NULL);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    g_assert_cmpint(eif_build_fd(&p, fd, &error_abort), ==, size);
    g_assert_true(g_file_get_contents(path, &file, &len, NULL));
    g_assert_cmpmem(file, len, expected->data, expected->len);

    /* Validate and measure, from memory, a file and a pipe */
    assert_valid(img, size, &info, &m);
    g_assert_cmpmem(&built, sizeof(built), &info, sizeof(info));
    g_assert_cmpuint(info.version, ==, 4);
    g_assert_cmpuint(info.arch, ==, rt->arch);
    g_assert_cmpuint(info.size, ==, size);
    g_assert_cmpuint(info.nr_sections, ==, 3 + rt->nr_initrds);
    g_assert_cmpuint(info.nr_ramdisks, ==, rt->nr_initrds);
    g_assert_cmphex(info.crc32, ==, (uint32_t)ldl_be_p(img + H_CRC));
    assert_measurements(&m, &in, cmdline, rt->nr_initrds);
    g_assert_true(built.has_section_crc);
    for (unsigned i = 0; i < info.nr_sections; i++) {
        s = &info.sections[i];
        g_assert_cmphex(s->crc32, ==,
                        crc32(0, eif_section_data(img, s), s->size));
    }

    /* Sections in the official order, in place */
    s = eif_find_section(&info, EIF_SECTION_KERNEL, 0);
    g_assert_cmpuint(s->index, ==, 0);
    g_assert_cmpmem(eif_section_data(img, s), s->size,
                    in.kernel->data, in.kernel->len);
    s = eif_find_section(&info, EIF_SECTION_CMDLINE, 0);
    g_assert_cmpuint(s->index, ==, 1);
    g_assert_cmpmem(eif_section_data(img, s), s->size,
                    cmdline, strlen(cmdline));
    s = eif_find_section(&info, EIF_SECTION_METADATA, 0);
    g_assert_cmpuint(s->index, ==, 2);
    for (unsigned i = 0; i < rt->nr_initrds; i++) {
        s = eif_find_section(&info, EIF_SECTION_RAMDISK, i);
        g_assert_cmpuint(s->index, ==, 3 + i);
        g_assert_cmpuint(s->nth, ==, i);
        g_assert_cmpmem(eif_section_data(img, s), s->size,
                        in.initrd[i]->data, in.initrd[i]->len);
    }
    g_assert_null(eif_find_section(&info, EIF_SECTION_RAMDISK,
                                   rt->nr_initrds));
    g_assert_null(eif_find_section(&info, EIF_SECTION_SIGNATURE, 0));

    /* Streaming hands over every byte of every section, in order */
    g_assert_cmpint(lseek(fd, 0, SEEK_SET), ==, 0);
    g_assert_true(eif_read_fd(fd, collect_data, &c, &info, NULL,
                              &error_abort));
    for (unsigned i = 0; i < info.nr_sections; i++) {
        s = &info.sections[i];
        g_assert_cmpmem(c.data[i]->data, c.data[i]->len,
                        eif_section_data(img, s), s->size);
        g_byte_array_unref(c.data[i]);
    }
    close(fd);
    unlink(path);
    inputs_free(&in);
}

/* One image to corrupt: x86_64, two ramdisks */
static GByteArray *good_image(TInputs *in)
{
    inputs_init(in);
    return t_image_from(in, EIF_ARCH_X86_64, "console=ttyS0", 2);
}

static void test_corrupt_header(void)
{
    TInputs in;
    g_autoptr(GByteArray) good = good_image(&in);
    const uint64_t s1 = ldq_be_p(good->data + H_OFFSETS + 8);
    const uint64_t s4 = ldq_be_p(good->data + H_OFFSETS + 32);
    const struct {
        unsigned offset, width;
        uint64_t value;
        bool fix_crc;
        const char *expected;
    } cases[] = {
        { 0, 4, 0x2e656967, false, "bad magic 0x2e656967, expected "
                                   "0x2e656966 (\".eif\")" },
        { H_VERSION, 2, 1, false, "unsupported version 1 (supported: 2 to 4)" },
        { H_VERSION, 2, 5, false, "unsupported version 5 (supported: 2 to 4)" },
        { H_VERSION, 2, 3, false, "CRC mismatch" },
        { H_FLAGS, 2, 2, false, "unknown header flags 0x0002" },
        { H_FLAGS, 2, 1, false, "CRC mismatch" },
        { H_MEM, 8, 512, false, "CRC mismatch" },
        { H_CPUS, 8, 2, false, "CRC mismatch" },
        { H_RESERVED, 2, 1, false, "CRC mismatch" },
        { H_COUNT, 2, 33, false, "section count 33 exceeds the limit of 32" },
        { H_COUNT, 2, 4, true, "bytes of trailing data after the last "
                               "section, which ends at" },
        { H_COUNT, 2, 6, true, "section 5 at offset 0 overlaps section 4" },
        { H_COUNT, 2, 0, true, "trailing data" },
        { H_OFFSETS, 8, EIF_HEADER_SIZE - 1, true,
          "section 0 at offset 547 overlaps the 548-byte header" },
        { H_OFFSETS, 8, EIF_HEADER_SIZE + 1, true,
          "section 0 at offset 549 leaves a gap of 1 bytes after the header" },
        { H_OFFSETS + 8, 8, s1 - 1, true, "overlaps section 0" },
        { H_OFFSETS + 8, 8, s1 + 1, true, "leaves a gap of 1 bytes after the "
                                          "previous section" },
        { H_OFFSETS + 32, 8, UINT64_MAX, true, "leaves a gap" },
        { H_OFFSETS + 32, 8, s4 - 100, true, "overlaps section 3" },
        { H_SIZES, 8, 7999, true, "section 1 at offset " },
        { H_SIZES, 8, 0, true, "leaves a gap" },
        { H_SIZES + 32, 8, 3101, true, "section 4 (offset " },
        { H_SIZES + 32, 8, 3099, true, "1 bytes of trailing data" },
        { H_SIZES + 32, 8, UINT64_MAX, true, "overflows 64-bit offsets" },
        { H_SIZES + 8 * 10, 8, 1, false, "CRC mismatch" },
        { H_UNUSED, 4, 1, false, "CRC mismatch" },
        { H_CRC, 4, 0, false, "CRC mismatch: the header says 0x00000000" },
    };

    for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autoptr(GByteArray) img = g_byte_array_new();
        uint8_t *p;

        g_byte_array_append(img, good->data, good->len);
        p = img->data + cases[i].offset;
        switch (cases[i].width) {
        case 2:
            stw_be_p(p, cases[i].value);
            break;
        case 4:
            stl_be_p(p, cases[i].value);
            break;
        default:
            stq_be_p(p, cases[i].value);
        }
        if (cases[i].fix_crc) {
            fix_crc(img->data, img->len);
        }
        assert_invalid(img->data, img->len, cases[i].expected);
    }
    inputs_free(&in);
}

/* Semantic header changes with a good CRC are accepted */
static void test_header_fields(void)
{
    TInputs in;
    g_autoptr(GByteArray) img = good_image(&in);
    EifMeasurements m;
    EifInfo info;

    stw_be_p(img->data + H_VERSION, 3);
    stw_be_p(img->data + H_FLAGS, 1);
    stq_be_p(img->data + H_MEM, 512);
    stq_be_p(img->data + H_CPUS, 2);
    fix_crc(img->data, img->len);
    assert_valid(img->data, img->len, &info, &m);
    g_assert_cmpuint(info.version, ==, 3);
    g_assert_cmpuint(info.arch, ==, EIF_ARCH_AARCH64);
    g_assert_cmpuint(info.default_mem, ==, 512);
    g_assert_cmpuint(info.default_cpus, ==, 2);
    inputs_free(&in);
}

static void test_corrupt_sections(void)
{
    TInputs in;
    g_autoptr(GByteArray) good = good_image(&in);
    EifInfo info;
    const struct {
        unsigned section, field;
        uint64_t value;
        uint16_t version;
        const char *expected;
    } cases[] = {
        /*
         * field 0: type, 2: flags, 4: size; 12: set the first data byte,
         * 13: flip bits in it
         */
        { 0, 0, 0, 4, "section 0 at offset 548 has invalid type 0" },
        { 3, 0, 6, 4, "has unknown type 6" },
        { 4, 0, 0xffff, 4, "has unknown type 65535" },
        { 1, 2, 1, 4, "section 1 (cmdline) at offset 8560 has flags 0x0001, "
                      "expected 0" },
        { 2, 4, 1, 4, "section 2 (metadata) at offset 8585: its header says "
                      "1 bytes, the section table 20" },
        { 0, 0, EIF_SECTION_RAMDISK, 4, "section 0 (ramdisk) at offset 548 "
                                        "comes before the kernel section" },
        { 1, 0, EIF_SECTION_KERNEL, 4, "section 1 at offset 8560 is a second "
                                       "kernel section (the first is "
                                       "section 0)" },
        { 2, 0, EIF_SECTION_CMDLINE, 4, "is a second cmdline section" },
        { 3, 0, EIF_SECTION_METADATA, 4, "is a second metadata section" },
        { 1, 0, EIF_SECTION_RAMDISK, 4, "no cmdline section" },
        { 2, 0, EIF_SECTION_RAMDISK, 4, "no metadata section (mandatory "
                                        "from version 4)" },
        /* Random bytes: the validator rejects what would not measure */
        { 3, 0, EIF_SECTION_SIGNATURE, 4, "section 3 (signature) at offset "
                                          "8617: " },
        { 1, 12, 0, 4, "section 1 (cmdline) has a NUL byte at offset 8572" },
        { 0, 13, 0x55, 0, "CRC mismatch" },
        { 4, 13, 0x55, 0, "CRC mismatch" },
    };

    eif_validate(good->data, good->len, &info, &error_abort);
    for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autoptr(GByteArray) img = g_byte_array_new();
        const EifSection *s = &info.sections[cases[i].section];
        uint8_t *p;

        g_byte_array_append(img, good->data, good->len);
        p = img->data + s->offset + cases[i].field;
        switch (cases[i].field) {
        case 0:
        case 2:
            stw_be_p(p, cases[i].value);
            break;
        case 4:
            stq_be_p(p, cases[i].value);
            break;
        case 12:
            *p = cases[i].value;
            break;
        default:
            p[-1] ^= cases[i].value;
        }
        if (!cases[i].version) {
            assert_invalid(img->data, img->len, cases[i].expected);
            continue;
        }
        stw_be_p(img->data + H_VERSION, cases[i].version);
        fix_crc(img->data, img->len);
        assert_invalid(img->data, img->len, cases[i].expected);
    }
    inputs_free(&in);
}

/* eif_crc32() is zlib's CRC-32, at any length and alignment */
static void test_crc32(void)
{
    g_autoptr(GByteArray) data = random_bytes(3 * MiB + 123, 7);
    const size_t cuts[] = { 0, 1, 3, 15, 64, 4095, MiB + 1, 2 * MiB + 77 };

    for (unsigned i = 0; i < ARRAY_SIZE(cuts); i++) {
        const uint8_t *a = data->data + cuts[i];
        size_t len = data->len - cuts[i];
        uint32_t want = crc32(0, a, len);

        for (unsigned j = 0; j < ARRAY_SIZE(cuts); j++) {
            size_t mid = MIN(cuts[j], len);
            uint32_t head = eif_crc32(0, a, mid);
            uint32_t tail = eif_crc32(0, a + mid, len - mid);

            g_assert_cmphex(eif_crc32(head, a + mid, len - mid), ==, want);
            g_assert_cmphex(eif_crc32_combine(head, tail, len - mid), ==,
                            want);
        }
    }
}

/*
 * eif_validate_crc() takes the CRC after the header from its caller, and
 * otherwise checks and fails like eif_validate().
 */
static void test_validate_crc(void)
{
    TInputs in;
    g_autoptr(GByteArray) img = good_image(&in);
    const size_t body = img->len - EIF_HEADER_SIZE;
    uint32_t crc = crc32(0, img->data + EIF_HEADER_SIZE, body);
    Error *err = NULL, *err2 = NULL;
    EifInfo info, info2;

    g_assert_true(eif_validate(img->data, img->len, &info, &error_abort));
    g_assert_true(eif_validate_crc(img->data, img->len, crc, &info2,
                                   &error_abort));
    /* The same, except for the section CRCs, which it does not compute */
    g_assert_true(info.has_section_crc);
    g_assert_false(info2.has_section_crc);
    info.has_section_crc = false;
    for (unsigned i = 0; i < info.nr_sections; i++) {
        g_assert_cmphex(info2.sections[i].crc32, ==, 0);
        info.sections[i].crc32 = 0;
    }
    g_assert_cmpmem(&info2, sizeof(info2), &info, sizeof(info));

    /* A CRC that does not match the image */
    g_assert_false(eif_validate_crc(img->data, img->len, crc ^ 1, &info2,
                                    &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "CRC mismatch"));
    error_free(err);
    err = NULL;

    /* A flipped byte, with the CRC of what was written */
    img->data[img->len - 100] ^= 0xff;
    crc = crc32(0, img->data + EIF_HEADER_SIZE, body);
    g_assert_false(eif_validate(img->data, img->len, &info, &err));
    g_assert_false(eif_validate_crc(img->data, img->len, crc, &info2, &err2));
    g_assert_cmpstr(error_get_pretty(err2), ==, error_get_pretty(err));
    error_free(err);
    error_free(err2);
    err = err2 = NULL;

    /* Structural errors come first, as in eif_validate() */
    g_assert_false(eif_validate(img->data, img->len - 1, &info, &err));
    g_assert_false(eif_validate_crc(img->data, img->len - 1, crc, &info2,
                                    &err2));
    g_assert_cmpstr(error_get_pretty(err2), ==, error_get_pretty(err));
    error_free(err);
    error_free(err2);
    inputs_free(&in);
}

static void test_truncate(void)
{
    TInputs in;
    g_autoptr(GByteArray) good = good_image(&in);
    EifInfo info;

    eif_validate(good->data, good->len, &info, &error_abort);
    assert_invalid(good->data, 0, "image of 0 bytes is smaller than the "
                   "548-byte header");
    assert_invalid(good->data, EIF_HEADER_SIZE - 1, "image of 547 bytes is "
                   "smaller than the 548-byte header");
    for (unsigned i = 0; i < info.nr_sections; i++) {
        const EifSection *s = &info.sections[i];
        const uint64_t cuts[] = {
            s->offset, s->offset + 1, s->data_offset, s->data_offset + 1,
            s->data_offset + s->size - 1,
        };

        for (unsigned j = 0; j < ARRAY_SIZE(cuts); j++) {
            g_autofree char *expected =
                g_strdup_printf("section %u (offset %" PRIu64 ", %" PRIu64
                                " bytes) ends at %" PRIu64 ", beyond the end "
                                "of the image at %" PRIu64, i, s->offset,
                                s->size, s->data_offset + s->size, cuts[j]);

            if (cuts[j] < s->data_offset + s->size) {
                assert_invalid(good->data, cuts[j], expected);
            }
        }
    }
    /* A pipe ends early: the streaming reader says where */
    for (unsigned i = 0; i < 3; i++) {
        const size_t cut[] = { 100, info.sections[2].offset + 5,
                               info.sections[3].data_offset + 5 };
        const char *expected[] = {
            "image truncated at offset 100, in the 548-byte header",
            "image truncated at offset 8590, in the header of section 2",
            "image truncated at offset 8634, in section 3 (ramdisk), which "
            "ends at 11629",
        };
        Error *err = NULL;
        EifInfo info2;
        int fd = open_image_pipe(good->data, cut[i]);

        g_assert_false(eif_read_fd(fd, NULL, NULL, &info2, NULL, &err));
        g_assert_cmpstr(error_get_pretty(err), ==, expected[i]);
        error_free(err);
        close(fd);
    }
    inputs_free(&in);
}

static void test_overlap_range(void)
{
    TInputs in;
    g_autoptr(GByteArray) good = good_image(&in);
    g_autoptr(GByteArray) img = g_byte_array_new();
    EifInfo info;

    eif_validate(good->data, good->len, &info, &error_abort);
    /* Section 4 declared on top of section 2, then past the end */
    g_byte_array_append(img, good->data, good->len);
    stq_be_p(img->data + H_OFFSETS + 32, info.sections[2].offset);
    fix_crc(img->data, img->len);
    assert_invalid(img->data, img->len, "section 4 at offset 8585 overlaps "
                   "section 3 (offset 8617, ends at 11629)");
    stq_be_p(img->data + H_OFFSETS + 32, good->len + 1000);
    fix_crc(img->data, img->len);
    assert_invalid(img->data, img->len, "section 4 at offset 15741 leaves a "
                   "gap of 4112 bytes");
    /* A trailing byte */
    g_byte_array_set_size(img, 0);
    g_byte_array_append(img, good->data, good->len);
    g_byte_array_append(img, (const uint8_t *)"x", 1);
    fix_crc(img->data, img->len);
    assert_invalid(img->data, img->len, "1 bytes of trailing data after the "
                   "last section, which ends at 14741");
    inputs_free(&in);
}

static void test_section_count(void)
{
    TInputs in;
    TSection s[33];
    g_autoptr(GByteArray) img = NULL;
    g_autoptr(GByteArray) img32 = NULL;
    g_autofree const char **paths = g_new(const char *, 30);
    EifBuildParams p = { .arch = EIF_ARCH_X86_64 };
    EifMeasurements m;
    Error *err = NULL;
    uint64_t size;
    EifInfo info;

    inputs_init(&in);
    s[0] = (TSection) { EIF_SECTION_KERNEL, in.kernel->data, 10 };
    s[1] = (TSection) { EIF_SECTION_CMDLINE, "x", 1 };
    s[2] = (TSection) { EIF_SECTION_METADATA, "{}", 2 };
    for (unsigned i = 3; i < 33; i++) {
        s[i] = (TSection) { EIF_SECTION_RAMDISK, "abc", 3 };
    }
    img32 = t_image(4, 0, s, 32);
    assert_valid(img32->data, img32->len, &info, &m);
    g_assert_cmpuint(info.nr_ramdisks, ==, 29);
    img = t_image(4, 0, s, 33);
    assert_invalid(img->data, img->len, "section count 33 exceeds the limit "
                   "of 32");

    /* The builder takes up to 29 ramdisks */
    p.kernel = in.kernel_path;
    p.initrds = paths;
    for (unsigned i = 0; i < 30; i++) {
        paths[i] = in.initrd_path[0];
    }
    p.nr_initrds = 29;
    g_assert_true(eif_build_size(&p, &size, &error_abort));
    p.nr_initrds = 30;
    g_assert_false(eif_build_size(&p, &size, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, "30 ramdisks: an image takes "
                    "1 to 29");
    error_free(err);
    err = NULL;
    p.nr_initrds = 0;
    g_assert_cmpint(eif_build(&p, NULL, 0, NULL, &err), ==, -1);
    g_assert_cmpstr(error_get_pretty(err), ==, "0 ramdisks: an image takes "
                    "1 to 29");
    error_free(err);
    inputs_free(&in);
}

static void test_empty_kernel(void)
{
    TInputs in;
    g_autofree char *empty = write_file("empty", "", 0);
    const char *initrds[1];
    EifBuildParams p = { .arch = EIF_ARCH_X86_64, .kernel = empty,
                         .initrds = initrds, .nr_initrds = 1 };
    TSection s[4];
    g_autoptr(GByteArray) img = NULL;
    g_autofree char *expected = g_strdup_printf("kernel '%s' is empty", empty);
    uint64_t size;
    Error *err = NULL;

    inputs_init(&in);
    initrds[0] = in.initrd_path[0];
    s[0] = (TSection) { EIF_SECTION_KERNEL, "", 0 };
    s[1] = (TSection) { EIF_SECTION_CMDLINE, "x", 1 };
    s[2] = (TSection) { EIF_SECTION_METADATA, "{}", 2 };
    s[3] = (TSection) { EIF_SECTION_RAMDISK, "abc", 3 };
    img = t_image(4, 0, s, 4);
    assert_invalid(img->data, img->len, "section 0 (kernel) at offset 548 is "
                   "empty");
    g_assert_false(eif_build_size(&p, &size, &err));
    g_assert_cmpstr(error_get_pretty(err), ==, expected);
    error_free(err);
    unlink(empty);
    inputs_free(&in);
}

/* A path to one of each kind of file that is not a regular file */
typedef struct TSpecial {
    const char *kind;
    char *path;
} TSpecial;

static void specials_init(TSpecial sp[5])
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd;

    sp[0] = (TSpecial) { "is a FIFO", g_build_filename(tmpdir, "fifo", NULL) };
    g_assert_cmpint(mkfifo(sp[0].path, 0600), ==, 0);
    sp[1] = (TSpecial) { "is a directory", g_strdup(tmpdir) };
    sp[2] = (TSpecial) { "is a character device", g_strdup("/dev/null") };
    sp[3] = (TSpecial) { "is a socket",
                         g_build_filename(tmpdir, "sock", NULL) };
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_assert_cmpint(fd, >=, 0);
    g_strlcpy(sun.sun_path, sp[3].path, sizeof(sun.sun_path));
    g_assert_cmpint(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), ==, 0);
    close(fd);
    /* Never opened, so any device number does; mknod needs root */
    sp[4] = (TSpecial) { "is a block device",
                         g_build_filename(tmpdir, "blk", NULL) };
    if (mknod(sp[4].path, S_IFBLK | 0600, makedev(7, 255))) {
        g_test_message("no block device node (%s): not tested",
                       strerror(errno));
        g_free(sp[4].path);
        sp[4].path = NULL;
    }
}

static void specials_free(TSpecial sp[5])
{
    unlink(sp[0].path);
    unlink(sp[3].path);
    if (sp[4].path) {
        unlink(sp[4].path);
    }
    for (unsigned i = 0; i < 5; i++) {
        g_free(sp[i].path);
    }
}

/*
 * Only regular files are opened: never a FIFO (which would block) nor a
 * device (opening some has side effects).  inotify sees whether the
 * FIFO and the block device node were opened at all, even if they were
 * refused afterwards.
 */
static void test_open_file(void)
{
    g_autofree char *missing = g_build_filename(tmpdir, "missing", NULL);
    g_autofree char *regular = write_file("regular", "abc", 3);
    struct inotify_event ev;
    TSpecial sp[5];
    Error *err = NULL;
    char buf[4];
    int fd, in;

    specials_init(sp);
    in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    g_assert_cmpint(in, >=, 0);
    g_assert_cmpint(inotify_add_watch(in, sp[0].path, IN_OPEN), >=, 0);
    if (sp[4].path) {
        g_assert_cmpint(inotify_add_watch(in, sp[4].path, IN_OPEN), >=, 0);
    }
    for (unsigned i = 0; i < ARRAY_SIZE(sp); i++) {
        g_autofree char *expected = NULL;

        if (!sp[i].path) {
            continue;
        }
        expected = g_strdup_printf("%s: %s", sp[i].path, sp[i].kind);
        g_assert_cmpint(eif_open_file(sp[i].path, &err), ==, -1);
        g_assert_cmpstr(error_get_pretty(err), ==, expected);
        error_free(err);
        err = NULL;
    }
    g_assert_cmpint(read(in, &ev, sizeof(ev)), ==, -1);
    g_assert_cmpint(errno, ==, EAGAIN);
    close(in);
    g_assert_cmpint(eif_open_file(missing, &err), ==, -1);
    g_assert_nonnull(strstr(error_get_pretty(err), "cannot open"));
    error_free(err);
    err = NULL;

    /* A regular file: a blocking, close-on-exec descriptor */
    fd = eif_open_file(regular, &error_abort);
    g_assert_cmpint(fcntl(fd, F_GETFL) & O_NONBLOCK, ==, 0);
    g_assert_cmpint(fcntl(fd, F_GETFD) & FD_CLOEXEC, ==, FD_CLOEXEC);
    g_assert_cmpint(read(fd, buf, sizeof(buf)), ==, 3);
    close(fd);
    unlink(regular);
    specials_free(sp);
}

static void test_build_errors(void)
{
    TInputs in;
    const char *initrds[1];
    EifBuildParams p = { .arch = EIF_ARCH_X86_64, .initrds = initrds,
                         .nr_initrds = 1 };
    g_autofree char *missing = g_build_filename(tmpdir, "missing", NULL);
    TSpecial sp[5];
    Error *err = NULL;
    uint64_t size;
    int fds[2];

    inputs_init(&in);
    specials_init(sp);
    p.kernel = missing;
    initrds[0] = in.initrd_path[0];
    g_assert_false(eif_build_size(&p, &size, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "kernel: cannot open"));
    error_free(err);
    err = NULL;

    /* Inputs that are not regular files, as kernel or ramdisk */
    for (unsigned i = 0; i < ARRAY_SIZE(sp); i++) {
        g_autofree char *as_kernel = NULL;
        g_autofree char *as_initrd = NULL;
        g_autofree uint8_t *buf = g_malloc(64 * KiB);

        if (!sp[i].path) {
            continue;
        }
        as_kernel = g_strdup_printf("kernel: %s: %s", sp[i].path, sp[i].kind);
        as_initrd = g_strdup_printf("ramdisk: %s: %s", sp[i].path,
                                    sp[i].kind);
        p.kernel = sp[i].path;
        initrds[0] = in.initrd_path[0];
        g_assert_cmpint(eif_build(&p, buf, 64 * KiB, NULL, &err), ==, -1);
        g_assert_cmpstr(error_get_pretty(err), ==, as_kernel);
        error_free(err);
        err = NULL;
        p.kernel = in.kernel_path;
        initrds[0] = sp[i].path;
        g_assert_false(eif_build_size(&p, &size, &err));
        g_assert_cmpstr(error_get_pretty(err), ==, as_initrd);
        error_free(err);
        err = NULL;
    }

    /* The CRC goes into the header last: the output must be seekable */
    p.kernel = in.kernel_path;
    initrds[0] = in.initrd_path[0];
    g_assert_cmpint(pipe(fds), ==, 0);
    g_assert_cmpint(eif_build_fd(&p, fds[1], &err), ==, -1);
    g_assert_nonnull(strstr(error_get_pretty(err), "not seekable"));
    error_free(err);
    close(fds[0]);
    close(fds[1]);
    specials_free(sp);
    inputs_free(&in);
}

/* CBOR, written by hand */
static void cbor_head(GByteArray *b, uint8_t major, uint64_t n)
{
    uint8_t buf[9];

    if (n < 24) {
        buf[0] = major << 5 | n;
        g_byte_array_append(b, buf, 1);
    } else if (n < 256) {
        buf[0] = major << 5 | 24;
        buf[1] = n;
        g_byte_array_append(b, buf, 2);
    } else {
        buf[0] = major << 5 | 25;
        stw_be_p(buf + 1, n);
        g_byte_array_append(b, buf, 3);
    }
}

static void cbor_text(GByteArray *b, const char *s)
{
    cbor_head(b, 3, strlen(s));
    g_byte_array_append(b, (const uint8_t *)s, strlen(s));
}

/* A self-signed certificate (tests/nitro/eif/test-cert.pem) */
static const char test_cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBxDCCAUqgAwIBAgIUE4GzmH7Bk06zxGIH6G68hRqnqfwwCgYIKoZIzj0EAwIw\n"
    "GDEWMBQGA1UEAwwNcWVtdS1laWYgdGVzdDAgFw0yNjExMjYxMjMwNDRaGA8yMTI2\n"
    "MTEwMjEyMzA0NFowGDEWMBQGA1UEAwwNcWVtdS1laWYgdGVzdDB2MBAGByqGSM49\n"
    "AgEGBSuBBAAiA2IABPFUIjIcYbKLLk1OMOlLUCp8EWXjgVpGmvRXHbJ8cbNA9NT9\n"
    "KeFZgstiBvoJiom5U+/ECN0VKp/0HVNmQMAO3p1/cU5kU0SX+p7Rj2hel3JBR/kz\n"
    "NR0JGKvuJ5kH5i/8T6NTMFEwHQYDVR0OBBYEFIVNmA67zmyOIbH6aKRm2zk5phvu\n"
    "MB8GA1UdIwQYMBaAFIVNmA67zmyOIbH6aKRm2zk5phvuMA8GA1UdEwEB/wQFMAMB\n"
    "Af8wCgYIKoZIzj0EAwIDaAAwZQIxAMgSzwlC9F4aHtzwqNoeuj7WmrVKlY30+v7o\n"
    "UuAD4jSdVFtPWdFA5E/ge9IInnWEXwIwfuHdnhUnlbJXmxtOWQMkR0Y4yHHeUV2o\n"
    "mh4pm1+9iif2vofw8F/S9RKE75nbgoIt\n"
    "-----END CERTIFICATE-----\n";

/* The DER of a PEM certificate, as gnutls reads it */
static GByteArray *pem_to_der(const char *pem)
{
    gnutls_datum_t in = { (unsigned char *)pem, strlen(pem) }, out;
    gnutls_x509_crt_t crt;
    GByteArray *der = g_byte_array_new();

    g_assert_cmpint(gnutls_x509_crt_init(&crt), ==, 0);
    g_assert_cmpint(gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_PEM),
                    ==, 0);
    g_assert_cmpint(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &out),
                    ==, 0);
    g_byte_array_append(der, out.data, out.size);
    gnutls_free(out.data);
    gnutls_x509_crt_deinit(crt);
    return der;
}

static GByteArray *bytes_of(const char *s)
{
    GByteArray *b = g_byte_array_new();

    g_byte_array_append(b, (const uint8_t *)s, strlen(s));
    return b;
}

/* A map { "signature": [1, 200], "signing_certificate": cert } */
static void signature_entry(GByteArray *b, const GByteArray *cert,
                            bool as_bytes)
{
    cbor_head(b, 5, 2);
    cbor_text(b, "signature");
    cbor_head(b, 4, 2);
    cbor_head(b, 0, 1);
    cbor_head(b, 0, 200);
    cbor_text(b, "signing_certificate");
    if (as_bytes) {
        cbor_head(b, 2, cert->len);
        g_byte_array_append(b, cert->data, cert->len);
    } else {
        cbor_head(b, 4, cert->len);
        for (unsigned i = 0; i < cert->len; i++) {
            cbor_head(b, 0, cert->data[i]);
        }
    }
}

/* [{"signature": [...], "signing_certificate": cert}] */
static GByteArray *signature(const GByteArray *cert, bool as_bytes)
{
    GByteArray *b = g_byte_array_new();

    cbor_head(b, 4, 1);
    signature_entry(b, cert, as_bytes);
    return b;
}

/* A signed image: kernel, cmdline, metadata, ramdisk, signature @sig */
static GByteArray *signed_image(const TInputs *in, const GByteArray *sig)
{
    TSection s[5] = {
        { EIF_SECTION_KERNEL, in->kernel->data, in->kernel->len },
        { EIF_SECTION_CMDLINE, "x", 1 },
        { EIF_SECTION_METADATA, "{}", 2 },
        { EIF_SECTION_RAMDISK, in->initrd[0]->data, in->initrd[0]->len },
        { EIF_SECTION_SIGNATURE, sig->data, sig->len },
    };

    return t_image(4, 0, s, 5);
}

static void test_signature(void)
{
    TInputs in;
    g_autoptr(GByteArray) pem = bytes_of(test_cert_pem);
    g_autoptr(GByteArray) der = pem_to_der(test_cert_pem);
    g_autoptr(GByteArray) big = random_bytes(EIF_SIGNATURE_MAX_SIZE + 1, 7);
    const GByteArray *parts[] = { der };
    char hex[EIF_PCR_HEX_LEN + 1];

    inputs_init(&in);
    /* PCR8 measures the DER of the certificate, which the section holds */
    extend(parts, 1, hex);
    for (unsigned i = 0; i < 2; i++) {
        g_autoptr(GByteArray) sig = signature(pem, i);
        g_autoptr(GByteArray) img = signed_image(&in, sig);
        TSection s[5] = {
            { EIF_SECTION_KERNEL, in.kernel->data, in.kernel->len },
            { EIF_SECTION_CMDLINE, "x", 1 },
            { EIF_SECTION_METADATA, "{}", 2 },
            { EIF_SECTION_RAMDISK, in.initrd[0]->data, in.initrd[0]->len },
            { EIF_SECTION_SIGNATURE, sig->data, sig->len },
        };
        g_autoptr(GByteArray) two = NULL;
        g_autoptr(GByteArray) too_big = NULL;
        g_autoptr(GByteArray) empty = NULL;
        EifMeasurements m;
        EifInfo info;

        assert_valid(img->data, img->len, &info, &m);
        g_assert_true(m.has_pcr8);
        assert_pcr(&m, EIF_PCR8, hex);
        assert_pcr(&m, EIF_PCR2, PCR2_ONE_RAMDISK);

        /* Two signatures; a too big one; an empty one */
        two = t_image(4, 0, (TSection[]) { s[0], s[1], s[2], s[3], s[4],
                                           s[4] }, 6);
        assert_invalid(two->data, two->len, "is a second signature section "
                       "(the first is section 4)");
        s[4] = (TSection) { EIF_SECTION_SIGNATURE, big->data, big->len };
        too_big = t_image(4, 0, s, 5);
        assert_invalid(too_big->data, too_big->len, "section 4 (signature) "
                       "at offset 11599: 1048577 bytes exceed the limit of "
                       "1048576");
        s[4] = (TSection) { EIF_SECTION_SIGNATURE, "", 0 };
        empty = t_image(4, 0, s, 5);
        assert_invalid(empty->data, empty->len, "section 4 (signature) at "
                       "offset 11599 is empty");
    }
    inputs_free(&in);
}

/*
 * A malformed signature section is invalid, with the same message from
 * every validator (eif_validate(), eif_validate_crc(), eif_read_fd()),
 * so that measuring a valid image cannot fail on it.
 */
static void test_signature_malformed(void)
{
    static const char *const bad_pem[] = {
        "no PEM here",
        "-----BEGIN CERTIFICATE-----\nMIIB\n",
        "-----BEGIN CERTIFICATE-----\nMI*B\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nMIIBx\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    };
    static const char *const bad_pem_error[] = {
        "entry 0: signing_certificate is not a PEM certificate (no -----BEGIN "
        "CERTIFICATE----- line)",
        "entry 0: signing_certificate has no -----END CERTIFICATE----- line",
        "entry 0: signing_certificate has a byte 0x2a that is not base64 "
        "at offset 30",
        "entry 0: signing_certificate has invalid base64 (5 characters)",
        "entry 0: signing_certificate is not a DER certificate once decoded",
    };
    g_autoptr(GByteArray) pem = bytes_of(test_cert_pem);
    g_autoptr(GByteArray) empty = g_byte_array_new();
    struct {
        GByteArray *sig;
        const char *expected;
    } cases[20];
    unsigned n = 0;
    GByteArray *b;
    TInputs in;

    inputs_init(&in);
    b = cases[n].sig = g_byte_array_new();
    g_byte_array_append(b, (const uint8_t *)"\xff", 1);
    cases[n++].expected = "invalid or unsupported CBOR at byte 1";

    b = cases[n].sig = signature(pem, true);
    g_byte_array_append(b, (const uint8_t *)"\0", 1);
    cases[n++].expected = "1 bytes after the CBOR item";

    b = cases[n].sig = g_byte_array_new();
    cbor_head(b, 5, 0);
    cases[n++].expected = "not a non-empty CBOR array";

    b = cases[n].sig = g_byte_array_new();
    cbor_head(b, 4, 0);
    cases[n++].expected = "not a non-empty CBOR array";

    b = cases[n].sig = g_byte_array_new();
    cbor_head(b, 4, 1);
    cbor_head(b, 0, 1);
    cases[n++].expected = "entry 0 is not a map";

    b = cases[n].sig = g_byte_array_new();
    cbor_head(b, 4, 2);
    signature_entry(b, pem, false);
    cbor_head(b, 0, 1);
    cases[n++].expected = "entry 1 is not a map";

    /* [{"signature": [1, 200]}] */
    b = cases[n].sig = g_byte_array_new();
    cbor_head(b, 4, 1);
    cbor_head(b, 5, 1);
    cbor_text(b, "signature");
    cbor_head(b, 4, 2);
    cbor_head(b, 0, 1);
    cbor_head(b, 0, 200);
    cases[n++].expected = "entry 0 has no signing_certificate";

    /* [{"signing_certificate": PEM}] */
    b = cases[n].sig = g_byte_array_new();
    cbor_head(b, 4, 1);
    cbor_head(b, 5, 1);
    cbor_text(b, "signing_certificate");
    cbor_head(b, 2, pem->len);
    g_byte_array_append(b, pem->data, pem->len);
    cases[n++].expected = "entry 0 has no signature";

    /* [{"signing_certificate": 7, "signature": ...}] */
    b = cases[n].sig = g_byte_array_new();
    cbor_head(b, 4, 1);
    cbor_head(b, 5, 2);
    cbor_text(b, "signing_certificate");
    cbor_head(b, 0, 7);
    cbor_text(b, "signature");
    cbor_head(b, 2, 0);
    cases[n++].expected = "entry 0: signing_certificate is neither a byte "
                          "string nor an array";

    /* [{"signature": [...], "signing_certificate": [300]}] */
    b = cases[n].sig = g_byte_array_new();
    cbor_head(b, 4, 1);
    cbor_head(b, 5, 2);
    cbor_text(b, "signature");
    cbor_head(b, 2, 0);
    cbor_text(b, "signing_certificate");
    cbor_head(b, 4, 1);
    cbor_head(b, 0, 300);
    cases[n++].expected = "entry 0: signing_certificate element 0 is not a "
                          "byte value";

    b = cases[n].sig = signature(empty, true);
    cases[n++].expected = "entry 0: empty signing_certificate";

    for (unsigned i = 0; i < ARRAY_SIZE(bad_pem); i++) {
        g_autoptr(GByteArray) cert = bytes_of(bad_pem[i]);

        cases[n].sig = signature(cert, false);
        cases[n++].expected = bad_pem_error[i];
    }
    g_assert_cmpuint(n, <=, ARRAY_SIZE(cases));

    for (unsigned i = 0; i < n; i++) {
        g_autoptr(GByteArray) img = signed_image(&in, cases[i].sig);
        g_autofree char *expected =
            g_strdup_printf("section 4 (signature) at offset 11599: %s",
                            cases[i].expected);
        g_autoptr(EifMeasure) em = eif_measure_new(&error_abort);
        const EifSection sig = { .type = EIF_SECTION_SIGNATURE };
        g_autofree char *measure_error = NULL;
        EifMeasurements m;
        Error *err = NULL;

        assert_invalid(img->data, img->len, expected);

        /* Measuring it anyway: the same reason */
        eif_measure_update(em, &sig, cases[i].sig->data, cases[i].sig->len,
                           &error_abort);
        g_assert_false(eif_measure_finish(em, &m, &err));
        measure_error = g_strdup_printf("signature section: %s",
                                        cases[i].expected);
        g_assert_cmpstr(error_get_pretty(err), ==, measure_error);
        error_free(err);
        g_byte_array_unref(cases[i].sig);
    }
    inputs_free(&in);
}

static void assert_error(Error *err, const char *fmt, const char *path)
{
    g_autofree char *expected = g_strdup_printf(fmt, path);

    g_assert_nonnull(err);
    g_assert_cmpstr(error_get_pretty(err), ==, expected);
    error_free(err);
}

/*
 * Direct kernel boot: the image is built into memory that is not readable
 * later, and measured from the inputs, which must not have changed.
 */
static void test_measure_inputs(void)
{
    TInputs in;
    EifBuildParams p = {
        .arch = EIF_ARCH_X86_64,
        .nr_initrds = 2,
        .metadata = metadata_json,
    };
    g_autofree uint8_t *img = NULL;
    g_autoptr(GByteArray) changed = NULL;
    EifMeasurements want, got;
    EifInfo built;
    Error *err = NULL;
    uint64_t size;

    inputs_init(&in);
    p.kernel = in.kernel_path;
    p.initrds = (const char *const *)in.initrd_path;
    for (unsigned i = 0; i < 2; i++) {
        p.cmdline = i ? "console=ttyS0" : NULL;
        g_assert_true(eif_build_size(&p, &size, &error_abort));
        img = g_realloc(img, size);
        g_assert_cmpint(eif_build(&p, img, size, &built, &error_abort), ==,
                        size);
        g_assert_true(eif_measure(img, &built, &want, &error_abort));
        g_assert_true(eif_measure_inputs(&p, &built, &got, &error_abort));
        g_assert_cmpmem(&got, sizeof(got), &want, sizeof(want));
    }

    /* The second ramdisk rewritten, with the same size */
    changed = g_byte_array_new();
    g_byte_array_append(changed, in.initrd[1]->data, in.initrd[1]->len);
    changed->data[100] ^= 1;
    g_assert_true(g_file_set_contents(in.initrd_path[1],
                                      (char *)changed->data, changed->len,
                                      NULL));
    g_assert_false(eif_measure_inputs(&p, &built, &got, &err));
    assert_error(err, "%s: changed since it was loaded", in.initrd_path[1]);
    err = NULL;

    /* Back as it was: measured again */
    g_assert_true(g_file_set_contents(in.initrd_path[1],
                                      (char *)in.initrd[1]->data,
                                      in.initrd[1]->len, NULL));
    g_assert_true(eif_measure_inputs(&p, &built, &got, &error_abort));
    g_assert_cmpmem(&got, sizeof(got), &want, sizeof(want));

    /* The kernel grown, then cut */
    g_byte_array_append(in.kernel, (const uint8_t *)"x", 1);
    for (unsigned i = 0; i < 2; i++) {
        g_assert_true(g_file_set_contents(in.kernel_path,
                                          (char *)in.kernel->data,
                                          in.kernel->len - 2 * i, NULL));
        g_assert_false(eif_measure_inputs(&p, &built, &got, &err));
        assert_error(err, "%s: changed since it was loaded", in.kernel_path);
        err = NULL;
    }

    /* Replaced by a FIFO: refused, not read */
    unlink(in.kernel_path);
    g_assert_cmpint(mkfifo(in.kernel_path, 0600), ==, 0);
    g_assert_false(eif_measure_inputs(&p, &built, &got, &err));
    assert_error(err, "%s: is a FIFO", in.kernel_path);
    err = NULL;
    unlink(in.kernel_path);

    /* Not what eif_build() returned */
    built.has_section_crc = false;
    g_assert_false(eif_measure_inputs(&p, &built, &got, &err));
    g_assert_nonnull(strstr(error_get_pretty(err), "not built by"));
    error_free(err);
    inputs_free(&in);
}

/* An EIF is measured from its file, which must not have changed */
static void test_measure_file(void)
{
    TInputs in;
    g_autoptr(GByteArray) img = good_image(&in);
    g_autoptr(GByteArray) other = t_image_from(&in, EIF_ARCH_X86_64,
                                               "quiet", 2);
    g_autofree char *path = write_file("loaded.eif", img->data, img->len);
    EifMeasurements want, got;
    Error *err = NULL;
    EifInfo loaded;

    g_assert_true(eif_validate(img->data, img->len, &loaded, &error_abort));
    g_assert_true(eif_measure(img->data, &loaded, &want, &error_abort));
    g_assert_true(eif_measure_file(path, &loaded, &got, &error_abort));
    g_assert_cmpmem(&got, sizeof(got), &want, sizeof(want));

    /* Another valid image */
    g_assert_true(g_file_set_contents(path, (char *)other->data, other->len,
                                      NULL));
    g_assert_false(eif_measure_file(path, &loaded, &got, &err));
    assert_error(err, "%s: changed since it was loaded", path);
    err = NULL;

    /* A broken one */
    img->data[img->len - 1] ^= 1;
    g_assert_true(g_file_set_contents(path, (char *)img->data, img->len,
                                      NULL));
    g_assert_false(eif_measure_file(path, &loaded, &got, &err));
    g_assert_true(g_str_has_prefix(error_get_pretty(err), path));
    g_assert_nonnull(strstr(error_get_pretty(err),
                            ": changed since it was loaded: CRC mismatch"));
    error_free(err);
    err = NULL;

    /* A directory in its place */
    unlink(path);
    g_assert_cmpint(mkdir(path, 0700), ==, 0);
    g_assert_false(eif_measure_file(path, &loaded, &got, &err));
    assert_error(err, "%s: is a directory", path);
    rmdir(path);
    inputs_free(&in);
}

/* Data measured from outside the image, as the nitro-enclave machine does */
static void test_measure_extra_ramdisk(void)
{
    TInputs in;
    g_autoptr(GByteArray) img = good_image(&in);
    g_autoptr(GByteArray) cmd = g_byte_array_new();
    g_autoptr(EifMeasure) em = eif_measure_new(&error_abort);
    const GByteArray *parts[] = {
        in.kernel, cmd, in.initrd[0], in.initrd[1], in.initrd[2],
    };
    EifSection extra = { .type = EIF_SECTION_RAMDISK, .nth = 2 };
    char hex[EIF_PCR_HEX_LEN + 1];
    EifMeasurements m;
    EifInfo info;

    g_byte_array_append(cmd, (const uint8_t *)"console=ttyS0", 13);
    eif_validate(img->data, img->len, &info, &error_abort);
    for (unsigned i = 0; i < info.nr_sections; i++) {
        const EifSection *s = &info.sections[i];

        /* Byte by byte: chunking does not matter */
        for (uint64_t j = 0; j < s->size; j++) {
            eif_measure_update(em, s, eif_section_data(img->data, s) + j, 1,
                               &error_abort);
        }
    }
    eif_measure_update(em, &extra, in.initrd[2]->data, in.initrd[2]->len,
                       &error_abort);
    eif_measure_finish(em, &m, &error_abort);
    extend(parts, 5, hex);
    assert_pcr(&m, EIF_PCR0, hex);
    extend(parts, 3, hex);
    assert_pcr(&m, EIF_PCR1, hex);
    extend(parts + 3, 2, hex);
    assert_pcr(&m, EIF_PCR2, hex);
    g_assert_cmpuint(eif_pcr_index(EIF_PCR8), ==, 8);
    inputs_free(&in);
}

int main(int argc, char **argv)
{
    static const RoundTrip roundtrips[] = {
        { EIF_ARCH_X86_64, 1 }, { EIF_ARCH_X86_64, 2 }, { EIF_ARCH_X86_64, 3 },
        { EIF_ARCH_AARCH64, 1 }, { EIF_ARCH_AARCH64, 2 },
        { EIF_ARCH_AARCH64, 3 },
    };
    int ret;

    g_test_init(&argc, &argv, NULL);
    qcrypto_init(&error_abort);
    tmpdir = g_dir_make_tmp("test-eif-XXXXXX", NULL);
    g_assert_nonnull(tmpdir);

    for (unsigned i = 0; i < ARRAY_SIZE(roundtrips); i++) {
        g_autofree char *name =
            g_strdup_printf("/eif/roundtrip/%s/%u-initrd",
                            eif_arch_name(roundtrips[i].arch),
                            roundtrips[i].nr_initrds);

        g_test_add_data_func(name, &roundtrips[i], test_roundtrip);
    }
    g_test_add_func("/eif/corrupt/header", test_corrupt_header);
    g_test_add_func("/eif/corrupt/sections", test_corrupt_sections);
    g_test_add_func("/eif/header-fields", test_header_fields);
    g_test_add_func("/eif/truncate", test_truncate);
    g_test_add_func("/eif/crc32", test_crc32);
    g_test_add_func("/eif/validate-crc", test_validate_crc);
    g_test_add_func("/eif/overlap-range", test_overlap_range);
    g_test_add_func("/eif/section-count", test_section_count);
    g_test_add_func("/eif/empty-kernel", test_empty_kernel);
    g_test_add_func("/eif/build-errors", test_build_errors);
    g_test_add_func("/eif/signature", test_signature);
    g_test_add_func("/eif/signature-malformed", test_signature_malformed);
    g_test_add_func("/eif/open-file", test_open_file);
    g_test_add_func("/eif/measure-inputs", test_measure_inputs);
    g_test_add_func("/eif/measure-file", test_measure_file);
    g_test_add_func("/eif/measure-extra-ramdisk", test_measure_extra_ramdisk);
    ret = g_test_run();
    rmdir(tmpdir);
    g_free(tmpdir);
    return ret;
}
