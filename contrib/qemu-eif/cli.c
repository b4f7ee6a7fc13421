/*
 * qemu-eif: what its commands share - option errors and input files
 *
 * Every command of qemu-eif parses its options with getopt_long() and
 * reads its small inputs (certificates, keys, attestation documents)
 * whole, up to a size: the same errors, worded once.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <getopt.h>
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "hw/core/eif.h"
#include "cli.h"

int cli_bad_option(int c, char **argv)
{
    if (c == ':') {
        error_report("option '%s' needs an argument", argv[optind - 1]);
    } else {
        error_report("unknown option '%s' (see --help)", argv[optind - 1]);
    }
    return 2;
}

bool cli_no_operands(int argc, char **argv)
{
    if (optind < argc) {
        error_report("unexpected argument '%s'", argv[optind]);
        return false;
    }
    return true;
}

GByteArray *cli_read_file(const char *path, size_t max, Error **errp)
{
    g_autoptr(GByteArray) data = g_byte_array_new();
    bool in = !strcmp(path, "-");
    int fd = in ? STDIN_FILENO : eif_open_file(path, errp);
    uint8_t buf[4096];
    ssize_t n;

    if (fd < 0) {
        return NULL;
    }
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            error_setg_errno(errp, errno, "cannot read '%s'", path);
            break;
        }
        if (data->len + n > max) {
            error_setg(errp, "'%s' is bigger than %zu bytes", path, max);
            break;
        }
        g_byte_array_append(data, buf, n);
    }
    if (!in) {
        close(fd);
    }
    return n ? NULL : g_steal_pointer(&data);
}
