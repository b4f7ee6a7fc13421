/*
 * qemu-eif verify-attestation: check an NSM attestation document
 *
 * A document is AWS's COSE_Sign1 (tagged 18 or not): [protected bstr
 * {1: -35}, unprotected map, payload bstr, signature bstr r || s of 96
 * bytes] whose payload is a map of module_id, digest "SHA384",
 * timestamp, pcrs, certificate, cabundle, public_key, user_data and
 * nonce.  It verifies when, in this order: it has that shape; the leaf
 * certificate's P-384 key verifies the ES384 signature over
 * ["Signature1", protected, h'', payload]; cabundle[0] is the --root
 * certificate and the leaf chains up to it through the rest of
 * cabundle; every certificate is valid at --time (default now); the PCRs
 * are the measurements of --eif and the --pcr values; the nonce is
 * --nonce.  The first check that fails is the reason printed.
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
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qobject/qnull.h"
#include "qobject/qnum.h"
#include "qobject/qstring.h"
#include "hw/core/eif.h"
#include "attest.h"
#include "cli.h"

/* A document is a few KiB: the NSM's response buffer is 12 KiB */
#define DOC_MAX_SIZE    (64 * 1024)
#define ES384_HALF      48
#define COSE_ALG_ES384  (-35)
#define NR_PCRS         32

typedef struct Expect {
    bool pcr_set[NR_PCRS];
    uint8_t pcr[NR_PCRS][EIF_PCR_LEN];
    const char *pcr_from[NR_PCRS];
    GByteArray *nonce;
    time_t now;
} Expect;

typedef struct Payload {
    cbor_item_t *map;
    cbor_item_t *pcrs;
    cbor_item_t *certificate;
    cbor_item_t *cabundle;
} Payload;

static char *to_hex(const uint8_t *data, size_t len)
{
    GString *s = g_string_sized_new(2 * len + 1);

    for (size_t i = 0; i < len; i++) {
        g_string_append_printf(s, "%02x", data[i]);
    }
    return g_string_free(s, false);
}

static GByteArray *from_hex(const char *hex)
{
    g_autoptr(GByteArray) out = g_byte_array_new();
    size_t len = strlen(hex);

    if (len % 2) {
        return NULL;
    }
    for (size_t i = 0; i < len; i += 2) {
        int hi = g_ascii_xdigit_value(hex[i]);
        int lo = g_ascii_xdigit_value(hex[i + 1]);
        uint8_t b = hi << 4 | lo;

        if (hi < 0 || lo < 0) {
            return NULL;
        }
        g_byte_array_append(out, &b, 1);
    }
    return g_steal_pointer(&out);
}

/* The value of text key @key in @map, or NULL */
static cbor_item_t *map_get(cbor_item_t *map, const char *key)
{
    struct cbor_pair *pairs = cbor_map_handle(map);

    for (size_t i = 0; i < cbor_map_size(map); i++) {
        cbor_item_t *k = pairs[i].key;

        if (cbor_isa_string(k) && cbor_string_is_definite(k) &&
            cbor_string_length(k) == strlen(key) &&
            !memcmp(cbor_string_handle(k), key, strlen(key))) {
            return pairs[i].value;
        }
    }
    return NULL;
}

static bool is_bytes(cbor_item_t *item)
{
    return item && cbor_isa_bytestring(item) &&
           cbor_bytestring_is_definite(item);
}

/* A negative or unsigned integer of the protected header */
static bool int_value(cbor_item_t *item, int64_t *v)
{
    uint64_t u;

    if (!cbor_isa_uint(item) && !cbor_isa_negint(item)) {
        return false;
    }
    u = cbor_get_int(item);
    if (u > INT64_MAX) {
        return false;
    }
    *v = cbor_isa_uint(item) ? (int64_t)u : -1 - (int64_t)u;
    return true;
}

static cbor_item_t *load_cbor(const uint8_t *data, size_t len,
                              const char *what, Error **errp)
{
    struct cbor_load_result res;
    cbor_item_t *item = cbor_load(data, len, &res);

    if (!item || res.error.code != CBOR_ERR_NONE) {
        error_setg(errp, "%s is not CBOR (error at byte %zu)", what,
                   res.error.position);
        if (item) {
            cbor_decref(&item);
        }
        return NULL;
    }
    if (res.read != len) {
        error_setg(errp, "%s: %zu bytes after its CBOR item", what,
                   len - res.read);
        cbor_decref(&item);
        return NULL;
    }
    return item;
}

