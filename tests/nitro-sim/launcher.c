/*
 * nitro-sim tests: a launcher that drives /dev/nitro_enclaves as nitro-cli
 *
 * Copyright (c) 2025 Nitro Enclaves for QEMU authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stdint.h>
#include "standard-headers/linux/nitro_enclaves.h"
#include <linux/vm_sockets.h>

#include "launcher.h"

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4U
#endif

static int fail(NlEnclave *e, const char *step)
{
    e->failed_step = step;
    e->err = errno;
    return -1;
}

void *nl_huge_alloc(size_t size)
{
    int fd = memfd_create("nitro-sim-test", MFD_HUGETLB | MFD_CLOEXEC);
    void *p;

    if (fd < 0) {
        return NULL;
    }
    if (ftruncate(fd, size) < 0) {
        close(fd);
        return NULL;
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

int nl_launch(const NlParams *p, NlEnclave *e)
{
    unsigned mem = p->mem_mib ? p->mem_mib : 64;
    unsigned rmib = p->region_mib ? p->region_mib : mem;
    unsigned ncpus = p->ncpus ? p->ncpus : 2;
    struct ne_image_load_info info = { .flags = NE_EIF_IMAGE };
    struct ne_enclave_start_info si = { 0 };
    struct sockaddr_vm svm = { .svm_family = AF_VSOCK };
    size_t off, done;
    unsigned i;

    memset(e, 0, sizeof(*e));
    e->dev = e->efd = e->hb_listen = -1;

    /* 1. the device */
    e->dev = open("/dev/nitro_enclaves", O_RDWR | O_CLOEXEC);
    if (e->dev < 0) {
        return fail(e, "open");
    }
    /* 2. the enclave */
    e->efd = ioctl(e->dev, NE_CREATE_VM, &e->slot);
    if (e->efd < 0) {
        return fail(e, "NE_CREATE_VM");
    }
    /* 3. hugetlb memory */
    e->region_size = (size_t)rmib << 20;
    for (i = 0; i < mem / rmib && i < NL_MAX_REGIONS; i++) {
        e->region[i] = nl_huge_alloc(e->region_size);
        if (!e->region[i]) {
            return fail(e, "hugetlb memory");
        }
        e->nregions++;
    }
    /* 4. where the image goes */
    if (ioctl(e->efd, NE_GET_IMAGE_LOAD_INFO, &info) < 0) {
        return fail(e, "NE_GET_IMAGE_LOAD_INFO");
    }
    /* 5. the EIF, byte for byte, into the concatenated regions */
    off = info.memory_offset;
    done = 0;
    for (i = 0; i < (unsigned)e->nregions && done < p->eif_len; i++) {
        size_t n;

        if (off >= e->region_size) {
            off -= e->region_size;
            continue;
        }
        n = e->region_size - off;
        if (n > p->eif_len - done) {
            n = p->eif_len - done;
        }
        memcpy(e->region[i] + off, p->eif + done, n);
        done += n;
        off = 0;
    }
    if (done < p->eif_len) {
        errno = EFBIG;
        return fail(e, "EIF copy");
    }
    /* 6. donate the regions */
    for (i = 0; i < (unsigned)e->nregions; i++) {
        struct ne_user_memory_region mr = {
            .flags = NE_DEFAULT_MEMORY_REGION,
            .memory_size = e->region_size,
            .userspace_addr = (uintptr_t)e->region[i],
        };

        if (ioctl(e->efd, NE_SET_USER_MEMORY_REGION, &mr) < 0) {
            return fail(e, "NE_SET_USER_MEMORY_REGION");
        }
    }
    /* 7. vCPUs, picked by the driver */
    for (i = 0; i < ncpus; i++) {
        uint32_t id = 0;

        if (ioctl(e->efd, NE_ADD_VCPU, &id) < 0) {
            return fail(e, "NE_ADD_VCPU");
        }
        e->vcpus[e->nvcpus++] = id;
    }
    /* 8. the heartbeat listener, before the start */
    if (!p->no_heartbeat_listen) {
        e->hb_listen = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (e->hb_listen < 0) {
            return fail(e, "socket");
        }
        svm.svm_cid = VMADDR_CID_ANY;
        svm.svm_port = 9000;
        if (bind(e->hb_listen, (struct sockaddr *)&svm, sizeof(svm)) < 0) {
            return fail(e, "bind-heartbeat");
        }
        if (listen(e->hb_listen, 1) < 0) {
            return fail(e, "listen-heartbeat");
        }
    }
    /* 9. start */
    if (p->before_start) {
        p->before_start();
    }
    si.flags = p->debug ? NE_ENCLAVE_DEBUG_MODE : 0;
    si.enclave_cid = p->cid;
    if (ioctl(e->efd, NE_START_ENCLAVE, &si) < 0) {
        return fail(e, "NE_START_ENCLAVE");
    }
    e->cid = si.enclave_cid;
    return 0;
}

