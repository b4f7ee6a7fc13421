/*
 * qemu-eif: signed enclave images, and PCRs of files, as nitro-cli makes
 * and computes them
 *
 * A signed image has a signature section: the CBOR (as serde_cbor writes
 * it) of an array of one map { "signing_certificate": the certificate
 * file's bytes, "signature": a COSE_Sign1's bytes }, both arrays of byte
 * values.  The COSE_Sign1 is untagged: [protected bstr {1: alg},
 * unprotected {}, payload bstr, signature r || s], signed with the
 * certificate's ECDSA key (ES256, ES384 or ES512 after its curve) over
 * ["Signature1", protected, h'', payload].  The payload is the map
 * { "register_index": 0, "register_value": PCR0 as an array of byte
 * values }.  PCR8 measures the certificate's DER; the section is not
 * part of PCR0, 1 or 2.
 *
 * The PCR of a file (pcr --input) is SHA-384(48 zero bytes ||
 * SHA-384(file)); of a certificate (pcr --signing-certificate), the same
 * over its DER.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <getopt.h>
#include <cbor.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include "qemu/bswap.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "cli.h"
#include "output.h"
#include "sign.h"

/* Certificates and keys are a few KiB */
#define SIGN_INPUT_MAX  (1024 * 1024)
#define COSE_ALG_ES256  (-7)
#define COSE_ALG_ES384  (-35)
#define COSE_ALG_ES512  (-36)

/* What signs with a curve: the COSE algorithm, gnutls's, r and s sizes */
typedef struct SignAlg {
    unsigned bits;
    int cose;
    gnutls_sign_algorithm_t sign;
    unsigned half;
} SignAlg;

static const SignAlg sign_algs[] = {
    { 256, COSE_ALG_ES256, GNUTLS_SIGN_ECDSA_SHA256, 32 },
    { 384, COSE_ALG_ES384, GNUTLS_SIGN_ECDSA_SHA384, 48 },
    { 521, COSE_ALG_ES512, GNUTLS_SIGN_ECDSA_SHA512, 66 },
};

static const SignAlg *sign_alg_of(gnutls_pubkey_t pub, Error **errp)
{
    unsigned int bits = 0;

    if (gnutls_pubkey_get_pk_algorithm(pub, &bits) == GNUTLS_PK_ECDSA) {
        for (unsigned i = 0; i < ARRAY_SIZE(sign_algs); i++) {
            if (sign_algs[i].bits == bits) {
                return &sign_algs[i];
            }
        }
    }
    error_setg(errp, "the key is not an ECDSA key on P-256, P-384 or "
               "P-521");
    return NULL;
}

/* The first certificate of PEM @pem */
static gnutls_x509_crt_t import_pem_cert(const GByteArray *pem,
                                         const char *what, Error **errp)
{
    gnutls_datum_t d = { pem->data, pem->len };
    gnutls_x509_crt_t crt;
    int ret;

    gnutls_x509_crt_init(&crt);
    ret = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
    if (ret < 0) {
        error_setg(errp, "%s is not a PEM certificate: %s", what,
                   gnutls_strerror(ret));
        gnutls_x509_crt_deinit(crt);
        return NULL;
    }
    return crt;
}

/* SHA-384(48 zero bytes || SHA-384(@data)): a PCR extended once */
static bool pcr_of(const uint8_t *data, size_t len, uint8_t pcr[EIF_PCR_LEN],
                   Error **errp)
{
    uint8_t buf[2 * EIF_PCR_LEN] = { 0 };

    if (gnutls_hash_fast(GNUTLS_DIG_SHA384, data, len, buf + EIF_PCR_LEN) ||
        gnutls_hash_fast(GNUTLS_DIG_SHA384, buf, sizeof(buf), pcr)) {
        error_setg(errp, "SHA-384 is not available");
        return false;
    }
    return true;
}

