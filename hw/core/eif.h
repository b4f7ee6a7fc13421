/*
 * EIF (AWS Nitro Enclaves Enclave Image Format): validate, load, measure
 * and build images
 *
 * An EIF is a 548-byte header followed by sections, each a 12-byte section
 * header and its data; all integers are big-endian.  The library reads
 * images held in memory (guest RAM) or streamed from a file descriptor,
 * and writes images straight into a caller's buffer or file descriptor.
 * Nothing goes through temporary files and images are never copied whole
 * to the heap.
 *
 * This is the whole API of the library; hw/core/eif-internal.h says
 * which of its files does what.
 *
 * Copyright (c) 2024 Dorjoy Chowdhury <dorjoychy111@gmail.com>
 * Copyright (c) 2026 Nitro Enclaves for QEMU contributors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * (at your option) any later version.  See the COPYING file in the
 * top-level directory.
 */

#ifndef HW_CORE_EIF_H
#define HW_CORE_EIF_H

#define EIF_MAGIC               ".eif"
#define EIF_VERSION_MIN         2
/* The version eif_build() writes, and the newest one understood */
#define EIF_VERSION             4
#define EIF_MAX_SECTIONS        32
#define EIF_HEADER_SIZE         548
#define EIF_SECTION_HEADER_SIZE 12
/* Header flags: bit 0 is the architecture */
#define EIF_FLAG_ARCH_AARCH64   0x1
/* Byte offset of the crc32 field, which the CRC itself does not cover */
#define EIF_HEADER_CRC_OFFSET   (EIF_HEADER_SIZE - 4)
/* Signature sections are a certificate and a COSE_Sign1: a few KiB */
#define EIF_SIGNATURE_MAX_SIZE  (1024 * 1024)

/* SHA-384 */
#define EIF_PCR_LEN             48
#define EIF_PCR_HEX_LEN         (2 * EIF_PCR_LEN)

/* On-disk header, big-endian */
typedef struct QEMU_PACKED EifHeader {
    uint8_t magic[4];
    uint16_t version;
    uint16_t flags;
    uint64_t default_mem;
    uint64_t default_cpus;
    uint16_t reserved;
    uint16_t section_cnt;
    uint64_t section_offsets[EIF_MAX_SECTIONS];
    uint64_t section_sizes[EIF_MAX_SECTIONS];
    uint32_t unused;
    uint32_t crc32;
} EifHeader;

/* On-disk section header, big-endian */
typedef struct QEMU_PACKED EifSectionHeader {
    uint16_t type;
    uint16_t flags;
    uint64_t size;
} EifSectionHeader;

typedef enum EifSectionType {
    EIF_SECTION_INVALID = 0,
    EIF_SECTION_KERNEL = 1,
    EIF_SECTION_CMDLINE = 2,
    EIF_SECTION_RAMDISK = 3,
    EIF_SECTION_SIGNATURE = 4,
    EIF_SECTION_METADATA = 5,
    EIF_SECTION__MAX,
} EifSectionType;

typedef enum EifArch {
    EIF_ARCH_X86_64,
    EIF_ARCH_AARCH64,
} EifArch;

/* A section of a validated image */
typedef struct EifSection {
    EifSectionType type;
    /* Position in the section table (which is file order) */
    unsigned index;
    /* Number of sections of the same type before this one */
    unsigned nth;
    /* Offset of the section header in the image */
    uint64_t offset;
    /* Offset of the data in the image: offset + EIF_SECTION_HEADER_SIZE */
    uint64_t data_offset;
    /* Size of the data */
    uint64_t size;
    /* CRC-32 of the data, if EifInfo.has_section_crc */
    uint32_t crc32;
} EifSection;

/*
 * What validation found out about an image.  A valid image has exactly
 * one kernel (non-empty) and one cmdline section (without NUL bytes), at
 * least one ramdisk, all after the kernel, at most one signature section
 * (holding a signing certificate, see eif_validate()) and one metadata
 * section (mandatory from version 4), sections laid out back to back
 * after the header in table order up to the end of the image, and a good
 * CRC.
 */