static bool check_protected(cbor_item_t *bs, Error **errp)
{
    cbor_item_t *hdr = load_cbor(cbor_bytestring_handle(bs),
                                 cbor_bytestring_length(bs),
                                 "the protected header", errp);
    struct cbor_pair *pairs;
    bool ok = false;
    int64_t key, alg;

    if (!hdr) {
        return false;
    }
    if (!cbor_isa_map(hdr)) {
        error_setg(errp, "the protected header is not a map");
        goto out;
    }
    pairs = cbor_map_handle(hdr);
    for (size_t i = 0; i < cbor_map_size(hdr); i++) {
        if (int_value(pairs[i].key, &key) && key == 1) {
            if (!int_value(pairs[i].value, &alg) || alg != COSE_ALG_ES384) {
                error_setg(errp, "the document is not signed with ES384 "
                           "(protected header alg is not %d)",
                           COSE_ALG_ES384);
                goto out;
            }
            ok = true;
            goto out;
        }
    }
    error_setg(errp, "the protected header has no algorithm (key 1)");
out:
    cbor_decref(&hdr);
    return ok;
}

/* The payload's fields, with the types AWS's documentation gives */
static bool check_payload(Payload *p, Error **errp)
{
    static const char *const optional[] = {
        "public_key", "user_data", "nonce"
    };
    cbor_item_t *v;
    struct cbor_pair *pcrs;

    if (!cbor_isa_map(p->map)) {
        error_setg(errp, "the payload is not a map");
        return false;
    }
    v = map_get(p->map, "module_id");
    if (!v || !cbor_isa_string(v) || !cbor_string_length(v)) {
        error_setg(errp, "the payload has no module_id text");
        return false;
    }
    v = map_get(p->map, "digest");
    if (!v || !cbor_isa_string(v) || cbor_string_length(v) != 6 ||
        memcmp(cbor_string_handle(v), "SHA384", 6)) {
        error_setg(errp, "the payload's digest is not \"SHA384\"");
        return false;
    }
    v = map_get(p->map, "timestamp");
    if (!v || !cbor_isa_uint(v) || !cbor_get_int(v)) {
        error_setg(errp, "the payload has no timestamp");
        return false;
    }
    p->pcrs = map_get(p->map, "pcrs");
    if (!p->pcrs || !cbor_isa_map(p->pcrs) || !cbor_map_size(p->pcrs)) {
        error_setg(errp, "the payload has no pcrs map");
        return false;
    }
    pcrs = cbor_map_handle(p->pcrs);
    for (size_t i = 0; i < cbor_map_size(p->pcrs); i++) {
        if (!cbor_isa_uint(pcrs[i].key) ||
            cbor_get_int(pcrs[i].key) >= NR_PCRS ||
            !is_bytes(pcrs[i].value) ||
            cbor_bytestring_length(pcrs[i].value) != EIF_PCR_LEN) {
            error_setg(errp, "pcrs entry %zu is not an index below %d and "
                       "%d bytes", i, NR_PCRS, EIF_PCR_LEN);
            return false;
        }
    }
    p->certificate = map_get(p->map, "certificate");
    if (!is_bytes(p->certificate)) {
        error_setg(errp, "the payload has no certificate");
        return false;
    }
    p->cabundle = map_get(p->map, "cabundle");
    if (!p->cabundle || !cbor_isa_array(p->cabundle) ||
        !cbor_array_size(p->cabundle)) {
        error_setg(errp, "the payload has no cabundle");
        return false;
    }
    for (size_t i = 0; i < cbor_array_size(p->cabundle); i++) {
        if (!is_bytes(cbor_array_handle(p->cabundle)[i])) {
            error_setg(errp, "cabundle[%zu] is not a byte string", i);
            return false;
        }
    }
    for (size_t i = 0; i < ARRAY_SIZE(optional); i++) {
        v = map_get(p->map, optional[i]);
        if (v && !cbor_is_null(v) && !is_bytes(v)) {
            error_setg(errp, "the payload's %s is neither bytes nor null",
                       optional[i]);
            return false;
        }
    }
    return true;
}