/* The PCR of a file of any size, streamed */
static bool pcr_of_file(const char *path, uint8_t pcr[EIF_PCR_LEN],
                        Error **errp)
{
    uint8_t buf[2 * EIF_PCR_LEN] = { 0 };
    g_autofree uint8_t *chunk = g_malloc(1024 * 1024);
    gnutls_hash_hd_t h;
    int fd = eif_open_file(path, errp);
    ssize_t n;

    if (fd < 0) {
        return false;
    }
    if (gnutls_hash_init(&h, GNUTLS_DIG_SHA384)) {
        error_setg(errp, "SHA-384 is not available");
        close(fd);
        return false;
    }
    while ((n = read(fd, chunk, 1024 * 1024)) != 0) {
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_setg_errno(errp, errno, "cannot read '%s'", path);
            gnutls_hash_deinit(h, NULL);
            close(fd);
            return false;
        }
        gnutls_hash(h, chunk, n);
    }
    close(fd);
    gnutls_hash_deinit(h, buf + EIF_PCR_LEN);
    if (gnutls_hash_fast(GNUTLS_DIG_SHA384, buf, sizeof(buf), pcr)) {
        error_setg(errp, "SHA-384 is not available");
        return false;
    }
    return true;
}

static bool pcr_of_cert(const char *path, uint8_t pcr[EIF_PCR_LEN],
                        Error **errp)
{
    g_autoptr(GByteArray) pem = cli_read_file(path, SIGN_INPUT_MAX, errp);
    gnutls_x509_crt_t crt;
    gnutls_datum_t der;
    bool ok;

    if (!pem) {
        return false;
    }
    crt = import_pem_cert(pem, path, errp);
    if (!crt) {
        return false;
    }
    ok = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) >= 0;
    gnutls_x509_crt_deinit(crt);
    if (!ok) {
        error_setg(errp, "%s: cannot encode the certificate in DER", path);
        return false;
    }
    ok = pcr_of(der.data, der.size, pcr, errp);
    gnutls_free(der.data);
    return ok;
}

int cmd_pcr(int argc, char **argv)
{
    static const struct option opts[] = {
        { "input", required_argument, NULL, 'i' },
        { "signing-certificate", required_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *input = NULL, *cert = NULL;
    uint8_t pcr[EIF_PCR_LEN];
    char hex[EIF_PCR_HEX_LEN + 1];
    Error *err = NULL;
    int c;

    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            input = optarg;
            break;
        case 's':
            cert = optarg;
            break;
        case 'h':
            printf("Usage: qemu-eif pcr --input FILE | "
                   "--signing-certificate CERT\n");
            return 0;
        default:
            return cli_bad_option(c, argv);
        }
    }
    if (!cli_no_operands(argc, argv)) {
        return 2;
    }
    if (!input == !cert) {
        error_report("pcr needs either --input or --signing-certificate");
        return 2;
    }
    if (!(input ? pcr_of_file(input, pcr, &err)
                : pcr_of_cert(cert, pcr, &err))) {
        error_report_err(err);
        return 1;
    }
    eif_pcr_to_hex(pcr, hex);
    printf("{\n  \"%s\": \"%s\"\n}\n", input ? "PCR" : "PCR8", hex);
    return 0;
}

/* CBOR as serde_cbor writes a Vec<u8>: an array of byte values */
static cbor_item_t *cbor_byte_values(const uint8_t *data, size_t len)
{
    cbor_item_t *array = cbor_new_definite_array(len);

    for (size_t i = 0; i < len; i++) {
        cbor_array_push(array, cbor_move(cbor_build_uint8(data[i])));
    }
    return array;
}

static void cbor_put(cbor_item_t *map, const char *key, cbor_item_t *value)
{
    cbor_map_add(map, (struct cbor_pair) {
        .key = cbor_move(cbor_build_string(key)),
        .value = cbor_move(value),
    });
}

static GByteArray *cbor_bytes(cbor_item_t *item)
{
    uint8_t *buf = NULL;
    size_t size, len = cbor_serialize_alloc(item, &buf, &size);
    GByteArray *out = g_byte_array_new();

    g_byte_array_append(out, buf, len);
    free(buf);
    cbor_decref(&item);
    return out;
}

