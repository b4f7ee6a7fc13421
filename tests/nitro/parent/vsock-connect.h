/*
 * vsock-connect.h: the vsock client sockets of the parent VM's test
 * programs (ne-probe.c, vsock-cat.c), with the patience a TCG enclave
 * needs: it starts its servers late and answers slowly.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TESTS_NITRO_PARENT_VSOCK_CONNECT_H
#define TESTS_NITRO_PARENT_VSOCK_CONNECT_H

#include <errno.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/vm_sockets.h>

/* a vsock stream socket with a generous connect timeout, or -1 */
static int vsock_socket(void)
{
    struct timeval tv = { .tv_sec = 60 };
    int s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (s >= 0) {
        setsockopt(s, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD, &tv,
                   sizeof(tv));
    }
    return s;
}

/*
 * Connected to (@cid, @port), retried for up to 5 minutes while nobody
 * listens there yet: a socket, or -1 with errno set
 */
static int vsock_connect(unsigned cid, unsigned port)
{
    struct sockaddr_vm a = {
        .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port,
    };

    for (int i = 0; i < 600; i++) {
        int s = vsock_socket();

        if (s < 0) {
            return -1;
        }
        if (!connect(s, (struct sockaddr *)&a, sizeof(a))) {
            return s;
        }
        close(s);
        if (errno != ECONNRESET && errno != ETIMEDOUT) {
            return -1;
        }
        poll(NULL, 0, 500);
    }
    return -1;
}

#endif