static gnutls_x509_crt_t import_der(cbor_item_t *bs, const char *what,
                                    Error **errp)
{
    gnutls_datum_t d = { cbor_bytestring_handle(bs),
                         cbor_bytestring_length(bs) };
    gnutls_x509_crt_t crt;
    int ret;

    gnutls_x509_crt_init(&crt);
    ret = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER);
    if (ret < 0) {
        error_setg(errp, "%s is not a DER certificate: %s", what,
                   gnutls_strerror(ret));
        gnutls_x509_crt_deinit(crt);
        return NULL;
    }
    return crt;
}

/* The ES384 signature of the Sig_structure, with the leaf's key */
static bool check_signature(cbor_item_t *cose, gnutls_x509_crt_t leaf,
                            Error **errp)
{
    cbor_item_t *sig = cbor_array_handle(cose)[3];
    cbor_item_t *tbs = cbor_new_definite_array(4);
    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t r, s, der = { NULL, 0 }, data;
    g_autofree uint8_t *buf = NULL;
    size_t buf_len, len;
    unsigned int bits;
    bool ok = false;
    int ret;

    cbor_array_push(tbs, cbor_move(cbor_build_string("Signature1")));
    cbor_array_push(tbs, cbor_array_handle(cose)[0]);
    cbor_array_push(tbs, cbor_move(cbor_new_definite_bytestring()));
    cbor_array_push(tbs, cbor_array_handle(cose)[2]);
    len = cbor_serialize_alloc(tbs, &buf, &buf_len);
    cbor_decref(&tbs);
    if (!len) {
        error_setg(errp, "cannot encode the Sig_structure");
        return false;
    }

    if (cbor_bytestring_length(sig) != 2 * ES384_HALF) {
        error_setg(errp, "the signature is %zu bytes, not %d (ES384 r || s)",
                   cbor_bytestring_length(sig), 2 * ES384_HALF);
        return false;
    }
    gnutls_pubkey_init(&pub);
    if (gnutls_pubkey_import_x509(pub, leaf, 0) < 0 ||
        gnutls_pubkey_get_pk_algorithm(pub, &bits) != GNUTLS_PK_ECDSA ||
        bits != 384) {
        error_setg(errp, "the leaf certificate's key is not P-384");
        goto out;
    }
    r = (gnutls_datum_t) { cbor_bytestring_handle(sig), ES384_HALF };
    s = (gnutls_datum_t) { cbor_bytestring_handle(sig) + ES384_HALF,
                           ES384_HALF };
    if (gnutls_encode_rs_value(&der, &r, &s) < 0) {
        error_setg(errp, "cannot encode the signature");
        goto out;
    }
    data = (gnutls_datum_t) { buf, len };
    ret = gnutls_pubkey_verify_data2(pub, GNUTLS_SIGN_ECDSA_SHA384, 0, &data,
                                     &der);
    if (ret < 0) {
        error_setg(errp, "the signature does not verify with the leaf "
                   "certificate's key: %s", gnutls_strerror(ret));
        goto out;
    }
    ok = true;
out:
    gnutls_free(der.data);
    gnutls_pubkey_deinit(pub);
    return ok;
}

static bool check_time(gnutls_x509_crt_t crt, const char *what, time_t now,
                       Error **errp)
{
    time_t from = gnutls_x509_crt_get_activation_time(crt);
    time_t until = gnutls_x509_crt_get_expiration_time(crt);

    if (now < from || now > until) {
        error_setg(errp, "%s is not valid at %lld (valid from %lld to %lld)",
                   what, (long long)now, (long long)from, (long long)until);
        return false;
    }
    return true;
}

