/*
 * ne-rules: the rules of the nitro_enclaves driver that a launcher can
 * observe, one line each, for a differential test of the simulator
 *
 * The same program runs against the real driver in the parent VM
 * (scripts/nitro-parent-vm, linked statically) and against the simulator
 * on the host (LD_PRELOAD=libnitro-sim.so, dynamically linked), with the
 * same CPU pool and topology on both sides (four CPUs, two threads per
 * core, pool 2-3).  tests/nitro/parent-vm-test.py compares the two
 * outputs line by line; every difference must be one of those listed
 * with its reason in ne-rules-differences.txt.
 *
 * Each line is "rule: outcome", where the outcome is "ok" (with a value
 * when the call returns one), an errno's text, an NE error number, or
 * what killed the child process that tried it.  Nothing here depends on the
 * host: slot ids and file descriptor numbers are never printed.
 *
 * It needs 64 MiB of free 2 MiB huge pages and no enclave running.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/nitro_enclaves.h>

#define MIB (1024ULL * 1024)
#define DEV "/dev/nitro_enclaves"
#define NE_CPUS "/sys/module/nitro_enclaves/parameters/ne_cpus"
#define POOL "2-3"     /* as scripts/nitro-parent-vm sets it */

static int dev = -1;
static uint8_t *mem;            /* 64 MiB of huge pages */
static void *bad;               /* a PROT_NONE page */

/* a call's outcome: "ok", "ok V", an errno's text or an NE error number */
static const char *outcome(long r, long value, int show_value)
{
    static char buf[64];

    if (r >= 0) {
        snprintf(buf, sizeof(buf), show_value ? "ok %ld" : "ok", value);
    } else if (errno >= 256) {
        snprintf(buf, sizeof(buf), "%d", errno);
    } else {
        snprintf(buf, sizeof(buf), "%s", strerror(errno));
    }
    return buf;
}

static void rule(const char *name, long r)
{
    printf("%s: %s\n", name, outcome(r, r, 0));
}

static void rule_value(const char *name, long r, long value)
{
    printf("%s: %s\n", name, outcome(r, value, 1));
}

/*
 * Run @fn(@name, @arg) in a child process: the driver answers a bad
 * pointer with EFAULT, a library in the process might crash instead; this
 * prints what killed the child then.  The child leaves without exit
 * handlers, as a crash would.
 */
static void in_child(const char *name, void (*fn)(const char *, long),
                     long arg)
{
    int status;
    pid_t pid;

    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        fn(name, arg);
        fflush(stdout);
        _exit(0);
    }
    if (waitpid(pid, &status, 0) == pid && WIFSIGNALED(status)) {
        printf("%s: killed by %s\n", name, sigabbrev_np(WTERMSIG(status)));
    }
}

static int nfds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    while (d && readdir(d)) {
        n++;
    }
    if (d) {
        closedir(d);
    }
    return n;
}

/* a new enclave fd, or -1 */
static int create(void)
{
    uint64_t slot = 0;

    return ioctl(dev, NE_CREATE_VM, &slot);
}

static int region(int fd, uint64_t flags, void *addr, uint64_t size)
{
    struct ne_user_memory_region r = {
        .flags = flags, .memory_size = size, .userspace_addr = (uintptr_t)addr,
    };

    return ioctl(fd, NE_SET_USER_MEMORY_REGION, &r);
}

static void rule_vcpu(const char *name, int fd, uint32_t cpu)
{
    long r = ioctl(fd, NE_ADD_VCPU, &cpu);

    rule_value(name, r, cpu);
}

static int start(int fd, uint64_t flags, uint64_t cid)
{
    struct ne_enclave_start_info s = { .flags = flags, .enclave_cid = cid };

    return ioctl(fd, NE_START_ENCLAVE, &s);
}

static void rule_file(const char *name, const char *path)
{
    char buf[64] = "";
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        rule(name, -1);
        return;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0) {
        rule(name, -1);
        return;
    }
    buf[strcspn(buf, "\n")] = 0;
    printf("%s: ok %s\n", name, buf);
}

static void rule_write_file(const char *name, const char *path,
                            const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    long r = fd;

    if (fd >= 0) {
        r = write(fd, text, strlen(text));
        close(fd);
    }
    rule(name, r < 0 ? -1 : 0);
}

/* ---- in child processes ---- */

static void create_bad_pointer(const char *name, long fd)
{
    rule(name, ioctl(fd, NE_CREATE_VM, bad));
}