typedef struct EifInfo {
    uint16_t version;
    EifArch arch;
    /* Informational header fields */
    uint64_t default_mem;
    uint64_t default_cpus;
    /* Size of the whole image in bytes */
    uint64_t size;
    /* The (verified) CRC-32 of the image */
    uint32_t crc32;
    unsigned nr_sections;
    unsigned nr_ramdisks;
    /*
     * sections[].crc32 are known: eif_validate(), eif_read_fd() and
     * eif_build() compute them, eif_validate_crc() does not
     */
    bool has_section_crc;
    EifSection sections[EIF_MAX_SECTIONS];
} EifInfo;

/**
 * eif_section_type_name:
 * @type: a section type, any value
 *
 * Returns: "kernel", "cmdline", "ramdisk", "signature", "metadata",
 * "invalid" (0) or "unknown".
 */
const char *eif_section_type_name(unsigned type);

/**
 * eif_arch_name:
 * @arch: an architecture
 *
 * Returns: "x86_64" or "aarch64".
 */
const char *eif_arch_name(EifArch arch);

/* How many bytes of a kernel image eif_kernel_arch() looks at */
#define EIF_KERNEL_ARCH_PROBE   0x210

/**
 * eif_kernel_arch:
 * @data: the start of a Linux kernel image
 * @len: its length (from EIF_KERNEL_ARCH_PROBE bytes, every format is seen)
 * @arch: where to store its architecture
 *
 * Returns: true when the image says its architecture: an x86 bzImage,
 * an arm64 Image or a 64-bit ELF vmlinux; false otherwise.
 */
bool eif_kernel_arch(const void *data, size_t len, EifArch *arch);

/**
 * eif_open_file:
 * @path: the file to open for reading
 * @errp: pointer to a NULL-initialized error object
 *
 * Open an input file, refusing anything but a regular file ("@path: is a
 * FIFO", "is a directory", "is a character device", "is a socket", "is a
 * block device") without reading it or blocking on it.  Every input of
 * the library and its tools is opened with it.
 *
 * Returns: a blocking, close-on-exec file descriptor, or -1 with @errp
 * set.
 */
int eif_open_file(const char *path, Error **errp);

/**
 * eif_validate:
 * @image: the image in memory (for example guest RAM)
 * @size: the size of the image; it must be exactly the size that the
 *        section table describes
 * @info: filled in on success (may be partially filled on failure)
 * @errp: pointer to a NULL-initialized error object
 *
 * Validate an image completely: header, section table, section headers,
 * section rules (including the structure of the signature section, so
 * that measuring a valid image cannot fail) and CRC.  Never reads outside
 * [@image, @image + @size).  qemu-eif describe, the machines and
 * eif_read_fd() all run this same validator, with the same errors.
 *
 * Returns: true if the image is valid, false with @errp set (naming the
 * section, offset and limit at fault) otherwise.
 */
bool eif_validate(const void *image, size_t size, EifInfo *info,
                  Error **errp);

/**
 * eif_crc32:
 * @crc: the CRC-32 of the bytes before @data (0 to start)
 * @data: the next bytes
 * @len: their number
 *
 * Returns: the CRC-32 (zlib's and gzip's) of the bytes so far.
 */
uint32_t eif_crc32(uint32_t crc, const void *data, size_t len);

/**
 * eif_crc32_combine:
 * @crc1: the CRC-32 of a first run of bytes
 * @crc2: the CRC-32 of the run that follows it
 * @len2: the length of the second run
 *
 * Returns: the CRC-32 of both runs, one after the other.
 */
uint32_t eif_crc32_combine(uint32_t crc1, uint32_t crc2, uint64_t len2);

/**
 * eif_validate_crc:
 * @image: the image in memory
 * @size: the size of the image, as for eif_validate()
 * @body_crc: the eif_crc32() of the image after its header, from offset
 *            %EIF_HEADER_SIZE to @size, computed while it was written
 * @info: filled in on success (may be partially filled on failure)
 * @errp: pointer to a NULL-initialized error object
 *
 * eif_validate() for a caller that wrote @image itself (for example on
 * several threads) and computed its CRC on the way: the same checks and
 * errors, without another pass over the section data.
 *
 * Returns: true if the image is valid, false with @errp set.
 */
