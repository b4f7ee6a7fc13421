/*
 * qemu-eif: build and describe AWS Nitro Enclaves images (EIF)
 *
 *   qemu-eif build --kernel K [--initrd I]... [--cmdline S]
 *                  [--arch x86_64|aarch64] [--name N] [--version V]
 *                  [--metadata JSON|@FILE]
 *                  [--signing-certificate CERT --private-key KEY] -o app.eif
 *   qemu-eif describe app.eif|-
 *   qemu-eif sign --eif-path FILE --signing-certificate CERT
 *                 --private-key KEY [-o OUTPUT]
 *   qemu-eif pcr --input FILE | --signing-certificate CERT
 *   qemu-eif verify-attestation --root CERT [--eif FILE] [--pcr N=HEX]...
 *                               [--nonce HEX] [--time SECONDS] DOC|-
 *   qemu-eif make-attestation-chain --dir DIR [--module-id ID] [--days N]
 *
 * Both stream the image: memory use does not depend on its size.  Inputs
 * must be regular files (describe also reads stdin); build writes the
 * image whole or not at all (output.c).  describe prints JSON for any
 * image that it accepts: see describe_metadata() for a metadata section
 * that is not JSON.  The attestation commands are in attest-*.c, signing
 * and pcr in eif-sign.c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <getopt.h>
#include <math.h>
#include <sys/utsname.h>
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "qobject/qnull.h"
#include "qobject/qstring.h"
#include "crypto/init.h"
#include "hw/core/eif.h"
#include "cli.h"
#include "output.h"
#include "attest.h"
#include "sign.h"

/* The largest metadata read (--metadata @FILE) or printed (describe) */
#define DESCRIBE_MAX_TEXT (16 * 1024 * 1024)

static void usage(void)
{
    printf("Usage:\n"
           "  qemu-eif build --kernel FILE [--initrd FILE]... "
           "[--cmdline STRING]\n"
           "                 [--arch x86_64|aarch64] [--name NAME] "
           "[--version VERSION]\n"
           "                 [--metadata JSON|@FILE]\n"
           "                 [--signing-certificate CERT --private-key KEY]\n"
           "                 -o|--output FILE\n"
           "  qemu-eif describe FILE|-\n"
           "  qemu-eif sign --eif-path FILE --signing-certificate CERT\n"
           "                --private-key KEY [-o|--output FILE]\n"
           "  qemu-eif pcr --input FILE | --signing-certificate CERT\n"
           "  qemu-eif verify-attestation --root CERT [--eif FILE] "
           "[--pcr N=HEX]...\n"
           "                              [--nonce HEX] [--time SECONDS] "
           "DOC|-\n"
           "  qemu-eif make-attestation-chain --dir DIR [--module-id ID] "
           "[--days N]\n"
           "\n"
           "build writes a version %d Enclave Image File with the sections\n"
           "kernel, cmdline, metadata and the initrds, in this order.  The\n"
           "command line defaults to the official one of the architecture,\n"
           "which defaults to the host's.  --metadata adds a JSON object as\n"
           "CustomMetadata to the image's metadata.  With a certificate\n"
           "and its ECDSA private key (PEM), the image is signed as sign\n"
           "does.\n"
           "\n"
           "describe validates an image and prints, as JSON, its version,\n"
           "architecture, sections, CRC, measurements (PCR0, PCR1, PCR2 and,\n"
           "if signed, PCR8), whether its signature verifies\n"
           "(SignatureCheck, with the reason in SignatureError) and its\n"
           "metadata.  Metadata that is not JSON (or holds a number out of\n"
           "range) is printed as null, with the reason in MetadataError.\n"
           "\n"
           "sign signs an image as nitro-cli sign-eif does: its signature\n"
           "section (added, or replaced) holds the certificate and a\n"
           "COSE_Sign1 of PCR0; PCR8 then measures the certificate.  It\n"
           "rewrites FILE, or writes OUTPUT.\n"
           "\n"
           "pcr prints, as nitro-cli pcr does, the PCR of a file's bytes or\n"
           "the PCR8 of a signing certificate.\n"
           "\n"
           "verify-attestation checks an NSM attestation document (AWS's\n"
           "COSE_Sign1, as virtio-nsm signs it): its ES384 signature, its\n"
           "certificates up to the --root certificate and their validity\n"
           "at --time (default now), its PCRs against the measurements of\n"
           "--eif and the --pcr values, its nonce; it prints the payload\n"
           "as JSON (bytes in hex, certificates in base64) or the reason\n"
           "it fails, with exit status 1.\n"
           "\n"
           "make-attestation-chain writes a P-384 root, intermediate and\n"
           "leaf (common name --module-id) into DIR: root.pem, leaf.key,\n"
           "chain.pem (leaf to root) and the others; it never overwrites.\n",
           EIF_VERSION);
}

