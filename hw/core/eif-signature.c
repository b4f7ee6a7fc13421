/*
 * EIF library: the signature section
 *
 * A signed image has a signature section: a CBOR array of
 * { "signing_certificate": PEM, "signature": COSE_Sign1 } maps (both
 * values byte strings, or arrays of byte values as serde writes them),
 * the first of which signs PCR0.  The validator checks this structure
 * and that the first certificate's DER can be extracted; PCR8 measures
 * that DER.  Just enough CBOR (RFC 8949) is read for this, bounds-checked
 * and fuzzed: definite lengths only, nesting limited.  The validator does
 * not look into the signature; eif_signature_parse() reads its
 * COSE_Sign1 (as nitro-cli writes it: see EifSignature) for a verifier,
 * which does the cryptography.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/host-utils.h"

#include "hw/core/eif-internal.h"

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
 * The bytes of a byte string or of an array of byte values, in a
 * well-formed item (eif_cbor_skip() checked it)
 */
static GByteArray *eif_cbor_bytes(EifCbor *c, unsigned entry,
                                  const char *key, Error **errp)
{
    g_autoptr(GByteArray) bytes = g_byte_array_new();
    unsigned major;
    uint64_t arg, byte;

    eif_cbor_head(c, &major, &arg);
    if (major == 2) {
        g_byte_array_append(bytes, c->p, arg);
        c->p += arg;
        return g_steal_pointer(&bytes);
    }
    if (major != 4) {
        error_setg(errp, "entry %u: %s is neither a byte string nor an "
                   "array", entry, key);
        return NULL;
    }
    for (uint64_t i = 0; i < arg; i++) {
        uint8_t b;

        eif_cbor_head(c, &major, &byte);
        if (major != 0 || byte > UINT8_MAX) {
            error_setg(errp, "entry %u: %s element %" PRIu64 " is not a "
                       "byte value", entry, key, i);
            return NULL;
        }
        b = byte;
        g_byte_array_append(bytes, &b, 1);
    }
    return g_steal_pointer(&bytes);
}

/*
 * The value of @key in the map at @c (whose head was read: @pairs pairs),
 * as bytes
 */
static GByteArray *eif_cbor_map_bytes(EifCbor c, uint64_t pairs,
                                      unsigned entry, const char *key,
                                      Error **errp)
{
    unsigned major;
    uint64_t arg;

    while (pairs--) {
        EifCbor k = c;

        eif_cbor_head(&k, &major, &arg);
        if (major == 3 && arg == strlen(key) && !memcmp(k.p, key, arg)) {
            k.p += arg;
            return eif_cbor_bytes(&k, entry, key, errp);
        }
        eif_cbor_skip(&c, EIF_CBOR_MAX_DEPTH);
        eif_cbor_skip(&c, EIF_CBOR_MAX_DEPTH);
    }
    error_setg(errp, "entry %u has no %s", entry, key);
    return NULL;
}

/* A DER SEQUENCE (as every X.509 certificate is) that fills @len bytes */
static bool eif_is_der_sequence(const uint8_t *d, size_t len)
{
    uint64_t body = 0;
    size_t head = 2;

    if (len < 2 || d[0] != 0x30) {
        return false;
    }
    if (d[1] < 0x80) {
        body = d[1];
    } else {
        unsigned n = d[1] & 0x7f;

        if (!n || n > 4 || len < 2 + n) {
            return false;
        }
        for (unsigned i = 0; i < n; i++) {
            body = body << 8 | d[2 + i];
        }
        head += n;
    }
    return body == len - head;
}

/* The DER of the first certificate of @pem, as gnutls and openssl read it */
static GByteArray *eif_pem_to_der(const GByteArray *pem, Error **errp)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    static const char end[] = "-----END CERTIFICATE-----";
    const uint8_t *limit = pem->data + pem->len;
    const uint8_t *b, *e;
    g_autoptr(GString) b64 = g_string_new(NULL);
    g_autofree uint8_t *der = NULL;
    const char *pad;
    gsize len;

    b = memmem(pem->data, pem->len, begin, strlen(begin));
    if (!b) {
        error_setg(errp, "entry 0: signing_certificate is not a PEM "
                   "certificate (no %s line)", begin);
        return NULL;
    }
    b += strlen(begin);
    e = memmem(b, limit - b, end, strlen(end));
    if (!e) {
        error_setg(errp, "entry 0: signing_certificate has no %s line", end);
        return NULL;
    }
    for (const uint8_t *p = b; p < e; p++) {
        if (g_ascii_isspace(*p)) {
            continue;
        }
        if (!g_ascii_isalnum(*p) && *p != '+' && *p != '/' && *p != '=') {
            error_setg(errp, "entry 0: signing_certificate has a byte 0x%02x "
                       "that is not base64 at offset %td", *p, p - pem->data);
            return NULL;
        }
        g_string_append_c(b64, *p);
    }
    pad = strchr(b64->str, '=');
    if (!b64->len || b64->len % 4 ||
        (pad && (b64->str + b64->len - pad > 2 || strspn(pad, "=") !=
                 strlen(pad)))) {
        error_setg(errp, "entry 0: signing_certificate has invalid base64 "
                   "(%zu characters)", b64->len);
        return NULL;
    }
    der = g_base64_decode(b64->str, &len);
    if (!eif_is_der_sequence(der, len)) {
        error_setg(errp, "entry 0: signing_certificate is not a DER "
                   "certificate once decoded");
        return NULL;
    }
    return g_byte_array_new_take(g_steal_pointer(&der), len);
}