/* @req with a bad pointer on an enclave of this process */
static void enclave_bad_pointer(const char *name, long req)
{
    int fd = create();

    rule(name, fd < 0 ? fd : ioctl(fd, (unsigned long)req, bad));
    close(fd);
}

static void forked_add_vcpu(const char *name, long fd)
{
    rule_vcpu(name, fd, 0);
}

static void forked_region(const char *name, long fd)
{
    rule(name, region(fd, 0, mem + 8 * MIB, 2 * MIB));
}

static void forked_image_info(const char *name, long fd)
{
    struct ne_image_load_info info = { .flags = NE_EIF_IMAGE };
    long r = ioctl(fd, NE_GET_IMAGE_LOAD_INFO, &info);

    rule_value(name, r, info.memory_offset);
}

/* ---- the rules ---- */

static void device_rules(void)
{
    struct stat st;
    char c;
    void *p;

    if (stat(DEV, &st) < 0) {
        rule("dev-node", -1);
    } else {
        printf("dev-node: ok %s %04o\n", S_ISCHR(st.st_mode) ? "char" : "other",
               st.st_mode & 07777);
    }
    rule("dev-read", read(dev, &c, 1));
    rule("dev-write", write(dev, "x", 1));
    p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, dev, 0);
    rule("dev-mmap", p == MAP_FAILED ? -1 : 0);
    rule("dev-unknown-ioctl", ioctl(dev, _IO(0xAE, 0x7f)));
    rule("dev-add-vcpu", ioctl(dev, NE_ADD_VCPU, &(uint32_t){ 0 }));
    in_child("create-vm-bad-pointer", create_bad_pointer, dev);
    rule_file("pool", NE_CPUS);
    rule_file("pool-cpu-online", "/sys/devices/system/cpu/cpu2/online");
    rule_file("parent-cpu-online", "/sys/devices/system/cpu/cpu1/online");
}

static void enclave_fd_rules(void)
{
    int before = nfds();
    int fd = create();
    int fl, fdfl;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    void *m;

    rule("create-vm", fd);
    if (fd < 0) {
        return;
    }
    printf("create-vm-fds: ok %d\n", nfds() - before);
    fl = fcntl(fd, F_GETFL);
    fdfl = fcntl(fd, F_GETFD);
    printf("efd-flags: ok %s%s\n",
           (fl & O_ACCMODE) == O_RDWR ? "rdwr" :
           (fl & O_ACCMODE) == O_RDONLY ? "rdonly" : "wronly",
           fdfl & FD_CLOEXEC ? " cloexec" : "");
    rule("efd-write", write(fd, "x", 1));
    rule("efd-lseek", lseek(fd, 0, SEEK_SET));
    m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    rule("efd-mmap", m == MAP_FAILED ? -1 : 0);
    rule("efd-unknown-ioctl", ioctl(fd, _IO(0xAE, 0x7f)));
    rule("efd-create-vm", ioctl(fd, NE_CREATE_VM, &(uint64_t){ 0 }));
    rule_value("efd-poll-before-start", poll(&p, 1, 0), p.revents);
    close(fd);
}

