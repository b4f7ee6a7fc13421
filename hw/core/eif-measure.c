/*
 * EIF library: measurements
 *
 * The SHA-384 digests and PCRs that attestation reports for an image
 * (PCR0, PCR1, PCR2 and, for a signed image, PCR8), computed
 * incrementally from sections fed in file order, from an image in memory,
 * or from the input files of eif_build() - checking that the files still
 * hold the bytes that were loaded (eif-read.c measures an EIF file).
 *
 * Copyright (c) 2024 Dorjoy Chowdhury <dorjoychy111@gmail.com>
 * Copyright (c) 2026 Nitro Enclaves for QEMU contributors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "crypto/hash.h"

#include "hw/core/eif-internal.h"

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
        g_autoptr(GByteArray) cert = NULL;

        cert = eif_signing_certificate(m->signature->data, m->signature->len,
                                       errp);
        if (!cert) {
            error_prepend(errp, "signature section: ");
            return false;
        }
        digest = out->digest[EIF_PCR8];
        if (qcrypto_hash_bytes(QCRYPTO_HASH_ALGO_SHA384, cert->data,
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
 * Feed the section @s of the image that eif_build() made to @m from the
 * input file @path, checking that it still holds what was built: the
 * same size and CRC.  A CRC is no defence against someone who crafts a
 * collision, but whoever can write the inputs chooses the image anyway.
 */
static bool eif_measure_input_fd(EifMeasure *m, const EifSection *s,
                                 int fd, const char *path, Error **errp)
{
    g_autofree uint8_t *buf = g_malloc(EIF_CHUNK_SIZE);
    uint32_t crc = 0;
    uint64_t pos = 0;
    ssize_t n;

    while (pos < s->size) {
        n = read(fd, buf, MIN(s->size - pos, EIF_CHUNK_SIZE));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_setg_errno(errp, errno, "cannot read '%s'", path);
            return false;
        }
        if (!n) {
            break;
        }
        crc = eif_crc32(crc, buf, n);
        if (!eif_measure_update(m, s, buf, n, errp)) {
            return false;
        }
        pos += n;
    }
    do {
        n = read(fd, buf, 1);
    } while (n < 0 && errno == EINTR);
    if (pos != s->size || n || crc != s->crc32) {
        error_setg(errp, "%s: changed since it was loaded", path);
        return false;
    }
    return true;
}

static bool eif_measure_input(EifMeasure *m, const EifSection *s,
                              const char *path, Error **errp)
{
    int fd = eif_open_file(path, errp);
    bool ok;

    if (fd < 0) {
        return false;
    }
    ok = eif_measure_input_fd(m, s, fd, path, errp);
    close(fd);
    return ok;
}

bool eif_measure_inputs(const EifBuildParams *p, const EifInfo *built,
                        EifMeasurements *out, Error **errp)
{
    const char *cmdline = p->cmdline ?: eif_default_cmdline(p->arch);
    g_autoptr(EifMeasure) m = NULL;

    if (!built->has_section_crc || built->nr_ramdisks != p->nr_initrds) {
        error_setg(errp, "the image was not built by eif_build() from "
                   "these inputs");
        return false;
    }
    m = eif_measure_new(errp);
    if (!m) {
        return false;
    }
    for (unsigned i = 0; i < built->nr_sections; i++) {
        const EifSection *s = &built->sections[i];

        switch (s->type) {
        case EIF_SECTION_KERNEL:
            if (!eif_measure_input(m, s, p->kernel, errp)) {
                return false;
            }
            break;
        case EIF_SECTION_RAMDISK:
            if (!eif_measure_input(m, s, p->initrds[s->nth], errp)) {
                return false;
            }
            break;
        case EIF_SECTION_CMDLINE:
            if (s->size != strlen(cmdline) ||
                s->crc32 != eif_crc32(0, cmdline, s->size)) {
                error_setg(errp, "the command line is not the one that was "
                           "built");
                return false;
            }
            if (!eif_measure_update(m, s, cmdline, s->size, errp)) {
                return false;
            }
            break;
        default:
            /* Metadata is not measured, eif_build() signs nothing */
            break;
        }
    }
    return eif_measure_finish(m, out, errp);
}
