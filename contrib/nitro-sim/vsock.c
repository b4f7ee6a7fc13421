/*
 * nitro-sim: AF_VSOCK carried over AF_UNIX
 *
 * socket(AF_VSOCK, SOCK_STREAM) gives an AF_UNIX stream socket that the
 * simulator remembers (by inode).  A vsock address (cid, port) is the
 * abstract AF_UNIX name "nitro-sim-<hash of NITRO_SIM_DIR>/<cid>.<port>",
 * so every process that shares the simulation directory shares the port
 * space, a live listener makes bind() fail with EADDRINUSE, a dead one
 * leaves nothing behind, and connecting where nobody listens gives
 * ECONNREFUSED.  Connecting sockets are bound to their own (cid, port)
 * first, so that accept() and getpeername() see the peer's vsock address.
 * This process is the parent, CID 3; the simulated enclaves use their
 * CID, the simulated hypervisor (the debug console) CID 0.
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <linux/vm_sockets.h>

#include "nitro-sim.h"

#ifndef VMADDR_CID_LOCAL
#define VMADDR_CID_LOCAL 1
#endif

typedef struct VSock {
    dev_t dev;
    ino_t ino;
    const SimConfig *cfg;
    bool bound, connected, listening;
    uint32_t lcid, lport, pcid, pport;
} VSock;

volatile int sim_vsock_active; /* fast path hint, read unlocked */
static pthread_mutex_t vlock = PTHREAD_MUTEX_INITIALIZER;
static VSock *socks;
static int nsocks;

typedef struct CfgCache {
    struct CfgCache *next;
    SimConfig cfg;
} CfgCache;
static CfgCache *configs;

/* configs are small in number and never freed: sockets point at them */
static const SimConfig *config_now(void)
{
    SimConfig c;
    CfgCache *cc;
    char err[256];

    if (!sim_config_load(&c, true, err, sizeof(err))) {
        fprintf(stderr, "nitro-sim: %s\n", err);
        return NULL;
    }
    for (cc = configs; cc; cc = cc->next) {
        if (!memcmp(&cc->cfg, &c, sizeof(c))) {
            return &cc->cfg;
        }
    }
    cc = calloc(1, sizeof(*cc));
    if (!cc) {
        return NULL;
    }
    cc->cfg = c;
    cc->next = configs;
    configs = cc;
    return &cc->cfg;
}

/* lock held */
static VSock *lookup(int fd)
{
    struct stat st;
    int i;

    if (!sim_vsock_active || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
        return NULL;
    }
    for (i = 0; i < nsocks; i++) {
        if (socks[i].ino == st.st_ino && socks[i].dev == st.st_dev) {
            return &socks[i];
        }
    }
    return NULL;
}

/* lock held */
static VSock *add(int fd, const SimConfig *cfg)
{
    struct stat st;
    VSock *n;

    if (fstat(fd, &st) < 0) {
        return NULL;
    }
    n = realloc(socks, (nsocks + 1) * sizeof(*n));
    if (!n) {
        return NULL;
    }
    socks = n;
    n = &socks[nsocks++];
    memset(n, 0, sizeof(*n));
    n->dev = st.st_dev;
    n->ino = st.st_ino;
    n->cfg = cfg;
    n->lcid = n->lport = VMADDR_CID_ANY;
    sim_vsock_active = 1;
    return n;
}

void sim_vsock_forget(dev_t dev, ino_t ino)
{
    int i;

    pthread_mutex_lock(&vlock);
    for (i = 0; i < nsocks; i++) {
        if (socks[i].ino == ino && socks[i].dev == dev) {
            socks[i] = socks[--nsocks];
            break;
        }
    }
    pthread_mutex_unlock(&vlock);
}

