/*
 * AWS Nitro Enclaves: an enclave's console on an AF_UNIX socket
 * (console-server.c)
 *
 * Copyright (c) 2026 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_NITRO_CONSOLE_SERVER_H
#define HW_NITRO_CONSOLE_SERVER_H

/* Bytes of console kept for clients that connect late or read slowly */
#define NITRO_CONSOLE_SERVER_KEEP (1 * MiB)

typedef struct NitroConsoleServer NitroConsoleServer;

/* Serve a console on the AF_UNIX socket @path: NULL and @errp on failure */
NitroConsoleServer *nitro_console_server_new(const char *path, Error **errp);

/* @len more bytes of console, for every client */
void nitro_console_server_write(NitroConsoleServer *srv, const void *buf,
                                size_t len);

/*
 * The console has ended: no new clients, @path is removed, each client
 * gets the rest, then EOF.  @srv frees itself once they have.
 */
void nitro_console_server_end(NitroConsoleServer *srv);

#endif