/*
 * The signing certificate (PEM, as is) and the signature of the first
 * entry of a signature section
 */
static bool eif_signature_entry0(const uint8_t *sig, size_t len,
                                 GByteArray **pem_out, GByteArray **cose_out,
                                 Error **errp)
{
    EifCbor c = { sig, sig + len };
    g_autoptr(GByteArray) pem = NULL;
    g_autoptr(GByteArray) cose = NULL;
    unsigned major;
    uint64_t entries, pairs;

    if (!eif_cbor_skip(&c, EIF_CBOR_MAX_DEPTH)) {
        error_setg(errp, "invalid or unsupported CBOR at byte %td",
                   c.p - sig);
        return false;
    }
    if (c.p != c.end) {
        error_setg(errp, "%td bytes after the CBOR item", c.end - c.p);
        return false;
    }
    c.p = sig;
    eif_cbor_head(&c, &major, &entries);
    if (major != 4 || !entries) {
        error_setg(errp, "not a non-empty CBOR array");
        return false;
    }
    for (unsigned i = 0; i < entries; i++) {
        g_autoptr(GByteArray) cert = NULL;
        g_autoptr(GByteArray) signature = NULL;

        eif_cbor_head(&c, &major, &pairs);
        if (major != 5) {
            error_setg(errp, "entry %u is not a map", i);
            return false;
        }
        /* Both are bytes, as serde deserializes them */
        cert = eif_cbor_map_bytes(c, pairs, i, "signing_certificate", errp);
        if (!cert) {
            return false;
        }
        signature = eif_cbor_map_bytes(c, pairs, i, "signature", errp);
        if (!signature) {
            return false;
        }
        if (!cert->len) {
            error_setg(errp, "entry %u: empty signing_certificate", i);
            return false;
        }
        if (!i) {
            pem = g_steal_pointer(&cert);
            cose = g_steal_pointer(&signature);
        }
        for (uint64_t n = 0; n < 2 * pairs; n++) {
            eif_cbor_skip(&c, EIF_CBOR_MAX_DEPTH);
        }
    }
    *pem_out = g_steal_pointer(&pem);
    if (cose_out) {
        *cose_out = g_steal_pointer(&cose);
    }
    return true;
}

GByteArray *eif_signing_certificate(const uint8_t *sig, size_t len,
                                    Error **errp)
{
    g_autoptr(GByteArray) pem = NULL;

    if (!eif_signature_entry0(sig, len, &pem, NULL, errp)) {
        return NULL;
    }
    return eif_pem_to_der(pem, errp);
}

/* The next item of @c, a byte string, into @out */
static bool eif_cose_bytes(EifCbor *c, GByteArray **out)
{
    unsigned major;
    uint64_t arg;

    eif_cbor_head(c, &major, &arg);
    if (major != 2) {
        return false;
    }
    *out = g_byte_array_new();
    g_byte_array_append(*out, c->p, arg);
    c->p += arg;
    return true;
}

/* The algorithm of a protected header that is exactly {1: alg} */
static bool eif_cose_alg(const GByteArray *prot, int64_t *alg)
{
    EifCbor c = { prot->data, prot->data + prot->len };
    unsigned major;
    uint64_t arg;

    if (!eif_cbor_head(&c, &major, &arg) || major != 5 || arg != 1 ||
        !eif_cbor_head(&c, &major, &arg) || major != 0 || arg != 1 ||
        !eif_cbor_head(&c, &major, &arg) || major != 1 || arg > INT32_MAX) {
        return false;
    }
    *alg = -1 - (int64_t)arg;
    return c.p == c.end;
}

