/*
 * qemu-eif make-attestation-chain: a local stand-in for AWS's
 * attestation PKI
 *
 * Writes into --dir (created if missing) a P-384 root, an intermediate
 * and a per-enclave leaf, as AWS's chain has (AWS adds more
 * intermediates), each certificate signed with ECDSA SHA-384:
 *
 *   root.pem, intermediate.pem, leaf.pem   certificates
 *   root.key, intermediate.key, leaf.key   their PKCS#8 keys (mode 0600)
 *   chain.pem                              leaf, intermediate, root
 *
 * virtio-nsm signs with private-key=leaf.key,certificate-chain=chain.pem
 * and qemu-eif verify-attestation checks with --root root.pem.  The
 * leaf's common name is --module-id.  Existing files are never
 * overwritten: a chain is made once per directory.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <getopt.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "attest.h"
#include "cli.h"

#define CHAIN_DAYS_DEFAULT  365
#define CHAIN_DAYS_MAX      (100 * 365)
/* Certificates are valid from a little before now, for skewed clocks */
#define CHAIN_BACKDATE      3600

typedef struct Cert {
    const char *name;
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t crt;
} Cert;

static const char *const chain_files[] = {
    "root.pem", "root.key", "intermediate.pem", "intermediate.key",
    "leaf.pem", "leaf.key", "chain.pem",
};

static bool gnutls_ok(int ret, const char *what, Error **errp)
{
    if (ret < 0) {
        error_setg(errp, "%s: %s", what, gnutls_strerror(ret));
        return false;
    }
    return true;
}

/* @c, issued by @issuer (itself when NULL) */
static bool make_cert(Cert *c, Cert *issuer, const char *cn, bool ca,
                      unsigned days, Error **errp)
{
    uint8_t serial[16];
    uint8_t id[64];
    size_t id_len = sizeof(id);
    time_t now = time(NULL);
    unsigned usage = ca ? GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN :
                          GNUTLS_KEY_DIGITAL_SIGNATURE;
    static const char org[] = "QEMU Nitro Enclaves (local)";

    if (!gnutls_ok(gnutls_x509_privkey_init(&c->key), c->name, errp) ||
        !gnutls_ok(gnutls_x509_privkey_generate(
                       c->key, GNUTLS_PK_ECDSA,
                       GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1), 0),
                   c->name, errp) ||
        !gnutls_ok(gnutls_x509_crt_init(&c->crt), c->name, errp) ||
        !gnutls_ok(gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)),
                   c->name, errp)) {
        return false;
    }
    /* a positive serial number */
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    if (!gnutls_ok(gnutls_x509_crt_set_version(c->crt, 3), c->name, errp) ||
        !gnutls_ok(gnutls_x509_crt_set_serial(c->crt, serial,
                                              sizeof(serial)),
                   c->name, errp) ||
        !gnutls_ok(gnutls_x509_crt_set_activation_time(
                       c->crt, now - CHAIN_BACKDATE), c->name, errp) ||
        !gnutls_ok(gnutls_x509_crt_set_expiration_time(
                       c->crt, now + (time_t)days * 86400), c->name, errp) ||
        !gnutls_ok(gnutls_x509_crt_set_dn_by_oid(
                       c->crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0, org,
                       strlen(org)), c->name, errp) ||
        !gnutls_ok(gnutls_x509_crt_set_dn_by_oid(
                       c->crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                       strlen(cn)), c->name, errp) ||
        !gnutls_ok(gnutls_x509_crt_set_key(c->crt, c->key), c->name, errp) ||
        !gnutls_ok(gnutls_x509_crt_set_basic_constraints(c->crt, ca, -1),
                   c->name, errp) ||
        !gnutls_ok(gnutls_x509_crt_set_key_usage(c->crt, usage), c->name,
                   errp) ||
        !gnutls_ok(gnutls_x509_crt_get_key_id(c->crt, 0, id, &id_len),
                   c->name, errp) ||
        !gnutls_ok(gnutls_x509_crt_set_subject_key_id(c->crt, id, id_len),
                   c->name, errp)) {
        return false;
    }
    if (issuer) {
        id_len = sizeof(id);
        if (!gnutls_ok(gnutls_x509_crt_get_subject_key_id(
                           issuer->crt, id, &id_len, NULL), c->name, errp) ||
            !gnutls_ok(gnutls_x509_crt_set_authority_key_id(c->crt, id,
                                                            id_len),
                       c->name, errp)) {
            return false;
        }
    }
    return gnutls_ok(gnutls_x509_crt_sign2(c->crt,
                                           issuer ? issuer->crt : c->crt,
                                           issuer ? issuer->key : c->key,
                                           GNUTLS_DIG_SHA384, 0),
                     c->name, errp);
}

