/*
 * vhost-user-vsock: interfaces between the device, the host side and the
 * registry of guests
 *
 * The device half (vhost-user-vsock.c) speaks virtio-vsock to a guest;
 * the host half (host.c) opens, accepts and names the host sockets that
 * the guest's stream connections are carried over; guests.c knows the
 * guests one process serves by CID, so that their connections to each
 * other stay in the process, and adds guests at run time.
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
 * Read a "@verb <port>\n" line: the "CONNECT <port>" request of a new
 * gateway client, or the "OK <port>" answer to one, a byte at a time so
 * that nothing after the line is consumed.  Returns 1 with *port set when
 * the line is complete, 0 when more bytes are needed (kept in @line, of
 * @line_size bytes, with *line_len), -1 on error.
 */
int vuv_host_read_line(int fd, const char *verb, char *line,
                       size_t line_size, size_t *line_len, uint32_t *port);

/* One guest served by this process (vhost-user-vsock.c) */
typedef struct VuvDev VuvDev;

/*
 * Serve one more guest of CID @cid, whose front-end connects to the
 * listening vhost-user socket @listen_fd (taken over); its host side is
 * the gateway @uds_path.  False with @errp set if it cannot be served.
 */
bool vuv_dev_add(uint64_t cid, const char *uds_path, int listen_fd,
                 Error **errp);

/* The guest of CID @cid that this process serves, or NULL */
VuvDev *vuv_guests_find(uint64_t cid);

/* Register @v as the guest of CID @cid: false if the CID is taken */
bool vuv_guests_add(uint64_t cid, VuvDev *v);

void vuv_guests_remove(uint64_t cid);

/*
 * Listen on @path for more guests: a client sends
 * "GUEST <cid> <gateway path>\n" with the guest's listening vhost-user
 * socket attached (SCM_RIGHTS) in one message.  False with @errp set.
 */
bool vuv_guests_listen(const char *path, Error **errp);

#endif