bool eif_signature_parse(const uint8_t *sig, size_t len, EifSignature *out,
                         Error **errp)
{
    g_autoptr(GByteArray) pem = NULL;
    g_autoptr(GByteArray) cose = NULL;
    EifCbor c;
    unsigned major;
    uint64_t arg;

    memset(out, 0, sizeof(*out));
    if (!eif_signature_entry0(sig, len, &pem, &cose, errp)) {
        return false;
    }
    out->cert_der = eif_pem_to_der(pem, errp);
    if (!out->cert_der) {
        return false;
    }
    c = (EifCbor) { cose->data, cose->data + cose->len };
    if (!eif_cbor_skip(&c, EIF_CBOR_MAX_DEPTH) || c.p != c.end) {
        error_setg(errp, "entry 0: the signature is not one CBOR item");
        goto fail;
    }
    c.p = cose->data;
    eif_cbor_head(&c, &major, &arg);
    if (major == 6 && arg == 18) {
        eif_cbor_head(&c, &major, &arg);
    }
    if (major != 4 || arg != 4 || !eif_cose_bytes(&c, &out->protected_hdr)) {
        goto not_cose;
    }
    eif_cbor_head(&c, &major, &arg);
    if (major != 5) {
        goto not_cose;
    }
    for (uint64_t n = 0; n < 2 * arg; n++) {
        eif_cbor_skip(&c, EIF_CBOR_MAX_DEPTH);
    }
    if (!eif_cose_bytes(&c, &out->payload) ||
        !eif_cose_bytes(&c, &out->signature)) {
        goto not_cose;
    }
    if (!eif_cose_alg(out->protected_hdr, &out->alg)) {
        error_setg(errp, "entry 0: the COSE_Sign1's protected header is "
                   "not {1: algorithm}");
        goto fail;
    }
    return true;

not_cose:
    error_setg(errp, "entry 0: the signature is not a COSE_Sign1");
fail:
    eif_signature_clear(out);
    return false;
}

void eif_signature_clear(EifSignature *s)
{
    g_clear_pointer(&s->cert_der, g_byte_array_unref);
    g_clear_pointer(&s->protected_hdr, g_byte_array_unref);
    g_clear_pointer(&s->payload, g_byte_array_unref);
    g_clear_pointer(&s->signature, g_byte_array_unref);
}

/* The head of an item, in the shortest form (as serde_cbor writes it) */
static void eif_cbor_put_head(GByteArray *out, unsigned major, uint64_t n)
{
    uint8_t b[9];
    unsigned len = n < 24 ? 0 : n <= UINT8_MAX ? 1 : n <= UINT16_MAX ? 2 :
                   n <= UINT32_MAX ? 4 : 8;

    b[0] = major << 5 | (len ? 23 + ctz32(len) + 1 : n);
    for (unsigned i = 0; i < len; i++) {
        b[1 + i] = n >> (8 * (len - 1 - i));
    }
    g_byte_array_append(out, b, 1 + len);
}

static void eif_cbor_put_text(GByteArray *out, const char *text)
{
    eif_cbor_put_head(out, 3, strlen(text));
    g_byte_array_append(out, (const uint8_t *)text, strlen(text));
}

static void eif_cbor_put_bytes(GByteArray *out, const GByteArray *bytes)
{
    eif_cbor_put_head(out, 2, bytes->len);
    g_byte_array_append(out, bytes->data, bytes->len);
}

GByteArray *eif_signature_pcr0_payload(const uint8_t pcr0[EIF_PCR_LEN])
{
    GByteArray *out = g_byte_array_new();

    eif_cbor_put_head(out, 5, 2);
    eif_cbor_put_text(out, "register_index");
    eif_cbor_put_head(out, 0, 0);
    eif_cbor_put_text(out, "register_value");
    eif_cbor_put_head(out, 4, EIF_PCR_LEN);
    for (unsigned i = 0; i < EIF_PCR_LEN; i++) {
        eif_cbor_put_head(out, 0, pcr0[i]);
    }
    return out;
}

GByteArray *eif_signature_tbs(const EifSignature *s)
{
    GByteArray *out = g_byte_array_new();
    g_autoptr(GByteArray) empty = g_byte_array_new();

    eif_cbor_put_head(out, 4, 4);
    eif_cbor_put_text(out, "Signature1");
    eif_cbor_put_bytes(out, s->protected_hdr);
    eif_cbor_put_bytes(out, empty);
    eif_cbor_put_bytes(out, s->payload);
    return out;
}

bool eif_signature_signs_pcr0(const EifSignature *s,
                              const uint8_t pcr0[EIF_PCR_LEN], Error **errp)
{
    g_autoptr(GByteArray) expected = eif_signature_pcr0_payload(pcr0);

    if (s->payload->len != expected->len ||
        memcmp(s->payload->data, expected->data, expected->len)) {
        error_setg(errp, "the signature does not sign this image's PCR0");
        return false;
    }
    return true;
}