/* @other: NULL, "peer" or "local": which other address is logged */
static void log_op(const SimConfig *cfg, const char *op, const char *who,
                   uint32_t cid, uint32_t port, const char *other,
                   uint32_t ocid, uint32_t oport, int err)
{
    SimJson j;

    sim_json_begin(&j, "vsock");
    sim_json_str(&j, "op", op);
    if (who) {
        sim_json_str(&j, "by", who);
    }
    sim_json_u64(&j, "cid", cid);
    sim_json_u64(&j, "port", port);
    if (other) {
        char k[32];

        snprintf(k, sizeof(k), "%s_cid", other);
        sim_json_u64(&j, k, ocid);
        snprintf(k, sizeof(k), "%s_port", other);
        sim_json_u64(&j, k, oport);
    }
    sim_json_result(&j, err);
    sim_json_emit(&j, cfg);
}

static uint32_t ephemeral_port(void)
{
    uint32_t r = 0;

    if (getrandom(&r, sizeof(r), 0) != sizeof(r)) {
        r = (uint32_t)getpid() * 2654435761u;
    }
    /* like Linux: above the reserved ports, below VMADDR_PORT_ANY */
    return 1024 + r % (UINT32_MAX - 1024);
}

/* bind @fd to (cid, port); port VMADDR_PORT_ANY picks one; 0 or errno */
static int bind_name(const SimConfig *cfg, int fd, uint32_t cid,
                     uint32_t *port)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int tries, err = EADDRINUSE;

    for (tries = 0; tries < 64; tries++) {
        uint32_t p = *port == VMADDR_PORT_ANY ? ephemeral_port() : *port;

        sl = sim_vsock_name(cfg, cid, p, (struct sockaddr *)&ss);
        if (sim_real.bind(fd, (struct sockaddr *)&ss, sl) == 0) {
            *port = p;
            return 0;
        }
        err = errno;
        if (err != EADDRINUSE || *port != VMADDR_PORT_ANY) {
            break;
        }
    }
    return err;
}

static int connect_name(const SimConfig *cfg, int fd, uint32_t cid,
                        uint32_t port)
{
    struct sockaddr_storage ss;
    socklen_t sl;

    if (cid == VMADDR_CID_LOCAL) {
        cid = SIM_PARENT_CID;
    }
    sl = sim_vsock_name(cfg, cid, port, (struct sockaddr *)&ss);
    while (sim_real.connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        if (errno != EINTR) {
            return errno;
        }
    }
    return 0;
}

/* this process's CID: the parent's, or the booted enclave's it serves */
static uint32_t own_cid(const SimConfig *cfg)
{
    return cfg->vsock_cid ? cfg->vsock_cid : SIM_PARENT_CID;
}

/*
 * Nobody listens at (cid, port) in the vsock space: if @cid is an enclave
 * booted in QEMU (NITRO_SIM_BOOT=qemu), ask its vsock backend's gateway
 * to connect into the enclave; it answers "OK <port>" once the enclave
 * accepted, or closes.  0 or -errno.
 */
static int connect_gateway(const SimConfig *cfg, int fd, uint32_t cid,
                           uint32_t port)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    char req[32], reply[32];
    size_t got = 0;
    int n;

    sim_boot_gateway_path(cfg, cid, sun.sun_path, sizeof(sun.sun_path));
    if (access(sun.sun_path, F_OK) < 0) {
        return -ECONNREFUSED;
    }
    while (sim_real.connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        if (errno != EINTR) {
            return -ECONNREFUSED;
        }
    }
    n = snprintf(req, sizeof(req), "CONNECT %u\n", port);
    if (send(fd, req, n, MSG_NOSIGNAL) != n) {
        return -ECONNRESET;
    }
    /* byte by byte: what follows the line is the enclave's */
    while (got < sizeof(reply) - 1) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        ssize_t r;

        if (poll(&pfd, 1, 10000) <= 0) {
            return -ETIMEDOUT;
        }
        r = recv(fd, reply + got, 1, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (r <= 0) {
            return -ECONNRESET;   /* the enclave refused (RST) */
        }
        if (reply[got] == '\n') {
            break;
        }
        got++;
    }
    return strncmp(reply, "OK ", 3) ? -ECONNRESET : 0;
}

