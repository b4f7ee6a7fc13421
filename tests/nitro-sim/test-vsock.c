/*
 * nitro-sim tests: AF_VSOCK between processes through the simulator
 *
 * Two processes on one simulation directory: bind, listen, accept,
 * connect, getsockname, getpeername with vsock addresses; EADDRINUSE for
 * a port held by a live listener but not for one of a killed process;
 * ECONNREFUSED where nobody listens; EADDRNOTAVAIL for a foreign CID;
 * non-blocking connect; socket options; separate simulation directories
 * do not see each other.  Runs with the simulator preloaded.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/vm_sockets.h>

#include "tap.h"
#include "launcher.h"

static struct sockaddr_vm vm(uint32_t cid, uint32_t port)
{
    struct sockaddr_vm a = { .svm_family = AF_VSOCK };

    a.svm_cid = cid;
    a.svm_port = port;
    return a;
}

static int vsock(int flags)
{
    return socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
}

static int do_bind(int fd, uint32_t cid, uint32_t port)
{
    struct sockaddr_vm a = vm(cid, port);

    return bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? errno : 0;
}

static int do_connect(int fd, uint32_t cid, uint32_t port)
{
    struct sockaddr_vm a = vm(cid, port);

    return connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ? errno : 0;
}

static struct sockaddr_vm name_of(int fd, bool peer)
{
    struct sockaddr_vm a = { 0 };
    socklen_t len = sizeof(a);

    if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a,
                                           &len) < 0 || len != sizeof(a)) {
        a.svm_family = 0;
    }
    return a;
}

/* the listener process: reports what it sees on @out */
static void server(int out)
{
    int l = vsock(0), c;
    struct sockaddr_vm peer = { 0 }, local;
    socklen_t len = sizeof(peer);
    char buf[16];
    ssize_t n;

    if (do_bind(l, VMADDR_CID_ANY, 5000) || listen(l, 4) < 0) {
        dprintf(out, "listen failed %d\n", errno);
        _exit(1);
    }
    dprintf(out, "ready\n");
    c = accept(l, (struct sockaddr *)&peer, &len);
    local = name_of(c, false);
    dprintf(out, "accepted peer %u:%u local %u:%u family %u\n",
            peer.svm_cid, peer.svm_port, local.svm_cid, local.svm_port,
            peer.svm_family);
    n = read(c, buf, sizeof(buf));
    if (n > 0 && write(c, buf, n) != n) {
        _exit(1);
    }
    pause();
    _exit(0);
}

static char *read_line(int fd)
{
    static char line[256];
    size_t n = 0;
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    while (n < sizeof(line) - 1 && poll(&pfd, 1, 5000) == 1 &&
           read(fd, line + n, 1) == 1 && line[n] != '\n') {
        n++;
    }
    line[n] = 0;
    return line;
}