void nl_close(NlEnclave *e)
{
    int i;

    if (e->hb_listen >= 0) {
        close(e->hb_listen);
    }
    if (e->dev >= 0) {
        close(e->dev);
    }
    if (e->efd >= 0) {
        close(e->efd);
    }
    for (i = 0; i < e->nregions; i++) {
        munmap(e->region[i], e->region_size);
    }
    e->hb_listen = e->dev = e->efd = -1;
    e->nregions = 0;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

int nl_heartbeat_answer(NlEnclave *e, int timeout_ms, uint8_t answer,
                        char *why, size_t whylen)
{
    struct pollfd pfd[2] = {
        { .fd = e->hb_listen, .events = POLLIN },
        { .fd = e->efd, .events = POLLIN },
    };
    uint8_t b = 0;
    int fd, r;

    r = poll(pfd, 2, timeout_ms);
    if (r <= 0) {
        snprintf(why, whylen, "no heartbeat connection in time");
        return -1;
    }
    if (pfd[1].revents & POLLHUP) {
        snprintf(why, whylen, "the enclave stopped (POLLHUP)");
        return -1;
    }
    fd = accept(e->hb_listen, NULL, NULL);
    if (fd < 0) {
        snprintf(why, whylen, "accept: %s", strerror(errno));
        return -1;
    }
    pfd[0].fd = fd;
    if (poll(pfd, 1, timeout_ms) != 1 || read(fd, &b, 1) != 1) {
        snprintf(why, whylen, "no heartbeat byte");
        close(fd);
        return -1;
    }
    if (b != 0xB7) {
        /* nitro-cli: a wrong byte is a failed boot, no answer */
        snprintf(why, whylen, "wrong heartbeat byte 0x%02x", b);
        close(fd);
        return -1;
    }
    b = answer;
    if (write(fd, &b, 1) != 1) {
        snprintf(why, whylen, "heartbeat reply: %s", strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    close(e->hb_listen);
    e->hb_listen = -1;
    return 0;
}

int nl_console_connect(uint64_t cid)
{
    struct sockaddr_vm svm = {
        .svm_family = AF_VSOCK,
        .svm_cid = VMADDR_CID_HYPERVISOR,
        .svm_port = cid + 10000,
    };
    int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&svm, sizeof(svm)) < 0) {
        int err = errno;

        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

static char *read_loop(int fd, const char *needle, int timeout_ms,
                       size_t *len, bool *eof)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    long long end = now_ms() + timeout_ms;

    if (eof) {
        *eof = false;
    }
    buf[0] = 0;
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        long long left = end - now_ms();
        ssize_t r;

        if (needle && strstr(buf, needle)) {
            break;
        }
        if (left <= 0 || poll(&pfd, 1, left) != 1) {
            break;
        }
        if (n + 1024 + 1 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        r = read(fd, buf + n, 1024);
        if (r <= 0) {
            if (eof) {
                *eof = r == 0;
            }
            break;
        }
        n += r;
        buf[n] = 0;
    }
    if (len) {
        *len = n;
    }
    return buf;
}

char *nl_read_all(int fd, int timeout_ms, size_t *len, bool *eof)
{
    return read_loop(fd, NULL, timeout_ms, len, eof);
}

char *nl_read_until(int fd, const char *needle, int timeout_ms, size_t *len)
{
    return read_loop(fd, needle, timeout_ms, len, NULL);
}

bool nl_wait_hup(int fd, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    return poll(&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLHUP);
}

static long meminfo(const char *key)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    long v = -1;

    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, key, strlen(key))) {
            sscanf(line + strlen(key), "%ld", &v);
        }
    }
    fclose(f);
    return v;
}

