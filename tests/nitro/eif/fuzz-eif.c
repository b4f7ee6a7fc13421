/*
 * libFuzzer target for the EIF parser (hw/core/eif*.c)
 *
 * Every input, as is and with its CRC fixed up (to get past the CRC
 * check), goes through eif_validate() (memory) and eif_read_fd() (a
 * memfd), which must agree; valid images must measure (signature CBOR
 * and certificate included) and are iterated.  Built with clang and
 * -fsanitize=fuzzer,address,undefined by fuzz.sh, outside QEMU's build:
 * the few QEMU functions that the library calls are stubbed here (hashing
 * with a cheap order-dependent digest that reads every byte).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <zlib.h>
#include "qemu/bswap.h"
#include "qapi/error.h"
#include "crypto/hash.h"
#include "hw/core/eif.h"

struct Error {
    char *msg;
};

static void set_error(Error **errp, char *msg)
{
    if (errp && !*errp) {
        *errp = g_new(Error, 1);
        (*errp)->msg = msg;
    } else {
        g_free(msg);
    }
}

void error_setg_internal(Error **errp, const char *src, int line,
                         const char *func, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    set_error(errp, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

void error_setg_errno_internal(Error **errp, const char *src, int line,
                               const char *func, int os_errno,
                               const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    set_error(errp, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

void error_prepend(Error *const *errp, const char *fmt, ...)
{
    g_autofree char *prefix = NULL;
    char *msg;
    va_list ap;

    if (!errp || !*errp) {
        return;
    }
    va_start(ap, fmt);
    prefix = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    msg = g_strconcat(prefix, (*errp)->msg, NULL);
    g_free((*errp)->msg);
    (*errp)->msg = msg;
}

const char *error_get_pretty(const Error *err)
{
    return err->msg;
}

void error_free(Error *err)
{
    if (err) {
        g_free(err->msg);
        g_free(err);
    }
}

ssize_t qemu_write_full(int fd, const void *buf, size_t count)
{
    abort();
}

QCryptoHash *qcrypto_hash_new(QCryptoHashAlgo alg, Error **errp)
{
    QCryptoHash *h = g_new0(QCryptoHash, 1);

    h->opaque = g_malloc0(EIF_PCR_LEN);
    return h;
}

int qcrypto_hash_update(QCryptoHash *hash, const void *buf, size_t len,
                        Error **errp)
{
    uint8_t *state = hash->opaque;
    const uint8_t *p = buf;

    for (size_t i = 0; i < len; i++) {
        state[i % EIF_PCR_LEN] = state[i % EIF_PCR_LEN] * 31 + p[i] + 1;
    }
    return 0;
}

int qcrypto_hash_finalize_bytes(QCryptoHash *hash, uint8_t **result,
                                size_t *result_len, Error **errp)
{
    assert(*result_len == EIF_PCR_LEN);
    memcpy(*result, hash->opaque, EIF_PCR_LEN);
    return 0;
}

void qcrypto_hash_free(QCryptoHash *hash)
{
    if (hash) {
        g_free(hash->opaque);
        g_free(hash);
    }
}

int qcrypto_hash_bytesv(QCryptoHashAlgo alg, const struct iovec *iov,
                        size_t niov, uint8_t **result, size_t *resultlen,
                        Error **errp)
{
    g_autoptr(QCryptoHash) h = qcrypto_hash_new(alg, errp);

    for (size_t i = 0; i < niov; i++) {
        qcrypto_hash_update(h, iov[i].iov_base, iov[i].iov_len, errp);
    }
    return qcrypto_hash_finalize_bytes(h, result, resultlen, errp);
}

int qcrypto_hash_bytes(QCryptoHashAlgo alg, const void *buf, size_t len,
                       uint8_t **result, size_t *resultlen, Error **errp)
{
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

    return qcrypto_hash_bytesv(alg, &iov, 1, result, resultlen, errp);
}

static bool check_chunk(const EifSection *s, uint64_t pos, const void *data,
                        size_t len, void *opaque, Error **errp)
{
    const uint8_t *image = opaque;

    assert(len && pos + len <= s->size);
    assert(!memcmp(image + s->data_offset + pos, data, len));
    return true;
}

/* The COSE_Sign1 reader of a valid image's signature, for a verifier */
static void check_signature(const uint8_t *data, const EifInfo *info,
                            const EifMeasurements *m)
{
    const EifSection *s = eif_find_section(info, EIF_SECTION_SIGNATURE, 0);
    EifSignature sig;
    Error *err = NULL;

    if (!s) {
        return;
    }
    if (eif_signature_parse(eif_section_data(data, s), s->size, &sig,
                            &err)) {
        g_autoptr(GByteArray) tbs = eif_signature_tbs(&sig);

        assert(tbs->len > sig.payload->len);
        eif_signature_signs_pcr0(&sig, m->pcr[EIF_PCR0], &err);
        eif_signature_clear(&sig);
    } else {
        assert(!sig.cert_der && !sig.payload);
    }
    error_free(err);
}

static void check_image(const uint8_t *data, size_t size)
{
    Error *err = NULL, *err_fd = NULL, *err_m = NULL;
    EifMeasurements m, m_fd;
    EifInfo info, info_fd;
    bool ok, ok_fd, ok_m;
    static int fd = -1;

    if (fd < 0) {
        fd = memfd_create("fuzz-eif", MFD_CLOEXEC);
        assert(fd >= 0);
    }
    assert(!ftruncate(fd, 0));
    assert(pwrite(fd, data, size, 0) == size);

    ok = eif_validate(data, size, &info, &err);
    if (ok) {
        /* The validator checked all that measuring needs */
        ok_m = eif_measure(data, &info, &m, &err_m);
        assert(ok_m);
        for (unsigned t = 0; t < EIF_SECTION__MAX; t++) {
            const EifSection *s;

            for (unsigned n = 0; (s = eif_find_section(&info, t, n)); n++) {
                const uint8_t *p = eif_section_data(data, s);

                assert(s->data_offset + s->size <= size);
                if (s->size) {
                    assert(p == data + s->data_offset);
                    assert(p[0] + p[s->size - 1] < 512);
                }
            }
        }
        check_signature(data, &info, &m);
    }

    /* The streaming reader: same verdict, same error, same results */
    lseek(fd, 0, SEEK_SET);
    ok_fd = eif_read_fd(fd, check_chunk, (void *)data, &info_fd, &m_fd,
                        &err_fd);
    if (ok) {
        assert(ok_fd);
        assert(!memcmp(&info, &info_fd, sizeof(info)));
        assert(!memcmp(&m, &m_fd, sizeof(m)));
    } else {
        assert(!ok_fd && !strcmp(err->msg, err_fd->msg));
    }

    error_free(err);
    error_free(err_fd);
    error_free(err_m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree uint8_t *fixed = NULL;
    uint32_t crc;

    check_image(data, size);

    /* Mutations nearly always break the CRC: check past it, too */
    if (size >= EIF_HEADER_SIZE) {
        fixed = g_memdup2(data, size);
        crc = crc32(0, fixed, EIF_HEADER_CRC_OFFSET);
        crc = crc32(crc, fixed + EIF_HEADER_SIZE, size - EIF_HEADER_SIZE);
        stl_be_p(fixed + EIF_HEADER_CRC_OFFSET, crc);
        check_image(fixed, size);
    }
    return 0;
}
