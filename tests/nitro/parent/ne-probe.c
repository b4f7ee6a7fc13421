/*
 * ne-probe: a launch on the real nitro_enclaves driver, step by step
 *
 * Run inside the parent VM (scripts/nitro-parent-vm) against the driver
 * that probed QEMU's nitro-enclaves-pci.  Each step prints one line
 * "name: result"; the exit status is 0 only if every step gave what the
 * driver and the device are meant to give:
 *
 *   - NE_START_ENCLAVE without memory: the driver's error 266;
 *   - NE_CREATE_VM, NE_GET_IMAGE_LOAD_INFO (8 MiB), a 64 MiB huge-page
 *     region, two vCPUs the driver picks (siblings of one pool core);
 *   - NE_START_ENCLAVE with no image in the memory: the device's ENOEXEC,
 *     through the driver, to user space;
 *   - with an image header at 8 MiB: started, CID 16 (the device's first
 *     automatic CID); the device boots it, the image is not a bootable
 *     EIF, the enclave stops: the driver reports POLLHUP on the enclave fd
 *     (the device's vector 1);
 *   - closing the fd releases the slot (ENCLAVE_STOP, SLOT_FREE).
 *
 * ne-probe EIF: the second enclave is that image, in 128 MiB (the device
 * boots it for real).  ne-probe is its parent over vsock, as a launcher
 * is: it answers the enclave's heartbeat on port 9000 (the enclave
 * reaches the parent at CID 3; its address is the enclave's CID), gets
 * an echo from the enclave's port 5000, then tells the host so on its
 * port 7000 (CID 2) and waits for the enclave to stop.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/nitro_enclaves.h>
#include <linux/vm_sockets.h>

#include "vsock-connect.h"

#define MIB (1024ULL * 1024)
#define HEARTBEAT_PORT  9000
#define ECHO_PORT       5000
#define HOST_PORT       7000
#define DEADLINE_MS     (900 * 1000)
static uint64_t mem_size = 64 * MIB;

static int failures;

static void check(const char *step, int ok, const char *fmt, long v)
{
    printf("%s: ", step);
    printf(fmt, v);
    printf("%s\n", ok ? "" : "  <- FAIL");
    failures += !ok;
}

/* An enclave fd with @mem donated and two vCPUs; -1 on failure */
static int enclave(int dev, void *mem)
{
    struct ne_enclave_start_info start = { 0 };
    struct ne_user_memory_region region = {
        .memory_size = mem_size, .userspace_addr = (uintptr_t)mem,
    };
    uint64_t slot = 0;
    uint32_t cpu;
    int fd, r;

    fd = ioctl(dev, NE_CREATE_VM, &slot);
    check("create-vm", fd >= 0 && slot, "slot 0x%lx", (long)slot);
    if (fd < 0) {
        return -1;
    }
    r = ioctl(fd, NE_START_ENCLAVE, &start);
    check("start-without-memory", r < 0 && errno == NE_ERR_NO_MEM_REGIONS_ADDED,
          "errno %ld", r < 0 ? errno : 0);
    r = ioctl(fd, NE_SET_USER_MEMORY_REGION, &region);
    check("set-user-memory-region", r == 0, "%ld", r < 0 ? -errno : r);
    for (int i = 0; i < 2; i++) {
        cpu = 0;
        r = ioctl(fd, NE_ADD_VCPU, &cpu);
        check("add-vcpu", r == 0, "cpu %ld", r < 0 ? -errno : cpu);
    }
    return fd;
}

/* listening on the parent's vsock port @port: a socket, or -1 */
static int vsock_listen(unsigned port)
{
    struct sockaddr_vm a = {
        .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port,
    };
    int s = vsock_socket();

    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        listen(s, 4) < 0) {
        return -1;
    }
    return s;
}

/* the enclave's heartbeat on @lsock, answered: the enclave's CID, or -1 */
static long heartbeat(int lsock, int enclave_fd)
{
    struct pollfd p[2] = {
        { .fd = lsock, .events = POLLIN }, { .fd = enclave_fd },
    };
    struct sockaddr_vm peer;
    socklen_t len = sizeof(peer);
    unsigned char b = 0;
    int s;

    /* the enclave stopping (POLLHUP) ends the wait */
    if (poll(p, 2, DEADLINE_MS) < 1 || !(p[0].revents & POLLIN)) {
        return -1;
    }
    s = accept(lsock, (struct sockaddr *)&peer, &len);
    if (s < 0) {
        return -1;
    }
    if (read(s, &b, 1) != 1 || b != 0xB7 || write(s, &b, 1) != 1) {
        close(s);
        return -1;
    }
    close(s);
    return peer.svm_cid;
}

