/*
 * qemu-eif: build and describe AWS Nitro Enclaves images (EIF)
 *
 *   qemu-eif build --kernel K [--initrd I]... [--cmdline S]
 *                  [--arch x86_64|aarch64] [--name N] [--version V]
 *                  [--metadata JSON|@FILE] -o app.eif
 *   qemu-eif describe app.eif|-
 *
 * Both stream the image: memory use does not depend on its size.
 *
 * Copyright (c) 2026 Nitro Enclaves for QEMU contributors
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or
 * (at your option) any later version.  See the COPYING file in the
 * top-level directory.
 */

#include "qemu/osdep.h"
#include <getopt.h>
#include <sys/utsname.h>
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qstring.h"
#include "crypto/init.h"
#include "hw/core/eif.h"

/* describe: the largest cmdline or metadata section it prints */
#define DESCRIBE_MAX_TEXT (16 * 1024 * 1024)

static void usage(void)
{
    printf("Usage:\n"
           "  qemu-eif build --kernel FILE [--initrd FILE]... "
           "[--cmdline STRING]\n"
           "                 [--arch x86_64|aarch64] [--name NAME] "
           "[--version VERSION]\n"
           "                 [--metadata JSON|@FILE] -o|--output FILE\n"
           "  qemu-eif describe FILE|-\n"
           "\n"
           "build writes a version %d Enclave Image File with the sections\n"
           "kernel, cmdline, metadata and the initrds, in this order.  The\n"
           "command line defaults to the official one of the architecture,\n"
           "which defaults to the host's.  --metadata adds a JSON object as\n"
           "CustomMetadata to the image's metadata.\n"
           "\n"
           "describe validates an image and prints, as JSON, its version,\n"
           "architecture, sections, CRC, measurements (PCR0, PCR1, PCR2 and,\n"
           "if signed, PCR8) and metadata.\n", EIF_VERSION);
}

static QObject *parse_json_object(const char *what, const char *text,
                                  Error **errp)
{
    g_autofree char *contents = NULL;
    g_autoptr(GError) gerr = NULL;
    QObject *obj;

    if (text[0] == '@') {
        if (!g_file_get_contents(text + 1, &contents, NULL, &gerr)) {
            error_setg(errp, "%s: %s", what, gerr->message);
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
        { "help", no_argument, NULL, 'h' },
        { NULL },
    };
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
        case 'h':
            usage();
            return 0;
        case ':':
            error_report("option '%s' needs an argument", argv[optind - 1]);
            return 2;
        default:
            error_report("unknown option '%s'", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        error_report("unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (!p.kernel || !initrds->len || !output) {
        error_report("build needs --kernel, at least one --initrd and -o");
        return 2;
    }
    p.initrds = (const char *const *)initrds->pdata;
    p.nr_initrds = initrds->len;
    metadata = build_metadata(name, version, custom, output, &err);
    if (!metadata) {
        error_report_err(err);
        return 2;
    }
    p.metadata = metadata;

    /* Truncate the output only once it is known not to be an input */
    fd = open(output, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        error_report("cannot create '%s': %s", output, strerror(errno));
        return 1;
    }
    if (fstat(fd, &st) == 0) {
        bool input = same_file(&st, p.kernel);

        for (unsigned i = 0; i < p.nr_initrds; i++) {
            input |= same_file(&st, p.initrds[i]);
        }
        if (input) {
            error_report("output '%s' is also an input", output);
            close(fd);
            return 2;
        }
    }
    if (ftruncate(fd, 0)) {
        error_report("cannot truncate '%s': %s", output, strerror(errno));
        close(fd);
        return 1;
    }
    size = eif_build_fd(&p, fd, &err);
    if (close(fd) && size >= 0) {
        error_setg_errno(&err, errno, "cannot write '%s'", output);
        size = -1;
    }
    if (size < 0) {
        unlink(output);
        error_report_err(err);
        return 1;
    }
    return 0;
}

typedef struct Describe {
    GString *cmdline;
    GString *metadata;
} Describe;

static bool describe_data(const EifSection *s, uint64_t pos, const void *data,
                          size_t len, void *opaque, Error **errp)
{
    Describe *d = opaque;
    GString *text = s->type == EIF_SECTION_CMDLINE ? d->cmdline
                  : s->type == EIF_SECTION_METADATA ? d->metadata : NULL;

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

/* A JSON string or, when it is a JSON document, the value of @text */
static char *json_value(const GString *text, bool parse)
{
    QObject *obj = NULL;
    g_autoptr(GString) json = NULL;
    GString *out = g_string_new(NULL);

    if (parse && !memchr(text->str, 0, text->len)) {
        obj = qobject_from_json(text->str, NULL);
    }
    if (!obj) {
        obj = QOBJECT(qstring_from_str(text->str));
    }
    json = qobject_to_json_pretty(obj, true);
    qobject_unref(obj);
    /* Nested one level: indent the lines after the first */
    for (const char *p = json->str; *p; p++) {
        g_string_append_c(out, *p);
        if (*p == '\n') {
            g_string_append(out, "  ");
        }
    }
    return g_string_free(out, false);
}

static int cmd_describe(int argc, char **argv)
{
    g_autoptr(GString) cmdline = g_string_new(NULL);
    g_autoptr(GString) metadata = g_string_new(NULL);
    Describe d = { .cmdline = cmdline, .metadata = metadata };
    g_autofree char *cmdline_json = NULL;
    g_autofree char *metadata_json = NULL;
    EifMeasurements m;
    Error *err = NULL;
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
    fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
    if (fd < 0) {
        error_report("cannot open '%s': %s", path, strerror(errno));
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

    cmdline_json = json_value(cmdline, false);
    metadata_json = json_value(metadata, true);
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
    printf("\n  },\n"
           "  \"Metadata\": %s\n"
           "}\n", metadata_json);
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
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
                      !strcmp(argv[1], "help"))) {
        usage();
        return 0;
    }
    error_report("expected a command: build or describe (see --help)");
    return 2;
}