/* The COSE_Sign1 payload: the serde_cbor of PcrInfo for PCR0 */
static GByteArray *pcr0_payload(const uint8_t pcr0[EIF_PCR_LEN])
{
    cbor_item_t *map = cbor_new_definite_map(2);

    cbor_put(map, "register_index", cbor_build_uint8(0));
    cbor_put(map, "register_value", cbor_byte_values(pcr0, EIF_PCR_LEN));
    return cbor_bytes(map);
}

static GByteArray *protected_header(int alg)
{
    cbor_item_t *map = cbor_new_definite_map(1);

    cbor_map_add(map, (struct cbor_pair) {
        .key = cbor_move(cbor_build_uint8(1)),
        .value = cbor_move(cbor_build_negint8(-1 - alg)),
    });
    return cbor_bytes(map);
}

/* ["Signature1", protected, h'', payload] */
static GByteArray *sig_structure(const GByteArray *prot,
                                 const GByteArray *payload)
{
    cbor_item_t *tbs = cbor_new_definite_array(4);

    cbor_array_push(tbs, cbor_move(cbor_build_string("Signature1")));
    cbor_array_push(tbs, cbor_move(cbor_build_bytestring(prot->data,
                                                         prot->len)));
    cbor_array_push(tbs, cbor_move(cbor_new_definite_bytestring()));
    cbor_array_push(tbs, cbor_move(cbor_build_bytestring(payload->data,
                                                         payload->len)));
    return cbor_bytes(tbs);
}

/* Append the integer @v (DER INTEGER contents) as exactly @half bytes */
static bool append_fixed(GByteArray *out, const gnutls_datum_t *v,
                         unsigned half)
{
    const uint8_t *p = v->data;
    size_t n = v->size;
    uint8_t zero = 0;

    while (n > half && !*p) {
        p++;
        n--;
    }
    if (n > half) {
        return false;
    }
    for (size_t i = n; i < half; i++) {
        g_byte_array_append(out, &zero, 1);
    }
    g_byte_array_append(out, p, n);
    return true;
}

typedef struct Signer {
    GByteArray *pem;
    gnutls_x509_crt_t crt;
    gnutls_privkey_t key;
    const SignAlg *alg;
} Signer;

static void signer_free(Signer *s)
{
    if (s->crt) {
        gnutls_x509_crt_deinit(s->crt);
    }
    if (s->key) {
        gnutls_privkey_deinit(s->key);
    }
    if (s->pem) {
        g_byte_array_unref(s->pem);
    }
}

/* Load a certificate and its private key, which must match */
static bool signer_load(Signer *s, const char *cert_path,
                        const char *key_path, Error **errp)
{
    g_autoptr(GByteArray) key_pem = NULL;
    gnutls_pubkey_t cert_pub = NULL, key_pub = NULL;
    uint8_t id1[64], id2[64];
    size_t len1 = sizeof(id1), len2 = sizeof(id2);
    gnutls_datum_t d;
    bool ok = false;
    int ret;

    s->pem = cli_read_file(cert_path, SIGN_INPUT_MAX, errp);
    key_pem = s->pem ? cli_read_file(key_path, SIGN_INPUT_MAX, errp) : NULL;
    if (!key_pem) {
        return false;
    }
    s->crt = import_pem_cert(s->pem, cert_path, errp);
    if (!s->crt) {
        return false;
    }
    gnutls_privkey_init(&s->key);
    d = (gnutls_datum_t) { key_pem->data, key_pem->len };
    ret = gnutls_privkey_import_x509_raw(s->key, &d, GNUTLS_X509_FMT_PEM,
                                         NULL, 0);
    if (ret < 0) {
        error_setg(errp, "%s is not an unencrypted PEM private key: %s",
                   key_path, gnutls_strerror(ret));
        return false;
    }
    gnutls_pubkey_init(&cert_pub);
    gnutls_pubkey_init(&key_pub);
    if (gnutls_pubkey_import_x509(cert_pub, s->crt, 0) < 0 ||
        gnutls_pubkey_import_privkey(key_pub, s->key, 0, 0) < 0 ||
        gnutls_pubkey_get_key_id(cert_pub, 0, id1, &len1) < 0 ||
        gnutls_pubkey_get_key_id(key_pub, 0, id2, &len2) < 0) {
        error_setg(errp, "cannot read the public key of %s or %s",
                   cert_path, key_path);
        goto out;
    }
    s->alg = sign_alg_of(cert_pub, errp);
    if (!s->alg) {
        error_prepend(errp, "%s: ", cert_path);
        goto out;
    }
    if (len1 != len2 || memcmp(id1, id2, len1)) {
        error_setg(errp, "%s is not the private key of %s", key_path,
                   cert_path);
        goto out;
    }
    ok = true;
out:
    gnutls_pubkey_deinit(cert_pub);
    gnutls_pubkey_deinit(key_pub);
    return ok;
}

