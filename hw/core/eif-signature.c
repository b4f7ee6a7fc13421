/*
 * EIF library: the signature section
 *
 * A signed image has a signature section: a CBOR array of
 * { "signing_certificate": PEM, "signature": COSE_Sign1 } maps (both
 * values byte strings, or arrays of byte values as serde writes them),
 * the first of which signs PCR0.  The validator checks this structure
 * and that the first certificate's DER can be extracted; PCR8 measures
 * that DER.  Just enough CBOR (RFC 8949) is read for this, bounds-checked
 * and fuzzed: definite lengths only, nesting limited.  The signature
 * itself is not verified: attestation does that.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"

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

GByteArray *eif_signing_certificate(const uint8_t *sig, size_t len,
                                    Error **errp)
{
    EifCbor c = { sig, sig + len };
    g_autoptr(GByteArray) pem = NULL;
    unsigned major;
    uint64_t entries, pairs;

    if (!eif_cbor_skip(&c, EIF_CBOR_MAX_DEPTH)) {
        error_setg(errp, "invalid or unsupported CBOR at byte %td",
                   c.p - sig);
        return NULL;
    }
    if (c.p != c.end) {
        error_setg(errp, "%td bytes after the CBOR item", c.end - c.p);
        return NULL;
    }
    c.p = sig;
    eif_cbor_head(&c, &major, &entries);
    if (major != 4 || !entries) {
        error_setg(errp, "not a non-empty CBOR array");
        return NULL;
    }
    for (unsigned i = 0; i < entries; i++) {
        g_autoptr(GByteArray) cert = NULL;
        g_autoptr(GByteArray) signature = NULL;

        eif_cbor_head(&c, &major, &pairs);
        if (major != 5) {
            error_setg(errp, "entry %u is not a map", i);
            return NULL;
        }
        /* Both are bytes, as serde deserializes them */
        cert = eif_cbor_map_bytes(c, pairs, i, "signing_certificate", errp);
        if (!cert) {
            return NULL;
        }
        signature = eif_cbor_map_bytes(c, pairs, i, "signature", errp);
        if (!signature) {
            return NULL;
        }
        if (!cert->len) {
            error_setg(errp, "entry %u: empty signing_certificate", i);
            return NULL;
        }
        if (!i) {
            pem = g_steal_pointer(&cert);
        }
        for (uint64_t n = 0; n < 2 * pairs; n++) {
            eif_cbor_skip(&c, EIF_CBOR_MAX_DEPTH);
        }
    }
    return eif_pem_to_der(pem, errp);
}
