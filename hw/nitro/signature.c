/*
 * AWS Nitro Enclaves machine: the signature of a signed image
 *
 * nitro-cli run-enclave checks the signature of a signed image before it
 * loads it (error E59), and Nitro does not boot an image whose signature
 * does not verify.  QEMU refuses such an image when it loads it
 * (image.c), with the reason: the COSE_Sign1 must verify with the key of
 * the signing certificate, which must be valid now.  That it signs the
 * image's PCR0 is checked once the image is measured (measure.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "signature.h"

#ifdef CONFIG_GNUTLS
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

/* The COSE algorithm of each curve, gnutls's, and the size of r and s */
static const struct {
    unsigned bits;
    int64_t cose;
    gnutls_sign_algorithm_t sign;
    unsigned half;
} nitro_signature_algs[] = {
    { 256, -7, GNUTLS_SIGN_ECDSA_SHA256, 32 },
    { 384, -35, GNUTLS_SIGN_ECDSA_SHA384, 48 },
    { 521, -36, GNUTLS_SIGN_ECDSA_SHA512, 66 },
};

static bool nitro_signature_check_time(gnutls_x509_crt_t crt, time_t now,
                                       Error **errp)
{
    time_t from = gnutls_x509_crt_get_activation_time(crt);
    time_t to = gnutls_x509_crt_get_expiration_time(crt);

    if (now < from || now > to) {
        g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(
            now < from ? from : to);
        g_autofree char *when = t ? g_date_time_format_iso8601(t) : NULL;

        error_setg(errp, "the signing certificate %s %s",
                   now < from ? "is not valid before" : "expired on",
                   when ?: "?");
        return false;
    }
    return true;
}

static bool nitro_signature_check(const EifSignature *s,
                                  gnutls_x509_crt_t crt, time_t now,
                                  Error **errp)
{
    g_autoptr(GByteArray) tbs = eif_signature_tbs(s);
    gnutls_datum_t d = { s->cert_der->data, s->cert_der->len };
    gnutls_datum_t r, sv, der = { NULL, 0 };
    gnutls_pubkey_t pub = NULL;
    unsigned int bits = 0;
    bool ok = false;
    unsigned i;
    int ret;

    ret = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_DER);
    if (ret < 0) {
        error_setg(errp, "the signing certificate cannot be read: %s",
                   gnutls_strerror(ret));
        return false;
    }
    gnutls_pubkey_init(&pub);
    if (gnutls_pubkey_import_x509(pub, crt, 0) < 0 ||
        gnutls_pubkey_get_pk_algorithm(pub, &bits) != GNUTLS_PK_ECDSA) {
        error_setg(errp, "the signing certificate's key is not ECDSA");
        goto out;
    }
    for (i = 0; i < ARRAY_SIZE(nitro_signature_algs); i++) {
        if (nitro_signature_algs[i].bits == bits) {
            break;
        }
    }
    if (i == ARRAY_SIZE(nitro_signature_algs) ||
        nitro_signature_algs[i].cose != s->alg) {
        error_setg(errp, "the COSE_Sign1's algorithm %" PRId64 " is not "
                   "the one of the signing certificate's %u-bit key", s->alg,
                   bits);
        goto out;
    }
    if (s->signature->len != 2 * nitro_signature_algs[i].half) {
        error_setg(errp, "the COSE_Sign1's signature is %u bytes, not %u",
                   s->signature->len, 2 * nitro_signature_algs[i].half);
        goto out;
    }
    r = (gnutls_datum_t) { s->signature->data, nitro_signature_algs[i].half };
    sv = (gnutls_datum_t) { s->signature->data + r.size, r.size };
    d = (gnutls_datum_t) { tbs->data, tbs->len };
    if (gnutls_encode_rs_value(&der, &r, &sv) < 0) {
        error_setg(errp, "cannot encode the COSE_Sign1's signature");
        goto out;
    }
    ret = gnutls_pubkey_verify_data2(pub, nitro_signature_algs[i].sign, 0,
                                     &d, &der);
    if (ret < 0) {
        error_setg(errp, "the COSE_Sign1 does not verify with the signing "
                   "certificate's key: %s", gnutls_strerror(ret));
        goto out;
    }
    ok = nitro_signature_check_time(crt, now, errp);
out:
    gnutls_free(der.data);
    gnutls_pubkey_deinit(pub);
    return ok;
}

bool nitro_signature_verify(const EifSignature *s, time_t now, Error **errp)
{
    gnutls_x509_crt_t crt;
    bool ok;

    gnutls_x509_crt_init(&crt);
    ok = nitro_signature_check(s, crt, now, errp);
    gnutls_x509_crt_deinit(crt);
    return ok;
}

#else

bool nitro_signature_verify(const EifSignature *s, time_t now, Error **errp)
{
    error_setg(errp, "this QEMU was built without GnuTLS: it cannot check "
               "the signature");
    return false;
}

#endif