/*
 * JSON numbers are finite, but QEMU's parser reads 1e999 as an infinity
 * (and would print it as "inf"): find one in @obj, at @where.
 */
static bool json_check_finite(QObject *obj, const char *where, Error **errp)
{
    QDict *dict = qobject_to(QDict, obj);
    QList *list = qobject_to(QList, obj);
    QNum *num = qobject_to(QNum, obj);

    if (num && !isfinite(qnum_get_double(num))) {
        error_setg(errp, "the number at %s is out of range (JSON numbers "
                   "are finite doubles)", where);
        return false;
    }
    if (dict) {
        for (const QDictEntry *e = qdict_first(dict); e;
             e = qdict_next(dict, e)) {
            g_autofree char *at = g_strdup_printf("%s.%s", where,
                                                  qdict_entry_key(e));

            if (!json_check_finite(qdict_entry_value(e), at, errp)) {
                return false;
            }
        }
    }
    if (list) {
        QListEntry *e;
        unsigned i = 0;

        QLIST_FOREACH_ENTRY(list, e) {
            g_autofree char *at = g_strdup_printf("%s[%u]", where, i++);

            if (!json_check_finite(qlist_entry_obj(e), at, errp)) {
                return false;
            }
        }
    }
    return true;
}

/* The contents of the text file @path, at most DESCRIBE_MAX_TEXT bytes */
static char *read_text_file(const char *path, Error **errp)
{
    g_autoptr(GByteArray) text = cli_read_file(path, DESCRIBE_MAX_TEXT, errp);

    if (!text) {
        return NULL;
    }
    g_byte_array_append(text, (const guint8 *)"", 1);
    return (char *)g_byte_array_free(g_steal_pointer(&text), false);
}

static QObject *parse_json_object(const char *what, const char *text,
                                  Error **errp)
{
    g_autofree char *contents = NULL;
    QObject *obj;

    if (text[0] == '@') {
        contents = read_text_file(text + 1, errp);
        if (!contents) {
            error_prepend(errp, "%s: ", what);
            return NULL;
        }
        text = contents;
    }
    obj = qobject_from_json(text, errp);
    if (!obj) {
        error_prepend(errp, "%s: ", what);
        return NULL;
    }
    if (qobject_type(obj) != QTYPE_QDICT) {
        error_setg(errp, "%s: not a JSON object", what);
        qobject_unref(obj);
        return NULL;
    }
    if (!json_check_finite(obj, "$", errp)) {
        error_prepend(errp, "%s: ", what);
        qobject_unref(obj);
        return NULL;
    }
    return obj;
}