/* The COSE_Sign1 of PCR0, untagged */
static GByteArray *sign_pcr0(Signer *s, const uint8_t pcr0[EIF_PCR_LEN],
                             Error **errp)
{
    g_autoptr(GByteArray) payload = pcr0_payload(pcr0);
    g_autoptr(GByteArray) prot = protected_header(s->alg->cose);
    g_autoptr(GByteArray) tbs = sig_structure(prot, payload);
    g_autoptr(GByteArray) rs = g_byte_array_new();
    gnutls_datum_t data = { tbs->data, tbs->len };
    gnutls_datum_t der = { NULL, 0 }, r = { NULL, 0 }, sv = { NULL, 0 };
    cbor_item_t *cose;
    bool ok;
    int ret;

    ret = gnutls_privkey_sign_data2(s->key, s->alg->sign, 0, &data, &der);
    if (ret < 0) {
        error_setg(errp, "cannot sign: %s", gnutls_strerror(ret));
        return NULL;
    }
    ok = gnutls_decode_rs_value(&der, &r, &sv) >= 0 &&
         append_fixed(rs, &r, s->alg->half) &&
         append_fixed(rs, &sv, s->alg->half);
    gnutls_free(der.data);
    gnutls_free(r.data);
    gnutls_free(sv.data);
    if (!ok) {
        error_setg(errp, "cannot decode the ECDSA signature");
        return NULL;
    }
    cose = cbor_new_definite_array(4);
    cbor_array_push(cose, cbor_move(cbor_build_bytestring(prot->data,
                                                          prot->len)));
    cbor_array_push(cose, cbor_move(cbor_new_definite_map(0)));
    cbor_array_push(cose, cbor_move(cbor_build_bytestring(payload->data,
                                                          payload->len)));
    cbor_array_push(cose, cbor_move(cbor_build_bytestring(rs->data,
                                                          rs->len)));
    return cbor_bytes(cose);
}

/* The signature section's data */
static GByteArray *signature_section(Signer *s, const GByteArray *cose)
{
    cbor_item_t *entries = cbor_new_definite_array(1);
    cbor_item_t *entry = cbor_new_definite_map(2);

    cbor_put(entry, "signing_certificate",
             cbor_byte_values(s->pem->data, s->pem->len));
    cbor_put(entry, "signature", cbor_byte_values(cose->data, cose->len));
    cbor_array_push(entries, cbor_move(entry));
    return cbor_bytes(entries);
}

static bool pwrite_all(int fd, const void *buf, size_t len, off_t off,
                       Error **errp)
{
    const uint8_t *p = buf;

    while (len) {
        ssize_t n = pwrite(fd, p, len, off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            error_setg_errno(errp, n < 0 ? errno : EIO,
                             "cannot write the image");
            return false;
        }
        p += n;
        len -= n;
        off += n;
    }
    return true;
}

/* The CRC of the image in @fd: everything but the CRC field */
static bool image_crc(int fd, uint32_t *crc, Error **errp)
{
    g_autofree uint8_t *buf = g_malloc(1024 * 1024);
    off_t off = 0;
    ssize_t n;

    *crc = 0;
    while ((n = pread(fd, buf, 1024 * 1024, off)) != 0) {
        size_t skip_from, skip_to;

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_setg_errno(errp, errno, "cannot read the image");
            return false;
        }
        /* The part of [off, off + n) outside the CRC field */
        skip_from = MIN(MAX(off, EIF_HEADER_CRC_OFFSET), off + n) - off;
        skip_to = MIN(MAX(off, EIF_HEADER_SIZE), off + n) - off;
        *crc = eif_crc32(*crc, buf, skip_from);
        *crc = eif_crc32(*crc, buf + skip_to, n - skip_to);
        off += n;
    }
    return true;
}