int main(void)
{
    struct sockaddr_vm me, a;
    int p[2], c, r, so, l2, nb;
    unsigned pc, pp, lc, lp, fam;
    socklen_t len;
    uint64_t bufsize = 0;
    char buf[16] = "";
    pid_t pid;
    const char *dir;
    int st;

    dir = strdup(nl_new_sim_dir("vsock"));
    tap_plan(16);

    if (pipe(p) < 0) {
        return 1;
    }
    pid = fork();
    if (pid == 0) {
        close(p[0]);
        server(p[1]);
    }
    close(p[1]);
    tap_ok(!strcmp(read_line(p[0]), "ready"),
           "process B: bind (ANY, 5000) and listen");

    c = vsock(0);
    r = do_connect(c, 3, 5000);
    me = name_of(c, false);
    tap_ok(r == 0 && me.svm_family == AF_VSOCK && me.svm_cid == 3 &&
           me.svm_port > 1023, "process A: connect to (3, 5000); bound to "
           "(3, %u)", me.svm_port);
    a = name_of(c, true);
    tap_ok(a.svm_cid == 3 && a.svm_port == 5000,
           "getpeername: (3, 5000)");
    r = sscanf(read_line(p[0]), "accepted peer %u:%u local %u:%u family %u",
               &pc, &pp, &lc, &lp, &fam);
    tap_ok(r == 5 && pc == 3 && pp == me.svm_port && lc == 3 && lp == 5000 &&
           fam == AF_VSOCK, "accept() in B: the peer is A's vsock address, "
           "getsockname (3, 5000)");
    r = write(c, "ping", 4) == 4 && read(c, buf, 4) == 4;
    tap_ok(r && !memcmp(buf, "ping", 4), "data flows both ways");

    l2 = vsock(0);
    tap_ok(do_bind(l2, VMADDR_CID_ANY, 5000) == EADDRINUSE,
           "bind of a port held by another process's listener: EADDRINUSE");
    close(l2);

    l2 = vsock(0);
    tap_ok(do_connect(l2, 3, 5001) == ECONNREFUSED,
           "connect where nobody listens: ECONNREFUSED");
    close(l2);
    l2 = vsock(0);
    tap_ok(do_connect(l2, 16, 5000) == ECONNREFUSED,
           "connect to a CID that does not exist: ECONNREFUSED");
    close(l2);

    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    close(c);
    l2 = vsock(0);
    r = do_bind(l2, 3, 5000);
    tap_ok(r == 0 && listen(l2, 4) == 0,
           "after the listener was killed (SIGKILL) the port is free again");

    nb = vsock(SOCK_NONBLOCK);
    r = do_connect(nb, 3, 5000);
    if (r == EINPROGRESS) {
        struct pollfd pfd = { .fd = nb, .events = POLLOUT };

        poll(&pfd, 1, 5000);
        r = 0;
    }
    so = -1;
    len = sizeof(so);
    getsockopt(nb, SOL_SOCKET, SO_ERROR, &so, &len);
    a = name_of(nb, true);
    tap_ok(r == 0 && so == 0 && a.svm_cid == 3 && a.svm_port == 5000,
           "non-blocking connect: connected, SO_ERROR 0, peer (3, 5000)");
    c = accept(l2, NULL, NULL);
    tap_ok(c >= 0, "accept with no address buffer");
    close(c);

    len = sizeof(so);
    r = getsockopt(nb, SOL_SOCKET, SO_DOMAIN, &so, &len);
    len = sizeof(bufsize);
    tap_ok(r == 0 && so == AF_VSOCK &&
           getsockopt(nb, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &bufsize,
                      &len) == 0 && bufsize > 0,
           "getsockopt: SO_DOMAIN is AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE");
    close(nb);

    c = vsock(0);
    tap_ok(do_bind(c, 16, 1234) == EADDRNOTAVAIL && listen(vsock(0), 1) < 0 &&
           errno == EINVAL,
           "bind to a CID that is not ours: EADDRNOTAVAIL; listen unbound: "
           "EINVAL");
    close(c);
    c = vsock(0);
    r = do_bind(c, VMADDR_CID_ANY, VMADDR_PORT_ANY);
    me = name_of(c, false);
    tap_ok(r == 0 && me.svm_cid == 3 && me.svm_port > 1023 &&
           me.svm_port != VMADDR_PORT_ANY,
           "bind to VMADDR_PORT_ANY picks a port (%u)", me.svm_port);
    close(c);

    tap_ok(nl_log_count("\"event\":\"vsock\"", "\"op\":\"accept\"",
                        "\"port\":5000") == 2 &&
           nl_log_count("\"op\":\"bind\"", "\"port\":5000",
                        "\"error\":\"EADDRINUSE\"") == 1,
           "the event log has the vsock binds, connects and accepts");

    nl_new_sim_dir("vsock-other");
    c = vsock(0);
    tap_ok(do_connect(c, 3, 5000) == ECONNREFUSED,
           "another simulation directory does not see the listener of %s",
           dir);
    close(c);
    close(l2);
    return tap_done();
}