bool eif_validate_crc(const void *image, size_t size, uint32_t body_crc,
                      EifInfo *info, Error **errp);

/**
 * eif_find_section:
 * @info: a validated image
 * @type: the section type to look for
 * @nth: 0 for the first section of @type, 1 for the second...
 *
 * Iterate over the ramdisks with
 * `for (n = 0; (s = eif_find_section(info, EIF_SECTION_RAMDISK, n)); n++)`;
 * or over all sections with info->sections[0 .. info->nr_sections - 1].
 *
 * Returns: the section, or NULL if there is no such section.
 */
const EifSection *eif_find_section(const EifInfo *info, EifSectionType type,
                                   unsigned nth);

/**
 * eif_section_data:
 * @image: a validated image in memory
 * @s: one of its sections
 *
 * Returns: a pointer to the data of @s inside @image (s->size bytes); no
 * copy is made.
 */
static inline const uint8_t *eif_section_data(const void *image,
                                              const EifSection *s)
{
    return (const uint8_t *)image + s->data_offset;
}

/* PCRs of an image.  PCRn = SHA-384(48 zero bytes || digest[n]) */
typedef enum EifPcr {
    EIF_PCR0,   /* kernel, cmdline and all ramdisks */
    EIF_PCR1,   /* kernel, cmdline and the first ramdisk */
    EIF_PCR2,   /* the ramdisks after the first */
    EIF_PCR8,   /* DER of the signing certificate, signed images only */
    EIF_NR_PCRS,
} EifPcr;

typedef struct EifMeasurements {
    /* SHA-384 of the measured data: what a vNSM extends the PCR with */
    uint8_t digest[EIF_NR_PCRS][EIF_PCR_LEN];
    /* The PCR values that an attestation document reports */
    uint8_t pcr[EIF_NR_PCRS][EIF_PCR_LEN];
    /* The image is signed: digest/pcr[EIF_PCR8] are valid (else zero) */
    bool has_pcr8;
} EifMeasurements;

/**
 * eif_pcr_index:
 * @pcr: an #EifPcr
 *
 * Returns: the PCR register number of @pcr: 0, 1, 2 or 8.
 */
unsigned eif_pcr_index(EifPcr pcr);

/**
 * eif_pcr_to_hex:
 * @pcr: a PCR or digest value
 * @hex: receives EIF_PCR_HEX_LEN lowercase hex digits and a NUL
 */
void eif_pcr_to_hex(const uint8_t pcr[EIF_PCR_LEN],
                    char hex[EIF_PCR_HEX_LEN + 1]);

/* Incremental measurement, fed with the sections' data in file order */
typedef struct EifMeasure EifMeasure;

/**
 * eif_measure_new:
 * @errp: pointer to a NULL-initialized error object
 *
 * Returns: a new measurement, or NULL with @errp set.
 */
EifMeasure *eif_measure_new(Error **errp);

/**
 * eif_measure_update:
 * @m: the measurement
 * @s: the section that @data belongs to; only s->type and s->nth (which
 *     ramdisk) matter, so a caller may measure data from outside the image
 *     as an additional ramdisk (s->nth > 0 goes to PCR2)
 * @data: the next @len bytes of the section's data
 * @len: number of bytes
 * @errp: pointer to a NULL-initialized error object
 *
 * Sections must be fed in file order, each from its first byte to its
 * last, in as many calls as wanted.  Metadata is not measured.
 *
 * Returns: true on success, false with @errp set.
 */
bool eif_measure_update(EifMeasure *m, const EifSection *s,
                        const void *data, size_t len, Error **errp);

/**
 * eif_measure_finish:
 * @m: the measurement (cannot be updated any more afterwards)
 * @out: receives the digests and PCRs
 * @errp: pointer to a NULL-initialized error object
 *
 * Fails if a signature section was fed that does not hold a signing
 * certificate (CBOR array whose first element maps "signing_certificate"
 * to a PEM certificate); never for a validated image.  PCR8 measures the
 * DER of that certificate.
 *
 * Returns: true on success, false with @errp set.
 */
bool eif_measure_finish(EifMeasure *m, EifMeasurements *out, Error **errp);