static bool sign_fd(int fd, Signer *s, Error **errp)
{
    g_autoptr(GByteArray) cose = NULL;
    g_autoptr(GByteArray) section = NULL;
    const EifSection *old;
    EifSectionHeader sh;
    EifMeasurements m;
    EifHeader h;
    EifInfo info;
    uint64_t offset;
    unsigned index;
    uint32_t crc;

    if (lseek(fd, 0, SEEK_SET) < 0 ||
        !eif_read_fd(fd, NULL, NULL, &info, &m, errp)) {
        return false;
    }
    old = eif_find_section(&info, EIF_SECTION_SIGNATURE, 0);
    if (old && old->index + 1 != info.nr_sections) {
        error_setg(errp, "the signature section is section %u of %u, not "
                   "the last one: cannot replace it", old->index,
                   info.nr_sections);
        return false;
    }
    if (!old && info.nr_sections == EIF_MAX_SECTIONS) {
        error_setg(errp, "the image has %d sections: no room for a "
                   "signature", EIF_MAX_SECTIONS);
        return false;
    }
    index = old ? old->index : info.nr_sections;
    offset = old ? old->offset : info.size;

    cose = sign_pcr0(s, m.pcr[EIF_PCR0], errp);
    if (!cose) {
        return false;
    }
    section = signature_section(s, cose);
    if (pread(fd, &h, sizeof(h), 0) != sizeof(h)) {
        error_setg(errp, "cannot read the image's header");
        return false;
    }
    h.section_cnt = cpu_to_be16(index + 1);
    h.section_offsets[index] = cpu_to_be64(offset);
    h.section_sizes[index] = cpu_to_be64(section->len);
    sh = (EifSectionHeader) {
        .type = cpu_to_be16(EIF_SECTION_SIGNATURE),
        .size = cpu_to_be64(section->len),
    };
    if (!pwrite_all(fd, &h, sizeof(h), 0, errp) ||
        !pwrite_all(fd, &sh, sizeof(sh), offset, errp) ||
        !pwrite_all(fd, section->data, section->len, offset + sizeof(sh),
                    errp)) {
        return false;
    }
    if (ftruncate(fd, offset + sizeof(sh) + section->len) < 0) {
        error_setg_errno(errp, errno, "cannot truncate the image");
        return false;
    }
    if (!image_crc(fd, &crc, errp)) {
        return false;
    }
    crc = cpu_to_be32(crc);
    if (!pwrite_all(fd, &crc, sizeof(crc), EIF_HEADER_CRC_OFFSET, errp)) {
        return false;
    }
    /* What was written is a valid image, signed */
    if (lseek(fd, 0, SEEK_SET) < 0 ||
        !eif_read_fd(fd, NULL, NULL, &info, &m, errp)) {
        error_prepend(errp, "the signed image is not valid: ");
        return false;
    }
    return true;
}

bool eif_sign_fd(int fd, const char *cert_path, const char *key_path,
                 Error **errp)
{
    Signer s = { 0 };
    bool ok = signer_load(&s, cert_path, key_path, errp) &&
              sign_fd(fd, &s, errp);

    signer_free(&s);
    return ok;
}

static bool copy_file(const char *path, int dst, Error **errp)
{
    g_autofree uint8_t *buf = g_malloc(1024 * 1024);
    int src = eif_open_file(path, errp);
    off_t off = 0;
    ssize_t n;

    if (src < 0) {
        return false;
    }
    while ((n = read(src, buf, 1024 * 1024)) != 0) {
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_setg_errno(errp, errno, "cannot read '%s'", path);
            close(src);
            return false;
        }
        if (!pwrite_all(dst, buf, n, off, errp)) {
            close(src);
            return false;
        }
        off += n;
    }
    close(src);
    return true;
}