static bool get_vm_addr(const struct sockaddr *sa, socklen_t len,
                        uint32_t *cid, uint32_t *port, int *err)
{
    const struct sockaddr_vm *svm = (const struct sockaddr_vm *)sa;

    if (!sa || len < sizeof(*svm)) {
        *err = EINVAL;
        return false;
    }
    if (svm->svm_family != AF_VSOCK) {
        *err = EAFNOSUPPORT;
        return false;
    }
    *cid = svm->svm_cid;
    *port = svm->svm_port;
    return true;
}

static void put_vm_addr(struct sockaddr *sa, socklen_t *len, uint32_t cid,
                        uint32_t port)
{
    struct sockaddr_vm svm;

    if (!sa || !len) {
        return;
    }
    memset(&svm, 0, sizeof(svm));
    svm.svm_family = AF_VSOCK;
    svm.svm_cid = cid;
    svm.svm_port = port;
    memcpy(sa, &svm, *len < sizeof(svm) ? *len : sizeof(svm));
    *len = sizeof(svm);
}

int sim_vsock_socket(int domain, int type, int protocol)
{
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    const SimConfig *cfg;
    int fd;

    sim_real_init();
    if (domain != AF_VSOCK ||
        (base != SOCK_STREAM && base != SOCK_SEQPACKET)) {
        return sim_real.socket(domain, type, protocol);
    }
    if (protocol != 0 && protocol != PF_VSOCK) {
        errno = EPROTONOSUPPORT;
        return -1;
    }
    pthread_mutex_lock(&vlock);
    cfg = config_now();
    if (!cfg) {
        pthread_mutex_unlock(&vlock);
        errno = EINVAL;
        return -1;
    }
    fd = sim_real.socket(AF_UNIX, type, 0);
    if (fd >= 0 && !add(fd, cfg)) {
        sim_real.close(fd);
        fd = -1;
        errno = ENOMEM;
    }
    pthread_mutex_unlock(&vlock);
    return fd;
}

int sim_vsock_bind(int fd, const struct sockaddr *sa, socklen_t len, int *ret)
{
    VSock *s;
    uint32_t cid = 0, port = 0;
    int err = 0;

    pthread_mutex_lock(&vlock);
    s = lookup(fd);
    if (!s) {
        pthread_mutex_unlock(&vlock);
        return 0;
    }
    if (!get_vm_addr(sa, len, &cid, &port, &err)) {
        goto out;
    }
    if (s->bound) {
        err = EINVAL;
        goto out;
    }
    if (s->cfg->vsock_cid && cid == s->cfg->vsock_cid) {
        /* the vsock device of a booted enclave speaks for its CID */
    } else if (cid != VMADDR_CID_ANY && cid != SIM_PARENT_CID &&
               cid != VMADDR_CID_LOCAL) {
        err = EADDRNOTAVAIL;
        goto out;
    } else {
        cid = own_cid(s->cfg);
    }
    err = bind_name(s->cfg, fd, cid, &port);
    if (!err) {
        s->bound = true;
        s->lcid = cid;
        s->lport = port;
    }
out:
    log_op(s->cfg, "bind", NULL, cid, port, NULL, 0, 0, err);
    pthread_mutex_unlock(&vlock);
    *ret = err ? -1 : 0;
    errno = err;
    return 1;
}

int sim_vsock_listen(int fd, int backlog, int *ret)
{
    VSock *s;
    int err = 0;

    pthread_mutex_lock(&vlock);
    s = lookup(fd);
    if (!s) {
        pthread_mutex_unlock(&vlock);
        return 0;
    }
    if (!s->bound) {
        err = EINVAL;
    } else if (sim_real.listen(fd, backlog) < 0) {
        err = errno;
    } else {
        s->listening = true;
    }
    log_op(s->cfg, "listen", NULL, s->lcid, s->lport, NULL, 0, 0, err);
    pthread_mutex_unlock(&vlock);
    *ret = err ? -1 : 0;
    errno = err;
    return 1;
}