/* The leaf through cabundle up to @root, each valid at @now */
static bool check_chain(Payload *p, gnutls_x509_crt_t leaf,
                        gnutls_x509_crt_t root, const GByteArray *root_der,
                        time_t now, Error **errp)
{
    size_t n = cbor_array_size(p->cabundle);
    cbor_item_t *first = cbor_array_handle(p->cabundle)[0];
    g_autofree gnutls_x509_crt_t *chain = g_new0(gnutls_x509_crt_t, n + 1);
    gnutls_x509_trust_list_t tl = NULL;
    gnutls_datum_t out = { NULL, 0 };
    unsigned int status = 0;
    bool ok = false;
    int ret;

    if (cbor_bytestring_length(first) != root_der->len ||
        memcmp(cbor_bytestring_handle(first), root_der->data,
               root_der->len)) {
        error_setg(errp, "cabundle[0] is not the root certificate given "
                   "with --root");
        return false;
    }
    /* leaf, then its issuers: cabundle from its end to the root */
    chain[0] = leaf;
    for (size_t i = 1; i <= n; i++) {
        g_autofree char *what = g_strdup_printf("cabundle[%zu]", n - i);

        chain[i] = import_der(cbor_array_handle(p->cabundle)[n - i], what,
                              errp);
        if (!chain[i] || !check_time(chain[i], what, now, errp)) {
            goto out;
        }
    }
    if (!check_time(leaf, "the leaf certificate", now, errp)) {
        goto out;
    }
    gnutls_x509_trust_list_init(&tl, 0);
    gnutls_x509_trust_list_add_cas(tl, &root, 1, 0);
    ret = gnutls_x509_trust_list_verify_crt(
        tl, chain, n + 1, GNUTLS_VERIFY_DISABLE_TIME_CHECKS |
        GNUTLS_VERIFY_DISABLE_TRUSTED_TIME_CHECKS, &status, NULL);
    if (ret < 0 || status) {
        if (ret >= 0) {
            gnutls_certificate_verification_status_print(
                status, GNUTLS_CRT_X509, &out, 0);
        }
        error_setg(errp, "the certificate chain does not verify up to the "
                   "root: %s", ret < 0 ? gnutls_strerror(ret) :
                   (const char *)out.data);
        goto out;
    }
    ok = true;
out:
    gnutls_free(out.data);
    if (tl) {
        /* the root is the caller's */
        gnutls_x509_trust_list_deinit(tl, 0);
    }
    for (size_t i = 1; i <= n; i++) {
        if (chain[i]) {
            gnutls_x509_crt_deinit(chain[i]);
        }
    }
    return ok;
}

static bool check_expected(Payload *p, const Expect *e, Error **errp)
{
    cbor_item_t *nonce = map_get(p->map, "nonce");
    struct cbor_pair *pcrs = cbor_map_handle(p->pcrs);

    for (unsigned i = 0; i < NR_PCRS; i++) {
        const uint8_t *got = NULL;
        g_autofree char *want_hex = NULL;
        g_autofree char *got_hex = NULL;

        if (!e->pcr_set[i]) {
            continue;
        }
        for (size_t j = 0; j < cbor_map_size(p->pcrs); j++) {
            if (cbor_get_int(pcrs[j].key) == i) {
                got = cbor_bytestring_handle(pcrs[j].value);
            }
        }
        if (!got) {
            error_setg(errp, "the document has no PCR%u", i);
            return false;
        }
        if (memcmp(got, e->pcr[i], EIF_PCR_LEN)) {
            want_hex = to_hex(e->pcr[i], EIF_PCR_LEN);
            got_hex = to_hex(got, EIF_PCR_LEN);
            error_setg(errp, "PCR%u is %s, not %s (%s)", i, got_hex,
                       want_hex, e->pcr_from[i]);
            return false;
        }
    }
    if (e->nonce) {
        if (!nonce || cbor_is_null(nonce)) {
            error_setg(errp, "the document has no nonce");
            return false;
        }
        if (cbor_bytestring_length(nonce) != e->nonce->len ||
            memcmp(cbor_bytestring_handle(nonce), e->nonce->data,
                   e->nonce->len)) {
            error_setg(errp, "the document's nonce is not the --nonce");
            return false;
        }
    }
    return true;
}

static QObject *bytes_json(cbor_item_t *v, bool base64)
{
    g_autofree char *text = NULL;

    if (!v || cbor_is_null(v)) {
        return QOBJECT(qnull());
    }
    text = base64 ? g_base64_encode(cbor_bytestring_handle(v),
                                    cbor_bytestring_length(v)) :
                    to_hex(cbor_bytestring_handle(v),
                           cbor_bytestring_length(v));
    return QOBJECT(qstring_from_str(text));
}