/* @data into a new file @dir/@name, created with @mode */
static bool write_new(const char *dir, const char *name,
                      const gnutls_datum_t *data, int n, mode_t mode,
                      Error **errp)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    bool ok = fd >= 0;

    for (int i = 0; ok && i < n; i++) {
        ok = qemu_write_full(fd, data[i].data, data[i].size) == data[i].size;
    }
    if (!ok) {
        error_setg_errno(errp, errno, "%s", path);
    }
    if (fd >= 0 && close(fd) && ok) {
        error_setg_errno(errp, errno, "%s", path);
        ok = false;
    }
    return ok;
}

static bool write_chain(const char *dir, Cert certs[3], Error **errp)
{
    gnutls_datum_t pem[3] = { { NULL, 0 } }, key = { NULL, 0 };
    bool ok = true;
    int i;

    for (i = 0; ok && i < 3; i++) {
        g_autofree char *crt_name = g_strdup_printf("%s.pem", certs[i].name);
        g_autofree char *key_name = g_strdup_printf("%s.key", certs[i].name);

        ok = gnutls_ok(gnutls_x509_crt_export2(certs[i].crt,
                                               GNUTLS_X509_FMT_PEM, &pem[i]),
                       crt_name, errp) &&
             gnutls_ok(gnutls_x509_privkey_export2_pkcs8(
                           certs[i].key, GNUTLS_X509_FMT_PEM, NULL,
                           GNUTLS_PKCS_PLAIN, &key), key_name, errp) &&
             write_new(dir, crt_name, &pem[i], 1, 0644, errp) &&
             write_new(dir, key_name, &key, 1, 0600, errp);
        gnutls_free(key.data);
        key.data = NULL;
    }
    if (ok) {
        /* leaf first: certs[] is root, intermediate, leaf */
        gnutls_datum_t chain[3] = { pem[2], pem[1], pem[0] };

        ok = write_new(dir, "chain.pem", chain, 3, 0644, errp);
    }
    for (i = 0; i < 3; i++) {
        gnutls_free(pem[i].data);
    }
    return ok;
}

static int usage_error(const char *msg)
{
    error_report("make-attestation-chain: %s (see --help)", msg);
    return 2;
}

int cmd_make_attestation_chain(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "module-id", required_argument, NULL, 'm' },
        { "days", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    Cert certs[3] = {
        { .name = "root" }, { .name = "intermediate" }, { .name = "leaf" },
    };
    const char *dir = NULL;
    const char *module_id = "i-0000000000000000-enc0000000000000000";
    unsigned long days = CHAIN_DAYS_DEFAULT;
    Error *err = NULL;
    int c, ret = 1;

    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'm':
            module_id = optarg;
            break;
        case 'n':
            if (qemu_strtoul(optarg, NULL, 10, &days) || !days ||
                days > CHAIN_DAYS_MAX) {
                return usage_error("--days takes 1 to 36500");
            }
            break;
        case 'h':
            printf("Usage: qemu-eif make-attestation-chain --dir DIR "
                   "[--module-id ID] [--days N]\n");
            return 0;
        default:
            return cli_bad_option(c, argv);
        }
    }
    if (!dir || optind != argc || !*module_id) {
        return usage_error("expected --dir DIR and no other argument");
    }
    if (g_mkdir_with_parents(dir, 0755) < 0) {
        error_report("%s: %s", dir, strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < ARRAY_SIZE(chain_files); i++) {
        g_autofree char *path = g_build_filename(dir, chain_files[i], NULL);

        if (g_file_test(path, G_FILE_TEST_EXISTS)) {
            error_report("%s exists: a chain is made once per directory",
                         path);
            return 1;
        }
    }
    if (make_cert(&certs[0], NULL, "QEMU Nitro Enclaves local root", true,
                  days, &err) &&
        make_cert(&certs[1], &certs[0], "QEMU Nitro Enclaves local "
                  "intermediate", true, days, &err) &&
        make_cert(&certs[2], &certs[1], module_id, false, days, &err) &&
        write_chain(dir, certs, &err)) {
        ret = 0;
    } else {
        error_report_err(err);
    }
    for (int i = 0; i < 3; i++) {
        if (certs[i].crt) {
            gnutls_x509_crt_deinit(certs[i].crt);
        }
        if (certs[i].key) {
            gnutls_x509_privkey_deinit(certs[i].key);
        }
    }
    return ret;
}
