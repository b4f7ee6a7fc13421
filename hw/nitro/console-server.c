/*
 * AWS Nitro Enclaves: an enclave's console on an AF_UNIX socket
 *
 * Every client receives the console from its first byte (the last
 * NITRO_CONSOLE_SERVER_KEEP bytes of it), then what follows.  Used by the
 * enclave QEMU's registry (registry.c: console.sock, for qemu-nitro
 * console) and by nitro-enclaves-pci (ne-pci.c), which serves a debug
 * enclave's console where a launcher in the parent guest finds it on
 * Nitro: vsock CID 0, port 10000 + the enclave's CID.
 *
 * Nothing here blocks QEMU: clients are non-blocking sockets, fed as
 * they take more; a client that falls more than the kept bytes behind
 * skips what is no longer kept.  When the console ends, each client gets
 * the rest of it, then EOF.
 *
 * Copyright (c) 2026 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/units.h"
#include "qemu/main-loop.h"
#include "qemu/sockets.h"
#include "console-server.h"
#include "trace.h"

typedef struct NitroConsoleClient {
    NitroConsoleServer *srv;
    int fd;
    uint64_t pos;               /* the next byte of the console to send */
} NitroConsoleClient;

struct NitroConsoleServer {
    char *path;
    int listen_fd;              /* -1 once the console has ended */
    GList *clients;
    /* the last bytes of the console, at their offset modulo the size */
    uint8_t *ring;
    uint64_t total;             /* bytes of console so far */
};

static void nitro_console_server_free_if_done(NitroConsoleServer *srv)
{
    if (srv->listen_fd < 0 && !srv->clients) {
        g_free(srv->ring);
        g_free(srv->path);
        g_free(srv);
    }
}

static void nitro_console_client_drop(NitroConsoleClient *c)
{
    NitroConsoleServer *srv = c->srv;

    trace_nitro_console_client(srv->path, c->fd, "gone", c->pos);
    qemu_set_fd_handler(c->fd, NULL, NULL, NULL);
    close(c->fd);
    srv->clients = g_list_remove(srv->clients, c);
    g_free(c);
    nitro_console_server_free_if_done(srv);
}

static void nitro_console_client_send(NitroConsoleClient *c);

static void nitro_console_client_writable(void *opaque)
{
    nitro_console_client_send(opaque);
}

/* The console has no input: drop it, and notice the client leaving */
static void nitro_console_client_read(void *opaque)
{
    NitroConsoleClient *c = opaque;
    char buf[256];
    ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        nitro_console_client_drop(c);
    }
}

/*
 * Send what the client has not had yet, as much as its socket takes; at
 * the end of an ended console, close it
 */
static void nitro_console_client_send(NitroConsoleClient *c)
{
    NitroConsoleServer *srv = c->srv;

    if (srv->total - c->pos > NITRO_CONSOLE_SERVER_KEEP) {
        /* it fell behind what is kept: skip what is lost */
        c->pos = srv->total - NITRO_CONSOLE_SERVER_KEEP;
    }
    while (c->pos < srv->total) {
        size_t off = c->pos % NITRO_CONSOLE_SERVER_KEEP;
        size_t len = MIN(srv->total - c->pos,
                         NITRO_CONSOLE_SERVER_KEEP - off);
        ssize_t n = send(c->fd, srv->ring + off, len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            break;
        }
        if (n <= 0) {
            nitro_console_client_drop(c);
            return;
        }
        c->pos += n;
    }
    if (c->pos == srv->total && srv->listen_fd < 0) {
        nitro_console_client_drop(c);
        return;
    }
    qemu_set_fd_handler(c->fd, nitro_console_client_read,
                        c->pos < srv->total ?
                        nitro_console_client_writable : NULL, c);
}

/*
 * Send the clients that had all the console up to byte @pos the rest (the
 * others wait on their socket, and resume from their write watch); a send
 * may free the last one
 */
static void nitro_console_server_send_from(NitroConsoleServer *srv,
                                           uint64_t pos)
{
    g_autoptr(GList) clients = g_list_copy(srv->clients);

    for (GList *l = clients; l; l = l->next) {
        NitroConsoleClient *c = l->data;

        if (c->pos == pos) {
            nitro_console_client_send(c);
        }
    }
}

static void nitro_console_server_accept(void *opaque)
{
    NitroConsoleServer *srv = opaque;
    NitroConsoleClient *c;
    int fd = qemu_accept(srv->listen_fd, NULL, NULL);

    if (fd < 0) {
        return;
    }
    if (!qemu_set_blocking(fd, false, NULL)) {
        close(fd);
        return;
    }
    c = g_new0(NitroConsoleClient, 1);
    c->srv = srv;
    c->fd = fd;
    srv->clients = g_list_append(srv->clients, c);
    trace_nitro_console_client(srv->path, fd, "attached", 0);
    nitro_console_client_send(c);
}

NitroConsoleServer *nitro_console_server_new(const char *path, Error **errp)
{
    int fd = unix_listen(path, errp);
    NitroConsoleServer *srv;

    if (fd < 0) {
        return NULL;
    }
    if (!qemu_set_blocking(fd, false, errp)) {
        close(fd);
        unlink(path);
        return NULL;
    }
    srv = g_new0(NitroConsoleServer, 1);
    srv->path = g_strdup(path);
    srv->listen_fd = fd;
    srv->ring = g_malloc(NITRO_CONSOLE_SERVER_KEEP);
    qemu_set_fd_handler(fd, nitro_console_server_accept, NULL, srv);
    return srv;
}

void nitro_console_server_write(NitroConsoleServer *srv, const void *buf,
                                size_t len)
{
    const uint8_t *p = buf;
    uint64_t pos = srv->total;

    while (len) {
        size_t off = srv->total % NITRO_CONSOLE_SERVER_KEEP;
        size_t n = MIN(len, NITRO_CONSOLE_SERVER_KEEP - off);

        memcpy(srv->ring + off, p, n);
        srv->total += n;
        p += n;
        len -= n;
    }
    nitro_console_server_send_from(srv, pos);
}

void nitro_console_server_end(NitroConsoleServer *srv)
{
    qemu_set_fd_handler(srv->listen_fd, NULL, NULL, NULL);
    close(srv->listen_fd);
    srv->listen_fd = -1;
    unlink(srv->path);
    if (!srv->clients) {
        nitro_console_server_free_if_done(srv);
        return;
    }
    /* those that had it all get EOF now, the others once they have */
    nitro_console_server_send_from(srv, srv->total);
}