/* The metadata section: what the official builder puts there */
static char *build_metadata(const char *name, const char *version,
                            const char *custom, const char *output,
                            Error **errp)
{
    g_autoptr(QDict) meta = qdict_new();
    g_autoptr(QDict) build = qdict_new();
    g_autofree char *base = g_path_get_basename(output);
    const char *epoch = g_getenv("SOURCE_DATE_EPOCH");
    g_autoptr(GDateTime) now = NULL;
    g_autofree char *build_time = NULL;
    struct utsname uts;

    if (custom) {
        QObject *obj = parse_json_object("--metadata", custom, errp);

        if (!obj) {
            return NULL;
        }
        qdict_put_obj(meta, "CustomMetadata", obj);
    }
    /* Reproducible builds set the time */
    if (epoch) {
        now = g_date_time_new_from_unix_utc(g_ascii_strtoll(epoch, NULL, 10));
    }
    if (!now) {
        now = g_date_time_new_now_utc();
    }
    build_time = g_date_time_format_iso8601(now);
    qdict_put_str(build, "BuildTime", build_time);
    qdict_put_str(build, "BuildTool", "qemu-eif");
    qdict_put_str(build, "BuildToolVersion", QEMU_VERSION);
    qdict_put_str(build, "OperatingSystem",
                  uname(&uts) ? "unknown" : uts.sysname);
    if (g_str_has_suffix(base, ".eif")) {
        base[strlen(base) - strlen(".eif")] = '\0';
    }
    qdict_put_str(meta, "ImageName", name ?: base);
    qdict_put_str(meta, "ImageVersion", version ?: "1.0");
    qdict_put(meta, "BuildMetadata", g_steal_pointer(&build));
    return g_string_free(qobject_to_json(QOBJECT(meta)), false);
}