static void region_rules(void)
{
    struct ne_image_load_info info = { .flags = 0 };
    uint64_t limit = 1ULL << 47;
    int fd = create();
    uint8_t *small, *ro;
    long r;

    if (fd < 0) {
        rule("create-vm-2", fd);
        return;
    }
    rule("image-info-no-flag", ioctl(fd, NE_GET_IMAGE_LOAD_INFO, &info));
    info.flags = NE_EIF_IMAGE;
    r = ioctl(fd, NE_GET_IMAGE_LOAD_INFO, &info);
    rule_value("image-info", r, info.memory_offset);
    in_child("image-info-bad-pointer", enclave_bad_pointer,
             NE_GET_IMAGE_LOAD_INFO);
    in_child("region-bad-pointer", enclave_bad_pointer,
             NE_SET_USER_MEMORY_REGION);
    rule("region-flags", region(fd, 1, mem, 2 * MIB));
    rule("region-size-unaligned", region(fd, 0, mem, MIB));
    rule("region-addr-unaligned", region(fd, 0, mem + MIB, 2 * MIB));
    rule("region-size-0", region(fd, 0, mem, 0));
    rule("region-wraps", region(fd, 0, (void *)(uintptr_t)-(2 * MIB),
                                4 * MIB));
    rule("region-past-user-space", region(fd, 0, (void *)(uintptr_t)
                                          (limit - 2 * MIB), 4 * MIB));
    rule("region-last-2m-of-user-space",
         region(fd, 0, (void *)(uintptr_t)(limit - 2 * MIB), 2 * MIB));
    small = mmap(NULL, 4 * MIB, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    small = (uint8_t *)(((uintptr_t)small + 2 * MIB - 1) & ~(2 * MIB - 1));
    small[0] = 1;
    rule("region-not-hugetlb", region(fd, 0, small, 2 * MIB));
    munmap(small, 2 * MIB);
    rule("region-unmapped", region(fd, 0, small, 2 * MIB));
    ro = mmap(NULL, 2 * MIB, PROT_NONE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    rule("region-prot-none", region(fd, 0, ro, 2 * MIB));
    mprotect(ro, 2 * MIB, PROT_READ);
    rule("region-read-only", region(fd, 0, ro, 2 * MIB));
    rule("region", region(fd, 0, mem, 8 * MIB));
    rule("region-again", region(fd, 0, mem, 8 * MIB));
    rule("region-overlap", region(fd, 0, mem + 6 * MIB, 4 * MIB));
    rule("region-size-0-inside", region(fd, 0, mem + 2 * MIB, 0));
    rule("region-adjacent", region(fd, 0, mem + 8 * MIB, 2 * MIB));
    in_child("forked-region", forked_region, fd);
    in_child("forked-add-vcpu", forked_add_vcpu, fd);
    in_child("forked-image-info", forked_image_info, fd);
    close(fd);
    munmap(ro, 2 * MIB);
}

static void vcpu_rules(void)
{
    int fd = create(), other;

    if (fd < 0) {
        rule("create-vm-3", fd);
        return;
    }
    in_child("add-vcpu-bad-pointer", enclave_bad_pointer, NE_ADD_VCPU);
    rule_vcpu("vcpu-out-of-range", fd, 4096);
    rule_vcpu("vcpu-past-last-cpu", fd, 4);
    rule_vcpu("vcpu-not-in-pool", fd, 1);
    rule_vcpu("vcpu-pick", fd, 0);
    rule_vcpu("vcpu-again", fd, 2);
    rule_vcpu("vcpu-pick-sibling", fd, 0);
    rule_vcpu("vcpu-pick-none-left", fd, 0);
    other = create();
    rule("create-vm-pool-taken", other);
    if (other >= 0) {
        close(other);
    }
    rule_write_file("pool-write-with-enclave", NE_CPUS, POOL);
    close(fd);
}

static void start_rules(void)
{
    int fd = create();
    uint32_t cpu = 2;

    if (fd < 0) {
        rule("create-vm-4", fd);
        return;
    }
    in_child("start-bad-pointer", enclave_bad_pointer, NE_START_ENCLAVE);
    rule("start-flags", start(fd, NE_ENCLAVE_START_MAX_FLAG_VAL, 0));
    rule("start-cid-host", start(fd, 0, 2));
    rule("start-cid-max", start(fd, 0, UINT32_MAX));
    rule("start-no-memory", start(fd, 0, 0));
    region(fd, 0, mem, 8 * MIB);
    rule("start-small-memory", start(fd, 0, 0));
    region(fd, 0, mem + 8 * MIB, 56 * MIB);
    rule("start-no-vcpu", start(fd, 0, 0));
    ioctl(fd, NE_ADD_VCPU, &cpu);
    rule("start-half-core", start(fd, 0, 0));
    cpu = 3;
    ioctl(fd, NE_ADD_VCPU, &cpu);
    memset(mem + 8 * MIB, 0, MIB);
    rule("start-no-image", start(fd, NE_ENCLAVE_DEBUG_MODE, 0));
    close(fd);
}

static void pool_rules(void)
{
    rule_write_file("pool-write-same", NE_CPUS, POOL);
    rule_write_file("pool-write-half-core", NE_CPUS, "2");
    rule_write_file("pool-write-restore", NE_CPUS, POOL);
    rule_write_file("pool-write-parent-core", NE_CPUS, "0-1");
    rule_write_file("pool-write-restore-2", NE_CPUS, POOL);
    rule_file("pool-after", NE_CPUS);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    dev = open(DEV, O_RDWR | O_CLOEXEC);
    rule("open", dev);
    mem = mmap(NULL, 64 * MIB, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    bad = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (dev < 0 || mem == MAP_FAILED || bad == MAP_FAILED) {
        fprintf(stderr, "ne-rules: no device or no 64 MiB of huge pages\n");
        return 1;
    }
    memset(mem, 0, 64 * MIB);
    device_rules();
    enclave_fd_rules();
    region_rules();
    vcpu_rules();
    start_rules();
    pool_rules();
    printf("end\n");
    return 0;
}
