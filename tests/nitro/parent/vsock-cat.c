/*
 * vsock-cat: a vsock stream client for the parent VM's busybox root
 *
 *   vsock-cat CID PORT [LINE]
 *
 * Connects to (CID, PORT), retrying for up to 5 minutes while nobody
 * listens there yet (a TCG enclave starts its servers late), sends LINE
 * and a newline if given and ends its side of the stream, then copies
 * what comes back to stdout until the peer closes.  Exit status 0 once
 * connected and done, 1 otherwise (with the last errno on stderr).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/vm_sockets.h>

#include "vsock-connect.h"

int main(int argc, char **argv)
{
    char buf[4096];
    unsigned cid, port;
    ssize_t n;
    int s;

    if (argc < 3 || sscanf(argv[1], "%u", &cid) != 1 ||
        sscanf(argv[2], "%u", &port) != 1) {
        fprintf(stderr, "usage: vsock-cat CID PORT [LINE]\n");
        return 1;
    }
    s = vsock_connect(cid, port);
    if (s < 0) {
        fprintf(stderr, "vsock-cat: connect: %s\n", strerror(errno));
        return 1;
    }
    if (argc > 3 && (write(s, argv[3], strlen(argv[3])) < 0 ||
                     write(s, "\n", 1) != 1)) {
        fprintf(stderr, "vsock-cat: write: %s\n", strerror(errno));
        return 1;
    }
    shutdown(s, SHUT_WR);
    while ((n = read(s, buf, sizeof(buf))) > 0) {
        if (fwrite(buf, 1, n, stdout) != (size_t)n) {
            return 1;
        }
    }
    fflush(stdout);
    return n < 0 ? 1 : 0;
}
