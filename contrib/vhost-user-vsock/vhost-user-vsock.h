/*
 * vhost-user-vsock: interfaces between the device and the host side
 *
 * The device half (vhost-user-vsock.c) speaks virtio-vsock to the guest;
 * the host half (host.c) opens, accepts and names the host sockets that
 * the guest's stream connections are carried over.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef VHOST_USER_VSOCK_H
#define VHOST_USER_VSOCK_H

/* How the host end of a connection is reached */
typedef struct VuvHostConfig {
    /*
     * AF_UNIX: the host connects to @uds_path and sends "CONNECT <port>\n"
     * to reach guest port <port>, and gets "OK <host port>\n" back; the
     * guest connecting to port <port> reaches "<uds_path>_<port>".
     */
    char *uds_path;
    /* guest -> host connections with AF_VSOCK calls instead of AF_UNIX */
    bool use_vsock;
    uint64_t guest_cid;
} VuvHostConfig;

/*
 * Connect the host end of a guest connection from guest port @src_port
 * to (@dst_cid, @dst_port); returns a non-blocking fd, connected or in
 * progress (*in_progress), or -1 with @errp set.
 */
int vuv_host_connect(const VuvHostConfig *cfg, uint64_t dst_cid,
                     uint32_t dst_port, uint32_t src_port,
                     bool *in_progress, Error **errp);

/* the listening gateway socket of cfg->uds_path, or -1 with @errp set */
int vuv_host_listen(const VuvHostConfig *cfg, Error **errp);

/*
 * Read the "CONNECT <port>\n" request of a new gateway client, a byte at
 * a time so that nothing after the line is consumed.  Returns 1 with
 * *port set when the line is complete, 0 when more bytes are needed
 * (kept in @line, of @line_size bytes, with *line_len), -1 on error.
 */
int vuv_host_read_request(int fd, char *line, size_t line_size,
                          size_t *line_len, uint32_t *port);

#endif
