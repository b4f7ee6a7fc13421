/*
 * The init of the sample enclave image (build-image.py)
 *
 * A static program run as /init from the initramfs of a Debian kernel:
 * it loads the virtio-mmio and vsock modules (/modules/order lists them,
 * dependencies first), sends the Nitro Enclaves boot heartbeat exactly as
 * the official init does (connect to CID 3 port 9000, write 0xB7, read
 * one byte that must be 0xB7, no retry: otherwise it exits and the kernel
 * panics), then runs the sample app: a line on the console and a vsock
 * echo server on port 5000.
 *
 * With "nitro_test" on the kernel command line it also serves test
 * commands, one line per connection on port 5001:
 *   "send PORT N BYTES [CID]": N parallel connections to (CID, PORT),
 *                        CID 3 by default, each sends BYTES of the test
 *                        pattern and checks that the same bytes come
 *                        back; replies "ok" or "fail ..."
 *   "connect CID PORT":  one connect() to (CID, PORT); replies "ok" or
 *                        "errno N" (ETIMEDOUT when nobody answered within
 *                        the kernel's connect timeout)
 *   "poweroff", "reboot", "exit": power off, reboot as the official
 *                        init ends (reboot(RB_AUTOBOOT)), or let init die
 *                        (kernel panic)
 *
 * Copyright (c) 2026 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/vm_sockets.h>

#define PARENT_CID      3
#define HEARTBEAT_PORT  9000
#define HEARTBEAT_BYTE  0xB7
#define ECHO_PORT       5000
#define TEST_PORT       5001
#define BLOCK           4096
#define MIN(a, b)       ((a) < (b) ? (a) : (b))

/*
 * A line on the console, sent before say() returns: the serial driver
 * sends from interrupts, and a panic (init exits) stops them for good
 */
static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    printf("nitro-enclave-init: ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    tcdrain(STDOUT_FILENO);
    va_end(ap);
}

static void load_modules(void)
{
    char name[256];
    FILE *f = fopen("/modules/order", "r");

    if (!f) {
        return;
    }
    while (fgets(name, sizeof(name), f)) {
        char path[300];
        int fd;

        name[strcspn(name, "\n")] = 0;
        snprintf(path, sizeof(path), "/modules/%s", name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || syscall(SYS_finit_module, fd, "", 0) < 0) {
            if (errno != EEXIST) {
                say("cannot load %s: %s", name, strerror(errno));
            }
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    fclose(f);
}

/* the official init's heartbeat: one try */
static void heartbeat(void)
{
    struct sockaddr_vm sa = {
        .svm_family = AF_VSOCK,
        .svm_cid = PARENT_CID,
        .svm_port = HEARTBEAT_PORT,
    };
    unsigned char buf = HEARTBEAT_BYTE;
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        write(fd, &buf, 1) != 1 || read(fd, &buf, 1) != 1 ||
        buf != HEARTBEAT_BYTE) {
        say("heartbeat failed: %s", strerror(errno));
        exit(1);
    }
    close(fd);
}

static int vsock_listen(unsigned port)
{
    struct sockaddr_vm sa = {
        .svm_family = AF_VSOCK,
        .svm_cid = VMADDR_CID_ANY,
        .svm_port = port,
    };
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(fd, 128) < 0) {
        say("cannot listen on vsock port %u: %s", port, strerror(errno));
        exit(1);
    }
    return fd;
}

static bool write_all(int fd, const void *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        p = (const char *)p + w;
        n -= w;
    }
    return true;
}

static void echo(int fd)
{
    static char buf[65536];
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (!write_all(fd, buf, n)) {
            break;
        }
    }
    _exit(0);
}

/* block @k of stream @seed: a fixed block with (seed, k) in front */
static void pattern(uint8_t *b, uint32_t seed, uint64_t k)
{
    uint32_t x = 0x9e3779b9;
    int i;

    for (i = 0; i < BLOCK; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = x;
    }
    memcpy(b, &seed, 4);
    memcpy(b + 4, &k, 4);
}