void eif_measure_free(EifMeasure *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EifMeasure, eif_measure_free)

/**
 * eif_measure:
 * @image: an image in memory validated with eif_validate()
 * @info: its #EifInfo
 * @out: receives the digests and PCRs
 * @errp: pointer to a NULL-initialized error object
 *
 * Returns: true on success, false with @errp set.
 */
bool eif_measure(const void *image, const EifInfo *info,
                 EifMeasurements *out, Error **errp);

/**
 * EifDataFunc:
 * @s: the section the data belongs to
 * @pos: offset of @data within the section's data
 * @data: the next @len bytes of the section (valid during the call only)
 * @len: number of bytes, never 0
 * @opaque: the caller's pointer
 * @errp: pointer to a NULL-initialized error object
 *
 * Returns: true to go on, false with @errp set to stop reading.
 */
typedef bool (*EifDataFunc)(const EifSection *s, uint64_t pos,
                            const void *data, size_t len, void *opaque,
                            Error **errp);

/**
 * eif_read_fd:
 * @fd: file descriptor to read the image from, from its current position
 *      to end of file
 * @fn: if not NULL, called with the data of every section, in file order,
 *      in chunks
 * @opaque: passed to @fn
 * @info: filled in on success (may be partially filled on failure)
 * @pcrs: if not NULL, receives the measurements, computed on the way
 * @errp: pointer to a NULL-initialized error object
 *
 * Validate (and measure) an image of any size with a small, constant
 * buffer, handing its data to @fn.  Data reaches @fn before the image is
 * known to be valid (its CRC is checked at the end): @fn must not trust it
 * before eif_read_fd() returns true.
 *
 * Returns: true if the image is valid, false with @errp set.
 */
bool eif_read_fd(int fd, EifDataFunc fn, void *opaque, EifInfo *info,
                 EifMeasurements *pcrs, Error **errp);

/*
 * The first entry of a signature section, as nitro-cli writes it: the
 * signing certificate and a COSE_Sign1 (tagged 18 or not) [protected
 * {1: alg}, unprotected map, payload, signature], whose payload is the
 * serde_cbor of PcrInfo { register_index: 0, register_value: PCR0 }.
 */
typedef struct EifSignature {
    /* The signing certificate, DER */
    GByteArray *cert_der;
    /* The COSE_Sign1's protected header (the bytes it signs) */
    GByteArray *protected_hdr;
    /* Its algorithm: -7 (ES256), -35 (ES384), -36 (ES512)... */
    int64_t alg;
    GByteArray *payload;
    /* r || s */
    GByteArray *signature;
} EifSignature;

/**
 * eif_signature_parse:
 * @sig: the data of a signature section
 * @len: its size
 * @out: receives the parts (free them with eif_signature_clear())
 * @errp: pointer to a NULL-initialized error object
 *
 * Read the signing certificate and the COSE_Sign1 of the section's first
 * entry.  No cryptography: a verifier checks the signature over
 * eif_signature_tbs() with the certificate's key.
 *
 * Returns: true on success, false with @errp set (and @out clear).
 */
bool eif_signature_parse(const uint8_t *sig, size_t len, EifSignature *out,
                         Error **errp);

void eif_signature_clear(EifSignature *s);

/**
 * eif_signature_tbs:
 * @s: a parsed signature
 *
 * Returns: what the COSE_Sign1's signature signs, its Sig_structure
 * ["Signature1", protected, h'', payload].
 */
GByteArray *eif_signature_tbs(const EifSignature *s);

/**
 * eif_signature_pcr0_payload:
 * @pcr0: an image's PCR0
 *
 * Returns: the COSE_Sign1 payload that signs @pcr0, as nitro-cli writes
 * it (serde_cbor: a map of text keys, the value an array of byte values).
 */
GByteArray *eif_signature_pcr0_payload(const uint8_t pcr0[EIF_PCR_LEN]);

/**
 * eif_signature_signs_pcr0:
 * @s: a parsed signature
 * @pcr0: the PCR0 of the image it is in
 * @errp: pointer to a NULL-initialized error object
 *
 * Returns: true if @s's payload is eif_signature_pcr0_payload(@pcr0),
 * false with @errp set otherwise.
 */