int nl_hugepages(unsigned pages, char *why, size_t whylen)
{
    long total = meminfo("HugePages_Total:");
    long freep = meminfo("HugePages_Free:");
    long size = meminfo("Hugepagesize:");

    if (size != 2048) {
        snprintf(why, whylen, "default huge page size is %ld kB, not 2048",
                 size);
        return -1;
    }
    if (freep < (long)pages) {
        FILE *f = fopen("/proc/sys/vm/nr_hugepages", "w");

        if (f) {
            fprintf(f, "%ld\n", total + (long)pages - freep);
            fclose(f);
        }
        freep = meminfo("HugePages_Free:");
    }
    if (freep < (long)pages) {
        snprintf(why, whylen, "need %u free 2 MiB huge pages, have %ld "
                 "(as root: echo %u > /proc/sys/vm/nr_hugepages)",
                 pages, freep, pages);
        return -1;
    }
    return 0;
}

static char sim_dir[PATH_MAX];
static char log_path[PATH_MAX + 32];

static char *made_dirs[64];
static int nmade;
static pid_t maker;

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    remove(path);
    return 0;
}

/* at exit of the test: remove the simulation directories it made */
static void rm_dirs(void)
{
    int i;

    if (getpid() != maker || getenv("NITRO_SIM_KEEP")) {
        return;
    }
    for (i = 0; i < nmade; i++) {
        nftw(made_dirs[i], rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        free(made_dirs[i]);
    }
}

const char *nl_new_sim_dir(const char *tag)
{
    snprintf(sim_dir, sizeof(sim_dir), "/tmp/nitro-sim-test-%s-XXXXXX", tag);
    if (!mkdtemp(sim_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    if (!maker) {
        maker = getpid();
        atexit(rm_dirs);
    }
    if (nmade < 64) {
        made_dirs[nmade++] = strdup(sim_dir);
    }
    setenv("NITRO_SIM_DIR", sim_dir, 1);
    snprintf(log_path, sizeof(log_path), "%s/events.jsonl", sim_dir);
    return sim_dir;
}

const char *nl_log_path(void)
{
    return log_path;
}

char *nl_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    size_t cap = 4096, n = 0, r;
    char *buf;

    if (!f) {
        return NULL;
    }
    buf = malloc(cap);
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[n] = 0;
    fclose(f);
    if (len) {
        *len = n;
    }
    return buf;
}

int nl_log_count(const char *s1, const char *s2, const char *s3)
{
    char *log = nl_read_file(log_path, NULL);
    char *line, *save = NULL;
    int n = 0;

    if (!log) {
        return 0;
    }
    for (line = strtok_r(log, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if ((!s1 || strstr(line, s1)) && (!s2 || strstr(line, s2)) &&
            (!s3 || strstr(line, s3))) {
            n++;
        }
    }
    free(log);
    return n;
}

int nl_heartbeat(NlEnclave *e, int timeout_ms, char *why, size_t whylen)
{
    return nl_heartbeat_answer(e, timeout_ms, 0xB7, why, whylen);
}