static void print_payload(Payload *p)
{
    static const char *const optional[] = {
        "public_key", "user_data", "nonce"
    };
    g_autoptr(QDict) out = qdict_new();
    QDict *pcrs = qdict_new();
    QList *bundle = qlist_new();
    cbor_item_t *id = map_get(p->map, "module_id");
    struct cbor_pair *pairs = cbor_map_handle(p->pcrs);
    g_autoptr(GString) json = NULL;

    qdict_put_obj(out, "module_id", QOBJECT(qstring_from_substr(
        (char *)cbor_string_handle(id), 0, cbor_string_length(id))));
    qdict_put_str(out, "digest", "SHA384");
    qdict_put_int(out, "timestamp",
                  cbor_get_int(map_get(p->map, "timestamp")));
    for (size_t i = 0; i < cbor_map_size(p->pcrs); i++) {
        g_autofree char *key = g_strdup_printf(
            "%" PRIu64, cbor_get_int(pairs[i].key));

        qdict_put_obj(pcrs, key, bytes_json(pairs[i].value, false));
    }
    qdict_put(out, "pcrs", pcrs);
    qdict_put_obj(out, "certificate", bytes_json(p->certificate, true));
    for (size_t i = 0; i < cbor_array_size(p->cabundle); i++) {
        qlist_append_obj(bundle,
                         bytes_json(cbor_array_handle(p->cabundle)[i], true));
    }
    qdict_put(out, "cabundle", bundle);
    for (size_t i = 0; i < ARRAY_SIZE(optional); i++) {
        qdict_put_obj(out, optional[i],
                      bytes_json(map_get(p->map, optional[i]), false));
    }
    json = qobject_to_json_pretty(QOBJECT(out), true);
    printf("%s\n", json->str);
}

static bool verify(const GByteArray *doc, gnutls_x509_crt_t root,
                   const GByteArray *root_der, const Expect *e, Error **errp)
{
    cbor_item_t *cose = load_cbor(doc->data, doc->len, "the document", errp);
    cbor_item_t *top = cose;
    cbor_item_t **items;
    gnutls_x509_crt_t leaf = NULL;
    Payload p = { NULL };
    bool ok = false;

    if (!cose) {
        return false;
    }
    /* COSE_Sign1 may carry its tag, 18; AWS's documents do not */
    if (cbor_isa_tag(cose) && cbor_tag_value(cose) == 18) {
        cose = cbor_move(cbor_tag_item(top));
    }
    if (!cbor_isa_array(cose) || cbor_array_size(cose) != 4) {
        error_setg(errp, "the document is not a COSE_Sign1 array of 4");
        goto out;
    }
    items = cbor_array_handle(cose);
    if (!is_bytes(items[0]) || !cbor_isa_map(items[1]) ||
        !is_bytes(items[2]) || !is_bytes(items[3])) {
        error_setg(errp, "the document is not a COSE_Sign1: [protected "
                   "bytes, unprotected map, payload bytes, signature "
                   "bytes]");
        goto out;
    }
    if (!check_protected(items[0], errp)) {
        goto out;
    }
    p.map = load_cbor(cbor_bytestring_handle(items[2]),
                      cbor_bytestring_length(items[2]), "the payload", errp);
    if (!p.map || !check_payload(&p, errp)) {
        goto out;
    }
    leaf = import_der(p.certificate, "the leaf certificate", errp);
    if (!leaf || !check_signature(cose, leaf, errp) ||
        !check_chain(&p, leaf, root, root_der, e->now, errp) ||
        !check_expected(&p, e, errp)) {
        goto out;
    }
    print_payload(&p);
    ok = true;
out:
    if (leaf) {
        gnutls_x509_crt_deinit(leaf);
    }
    if (p.map) {
        cbor_decref(&p.map);
    }
    cbor_decref(&top);
    return ok;
}

static bool expect_pcr(Expect *e, unsigned i, const uint8_t *value,
                       const char *from, Error **errp)
{
    if (e->pcr_set[i] && memcmp(e->pcr[i], value, EIF_PCR_LEN)) {
        error_setg(errp, "PCR%u is expected with two values (%s, %s)", i,
                   e->pcr_from[i], from);
        return false;
    }
    e->pcr_set[i] = true;
    memcpy(e->pcr[i], value, EIF_PCR_LEN);
    e->pcr_from[i] = from;
    return true;
}

