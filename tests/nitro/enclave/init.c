/*
 * The init of the sample enclave image (build-image.py)
 *
 * A static program run as /init from the initramfs of a Debian kernel:
 * it loads the virtio-mmio, vsock and NSM modules (/modules/order lists
 * them, dependencies first), sends the Nitro Enclaves boot heartbeat
 * exactly as the official init does (connect to CID 3 port 9000, write
 * 0xB7, read one byte that must be 0xB7, no retry: otherwise it exits and
 * the kernel panics), then runs the sample app: a line on the console, a
 * vsock echo server on port 5000 and an attestation service on port 5005.
 *
 * The attestation service answers one request per connection: a line
 * "NONCE [USER_DATA]", each in hex (at most 512 bytes), gets "ok N\n"
 * followed by the N bytes of the attestation document (a COSE_Sign1)
 * that the NSM (/dev/nsm, the kernel's nsm driver) returns for that
 * nonce and user_data, or one line "error REASON".
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
#include <ctype.h>
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
#include <sys/ioctl.h>
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
#define ATTEST_PORT     5005
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

/* the kernel's NSM driver interface (<linux/nsm.h>, Linux 6.8) */
struct nsm_iovec {
    uint64_t addr;
    uint64_t len;
};

struct nsm_raw {
    struct nsm_iovec request;
    struct nsm_iovec response;
};

#define NSM_IOCTL_RAW           _IOWR(0x0A, 0x0, struct nsm_raw)
#define NSM_REQUEST_MAX_SIZE    0x1000
#define NSM_RESPONSE_MAX_SIZE   0x3000
/* the NSM API's limit for nonce and user_data */
#define NSM_FIELD_MAX           512

/* a CBOR head of @major and @len at @p; its size */
static size_t cbor_head(uint8_t *p, unsigned major, size_t len)
{
    if (len < 24) {
        p[0] = major << 5 | len;
        return 1;
    }
    if (len < 256) {
        p[0] = major << 5 | 24;
        p[1] = len;
        return 2;
    }
    p[0] = major << 5 | 25;
    p[1] = len >> 8;
    p[2] = len;
    return 3;
}

static size_t cbor_text(uint8_t *p, const char *s)
{
    size_t n = cbor_head(p, 3, strlen(s));

    memcpy(p + n, s, strlen(s));
    return n + strlen(s);
}

/* a byte string, or null when @len is negative */
static size_t cbor_bytes(uint8_t *p, const uint8_t *b, ssize_t len)
{
    size_t n;

    if (len < 0) {
        p[0] = 0xf6;
        return 1;
    }
    n = cbor_head(p, 2, len);
    memcpy(p + n, b, len);
    return n + len;
}

/*
 * The next head of @p (before @end): its major type and argument; false
 * if there is none
 */
static bool cbor_next(const uint8_t **p, const uint8_t *end,
                      unsigned *major, uint64_t *arg)
{
    unsigned info, i, n;

    if (*p >= end) {
        return false;
    }
    *major = **p >> 5;
    info = **p & 31;
    (*p)++;
    if (info < 24) {
        *arg = info;
        return true;
    }
    if (info > 27) {
        return false;
    }
    n = 1u << (info - 24);
    if (end - *p < n) {
        return false;
    }
    *arg = 0;
    for (i = 0; i < n; i++) {
        *arg = *arg << 8 | *(*p)++;
    }
    return true;
}

/* whether the text string @s is at @p, which is then past it */
static bool cbor_is_text(const uint8_t **p, const uint8_t *end,
                         const char *s)
{
    const uint8_t *q = *p;
    unsigned major;
    uint64_t len;

    if (!cbor_next(&q, end, &major, &len) || major != 3 ||
        len != strlen(s) || end - q < len || memcmp(q, s, len)) {
        return false;
    }
    *p = q + len;
    return true;
}

/* @n bytes of hex at @s into @out; their count or -1 */
static ssize_t unhex(const char *s, size_t n, uint8_t *out, size_t max)
{
    size_t i;

    if (n % 2 || n / 2 > max) {
        return -1;
    }
    for (i = 0; i < n; i += 2) {
        unsigned v;

        if (!isxdigit((unsigned char)s[i]) ||
            !isxdigit((unsigned char)s[i + 1]) ||
            sscanf(s + i, "%2x", &v) != 1) {
            return -1;
        }
        out[i / 2] = v;
    }
    return n / 2;
}

static void attest_error(int fd, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    n = MIN(n, (int)sizeof(line) - 2);
    line[n++] = '\n';
    write_all(fd, line, n);
    _exit(1);
}

