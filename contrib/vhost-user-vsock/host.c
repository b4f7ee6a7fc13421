/*
 * vhost-user-vsock: the host end of the guest's stream connections
 *
 * Two ways to reach the host: AF_UNIX paths named after the gateway path
 * (the convention Firecracker's vsock device uses, so existing host tools
 * work), or, for the guest's outgoing connections, plain AF_VSOCK calls
 * (under the Nitro Enclaves simulator they land in the simulation's vsock
 * space, as the enclave's own connections would).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/cutils.h"
#include "qemu/sockets.h"
#include <sys/un.h>
#include <linux/vm_sockets.h>

#include "vhost-user-vsock.h"

static int connect_uds(const VuvHostConfig *cfg, uint32_t port,
                       Error **errp)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    int fd;

    if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s_%" PRIu32,
                 cfg->uds_path, port) >= sizeof(sun.sun_path)) {
        error_setg(errp, "path '%s_%" PRIu32 "' is too long", cfg->uds_path,
                   port);
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "socket");
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        error_setg_errno(errp, errno, "connect to %s", sun.sun_path);
        close(fd);
        return -1;
    }
    return fd;
}

static int connect_vsock(const VuvHostConfig *cfg, uint64_t dst_cid,
                         uint32_t dst_port, uint32_t src_port,
                         bool *in_progress, Error **errp)
{
    struct sockaddr_vm svm = { .svm_family = AF_VSOCK };
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        error_setg_errno(errp, errno, "AF_VSOCK socket");
        return -1;
    }
    /*
     * Connect as the guest where the host lets us (the simulator does):
     * the peer then sees the guest's address.  A host kernel refuses a
     * foreign CID; the connection then comes from the host's own.
     */
    svm.svm_cid = cfg->guest_cid;
    svm.svm_port = src_port;
    if (bind(fd, (struct sockaddr *)&svm, sizeof(svm)) < 0) {
        svm.svm_cid = VMADDR_CID_ANY;
        svm.svm_port = VMADDR_PORT_ANY;
        /* unbound: connect() picks an address */
    }
    if (!qemu_set_blocking(fd, false, errp)) {
        close(fd);
        return -1;
    }
    svm.svm_cid = dst_cid;
    svm.svm_port = dst_port;
    *in_progress = false;
    if (connect(fd, (struct sockaddr *)&svm, sizeof(svm)) < 0) {
        if (errno == EINPROGRESS) {
            *in_progress = true;
            return fd;
        }
        error_setg_errno(errp, errno, "connect to vsock %" PRIu64 ":%" PRIu32,
                         dst_cid, dst_port);
        close(fd);
        return -1;
    }
    return fd;
}

int vuv_host_connect(const VuvHostConfig *cfg, uint64_t dst_cid,
                     uint32_t dst_port, uint32_t src_port,
                     bool *in_progress, Error **errp)
{
    if (cfg->use_vsock) {
        return connect_vsock(cfg, dst_cid, dst_port, src_port, in_progress,
                             errp);
    }
    *in_progress = false;
    if (!cfg->uds_path) {
        error_setg(errp, "no host side for guest connections (--uds-path "
                   "or --vsock)");
        return -1;
    }
    return connect_uds(cfg, dst_port, errp);
}

int vuv_host_listen(const VuvHostConfig *cfg, Error **errp)
{
    int fd;

    unlink(cfg->uds_path);
    fd = unix_listen(cfg->uds_path, errp);
    if (fd >= 0 && !qemu_set_blocking(fd, false, errp)) {
        close(fd);
        return -1;
    }
    return fd;
}

int vuv_host_read_line(int fd, const char *verb, char *line,
                       size_t line_size, size_t *line_len, uint32_t *port)
{
    size_t skip = strlen(verb) + 1;
    const char *end;
    uint64_t v;

    for (;;) {
        ssize_t n = read(fd, line + *line_len, 1);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            return 0;
        }
        if (n <= 0) {
            return -1;
        }
        if (line[*line_len] == '\n') {
            break;
        }
        if (++*line_len >= line_size - 1) {
            return -1;
        }
    }
    line[*line_len] = 0;
    if (strncmp(line, verb, skip - 1) || line[skip - 1] != ' ' ||
        qemu_strtou64(line + skip, &end, 10, &v) < 0 || *end ||
        v > UINT32_MAX) {
        return -1;
    }
    *port = v;
    return 1;
}