bool eif_signature_signs_pcr0(const EifSignature *s,
                              const uint8_t pcr0[EIF_PCR_LEN], Error **errp);

/* What eif_build() puts into an image */
typedef struct EifBuildParams {
    EifArch arch;
    /* Path of the kernel image (bzImage on x86_64, Image on aarch64) */
    const char *kernel;
    /* Kernel command line; NULL for eif_default_cmdline(arch) */
    const char *cmdline;
    /* Paths of the ramdisks, 1 to EIF_MAX_SECTIONS - 3, in boot order */
    const char *const *initrds;
    unsigned nr_initrds;
    /* Metadata section: a JSON object, written as is; NULL for "{}" */
    const char *metadata;
} EifBuildParams;

/**
 * eif_default_cmdline:
 * @arch: an architecture
 *
 * Returns: the kernel command line that the official tooling uses for
 * @arch.
 */
const char *eif_default_cmdline(EifArch arch);

/**
 * eif_build_size:
 * @p: what to build
 * @size: receives the size of the image eif_build() would write now
 * @errp: pointer to a NULL-initialized error object
 *
 * Check @p and the input files (which must be regular files, the kernel
 * non-empty) without reading them, so that a caller can check a capacity
 * early.
 *
 * Returns: true on success, false with @errp set.
 */
bool eif_build_size(const EifBuildParams *p, uint64_t *size, Error **errp);

/**
 * eif_build:
 * @p: what to build
 * @dst: where to write the image (for example guest RAM)
 * @capacity: size of @dst; a bigger image fails with "image of N bytes
 *            does not fit in M bytes" before anything is written
 * @info: if not NULL, receives the #EifInfo of the image, which is then
 *        validated as eif_validate_crc() does, with the CRC computed on
 *        the way, and the CRC of each section for
 *        eif_measure_inputs()
 * @errp: pointer to a NULL-initialized error object
 *
 * Write a version 4 image flagged for p->arch with the sections kernel,
 * cmdline, metadata, ramdisks, reading the input files straight into
 * @dst and computing the CRC on the way.  Fails if an input file changes
 * size while it is read.
 *
 * Returns: the size of the image, or -1 with @errp set.
 */
int64_t eif_build(const EifBuildParams *p, void *dst, size_t capacity,
                  EifInfo *info, Error **errp);

/**
 * eif_build_fd:
 * @p: what to build
 * @fd: where to write the image, from its current position; it must be
 *      seekable (the CRC is written last, into the header)
 * @errp: pointer to a NULL-initialized error object
 *
 * Like eif_build(), with a small, constant buffer.
 *
 * Returns: the size of the image, or -1 with @errp set.
 */
int64_t eif_build_fd(const EifBuildParams *p, int fd, Error **errp);

/**
 * eif_measure_inputs:
 * @p: what eif_build() was given
 * @built: the #EifInfo that eif_build(@p) returned
 * @out: receives the digests and PCRs
 * @errp: pointer to a NULL-initialized error object
 *
 * Measure the image that eif_build(@p) wrote (and that may no longer be
 * readable, as guest RAM of a running enclave is not) from its inputs,
 * re-reading the files; the command line comes from @p.  Each section
 * must hold the bytes that were built (same size and CRC), else this
 * fails with "FILE: changed since it was loaded".
 *
 * Returns: true on success, false with @errp set.
 */
bool eif_measure_inputs(const EifBuildParams *p, const EifInfo *built,
                        EifMeasurements *out, Error **errp);

/**
 * eif_measure_file:
 * @path: an EIF file
 * @loaded: the #EifInfo of the image that was loaded from it
 * @out: receives the digests and PCRs
 * @errp: pointer to a NULL-initialized error object
 *
 * Measure the EIF @path (opened with eif_open_file() and streamed with
 * eif_read_fd()), which must still be the image described by @loaded
 * (same CRC and size), else fail with "@path: changed since it was
 * loaded".
 *
 * Returns: true on success, false with @errp set.
 */
bool eif_measure_file(const char *path, const EifInfo *loaded,
                      EifMeasurements *out, Error **errp);

#endif