/*
 * One attestation request: {"Attestation": {"user_data": ..., "nonce":
 * ..., "public_key": null}} to /dev/nsm, whose answer is {"Attestation":
 * {"document": bytes}} (or {"Error": ...})
 */
static void attest(int fd)
{
    static char line[4 * NSM_FIELD_MAX + 16];
    static uint8_t req[NSM_REQUEST_MAX_SIZE], resp[NSM_RESPONSE_MAX_SIZE];
    uint8_t nonce[NSM_FIELD_MAX], user[NSM_FIELD_MAX];
    ssize_t nonce_len, user_len = -1, got = 0, r;
    struct nsm_raw raw;
    const uint8_t *p, *end;
    unsigned major;
    uint64_t len;
    char *sp, *nl;
    size_t n = 0;
    int nsm;

    while (!(nl = memchr(line, '\n', got)) && got < sizeof(line) - 1 &&
           (r = read(fd, line + got, sizeof(line) - 1 - got)) > 0) {
        got += r;
    }
    if (!nl) {
        attest_error(fd, "error the request is not one line of at most %zu "
                     "bytes", sizeof(line) - 1);
    }
    *nl = 0;
    sp = strchr(line, ' ');
    nonce_len = unhex(line, sp ? sp - line : strlen(line), nonce,
                      sizeof(nonce));
    if (sp) {
        user_len = unhex(sp + 1, strlen(sp + 1), user, sizeof(user));
    }
    if (nonce_len < 0 || (sp && user_len < 0)) {
        attest_error(fd, "error expected \"NONCE [USER_DATA]\" in hex, at "
                     "most %d bytes each", NSM_FIELD_MAX);
    }

    req[n++] = 0xa1;
    n += cbor_text(req + n, "Attestation");
    req[n++] = 0xa3;
    n += cbor_text(req + n, "user_data");
    n += cbor_bytes(req + n, user, user_len);
    n += cbor_text(req + n, "nonce");
    n += cbor_bytes(req + n, nonce, nonce_len);
    n += cbor_text(req + n, "public_key");
    n += cbor_bytes(req + n, NULL, -1);

    nsm = open("/dev/nsm", O_RDWR | O_CLOEXEC);
    if (nsm < 0) {
        attest_error(fd, "error cannot open /dev/nsm: %s", strerror(errno));
    }
    raw = (struct nsm_raw) {
        .request = { (uintptr_t)req, n },
        .response = { (uintptr_t)resp, sizeof(resp) },
    };
    if (ioctl(nsm, NSM_IOCTL_RAW, &raw) < 0) {
        attest_error(fd, "error NSM request failed: %s", strerror(errno));
    }
    p = resp;
    end = resp + MIN(raw.response.len, sizeof(resp));
    if (!cbor_next(&p, end, &major, &len) || major != 5 || len != 1) {
        attest_error(fd, "error the NSM's answer is not a map of one key");
    }
    if (cbor_is_text(&p, end, "Error")) {
        if (cbor_next(&p, end, &major, &len) && major == 3 &&
            len <= end - p) {
            attest_error(fd, "error the NSM answered %.*s", (int)len, p);
        }
        attest_error(fd, "error the NSM answered an error");
    }
    if (!cbor_is_text(&p, end, "Attestation") ||
        !cbor_next(&p, end, &major, &len) || major != 5 || len != 1 ||
        !cbor_is_text(&p, end, "document") ||
        !cbor_next(&p, end, &major, &len) || major != 2 || len > end - p) {
        attest_error(fd, "error the NSM's answer has no document");
    }
    snprintf(line, sizeof(line), "ok %llu\n", (unsigned long long)len);
    if (write_all(fd, line, strlen(line))) {
        write_all(fd, p, len);
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
    int fds[3] = { -1, -1, -1 }, con;

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
    fds[0] = vsock_listen(ECHO_PORT);
    fds[1] = vsock_listen(ATTEST_PORT);
    if (test_mode()) {
        fds[2] = vsock_listen(TEST_PORT);
    }
    say("attestation service on vsock port %d", ATTEST_PORT);
    say("hello from the enclave: vsock echo server on port %d", ECHO_PORT);
    for (;;) {
        struct pollfd p[3];
        int i;

        for (i = 0; i < 3; i++) {
            p[i] = (struct pollfd) { .fd = fds[i], .events = POLLIN };
        }
        if (poll(p, 3, -1) < 0) {
            continue;
        }
        for (i = 0; i < 3; i++) {
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
                } else if (i == 1) {
                    attest(c);
                }
                test_command(c);
            }
            close(c);
        }
    }
}