int cmd_sign(int argc, char **argv)
{
    static const struct option opts[] = {
        { "eif-path", required_argument, NULL, 'e' },
        { "signing-certificate", required_argument, NULL, 's' },
        { "private-key", required_argument, NULL, 'k' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *eif = NULL, *cert = NULL, *key = NULL, *output = NULL;
    Error *err = NULL;
    bool ok;
    int c, fd;

    while ((c = getopt_long(argc, argv, "+:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            eif = optarg;
            break;
        case 's':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 'h':
            printf("Usage: qemu-eif sign --eif-path FILE "
                   "--signing-certificate CERT\n"
                   "                     --private-key KEY [-o OUTPUT]\n");
            return 0;
        default:
            return cli_bad_option(c, argv);
        }
    }
    if (!cli_no_operands(argc, argv)) {
        return 2;
    }
    if (!eif || !cert || !key) {
        error_report("sign needs --eif-path, --signing-certificate and "
                     "--private-key");
        return 2;
    }
    fd = output_open(output ?: eif, &err);
    if (fd < 0) {
        error_report_err(err);
        return 1;
    }
    ok = copy_file(eif, fd, &err) && eif_sign_fd(fd, cert, key, &err);
    if (!ok) {
        error_prepend(&err, "%s: ", eif);
    }
    if (!output_commit(fd, ok, ok ? &err : NULL)) {
        error_report_err(err);
        return 1;
    }
    return 0;
}

/* The bytes of a byte string or of an array of byte values */
static GByteArray *item_bytes(cbor_item_t *item)
{
    GByteArray *out = g_byte_array_new();

    if (cbor_isa_bytestring(item) && cbor_bytestring_is_definite(item)) {
        g_byte_array_append(out, cbor_bytestring_handle(item),
                            cbor_bytestring_length(item));
        return out;
    }
    if (!cbor_isa_array(item)) {
        g_byte_array_unref(out);
        return NULL;
    }
    for (size_t i = 0; i < cbor_array_size(item); i++) {
        cbor_item_t *v = cbor_array_handle(item)[i];
        uint8_t b;

        if (!cbor_isa_uint(v) || cbor_get_int(v) > UINT8_MAX) {
            g_byte_array_unref(out);
            return NULL;
        }
        b = cbor_get_int(v);
        g_byte_array_append(out, &b, 1);
    }
    return out;
}

static cbor_item_t *map_get(cbor_item_t *map, const char *key)
{
    for (size_t i = 0; i < cbor_map_size(map); i++) {
        struct cbor_pair *p = &cbor_map_handle(map)[i];

        if (cbor_isa_string(p->key) && cbor_string_is_definite(p->key) &&
            cbor_string_length(p->key) == strlen(key) &&
            !memcmp(cbor_string_handle(p->key), key, strlen(key))) {
            return p->value;
        }
    }
    return NULL;
}

static cbor_item_t *load(const uint8_t *data, size_t len)
{
    struct cbor_load_result res;
    cbor_item_t *item = cbor_load(data, len, &res);

    if (item && res.read != len) {
        cbor_decref(&item);
    }
    return item;
}

/* The COSE_Sign1 @cose verifies with @crt's key and signs @payload */
static bool check_cose(const GByteArray *cose, gnutls_x509_crt_t crt,
                       const GByteArray *payload, Error **errp)
{
    cbor_item_t *c = load(cose->data, cose->len);
    cbor_item_t *prot_map = NULL, **a;
    g_autoptr(GByteArray) prot = NULL;
    g_autoptr(GByteArray) signed_payload = NULL;
    g_autoptr(GByteArray) tbs = NULL;
    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t r, s, der = { NULL, 0 }, data;
    const SignAlg *alg;
    struct cbor_pair *p;
    bool ok = false;
    int ret;

    if (c && cbor_isa_tag(c) && cbor_tag_value(c) == 18) {
        cbor_item_t *inner = cbor_tag_item(c);

        cbor_decref(&c);
        c = inner;
    }
    if (!c || !cbor_isa_array(c) || cbor_array_size(c) != 4) {
        error_setg(errp, "the signature is not a COSE_Sign1");
        goto out;
    }
    a = cbor_array_handle(c);
    prot = item_bytes(a[0]);
    signed_payload = item_bytes(a[2]);
    if (!cbor_isa_bytestring(a[0]) || !cbor_isa_bytestring(a[2]) ||
        !cbor_isa_bytestring(a[3]) || !prot || !signed_payload) {
        error_setg(errp, "the signature is not a COSE_Sign1");
        goto out;
    }
    gnutls_pubkey_init(&pub);
    if (gnutls_pubkey_import_x509(pub, crt, 0) < 0) {
        error_setg(errp, "cannot read the signing certificate's key");
        goto out;
    }
    alg = sign_alg_of(pub, errp);
    if (!alg) {
        error_prepend(errp, "the signing certificate: ");
        goto out;
    }
    prot_map = load(prot->data, prot->len);
    p = prot_map && cbor_isa_map(prot_map) && cbor_map_size(prot_map) == 1 ?
        cbor_map_handle(prot_map) : NULL;
    if (!p || !cbor_isa_uint(p->key) || cbor_get_int(p->key) != 1 ||
        !cbor_isa_negint(p->value) ||
        -1 - (int64_t)cbor_get_int(p->value) != alg->cose) {
        error_setg(errp, "the COSE_Sign1's protected header is not "
                   "{1: %d}, the algorithm of the certificate's key",
                   alg->cose);
        goto out;
    }
    if (cbor_bytestring_length(a[3]) != 2 * alg->half) {
        error_setg(errp, "the COSE_Sign1's signature is %zu bytes, not %u",
                   cbor_bytestring_length(a[3]), 2 * alg->half);
        goto out;
    }
    tbs = sig_structure(prot, signed_payload);
    r = (gnutls_datum_t) { cbor_bytestring_handle(a[3]), alg->half };
    s = (gnutls_datum_t) { cbor_bytestring_handle(a[3]) + alg->half,
                           alg->half };
    if (gnutls_encode_rs_value(&der, &r, &s) < 0) {
        error_setg(errp, "cannot encode the signature");
        goto out;
    }
    data = (gnutls_datum_t) { tbs->data, tbs->len };
    ret = gnutls_pubkey_verify_data2(pub, alg->sign, 0, &data, &der);
    if (ret < 0) {
        error_setg(errp, "the COSE_Sign1 does not verify with the signing "
                   "certificate's key: %s", gnutls_strerror(ret));
        goto out;
    }
    if (signed_payload->len != payload->len ||
        memcmp(signed_payload->data, payload->data, payload->len)) {
        error_setg(errp, "the signature does not sign this image's PCR0");
        goto out;
    }
    ok = true;
out:
    gnutls_free(der.data);
    if (pub) {
        gnutls_pubkey_deinit(pub);
    }
    if (prot_map) {
        cbor_decref(&prot_map);
    }
    if (c) {
        cbor_decref(&c);
    }
    return ok;
}

bool eif_signature_check(const uint8_t *sig, size_t len,
                         const uint8_t pcr0[EIF_PCR_LEN], Error **errp)
{
    cbor_item_t *entries = load(sig, len);
    g_autoptr(GByteArray) pem = NULL;
    g_autoptr(GByteArray) cose = NULL;
    g_autoptr(GByteArray) payload = pcr0_payload(pcr0);
    gnutls_x509_crt_t crt;
    cbor_item_t *entry;
    bool ok;

    entry = entries && cbor_isa_array(entries) &&
            cbor_array_size(entries) ? cbor_array_handle(entries)[0] : NULL;
    if (entry && cbor_isa_map(entry)) {
        cbor_item_t *c = map_get(entry, "signing_certificate");
        cbor_item_t *s = map_get(entry, "signature");

        pem = c ? item_bytes(c) : NULL;
        cose = s ? item_bytes(s) : NULL;
    }
    if (entries) {
        cbor_decref(&entries);
    }
    if (!pem || !cose) {
        error_setg(errp, "the signature section is not an array of "
                   "{signing_certificate, signature} maps");
        return false;
    }
    crt = import_pem_cert(pem, "the signing certificate", errp);
    if (!crt) {
        return false;
    }
    ok = check_cose(cose, crt, payload, errp);
    gnutls_x509_crt_deinit(crt);
    return ok;
}