static bool same_file(const struct stat *a, const char *path)
{
    struct stat b;

    return !stat(path, &b) && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

static int cmd_build(int argc, char **argv)
{
    static const struct option opts[] = {
        { "kernel", required_argument, NULL, 'k' },
        { "initrd", required_argument, NULL, 'i' },
        { "cmdline", required_argument, NULL, 'c' },
        { "arch", required_argument, NULL, 'a' },
        { "name", required_argument, NULL, 'n' },
        { "version", required_argument, NULL, 'v' },
        { "metadata", required_argument, NULL, 'm' },
        { "output", required_argument, NULL, 'o' },
        { "signing-certificate", required_argument, NULL, 's' },
        { "private-key", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL },
    };
    const char *cert = NULL, *key = NULL;
    g_autoptr(GPtrArray) initrds = g_ptr_array_new();
    EifBuildParams p = { .arch = EIF_ARCH_X86_64 };
    const char *name = NULL, *version = NULL, *custom = NULL;
    const char *output = NULL;
    g_autofree char *metadata = NULL;
    Error *err = NULL;
    struct utsname uts;
    struct stat st;
    int64_t size;
    int c, fd;

    if (!uname(&uts) && !strcmp(uts.machine, "aarch64")) {
        p.arch = EIF_ARCH_AARCH64;
    }
    while ((c = getopt_long(argc, argv, "+:k:i:c:a:n:v:m:o:h", opts,
                            NULL)) != -1) {
        switch (c) {
        case 'k':
            p.kernel = optarg;
            break;
        case 'i':
            g_ptr_array_add(initrds, optarg);
            break;
        case 'c':
            p.cmdline = optarg;
            break;
        case 'a':
            if (!strcmp(optarg, "x86_64")) {
                p.arch = EIF_ARCH_X86_64;
            } else if (!strcmp(optarg, "aarch64")) {
                p.arch = EIF_ARCH_AARCH64;
            } else {
                error_report("unknown architecture '%s' "
                             "(x86_64 or aarch64)", optarg);
                return 2;
            }
            break;
        case 'n':
            name = optarg;
            break;
        case 'v':
            version = optarg;
            break;
        case 'm':
            custom = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 's':
            cert = optarg;
            break;
        case 'p':
            key = optarg;
            break;
        case 'h':
            usage();
            return 0;
        default:
            return cli_bad_option(c, argv);
        }
    }
    if (!cli_no_operands(argc, argv)) {
        return 2;
    }
    if (!p.kernel || !initrds->len || !output) {
        error_report("build needs --kernel, at least one --initrd and -o");
        return 2;
    }
    if (!cert != !key) {
        error_report("--signing-certificate and --private-key go together");
        return 2;
    }
#ifndef QEMU_EIF_ATTEST
    if (cert) {
        error_report("--signing-certificate: this qemu-eif was built "
                     "without GnuTLS or libcbor");
        return 1;
    }
#endif
    p.initrds = (const char *const *)initrds->pdata;
    p.nr_initrds = initrds->len;
    metadata = build_metadata(name, version, custom, output, &err);
    if (!metadata) {
        error_report_err(err);
        return 2;
    }
    p.metadata = metadata;

    /* The output is replaced only at the end: it must not be an input */
    if (!stat(output, &st)) {
        bool input = same_file(&st, p.kernel);

        for (unsigned i = 0; i < p.nr_initrds; i++) {
            input |= same_file(&st, p.initrds[i]);
        }
        if (input) {
            error_report("output '%s' is also an input", output);
            return 2;
        }
    }
    fd = output_open(output, &err);
    if (fd < 0) {
        error_report_err(err);
        return 1;
    }
    size = eif_build_fd(&p, fd, &err);
#ifdef QEMU_EIF_ATTEST
    if (size >= 0 && cert && !eif_sign_fd(fd, cert, key, &err)) {
        size = -1;
    }
#endif
    if (!output_commit(fd, size >= 0, &err)) {
        error_report_err(err);
        return 1;
    }
    return 0;
}

typedef struct Describe {
    GString *cmdline;
    GString *metadata;
    GString *signature;
} Describe;

static bool describe_data(const EifSection *s, uint64_t pos, const void *data,
                          size_t len, void *opaque, Error **errp)
{
    Describe *d = opaque;
    GString *text = s->type == EIF_SECTION_CMDLINE ? d->cmdline
                  : s->type == EIF_SECTION_METADATA ? d->metadata
                  : s->type == EIF_SECTION_SIGNATURE ? d->signature : NULL;

    if (!text) {
        return true;
    }
    if (s->size > DESCRIBE_MAX_TEXT) {
        error_setg(errp, "section %u (%s) of %" PRIu64 " bytes is too big "
                   "to describe (limit %d)", s->index,
                   eif_section_type_name(s->type), s->size,
                   DESCRIBE_MAX_TEXT);
        return false;
    }
    g_string_append_len(text, data, len);
    return true;
}

/* @obj (a reference is taken) as JSON, nested one level */
static char *json_nested(QObject *obj)
{
    g_autoptr(GString) json = qobject_to_json_pretty(obj, true);
    GString *out = g_string_new(NULL);

    qobject_unref(obj);
    /* Indent the lines after the first */
    for (const char *p = json->str; *p; p++) {
        g_string_append_c(out, *p);
        if (*p == '\n') {
            g_string_append(out, "  ");
        }
    }
    return g_string_free(out, false);
}

/*
 * The metadata section as JSON: its value, or - when it is not JSON or
 * holds a number that JSON cannot represent - null, with the reason in
 * @errp (describe prints it as MetadataError)
 */
static QObject *describe_metadata(const GString *text, Error **errp)
{
    QObject *obj;

    if (memchr(text->str, 0, text->len)) {
        error_setg(errp, "the metadata section has a NUL byte");
        return QOBJECT(qnull());
    }
    obj = qobject_from_json(text->str, errp);
    if (!obj) {
        return QOBJECT(qnull());
    }
    if (!json_check_finite(obj, "$", errp)) {
        qobject_unref(obj);
        return QOBJECT(qnull());
    }
    return obj;
}

static int cmd_describe(int argc, char **argv)
{
    g_autoptr(GString) cmdline = g_string_new(NULL);
    g_autoptr(GString) metadata = g_string_new(NULL);
    g_autoptr(GString) signature = g_string_new(NULL);
    Describe d = { .cmdline = cmdline, .metadata = metadata,
                   .signature = signature };
    g_autofree char *cmdline_json = NULL;
    g_autofree char *metadata_json = NULL;
    g_autofree char *metadata_err = NULL;
    EifMeasurements m;
    Error *err = NULL, *meta_err = NULL;
    EifInfo info;
    const char *path;
    int fd;
    bool ok;

    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage();
        return 0;
    }
    if (argc != 2) {
        error_report("describe takes one image file (or - for stdin)");
        return 2;
    }
    path = argv[1];
    fd = strcmp(path, "-") ? eif_open_file(path, &err) : 0;
    if (fd < 0) {
        error_report_err(err);
        return 1;
    }
    ok = eif_read_fd(fd, describe_data, &d, &info, &m, &err);
    if (fd) {
        close(fd);
    }
    if (!ok) {
        error_prepend(&err, "%s: ", path);
        error_report_err(err);
        return 1;
    }

    cmdline_json = json_nested(QOBJECT(qstring_from_str(cmdline->str)));
    metadata_json = json_nested(describe_metadata(metadata, &meta_err));
    if (meta_err) {
        metadata_err = json_nested(
            QOBJECT(qstring_from_str(error_get_pretty(meta_err))));
        error_free(meta_err);
    }
    printf("{\n"
           "  \"EifVersion\": %u,\n"
           "  \"Arch\": \"%s\",\n"
           "  \"Size\": %" PRIu64 ",\n"
           "  \"CRC32\": \"0x%08" PRIx32 "\",\n"
           "  \"CheckCRC\": true,\n"
           "  \"IsSigned\": %s,\n"
           "  \"Cmdline\": %s,\n"
           "  \"Sections\": [\n",
           info.version, eif_arch_name(info.arch), info.size, info.crc32,
           m.has_pcr8 ? "true" : "false", cmdline_json);
    for (unsigned i = 0; i < info.nr_sections; i++) {
        const EifSection *s = &info.sections[i];

        printf("    { \"Type\": \"%s\", \"Offset\": %" PRIu64
               ", \"Size\": %" PRIu64 " }%s\n",
               eif_section_type_name(s->type), s->offset, s->size,
               i + 1 < info.nr_sections ? "," : "");
    }
    printf("  ],\n"
           "  \"Measurements\": {\n"
           "    \"HashAlgorithm\": \"Sha384 { ... }\"");
    for (unsigned i = 0; i < EIF_NR_PCRS; i++) {
        char hex[EIF_PCR_HEX_LEN + 1];

        if (i == EIF_PCR8 && !m.has_pcr8) {
            break;
        }
        eif_pcr_to_hex(m.pcr[i], hex);
        printf(",\n    \"PCR%u\": \"%s\"", eif_pcr_index(i), hex);
    }
    printf("\n  },\n");
#ifdef QEMU_EIF_ATTEST
    if (m.has_pcr8) {
        Error *sig_err = NULL;
        bool check = eif_signature_check((uint8_t *)signature->str,
                                         signature->len, m.pcr[EIF_PCR0],
                                         &sig_err);

        printf("  \"SignatureCheck\": %s,\n", check ? "true" : "false");
        if (sig_err) {
            g_autofree char *json = json_nested(QOBJECT(
                qstring_from_str(error_get_pretty(sig_err))));

            printf("  \"SignatureError\": %s,\n", json);
            error_free(sig_err);
        }
    }
#endif
    printf("  \"Metadata\": %s", metadata_json);
    if (metadata_err) {
        printf(",\n  \"MetadataError\": %s", metadata_err);
    }
    printf("\n}\n");
    return 0;
}