/* send @bytes of stream @seed to (cid, port) and check they come back */
static int send_check(unsigned cid, unsigned port, uint32_t seed,
                      uint64_t bytes)
{
    struct sockaddr_vm sa = {
        .svm_family = AF_VSOCK,
        .svm_cid = cid,
        .svm_port = port,
    };
    static uint8_t out[BLOCK], want[BLOCK], in[BLOCK];
    uint64_t sent = 0, got = 0;
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        return 2;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    while (got < bytes) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (sent < bytes) {
            p.events |= POLLOUT;
        }
        if (poll(&p, 1, 60000) <= 0) {
            return 3;
        }
        if (p.revents & POLLOUT) {
            uint64_t off = sent % BLOCK;

            pattern(out, seed, sent / BLOCK);
            n = write(fd, out + off, MIN(BLOCK - off, bytes - sent));
            if (n > 0) {
                sent += n;
                if (sent == bytes) {
                    shutdown(fd, SHUT_WR);
                }
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            uint64_t off = got % BLOCK;

            n = read(fd, in, MIN(BLOCK - off, bytes - got));
            if (n == 0 || (n < 0 && errno != EAGAIN)) {
                return 4;
            }
            if (n > 0) {
                pattern(want, seed, got / BLOCK);
                if (memcmp(in, want + off, n)) {
                    return 5;
                }
                got += n;
            }
        }
    }
    close(fd);
    return 0;
}

/* one connect() to (cid, port): 0 or its errno */
static int try_connect(unsigned cid, unsigned port)
{
    struct sockaddr_vm sa = {
        .svm_family = AF_VSOCK,
        .svm_cid = cid,
        .svm_port = port,
    };
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0), err = 0;

    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        err = errno;
    }
    if (fd >= 0) {
        close(fd);
    }
    return err;
}

static void test_command(int fd)
{
    char line[128] = "";
    unsigned port, n, i, failed = 0, cid = PARENT_CID;
    unsigned long long bytes;
    ssize_t r = read(fd, line, sizeof(line) - 1);

    line[r > 0 ? r : 0] = 0;
    if (!strncmp(line, "poweroff", 8)) {
        say("powering off");
        sync();
        reboot(RB_POWER_OFF);
    } else if (!strncmp(line, "reboot", 6)) {
        say("rebooting");
        sync();
        reboot(RB_AUTOBOOT);
    } else if (!strncmp(line, "exit", 4)) {
        say("init exits");
        kill(1, SIGTERM);
    } else if (sscanf(line, "connect %u %u", &cid, &port) == 2) {
        char reply[64];
        int err = try_connect(cid, port);

        snprintf(reply, sizeof(reply), err ? "errno %d\n" : "ok\n", err);
        write_all(fd, reply, strlen(reply));
    } else if (sscanf(line, "send %u %u %llu %u", &port, &n, &bytes,
                      &cid) >= 3) {
        char reply[64];
        int st;

        for (i = 0; i < n; i++) {
            if (fork() == 0) {
                _exit(send_check(cid, port, i, bytes));
            }
        }
        for (i = 0; i < n; i++) {
            if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
                failed++;
            }
        }
        snprintf(reply, sizeof(reply), failed ? "fail %u\n" : "ok\n", failed);
        write_all(fd, reply, strlen(reply));
    } else {
        write_all(fd, "unknown command\n", 16);
    }
    _exit(0);
}

static bool test_mode(void)
{
    char cmdline[4096] = "";
    int fd = open("/proc/cmdline", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, cmdline, sizeof(cmdline) - 1) : -1;

    cmdline[n > 0 ? n : 0] = 0;
    return strstr(cmdline, "nitro_test") != NULL;
}

static void die(int sig)
{
    _exit(1);
}

int main(void)
{
    int echo_fd, test_fd = -1, con;

    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
    mount("proc", "/proc", "proc", 0, NULL);
    mount("sysfs", "/sys", "sysfs", 0, NULL);
    con = open("/dev/console", O_RDWR);
    if (con >= 0) {
        dup2(con, 0);
        dup2(con, 1);
        dup2(con, 2);
    }
    load_modules();
    heartbeat();
    say("heartbeat ok");
    sigaction(SIGCHLD, &(struct sigaction){ .sa_handler = SIG_IGN }, NULL);
    sigaction(SIGTERM, &(struct sigaction){ .sa_handler = die }, NULL);
    echo_fd = vsock_listen(ECHO_PORT);
    if (test_mode()) {
        test_fd = vsock_listen(TEST_PORT);
    }
    say("hello from the enclave: vsock echo server on port %d", ECHO_PORT);
    for (;;) {
        struct pollfd p[2] = {
            { .fd = echo_fd, .events = POLLIN },
            { .fd = test_fd, .events = POLLIN },
        };
        int i;

        if (poll(p, 2, -1) < 0) {
            continue;
        }
        for (i = 0; i < 2; i++) {
            int c;

            if (!(p[i].revents & POLLIN)) {
                continue;
            }
            c = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0) {
                continue;
            }
            if (fork() == 0) {
                sigaction(SIGCHLD,
                          &(struct sigaction){ .sa_handler = SIG_DFL }, NULL);
                if (i == 0) {
                    echo(c);
                }
                test_command(c);
            }
            close(c);
        }
    }
}