int sim_vsock_accept(int fd, struct sockaddr *sa, socklen_t *len, int flags,
                     int *ret)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    const SimConfig *cfg;
    uint32_t lcid, lport, pcid = VMADDR_CID_ANY, pport = VMADDR_PORT_ANY;
    VSock *s, *n;
    int nfd, err;

    pthread_mutex_lock(&vlock);
    s = lookup(fd);
    if (!s) {
        pthread_mutex_unlock(&vlock);
        return 0;
    }
    cfg = s->cfg;
    lcid = s->lcid;
    lport = s->lport;
    pthread_mutex_unlock(&vlock);

    /* may block: without the lock */
    nfd = sim_real.accept4(fd, (struct sockaddr *)&ss, &sl, flags);
    if (nfd < 0) {
        *ret = -1;
        return 1;
    }
    sim_vsock_parse_name((struct sockaddr *)&ss, sl, &pcid, &pport);
    pthread_mutex_lock(&vlock);
    n = add(nfd, cfg);
    if (n) {
        n->bound = n->connected = true;
        n->lcid = lcid;
        n->lport = lport;
        n->pcid = pcid;
        n->pport = pport;
    }
    err = n ? 0 : ENOMEM;
    log_op(cfg, "accept", NULL, lcid, lport, "peer", pcid, pport, err);
    pthread_mutex_unlock(&vlock);
    put_vm_addr(sa, len, pcid, pport);
    *ret = nfd;
    return 1;
}

int sim_vsock_connect(int fd, const struct sockaddr *sa, socklen_t len,
                      int *ret)
{
    const SimConfig *cfg;
    uint32_t cid = 0, port = 0, lport = VMADDR_PORT_ANY;
    VSock *s;
    int err = 0;
    bool bound;

    pthread_mutex_lock(&vlock);
    s = lookup(fd);
    if (!s) {
        pthread_mutex_unlock(&vlock);
        return 0;
    }
    cfg = s->cfg;
    bound = s->bound;
    if (!get_vm_addr(sa, len, &cid, &port, &err)) {
        goto out_locked;
    }
    if (s->connected) {
        err = EISCONN;
        goto out_locked;
    }
    if (!bound) {
        /* autobind, so that the peer sees who connects */
        err = bind_name(cfg, fd, own_cid(cfg), &lport);
        if (err) {
            goto out_locked;
        }
        s->bound = true;
        s->lcid = own_cid(cfg);
        s->lport = lport;
    }
    pthread_mutex_unlock(&vlock);

    err = connect_name(cfg, fd, cid, port);
    if (err == ECONNREFUSED && cid > SIM_PARENT_CID) {
        err = -connect_gateway(cfg, fd, cid, port);
    }

    pthread_mutex_lock(&vlock);
    s = lookup(fd);
    if (s && !err) {
        s->connected = true;
        s->pcid = cid;
        s->pport = port;
    }
out_locked:
    log_op(cfg, "connect", NULL, cid, port, s ? "local" : NULL,
           s ? s->lcid : 0, s ? s->lport : 0, err);
    pthread_mutex_unlock(&vlock);
    *ret = err ? -1 : 0;
    errno = err;
    return 1;
}