int main(int argc, char **argv)
{
    Error *err = NULL;

    error_init(argv[0]);
    if (qcrypto_init(&err) < 0) {
        error_report_err(err);
        return 1;
    }
    opterr = 0;
    if (argc >= 2 && !strcmp(argv[1], "build")) {
        return cmd_build(argc - 1, argv + 1);
    }
    if (argc >= 2 && !strcmp(argv[1], "describe")) {
        return cmd_describe(argc - 1, argv + 1);
    }
    if (argc >= 2 && (!strcmp(argv[1], "verify-attestation") ||
                      !strcmp(argv[1], "make-attestation-chain") ||
                      !strcmp(argv[1], "sign") || !strcmp(argv[1], "pcr"))) {
#ifdef QEMU_EIF_ATTEST
        switch (argv[1][0]) {
        case 'v':
            return cmd_verify_attestation(argc - 1, argv + 1);
        case 'm':
            return cmd_make_attestation_chain(argc - 1, argv + 1);
        case 's':
            return cmd_sign(argc - 1, argv + 1);
        default:
            return cmd_pcr(argc - 1, argv + 1);
        }
#else
        error_report("%s: this qemu-eif was built without GnuTLS or "
                     "libcbor", argv[1]);
        return 1;
#endif
    }
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
                      !strcmp(argv[1], "help"))) {
        usage();
        return 0;
    }
    error_report("expected a command: build, describe, sign, pcr, "
                 "verify-attestation or make-attestation-chain (see --help)");
    return 2;
}