/* an echo from (@cid, @port): 0, or -1 */
static int echo(unsigned cid, unsigned port)
{
    static const char msg[] = "hello from the parent";
    char buf[sizeof(msg)];
    size_t got = 0;
    int s = vsock_connect(cid, port);

    if (s < 0 || write(s, msg, sizeof(msg)) != sizeof(msg)) {
        return -1;
    }
    while (got < sizeof(msg)) {
        ssize_t n = read(s, buf + got, sizeof(msg) - got);

        if (n <= 0) {
            break;
        }
        got += n;
    }
    close(s);
    return got == sizeof(msg) && !memcmp(buf, msg, sizeof(msg)) ? 0 : -1;
}

/* a line to the host's vsock port @port: 0, or -1 */
static int tell_host(unsigned port, const char *line)
{
    int s = vsock_connect(VMADDR_CID_HOST, port);
    ssize_t n;

    if (s < 0) {
        return -1;
    }
    n = write(s, line, strlen(line));
    close(s);
    return n == (ssize_t)strlen(line) ? 0 : -1;
}

/* @path at 8 MiB into @mem: 0, or -1 */
static int load(const char *path, uint8_t *mem)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    if (!f) {
        return -1;
    }
    n = fread(mem + 8 * MIB, 1, mem_size - 8 * MIB, f);
    fclose(f);
    return n ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct ne_image_load_info info = { .flags = NE_EIF_IMAGE };
    struct ne_enclave_start_info start = { .flags = NE_ENCLAVE_DEBUG_MODE };
    struct pollfd p;
    uint8_t *mem;
    int dev, fd, r, lsock = -1;
    long peer;

    if (argc > 1) {
        mem_size = 128 * MIB;
    }
    dev = open("/dev/nitro_enclaves", O_RDWR | O_CLOEXEC);
    check("open", dev >= 0, "%ld", dev < 0 ? -errno : 0);
    if (dev < 0) {
        return 1;
    }
    mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    check("mmap-hugetlb", mem != MAP_FAILED, "%ld",
          mem == MAP_FAILED ? -errno : 0);
    if (mem == MAP_FAILED) {
        return 1;
    }
    memset(mem, 0, mem_size);

    /* no image in the memory: the device refuses the start */
    fd = enclave(dev, mem);
    if (fd < 0) {
        return 1;
    }
    r = ioctl(fd, NE_GET_IMAGE_LOAD_INFO, &info);
    check("image-load-info", r == 0 && info.memory_offset == 8 * MIB,
          "offset 0x%lx", (long)info.memory_offset);
    r = ioctl(fd, NE_START_ENCLAVE, &start);
    check("start-without-image", r < 0 && errno == ENOEXEC, "errno %ld",
          r < 0 ? errno : 0);
    close(fd);
    printf("released\n");

    /* an image header: started, then stopped by the device */
    fd = enclave(dev, mem);
    if (fd < 0) {
        return 1;
    }
    if (argc > 1) {
        r = load(argv[1], mem);
        check("load-image", r == 0, "%ld", r);
        lsock = vsock_listen(HEARTBEAT_PORT);
        check("vsock-listen", lsock >= 0, "%ld", lsock < 0 ? -errno : 0);
    } else {
        memcpy(mem + 8 * MIB, ".eif\0\4\0\0", 8);
        mem[8 * MIB + 27] = 1;                  /* one section */
        mem[8 * MIB + 28 + 6] = 0x02;           /* at offset 548 */
        mem[8 * MIB + 28 + 7] = 0x24;
        mem[8 * MIB + 28 + 256 + 7] = 16;       /* of 16 bytes */
    }
    r = ioctl(fd, NE_START_ENCLAVE, &start);
    check("start", r == 0 && start.enclave_cid == 16, "cid %ld",
          r < 0 ? -errno : (long)start.enclave_cid);
    if (lsock >= 0 && r == 0) {
        peer = heartbeat(lsock, fd);
        check("heartbeat", peer == (long)start.enclave_cid,
              "from cid %ld", peer);
        r = peer < 0 ? -1 : echo(start.enclave_cid, ECHO_PORT);
        check("parent-echo", r == 0, "%ld", r);
        r = tell_host(HOST_PORT, r ? "echo failed\n" : "echo ok\n");
        check("host", r == 0, "%ld", r);
    }
    p = (struct pollfd) { .fd = fd, .events = POLLIN };
    r = poll(&p, 1, 900 * 1000);
    check("stopped", r == 1 && (p.revents & POLLHUP), "revents 0x%lx",
          r == 1 ? p.revents : r);
    close(fd);
    printf("released\n");
    printf("%s\n", failures ? "FAILED" : "PASSED");
    return failures ? 1 : 0;
}