int sim_vsock_getname(int fd, struct sockaddr *sa, socklen_t *len, bool peer,
                      int *ret)
{
    VSock *s;
    int err = 0;

    pthread_mutex_lock(&vlock);
    s = lookup(fd);
    if (!s) {
        pthread_mutex_unlock(&vlock);
        return 0;
    }
    if (!sa || !len) {
        err = EFAULT;
    } else if (peer && !s->connected) {
        err = ENOTCONN;
    } else if (peer) {
        put_vm_addr(sa, len, s->pcid, s->pport);
    } else {
        put_vm_addr(sa, len, s->lcid, s->lport);
    }
    pthread_mutex_unlock(&vlock);
    *ret = err ? -1 : 0;
    if (err) {
        errno = err;
    }
    return 1;
}

int sim_vsock_getsockopt(int fd, int level, int name, void *val,
                         socklen_t *len, int *ret)
{
    VSock *s;
    uint64_t v64 = 0;
    struct timeval tv = { 2, 0 };
    int vint = 0;
    const void *src = NULL;
    socklen_t n = 0;

    if (level != SOL_SOCKET && level != AF_VSOCK) {
        return 0;
    }
    pthread_mutex_lock(&vlock);
    s = lookup(fd);
    pthread_mutex_unlock(&vlock);
    if (!s) {
        return 0;
    }
    if (level == SOL_SOCKET) {
        if (name == SO_DOMAIN) {
            vint = AF_VSOCK;
        } else if (name != SO_PROTOCOL) {
            return 0;           /* SO_ERROR, SO_TYPE...: the real ones */
        }
        src = &vint;
        n = sizeof(vint);
    } else {
        switch (name) {
        case SO_VM_SOCKETS_BUFFER_SIZE:
        case SO_VM_SOCKETS_BUFFER_MAX_SIZE:
            v64 = 256 * 1024;
            src = &v64;
            n = sizeof(v64);
            break;
        case SO_VM_SOCKETS_BUFFER_MIN_SIZE:
            v64 = 128;
            src = &v64;
            n = sizeof(v64);
            break;
        case SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD:
            src = &tv;
            n = sizeof(tv);
            break;
        default:
            *ret = -1;
            errno = ENOPROTOOPT;
            return 1;
        }
    }
    if (!val || !len) {
        *ret = -1;
        errno = EFAULT;
        return 1;
    }
    memcpy(val, src, *len < n ? *len : n);
    *len = n;
    *ret = 0;
    return 1;
}

int sim_vsock_setsockopt(int fd, int level, int name, const void *val,
                         socklen_t len, int *ret)
{
    VSock *s;

    if (level != AF_VSOCK) {
        return 0;
    }
    pthread_mutex_lock(&vlock);
    s = lookup(fd);
    pthread_mutex_unlock(&vlock);
    if (!s) {
        return 0;
    }
    /* buffer sizes and timeouts: accepted and ignored */
    *ret = 0;
    return 1;
}

int sim_vsock_listen_as(const SimConfig *cfg, uint32_t cid, uint32_t port)
{
    int fd = sim_real.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
                             SOCK_NONBLOCK, 0);
    int err;

    if (fd < 0) {
        return -errno;
    }
    err = bind_name(cfg, fd, cid, &port);
    if (!err && sim_real.listen(fd, 16) < 0) {
        err = errno;
    }
    log_op(cfg, "listen", cid == SIM_HYPERVISOR_CID ? "hypervisor" :
           "enclave", cid, port, NULL, 0, 0, err);
    if (err) {
        sim_real.close(fd);
        return -err;
    }
    return fd;
}

int sim_vsock_connect_as(const SimConfig *cfg, uint32_t local_cid,
                         uint32_t cid, uint32_t port)
{
    int fd = sim_real.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    uint32_t lport = VMADDR_PORT_ANY;
    int err;

    if (fd < 0) {
        return -errno;
    }
    err = bind_name(cfg, fd, local_cid, &lport);
    if (!err) {
        err = connect_name(cfg, fd, cid, port);
    }
    log_op(cfg, "connect", "enclave", cid, port, "local", local_cid, lport,
           err);
    if (err) {
        sim_real.close(fd);
        return -err;
    }
    return fd;
}