static bool expect_eif(Expect *e, const char *path, Error **errp)
{
    EifMeasurements m;
    EifInfo info;
    int fd = eif_open_file(path, errp);
    bool ok;

    if (fd < 0) {
        return false;
    }
    ok = eif_read_fd(fd, NULL, NULL, &info, &m, errp);
    close(fd);
    if (!ok) {
        error_prepend(errp, "%s: ", path);
        return false;
    }
    for (unsigned i = 0; i < EIF_NR_PCRS; i++) {
        if (i != EIF_PCR8 || m.has_pcr8) {
            if (!expect_pcr(e, eif_pcr_index(i), m.pcr[i], "from --eif",
                            errp)) {
                return false;
            }
        }
    }
    return true;
}

static gnutls_x509_crt_t load_root(const char *path, GByteArray **der,
                                   Error **errp)
{
    g_autoptr(GByteArray) data = cli_read_file(path, DOC_MAX_SIZE, errp);
    gnutls_datum_t d, out;
    gnutls_x509_crt_t crt;
    int ret;

    if (!data) {
        return NULL;
    }
    d = (gnutls_datum_t) { data->data, data->len };
    gnutls_x509_crt_init(&crt);
    ret = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
    if (ret < 0) {
        ret = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER);
    }
    if (ret >= 0) {
        ret = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &out);
    }
    if (ret < 0) {
        error_setg(errp, "--root %s: not a PEM or DER certificate: %s",
                   path, gnutls_strerror(ret));
        gnutls_x509_crt_deinit(crt);
        return NULL;
    }
    *der = g_byte_array_new();
    g_byte_array_append(*der, out.data, out.size);
    gnutls_free(out.data);
    return crt;
}

int cmd_verify_attestation(int argc, char **argv)
{
    static const struct option opts[] = {
        { "root", required_argument, NULL, 'r' },
        { "eif", required_argument, NULL, 'e' },
        { "pcr", required_argument, NULL, 'p' },
        { "nonce", required_argument, NULL, 'n' },
        { "time", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    g_autoptr(GByteArray) doc = NULL;
    g_autoptr(GByteArray) root_der = NULL;
    g_autoptr(GByteArray) nonce = NULL;
    const char *root_path = NULL;
    Expect e = { .now = time(NULL) };
    gnutls_x509_crt_t root;
    Error *err = NULL;
    int c;
    bool ok;

    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        g_autoptr(GByteArray) value = NULL;
        const char *end;
        char *eq;
        uint64_t n;

        switch (c) {
        case 'r':
            root_path = optarg;
            break;
        case 'e':
            if (!expect_eif(&e, optarg, &err)) {
                error_report_err(err);
                return 1;
            }
            break;
        case 'p':
            eq = strchr(optarg, '=');
            value = eq ? from_hex(eq + 1) : NULL;
            if (!eq || qemu_strtou64(optarg, &end, 10, &n) || end != eq ||
                n >= NR_PCRS || !value || value->len != EIF_PCR_LEN) {
                error_report("--pcr %s: expected N=HEX, N below %d and %d hex "
                             "digits", optarg, NR_PCRS, EIF_PCR_HEX_LEN);
                return 2;
            }
            if (!expect_pcr(&e, n, value->data, "from --pcr", &err)) {
                error_report_err(err);
                return 2;
            }
            break;
        case 'n':
            g_clear_pointer(&nonce, g_byte_array_unref);
            nonce = from_hex(optarg);
            if (!nonce) {
                error_report("--nonce %s: not hex", optarg);
                return 2;
            }
            break;
        case 't':
            if (qemu_strtou64(optarg, NULL, 10, &n) || n > INT64_MAX) {
                error_report("--time %s: not seconds since the epoch",
                             optarg);
                return 2;
            }
            e.now = n;
            break;
        case 'h':
            printf("Usage: qemu-eif verify-attestation --root CERT "
                   "[--eif FILE] [--pcr N=HEX]...\n"
                   "                                   [--nonce HEX] "
                   "[--time SECONDS] DOC|-\n");
            return 0;
        default:
            return cli_bad_option(c, argv);
        }
    }
    if (!root_path || optind != argc - 1) {
        error_report("verify-attestation takes --root CERT and one "
                     "document file (or - for stdin)");
        return 2;
    }
    e.nonce = nonce;
    root = load_root(root_path, &root_der, &err);
    doc = root ? cli_read_file(argv[optind], DOC_MAX_SIZE, &err) : NULL;
    ok = doc && verify(doc, root, root_der, &e, &err);
    if (root) {
        gnutls_x509_crt_deinit(root);
    }
    if (!ok) {
        error_report_err(err);
        return 1;
    }
    return 0;
}
